//! Mirror of Step.v: the kernel operations as one function `step` on the state.
//!
//! Each function follows its Coq definition line by line (the same names, the same
//! order of updates); the `mutant-*` features apply the model mutants of check.sh.

use std::collections::BTreeMap;

use crate::model::*;

/// Replaces the caps.
pub fn set_caps(s: &State, m: BTreeMap<Slot, Cap>) -> State {
    State { caps: m, ..s.clone() }
}
/// Replaces the derivation tree.
pub fn set_tree(s: &State, p: BTreeMap<Slot, Slot>, o: std::collections::BTreeSet<Slot>) -> State {
    State { parent: p, orig: o, ..s.clone() }
}
/// Replaces the live domains.
pub fn set_doms(s: &State, d: BTreeMap<Paddr, Nat>) -> State {
    State { doms: d, ..s.clone() }
}
/// Replaces the root entries.
pub fn set_root(s: &State, r: BTreeMap<Paddr, BTreeMap<Nat, Paddr>>) -> State {
    State { rootent: r, ..s.clone() }
}
/// Replaces the leaves.
pub fn set_leaf(s: &State, l: BTreeMap<Paddr, BTreeMap<Nat, (Paddr, Rights)>>) -> State {
    State { leafent: l, ..s.clone() }
}
/// Replaces the context entries and the context cache.
pub fn set_ctx(s: &State, c: BTreeMap<Nat, (Paddr, Nat)>, cc: Vec<(Nat, (Paddr, Nat))>) -> State {
    State { ctx: c, ctxc: cc, ..s.clone() }
}
/// Replaces the IOTLB.
pub fn set_tlb(s: &State, t: Vec<Tlbe>) -> State {
    State { iotlb: t, ..s.clone() }
}
/// Replaces the IRTEs and their cache.
pub fn set_irte(s: &State, e: BTreeMap<Nat, Option<Nat>>, ec: Vec<(Nat, Option<Nat>)>) -> State {
    State { irte: e, irtec: ec, ..s.clone() }
}
/// Replaces the fault queues.
pub fn set_faults(s: &State, f: BTreeMap<Nat, Vec<Frec>>) -> State {
    State { faults: f, ..s.clone() }
}

/// `f` with row `k` replaced by `v` (Coq: a function updated at one point).
pub fn upd<V: Clone>(f: &BTreeMap<Nat, V>, k: Nat, v: V) -> BTreeMap<Nat, V> {
    let mut g = f.clone();
    g.insert(k, v);
    g
}
/// `f` with entry (k, l) replaced by `v` (None: absent).
pub fn upd2<V: Clone>(
    f: &BTreeMap<Nat, BTreeMap<Nat, V>>,
    k: Nat,
    l: Nat,
    v: Option<V>,
) -> BTreeMap<Nat, BTreeMap<Nat, V>> {
    let mut g = f.clone();
    let row = g.entry(k).or_default();
    match v {
        Some(v) => row.insert(l, v),
        None => row.remove(&l),
    };
    g
}

/// Drops the IOTLB entries of (d, i, j).
pub fn inval_page(s: &State, d: Nat, i: Nat, j: Nat) -> State {
    set_tlb(s, s.iotlb.iter().copied().filter(|e| !(e.t_dom == d && e.t_i == i && e.t_j == j)).collect())
}
/// Drops the IOTLB entries of (d, i, _).
pub fn inval_range(s: &State, d: Nat, i: Nat) -> State {
    set_tlb(s, s.iotlb.iter().copied().filter(|e| !(e.t_dom == d && e.t_i == i)).collect())
}
/// Drops the IOTLB entries of domain d.
pub fn inval_domain(s: &State, d: Nat) -> State {
    set_tlb(s, s.iotlb.iter().copied().filter(|e| e.t_dom != d).collect())
}
/// Drops the cached context entries of `rid`.
pub fn inval_ctx(s: &State, rid: Nat) -> State {
    set_ctx(s, s.ctx.clone(), s.ctxc.iter().copied().filter(|e| e.0 != rid).collect())
}
/// Drops the cached IRTEs of handle `v`.
pub fn inval_irte(s: &State, v: Nat) -> State {
    set_irte(s, s.irte.clone(), s.irtec.iter().copied().filter(|e| e.0 != v).collect())
}

