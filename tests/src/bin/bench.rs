//! `make bench`: boots the `bench` program under `-icount shift=0,sleep=off` (the TSC
//! then counts guest instructions), prints a table of its results next to the targets
//! and reference figures, and writes bench/results.json.

use std::fmt::Write as _;
use std::process::ExitCode;

use scenarios::{repo_root, Scenario};

/// (benchmark name, target, reference figure and where it comes from).
const CONTEXT: &[(&str, &str, &str)] = &[
    ("null syscall (Yield)", "-", "-"),
    ("IPC Call one-way, inter-AS", "<= 150 (fastpath)", "seL4 fastpath 194"),
    ("IPC ReplyRecv one-way, inter-AS", "<= 170 (fastpath)", "seL4 fastpath 221"),
    ("IPC Call one-way, inter-AS, slowpath (5 MRs)", "-", "seL4 slowpath 720"),
    ("IPC ReplyRecv one-way, inter-AS, slowpath (5 MRs)", "-", "-"),
    ("Signal to higher-prio waiter, inter-AS", "-", "seL4 520"),
    ("Retype 4 KiB frame", "-", "-"),
    ("Map+Unmap 4 KiB frame", "-", "-"),
    ("MapIO+UnmapIO 4 KiB page", "<= 1500", "Linux 6.1 VFIO 8015"),
    ("MapIO+UnmapIO 64 pages, per page", "<= 300", "Linux 6.1 VFIO 3126"),
];

struct Row {
    name: String,
    min: u64,
    median: u64,
    runs: u64,
}

fn parse(line: &str) -> Option<Row> {
    let rest = line.strip_prefix("bench: ")?;
    let (name, stats) = rest.split_once(" min=")?;
    let mut fields = stats.split_whitespace();
    let min = fields.next()?.parse().ok()?;
    let median = fields.next()?.strip_prefix("median=")?.parse().ok()?;
    let runs = fields.next()?.strip_prefix("runs=")?.parse().ok()?;
    Some(Row { name: name.to_string(), min, median, runs })
}

fn main() -> ExitCode {
    let mut scenario = Scenario::new("bench").append("init=bench");
    scenario.extra_args = vec!["-icount".into(), "shift=0,sleep=off".into()];
    let outcome = scenario.run();
    let rows: Vec<Row> = outcome.serial.lines().filter_map(parse).collect();
    if outcome.exit_code != Some(0) || !outcome.serial.contains("bench: done") || rows.is_empty() {
        eprintln!("bench: the benchmark run failed (exit {:?}); serial tail:", outcome.exit_code);
        eprintln!("{}", scenarios::tail(&outcome.serial, 30));
        return ExitCode::FAILURE;
    }
    let mut table = String::new();
    let _ = writeln!(table, "| benchmark (guest instructions) | min | median | runs | target | for scale |");
    let _ = writeln!(table, "|---|---:|---:|---:|---|---|");
    for r in &rows {
        let (target, reference) =
            CONTEXT.iter().find(|(n, _, _)| *n == r.name).map_or(("-", "-"), |(_, t, f)| (*t, *f));
        let _ = writeln!(table, "| {} | {} | {} | {} | {target} | {reference} |", r.name, r.min, r.median, r.runs);
    }
    print!("{table}");
    let mut json = String::from("{\n  \"unit\": \"guest instructions (QEMU TCG, -icount shift=0,sleep=off)\",\n  \"command\": \"make bench\",\n  \"results\": [\n");
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(
            json,
            "    {{\"name\": \"{}\", \"min\": {}, \"median\": {}, \"runs\": {}}}{}",
            r.name,
            r.min,
            r.median,
            r.runs,
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    json.push_str("  ]\n}\n");
    let dir = repo_root().join("bench");
    let _ = std::fs::create_dir_all(&dir);
    if let Err(e) =
        std::fs::write(dir.join("results.json"), json).and_then(|_| std::fs::write(dir.join("results.md"), &table))
    {
        eprintln!("bench: cannot write bench/results.json: {e}");
        return ExitCode::FAILURE;
    }
    println!("bench: wrote bench/results.json and bench/results.md");
    ExitCode::SUCCESS
}
