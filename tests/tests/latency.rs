//! The kernel's longest interrupts-off stretch during its longest operations.
//!
//! The bench program booted `latency=on` under `-icount shift=0,sleep=off` (the TSC
//! counts guest instructions): while an unprivileged thread deletes a CNode holding
//! 65,536 caps, revokes a frame whose 4,096 copies each hold an IO mapping and retypes
//! 16 MiB of frames and 256 TCBs in one call each (all preemptible: the kernel returns
//! to user mode between batches, and between passes of a Retype's zeroing and of its
//! object creation), no stretch with
//! interrupts off may exceed its bound below, stated in guest instructions. Meanwhile a
//! higher-priority thread woken by the PIT (ISA IRQ 0, whose due time is known in guest
//! instructions under `-icount`: userland/bench/src/wakeup.rs) measures how late it
//! runs, and that too must stay within its bound.

use abi::exit::ExitCode;
use scenarios::Scenario;

/// Bounds, in guest instructions (the figures of docs/benchmarks.md with headroom):
/// the preemptible operations' batches and passes, and a higher-priority thread's
/// wakeup: the rest of the stretch the interrupt arrives in plus the wakeup path
/// (interrupt entry, signal, switch, return to user mode).
const PREEMPTIBLE_BOUND: u64 = 50_000;
const WAKEUP_BOUND: u64 = 60_000;

/// The three long operations, as the bench names them.
const OPERATIONS: [&str; 3] =
    ["deleting a CNode of 65,536 caps", "revoking 4,096 IO mappings", "retyping 16 MiB (eight 2 MiB frames, one call)"];

fn figure(o: &scenarios::Outcome, row: &str) -> u64 {
    let line = o.expect_line_starting(&format!("bench: {row} min="));
    let value = line.split("min=").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok());
    value.unwrap_or_else(|| panic!("no figure in {line:?}"))
}

#[test]
fn long_operations_keep_interrupts_off_only_within_the_bound() {
    let mut s = Scenario::new("latency").append("init=bench latency=on");
    s.extra_args = vec!["-icount".into(), "shift=0,sleep=off".into()];
    let o = s.run();
    o.expect_serial_contains("kernel: measuring the longest interrupts-off stretch (latency=on")
        .expect_serial_not_contains("KERNEL EXCEPTION")
        .expect_serial_contains("bench: done")
        .expect_exit(ExitCode::Success);
    for what in OPERATIONS {
        let ticks = figure(&o, &format!("longest interrupts-off stretch: {what}"));
        assert!(ticks > 0 && ticks <= PREEMPTIBLE_BOUND, "{what}: {ticks} guest instructions with interrupts off");
    }
    // 256 TCBs, the costliest objects to make (made 32 per pass).
    let tcbs = figure(&o, "longest interrupts-off stretch: retyping 256 TCBs (one call)");
    assert!(tcbs > 0 && tcbs <= PREEMPTIBLE_BOUND, "256 TCBs: {tcbs} guest instructions with interrupts off");
    // The wakeup path alone: the floor of every lateness below.
    let idle = figure(&o, "longest wakeup lateness: the worker idle (the wakeup path alone)");
    assert!(idle > 0 && idle <= WAKEUP_BOUND, "idle wakeup {idle}");
    for what in OPERATIONS {
        let late = figure(&o, &format!("longest wakeup lateness: {what}"));
        assert!(
            late >= idle && late <= WAKEUP_BOUND,
            "{what}: the higher-priority thread ran {late} guest instructions late"
        );
        let samples = o.expect_line_starting(&format!("bench: wakeup lateness {what}: shortest "));
        let n: u64 = samples.rsplit(" of ").next().and_then(|r| r.split_whitespace().next()?.parse().ok()).unwrap_or(0);
        assert!(n >= 10, "{what}: only {n} wakeups measured ({samples:?})");
    }
}

/// Without `latency=on` nothing is measured and KernelStretch says so.
#[test]
fn without_latency_on_nothing_is_measured() {
    let mut s = Scenario::new("latency_off").append("init=bench");
    s.extra_args = vec!["-icount".into(), "shift=0,sleep=off".into()];
    let o = s.run();
    o.expect_serial_contains(
        "bench: the kernel does not measure its stretches (boot with latency=on): latency rows skipped",
    )
    .expect_serial_not_contains("longest interrupts-off stretch:")
    .expect_exit(ExitCode::Success);
}
