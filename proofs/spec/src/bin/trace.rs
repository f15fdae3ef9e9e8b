//! Records spec traces for the replay through extracted Coq (proofs/replay).
//!
//! `trace DIR COUNT LEN SEED`: writes DIR/trace-0.txt (Init.v's run) and COUNT random
//! traces of LEN generated steps (seeds SEED, SEED+1, ...), then prints
//! `traces: N, steps: S, hardware steps: H` (the events recorded).

use std::path::PathBuf;

use spec::trace::{record_random, record_run, Recorder};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: trace DIR COUNT LEN SEED";
    let [_, dir, count, len, seed] = args.as_slice() else {
        eprintln!("{usage}");
        std::process::exit(2)
    };
    let num = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("{usage}: {s} is not a number"));
    let (dir, count, len, seed) = (PathBuf::from(dir), num(count), num(len), num(seed));
    std::fs::create_dir_all(&dir).expect("the trace directory");
    let mut traces: Vec<Recorder> = vec![record_run()];
    traces.extend((0..count).map(|n| record_random(seed + n, len as usize)));
    let (mut steps, mut hw_steps) = (0, 0);
    for (n, r) in traces.iter().enumerate() {
        std::fs::write(dir.join(format!("trace-{n}.txt")), &r.text).expect("a trace file");
        steps += r.steps;
        hw_steps += r.hw_steps;
    }
    println!("traces: {}, steps: {steps}, hardware steps: {hw_steps}", traces.len());
}