/// The domain of the live IOSpace rooted at `r`.
pub fn dom_of(s: &State, r: Paddr) -> Option<Nat> {
    s.doms.get(&r).copied()
}

/// FrameUnmapIo on the cap in slot `f`.
pub fn unmap_frame(s: &State, f: Slot) -> State {
    let Some(&Cap::CFrame(pa, r, dev, Some((rr, i, j)))) = s.caps.get(&f) else { return s.clone() };
    let mut caps = s.caps.clone();
    caps.insert(f, Cap::CFrame(pa, r, dev, None));
    let s1 = set_caps(s, caps);
    let Some(&t) = s.rootent.get(&rr).and_then(|m| m.get(&i)) else { return s1 };
    let Some(&(pa2, _)) = s.leafent.get(&t).and_then(|m| m.get(&j)) else { return s1 };
    if pa != pa2 {
        return s1;
    }
    let s2 = if cfg!(feature = "mutant-hole1") { s1 } else { set_leaf(&s1, upd2(&s.leafent, t, j, None)) };
    match dom_of(s, rr) {
        Some(d) if !cfg!(feature = "mutant-skip-inval") => inval_page(&s2, d, i, j),
        _ => s2,
    }
}

/// IoPageTableUnmap on the cap in slot `t`.
pub fn unmap_table(s: &State, t: Slot) -> State {
    let Some(&Cap::CIoPageTable(tt, Some((rr, i)))) = s.caps.get(&t) else { return s.clone() };
    let mut caps = s.caps.clone();
    caps.insert(t, Cap::CIoPageTable(tt, None));
    let s1 = set_caps(s, caps);
    let s2 = match s.rootent.get(&rr).and_then(|m| m.get(&i)) {
        Some(&t2) if t2 == tt => set_root(&s1, upd2(&s.rootent, rr, i, None)),
        _ => s1,
    };
    let s3 = if cfg!(feature = "mutant-skip-empty") { s2 } else { set_leaf(&s2, upd(&s.leafent, tt, BTreeMap::new())) };
    match dom_of(s, rr) {
        Some(d) => inval_range(&s3, d, i),
        None => s3,
    }
}

/// The last IOSpace cap is gone.
pub fn destroy_iospace(s: &State, r: Paddr, d: Nat) -> State {
    let s1 = set_ctx(
        s,
        s.ctx.iter().filter(|e| e.1 .0 != r).map(|(&k, &v)| (k, v)).collect(),
        s.ctxc.iter().copied().filter(|e| e.1 .0 != r).collect(),
    );
    let s2 = inval_domain(&s1, d);
    let s3 = set_faults(&s2, upd(&s.faults, d, Vec::new()));
    let mut doms = s.doms.clone();
    doms.remove(&r);
    set_doms(&s3, doms)
}

/// The last cap of an MSI vector is gone.
pub fn release_msi(s: &State, v: Nat) -> State {
    let mut irte = s.irte.clone();
    if !cfg!(feature = "mutant-hole8") {
        irte.remove(&v);
    }
    inval_irte(&set_irte(s, irte, s.irtec.clone()), v)
}

/// Some slot's parent is `x`.
pub fn has_children(s: &State, x: Slot) -> bool {
    s.parent.values().any(|&p| p == x)
}
/// The cap is an IOSpace cap to root `r`.
pub fn is_ios(r: Paddr, c: &Cap) -> bool {
    matches!(*c, Cap::CIoSpace(r2, _) if r2 == r)
}
/// The cap is an MSI cap for vector `v`.
pub fn is_msi(v: Nat, c: &Cap) -> bool {
    matches!(*c, Cap::CMsi(v2, _) if v2 == v)
}
/// A slot other than `x` holds an IOSpace cap to `r`.
pub fn other_ios(s: &State, x: Slot, r: Paddr) -> bool {
    s.caps.iter().any(|(&k, c)| k != x && is_ios(r, c))
}
/// A slot other than `x` holds an MSI cap for `v`.
pub fn other_msi(s: &State, x: Slot, v: Nat) -> bool {
    s.caps.iter().any(|(&k, c)| k != x && is_msi(v, c))
}

