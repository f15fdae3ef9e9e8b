//! A VT-d simulator for host tests: memory, context cache and IOTLB.
//!
//! It implements [`VtdAccess`] over a map of 8-byte words (table entries, root and
//! context entries all live in "physical memory"), with one remapping unit. Its caches
//! are as stale as the hardware allows: [`VtdSim::fill_all`] caches every context entry
//! and every translation a walk from a current or cached context gives, and an entry
//! leaves a cache only when a context or IOTLB invalidation the kernel issued covers it.

extern crate std;
use std::collections::{BTreeMap, BTreeSet};
use std::vec::Vec;

use crate::iommu::access::VtdAccess;
use crate::iommu::entries::{context_domain, sl};
use crate::iommu::intremap::{entry_source, irte, Irte};
use crate::iommu::invalidation::ContextInvalidation;
use crate::object::cap::FrameSize;
use crate::object::paging::TableMemory;

/// A cached context entry: (requester id, second-level root, domain id).
pub type CachedContext = (u16, u64, u16);
/// An IOTLB entry: (domain id, IOVA, page address, read, write).
pub type IotlbEntry = (u16, u64, u64, bool, bool);

/// One remapping unit with its caches, and the memory it walks.
#[derive(Debug, Default)]
pub struct VtdSim {
    /// Physical memory, 8-byte words by address (absent: zero).
    pub mem: BTreeMap<u64, u64>,
    /// The root table (one unit).
    pub root_table: u64,
    /// Requester ids that may issue DMA.
    pub requesters: Vec<u16>,
    /// The context cache.
    pub context_cache: BTreeSet<CachedContext>,
    /// The IOTLB (final translations, 4 KiB pages).
    pub iotlb: BTreeSet<IotlbEntry>,
    /// Interrupt-remapping entries by handle.
    pub irte: BTreeMap<u8, Irte>,
    /// The interrupt-entry cache: (handle, source id checked; None: none).
    pub irte_cache: BTreeSet<(u8, Option<u16>)>,
    /// Invalidation requests seen (context, IOTLB).
    pub invalidations: (u64, u64),
}

impl VtdSim {
    /// Words of `[start, start + len)` that are not zero.
    fn range(&self, start: u64, len: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.mem.range(start..start + len).map(|(&a, &v)| (a, v))
    }

    /// Zeroes `[start, start + len)`.
    pub fn zero(&mut self, start: u64, len: u64) {
        let dead: Vec<u64> = self.mem.range(start..start + len).map(|(&a, _)| a).collect();
        for a in dead {
            self.mem.remove(&a);
        }
    }

    /// The context entry `rid` has in memory now: (root, domain), if present.
    pub fn context_of(&self, rid: u16) -> Option<(u64, u16)> {
        let root = self.read_entry16(self.root_table + 16 * u64::from(rid >> 8));
        if root[0] & 1 == 0 {
            return None;
        }
        let entry = self.read_entry16((root[0] & sl::ADDR) + 16 * u64::from(rid & 0xff));
        context_domain(entry).map(|d| (entry[0] & sl::ADDR, d))
    }

    /// The contexts `rid`'s DMA may use: its entry and any cached one.
    pub fn views(&self, rid: u16) -> Vec<(u64, u16)> {
        let mut v: Vec<(u64, u16)> = self.context_of(rid).into_iter().collect();
        v.extend(self.context_cache.iter().filter(|c| c.0 == rid).map(|c| (c.1, c.2)));
        v
    }

    /// Every translation a walk from `root` gives: (IOVA, page, read, write).
    pub fn walks(&self, root: u64) -> Vec<(u64, u64, bool, bool)> {
        let mut out = Vec::new();
        for (a, e) in self.range(root, 4096) {
            if e & (sl::READ | sl::WRITE) == 0 || e & sl::SUPERPAGE != 0 {
                continue;
            }
            let i = (a - root) / 8;
            let table = e & sl::ADDR;
            for (b, leaf) in self.range(table, 4096) {
                if leaf & (sl::READ | sl::WRITE) != 0 {
                    let iova = (i << 21) | (((b - table) / 8) << 12);
                    out.push((iova, leaf & sl::ADDR, leaf & sl::READ != 0, leaf & sl::WRITE != 0));
                }
            }
        }
        out
    }

