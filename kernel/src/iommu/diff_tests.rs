//! Differential tests: kernel IOSpace code on a VT-d simulator vs the spec.
//!
//! Random sequences of operations run on the kernel's object layer (untyped retype,
//! CNode copy / delete / revoke, `iospace` map / unmap / assign, with the simulator of
//! `vtd_sim` behind `VtdAccess`) and on `proofs/spec`'s `step`, both with every cache
//! filled as far as the hardware may after every step. After each step the abstracted
//! kernel state (caps, live domains, tables, context entries, context cache, IOTLB)
//! must equal the spec's, every DMA probe must reach the same pages, and the spec
//! state must satisfy the invariant. `PROOFS_SEQUENCES` sets the number of sequences.

extern crate std;
use std::collections::{BTreeMap, BTreeSet};
use std::format;
use std::string::String;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::vec;
use std::vec::Vec;

use abi::object::ObjectType;
use abi::rights::CapRights;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use spec::drive::{op_of, Gen, MSI_COUNT, SLOTS};
use spec::model::{self as m, Kind};
use spec::step::{self as st, Op};

use crate::iommu::iospace;
use crate::iommu::vtd_sim::VtdSim;
use crate::object::cap::Cap;
use crate::object::cnode::{self, Finaliser};
use crate::object::cte::fake::FakeSlots;
use crate::object::cte::{SlotAddr, SlotMemory, SLOT_BITS};
use crate::object::roots::{self, RootKind};
use crate::object::untyped::{self, ObjectMemory};
use crate::object::{mdb, msi::MsiVectors};

/// Steps per sequence.
pub const STEPS: usize = 200;
const CNODE_BASE: u64 = 0x10_0000;
const ROOT_TABLE: u64 = 0x1000;
const CONTEXT_TABLE: u64 = 0x2000;
const RIDS: [u16; 2] = [8, 16];
/// Untyped memory starts here: below it are the kernel's pages (spec: klo..khi).
const RAM: u64 = 16 << 12;

/// Host tests share the IOSpace and root globals: one test at a time.
static GLOBALS: Mutex<()> = Mutex::new(());

fn slot(i: u64) -> SlotAddr {
    CNODE_BASE + (i << SLOT_BITS)
}

fn iova(i: u64, j: u64) -> u64 {
    (i << 21) | (j << 12)
}

fn rights(r: m::Rights) -> CapRights {
    let mut out = CapRights::NONE;
    if r.rd {
        out = out.union(CapRights::READ);
    }
    if r.wr {
        out = out.union(CapRights::WRITE);
    }
    out
}

/// The kernel side: its slots, the simulated unit and the MSI vectors.
struct Kernel {
    slots: FakeSlots,
    sim: VtdSim,
    msi: MsiVectors,
}

/// What the kernel's `thread::finalise` does for the objects of this test, on the
/// simulator (`KernelObjects` is bare metal only); MSIs as `thread::irq` does them.
struct Objects<'a> {
    sim: &'a mut VtdSim,
    msi: &'a mut MsiVectors,
}

impl ObjectMemory for Objects<'_> {
    fn zero(&mut self, paddr: u64, len: u64) {
        self.sim.zero(paddr, len);
    }
    fn init_vspace(&mut self, _pml4: u64) {
        unreachable!("no VSpaces in this test");
    }
    fn init_tcb(&mut self, _tcb: u64) {
        unreachable!("no TCBs in this test");
    }
    fn free_domains(&self) -> u64 {
        iospace::free_domains()
    }
    fn new_iospace(&mut self, root: u64) -> (u16, u8) {
        roots::mark_live(RootKind::IoSpace, root);
        iospace::new_iospace(root)
    }
}

impl Finaliser for Objects<'_> {
    fn unmap_frame(&mut self, cap: &Cap) {
        if matches!(cap, Cap::Frame { mapping: Some(m), .. } if m.is_io()) {
            iospace::unmap(self.sim, cap);
        }
    }
    fn unmap_table(&mut self, _cap: &Cap) {}
    fn finalise_object(&mut self, cap: &Cap) {
        match *cap {
            Cap::IoSpace { paddr, .. } => {
                roots::mark_dead(RootKind::IoSpace, paddr);
                iospace::destroy(self.sim, cap);
            }
            Cap::IoPageTable { mapping: Some(_), .. } => {
                iospace::unmap(self.sim, cap);
            }
            Cap::MsiHandler { vector, .. } => {
                self.sim.clear_irte(vector);
                self.msi.release(usize::from(vector));
            }
            _ => {}
        }
    }
}

