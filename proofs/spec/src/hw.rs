//! Mirror of Hw.v: what the VT-d hardware may do (fill, evict, DMA, MSI).
//!
//! Coq's relation `hw s s'` is [`hw`]: given the step's witnesses it returns the next
//! state, or `None` when the step's premise does not hold in `s`.

use crate::model::*;
use crate::step::*;

/// The device's DMA may use context `e`: its entry, or a cached copy.
pub fn ctx_view(s: &State, rid: Nat, e: (Paddr, Nat)) -> bool {
    s.ctx.get(&rid) == Some(&e) || s.ctxc.contains(&(rid, e))
}

/// A DMA by `rid` at IOVA (i, j) with rights `w` reaches `pa`.
pub fn dma_ok(s: &State, rid: Nat, i: Nat, j: Nat, w: Rights, pa: Paddr) -> bool {
    let mut views: Vec<(Paddr, Nat)> = s.ctx.get(&rid).copied().into_iter().collect();
    views.extend(s.ctxc.iter().filter(|e| e.0 == rid).map(|e| e.1));
    views.iter().any(|&(root, d)| {
        let by_tlb = s.iotlb.iter().any(|e| (e.t_dom, e.t_i, e.t_j, e.t_pa) == (d, i, j, pa) && rsub(w, e.t_r));
        by_tlb || walk(s, root, i, j).is_some_and(|(p, r)| p == pa && rsub(w, r))
    })
}

/// An MSI from `rid` with handle `v` is delivered.
pub fn msi_ok(s: &State, rid: Nat, v: Nat) -> bool {
    let current = s.irte.get(&v).copied();
    let cached = s.irtec.iter().filter(|e| e.0 == v).map(|e| e.1);
    current.into_iter().chain(cached).any(|e| e.is_none() || e == Some(rid))
}

/// A fault record joins the queue of the faulting device's domain.
pub fn record_fault(s: &State, rid: Nat, i: Nat, j: Nat) -> State {
    match s.ctx.get(&rid) {
        Some(&(_, d)) => {
            let mut q = s.faults.get(&d).cloned().unwrap_or_default();
            q.push(Frec { f_rid: rid, f_i: i, f_j: j });
            set_faults(s, upd(&s.faults, d, q))
        }
        None => s.clone(),
    }
}

/// One hardware step with its witnesses (the constructors of Coq's `hw`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hw {
    /// The IOTLB caches what a walk from a device's context gives now.
    HwFillTlb { rid: Nat, root: Paddr, d: Nat, i: Nat, j: Nat, pa: Paddr, r: Rights },
    /// The context cache caches a context entry.
    HwFillCtx { rid: Nat, e: (Paddr, Nat) },
    /// The interrupt-entry cache caches an IRTE.
    HwFillIrte { v: Nat, e: Option<Nat> },
    /// Each cache keeps the given subset of its entries.
    HwEvict { t: Vec<Tlbe>, cc: Vec<(Nat, (Paddr, Nat))>, ic: Vec<(Nat, Option<Nat>)> },
    /// A translated DMA (changes nothing).
    HwDma { rid: Nat, i: Nat, j: Nat, w: Rights, pa: Paddr },
    /// A DMA with no translation faults.
    HwDmaFault { rid: Nat, i: Nat, j: Nat, w: Rights },
    /// A delivered MSI (changes nothing).
    HwMsi { rid: Nat, v: Nat },
}

/// Coq's `hw s s'`: the state after step `h`, if its premise holds in `s`.
pub fn hw(s: &State, h: &Hw) -> Option<State> {
    match *h {
        Hw::HwFillTlb { rid, root, d, i, j, pa, r } => {
            (ctx_view(s, rid, (root, d)) && walk(s, root, i, j) == Some((pa, r))).then(|| {
                let mut t = vec![Tlbe { t_dom: d, t_i: i, t_j: j, t_pa: pa, t_r: r }];
                t.extend(s.iotlb.iter().copied());
                set_tlb(s, t)
            })
        }
        Hw::HwFillCtx { rid, e } => (s.ctx.get(&rid) == Some(&e)).then(|| {
            let mut cc = vec![(rid, e)];
            cc.extend(s.ctxc.iter().copied());
            set_ctx(s, s.ctx.clone(), cc)
        }),
        Hw::HwFillIrte { v, e } => (s.irte.get(&v) == Some(&e)).then(|| {
            let mut ic = vec![(v, e)];
            ic.extend(s.irtec.iter().copied());
            set_irte(s, s.irte.clone(), ic)
        }),
        Hw::HwEvict { ref t, ref cc, ref ic } => {
            let ok = t.iter().all(|x| s.iotlb.contains(x))
                && cc.iter().all(|x| s.ctxc.contains(x))
                && ic.iter().all(|x| s.irtec.contains(x));
            ok.then(|| {
                set_irte(&set_ctx(&set_tlb(s, t.clone()), s.ctx.clone(), cc.clone()), s.irte.clone(), ic.clone())
            })
        }
        Hw::HwDma { rid, i, j, w, pa } => dma_ok(s, rid, i, j, w, pa).then(|| s.clone()),
        Hw::HwDmaFault { rid, i, j, w } => {
            let candidates =
                s.iotlb.iter().map(|e| e.t_pa).chain(s.leafent.values().flat_map(|m| m.values().map(|v| v.0)));
            let mut candidates = candidates.collect::<Vec<_>>();
            candidates.sort_unstable();
            candidates.dedup();
            candidates.iter().all(|&pa| !dma_ok(s, rid, i, j, w, pa)).then(|| record_fault(s, rid, i, j))
        }
        Hw::HwMsi { rid, v } => msi_ok(s, rid, v).then(|| s.clone()),
    }
}

/// How a state is reached (the constructors of Coq's `reachable`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reachable {
    /// The start state.
    ReachInit,
    /// A system call or Revoke unit.
    ReachStep(Op),
    /// A hardware step.
    ReachHw(Hw),
}

/// Replays a trace from `s0`: the state it reaches, or the index of the first hardware
/// step whose premise fails.
pub fn reachable(s0: &State, trace: &[Reachable]) -> Result<State, usize> {
    let mut s = s0.clone();
    for (n, r) in trace.iter().enumerate() {
        s = match r {
            Reachable::ReachInit => s0.clone(),
            Reachable::ReachStep(o) => step(&s, *o),
            Reachable::ReachHw(h) => hw(&s, h).ok_or(n)?,
        };
    }
    Ok(s)
}
