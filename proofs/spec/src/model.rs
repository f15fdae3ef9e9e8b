//! Mirror of Model.v: rights, caps, the state, the IO walk and derivation.
//!
//! Every item has the name of the Coq definition it mirrors (`names.py` checks the
//! lists match). Coq's `nat` is `u64`; total functions `paddr -> nat -> option _` are
//! maps with absent keys read as `None`; Coq lists stay vectors (the caches).

use std::collections::{BTreeMap, BTreeSet};

/// Coq `nat`.
pub type Nat = u64;
/// A global slot number.
pub type Slot = u64;
/// A physical page number.
pub type Paddr = u64;

/// Read and write rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rights {
    /// Read.
    pub rd: bool,
    /// Write.
    pub wr: bool,
}

/// `a` is within `b`.
pub fn rsub(a: Rights, b: Rights) -> bool {
    (!a.rd || b.rd) && (!a.wr || b.wr)
}

/// Both.
pub fn rinter(a: Rights, b: Rights) -> Rights {
    Rights { rd: a.rd && b.rd, wr: a.wr && b.wr }
}

/// Neither read nor write.
pub fn rnone(a: Rights) -> bool {
    !(a.rd || a.wr)
}

/// Object kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// CNode.
    KCNode,
    /// TCB.
    KTcb,
    /// Endpoint.
    KEndpoint,
    /// Notification.
    KNotification,
    /// Frame.
    KFrame,
    /// CPU page table.
    KPageTable,
    /// IOSpace.
    KIoSpace,
    /// IO page table.
    KIoPageTable,
}

/// A capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cap {
    /// Untyped: base page, size in pages, device bit, watermark.
    CUntyped(Nat, Nat, bool, Nat),
    /// CNode.
    CCNode(Paddr),
    /// TCB.
    CTcb(Paddr),
    /// Endpoint.
    CEndpoint(Paddr),
    /// Notification.
    CNotification(Paddr),
    /// CPU page table.
    CPageTable(Paddr),
    /// Frame: page, rights, device bit, IO mapping (IOSpace root, i, j).
    CFrame(Paddr, Rights, bool, Option<(Paddr, Nat, Nat)>),
    /// IOSpace: root table, domain id.
    CIoSpace(Paddr, Nat),
    /// IO page table and where it is installed (IOSpace root, i).
    CIoPageTable(Paddr, Option<(Paddr, Nat)>),
    /// PCI function: requester id.
    CPciDevice(Nat),
    /// IRQControl.
    CIrqControl,
    /// MSI: vector, requester id.
    CMsi(Nat, Nat),
}

/// The object a cap names, with its kind.
pub fn obj_of(c: &Cap) -> Option<(Kind, Paddr)> {
    match *c {
        Cap::CCNode(pa) => Some((Kind::KCNode, pa)),
        Cap::CTcb(pa) => Some((Kind::KTcb, pa)),
        Cap::CEndpoint(pa) => Some((Kind::KEndpoint, pa)),
        Cap::CNotification(pa) => Some((Kind::KNotification, pa)),
        Cap::CPageTable(pa) => Some((Kind::KPageTable, pa)),
        Cap::CFrame(pa, ..) => Some((Kind::KFrame, pa)),
        Cap::CIoSpace(pa, _) => Some((Kind::KIoSpace, pa)),
        Cap::CIoPageTable(pa, _) => Some((Kind::KIoPageTable, pa)),
        _ => None,
    }
}

/// The cap names an object at `pa`.
pub fn covers(c: &Cap, pa: Paddr) -> bool {
    obj_of(c).is_some_and(|(_, p)| p == pa)
}

/// An IOTLB entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tlbe {
    /// Domain id.
    pub t_dom: Nat,
    /// Root index.
    pub t_i: Nat,
    /// Leaf index.
    pub t_j: Nat,
    /// Page.
    pub t_pa: Paddr,
    /// Rights.
    pub t_r: Rights,
}

/// A DMA fault record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frec {
    /// Requester id.
    pub f_rid: Nat,
    /// Root index.
    pub f_i: Nat,
    /// Leaf index.
    pub f_j: Nat,
}

/// The model state (Coq `state`); maps read absent keys as `None` (or `[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Caps in slots.
    pub caps: BTreeMap<Slot, Cap>,
    /// Derivation tree: child slot -> parent slot.
    pub parent: BTreeMap<Slot, Slot>,
    /// Slots holding original caps.
    pub orig: BTreeSet<Slot>,
    /// Live IOSpaces: root -> domain id.
    pub doms: BTreeMap<Paddr, Nat>,
    /// Root table entries: root -> i -> table.
    pub rootent: BTreeMap<Paddr, BTreeMap<Nat, Paddr>>,
    /// IO page-table leaves: table -> j -> (page, rights).
    pub leafent: BTreeMap<Paddr, BTreeMap<Nat, (Paddr, Rights)>>,
    /// Context entries: requester id -> (root, domain).
    pub ctx: BTreeMap<Nat, (Paddr, Nat)>,
    /// Context cache, possibly stale.
    pub ctxc: Vec<(Nat, (Paddr, Nat))>,
    /// IOTLB, possibly stale.
    pub iotlb: Vec<Tlbe>,
    /// IRTEs: handle -> source id checked (None: none).
    pub irte: BTreeMap<Nat, Option<Nat>>,
    /// Interrupt-entry cache, possibly stale.
    pub irtec: Vec<(Nat, Option<Nat>)>,
    /// Per-domain DMA fault records.
    pub faults: BTreeMap<Nat, Vec<Frec>>,
    /// Kernel memory, first page.
    pub klo: Paddr,
    /// Kernel memory, page past the end.
    pub khi: Paddr,
}

/// `pa` is kernel memory.
pub fn in_kernel(s: &State, pa: Paddr) -> bool {
    s.klo <= pa && pa < s.khi
}

/// The hardware walk from an IOSpace root.
pub fn walk(s: &State, r: Paddr, i: Nat, j: Nat) -> Option<(Paddr, Rights)> {
    let t = *s.rootent.get(&r)?.get(&i)?;
    s.leafent.get(&t)?.get(&j).copied()
}

/// `u` is a strict ancestor of `x` in `par`.
pub fn desc(par: &BTreeMap<Slot, Slot>, u: Slot, x: Slot) -> bool {
    let mut cur = x;
    for _ in 0..=par.len() {
        match par.get(&cur) {
            Some(&p) if p == u => return true,
            Some(&p) => cur = p,
            None => return false,
        }
    }
    false
}

/// `pa` lies in the untyped `c`.
pub fn in_ut(c: &Cap, pa: Paddr) -> bool {
    matches!(*c, Cap::CUntyped(b, sz, _, _) if b <= pa && pa < b + sz)
}