impl Kernel {
    /// The boot state of Init.v: RAM untyped at pages 16..31, device untyped at
    /// 64..67, PciDevice caps for requester ids 8 and 16, IRQControl.
    fn boot() -> Kernel {
        Kernel::boot_with_domains(64)
    }

    /// [`Kernel::boot`] with room for `domains` domain ids.
    fn boot_with_domains(domains: usize) -> Kernel {
        iospace::reset_for_tests(domains, 4, 2, 2);
        let words = std::boxed::Box::leak(vec![0u64; roots::words_for(1 << 20)].into_boxed_slice());
        // SAFETY: leaked zeroed words nothing else uses, for the rest of the process.
        unsafe { roots::init(RootKind::IoSpace, words.as_mut_ptr() as usize, words.len()) };
        let mut sim = VtdSim { root_table: ROOT_TABLE, requesters: RIDS.to_vec(), ..VtdSim::default() };
        for (group, rid) in RIDS.into_iter().enumerate() {
            iospace::boot_add_device(&mut sim, rid, 0, group as u16, Some(rid), ROOT_TABLE, CONTEXT_TABLE);
        }
        let mut slots = FakeSlots::default();
        let boot = [
            Cap::Untyped {
                paddr: RAM,
                size_bits: 16,
                is_device: false,
                free_offset: 0,
                cleared: crate::object::untyped::Cleared::NONE,
            },
            Cap::Untyped {
                paddr: 64 << 12,
                size_bits: 14,
                is_device: true,
                free_offset: 0,
                cleared: crate::object::untyped::Cleared::NONE,
            },
            Cap::PciDevice { segment: 0, requester_id: RIDS[0] },
            Cap::PciDevice { segment: 0, requester_id: RIDS[1] },
            Cap::IrqControl,
        ];
        for (i, cap) in boot.into_iter().enumerate() {
            mdb::insert_root(&mut slots, slot(i as u64), cap, true);
        }
        Kernel { slots, sim, msi: MsiVectors::new() }
    }

    fn cap(&self, i: u64) -> Cap {
        self.slots.load(slot(i)).cap
    }

