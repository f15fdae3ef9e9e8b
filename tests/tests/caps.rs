//! Capability-core scenario (`captest`).
//!
//! Capability-core scenario: `captest` as root task exercises every CNode operation,
//! untyped retype, frame and page-table mapping and their error paths, then touches a
//! mapping whose untyped it revoked, which must fault. A Retype preempted half way
//! through its zeroing is attacked by a higher-priority thread holding the untyped.

use abi::exit::ExitCode;
use scenarios::Scenario;

#[test]
fn capability_operations_and_revocation() {
    let o = Scenario::new("captest").append("init=captest loglevel=debug").run();
    o.expect_serial_not_contains("captest: FAIL")
        .expect_serial_contains("captest: ok revoke 600 copies (several kernel batches)")
        // The IO short paths (MapIO, batches) against the general path, call by call.
        .expect_serial_contains("captest: batch paths: 85 of 85 steps agree (47 refusals)")
        // Which of the 85 steps succeed (batchpaths.rs run_steps): e.g. step 42, a batch
        // of 5 crossing into the next leaf table, does; 44, into a region without one,
        // and 29/30, a slot named twice in one run or across two, do not; of the frame
        // route's steps (69..=84) only 74..=76 (an empty slot, the IOSpace cap, an
        // unresolvable cptr) are refused.
        .expect_serial_contains("captest: batch paths: steps that succeeded 0x1fe3fe80e5cc0000de0585")
        // The frame route (commit 8459678): a warm domain cache never makes a dead
        // IOSpace's root page walkable, and the route returns the general path's registers.
        .expect_serial_contains("captest: route: IOSpace killed by Revoke of its untyped, warm cache")
        .expect_serial_contains("captest: route: IOSpace killed by Delete of the CNode holding it, warm cache")
        .expect_serial_contains("captest: ok attack: a warm domain cache does not make a dead IOSpace's root page walkable")
        .expect_serial_contains("captest: ok attack: UnmapIO leaves the registers as the general path")
        .expect_serial_contains("captest: ok attack: GetAddress through the route: registers")
        .expect_serial_contains("captest: ok the IO short paths answer every step as the general path")
        .expect_serial_contains("debug: revoke: preempted after 16 deletions; restarting")
        .expect_serial_contains("captest: ok write then read back through the mapping")
        .expect_serial_contains("captest: ok boot image: the copy still cannot map writable -> InsufficientRights")
        .expect_serial_contains("captest: ok boot image: second mapping reads the same bytes")
        .expect_serial_contains("captest: ok boot image: a frame cap cannot be retyped -> IllegalOperation")
        .expect_serial_contains("captest: ok delete the outermost: every nested CNode goes with it")
        .expect_serial_contains(
            "captest: ok Configure that would delete a thread's last CSpace cap is refused -> IllegalOperation",
        )
        .expect_serial_contains("captest: ok deleting the thread deletes its CNode")
        .expect_serial_contains("captest: ok delete the tree's outer cap in one call")
        .expect_serial_contains("debug: delete: preempted after 64 units of work; restarting")
        .expect_serial_contains("captest: ok the other thread kept running during the delete (timer ticks arrived)")
        .expect_serial_contains("captest: ok every object of the tree is gone: its untyped is whole again")
        .expect_serial_contains(
            "captest: ok zombie: the deleter stopped mid-Delete: a Zombie holds O's slot -> IllegalOperation",
        )
        .expect_serial_contains(
            "captest: ok zombie: retype of C's untyped while C is being destroyed -> NotEnoughMemory",
        )
        .expect_serial_contains("captest: ok zombie: revoke C's untyped: it finishes the deletion it meets")
        .expect_serial_contains("captest: ok zombie: C's untyped is whole again")
        .expect_serial_contains("captest: ok zombie: the frame's untyped is free and its old address unmapped")
        .expect_serial_contains("captest: ok zombie: its restarted Delete finds the slot empty and returns success")
        .expect_serial_contains("captest: ok retype-preempt: the PIT interrupted the Retype while it was half done")
        .expect_serial_contains(
            "captest: ok retype-preempt: half done: a 4 KiB frame retyped from the same untyped reads zero",
        )
        .expect_serial_contains("captest: ok retype-preempt: half done: move the untyped away and back")
        .expect_serial_contains(
            "captest: ok retype-preempt: its 2 MiB frames read zero in every word (none of the pattern)",
        )
        .expect_serial_contains("captest: ok retype-preempt: untyped deleted mid-Retype: the restarted call fails")
        .expect_serial_contains("captest: ok retype-preempt: creation: half made, the TCBs made are the last ones")
        .expect_serial_contains(
            "captest: ok retype-preempt: creation: moved away and back, the Retype goes on and succeeds",
        )
        .expect_serial_contains(
            "captest: ok retype-preempt: creation: its lowest TCB deleted, the restarted call is a new Retype -> DeleteFirst",
        )
        .expect_serial_contains("captest: ok retype-confuse: the PIT woke us while the child untypeds were half made")
        .expect_serial_contains(
            "captest: ok retype-confuse: 256 frames posing as the continuation of the 128-untyped Retype -> DeleteFirst",
        )
        .expect_serial_contains("captest: ok revoked frame cap is gone -> FailedLookup")
        .expect_serial_contains("captest: all checks passed; touching the revoked mapping at 0x200000000000 must fault")
        .expect_serial_contains("USER FAULT in 'captest': #PF page fault (vector 14)")
        .expect_serial_contains("cr2=0x200000000000")
        .expect_exit(ExitCode::RootTaskFault);
    let oks = o.lines_starting("captest: ok ").len();
    assert!(oks >= 80, "only {oks} checks ran");
}
