//! The kernel's code for issue 9 holes 2 and 12 against the layer mirrors.
//!
//! Differential tests (host only): random sequences run on the spec's `cstep`/`tstep`
//! and, side by side, on the kernel's own functions: `cnode::decode_derive`,
//! `invoke_copy`, `delete`, `decode_replace` + `invoke_replace` (TCB Configure's slot
//! update) over slots of a boot CNode, two CNodes and a TCB; `tcb::on_cancel` and
//! `endpoint::may_cancel_sends` for cancelled senders. After every step the slots
//! (abstracted to `Ccap`) or the threads must be equal, the kernel's derivation links
//! must name non-empty slots, and the spec must satisfy `cinv`. The kernel features
//! `mutant-hole2` and `mutant-hole12` make them diverge (check.sh runs both).

use std::collections::{BTreeMap, HashMap};

use abi::rights::CapRights;
use kernel::object::cap::Cap;
use kernel::object::cnode::{self, Finaliser};
use kernel::object::cte::{Cte, SlotAddr, SlotMemory, SLOT_BYTES};
use kernel::object::{endpoint, mdb, tcb};
use proptest::prelude::*;

use crate::cspace::{cinv, cstep, CState, Ccap, Cop};
use crate::model::Nat;
use crate::threads::{err_cancelled, tinit, tstep, TRights, TState, Tcap, Thread, Thstate, Top};

/// Slot memory in a map (the kernel's `cte::fake` is test-only inside the kernel).
#[derive(Default)]
struct Slots(HashMap<SlotAddr, [u64; 8]>);
impl SlotMemory for Slots {
    fn load(&self, slot: SlotAddr) -> Cte {
        self.0.get(&slot).map_or(Cte::NULL, |w| Cte::from_words(*w).expect("valid slot"))
    }
    fn store(&mut self, slot: SlotAddr, cte: Cte) {
        self.0.insert(slot, cte.to_words());
    }
}
struct NoHardware;
impl Finaliser for NoHardware {
    fn unmap_frame(&mut self, _cap: &Cap) {}
    fn unmap_table(&mut self, _cap: &Cap) {}
    fn finalise_object(&mut self, _cap: &Cap) {}
}

/// The objects holding slots: (kernel address, spec page, spec id of slot 0, slots).
/// The boot CNode is page 0 in the spec (never deleted); then CNodes A and B, a TCB.
const OBJECTS: [(u64, Nat, Nat, u64); 4] =
    [(0x10_0000, 0, 0, 8), (0x20_0000, 0x200, 100, 4), (0x30_0000, 0x300, 200, 4), (0x40_0000, 0x400, 300, 3)];

fn cnode_cap(paddr: u64) -> Cap {
    Cap::CNode { paddr, radix: 2, guard_bits: 0, guard: 0 }
}
fn endpoint_cap(paddr: u64) -> Cap {
    Cap::Endpoint { paddr, badge: 0, rights: CapRights::ALL }
}
/// Every slot: (spec id, kernel address, spec home page).
fn all_slots() -> Vec<(Nat, SlotAddr, Nat)> {
    OBJECTS
        .iter()
        .flat_map(|&(base, page, id0, n)| (0..n).map(move |j| (id0 + j, base + j * SLOT_BYTES, page)))
        .collect()
}
fn addr_of(id: Nat) -> SlotAddr {
    all_slots().into_iter().find(|s| s.0 == id).expect("a slot").1
}
fn home_of(id: Nat) -> Nat {
    all_slots().into_iter().find(|s| s.0 == id).expect("a slot").2
}
/// The spec's view of a kernel cap (a Zombie is a deletion under way: none survives
/// a completed `delete`).
fn abstract_cap(c: Cap) -> Option<Ccap> {
    match c {
        Cap::Null => None,
        Cap::CNode { paddr, .. } => Some(Ccap::CcCNode(paddr >> 12)),
        Cap::Tcb { paddr } => Some(Ccap::CcTcb(paddr >> 12)),
        Cap::Endpoint { paddr, .. } => Some(Ccap::CcEndpoint(paddr >> 12)),
        other => panic!("unexpected cap {other:?}"),
    }
}
fn abstract_slots(m: &Slots) -> BTreeMap<Nat, Ccap> {
    all_slots().into_iter().filter_map(|(id, a, _)| abstract_cap(m.load(a).cap).map(|c| (id, c))).collect()
}
/// The kernel's derivation links (prev/next of the MDB list) name non-empty slots.
fn kernel_links(m: &Slots) -> Result<(), String> {
    for (id, a, _) in all_slots() {
        let cte = m.load(a);
        if cte.cap.is_null() {
            continue;
        }
        for link in [cte.prev, cte.next] {
            if link != 0 && m.load(link).cap.is_null() {
                return Err(format!("kernel: slot {id} is linked to the empty slot {link:#x}"));
            }
        }
    }
    Ok(())
}
/// Slot `id` can be named by a lookup: its object is the boot CNode or some cap names it.
fn reachable(m: &Slots, id: Nat) -> bool {
    let page = home_of(id);
    page == 0
        || all_slots().into_iter().any(|(_, a, _)| match m.load(a).cap {
            Cap::CNode { paddr, .. } | Cap::Tcb { paddr } => paddr >> 12 == page,
            _ => false,
        })
}

