//! Mirror of Cspace.v: slots inside CNode and TCB objects, Delete, TcbConfigure.
//!
//! The layer of the model for issue 9's hole 2, one item per Coq definition under its
//! name (`names.py` checks the lists match). `home` is a map; an absent slot is in the
//! boot CNode (0). `cinv` checks the invariant of Coq's `cinv` record, each condition
//! a function named after its field. The `mutant-hole2` feature applies check.sh's
//! hole-2 mutant to `creplace`.

use std::collections::BTreeMap;

use crate::model::{desc, Nat};
use crate::step::reparent;

/// A cap of this layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ccap {
    /// A CNode (its page).
    CcCNode(Nat),
    /// A TCB (its page).
    CcTcb(Nat),
    /// A frame.
    CcFrame(Nat),
    /// An endpoint.
    CcEndpoint(Nat),
}

/// The object a cap names that holds slots (CNode or TCB).
pub fn container(c: Ccap) -> Option<Nat> {
    match c {
        Ccap::CcCNode(pa) | Ccap::CcTcb(pa) => Some(pa),
        _ => None,
    }
}

/// Slots, the derivation tree, and which object holds each slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CState {
    /// Slot -> cap.
    pub cslots: BTreeMap<Nat, Ccap>,
    /// Child slot -> parent slot.
    pub cpar: BTreeMap<Nat, Nat>,
    /// Slot -> the page of the CNode or TCB holding it (absent: the boot CNode, 0).
    pub home: BTreeMap<Nat, Nat>,
}

fn home_of(s: &CState, x: Nat) -> Nat {
    s.home.get(&x).copied().unwrap_or(0)
}

/// Some slot other than `x` holds a cap to the container `p`.
pub fn other_names(s: &CState, x: Nat, p: Nat) -> bool {
    s.cslots.iter().any(|(&y, &c)| y != x && container(c) == Some(p))
}
/// No slot of the container `p` holds a cap.
pub fn empty_home(s: &CState, p: Nat) -> bool {
    s.cslots.keys().all(|&y| home_of(s, y) != p)
}
/// Slot `x` lies in the boot CNode or in an object some cap names.
pub fn live_home(s: &CState, x: Nat) -> bool {
    let h = home_of(s, x);
    h == 0 || s.cslots.values().any(|&c| container(c) == Some(h))
}
/// Slot `x` holds the last cap to a CNode or TCB.
pub fn final_container(s: &CState, x: Nat) -> bool {
    match s.cslots.get(&x) {
        Some(&c) => match container(c) {
            Some(p) => !other_names(s, x, p),
            None => false,
        },
        None => false,
    }
}

/// The slot is emptied; its children become children of its parent.
pub fn cremove(s: &CState, x: Nat) -> CState {
    let mut cslots = s.cslots.clone();
    cslots.remove(&x);
    CState { cslots, cpar: reparent(&s.cpar, x), home: s.home.clone() }
}

/// Delete: refused only for the last cap to a CNode or TCB whose slots hold caps.
pub fn cdelete(s: &CState, x: Nat) -> CState {
    match s.cslots.get(&x) {
        Some(&c) => match container(c) {
            Some(p) => {
                if other_names(s, x, p) || empty_home(s, p) {
                    cremove(s, x)
                } else {
                    s.clone()
                }
            }
            None => cremove(s, x),
        },
        None => s.clone(),
    }
}

/// Copy into an empty slot of a live object; the copy is the source's child.
pub fn ccopy(s: &CState, src: Nat, dst: Nat) -> CState {
    match (s.cslots.get(&src), s.cslots.get(&dst)) {
        (Some(&c), None) if live_home(s, dst) => {
            let mut t = s.clone();
            t.cslots.insert(dst, c);
            t.cpar.insert(dst, src);
            t
        }
        _ => s.clone(),
    }
}

/// Deleting `d`, the last cap to container `p`: the container's slots go with it.
pub fn cascade(s: &CState, d: Nat, p: Nat) -> CState {
    let mut cslots = s.cslots.clone();
    cslots.remove(&d);
    cslots.retain(|&y, _| home_of(s, y) != p);
    let mut cpar = reparent(&s.cpar, d);
    cpar.retain(|&y, _| home_of(s, y) != p);
    CState { cslots, cpar, home: s.home.clone() }
}