    /// One operation, decoded and performed as the kernel's invocation layer does.
    fn apply(&mut self, op: Op) {
        let mut objects = Objects { sim: &mut self.sim, msi: &mut self.msi };
        match op {
            Op::Retype(u, k, dst, _) => {
                let t = match k {
                    Kind::KFrame => ObjectType::Frame4K,
                    Kind::KIoSpace => ObjectType::IoSpace,
                    Kind::KIoPageTable => ObjectType::IoPageTable,
                    other => unreachable!("{other:?} is not generated"),
                };
                let dest = || core::iter::once(slot(dst));
                let free = iospace::free_domains();
                if let Ok(plan) = untyped::decode_retype(&self.slots, slot(u), t, 0, 1, dest(), free) {
                    untyped::invoke_retype(&mut self.slots, &mut objects, slot(u), &plan, dest());
                }
            }
            Op::Copy(src, dst, r) => {
                let derived = cnode::decode_derive(&self.slots, slot(src), rights(r), None);
                if let (Ok(c), Ok(())) = (derived, cnode::decode_empty(&self.slots, slot(dst))) {
                    cnode::invoke_copy(&mut self.slots, slot(src), slot(dst), c);
                }
            }
            Op::Delete(x) => cnode::delete(&mut self.slots, &mut objects, slot(x)),
            Op::RevokeOne(x, _) => {
                cnode::revoke(&mut self.slots, &mut objects, slot(x));
            }
            Op::MapIo(f, io, i, j, r) => {
                let (frame, space) = (self.cap(f), self.cap(io));
                if let Ok(c) = iospace::map_frame(&mut self.sim, &frame, &space, iova(i, j), rights(r)) {
                    self.slots.store_cap(slot(f), c);
                }
            }
            Op::UnmapIo(x) | Op::UnmapIoTable(x) => {
                let c = self.cap(x);
                let io_mapped = match c {
                    Cap::Frame { mapping: Some(m), .. } => m.is_io() && matches!(op, Op::UnmapIo(_)),
                    Cap::IoPageTable { mapping: Some(_), .. } => matches!(op, Op::UnmapIoTable(_)),
                    _ => false,
                };
                if io_mapped {
                    if let Some(unmapped) = iospace::unmap(&mut self.sim, &c) {
                        self.slots.store_cap(slot(x), unmapped);
                    }
                }
            }
            Op::MapIoTable(t, io, i) => {
                let (table, space) = (self.cap(t), self.cap(io));
                if let Ok(c) = iospace::map_table(&mut self.sim, &table, &space, iova(i, 0)) {
                    self.slots.store_cap(slot(t), c);
                }
            }
            Op::Assign(io, pci) | Op::Unassign(io, pci) => {
                if let Cap::PciDevice { requester_id, .. } = self.cap(pci) {
                    let space = self.cap(io);
                    let _ = if matches!(op, Op::Assign(..)) {
                        iospace::assign(&mut self.sim, &space, &[requester_id])
                    } else {
                        iospace::unassign(&mut self.sim, &space, &[requester_id])
                    };
                }
            }
            Op::GetMsi(ctl, pci, dst, _) => {
                let (Cap::IrqControl, Cap::PciDevice { requester_id, .. }) = (self.cap(ctl), self.cap(pci)) else {
                    return;
                };
                if cnode::decode_empty(&self.slots, slot(dst)).is_err() {
                    return;
                }
                let Some(index) = self.msi.allocate(requester_id, MSI_COUNT) else { return };
                let vector = index as u8;
                self.sim.write_irte(
                    vector,
                    crate::iommu::intremap::msi_entry(vector, 0, iospace::msi_source(requester_id)),
                );
                let cap = Cap::MsiHandler { vector, requester_id };
                // As `invoke::irq` does: a root of the derivation tree, not revocable.
                mdb::insert_root(&mut self.slots, slot(dst), cap, false);
            }
            Op::NextFault(_) => unreachable!("not generated"),
        }
    }

    /// The kernel state in the spec's terms (tree, faults and kernel region excepted).
    fn abstraction(&self) -> m::State {
        let mut s = m::State::default();
        for i in 0..u64::from(SLOTS) {
            if let Some(c) = abstract_cap(&self.cap(i)) {
                s.caps.insert(i, c);
            }
        }
        s.doms = iospace::live_domains().map(|(root, d)| (root >> 12, u64::from(d))).collect();
        for (a, e) in self.sim.mem.range(RAM..) {
            let (page, index) = (a >> 12, (a & 0xfff) / 8);
            let rights = m::Rights { rd: e & 1 != 0, wr: e & 2 != 0 };
            // Root entries are R/W table pointers; leaves carry the mapping's rights.
            if s.caps.values().any(|c| matches!(*c, m::Cap::CIoSpace(r, _) if r == page)) || self.was_root(page) {
                s.rootent.entry(page).or_default().insert(index, (e & 0x000f_ffff_ffff_f000) >> 12);
            } else {
                s.leafent.entry(page).or_default().insert(index, ((e & 0x000f_ffff_ffff_f000) >> 12, rights));
            }
        }
        for rid in RIDS {
            if let Some((root, d)) = self.sim.context_of(rid) {
                s.ctx.insert(u64::from(rid), (root >> 12, u64::from(d)));
            }
        }
        s.ctxc = self.sim.context_cache.iter().map(|c| (u64::from(c.0), (c.1 >> 12, u64::from(c.2)))).collect();
        s.iotlb = self
            .sim
            .iotlb
            .iter()
            .map(|e| m::Tlbe {
                t_dom: u64::from(e.0),
                t_i: (e.1 >> 21) & 0x1ff,
                t_j: (e.1 >> 12) & 0x1ff,
                t_pa: e.2 >> 12,
                t_r: m::Rights { rd: e.3, wr: e.4 },
            })
            .collect();
        s.irte = self
            .sim
            .irte
            .iter()
            .map(|(&v, e)| (u64::from(v), crate::iommu::intremap::entry_source(*e).map(u64::from)))
            .collect();
        s.irtec = self.sim.irte_cache.iter().map(|(v, e)| (u64::from(*v), e.map(u64::from))).collect();
        s
    }

