//! IOSpaces on the VT-d hardware: domains, context tables, mappings.
//!
//! IOSpaces on the VT-d hardware: domain ids, context tables (one per bus with devices,
//! allocated at boot), assignment of DMA alias groups (every function and alias
//! requester id of a group gets the same context entry), second-level table installation, frame
//! mappings, and the invalidations that make every change take effect before the system
//! call returns: device-selective context-cache invalidations on assign / unassign /
//! destroy, followed by a domain-selective IOTLB invalidation; page-selective IOTLB
//! invalidations (one aligned block per call) on unmap, and on map in caching mode.

use core::sync::atomic::compiler_fence;

use abi::error::SyscallError;
use abi::fault::NextFault;
use abi::rights::CapRights;
use static_assertions::const_assert;

use crate::iommu::access::VtdAccess;
use crate::iommu::entries::{context_domain, context_entry, root_entry};
use crate::iommu::fault_queue::{DomainFaults, FaultQueue};
use crate::iommu::invalidation::ContextInvalidation;
pub use crate::iommu::io_mapping::{
    clear, decode_map, flush_after_map, flush_range, flush_root_range, invoke_map, map_frame, map_table, unmap,
    LeafCache, MapPlan,
};
use crate::iommu::root_index::RootIndex;
use crate::object::cap::Cap;
use crate::object::kcell::{KernelCell, KernelRef};
use crate::object::paging::TableMemory;

/// Most domain ids: what VT-d's CAP.ND can offer. Boot sizes the per-domain records
/// (in boot memory) by what every unit supports; ids 1.. are handed out (0 is reserved
/// by VT-d in caching mode), the highest is the RMRR identity domain.
pub const MAX_DOMAINS: usize = 65_536;

/// What the kernel keeps per domain id (all zero: free, no handler).
#[derive(Clone, Copy, Debug, Default)]
pub struct Domain {
    /// Handed out, or the RMRR identity domain.
    used: bool,
    /// Whether `handler` is an endpoint (else a notification).
    is_endpoint: bool,
    /// Fault handler object (0: none).
    handler: u64,
    /// Badge the handler gets.
    badge: u64,
    /// Its IOSpace's root table (0: free), so an IO mapping record (which names the
    /// root) finds the domain to invalidate.
    root: u64,
    /// Its records in the DMA fault queue and the faults it lost (4 bytes, in what was
    /// padding: a record stays 32 bytes).
    faults: DomainFaults,
}

const_assert!(core::mem::size_of::<Domain>() == 32);

/// How many domain ids boot makes records for when every unit supports `supported`
/// (CAP.ND): at least 2 (id 0 is never handed out), at most [`MAX_DOMAINS`].
pub fn domain_count(supported: usize) -> usize {
    supported.clamp(2, MAX_DOMAINS)
}

/// Boot: the per-domain records, `count` of them ([`domain_count`]) at `records`, and
/// the root index's `root_index::slots_for(count)` slots at `slots`; the RMRR identity
/// domain is the highest id.
///
/// # Safety
/// `records` is zeroed boot memory for `count` [`Domain`]s and `slots` for
/// `root_index::slots_for(count)` u16s, aligned for them, used for nothing else for
/// the kernel's life.
pub unsafe fn boot_domains(records: *mut Domain, count: usize, slots: *mut u16) {
    let s = &mut *state();
    // SAFETY: the caller's contract; an all-zero `Domain` is a valid free record.
    s.domains = unsafe { core::slice::from_raw_parts_mut(records, count) };
    // SAFETY: the caller's contract; an all-zero index is empty.
    s.root_slots = unsafe { core::slice::from_raw_parts_mut(slots, super::root_index::slots_for(count)) };
    s.rmrr_domain = (count - 1) as u16;
}

