//! Driving the spec: Init.v's boot state, maximal cache fills, what tests compare.
//!
//! Not part of the Coq mirror: helpers a test uses to run `step` and `hw` the way a
//! worst-case VT-d unit would (caching every translation it can, evicting nothing).

use std::collections::BTreeSet;

use crate::hw::{hw, Hw};
use crate::model::*;
use crate::step::{descb, has_children, step, Op};

/// Init.v's `init`: RAM untyped at pages 16..31, device untyped at 64..67, PciDevice
/// caps for requester ids 8 and 16, IRQControl; the kernel in pages 0..15.
pub fn init() -> State {
    let mut s = State { khi: 16, ..State::default() };
    s.caps.insert(0, Cap::CUntyped(16, 16, false, 0));
    s.caps.insert(1, Cap::CUntyped(64, 4, true, 0));
    s.caps.insert(2, Cap::CPciDevice(8));
    s.caps.insert(3, Cap::CPciDevice(16));
    s.caps.insert(4, Cap::CIrqControl);
    s.orig.extend([0, 1, 2, 3, 4]);
    s
}

/// Every fill the hardware may do now, each once (a run of `HwFill*` steps): every
/// current walk through every context (current or cached) into the IOTLB, every
/// context entry into the context cache, every IRTE into its cache.
pub fn fill_all(s: &State) -> State {
    let mut s = s.clone();
    let ctxs: Vec<(Nat, (Paddr, Nat))> = s.ctx.iter().map(|(&r, &e)| (r, e)).collect();
    for (rid, e) in ctxs {
        if !s.ctxc.contains(&(rid, e)) {
            s = hw(&s, &Hw::HwFillCtx { rid, e }).expect("a current context entry");
        }
    }
    let irtes: Vec<(Nat, Option<Nat>)> = s.irte.iter().map(|(&v, &e)| (v, e)).collect();
    for (v, e) in irtes {
        if !s.irtec.contains(&(v, e)) {
            s = hw(&s, &Hw::HwFillIrte { v, e }).expect("a current IRTE");
        }
    }
    let mut views: Vec<(Nat, (Paddr, Nat))> = s.ctx.iter().map(|(&r, &e)| (r, e)).collect();
    views.extend(s.ctxc.iter().copied());
    for (rid, (root, d)) in views {
        let walks: Vec<(Nat, Nat, Paddr, Rights)> = s
            .rootent
            .get(&root)
            .into_iter()
            .flatten()
            .flat_map(|(&i, t)| s.leafent.get(t).into_iter().flatten().map(move |(&j, &(pa, r))| (i, j, pa, r)))
            .collect();
        for (i, j, pa, r) in walks {
            let e = Tlbe { t_dom: d, t_i: i, t_j: j, t_pa: pa, t_r: r };
            if !s.iotlb.contains(&e) {
                s = hw(&s, &Hw::HwFillTlb { rid, root, d, i, j, pa, r }).expect("a current walk");
            }
        }
    }
    s
}

/// What a device can reach at IOVA (i, j): every (page, rights) through a current or
/// cached context, by an IOTLB entry or a walk (what `dma_ok` accepts).
pub fn reach(s: &State, rid: Nat, i: Nat, j: Nat) -> BTreeSet<(Paddr, Rights)> {
    let mut views: Vec<(Paddr, Nat)> = s.ctx.get(&rid).copied().into_iter().collect();
    views.extend(s.ctxc.iter().filter(|e| e.0 == rid).map(|e| e.1));
    let mut out = BTreeSet::new();
    for (root, d) in views {
        out.extend(s.iotlb.iter().filter(|e| (e.t_dom, e.t_i, e.t_j) == (d, i, j)).map(|e| (e.t_pa, e.t_r)));
        out.extend(walk(s, root, i, j));
    }
    out
}

/// The caches as sets (the model's lists may repeat entries).
pub fn cache_sets(s: &State) -> (BTreeSet<Tlbe>, BTreeSet<(Nat, (Paddr, Nat))>, BTreeSet<(Nat, Option<Nat>)>) {
    (s.iotlb.iter().copied().collect(), s.ctxc.iter().copied().collect(), s.irtec.iter().copied().collect())
}

/// The lowest domain id no live IOSpace has (the kernel hands out ids the same way).
pub fn free_domain(s: &State) -> Nat {
    (1..).find(|d| !s.doms.values().any(|x| x == d)).expect("a free id")
}

/// Revoke to completion as the kernel's loop does it: one `RevokeOne` unit at a time
/// (a descendant with no children), until `x` has no descendant. Returns the states at
/// every preemption point.
pub fn revoke_all(s: &State, x: Slot) -> Vec<State> {
    let mut states = vec![s.clone()];
    loop {
        let cur = states.last().expect("nonempty");
        let fuel = cur.parent.len() as Nat;
        let victim = cur.caps.keys().copied().find(|&v| descb(fuel, &cur.parent, x, v) && !has_children(cur, v));
        match victim {
            Some(v) => {
                let next = step(cur, Op::RevokeOne(x, v));
                states.push(next);
            }
            None => return states,
        }
    }
}
