//! `make bench`: boots the `bench` program and reports its results.
//!
//! `make bench`: boots the `bench` program under `-icount shift=0,sleep=off` (the TSC
//! then counts guest instructions), prints a table of its results next to the targets
//! and reference figures, and the kernel's memory use read from its boot log, plus a
//! driver restart in the composed systems/test-restart.toml (fault -> serving), the
//! drivers' rows (systems/bench-e1000e.toml: frames through the e1000e's rings;
//! systems/bench-nvme.toml: 4 KiB NVMe transfers), and writes bench/results.json
//! (and results.md).
//!
//! `BENCH_ONLY=e1000e,virtio-net make bench` runs only those parts (of `core`, `restart`,
//! `e1000e`, `virtio-net`, `appliance`, `large-pages` (mapping 1 GiB as 1 GiB,
//! 512 x 2 MiB and 262,144 x 4 KiB frames, with 3 GiB of RAM), `rx-e1000e`, `rx-virtio-net` (frames received
//! from a peer on a hub: systems/bench-rx-*.toml), `nvme`, `vm` (the VMM's guest:
//! an exit round trip and an injected interrupt, `init=vmm-bench`), `latency` (the
//! kernel's longest interrupts-off stretches, `latency=on`, and a higher-priority
//! thread's wakeup lateness)); every other row (and the memory table, without
//! `core`) is carried over from the committed bench/results.json, marked `kept`.

use std::fmt::Write as _;
use std::process::ExitCode;

use abi::object::ObjectType;
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
    ("iommu-server dma_alloc 4 KiB (reply with cap, CPU map)", "-", "-"),
    ("iommu-server dma_free 4 KiB (unmap IO, revoke)", "-", "-"),
    ("iommu-server dma_alloc+dma_free 4 KiB", "-", "-"),
    (RESTART_ROW, "-", "-"),
    (
        "e1000e via rings: 64 B frame sent (TX entry -> TX_FREE), per frame",
        "-",
        "Linux 6.1 UDP sendto 64 B via e1000e 4640 (min)",
    ),
    ("e1000e via rings: 64 B frame sent and received back (loopback), per frame", "-", "-"),
    ("e1000e via rings: 1500 B frame sent (TX entry -> TX_FREE), per frame", "-", "-"),
    ("e1000e via rings: 1500 B frame sent and received back (loopback), per frame", "-", "-"),
    (
        "virtio-net via rings: 64 B frame sent (TX entry -> TX_FREE), per frame",
        "-",
        "Linux 6.1 UDP sendto 64 B via virtio-net 5550 (min)",
    ),
    ("virtio-net via rings: 1500 B frame sent (TX entry -> TX_FREE), per frame", "-", "-"),
    ("e1000e via rings: IOMMU operations (leaf writes + IOTLB invalidations) per frame, rounded up", "0", "-"),
    ("virtio-net via rings: IOMMU operations (leaf writes + IOTLB invalidations) per frame, rounded up", "0", "-"),
    (
        APPLIANCE_ROW,
        "< 5108 (Linux median), aim 2554",
        "Linux 6.1 UDP sendto 64 B via e1000e 4640 (min) / 5108 (median)",
    ),
    ("NVMe 4 KiB write (submit -> completion)", "-", "-"),
    ("NVMe 4 KiB read (submit -> completion)", "-", "Linux 6.1 O_DIRECT pread 15785 (min)"),
];

/// Boots `systems/<system>.toml` (the kernel ELF with the image packed in) with
/// `devices` under icount and collects its components' `bench:` lines (a client's
/// "NIC via rings" rows named after `nic`); `None` (after
/// saying why) if the system did not end cleanly or printed none.
fn driver_rows(system: &str, devices: &[&str], nic: &str) -> Option<Vec<Row>> {
    let elf = scenarios::systems::elf_for(system, &format!("bench_{system}"));
    let mut s = Scenario::new(&format!("bench_{system}")).append("iommu=allow-unremapped-dma");
    s.kernel = elf;
    s.extra_args = devices.iter().map(|a| a.to_string()).collect();
    s.extra_args.extend(["-icount".to_string(), "shift=0,sleep=off".to_string()]);
    s.timeout = std::time::Duration::from_secs(300);
    let o = s.run();
    // The client does not know which driver serves it: its rows say "NIC".
    let mut rows: Vec<Row> = o.serial.lines().filter_map(parse).collect();
    for r in &mut rows {
        if let Some(rest) = r.name.strip_prefix("NIC via rings: ") {
            r.name = format!("{nic} via rings: {rest}");
        }
    }
    let ended = o.serial.contains(&format!("init: system '{system}': every component stopped"));
    if !ended || rows.is_empty() || o.serial.contains("FAIL") {
        eprintln!("bench: {system} did not finish cleanly; serial tail:\n{}", scenarios::tail(&o.serial, 30));
        return None;
    }
    Some(rows)
}