/// Boot: the requester-id and context-table records, in boot memory: room for `ids`
/// requester ids and `tables` (unit, bus) context tables (what boot counted: every
/// function and every alias id, at most one table per id).
///
/// # Safety
/// `ids` and `tables` are zeroed boot memory for `id_count` [`Rid`]s and `table_count`
/// [`ContextTable`]s, aligned for them, used for nothing else for the kernel's life.
pub unsafe fn boot_id_records(ids: *mut Rid, id_count: usize, tables: *mut ContextTable, table_count: usize) {
    let s = &mut *state();
    // SAFETY: the caller's contract; all-zero records are valid (and not yet counted).
    s.ids = unsafe { core::slice::from_raw_parts_mut(ids, id_count) };
    // SAFETY: as above, for the context-table records.
    s.context_tables = unsafe { core::slice::from_raw_parts_mut(tables, table_count) };
}

/// A (unit, bus) context table: its paddr.
#[derive(Clone, Copy, Debug, Default)]
pub struct ContextTable {
    unit: u8,
    bus: u8,
    paddr: u64,
}

/// A requester id the kernel writes context entries for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rid {
    id: u16,
    /// The remapping unit covering it.
    unit: u8,
    /// Its alias group: the bootinfo index of the group's first function.
    group: u16,
    /// Whether a PCI function (and so a PciDevice cap) has this id; else it is only
    /// an alias some function's DMA carries.
    function: bool,
    /// For a function: the id its DMA and MSIs reach the root complex with.
    wire: u16,
}

struct State {
    /// One record per domain id every unit supports (boot memory; empty before boot).
    domains: &'static mut [Domain],
    /// Root table -> domain id of every live IOSpace (boot memory, `root_index`).
    root_slots: &'static mut [u16],
    /// Ids handed out (the RMRR domain included).
    used_count: usize,
    /// One record per (unit, bus) context table (boot memory; empty before boot).
    context_tables: &'static mut [ContextTable],
    context_count: usize,
    /// Every PCI function found and every DMA alias id, with unit and group (boot
    /// memory, sized from what discovery counted; empty before boot).
    ids: &'static mut [Rid],
    id_count: usize,
    /// Translation depth new IOSpaces get.
    levels: u8,
    /// Highest domain id handed out so far (bounds the root and handler scans).
    high_water: usize,
    /// Root table of the RMRR identity domain (0: no RMRR in use).
    rmrr_root: u64,
    /// The RMRR identity domain's id: the highest id every unit supports.
    rmrr_domain: u16,
    /// Drained DMA faults waiting for their IOSpace's NextFault (see `fault_queue`).
    faults: FaultQueue,
    /// The last (root, domain) [`domain_of_root`] found, of a live IOSpace (root 0:
    /// none): a driver unmaps in one IOSpace many times in a row. Cleared when that
    /// IOSpace dies.
    last_root: (u64, u16),
}

/// The IOSpace state, borrowed for one statement or a short block at a time.
static STATE: KernelCell<State> = KernelCell::new(State {
    domains: &mut [],
    root_slots: &mut [],
    used_count: 0,
    context_tables: &mut [],
    context_count: 0,
    ids: &mut [],
    id_count: 0,
    levels: 3,
    high_water: 0,
    rmrr_root: 0,
    rmrr_domain: 0,
    faults: FaultQueue::new(),
    last_root: (0, 0),
});

#[inline(always)]
fn state() -> KernelRef<'static, State> {
    STATE.borrow_mut()
}

/// Whether (unit, bus) already has a context table.
pub fn has_context_table(unit: u8, bus: u8) -> bool {
    let s = &mut *state();
    s.context_tables[..s.context_count].iter().any(|t| t.unit == unit && t.bus == bus)
}