/// `x` leaves the tree; its children become children of its parent.
pub fn reparent(p: &BTreeMap<Slot, Slot>, x: Slot) -> BTreeMap<Slot, Slot> {
    let up = p.get(&x).copied();
    p.iter()
        .filter(|(&k, _)| k != x)
        .filter_map(|(&k, &q)| if q == x { up.map(|u| (k, u)) } else { Some((k, q)) })
        .collect()
}
/// Empties slot `x`.
pub fn remove_slot(s: &State, x: Slot) -> State {
    let mut caps = s.caps.clone();
    caps.remove(&x);
    let mut orig = s.orig.clone();
    orig.remove(&x);
    set_tree(&set_caps(s, caps), reparent(&s.parent, x), orig)
}

/// Delete of one slot.
pub fn delete_slot(s: &State, x: Slot) -> State {
    let Some(&c) = s.caps.get(&x) else { return s.clone() };
    let s1 = match c {
        Cap::CFrame(_, _, _, Some(_)) => unmap_frame(s, x),
        Cap::CIoPageTable(_, Some(_)) => unmap_table(s, x),
        _ => s.clone(),
    };
    let s2 = remove_slot(&s1, x);
    match c {
        Cap::CIoSpace(r, d) if !other_ios(s, x, r) => destroy_iospace(&s2, r, d),
        Cap::CMsi(v, _) if !other_msi(s, x, v) => release_msi(&s2, v),
        _ => s2,
    }
}

/// `u` is an ancestor of `x` within `fuel` links.
pub fn descb(fuel: Nat, p: &BTreeMap<Slot, Slot>, u: Slot, x: Slot) -> bool {
    if fuel == 0 {
        return false;
    }
    match p.get(&x) {
        Some(&q) => q == u || descb(fuel - 1, p, u, q),
        None => false,
    }
}

/// The cap Retype makes.
pub fn new_cap(k: Kind, pa: Paddr, dev: bool, d: Nat) -> Cap {
    match k {
        Kind::KCNode => Cap::CCNode(pa),
        Kind::KTcb => Cap::CTcb(pa),
        Kind::KEndpoint => Cap::CEndpoint(pa),
        Kind::KNotification => Cap::CNotification(pa),
        Kind::KPageTable => Cap::CPageTable(pa),
        Kind::KFrame => Cap::CFrame(pa, Rights { rd: true, wr: true }, dev, None),
        Kind::KIoSpace => Cap::CIoSpace(pa, d),
        Kind::KIoPageTable => Cap::CIoPageTable(pa, None),
    }
}

/// Retype one object from the untyped in `u` into the empty slot `dst`.
pub fn retype(s: &State, u: Slot, k: Kind, dst: Slot, d: Nat) -> State {
    let (Some(&Cap::CUntyped(b, sz, dev, wm)), None) = (s.caps.get(&u), s.caps.get(&dst)) else { return s.clone() };
    let wm0 = if has_children(s, u) { wm } else { 0 };
    let ok = wm0 < sz
        && u != dst
        && (!dev || k == Kind::KFrame)
        && (k != Kind::KIoSpace || s.doms.values().all(|&d2| d2 != d));
    if !ok {
        return s.clone();
    }
    let pa = b + wm0;
    let c = new_cap(k, pa, dev, d);
    let mut caps = s.caps.clone();
    caps.insert(u, Cap::CUntyped(b, sz, dev, wm0 + 1));
    caps.insert(dst, c);
    let s1 = set_caps(s, caps);
    let mut parent = s.parent.clone();
    parent.insert(dst, u);
    let mut orig = s.orig.clone();
    orig.insert(dst);
    let s2 = set_tree(&s1, parent, orig);
    let s3 = set_leaf(&set_root(&s2, upd(&s.rootent, pa, BTreeMap::new())), upd(&s.leafent, pa, BTreeMap::new()));
    match k {
        Kind::KIoSpace => set_faults(&set_doms(&s3, upd(&s.doms, pa, d)), upd(&s.faults, d, Vec::new())),
        _ => s3,
    }
}