/// The latency rows' common starts (userland/bench/src/latency.rs): the kernel's
/// stretches, and how late a higher-priority thread woken by the PIT runs.
const LATENCY_PREFIX: &str = "longest interrupts-off stretch: ";
const WAKEUP_PREFIX: &str = "longest wakeup lateness: ";

/// The kernel's longest interrupts-off stretch during its longest operations: the
/// bench program booted with `latency=on` (which costs every slow-path trap a few
/// instructions, so the other rows come from the boot without it).
fn latency_rows() -> Option<Vec<Row>> {
    let mut s = Scenario::new("bench_latency").append("init=bench latency=on");
    s.extra_args = vec!["-icount".into(), "shift=0,sleep=off".into()];
    let o = s.run();
    let rows: Vec<Row> = o
        .serial
        .lines()
        .filter_map(parse)
        .filter(|r| r.name.starts_with(LATENCY_PREFIX) || r.name.starts_with(WAKEUP_PREFIX))
        .collect();
    if rows.len() != 8 || !o.serial.contains("bench: done") || o.serial.contains("FAIL") {
        eprintln!("bench: the latency run failed; serial tail:\n{}", scenarios::tail(&o.serial, 30));
        return None;
    }
    Some(rows)
}

/// Rows of the `large-pages` part.
const LARGE_PAGES_PREFIX: &str = "map 1 GiB ";

/// Mapping 1 GiB as 1 GiB, 512 x 2 MiB and 262,144 x 4 KiB, for a device and for the
/// CPU: the bench program with 3 GiB of RAM (userland/bench/src/large_pages.rs).
fn large_page_rows() -> Option<Vec<Row>> {
    let mut s = Scenario::new("bench_large_pages").append("init=bench").memory(3072);
    s.extra_args = vec!["-icount".into(), "shift=0,sleep=off".into()];
    s.timeout = std::time::Duration::from_secs(600);
    let o = s.run();
    let rows: Vec<Row> =
        o.serial.lines().filter_map(parse).filter(|r| r.name.starts_with(LARGE_PAGES_PREFIX)).collect();
    if rows.len() != 6 || !o.serial.contains("bench: done") || o.serial.contains("FAIL") {
        eprintln!("bench: the large-page run failed; serial tail:\n{}", scenarios::tail(&o.serial, 30));
        return None;
    }
    Some(rows)
}

/// The VMM's rows (`init=vmm-bench`): its guest's OUTs, each a round trip through the
/// VMM, and HLTs each ended by an interrupt the VMM injects.
fn vm_rows() -> Option<Vec<Row>> {
    let mut s = Scenario::new("bench_vm").append("init=vmm-bench");
    s.extra_args = vec!["-icount".into(), "shift=0,sleep=off".into()];
    let o = s.run();
    let rows: Vec<Row> = o.serial.lines().filter_map(parse).collect();
    if rows.len() != 2 || !o.serial.contains("vmm: all checks passed") {
        eprintln!("bench: the VMM's benchmark failed; serial tail:\n{}", scenarios::tail(&o.serial, 30));
        return None;
    }
    Some(rows)
}

/// The appliance's row (systems/bench-appliance.toml): 64-byte UDP datagrams from an
/// application in a user partition through smoltcp, its copier, the filter, the bridge
/// and the e1000e driver to the NIC, timed by the driver from the application's mark
/// (`capring::mark`). The system serves on after the application is done: it stops at
/// the driver's `bench:` line.
const APPLIANCE_ROW: &str =
    "appliance: 64 B UDP datagram sent by a partition (app, smoltcp, copier, filter, bridge, e1000e driver, NIC), per datagram";