/// Boot: records a requester id's covering unit and alias group: a PCI function's own
/// (`wire`: the id its DMA reaches the root complex with) or, with `wire` None, an alias
/// id of the group (recorded once; functions are added first). `context_table` is a
/// zeroed page for its bus if that bus has none yet (returns whether it was used).
pub fn boot_add_device(
    hw: &mut impl VtdAccess,
    requester: u16,
    unit: u8,
    group: u16,
    wire: Option<u16>,
    root_table: u64,
    context_table: u64,
) -> bool {
    let s = &mut *state();
    if s.id_count == s.ids.len() {
        crate::warn!("iospace: more than {} requester ids; {requester:#06x} stays blocked", s.ids.len());
        return false;
    }
    if !s.ids[..s.id_count].iter().any(|r| r.id == requester) {
        s.ids[s.id_count] =
            Rid { id: requester, unit, group, function: wire.is_some(), wire: wire.unwrap_or(requester) };
        s.id_count += 1;
    }
    let bus = (requester >> 8) as u8;
    if s.context_tables[..s.context_count].iter().any(|t| t.unit == unit && t.bus == bus) {
        return false;
    }
    if s.context_count == s.context_tables.len() {
        let n = s.context_tables.len();
        crate::warn!("iospace: more than {n} context tables; bus {bus:#04x} stays blocked");
        return false;
    }
    s.context_tables[s.context_count] = ContextTable { unit, bus, paddr: context_table };
    s.context_count += 1;
    let entry = root_entry(context_table);
    let at = root_table + 16 * u64::from(bus);
    hw.write_word(at, entry[0]);
    hw.write_word(at + 8, entry[1]);
    hw.sync_for_device(at, 16);
    true
}

/// Boot: the RMRR identity domain. Every RMRR that passes `platform::rmrr::check_rmrr`
/// (against the kernel image `kernel` and the RAM ranges `ram`) and names at least one
/// present device is identity-mapped into one table tree (the RMRR domain, the highest id,
/// tables from `mem`, i.e. boot memory), and those devices' context entries point at
/// it: their firmware DMA keeps working, nothing else becomes reachable, and Assign
/// refuses them. Bad RMRRs are logged and skipped (their devices stay blocked). Must
/// run before translation is enabled (no invalidation is issued).
pub fn boot_rmrr(
    hw: &mut impl VtdAccess,
    mem: &mut impl TableMemory,
    dmar: &crate::platform::dmar::DmarInfo,
    kernel: (u64, u64),
    ram: &[(u64, u64)],
    superpages: bool,
) {
    use crate::platform::rmrr::{check_rmrr, identity_map, scope_requester, tables_needed};
    let levels = state().levels;
    for (i, r) in dmar.rmrrs().iter().enumerate() {
        let (start, end) = match check_rmrr(r.base, r.limit, levels, kernel, ram.iter().copied()) {
            Ok(region) => region,
            Err(e) => {
                crate::warn!("rmrr{i}: {:#x}..={:#x} rejected: {e}; its devices stay blocked", r.base, r.limit);
                continue;
            }
        };
        // Its present devices (as many as the table lists: the scopes are walked again
        // below rather than copied).
        let present = |scope: &crate::platform::dmar::DeviceScope| {
            scope_requester(scope).filter(|&rid| context_slot(rid).is_some())
        };
        let mut count = 0;
        for scope in dmar.scopes(r.scopes) {
            match present(scope) {
                Some(_) => count += 1,
                None => crate::warn!("rmrr{i}: scope {scope} is not a present PCI function on its start bus; skipped"),
            }
        }
        if count == 0 {
            crate::warn!("rmrr{i}: {start:#x}..{end:#x} names no present device; not mapped");
            continue;
        }
        if state().rmrr_root == 0 {
            let Some(root) = mem.alloc_table() else {
                crate::warn!("rmrr{i}: no boot memory for the identity domain; its devices stay blocked");
                continue;
            };
            let s = &mut *state();
            s.rmrr_root = root;
            s.domains[usize::from(s.rmrr_domain)].used = true;
            s.used_count += 1;
        }
        let root = state().rmrr_root;
        let needed = tables_needed(start, end, levels, superpages);
        match identity_map(mem, root, levels, start, end, superpages) {
            Ok(made) => crate::info!(
                "rmrr{i}: {start:#x}..{end:#x} identity-mapped in domain {} ({made} of at most {needed} tables) for {count} device(s); they cannot be assigned",
                state().rmrr_domain
            ),
            Err(e) => {
                crate::warn!("rmrr{i}: identity map failed ({e:?}); its devices stay blocked");
                continue;
            }
        }
        for rid in dmar.scopes(r.scopes).iter().filter_map(present) {
            let (_, slot) = context_slot(rid).expect("checked above");
            let [low, high] = context_entry(root, levels, state().rmrr_domain);
            hw.write_word(slot, low);
            hw.write_word(slot + 8, high);
            hw.sync_for_device(slot, 16);
            crate::info!(
                "rmrr{i}: {:02x}:{:02x}.{} translates through the identity domain",
                rid >> 8,
                (rid >> 3) & 0x1f,
                rid & 7
            );
        }
    }
}