/// The cap Copy / Mint makes (None: not copyable).
pub fn derive(c: &Cap, r: Rights) -> Option<Cap> {
    match *c {
        Cap::CUntyped(..) | Cap::CIoPageTable(..) | Cap::CPageTable(_) | Cap::CIrqControl => None,
        Cap::CFrame(pa, r0, dev, _) => Some(Cap::CFrame(pa, rinter(r0, r), dev, None)),
        _ => Some(*c),
    }
}

/// Copy / Mint.
pub fn copy(s: &State, src: Slot, dst: Slot, r: Rights) -> State {
    let (Some(c), None) = (s.caps.get(&src), s.caps.get(&dst)) else { return s.clone() };
    let Some(c2) = derive(c, r) else { return s.clone() };
    if src == dst {
        return s.clone();
    }
    let mut caps = s.caps.clone();
    caps.insert(dst, c2);
    let mut parent = s.parent.clone();
    parent.insert(dst, src);
    set_tree(&set_caps(s, caps), parent, s.orig.clone())
}

/// FrameMapIo.
pub fn map_frame(s: &State, f: Slot, io: Slot, i: Nat, j: Nat, r: Rights) -> State {
    let (Some(&Cap::CFrame(pa, r0, false, None)), Some(&Cap::CIoSpace(rr, _))) = (s.caps.get(&f), s.caps.get(&io))
    else {
        return s.clone();
    };
    if !rsub(r, r0) || rnone(r) {
        return s.clone();
    }
    let Some(&t) = s.rootent.get(&rr).and_then(|m| m.get(&i)) else { return s.clone() };
    if s.leafent.get(&t).is_some_and(|m| m.contains_key(&j)) {
        return s.clone();
    }
    let mut caps = s.caps.clone();
    caps.insert(f, Cap::CFrame(pa, r0, false, Some((rr, i, j))));
    set_leaf(&set_caps(s, caps), upd2(&s.leafent, t, j, Some((pa, r))))
}

/// IoPageTableMap.
pub fn map_table(s: &State, t: Slot, io: Slot, i: Nat) -> State {
    let (Some(&Cap::CIoPageTable(tt, None)), Some(&Cap::CIoSpace(rr, _))) = (s.caps.get(&t), s.caps.get(&io)) else {
        return s.clone();
    };
    if s.rootent.get(&rr).is_some_and(|m| m.contains_key(&i)) {
        return s.clone();
    }
    let mut caps = s.caps.clone();
    caps.insert(t, Cap::CIoPageTable(tt, Some((rr, i))));
    set_root(&set_caps(s, caps), upd2(&s.rootent, rr, i, Some(tt)))
}

/// IoSpaceAssign.
pub fn assign(s: &State, io: Slot, pci: Slot) -> State {
    let (Some(&Cap::CIoSpace(rr, d)), Some(&Cap::CPciDevice(rid))) = (s.caps.get(&io), s.caps.get(&pci)) else {
        return s.clone();
    };
    if s.ctx.contains_key(&rid) {
        return s.clone();
    }
    inval_domain(&inval_ctx(&set_ctx(s, upd(&s.ctx, rid, (rr, d)), s.ctxc.clone()), rid), d)
}