fn appliance_row() -> Option<Row> {
    let pick = |name: &str| name.ends_with("marked batch from the far end to the device, per frame");
    netbench_row("bench-appliance", pick, APPLIANCE_ROW)
}

/// Boots `system` (an appliance path whose `netbench` partition prints `netbench:
/// done` when it is finished; the system serves on) under icount on a restricted user
/// network (what the guest sends to the host is dropped, so no ICMP error comes back
/// per datagram) and returns the `bench:` row `pick` accepts, named `name`.
fn netbench_row(system: &str, pick: impl Fn(&str) -> bool, name: &str) -> Option<Row> {
    let elf = scenarios::systems::elf_for(system, &format!("bench_{system}"));
    let mut s = Scenario::new(&format!("bench_{system}")).append("iommu=allow-unremapped-dma");
    s.kernel = elf;
    s.extra_args = ["-netdev", "user,id=n0,restrict=on", "-device", "e1000e,netdev=n0", "-icount", "shift=0,sleep=off"]
        .map(String::from)
        .to_vec();
    s.stop_at = vec!["netbench: done".to_string()];
    s.timeout = std::time::Duration::from_secs(300);
    let o = s.run();
    match o.serial.lines().filter_map(parse).find(|r| pick(&r.name)) {
        Some(r) if !o.serial.contains("FAIL") => Some(Row { name: name.to_string(), ..r }),
        _ => {
            eprintln!("bench: {system} printed no result; serial tail:\n{}", scenarios::tail(&o.serial, 30));
            None
        }
    }
}

/// The appliance's HTTP row (systems/bench-appliance-http.toml): whole requests from
/// a client partition to httpd, the NIC in MAC loopback; netbench-http times them.
const HTTP_ROW: &str =
    "appliance: HTTP GET / served by the httpd partition (client partition, connect to close, NIC in loopback), per request";

fn http_row() -> Option<Row> {
    netbench_row("bench-appliance-http", |name| name.starts_with("appliance: HTTP GET /"), HTTP_ROW)
}

/// The composed-system row: management gets a DMA fault, resets the device and has
/// init rebuild the driver, which sets up its device again (systems/test-restart.toml).
const RESTART_ROW: &str = "driver restart: DMA fault at management -> new instance serving";

/// Boots systems/test-restart.toml under icount; one sample per restart: the TSC of
/// management's `fault received` line to the next `serving` line of the driver.
fn restart_row() -> Option<Row> {
    let image = scenarios::systems::image_for("test-restart");
    let mut s = Scenario::new("bench_restart").append("iommu=allow-unremapped-dma").initrd(Some(image));
    s.extra_args = ["-device", "edu", "-icount", "shift=0,sleep=off"].map(String::from).to_vec();
    s.timeout = std::time::Duration::from_secs(180);
    let o = s.run();
    let tsc = |line: &str| line.rsplit("tsc ").next().and_then(|t| t.trim().parse::<u64>().ok());
    let mut samples = Vec::new();
    let mut fault = None;
    for line in o.serial.lines() {
        if line.starts_with("management: fault received at tsc ") {
            fault = tsc(line);
        } else if line.starts_with("edudrv: generation ") && line.contains("serving at tsc ") {
            if let (Some(f), Some(t)) = (fault.take(), tsc(line)) {
                samples.push(t.saturating_sub(f));
            }
        }
    }
    if samples.is_empty() {
        eprintln!("bench: no restart measured; serial tail:\n{}", scenarios::tail(&o.serial, 30));
        return None;
    }
    samples.sort_unstable();
    let (min, median) = (samples[0], samples[samples.len() / 2]);
    Some(Row { name: RESTART_ROW.to_string(), min, median, runs: samples.len() as u64 })
}

/// Rows that count guest instructions spent waiting for a device QEMU emulates in
/// host time: they move with the host (NVMe: 443 when the command is done by the
/// driver's first look, ~17,000 when it is not), so their change is shown, not flagged.
const HOST_TIMED: &[&str] = &["NVMe 4 KiB write (submit -> completion)", "NVMe 4 KiB read (submit -> completion)"];