    /// Caches everything the hardware may cache now: each present context entry, and
    /// each translation of a walk from any context a device may use (current or cached).
    pub fn fill_all(&mut self) {
        for &rid in &self.requesters.clone() {
            if let Some((root, d)) = self.context_of(rid) {
                self.context_cache.insert((rid, root, d));
            }
        }
        for (&v, &e) in &self.irte {
            if e.low & irte::PRESENT != 0 {
                self.irte_cache.insert((v, entry_source(e)));
            }
        }
        for &rid in &self.requesters.clone() {
            for (root, d) in self.views(rid) {
                for (iova, pa, r, w) in self.walks(root) {
                    self.iotlb.insert((d, iova, pa, r, w));
                }
            }
        }
    }

    /// Writes IRTE `handle` and invalidates its cached copies (`remap_table`'s order).
    pub fn write_irte(&mut self, handle: u8, entry: Irte) {
        self.irte.insert(handle, entry);
        self.irte_cache.retain(|c| c.0 != handle);
    }

    /// Removes IRTE `handle` and invalidates its cached copies.
    pub fn clear_irte(&mut self, handle: u8) {
        self.irte.remove(&handle);
        self.irte_cache.retain(|c| c.0 != handle);
    }

    /// Whether an MSI from `rid` with handle `v` is delivered: a present IRTE, current
    /// or cached, that checks `rid` as the source or checks none.
    pub fn msi_ok(&self, rid: u16, v: u8) -> bool {
        let current = self.irte.get(&v).filter(|e| e.low & irte::PRESENT != 0).map(|e| entry_source(*e));
        let cached = self.irte_cache.iter().filter(|c| c.0 == v).map(|c| c.1);
        current.into_iter().chain(cached).any(|e| e.is_none_or(|s| s == rid))
    }

    /// What `rid` can reach at `iova`: (page, read, write) through any context it may
    /// use, by an IOTLB entry or by a walk.
    pub fn reach(&self, rid: u16, iova: u64) -> BTreeSet<(u64, bool, bool)> {
        let mut out = BTreeSet::new();
        for (root, d) in self.views(rid) {
            out.extend(self.iotlb.iter().filter(|e| e.0 == d && e.1 == iova).map(|e| (e.2, e.3, e.4)));
            out.extend(self.walks(root).into_iter().filter(|w| w.0 == iova).map(|w| (w.1, w.2, w.3)));
        }
        out
    }
}

impl TableMemory for VtdSim {
    fn read(&self, table: u64, index: usize) -> u64 {
        assert!(index < 512, "index {index} outside a table");
        self.mem.get(&(table + 8 * index as u64)).copied().unwrap_or(0)
    }
    fn write(&mut self, table: u64, index: usize, value: u64) {
        assert!(index < 512, "index {index} outside a table");
        self.write_word(table + 8 * index as u64, value);
    }
    fn alloc_table(&mut self) -> Option<u64> {
        None
    }
    fn clear_table(&mut self, table: u64) {
        self.zero(table, 4096);
    }
}

impl VtdAccess for VtdSim {
    fn read_entry16(&self, paddr: u64) -> [u64; 2] {
        let word = |a: u64| self.mem.get(&a).copied().unwrap_or(0);
        [word(paddr), word(paddr + 8)]
    }
    fn write_word(&mut self, paddr: u64, value: u64) {
        if value == 0 {
            self.mem.remove(&paddr);
        } else {
            self.mem.insert(paddr, value);
        }
    }
    fn sync_for_device(&mut self, _paddr: u64, _len: u64) {}
    fn unit_count(&self) -> usize {
        1
    }
    fn caching_mode(&self, _unit: usize) -> bool {
        false
    }
    fn all_support_superpage(&self, size: FrameSize) -> bool {
        size == FrameSize::Small
    }
    fn invalidate_context(&mut self, unit: usize, what: ContextInvalidation) {
        assert_eq!(unit, 0, "invalidation of a unit that does not exist");
        self.invalidations.0 += 1;
        match what {
            ContextInvalidation::Global => self.context_cache.clear(),
            // Device-selective: the entries of that source tagged with that domain.
            ContextInvalidation::Device { domain, source } => {
                self.context_cache.retain(|c| !(c.0 == source && c.2 == domain))
            }
        }
    }
    fn invalidate_iotlb(&mut self, unit: usize, domain: u16, range: Option<(u64, u64)>) {
        assert_eq!(unit, 0, "invalidation of a unit that does not exist");
        self.invalidations.1 += 1;
        let covered = |iova: u64| range.is_none_or(|(start, end)| start <= iova && iova < end);
        self.iotlb.retain(|e| !(e.0 == domain && covered(e.1)));
    }
}