/// IoSpaceUnassign.
pub fn unassign(s: &State, io: Slot, pci: Slot) -> State {
    let (Some(&Cap::CIoSpace(rr, d)), Some(&Cap::CPciDevice(rid))) = (s.caps.get(&io), s.caps.get(&pci)) else {
        return s.clone();
    };
    match s.ctx.get(&rid) {
        Some(&(r2, _)) if r2 == rr => {
            let mut ctx = s.ctx.clone();
            ctx.remove(&rid);
            inval_domain(&inval_ctx(&set_ctx(s, ctx, s.ctxc.clone()), rid), d)
        }
        _ => s.clone(),
    }
}

/// IrqControlGetMsi.
pub fn get_msi(s: &State, ctl: Slot, pci: Slot, dst: Slot, v: Nat) -> State {
    let (Some(Cap::CIrqControl), Some(&Cap::CPciDevice(rid)), None) =
        (s.caps.get(&ctl), s.caps.get(&pci), s.caps.get(&dst))
    else {
        return s.clone();
    };
    if s.irte.contains_key(&v) {
        return s.clone();
    }
    let mut caps = s.caps.clone();
    caps.insert(dst, Cap::CMsi(v, rid));
    let s1 = set_caps(s, caps);
    let mut parent = s.parent.clone();
    parent.insert(dst, ctl);
    let s2 = set_tree(&s1, parent, s.orig.clone());
    let checked = if cfg!(feature = "mutant-skip-sid") { None } else { Some(rid) };
    inval_irte(&set_irte(&s2, upd(&s.irte, v, checked), s.irtec.clone()), v)
}

/// IoSpaceNextFault.
pub fn next_fault(s: &State, io: Slot) -> State {
    let Some(&Cap::CIoSpace(_, d)) = s.caps.get(&io) else { return s.clone() };
    let rest = s.faults.get(&d).map(|q| q.iter().skip(1).copied().collect()).unwrap_or_default();
    set_faults(s, upd(&s.faults, d, rest))
}

/// A system call or a Revoke unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Retype u k dst d.
    Retype(Slot, Kind, Slot, Nat),
    /// Copy src dst r.
    Copy(Slot, Slot, Rights),
    /// Delete x.
    Delete(Slot),
    /// RevokeOne x victim.
    RevokeOne(Slot, Slot),
    /// MapIo f io i j r.
    MapIo(Slot, Slot, Nat, Nat, Rights),
    /// UnmapIo f.
    UnmapIo(Slot),
    /// MapIoTable t io i.
    MapIoTable(Slot, Slot, Nat),
    /// UnmapIoTable t.
    UnmapIoTable(Slot),
    /// Assign io pci.
    Assign(Slot, Slot),
    /// Unassign io pci.
    Unassign(Slot, Slot),
    /// GetMsi ctl pci dst v.
    GetMsi(Slot, Slot, Slot, Nat),
    /// NextFault io.
    NextFault(Slot),
}

/// One system call, or one preemptible unit of Revoke.
pub fn step(s: &State, o: Op) -> State {
    match o {
        Op::Retype(u, k, dst, d) => retype(s, u, k, dst, d),
        Op::Copy(a, b, r) => copy(s, a, b, r),
        Op::Delete(x) => delete_slot(s, x),
        Op::RevokeOne(x, v) => {
            if descb(s.parent.len() as Nat, &s.parent, x, v) && !has_children(s, v) {
                delete_slot(s, v)
            } else {
                s.clone()
            }
        }
        Op::MapIo(f, io, i, j, r) => map_frame(s, f, io, i, j, r),
        Op::UnmapIo(f) => match s.caps.get(&f) {
            Some(Cap::CFrame(_, _, _, Some(_))) => unmap_frame(s, f),
            _ => s.clone(),
        },
        Op::MapIoTable(t, io, i) => map_table(s, t, io, i),
        Op::UnmapIoTable(t) => unmap_table(s, t),
        Op::Assign(io, p) => assign(s, io, p),
        Op::Unassign(io, p) => unassign(s, io, p),
        Op::GetMsi(c, p, d, v) => get_msi(s, c, p, d, v),
        Op::NextFault(io) => next_fault(s, io),
    }
}