/// The translation depth every IOSpace has (set at boot).
pub fn levels() -> u8 {
    state().levels
}

/// Boot: the depth new IOSpaces use (from SAGAW/MGAW).
pub fn set_levels(levels: u8) {
    state().levels = levels;
}

/// Free domain ids.
pub fn free_domains() -> u64 {
    let s = &*state();
    // Id 0 is never handed out.
    s.domains.len().saturating_sub(1 + s.used_count) as u64
}

/// Allocates a domain id for the IOSpace rooted at `root` (the caller checked one is free).
pub fn new_iospace(root: u64) -> (u16, u8) {
    let s = &mut *state();
    let id = (1..s.domains.len()).find(|&d| !s.domains[d].used).expect("retype checked a free domain");
    s.domains[id] = Domain { used: true, root, ..Domain::default() };
    let indexed = RootIndex::new(&mut *s.root_slots).insert(root, id as u16);
    debug_assert!(indexed, "the index has twice as many slots as domain ids");
    s.used_count += 1;
    s.high_water = s.high_water.max(id);
    (id as u16, s.levels)
}

/// The domain of the IOSpace rooted at `root` if it is the one [`domain_of_root`] found
/// last: one compare. That IOSpace is live (`destroy` forgets it); `None` says nothing.
#[inline(always)]
pub(crate) fn cached_domain(root: u64) -> Option<u16> {
    let s = &*state();
    (root != 0 && s.last_root.0 == root).then_some(s.last_root.1)
}

/// The domain of the live IOSpace rooted at `root`: expected constant time whatever the number
/// of IOSpaces (`root_index`; a scan of the records made UnmapIO 7,043 guest
/// instructions with 1,000 IOSpaces instead of 1,037).
pub(crate) fn domain_of_root(root: u64) -> Option<u16> {
    if let Some(domain) = cached_domain(root) {
        return Some(domain);
    }
    if root == 0 {
        return None;
    }
    let s = &mut *state();
    let domains = &*s.domains;
    let root_of = |id: u16| domains.get(usize::from(id)).filter(|d| d.used).map_or(0, |d| d.root);
    let found = RootIndex::new(&mut *s.root_slots).find(root, root_of);
    if let Some(domain) = found {
        s.last_root = (root, domain);
    }
    found
}

fn context_slot(requester: u16) -> Option<(usize, u64)> {
    let s = &mut *state();
    let unit = s.ids[..s.id_count].iter().find(|d| d.id == requester)?.unit;
    let bus = (requester >> 8) as u8;
    let table = s.context_tables[..s.context_count].iter().find(|t| t.unit == unit && t.bus == bus)?.paddr;
    Some((usize::from(unit), table + 16 * u64::from(requester & 0xff)))
}

/// The requester id MSIs of function `requester` carry (its group's id on the wire):
/// what its interrupt-remapping entries validate.
pub fn msi_source(requester: u16) -> u16 {
    let s = &mut *state();
    s.ids[..s.id_count].iter().find(|r| r.function && r.id == requester).map_or(requester, |r| r.wire)
}

/// The recorded ids of alias group `group` (functions and aliases), copied one by one
/// (no array of them on the kernel stack: groups can hold hundreds of ids).
/// Each step borrows the state only briefly, so callers may use it in between.
fn group_ids(group: u16) -> impl Iterator<Item = Rid> {
    let count = state().id_count;
    (0..count).filter_map(move |i| Some(state().ids[i]).filter(|r| r.group == group))
}

