//! The kernel's longest interrupts-off stretch during its longest operations.
//!
//! The bench program booted `latency=on` under `-icount shift=0,sleep=off` (the TSC
//! counts guest instructions): while an unprivileged thread deletes a CNode holding
//! 65,536 caps and revokes a frame whose 4,096 copies each hold an IO mapping (both
//! preemptible: the kernel returns to user mode between batches), and retypes 16 MiB of
//! frames in one call (zeroed in that call), no stretch with interrupts off may exceed
//! its bound below, stated in guest instructions. A higher-priority thread woken by an
//! interrupt meanwhile is therefore served within the bound plus its own wakeup path.

use abi::exit::ExitCode;
use scenarios::Scenario;

/// Bounds, in guest instructions (the figures of docs/benchmarks.md with headroom):
/// the preemptible operations' batches, and one 16 MiB zeroing.
const PREEMPTIBLE_BOUND: u64 = 50_000;
const RETYPE_16M_BOUND: u64 = 2_500_000;

fn stretch(o: &scenarios::Outcome, what: &str) -> u64 {
    let line = o.expect_line_starting(&format!("bench: longest interrupts-off stretch: {what} min="));
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
    for what in ["deleting a CNode of 65,536 caps", "revoking 4,096 IO mappings"] {
        let ticks = stretch(&o, what);
        assert!(ticks > 0 && ticks <= PREEMPTIBLE_BOUND, "{what}: {ticks} guest instructions with interrupts off");
    }
    let ticks = stretch(&o, "retyping 16 MiB (eight 2 MiB frames, one call)");
    assert!(ticks > 0 && ticks <= RETYPE_16M_BOUND, "retype of 16 MiB: {ticks} guest instructions with interrupts off");
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
