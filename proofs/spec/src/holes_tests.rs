//! Tests of the CSpace and thread layers (Cspace.v, Threads.v).
//!
//! The Coq examples, and random traces checked against the invariant (T10) and
//! T11/T12 step by step. Built with `mutant-hole2`, `mutant-hole12-rax` or
//! `mutant-hole12-rights` they fail.

use proptest::prelude::*;

use crate::cspace::*;
use crate::threads::*;

#[test]
fn cspace_boot_state_and_hole2_hazard() {
    let s = cinit();
    cinv(&s).unwrap();
    // hole2_hazard_refused: slot 1 holds the last cap to the CNode holding slot 20.
    assert_eq!(creplace(&s, 1, 20), s, "TcbConfigure must refuse the hazard");
    // hole2_ordinary_update.
    let t = creplace(&s, 30, 20);
    assert_eq!(t.cslots.get(&30), Some(&Ccap::CcFrame(7)));
    assert_eq!(t.cpar.get(&30), Some(&20));
    cinv(&t).unwrap();
}

fn cop() -> impl Strategy<Value = Cop> {
    // Slots 0..3 of the boot CNode, 20..23 of CNode 100, 30..33 of TCB 200, and two
    // more CNodes' slots (40.., 50..) that no cap names at first.
    let slot = prop_oneof![0u64..4, 20u64..24, 30u64..34, 40u64..42, 50u64..52];
    prop_oneof![
        (slot.clone(), slot.clone()).prop_map(|(a, b)| Cop::CCopy(a, b)),
        slot.clone().prop_map(Cop::CDelete),
        (slot.clone(), slot).prop_map(|(a, b)| Cop::CReplace(a, b)),
    ]
}

/// A richer boot state: CNodes at 100 (two caps), 300 and 400 (slots 40.., 50..).
fn cboot() -> CState {
    let mut s = cinit();
    s.cslots.insert(3, Ccap::CcCNode(300));
    s.cslots.insert(21, Ccap::CcCNode(400));
    s.cslots.insert(22, Ccap::CcEndpoint(8));
    for x in 20..24 {
        s.home.insert(x, 100);
    }
    for x in 30..34 {
        s.home.insert(x, 200);
    }
    for x in 40..42 {
        s.home.insert(x, 300);
    }
    for x in 50..52 {
        s.home.insert(x, 400);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// T10, executed: every state a trace reaches satisfies the invariant.
    #[test]
    fn cspace_random_traces_keep_the_invariant(trace in proptest::collection::vec(cop(), 1..120)) {
        let mut s = cboot();
        cinv(&s).unwrap();
        for (i, &o) in trace.iter().enumerate() {
            s = cstep(&s, o);
            if let Err(e) = cinv(&s) {
                panic!("{e} after step {i} ({o:?}) of {trace:?}");
            }
        }
    }

    /// T11 and T12, executed on every step of random traces.
    #[test]
    fn threads_random_traces_keep_t11_and_t12(trace in proptest::collection::vec(top(), 1..120)) {
        let mut s = tinit();
        s.tcaps.insert((2, 0), Tcap::TcTcb(3));
        s.tcaps.insert((3, 1), Tcap::TcEndpoint(9, 6, full()));
        for (i, &o) in trace.iter().enumerate() {
            let n = tstep(&s, o);
            for (&t, &th) in &s.threads {
                let th2 = n.threads[&t];
                if th2.th_rax != th.th_rax {
                    let ok = matches!(o, Top::TRun(u, _) if u == t)
                        || matches!(o, Top::TWriteRegs(u, x, _) if s.tcaps.get(&(u, x)) == Some(&Tcap::TcTcb(t)))
                        || (matches!(th.th_state, Thstate::ThSending(_, _, false)) && th2.th_rax == err_cancelled());
                    assert!(ok, "T11: thread {t}'s rax {} -> {} by step {i} ({o:?})", th.th_rax, th2.th_rax);
                }
                if let Thstate::ThSending(ep, b, _) = th.th_state {
                    if th2.th_state != th.th_state {
                        let ok = o == Top::TDeleteEp(ep)
                            || matches!(o, Top::TCancel(u, x) if matches!(s.tcaps.get(&(u, x)),
                                Some(&Tcap::TcEndpoint(e, bb, r)) if e == ep && bb == b && all_rights(r)));
                        assert!(ok, "T12: thread {t} left the send queue of {ep} by step {i} ({o:?})");
                    }
                }
            }
            s = n;
        }
    }
}

fn top() -> impl Strategy<Value = Top> {
    let t = 1u64..4;
    let x = 0u64..2;
    prop_oneof![
        (t.clone(), x.clone()).prop_map(|(t, x)| Top::TSend(t, x)),
        (t.clone(), 8u64..10, 5u64..7).prop_map(|(t, e, b)| Top::TFault(t, e, b)),
        (t.clone(), x.clone()).prop_map(|(t, x)| Top::TCancel(t, x)),
        (8u64..10).prop_map(Top::TDeleteEp),
        (t.clone(), 0u64..100).prop_map(|(t, v)| Top::TRun(t, v)),
        (t, x, 0u64..100).prop_map(|(t, x, v)| Top::TWriteRegs(t, x, v)),
    ]
}

#[test]
fn threads_run_of_threads_v() {
    let b = tblocked();
    // run_send_only_refused.
    assert_eq!(tstep(&b, Top::TCancel(1, 1)), b, "a send-only cap must not cancel sends");
    // run_cancel_fault_sender.
    let c = tstep(&b, Top::TCancel(1, 0));
    assert_eq!(c.threads[&2], Thread { th_state: Thstate::ThRestart, th_rax: 42 }, "the fault sender's rax");
    assert_eq!(c.threads[&3], Thread { th_state: Thstate::ThRestart, th_rax: err_cancelled() });
}