/// Checks that `members` (requester ids of the PciDevice caps presented) are exactly
/// the functions of one alias group, each once; returns the group.
fn check_group(members: &[u16]) -> Result<u16, SyscallError> {
    let s = &mut *state();
    let function = |id: u16| s.ids[..s.id_count].iter().find(|r| r.function && r.id == id);
    let first =
        function(*members.first().ok_or(SyscallError::InvalidArgument)?).ok_or(SyscallError::IllegalOperation)?;
    let size = s.ids[..s.id_count].iter().filter(|r| r.function && r.group == first.group).count();
    let exact = members.len() == size
        && members
            .iter()
            .enumerate()
            .all(|(i, &m)| function(m).is_some_and(|r| r.group == first.group) && !members[..i].contains(&m));
    if !exact {
        let id = first.id;
        crate::warn!(
            "iospace: {:02x}:{:02x}.{} is in an alias group of {size} functions: Assign/Unassign need caps to all of them",
            id >> 8,
            (id >> 3) & 0x1f,
            id & 7
        );
        return Err(SyscallError::InvalidArgument);
    }
    Ok(first.group)
}

/// Assign: the alias group whose functions are exactly `members` translates through
/// `iospace` from now on: the context entry of every function and alias id of the
/// group names its domain (a group is never split across IOSpaces).
pub fn assign(hw: &mut impl VtdAccess, iospace: &Cap, members: &[u16]) -> Result<(), SyscallError> {
    let Cap::IoSpace { paddr, domain, levels } = *iospace else { return Err(SyscallError::InvalidCapability) };
    let group = check_group(members)?;
    for r in group_ids(group) {
        let (_, slot) = context_slot(r.id).ok_or(SyscallError::IllegalOperation)?;
        match context_domain(hw.read_entry16(slot)) {
            None => {}
            Some(d) if d == state().rmrr_domain && state().rmrr_root != 0 => {
                crate::warn!(
                    "iospace: {:#06x} keeps its RMRR identity mapping (firmware DMA); it cannot be assigned",
                    r.id
                );
                return Err(SyscallError::IllegalOperation);
            }
            Some(_) => return Err(SyscallError::DeleteFirst),
        }
    }
    // Domain and width first, then the half with the present bit: the unit never reads
    // a present entry with a stale domain id.
    let [low, high] = context_entry(paddr, levels, domain);
    let mut touched = 0u32;
    for r in group_ids(group) {
        let (unit, slot) = context_slot(r.id).expect("checked above");
        hw.write_word(slot + 8, high);
        compiler_fence(core::sync::atomic::Ordering::SeqCst);
        hw.write_word(slot, low);
        hw.sync_for_device(slot, 16);
        // In caching mode not-present context entries are cached under domain id 0.
        let cached_as = if hw.caching_mode(unit) { 0 } else { domain };
        hw.invalidate_context(unit, ContextInvalidation::Device { domain: cached_as, source: r.id });
        touched |= 1 << unit;
    }
    for unit in (0..hw.unit_count()).filter(|u| touched & (1 << u) != 0) {
        hw.invalidate_iotlb(unit, domain, None);
    }
    Ok(())
}

/// Unassign: the alias group whose functions are exactly `members` is blocked again
/// (every context entry of the group cleared). It must be in `iospace`.
pub fn unassign(hw: &mut impl VtdAccess, iospace: &Cap, members: &[u16]) -> Result<(), SyscallError> {
    let Cap::IoSpace { domain, .. } = *iospace else { return Err(SyscallError::InvalidCapability) };
    let group = check_group(members)?;
    for r in group_ids(group) {
        let (_, slot) = context_slot(r.id).ok_or(SyscallError::IllegalOperation)?;
        if context_domain(hw.read_entry16(slot)) != Some(domain) {
            return Err(SyscallError::IllegalOperation);
        }
    }
    let mut touched = 0u32;
    for r in group_ids(group) {
        let (unit, slot) = context_slot(r.id).expect("checked above");
        clear_context(hw, slot);
        hw.invalidate_context(unit, ContextInvalidation::Device { domain, source: r.id });
        touched |= 1 << unit;
    }
    for unit in (0..hw.unit_count()).filter(|u| touched & (1 << u) != 0) {
        hw.invalidate_iotlb(unit, domain, None);
    }
    Ok(())
}

/// Clears the context entry at `slot` (present half first) and syncs it.
fn clear_context(hw: &mut impl VtdAccess, slot: u64) {
    hw.write_word(slot, 0);
    hw.write_word(slot + 8, 0);
    hw.sync_for_device(slot, 16);
}

