//! Mirror of Invariant.v: the invariant as an executable check.
//!
//! `inv` runs every condition of Coq's `inv` record (each a function named after its
//! field) over the finite state and says which one fails first, with a witness.

use std::collections::BTreeMap;

use crate::model::*;

/// A failed condition: its Coq name and a witness.
pub type Verdict = Result<(), String>;

fn fail(name: &str, what: String) -> Verdict {
    Err(format!("{name}: {what}"))
}

/// `pa` lies in [lo, hi).
pub fn in_region(lo: Nat, hi: Nat, pa: Paddr) -> bool {
    lo <= pa && pa < hi
}

/// Parent links name live slots; no slot is its own parent.
pub fn i_tree(m: &BTreeMap<Slot, Cap>, par: &BTreeMap<Slot, Slot>) -> Verdict {
    for (&x, &p) in par {
        if !m.contains_key(&x) || !m.contains_key(&p) || x == p {
            return fail("i_tree", format!("link {x} -> {p}"));
        }
    }
    Ok(())
}
/// No slot is its own ancestor.
pub fn i_acyc(par: &BTreeMap<Slot, Slot>) -> Verdict {
    match par.keys().find(|&&x| desc(par, x, x)) {
        Some(x) => fail("i_acyc", format!("slot {x}")),
        None => Ok(()),
    }
}
fn uts(m: &BTreeMap<Slot, Cap>) -> impl Iterator<Item = (Slot, Cap)> + '_ {
    m.iter().filter(|(_, c)| matches!(c, Cap::CUntyped(..))).map(|(&x, &c)| (x, c))
}
fn ut_pages(c: &Cap) -> std::ops::Range<Nat> {
    match *c {
        Cap::CUntyped(b, sz, _, _) => b..b + sz,
        _ => 0..0,
    }
}
/// Untyped ranges are disjoint.
pub fn i_ut_disj(m: &BTreeMap<Slot, Cap>) -> Verdict {
    for (u1, c1) in uts(m) {
        for (u2, c2) in uts(m).filter(|&(u2, _)| u2 != u1) {
            if let Some(pa) = ut_pages(&c1).find(|&pa| in_ut(&c2, pa)) {
                return fail("i_ut_disj", format!("slots {u1} and {u2} share page {pa}"));
            }
        }
    }
    Ok(())
}
/// Untyped ranges are outside the kernel region.
pub fn i_ut_kern(m: &BTreeMap<Slot, Cap>, lo: Nat, hi: Nat) -> Verdict {
    for (u, c) in uts(m) {
        if ut_pages(&c).any(|pa| in_region(lo, hi, pa)) {
            return fail("i_ut_kern", format!("slot {u}"));
        }
    }
    Ok(())
}
/// No object lies in kernel memory.
pub fn i_kern(m: &BTreeMap<Slot, Cap>, lo: Nat, hi: Nat) -> Verdict {
    match m.iter().find(|(_, c)| obj_of(c).is_some_and(|(_, pa)| in_region(lo, hi, pa))) {
        Some((x, _)) => fail("i_kern", format!("slot {x}")),
        None => Ok(()),
    }
}
/// An object inside an untyped's range descends from it, below its watermark.
pub fn i_ut(m: &BTreeMap<Slot, Cap>, par: &BTreeMap<Slot, Slot>) -> Verdict {
    for (&x, c) in m {
        let Some((_, pa)) = obj_of(c) else { continue };
        for (u, uc) in uts(m) {
            if let Cap::CUntyped(b, _, _, wm) = uc {
                if in_ut(&uc, pa) && !(desc(par, u, x) && pa < b + wm) {
                    return fail("i_ut", format!("slot {x} (page {pa}) in untyped {u}"));
                }
            }
        }
    }
    Ok(())
}
/// Caps to the same memory name the same kind of object.
pub fn i_obj(m: &BTreeMap<Slot, Cap>) -> Verdict {
    let mut kinds: BTreeMap<Paddr, Kind> = BTreeMap::new();
    for (x, c) in m {
        if let Some((k, pa)) = obj_of(c) {
            if *kinds.entry(pa).or_insert(k) != k {
                return fail("i_obj", format!("slot {x} at page {pa}"));
            }
        }
    }
    Ok(())
}
/// A frame's device bit is its untyped's.
pub fn i_dev(m: &BTreeMap<Slot, Cap>) -> Verdict {
    for (x, c) in m {
        if let Cap::CFrame(pa, _, dev, _) = *c {
            if uts(m).any(|(_, u)| matches!(u, Cap::CUntyped(_, _, d, _) if d != dev) && in_ut(&u, pa)) {
                return fail("i_dev", format!("slot {x}"));
            }
        }
    }
    Ok(())
}
/// The conditions on caps and memory alone.
pub fn mem_inv(m: &BTreeMap<Slot, Cap>, par: &BTreeMap<Slot, Slot>, lo: Nat, hi: Nat) -> Verdict {
    i_tree(m, par)?;
    i_acyc(par)?;
    i_ut_disj(m)?;
    i_ut_kern(m, lo, hi)?;
    i_kern(m, lo, hi)?;
    i_ut(m, par)?;
    i_obj(m)?;
    i_dev(m)
}