/// Both sides' boot state: boot slots 0, 1, 2 hold the only caps to CNodes A, B and
/// the TCB, boot slot 3 and A's slot 0 endpoints.
fn boot() -> (Slots, CState) {
    let mut m = Slots::default();
    let caps = [
        (0, cnode_cap(0x20_0000)),
        (1, cnode_cap(0x30_0000)),
        (2, Cap::Tcb { paddr: 0x40_0000 }),
        (3, endpoint_cap(0x1000)),
        (100, endpoint_cap(0x2000)),
    ];
    for (id, c) in caps {
        mdb::insert_root(&mut m, addr_of(id), c, true);
    }
    let home = all_slots().into_iter().filter(|s| s.2 != 0).map(|s| (s.0, s.2)).collect();
    let s = CState { cslots: abstract_slots(&m), cpar: BTreeMap::new(), home };
    (m, s)
}

/// One operation on the kernel's code, with the checks a system call would make
/// first; `None` when the caller could not name it (the spec's step is skipped too).
fn kernel_step(m: &mut Slots, s: &CState, o: Cop) -> Option<()> {
    match o {
        Cop::CCopy(src, dst) => {
            // A CNode Copy: both slots looked up in CNodes (not the TCB's).
            if home_of(src) == 0x400 || home_of(dst) == 0x400 || !reachable(m, src) || !reachable(m, dst) {
                return None;
            }
            let (a, b) = (addr_of(src), addr_of(dst));
            if m.load(a).cap.is_null() || cnode::decode_empty(m, b).is_err() {
                return Some(());
            }
            let derived = cnode::decode_derive(m, a, CapRights::ALL, None).ok()?;
            cnode::invoke_copy(m, a, b, derived);
        }
        Cop::CDelete(x) => {
            if home_of(x) == 0x400 || !reachable(m, x) {
                return None;
            }
            // The spec refuses the last cap to an object whose slots hold caps, where
            // the kernel runs its Zombie loop; a model caller deletes those slots first.
            if cnode::long_running_delete(m, addr_of(x)) && crate::cspace::cdelete(s, x) == *s {
                return None;
            }
            cnode::delete(m, &mut NoHardware, addr_of(x));
        }
        Cop::CReplace(d, src) => {
            // TCB Configure: `d` a slot of the TCB (named by a TCB cap), `src` a
            // non-empty slot of the caller's CSpace.
            if home_of(d) != 0x400 || home_of(src) == 0x400 || !reachable(m, d) || !reachable(m, src) {
                return None;
            }
            let (t, a) = (addr_of(d), addr_of(src));
            if m.load(a).cap.is_null() {
                return None;
            }
            let derived = cnode::decode_derive(m, a, CapRights::ALL, None).ok()?;
            if cnode::decode_replace(m, &[t]).is_ok() {
                cnode::invoke_replace(m, &mut NoHardware, &[t], &[(a, t, derived)]);
            }
        }
    }
    Some(())
}

fn slot_id() -> impl Strategy<Value = Nat> {
    prop_oneof![0..8u64, 100..104u64, 200..204u64, 300..303u64]
}
fn cop() -> impl Strategy<Value = Cop> {
    prop_oneof![
        3 => (slot_id(), slot_id()).prop_map(|(a, b)| Cop::CCopy(a, b)),
        2 => slot_id().prop_map(Cop::CDelete),
        3 => (300..303u64, slot_id()).prop_map(|(d, s)| Cop::CReplace(d, s)),
    ]
}