    /// Whether `page` is a (possibly dead) IOSpace root: an IO page-table cap installed there.
    fn was_root(&self, page: u64) -> bool {
        (0..u64::from(SLOTS))
            .any(|i| matches!(self.cap(i), Cap::IoPageTable { mapping: Some(m), .. } if m.vspace >> 12 == page))
    }
}

fn abstract_cap(c: &Cap) -> Option<m::Cap> {
    let r = |r: CapRights| m::Rights { rd: r.contains(CapRights::READ), wr: r.contains(CapRights::WRITE) };
    Some(match *c {
        Cap::Null => return None,
        Cap::Untyped { paddr, size_bits, is_device, free_offset, .. } => {
            m::Cap::CUntyped(paddr >> 12, 1 << (size_bits - 12), is_device, free_offset >> 12)
        }
        Cap::Frame { paddr, rights, is_device, mapping, .. } => m::Cap::CFrame(
            paddr >> 12,
            r(rights),
            is_device,
            mapping.map(|mp| (mp.vspace >> 12, (mp.vaddr >> 21) & 0x1ff, (mp.vaddr >> 12) & 0x1ff)),
        ),
        Cap::IoSpace { paddr, domain, .. } => m::Cap::CIoSpace(paddr >> 12, u64::from(domain)),
        Cap::IoPageTable { paddr, mapping, .. } => {
            m::Cap::CIoPageTable(paddr >> 12, mapping.map(|mp| (mp.vspace >> 12, (mp.vaddr >> 21) & 0x1ff)))
        }
        Cap::PciDevice { requester_id, .. } => m::Cap::CPciDevice(u64::from(requester_id)),
        Cap::IrqControl => m::Cap::CIrqControl,
        Cap::MsiHandler { vector, requester_id } => m::Cap::CMsi(u64::from(vector), u64::from(requester_id)),
        other => panic!("no spec counterpart for {other:?}"),
    })
}

/// Entries by page, then index.
type Table<V> = BTreeMap<u64, BTreeMap<u64, V>>;

/// The rows of pages `keep` accepts (rows with no entries are no entries).
fn rows<V: Clone>(t: &BTreeMap<u64, BTreeMap<u64, V>>, keep: impl Fn(u64) -> bool) -> BTreeMap<u64, BTreeMap<u64, V>> {
    t.iter().filter(|r| !r.1.is_empty() && keep(*r.0)).map(|(&k, v)| (k, v.clone())).collect()
}

/// The tables compared: root tables of live IOSpaces, and every IO page table that has
/// a cap and is not installed in a dead IOSpace. Left out is memory only a dead
/// IOSpace reaches: the kernel never walks a dead root (`io_mapping::clear`), so it
/// leaves the entries there that the model clears; no device reaches them, and Retype
/// zeroes the page before it is used again (proofs/README.md, divergences).
fn visible(s: &m::State) -> (Table<u64>, Table<(u64, m::Rights)>) {
    let table_ok = |t: u64| {
        s.caps.values().any(|c| match *c {
            m::Cap::CIoPageTable(p, None) => p == t,
            m::Cap::CIoPageTable(p, Some((root, _))) => p == t && s.doms.contains_key(&root),
            _ => false,
        })
    };
    (rows(&s.rootent, |p| s.doms.contains_key(&p)), rows(&s.leafent, table_ok))
}

fn differ<T: core::fmt::Debug + PartialEq>(what: &str, kernel: T, spec: T) -> Result<(), String> {
    if kernel == spec {
        return Ok(());
    }
    Err(format!("{what} differ:\n  kernel {kernel:?}\n  spec   {spec:?}"))
}