/// TcbConfigure refuses to update a slot holding the last cap to a CNode or TCB.
pub fn replace_refused(s: &CState, d: Nat) -> bool {
    if cfg!(feature = "mutant-hole2") {
        return false;
    }
    final_container(s, d)
}
/// Deleting `d` for the update.
pub fn replace_clear(s: &CState, d: Nat) -> CState {
    match s.cslots.get(&d) {
        Some(&cd) => match container(cd) {
            Some(p) => {
                if other_names(s, d, p) {
                    cremove(s, d)
                } else {
                    cascade(s, d, p)
                }
            }
            None => cremove(s, d),
        },
        None => s.clone(),
    }
}
/// The copy into `d` from `src`, which held `c` before the deletion.
pub fn replace_copy_ok(s1: &CState, d: Nat, src: Nat, c: Option<Ccap>) -> bool {
    let unchanged = cfg!(feature = "mutant-hole2") || s1.cslots.get(&src).copied() == c;
    unchanged && !s1.cslots.contains_key(&d) && live_home(s1, d)
}
/// TcbConfigure's update of the thread's slot `d` from `src`.
pub fn creplace(s: &CState, d: Nat, src: Nat) -> CState {
    let c = s.cslots.get(&src).copied();
    if replace_refused(s, d) {
        return s.clone();
    }
    let s1 = replace_clear(s, d);
    match c {
        Some(cc) if replace_copy_ok(&s1, d, src, c) => {
            let mut t = s1;
            t.cslots.insert(d, cc);
            t.cpar.insert(d, src);
            t
        }
        _ => s1,
    }
}

/// The operations of this layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cop {
    /// Copy (source, destination).
    CCopy(Nat, Nat),
    /// Delete.
    CDelete(Nat),
    /// TcbConfigure's slot update (thread's slot, source).
    CReplace(Nat, Nat),
}

/// One operation.
pub fn cstep(s: &CState, o: Cop) -> CState {
    match o {
        Cop::CCopy(src, dst) => ccopy(s, src, dst),
        Cop::CDelete(x) => cdelete(s, x),
        Cop::CReplace(d, src) => creplace(s, d, src),
    }
}

/// Derivation links name non-empty slots.
pub fn ci_tree(s: &CState) -> Result<(), String> {
    match s.cpar.iter().find(|(x, p)| !s.cslots.contains_key(x) || !s.cslots.contains_key(p)) {
        Some((x, p)) => Err(format!("ci_tree: link {x} -> {p} names an empty slot")),
        None => Ok(()),
    }
}
/// No slot is its own ancestor.
pub fn ci_acyc(s: &CState) -> Result<(), String> {
    match s.cpar.keys().find(|&&x| desc(&s.cpar, x, x)) {
        Some(x) => Err(format!("ci_acyc: slot {x}")),
        None => Ok(()),
    }
}
/// Every non-empty slot lies in the boot CNode or in an object some cap names.
pub fn ci_home(s: &CState) -> Result<(), String> {
    match s.cslots.keys().find(|&&x| !live_home(s, x)) {
        Some(x) => Err(format!("ci_home: slot {x} lies in object {} no cap names", home_of(s, *x))),
        None => Ok(()),
    }
}
/// The invariant: every condition, the first failing one named.
pub fn cinv(s: &CState) -> Result<(), String> {
    ci_tree(s)?;
    ci_acyc(s)?;
    ci_home(s)
}

/// The state a sequence of operations reaches from `s0` (Coq's `creach` relation).
pub fn creach(s0: &CState, ops: &[Cop]) -> CState {
    ops.iter().fold(s0.clone(), |s, &o| cstep(&s, o))
}

/// Slot 20 lies in the CNode at page 100, slot 30 in the TCB at page 200.
pub fn chome(x: Nat) -> Nat {
    match x {
        20 => 100,
        30 => 200,
        _ => 0,
    }
}
/// The boot state: slot 1 holds the only cap to CNode 100 (whose slot 20 holds a
/// frame cap), slot 2 a TCB cap (page 200, holding slot 30).
pub fn cinit() -> CState {
    CState {
        cslots: BTreeMap::from([(1, Ccap::CcCNode(100)), (2, Ccap::CcTcb(200)), (20, Ccap::CcFrame(7))]),
        cpar: BTreeMap::new(),
        home: (0..64).filter(|&x| chome(x) != 0).map(|x| (x, chome(x))).collect(),
    }
}