/// The IOSpace's last cap is gone: every device in its domain is blocked, the domain freed.
pub fn destroy(hw: &mut impl VtdAccess, iospace: &Cap) {
    let Cap::IoSpace { domain, .. } = *iospace else { return };
    let id_count = state().id_count;
    // Clear and invalidate each device's entry, then each touched unit's IOTLB once
    // (in caching mode every unit: it may hold not-present entries of the domain).
    let mut touched = 0u32;
    for i in 0..id_count {
        let requester = state().ids[i].id;
        if let Some((unit, slot)) = context_slot(requester) {
            if context_domain(hw.read_entry16(slot)) == Some(domain) {
                clear_context(hw, slot);
                hw.invalidate_context(unit, ContextInvalidation::Device { domain, source: requester });
                touched |= 1 << unit;
            }
        }
    }
    for unit in 0..hw.unit_count() {
        if touched & (1 << unit) != 0 || hw.caching_mode(unit) {
            hw.invalidate_iotlb(unit, domain, None);
        }
    }
    let s = &mut *state();
    // Its queued faults go with it: the next owner of the id must not see them.
    s.faults.drop_domain(domain);
    // Out of the index while the record still names its root.
    let root = s.domains[usize::from(domain)].root;
    let domains = &*s.domains;
    let root_of = |id: u16| domains.get(usize::from(id)).filter(|d| d.used).map_or(0, |d| d.root);
    RootIndex::new(&mut *s.root_slots).remove(root, root_of);
    if s.last_root.0 == root {
        s.last_root = (0, 0);
    }
    s.domains[usize::from(domain)] = Domain::default();
    s.used_count = s.used_count.saturating_sub(1);
}

/// SetFaultHandler: `handler` (notification or endpoint cap) hears about this
/// IOSpace's DMA faults.
pub fn set_fault_handler(iospace: &Cap, handler: &Cap) -> Result<(), SyscallError> {
    let Cap::IoSpace { domain, .. } = *iospace else { return Err(SyscallError::InvalidCapability) };
    let entry = match *handler {
        Cap::Notification { paddr, badge, rights } if rights.contains(CapRights::WRITE) => (paddr, badge, false),
        Cap::Endpoint { paddr, badge, rights } if rights.contains(CapRights::WRITE) => (paddr, badge, true),
        _ => return Err(SyscallError::InvalidCapability),
    };
    let d = &mut state().domains[usize::from(domain)];
    (d.handler, d.badge, d.is_endpoint) = entry;
    Ok(())
}

/// The endpoint or notification at `object` is being destroyed: no IOSpace reports to
/// it any more (its memory may become anything once the untyped is retyped).
pub fn forget_fault_handler(object: u64) {
    let s = &mut *state();
    let last = s.high_water.min(s.domains.len().saturating_sub(1));
    for d in s.domains[..=last].iter_mut().filter(|d| d.handler == object) {
        (d.handler, d.badge, d.is_endpoint) = (0, 0, false);
    }
}

/// Whether any IOSpace has a fault handler (a DMA fault could wake a thread).
pub fn any_fault_handler() -> bool {
    let s = &*state();
    s.domains.iter().take(s.high_water + 1).any(|d| d.handler != 0)
}