/// The committed figures (`bench/results.json`, as this runner writes it: one result
/// per line): name -> min. Empty if there is none.
fn committed(json: &str) -> Vec<(String, u64)> {
    committed_rows(json).into_iter().map(|r| (r.name, r.min)).collect()
}

/// The committed rows, whole (name, min, median, runs).
fn committed_rows(json: &str) -> Vec<Row> {
    json.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("{\"name\": \"")?;
            let (name, rest) = rest.split_once("\", \"min\": ")?;
            let mut numbers =
                rest.split(", \"").map(|f| f.rsplit(' ').next().unwrap_or("").trim_end_matches(['}', ',']));
            let min = numbers.next()?.parse().ok()?;
            let median = numbers.next()?.parse().ok()?;
            let runs = numbers.next()?.parse().ok()?;
            Some(Row { name: name.to_string(), min, median, runs })
        })
        .collect()
}

/// The committed memory table: (what, bytes).
fn committed_memory(json: &str) -> Vec<(String, u64)> {
    json.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("{\"name\": \"")?;
            let (name, rest) = rest.split_once("\", \"bytes\": ")?;
            Some((name.to_string(), rest.trim_end_matches([',', '}']).trim().parse().ok()?))
        })
        .collect()
}

/// Which part of the run (`BENCH_ONLY`) makes the row `name`.
fn part_of(name: &str) -> &'static str {
    let received = name.contains(" frame received (");
    if received && name.starts_with("e1000e via rings: ") {
        "rx-e1000e"
    } else if received && name.starts_with("virtio-net via rings: ") {
        "rx-virtio-net"
    } else if name.starts_with("e1000e via rings: ") {
        "e1000e"
    } else if name.starts_with("virtio-net via rings: ") {
        "virtio-net"
    } else if name.starts_with("NVMe ") {
        "nvme"
    } else if name.starts_with("VM ") {
        "vm"
    } else if name.starts_with(LATENCY_PREFIX) || name.starts_with(WAKEUP_PREFIX) {
        "latency"
    } else if name.starts_with(LARGE_PAGES_PREFIX) {
        "large-pages"
    } else if name == RESTART_ROW {
        "restart"
    } else if name == APPLIANCE_ROW || name == HTTP_ROW {
        "appliance"
    } else {
        "core"
    }
}

/// The change of `now` against `before` in percent, and whether it is a regression
/// (more than 5% more guest instructions).
fn change(before: u64, now: u64) -> (f64, bool) {
    let pct = if before == 0 { 0.0 } else { (now as f64 - before as f64) * 100.0 / before as f64 };
    (pct, pct > 5.0)
}

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

/// Kernel memory from the boot log: (what, bytes).
fn memory_rows(serial: &str) -> Vec<(String, u64)> {
    let mut rows = Vec::new();
    // "kernel: image 0x000000200000..0x00000024e000, boot module ..."
    let image = serial.lines().find_map(|l| l.strip_prefix("kernel: image ")).and_then(|rest| {
        let (range, _) = rest.split_once(',')?;
        let (start, end) = range.split_once("..")?;
        let parse = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
        Some(parse(end)? - parse(start)?)
    });
    if let Some(bytes) = image {
        rows.push(("kernel image (text, data, bss, boot stack)".to_string(), bytes));
    }
    // "kernel: 460 KiB used by boot structures"
    let boot = serial
        .lines()
        .find_map(|l| l.strip_prefix("kernel: ")?.strip_suffix(" KiB used by boot structures")?.parse::<u64>().ok());
    if let Some(kib) = boot {
        rows.push((
            "boot structures (kernel page tables, VT-d root/context tables and queues, live-root bitmaps, root task)"
                .to_string(),
            kib * 1024,
        ));
    }
    for (name, object) in
        [("TCB", ObjectType::Tcb), ("endpoint", ObjectType::Endpoint), ("notification", ObjectType::Notification)]
    {
        if let Some(bits) = object.size_bits(0) {
            rows.push((format!("one {name} (retyped from user untyped)"), 1 << bits));
        }
    }
    rows
}