/// The memory conditions of `s`.
pub fn i_mem(s: &State) -> Verdict {
    mem_inv(&s.caps, &s.parent, s.klo, s.khi)
}
/// IOSpace caps name live domains.
pub fn i_ios(s: &State) -> Verdict {
    for (x, c) in &s.caps {
        if let Cap::CIoSpace(r, d) = *c {
            if s.doms.get(&r) != Some(&d) {
                return fail("i_ios", format!("slot {x}"));
            }
        }
    }
    Ok(())
}
/// Every live domain has an IOSpace cap.
pub fn i_doms(s: &State) -> Verdict {
    for (&r, &d) in &s.doms {
        if !s.caps.values().any(|c| *c == Cap::CIoSpace(r, d)) {
            return fail("i_doms", format!("root {r} domain {d}"));
        }
    }
    Ok(())
}
/// Domain ids are unique.
pub fn i_dom_uniq(s: &State) -> Verdict {
    let mut seen = std::collections::BTreeSet::new();
    match s.doms.values().find(|&&d| !seen.insert(d)) {
        Some(d) => fail("i_dom_uniq", format!("domain {d}")),
        None => Ok(()),
    }
}
/// Context entries name live IOSpaces.
pub fn i_ctx(s: &State) -> Verdict {
    match s.ctx.iter().find(|(_, &(r, d))| s.doms.get(&r) != Some(&d)) {
        Some((rid, e)) => fail("i_ctx", format!("rid {rid} -> {e:?}")),
        None => Ok(()),
    }
}
/// Cached context entries are current.
pub fn i_ctxc(s: &State) -> Verdict {
    match s.ctxc.iter().find(|(rid, e)| s.ctx.get(rid) != Some(e)) {
        Some(e) => fail("i_ctxc", format!("stale cached context {e:?}")),
        None => Ok(()),
    }
}
/// Every IOTLB entry is what a current walk of its domain's IOSpace gives.
pub fn i_tlb(s: &State) -> Verdict {
    for e in &s.iotlb {
        let current = s.doms.iter().any(|(&r, &d)| d == e.t_dom && walk(s, r, e.t_i, e.t_j) == Some((e.t_pa, e.t_r)));
        if !current {
            return fail("i_tlb", format!("stale IOTLB entry {e:?}"));
        }
    }
    Ok(())
}
/// Every translation of a live IOSpace is a RAM frame cap's recorded mapping.
pub fn i_just(s: &State) -> Verdict {
    for &r in s.doms.keys() {
        for (&i, &t) in s.rootent.get(&r).into_iter().flatten() {
            for (&j, &(pa, rt)) in s.leafent.get(&t).into_iter().flatten() {
                let ok = s.caps.values().any(
                    |c| matches!(*c, Cap::CFrame(p, r0, false, Some(m)) if p == pa && m == (r, i, j) && rsub(rt, r0)),
                );
                if !ok {
                    return fail("i_just", format!("root {r} ({i}, {j}) -> page {pa}"));
                }
            }
        }
    }
    Ok(())
}
/// Every root entry is recorded in its table's cap.
pub fn i_root(s: &State) -> Verdict {
    for (&r, row) in &s.rootent {
        for (&i, &t) in row {
            if !s.caps.values().any(|c| *c == Cap::CIoPageTable(t, Some((r, i)))) {
                return fail("i_root", format!("root {r} index {i} -> table {t}"));
            }
        }
    }
    Ok(())
}
/// A table not installed anywhere is empty.
pub fn i_empty(s: &State) -> Verdict {
    for (&t, row) in s.leafent.iter().filter(|(_, row)| !row.is_empty()) {
        if !s.caps.values().any(|c| matches!(*c, Cap::CIoPageTable(t2, Some(_)) if t2 == t)) {
            return fail("i_empty", format!("uninstalled table {t} has {} leaves", row.len()));
        }
    }
    Ok(())
}
/// One cap per IO page table.
pub fn i_iopt1(s: &State) -> Verdict {
    let mut seen = std::collections::BTreeSet::new();
    for (x, c) in &s.caps {
        if let Cap::CIoPageTable(t, _) = *c {
            if !seen.insert(t) {
                return fail("i_iopt1", format!("slot {x}: second cap to table {t}"));
            }
        }
    }
    Ok(())
}
/// Every IRTE checks the source id of a live MSI cap's device.
pub fn i_irte(s: &State) -> Verdict {
    for (&v, &e) in &s.irte {
        let ok = e.is_some_and(|rid| s.caps.values().any(|c| *c == Cap::CMsi(v, rid)));
        if !ok {
            return fail("i_irte", format!("IRTE {v} checks {e:?}"));
        }
    }
    Ok(())
}
/// Every MSI cap has its IRTE.
pub fn i_msi(s: &State) -> Verdict {
    for (x, c) in &s.caps {
        if let Cap::CMsi(v, rid) = *c {
            if s.irte.get(&v) != Some(&Some(rid)) {
                return fail("i_msi", format!("slot {x}"));
            }
        }
    }
    Ok(())
}
/// Cached IRTEs are current.
pub fn i_irtec(s: &State) -> Verdict {
    match s.irtec.iter().find(|(v, e)| s.irte.get(v) != Some(e)) {
        Some(e) => fail("i_irtec", format!("stale cached IRTE {e:?}")),
        None => Ok(()),
    }
}

/// Coq's `inv s`: every condition, the first failure named.
pub fn inv(s: &State) -> Verdict {
    i_mem(s)?;
    i_ios(s)?;
    i_doms(s)?;
    i_dom_uniq(s)?;
    i_ctx(s)?;
    i_ctxc(s)?;
    i_tlb(s)?;
    i_just(s)?;
    i_root(s)?;
    i_empty(s)?;
    i_iopt1(s)?;
    i_irte(s)?;
    i_msi(s)?;
    i_irtec(s)
}