/// A drained fault record: queue it for the IOSpace the device is in if it has a fault
/// handler (or count it lost there; a full queue may evict the biggest holder's oldest
/// record: `fault_queue`) and tell the IOSpace's handler: a notification is signalled; an endpoint with
/// a thread waiting gets the domain's oldest queued record as a `DmaFault` message
/// (taken out of the queue), else the records wait for NextFault. `requester` is the
/// id on the wire, possibly an alias: its context entry names the domain its whole
/// alias group is in. Returns whether a handler was told.
#[cfg(target_os = "none")]
pub fn report_fault(hw: &impl VtdAccess, requester: u16, reason: u8, iova: u64, is_write: bool) -> bool {
    use crate::iommu::fault_queue::Queued;
    use abi::fault::DmaFaultRecord;
    let Some((_, slot)) = context_slot(requester) else { return false };
    let Some(domain) = context_domain(hw.read_entry16(slot)) else { return false };
    let d = usize::from(domain);
    let record = DmaFaultRecord { requester, reason, is_write, iova };
    // Queue (or count lost), then read the handler and, for an endpoint, the oldest record.
    let (object, badge, oldest) = {
        let s = &mut *state();
        // The RMRR identity domain has no IOSpace to pop its records.
        if d >= s.domains.len() || !s.domains[d].used || domain == s.rmrr_domain {
            return false;
        }
        let has_handler = s.domains[d].handler != 0;
        match s.domains[d].faults.report(&mut s.faults, domain, has_handler, record) {
            Queued::Yes => {}
            // The domain holding the most loses its oldest record to this one.
            Queued::Evicted(v) => s.domains[usize::from(v)].faults.evicted(),
            _ => crate::debug!("iommu: DMA fault of domain {domain} lost (no handler, queue or share full)"),
        }
        let Domain { handler, badge, is_endpoint, .. } = s.domains[d];
        (handler, badge, is_endpoint.then(|| s.faults.peek(domain)))
    };
    if object == 0 {
        return false;
    }
    let Some(oldest) = oldest else {
        crate::thread::ipc::signal(object, badge);
        return true;
    };
    // An endpoint: nothing queued only if this fault was lost and every earlier record
    // delivered; the lost count waits for NextFault.
    let Some(oldest) = oldest else { return false };
    let words = [u64::from(oldest.requester), u64::from(oldest.reason), oldest.iova, u64::from(oldest.is_write)];
    let sent = crate::thread::ipc::kernel_message(object, badge, abi::fault::FaultKind::DmaFault.raw(), words);
    if sent {
        let s = &mut *state();
        s.domains[d].faults.delivered(&mut s.faults, domain);
    }
    sent
}

/// NextFault on `iospace`, checked: whether it has a record or a lost count to report.
pub fn decode_next_fault(iospace: &Cap) -> Result<u16, SyscallError> {
    let Cap::IoSpace { domain, .. } = *iospace else { return Err(SyscallError::InvalidCapability) };
    let s = &*state();
    match s.domains.get(usize::from(domain)) {
        Some(d) if d.faults.has_next() => Ok(domain),
        _ => Err(abi::fault::NEXT_FAULT_EMPTY),
    }
}

/// NextFault: pops `domain`'s oldest record (checked by [`decode_next_fault`]).
pub fn next_fault(domain: u16) -> NextFault {
    let s = &mut *state();
    let d = usize::from(domain);
    s.domains[d].faults.next(&mut s.faults, domain).unwrap_or_default()
}

/// Host tests: a fresh IOSpace state, `levels` deep, with room for `domains` domain
/// ids, `ids` requester ids and `tables` context tables (leaked: tests are short-lived).
#[cfg(test)]
pub fn reset_for_tests(domains: usize, ids: usize, tables: usize, levels: u8) {
    extern crate std;
    use std::boxed::Box;
    use std::vec;
    *state() = State {
        domains: Box::leak(vec![Domain::default(); domains].into_boxed_slice()),
        root_slots: Box::leak(vec![0u16; super::root_index::slots_for(domains)].into_boxed_slice()),
        used_count: 0,
        context_tables: Box::leak(vec![ContextTable::default(); tables].into_boxed_slice()),
        context_count: 0,
        ids: Box::leak(vec![Rid::default(); ids].into_boxed_slice()),
        id_count: 0,
        levels,
        high_water: 0,
        rmrr_root: 0,
        rmrr_domain: (domains - 1) as u16,
        faults: FaultQueue::new(),
        last_root: (0, 0),
    };
}

/// Host tests: the live IOSpaces as (root, domain id).
#[cfg(test)]
pub fn live_domains() -> impl Iterator<Item = (u64, u16)> {
    let s = &*state();
    let live = s.domains.iter().enumerate().filter(|(_, d)| d.used && d.root != 0);
    extern crate std;
    live.map(|(i, d)| (d.root, i as u16)).collect::<std::vec::Vec<_>>().into_iter()
}
