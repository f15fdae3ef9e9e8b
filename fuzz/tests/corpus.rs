//! Parser-fuzz test: corpus replay and a short campaign per target.
//!
//! `make test` part of the parser fuzzer: every corpus file of every target runs clean,
//! then each target is fuzzed for a short fixed time (`PARSER_FUZZ_MS` per target,
//! default 3000) from a seed printed at the start.

use std::time::Duration;

use parser_fuzz::{fuzz, replay_corpus, TARGETS};

#[test]
fn corpus_replays_clean() {
    for t in TARGETS {
        match replay_corpus(t) {
            Ok(n) => assert!(n > 0, "{}: no corpus in fuzz/corpus/{} (run parser-fuzz --write-seeds)", t.name, t.name),
            Err((file, message)) => panic!("{}: corpus file {} fails: {message}", t.name, file.display()),
        }
    }
}

#[test]
fn short_fuzz_of_every_target() {
    let ms = std::env::var("PARSER_FUZZ_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let seed = std::env::var("PARSER_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    println!("parser fuzz: seed {seed} ({ms} ms per target); replay: make fuzz SEED={seed} TARGET=<name>");
    let mut failures = Vec::new();
    for t in TARGETS {
        let report = fuzz(t, seed, Duration::from_millis(ms));
        println!("parser fuzz: {}: {} inputs", t.name, report.execs);
        if let Some((file, message)) = report.failure {
            failures.push(format!(
                "{}: {message}\n  input: {}\n  reproduce: cargo run -p parser-fuzz -- --target {} --replay {}",
                t.name,
                file.display(),
                t.name,
                file.display()
            ));
        }
    }
    assert!(failures.is_empty(), "parser fuzz (seed {seed}) found:\n{}", failures.join("\n"));
}
