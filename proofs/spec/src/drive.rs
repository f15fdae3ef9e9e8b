//! Driving the spec: the boot state, maximal fills, probes, a generator.
//!
//! Not part of the Coq mirror: helpers a test uses to run `step` and `hw` the way a
//! worst-case VT-d unit would (caching every translation it can, evicting nothing),
//! and the operation generator the spec's and the kernel's random tests share.

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
    fill_all_logged(s, &mut Vec::new())
}

/// [`fill_all`], appending each `HwFill*` step it takes to `log` (for trace replay).
pub fn fill_all_logged(s: &State, log: &mut Vec<Hw>) -> State {
    let mut s = s.clone();
    let mut fill = |s: &State, h: Hw, what: &str| {
        let next = hw(s, &h).expect(what);
        log.push(h);
        next
    };
    let ctxs: Vec<(Nat, (Paddr, Nat))> = s.ctx.iter().map(|(&r, &e)| (r, e)).collect();
    for (rid, e) in ctxs {
        if !s.ctxc.contains(&(rid, e)) {
            s = fill(&s, Hw::HwFillCtx { rid, e }, "a current context entry");
        }
    }
    let irtes: Vec<(Nat, Option<Nat>)> = s.irte.iter().map(|(&v, &e)| (v, e)).collect();
    for (v, e) in irtes {
        if !s.irtec.contains(&(v, e)) {
            s = fill(&s, Hw::HwFillIrte { v, e }, "a current IRTE");
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
                s = fill(&s, Hw::HwFillTlb { rid, root, d, i, j, pa, r }, "a current walk");
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

/// The IOTLB, the context cache and the interrupt-entry cache, as sets.
pub type CacheSets = (BTreeSet<Tlbe>, BTreeSet<(Nat, (Paddr, Nat))>, BTreeSet<(Nat, Option<Nat>)>);

/// The caches as sets (the model's lists may repeat entries).
pub fn cache_sets(s: &State) -> CacheSets {
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
        match revoke_victim(cur, x) {
            Some(v) => {
                let next = step(cur, Op::RevokeOne(x, v));
                states.push(next);
            }
            None => return states,
        }
    }
}

/// The descendant of `x` the next `RevokeOne` unit deletes: the lowest slot with no
/// children (None: Revoke is done).
pub fn revoke_victim(s: &State, x: Slot) -> Option<Slot> {
    let fuel = s.parent.len() as Nat;
    s.caps.keys().copied().find(|&v| descb(fuel, &s.parent, x, v) && !has_children(s, v))
}

/// Slots the generated operations use; the boot caps of [`init`] are in 0..5.
pub const SLOTS: u8 = 14;
/// Slots holding the boot caps.
pub const BOOT_SLOTS: u64 = 5;
/// MSI vectors the generated operations use (0..MSI_COUNT).
pub const MSI_COUNT: usize = 3;
/// Operation numbers of [`op_of`], weighted so that sequences build IOSpaces with
/// installed tables, mappings and assigned devices (what DMA probes need).
pub const MIX: [u8; 24] = [0, 0, 0, 0, 1, 1, 2, 3, 4, 4, 4, 4, 5, 6, 6, 6, 7, 8, 8, 8, 9, 10, 10, 2];

/// One generated step: an operation number (see [`MIX`]), argument bytes, rights.
#[derive(Clone, Copy, Debug)]
pub struct Gen(pub u8, pub [u8; 4], pub bool, pub bool);

/// A slot for argument byte `b`: mostly one whose cap `fits` (or an empty one),
/// sometimes any slot, so both the paths that succeed and those that refuse run.
pub fn pick(s: &State, b: u8, fits: impl Fn(Option<&Cap>) -> bool) -> u64 {
    // Boot caps (slots 0..5) only by the "any slot" draw: deleting the untyped or a
    // PciDevice cap early would leave the rest of the sequence nothing to do.
    let fitting: Vec<u64> = (BOOT_SLOTS..u64::from(SLOTS)).filter(|i| fits(s.caps.get(i))).collect();
    if b.is_multiple_of(8) || fitting.is_empty() {
        return u64::from(b % SLOTS);
    }
    fitting[usize::from(b / 8) % fitting.len()]
}

fn is_frame(c: Option<&Cap>) -> bool {
    matches!(c, Some(Cap::CFrame(..)))
}
fn is_space(c: Option<&Cap>) -> bool {
    matches!(c, Some(Cap::CIoSpace(..)))
}
fn is_table(c: Option<&Cap>) -> bool {
    matches!(c, Some(Cap::CIoPageTable(..)))
}

/// The spec operation for a generated step (None: skipped on both sides).
pub fn op_of(s: &State, g: Gen) -> Option<Op> {
    let Gen(o, a, rd, wr) = g;
    let any = |k: usize| pick(s, a[k], |c| c.is_some());
    let empty = |k: usize| pick(s, a[k], |c| c.is_none());
    let r = Rights { rd, wr };
    let kinds = [Kind::KFrame, Kind::KIoSpace, Kind::KIoPageTable];
    let (i, j) = (u64::from(a[2] % 3), u64::from(a[3] % 3));
    Some(match o {
        0 => Op::Retype(u64::from(a[0] % 4 == 0), kinds[usize::from(a[1] % 3)], empty(2), free_domain(s)),
        1 => Op::Copy(any(0), empty(1), r),
        2 => Op::Delete(any(0)),
        // Revoke of an original cap, as the spec's loop of units. Not of a copy: the
        // kernel's Revoke of a copy deletes nothing (seL4's), the model deletes the
        // copy's copies. Not of IRQControl: the kernel makes MSI caps roots of the
        // tree, the model children of IRQControl (proofs/README.md, divergences).
        3 => {
            let x = any(0);
            let revocable = s.orig.contains(&x) && s.caps.get(&x) != Some(&Cap::CIrqControl);
            Op::RevokeOne(x, 0).clone_if(revocable)?
        }
        4 => {
            // Mostly at a root index where the IOSpace has a table.
            let space = pick(s, a[1], is_space);
            let installed: Vec<u64> = match s.caps.get(&space) {
                Some(&Cap::CIoSpace(root, _)) => {
                    s.rootent.get(&root).into_iter().flat_map(|r| r.keys().copied()).collect()
                }
                _ => Vec::new(),
            };
            let i =
                if a[2] % 4 == 0 || installed.is_empty() { i } else { installed[usize::from(a[2]) % installed.len()] };
            Op::MapIo(pick(s, a[0], is_frame), space, i, j, r)
        }
        5 => Op::UnmapIo(pick(s, a[0], is_frame)),
        6 => Op::MapIoTable(pick(s, a[0], is_table), pick(s, a[1], is_space), i),
        7 => Op::UnmapIoTable(pick(s, a[0], is_table)),
        8 => Op::Assign(pick(s, a[0], is_space), 2 + u64::from(a[1] % 2)),
        9 => Op::Unassign(pick(s, a[0], is_space), 2 + u64::from(a[1] % 2)),
        _ => {
            let v = (0..MSI_COUNT as u64).find(|v| !s.irte.contains_key(v))?;
            Op::GetMsi(4, 2 + u64::from(a[1] % 2), empty(2), v)
        }
    })
}

/// `Some(self)` if `keep`.
trait CloneIf: Sized {
    fn clone_if(self, keep: bool) -> Option<Self> {
        keep.then_some(self)
    }
}
impl CloneIf for Op {}