/// Compares the abstracted kernel state with the spec's, and every DMA and MSI probe.
fn compare(k: &Kernel, s: &m::State) -> Result<u64, String> {
    let a = k.abstraction();
    differ("caps", &a.caps, &s.caps)?;
    differ("live domains", &a.doms, &s.doms)?;
    let (kernel_roots, kernel_leaves) = visible(&a);
    let (spec_roots, spec_leaves) = visible(s);
    differ("root entries", kernel_roots, spec_roots)?;
    differ("IO page-table leaves", kernel_leaves, spec_leaves)?;
    differ("context entries", &a.ctx, &s.ctx)?;
    differ("IRTEs", &a.irte, &s.irte)?;
    let (ka, kb, kc) = spec::drive::cache_sets(&a);
    let (sa, sb, sc) = spec::drive::cache_sets(s);
    differ("IOTLB", ka, sa)?;
    differ("context cache", kb, sb)?;
    differ("interrupt-entry cache", kc, sc)?;
    let mut probes = 0;
    for rid in RIDS {
        for (i, j) in (0..3).flat_map(|i| (0..3).map(move |j| (i, j))) {
            let kernel: BTreeSet<(u64, m::Rights)> =
                k.sim.reach(rid, iova(i, j)).into_iter().map(|(pa, rd, wr)| (pa >> 12, m::Rights { rd, wr })).collect();
            differ(&format!("DMA by {rid} at ({i}, {j})"), kernel, spec::drive::reach(s, u64::from(rid), i, j))?;
            probes += 1;
        }
        for v in 0..MSI_COUNT as u8 {
            let spec_ok = spec::hw::msi_ok(s, u64::from(rid), u64::from(v));
            differ(&format!("MSI {v} from {rid}"), k.sim.msi_ok(rid, v), spec_ok)?;
            probes += 1;
        }
    }
    Ok(probes)
}

fn gen() -> impl Strategy<Value = Gen> {
    let mix = spec::drive::MIX.len();
    (0..mix, any::<[u8; 4]>(), any::<bool>(), any::<bool>()).prop_map(|(o, a, r, w)| Gen(spec::drive::MIX[o], a, r, w))
}

/// Totals over every sequence run: sequences, steps, probes, probes that reached a
/// page, IOTLB entries compared (so a run that never maps anything shows).
static TOTALS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

/// Runs one sequence on both sides, comparing after every step.
fn run(trace: &[Gen]) -> Result<(), TestCaseError> {
    let mut k = Kernel::boot();
    let mut s = spec::drive::init();
    k.sim.fill_all();
    s = spec::drive::fill_all(&s);
    compare(&k, &s).map_err(|e| TestCaseError::fail(format!("at boot: {e}")))?;
    let mut probes = 0;
    let mut done: Vec<Op> = Vec::new();
    for (n, &g) in trace.iter().enumerate() {
        let op = op_of(&s, g);
        if let Some(op) = op {
            done.push(op);
            k.apply(op);
            s = match op {
                Op::RevokeOne(x, _) => {
                    let units = spec::drive::revoke_all(&s, x);
                    for (u, t) in units.iter().enumerate() {
                        spec::invariant::inv(t)
                            .map_err(|e| TestCaseError::fail(format!("step {n}, revoke unit {u}: {e}")))?;
                    }
                    units.last().expect("the start state").clone()
                }
                _ => st::step(&s, op),
            };
        }
        k.sim.fill_all();
        s = spec::drive::fill_all(&s);
        let at = || format!("step {n} ({op:?}; operations so far: {done:?})");
        spec::invariant::inv(&s).map_err(|e| TestCaseError::fail(format!("{}: spec invariant: {e}", at())))?;
        probes += compare(&k, &s).map_err(|e| TestCaseError::fail(format!("{}: {e}", at())))?;
        let reached = RIDS.iter().flat_map(|&r| (0..9).map(move |n| (r, iova(n / 3, n % 3))));
        TOTALS[3].fetch_add(reached.filter(|&(r, a)| !k.sim.reach(r, a).is_empty()).count() as u64, Ordering::Relaxed);
        TOTALS[4].fetch_add(k.sim.iotlb.len() as u64, Ordering::Relaxed);
    }
    TOTALS[0].fetch_add(1, Ordering::Relaxed);
    TOTALS[1].fetch_add(trace.len() as u64, Ordering::Relaxed);
    TOTALS[2].fetch_add(probes, Ordering::Relaxed);
    Ok(())
}

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The differential suite: `PROOFS_SEQUENCES` sequences (default 64) of [`STEPS`] steps.
#[test]
fn kernel_iospace_code_matches_the_spec() {
    let _one = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let cases = env("PROOFS_SEQUENCES", 64);
    let config =
        Config { cases, max_shrink_iters: env("PROOFS_SHRINK", 512), failure_persistence: None, ..Config::default() };
    let result = TestRunner::new(config).run(&proptest::collection::vec(gen(), STEPS), |t| run(&t));
    if let Err(e) = result {
        panic!("proofs: differential: the kernel and the spec diverge: {e}");
    }
    let [seq, steps, probes, reached, cached] = TOTALS.each_ref().map(|t| t.load(Ordering::Relaxed));
    std::println!(
        "proofs: differential: {seq} sequences, {steps} steps, {probes} DMA/MSI probes ({reached} DMA probes reached a page, {cached} IOTLB entries compared): kernel and spec agree after every step"
    );
}

