//! The `parser-fuzz` command line: campaigns, corpus replay, seed writing.
//!
//! `parser-fuzz`: fuzz campaigns, corpus replay and seed writing for the boot-input
//! parsers (`make fuzz TARGET=dmar SECONDS=600`).
//!
//! Usage: `parser-fuzz [--target NAME] [--seconds N] [--seed S] [--replay FILE] [--write-seeds] [--list]`

use std::time::Duration;

use parser_fuzz::{corpus_dir, engine, fuzz, replay_corpus, seeds, target, Target, TARGETS};

fn usage(message: &str) -> ! {
    eprintln!("parser-fuzz: {message}");
    eprintln!("usage: parser-fuzz [--target NAME] [--seconds N] [--seed S] [--replay FILE] [--write-seeds] [--list]");
    eprintln!("targets: {}", TARGETS.iter().map(|t| t.name).collect::<Vec<_>>().join(", "));
    std::process::exit(2);
}

fn parse_u64(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn main() {
    let mut chosen: Vec<&'static Target> = Vec::new();
    let mut seconds = 10u64;
    let mut seed = None;
    let mut replay = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().unwrap_or_else(|| usage(&format!("{arg} needs {what}")));
        match arg.as_str() {
            "--target" => {
                let name = value("a target name");
                // `make fuzz` passes TARGET= through; empty means all.
                if !name.is_empty() {
                    chosen.push(target(&name).unwrap_or_else(|| usage(&format!("unknown target {name:?}"))));
                }
            }
            "--seconds" => seconds = parse_u64(&value("a number")).unwrap_or_else(|| usage("--seconds needs a number")),
            "--seed" => seed = Some(parse_u64(&value("a number")).unwrap_or_else(|| usage("--seed needs a number"))),
            "--replay" => replay = Some(value("a file")),
            "--list" => {
                for t in TARGETS {
                    println!("{:<12} {}", t.name, t.about);
                }
                return;
            }
            "--write-seeds" => {
                for (name, file, bytes) in seeds::all() {
                    let dir = corpus_dir(name);
                    std::fs::create_dir_all(&dir).expect("corpus directory");
                    std::fs::write(dir.join(file), bytes).expect("write seed");
                    println!("wrote {}", dir.join(file).display());
                }
                return;
            }
            _ => usage(&format!("unknown argument {arg:?}")),
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.iter().collect();
    }
    if let Some(file) = replay {
        let bytes = std::fs::read(&file).unwrap_or_else(|e| usage(&format!("cannot read {file}: {e}")));
        let mut failed = false;
        for t in &chosen {
            match engine::run_one(t, &bytes) {
                Ok(()) => println!("{}: {file} ok", t.name),
                Err(message) => {
                    println!("{}: {file} FAILS: {message}", t.name);
                    failed = true;
                }
            }
        }
        std::process::exit(i32::from(failed));
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let mut failed = false;
    for t in chosen {
        match replay_corpus(t) {
            Ok(n) => println!("{}: {n} corpus files replayed", t.name),
            Err((file, message)) => {
                println!("{}: corpus file {} FAILS: {message}", t.name, file.display());
                failed = true;
                continue;
            }
        }
        let report = fuzz(t, seed, Duration::from_secs(seconds));
        match report.failure {
            None => println!("{}: seed {seed:#x}: {} inputs in {seconds} s, no failure", t.name, report.execs),
            Some((file, message)) => {
                println!("{}: seed {seed:#x}: FAILS after {} inputs: {message}", t.name, report.execs);
                println!("  input saved as {}", file.display());
                println!("  reproduce: cargo run -p parser-fuzz -- --target {} --replay {}", t.name, file.display());
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