/// Runs `ops` on both sides, comparing after every step.
fn run_cspace(ops: &[Cop]) -> Result<usize, String> {
    let (mut m, mut s) = boot();
    let mut replaces = 0;
    for (i, &o) in ops.iter().enumerate() {
        if kernel_step(&mut m, &s, o).is_none() {
            continue;
        }
        if matches!(o, Cop::CReplace(..)) {
            replaces += 1;
        }
        s = cstep(&s, o);
        let k = abstract_slots(&m);
        if k != s.cslots {
            return Err(format!("step {i} {o:?}: kernel slots {k:?}, spec {:?}", s.cslots));
        }
        kernel_links(&m).map_err(|e| format!("step {i} {o:?}: {e}"))?;
        cinv(&s).map_err(|e| format!("step {i} {o:?}: spec {e}"))?;
    }
    Ok(replaces)
}

/// The hazard of hole 2 as a fixed sequence: A's cap copied into the TCB's slot, the
/// boot slot's cap to A deleted (the TCB's slot now holds the last cap to A), then the
/// TCB's slot updated from A's slot 0. Both sides refuse the update.
#[test]
fn hole2_kernel_and_spec_agree_on_the_hazard() {
    let ops = [Cop::CReplace(300, 0), Cop::CDelete(0), Cop::CReplace(300, 100)];
    let r = run_cspace(&ops);
    assert!(r.is_ok(), "{}", r.unwrap_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]
    /// Random Copy, Delete and TCB Configure updates: the kernel's slots equal the
    /// spec's after every step.
    #[test]
    fn hole2_kernel_replace_matches_the_spec(ops in proptest::collection::vec(cop(), 1..60)) {
        if let Err(e) = run_cspace(&ops) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// The kernel's rights for a spec endpoint cap's (GRANT carries GRANT_REPLY).
fn kernel_rights(r: TRights) -> CapRights {
    let mut k = CapRights::NONE;
    for (on, bit) in [(r.t_read, CapRights::READ), (r.t_write, CapRights::WRITE)] {
        if on {
            k = k.union(bit);
        }
    }
    if r.t_grant {
        k = k.union(CapRights::GRANT).union(CapRights::GRANT_REPLY);
    }
    k
}
/// `tstep` with the kernel's two decisions: `endpoint::may_cancel_sends` for the
/// rights, and `tcb::on_cancel` for what a cancelled sender gets (as
/// `thread::ipc::wake_cancelled` applies it: Restart keeps the registers).
fn kernel_tstep(s: &TState, o: Top) -> TState {
    let cancel = |s: &TState, ep: Nat, badge: Option<Nat>| {
        let mut n = s.clone();
        for th in n.threads.values_mut() {
            if let Thstate::ThSending(e, b, fault) = th.th_state {
                if e == ep && (badge.is_none() || badge == Some(b)) {
                    let flags = if fault { tcb::IPC_IS_FAULT } else { 0 };
                    let kind = abi::fault::FaultKind::VmFault.raw();
                    let rax = match tcb::on_cancel(tcb::ThreadState::BlockedOnSend, flags, kind) {
                        tcb::Cancelled::Restart { .. } => th.th_rax,
                        tcb::Cancelled::Error => err_cancelled(),
                    };
                    *th = Thread { th_state: Thstate::ThRestart, th_rax: rax };
                }
            }
        }
        n
    };
    match o {
        Top::TCancel(t, x) => match (s.threads.get(&t), s.tcaps.get(&(t, x))) {
            (Some(th), Some(&Tcap::TcEndpoint(ep, b, r)))
                if th.th_state == Thstate::ThRunning && endpoint::may_cancel_sends(kernel_rights(r)) =>
            {
                cancel(s, ep, Some(b))
            }
            _ => s.clone(),
        },
        Top::TDeleteEp(ep) => cancel(s, ep, None),
        other => tstep(s, other),
    }
}

fn top() -> impl Strategy<Value = Top> {
    prop_oneof![
        (1..4u64, 0..2u64).prop_map(|(t, x)| Top::TSend(t, x)),
        (1..4u64, 1..4u64).prop_map(|(t, v)| Top::TFault(t, 9, 5 + v % 2)),
        (1..4u64, 0..2u64).prop_map(|(t, x)| Top::TCancel(t, x)),
        Just(Top::TDeleteEp(9)),
        (1..4u64, 0..100u64).prop_map(|(t, v)| Top::TRun(t, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]
    /// Random sends, faults, cancels and runs: the threads (states and rax) the
    /// kernel's decisions give equal the spec's after every step.
    #[test]
    fn hole12_kernel_cancel_matches_the_spec(ops in proptest::collection::vec(top(), 1..60)) {
        let (mut k, mut s) = (tinit(), tinit());
        for (i, &o) in ops.iter().enumerate() {
            k = kernel_tstep(&k, o);
            s = tstep(&s, o);
            prop_assert_eq!(&k.threads, &s.threads, "step {} {:?}", i, o);
        }
    }
}