/// The simulator keeps what no invalidation covered: a mapping unmapped without its
/// IOTLB invalidation stays reachable (so the suite can see a skipped invalidation).
#[test]
fn the_simulator_keeps_stale_entries() {
    let _one = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let mut k = Kernel::boot();
    let rw = m::Rights { rd: true, wr: true };
    for op in [
        Op::Retype(0, Kind::KFrame, 10, 0),
        Op::Retype(0, Kind::KIoSpace, 11, 1),
        Op::Retype(0, Kind::KIoPageTable, 12, 0),
        Op::MapIoTable(12, 11, 1),
        Op::MapIo(10, 11, 1, 2, rw),
        Op::Assign(11, 2),
    ] {
        k.apply(op);
    }
    k.sim.fill_all();
    assert_eq!(k.sim.reach(8, iova(1, 2)).len(), 1, "device 8 reaches the frame");
    assert!(k.sim.reach(16, iova(1, 2)).is_empty(), "device 16 is in no IOSpace");
    // Clearing the leaf behind the kernel's back: the IOTLB still has it.
    // Frame at page 16, IOSpace root at 17, its table at 18.
    crate::object::paging::TableMemory::write(&mut k.sim, 18 << 12, 2, 0);
    assert_eq!(k.sim.reach(8, iova(1, 2)).len(), 1, "a stale IOTLB entry still translates");
    // The kernel's unmap invalidates it.
    k.apply(Op::UnmapIo(10));
    k.sim.fill_all();
    assert!(k.sim.reach(8, iova(1, 2)).is_empty(), "{:?}", k.sim.iotlb);
}

