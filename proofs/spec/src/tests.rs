//! Tests of the mirror: Init.v's run, and the invariant over random traces.
//!
//! The random traces interleave every operation with maximal fills, random evictions,
//! DMA (translated or faulting) and MSIs, and check `inv` after every step: the
//! executable counterpart of T1. Built with a `mutant-*` feature they must fail.

use proptest::prelude::*;

use crate::drive::{fill_all, init, op_of, reach, revoke_all, Gen, MIX};
use crate::hw::{dma_ok, hw, msi_ok, Hw};
use crate::invariant::inv;
use crate::model::*;
use crate::step::{step, Op};

const RO: Rights = Rights { rd: true, wr: false };

#[test]
fn init_satisfies_the_invariant_and_the_run_dmas() {
    let s0 = init();
    inv(&s0).unwrap();
    let run = [
        Op::Retype(0, Kind::KFrame, 10, 0),
        Op::Retype(0, Kind::KIoSpace, 11, 5),
        Op::Retype(0, Kind::KIoPageTable, 12, 0),
        Op::MapIoTable(12, 11, 3),
        Op::MapIo(10, 11, 3, 7, RO),
        Op::Assign(11, 2),
    ];
    let s = run.iter().fold(s0, |s, &o| step(&s, o));
    inv(&s).unwrap();
    // Init.v's after_run_* lemmas and run_dma_* examples.
    assert!(s.ctxc.is_empty() && s.iotlb.is_empty());
    assert_eq!(s.ctx.get(&8), Some(&(17, 5)));
    assert_eq!(s.ctx.get(&16), None);
    assert_eq!(walk(&s, 17, 3, 7), Some((16, RO)));
    assert!(dma_ok(&s, 8, 3, 7, RO, 16));
    assert!(!dma_ok(&s, 8, 3, 7, Rights { rd: false, wr: true }, 16));
    assert!(reach(&s, 16, 3, 7).is_empty());
    // Unmapping leaves nothing reachable, even after the IOTLB cached it.
    let s = fill_all(&s);
    assert_eq!(s.iotlb.len(), 1);
    let s = step(&s, Op::UnmapIo(10));
    inv(&s).unwrap();
    assert!(reach(&s, 8, 3, 7).is_empty(), "{s:?}");
}

/// Issue 9 hole 13 (an untyped covering kernel memory after a boot-time overflow): such a
/// boot state fails the invariant, the precondition of every theorem.
#[test]
fn hole13_boot_state_fails_the_invariant() {
    let mut s = init();
    s.caps.insert(0, Cap::CUntyped(0, 32, false, 0));
    assert!(inv(&s).is_err_and(|e| e.starts_with("i_ut_kern")), "{:?}", inv(&s));
}

#[test]
fn a_premise_that_fails_is_refused() {
    let s = init();
    assert!(hw(&s, &Hw::HwFillCtx { rid: 8, e: (17, 5) }).is_none());
    assert!(hw(&s, &Hw::HwDma { rid: 8, i: 0, j: 0, w: RO, pa: 16 }).is_none());
    assert!(hw(&s, &Hw::HwDmaFault { rid: 8, i: 0, j: 0, w: RO }).is_some());
    assert!(!msi_ok(&s, 8, 1));
}

/// One generated step: an operation, or a hardware step.
#[derive(Clone, Debug)]
enum Step {
    Op(Gen),
    Evict(u8),
    Dma(u8, u8, u8, bool),
    Msi(u8, u8),
}

fn gen() -> impl Strategy<Value = Step> {
    let op = (0..MIX.len(), any::<[u8; 4]>(), any::<bool>(), any::<bool>())
        .prop_map(|(o, a, r, w)| Step::Op(Gen(MIX[o], a, r, w)));
    prop_oneof![
        8 => op,
        1 => any::<u8>().prop_map(Step::Evict),
        2 => (0..2u8, 0..3u8, 0..3u8, any::<bool>()).prop_map(|(d, i, j, w)| Step::Dma(d, i, j, w)),
        1 => (0..2u8, 0..3u8).prop_map(|(d, v)| Step::Msi(d, v)),
    ]
}

fn check(s: &State, what: &str) -> Result<(), TestCaseError> {
    inv(s).map_err(|e| TestCaseError::fail(format!("after {what}: {e}")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    /// T1, executed: every step of a random trace keeps the invariant.
    #[test]
    fn random_traces_keep_the_invariant(trace in proptest::collection::vec(gen(), 1..200)) {
        let mut s = init();
        for g in trace {
            match g {
                Step::Op(g) => match op_of(&s, g) {
                    Some(Op::RevokeOne(x, _)) => {
                        for (n, t) in revoke_all(&s, x).into_iter().enumerate() {
                            check(&t, &format!("revoke unit {n}"))?;
                            s = fill_all(&t);
                        }
                    }
                    Some(op) => {
                        s = step(&s, op);
                        check(&s, &format!("{op:?}"))?;
                    }
                    None => {}
                },
                Step::Evict(keep) => {
                    let t = s.iotlb.iter().enumerate().filter(|(n, _)| keep >> (n % 8) & 1 == 1).map(|e| *e.1).collect();
                    s = hw(&s, &Hw::HwEvict { t, cc: s.ctxc.clone(), ic: Vec::new() }).expect("a subset");
                }
                Step::Dma(d, i, j, wr) => {
                    let rid = [8, 16][usize::from(d)];
                    let w = Rights { rd: !wr, wr };
                    let (i, j) = (u64::from(i), u64::from(j));
                    match reach(&s, rid, i, j).into_iter().find(|&(_, r)| rsub(w, r)) {
                        Some((pa, _)) => s = hw(&s, &Hw::HwDma { rid, i, j, w, pa }).expect("dma_ok"),
                        None => s = hw(&s, &Hw::HwDmaFault { rid, i, j, w }).expect("no translation"),
                    }
                }
                Step::Msi(d, v) => {
                    let rid = [8, 16][usize::from(d)];
                    if msi_ok(&s, rid, u64::from(v)) {
                        s = hw(&s, &Hw::HwMsi { rid, v: u64::from(v) }).expect("msi_ok");
                    }
                }
            }
            check(&s, "a hardware step")?;
            s = fill_all(&s);
            check(&s, "fills")?;
        }
    }
}