fn main() -> ExitCode {
    let only = std::env::var("BENCH_ONLY").ok().filter(|o| !o.trim().is_empty());
    let runs = |part: &str| only.as_deref().is_none_or(|o| o.split(',').any(|p| p.trim() == part));
    let committed_json = std::fs::read_to_string(repo_root().join("bench/results.json")).unwrap_or_default();
    let mut rows: Vec<Row> = Vec::new();
    let mut memory = committed_memory(&committed_json);
    if runs("core") {
        let mut scenario = Scenario::new("bench").append("init=bench");
        scenario.extra_args = vec!["-icount".into(), "shift=0,sleep=off".into()];
        let outcome = scenario.run();
        rows = outcome.serial.lines().filter_map(parse).collect();
        if outcome.exit_code != Some(0) || !outcome.serial.contains("bench: done") || rows.is_empty() {
            eprintln!("bench: the benchmark run failed (exit {:?}); serial tail:", outcome.exit_code);
            eprintln!("{}", scenarios::tail(&outcome.serial, 30));
            return ExitCode::FAILURE;
        }
        memory = memory_rows(&outcome.serial);
        if memory.len() < 2 {
            eprintln!("bench: the boot log lacks the kernel's memory lines");
            return ExitCode::FAILURE;
        }
    }
    if runs("vm") {
        let Some(vm) = vm_rows() else { return ExitCode::FAILURE };
        rows.extend(vm);
    }
    if runs("large-pages") {
        let Some(large) = large_page_rows() else { return ExitCode::FAILURE };
        rows.extend(large);
    }
    if runs("latency") {
        let Some(latency) = latency_rows() else { return ExitCode::FAILURE };
        rows.extend(latency);
    }
    if runs("restart") {
        let Some(restart) = restart_row() else { return ExitCode::FAILURE };
        rows.push(restart);
    }
    if runs("e1000e") {
        let nic = ["-netdev", "user,id=n0", "-device", "e1000e,netdev=n0"];
        let Some(nic_rows) = driver_rows("bench-e1000e", &nic, "e1000e") else { return ExitCode::FAILURE };
        rows.extend(nic_rows);
    }
    if runs("virtio-net") {
        let virtio =
            ["-netdev", "user,id=n0", "-device", "virtio-net-pci,iommu_platform=on,disable-legacy=on,netdev=n0"];
        let Some(virtio_rows) = driver_rows("bench-virtio-net", &virtio, "virtio-net") else {
            return ExitCode::FAILURE;
        };
        rows.extend(virtio_rows);
    }
    if runs("appliance") {
        let Some(appliance) = appliance_row() else { return ExitCode::FAILURE };
        rows.push(appliance);
        let Some(http) = http_row() else { return ExitCode::FAILURE };
        rows.push(http);
    }
    // Frames received: the NIC under test (00:05.0) on a hub with the sender's 82574.
    let peer = ["-device", "e1000e,netdev=h0,addr=04.0,mac=52:54:00:00:00:0a", "-netdev", "hubport,id=h0,hubid=0"];
    let hub = ["-netdev", "hubport,id=h1,hubid=0", "-device"];
    for (part, nic, device) in [
        ("rx-e1000e", "e1000e", "e1000e,netdev=h1,addr=05.0,mac=52:54:00:00:00:0b"),
        (
            "rx-virtio-net",
            "virtio-net",
            "virtio-net-pci,iommu_platform=on,disable-legacy=on,netdev=h1,addr=05.0,mac=52:54:00:00:00:0b",
        ),
    ] {
        if runs(part) {
            let args: Vec<&str> = peer.iter().chain(&hub).copied().chain([device]).collect();
            let Some(rx_rows) = driver_rows(&format!("bench-{part}"), &args, nic) else { return ExitCode::FAILURE };
            rows.extend(rx_rows);
        }
    }
    if runs("nvme") {
        let disk = scenarios::scenario_dir().join("bench-nvme-disk.img");
        if let Err(e) = std::fs::write(&disk, vec![0u8; 1 << 20]) {
            eprintln!("bench: cannot write {}: {e}", disk.display());
            return ExitCode::FAILURE;
        }
        let drive = format!("file={},if=none,id=d0,format=raw", disk.display());
        let nvme = ["-drive", drive.as_str(), "-device", "nvme,serial=bench,drive=d0"];
        let Some(nvme_rows) = driver_rows("bench-nvme", &nvme, "-") else { return ExitCode::FAILURE };
        rows.extend(nvme_rows);
    }
    // Parts not run keep their committed rows, in the committed order.
    let mut kept = Vec::new();
    if only.is_some() {
        let mut all = Vec::new();
        for old in committed_rows(&committed_json) {
            if let Some(i) = rows.iter().position(|r| r.name == old.name) {
                all.push(rows.remove(i));
            } else if !runs(part_of(&old.name)) {
                kept.push(old.name.clone());
                all.push(old);
            }
        }
        all.append(&mut rows);
        rows = all;
    }
    // Against the committed run: the change of each row's minimum, > 5% worse flagged.
    let before = committed(&committed_json);
    let mut worse = Vec::new();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| benchmark (guest instructions) | min | median | runs | vs committed min | target | for scale |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---|---|");
    for r in &rows {
        let (target, reference) =
            CONTEXT.iter().find(|(n, _, _)| *n == r.name).map_or(("-", "-"), |(_, t, f)| (*t, *f));
        let versus = match before.iter().find(|(n, _)| *n == r.name) {
            _ if kept.contains(&r.name) => "kept".to_string(),
            Some(&(_, old)) => {
                let (pct, regressed) = change(old, r.min);
                let regressed = regressed && !HOST_TIMED.contains(&r.name.as_str());
                if regressed {
                    worse.push(format!("{} ({old} -> {}, {pct:+.1}%)", r.name, r.min));
                }
                format!("{pct:+.1}%{}", if regressed { " WORSE" } else { "" })
            }
            None => "new".to_string(),
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {versus} | {target} | {reference} |",
            r.name, r.min, r.median, r.runs
        );
    }
    let _ = writeln!(table, "\n| memory (RAM 256 MiB) | bytes |\n|---|---:|");
    for (what, bytes) in &memory {
        let _ = writeln!(table, "| {what} | {bytes} |");
    }
    print!("{table}");
    if worse.is_empty() {
        println!("bench: no row more than 5% worse than the committed bench/results.json");
    } else {
        println!("bench: {} rows more than 5% worse than the committed bench/results.json:", worse.len());
        for w in &worse {
            println!("bench:   WORSE {w}");
        }
    }
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
    json.push_str("  ],\n  \"memory_bytes\": [\n");
    for (i, (what, bytes)) in memory.iter().enumerate() {
        let comma = if i + 1 < memory.len() { "," } else { "" };
        let _ = writeln!(json, "    {{\"name\": \"{what}\", \"bytes\": {bytes}}}{comma}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_rows_are_read_and_regressions_flagged() {
        let json = "{\n  \"results\": [\n    {\"name\": \"IPC Call, inter-AS\", \"min\": 124, \"median\": 125, \"runs\": 65},\n    {\"name\": \"x\", \"min\": 10, \"median\": 10, \"runs\": 1}\n  ]\n}\n";
        assert_eq!(committed(json), [("IPC Call, inter-AS".to_string(), 124), ("x".to_string(), 10)]);
        assert!(!change(124, 130).1, "+4.8% is not flagged");
        assert!(change(124, 131).1, "+5.6% is flagged");
        assert!(!change(124, 100).1, "better is never flagged");
        assert!(committed("not json").is_empty());
        let rows = committed_rows(json);
        assert_eq!((rows[0].min, rows[0].median, rows[0].runs), (124, 125, 65));
        let memory = "    {\"name\": \"one TCB (retyped from user untyped)\", \"bytes\": 2048},\n";
        assert_eq!(committed_memory(memory), [("one TCB (retyped from user untyped)".to_string(), 2048)]);
        assert_eq!(part_of("virtio-net via rings: 64 B frame sent (TX entry -> TX_FREE), per frame"), "virtio-net");
        assert_eq!(part_of("Retype 4 KiB frame"), "core");
        assert_eq!(part_of("e1000e via rings: 64 B frame received (device completion -> x), per frame"), "rx-e1000e");
    }
}