/// The root index (`root_index`) under IOSpaces whose roots collide: 8 domain ids give
/// it 16 slots, where RAM pages 16..31 share home slots (16 and 29, 17 and 30, 18 and
/// 26) and 24, 16, 29, 21, 18, 26, 31 make one cluster that wraps past the last slot.
/// Random retypes of IOSpaces, frames and tables from four 4-page untypeds (revoked now
/// and then, so roots come back at the same pages under other ids), IO mappings,
/// assignments, copies, deletes and unmaps; after each step, with every cache filled:
/// `domain_of_root` gives each live IOSpace's domain and nothing for any other page,
/// and every IOTLB entry is a mapping some frame cap still records in a live IOSpace of
/// that domain (a wrong or missing domain on unmap leaves one that is not).
#[test]
fn colliding_roots_keep_their_domains_and_leave_no_stale_iotlb_entry() {
    let _one = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let rw = m::Rights { rd: true, wr: true };
    let (mut steps, mut shifted_roots, mut checked_entries) = (0u64, BTreeSet::<u64>::new(), 0u64);
    let mut invalidated = 0u64;
    for seed in 1..=4 * u64::from(env("PROOFS_SEQUENCES", 64)) {
        let mut k = Kernel::boot_with_domains(8);
        let mut objects = Objects { sim: &mut k.sim, msi: &mut k.msi };
        // Slots 5..=8: untypeds of RAM pages 16..19, 20..23, 24..27, 28..31.
        let dest = || 5..9u32;
        let plan =
            untyped::decode_retype(&k.slots, slot(0), ObjectType::Untyped, 14, 4, dest().map(|i| slot(i.into())), 0);
        untyped::invoke_retype(
            &mut k.slots,
            &mut objects,
            slot(0),
            &plan.expect("room"),
            dest().map(|i| slot(i.into())),
        );
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for _ in 0..400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Operands of the right kind, so that most steps do something.
            let pick = |want: &dyn Fn(&Cap) -> bool, bits: u32| {
                let fit: Vec<u64> = (9..29).filter(|&i| want(&k.cap(i))).collect();
                fit.get((x >> bits) as usize % fit.len().max(1)).copied().unwrap_or(9)
            };
            let empty = pick(&|c| matches!(c, Cap::Null), 8);
            let space = pick(&|c| matches!(c, Cap::IoSpace { .. }), 16);
            let frame = pick(&|c| matches!(c, Cap::Frame { mapping: None, .. }), 24);
            let mapped = pick(&|c| matches!(c, Cap::Frame { mapping: Some(_), .. }), 24);
            let table = pick(&|c| matches!(c, Cap::IoPageTable { mapping: None, .. }), 24);
            let placed = pick(&|c| matches!(c, Cap::IoPageTable { mapping: Some(_), .. }), 24);
            let any = pick(&|c| !matches!(c, Cap::Null), 24);
            let (u, pci, i, j) = (5 + (x >> 32) % 4, 2 + (x >> 40) % 2, (x >> 44) % 2, (x >> 48) % 2);
            let op = match x % 16 {
                0..=2 => Op::Retype(u, Kind::KIoSpace, empty, 0),
                3 | 4 => Op::Retype(u, Kind::KFrame, empty, 0),
                5 => Op::Retype(u, Kind::KIoPageTable, empty, 0),
                6 => Op::MapIoTable(table, space, i),
                7 | 8 => Op::MapIo(frame, space, i, j, rw),
                9 => Op::Assign(space, pci),
                10 if x >> 63 == 0 => Op::Delete(space),
                10 => Op::Delete(any),
                11 if x >> 62 == 0 => Op::RevokeOne(u, 0),
                11 => Op::Assign(space, pci),
                12 => Op::Unassign(space, pci),
                13 => Op::UnmapIo(mapped),
                14 if x >> 63 == 0 => Op::Copy(space, empty, rw),
                14 => Op::Copy(frame, empty, rw),
                _ => Op::UnmapIoTable(placed),
            };
            let cached = k.sim.iotlb.len();
            k.apply(op);
            invalidated += cached.saturating_sub(k.sim.iotlb.len()) as u64;
            k.sim.fill_all();
            steps += 1;
            let caps: Vec<Cap> = (0..40).map(|i| k.cap(i)).collect();
            let live: BTreeMap<u64, u16> = caps
                .iter()
                .filter_map(|c| match *c {
                    Cap::IoSpace { paddr, domain, .. } => Some((paddr, domain)),
                    _ => None,
                })
                .collect();
            for page in 16..32u64 {
                let root = page << 12;
                let want = live.get(&root).copied();
                assert_eq!(iospace::domain_of_root(root), want, "seed {seed}: root {root:#x} after {op:?}");
            }
            let live_by_domain: BTreeMap<u16, u64> = live.iter().map(|(&r, &d)| (d, r)).collect();
            assert_eq!(live.len(), live_by_domain.len(), "seed {seed}: two live IOSpaces share a domain");
            for &(d, iova, pa, _, _) in &k.sim.iotlb {
                let root = live_by_domain.get(&d);
                let recorded = caps.iter().any(|c| {
                    matches!(*c, Cap::Frame { paddr, mapping: Some(mp), .. }
                        if paddr == pa && mp.is_io() && Some(&mp.vspace) == root && mp.vaddr == iova)
                });
                assert!(recorded, "seed {seed}: stale IOTLB entry (domain {d}, {iova:#x} -> {pa:#x}) after {op:?}");
                checked_entries += 1;
            }
            shifted_roots.extend(live.keys().filter(|&&r| [16u64, 29, 21, 18, 26, 31].contains(&(r >> 12))));
        }
    }
    // The collisions did happen: roots from the wrapping cluster were live.
    assert_eq!(shifted_roots.len(), 6, "{shifted_roots:?}");
    assert!(invalidated > 0 && checked_entries > 0, "no IOTLB entry was ever cached or invalidated");
    std::println!(
        "root index: {steps} steps, {checked_entries} IOTLB entries checked, {invalidated} invalidated, no stale one"
    );
}
