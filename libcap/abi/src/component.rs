//! The component boot ABI: fixed slots, info page, supervisor protocol.
//!
//! Init (the root task) builds every component of the system description. A component
//! has no bootinfo: it starts at its ELF entry with `rdi` = [`COMPONENT_INFO_VADDR`],
//! where init mapped one read-only page holding a [`ComponentInfo`]: its name, index,
//! generation (restarts), heap region, spare untyped and the named caps the
//! description gave it. Its CSpace is its own CNode with a guard, so CPtrs are small
//! integers: the fixed slots below, then the named caps from [`FIRST_NAMED`] on.
//!
//! Management components talk to init's supervisor endpoint with the labels
//! [`SUPERVISOR_RESTART`] / [`SUPERVISOR_CUTOFF`].

use static_assertions::const_assert_eq;

use crate::bootinfo::SlotRegion;
use crate::layout;

/// Where init maps the component's info page (read-only). The same address as the
/// root task's bootinfo: a component has none.
pub const COMPONENT_INFO_VADDR: u64 = layout::ROOT_BOOTINFO_VADDR;
/// Where init maps the component's IPC buffer (read-write); libcap's `_start` uses it.
pub const COMPONENT_IPC_BUFFER_VADDR: u64 = layout::ROOT_IPC_BUFFER_VADDR;
/// Top (exclusive) of the component's stack; one unmapped guard page lies below it.
pub const COMPONENT_STACK_TOP: u64 = layout::ROOT_STACK_TOP;
/// Where init maps the component's heap region (read-write, `heap_bytes` long).
pub const COMPONENT_HEAP_VADDR: u64 = 0x0000_6000_0000_0000;
/// Where init maps shared regions and device frames a description gives no address:
/// one after another, each followed by an unmapped guard page.
pub const COMPONENT_MAP_VADDR: u64 = 0x0000_5000_0000_0000;

/// Badge bit of a [`CapKind::FaultSource`] entry that names a device.
pub const FAULT_SOURCE_DEVICE: u64 = 1 << 32;

/// The component's TCB.
pub const TCB: u64 = 1;
/// The component's own CNode (its whole CSpace, guarded).
pub const CNODE: u64 = 2;
/// The component's VSpace.
pub const VSPACE: u64 = 3;
/// The component's IPC buffer frame.
pub const IPC_BUFFER: u64 = 7;
/// A minted copy of the debug console (libcap's `println!` uses this slot).
pub const DEBUG_CONSOLE: u64 = crate::slots::DEBUG_CONSOLE;
/// Init's fault endpoint, badged with the component index (the TCB's fault handler).
pub const FAULT_EP: u64 = 9;
/// First of the component's spare untyped caps (`ComponentInfo::budget_untyped`).
pub const BUDGET_UNTYPED: u64 = 10;
/// First slot of the named caps listed in the info page.
pub const FIRST_NAMED: u64 = 16;

/// The smallest `cnode_bits` a VMM component's description should give it (guest
/// RAM, its tables and their copies take about 100 slots; docs/vm.md).
pub const CNODE_BITS_VMM: u32 = 10;

/// Magic of a [`ComponentInfo`].
pub const COMPONENT_MAGIC: [u8; 8] = *b"CAPCOMP1";
/// Version of the [`ComponentInfo`] layout.
pub const COMPONENT_VERSION: u32 = 1;
/// Bytes of a component name (NUL padded).
pub const NAME_LEN: usize = 32;
/// Bytes of a cap name (NUL padded).
pub const CAP_NAME_LEN: usize = 24;
/// Named caps an info page holds: the header and the entries fill one page.
pub const MAX_CAPS: usize = 62;

crate::abi_enum! {
    /// What a named cap is.
    pub enum CapKind: u8 {
        /// An endpoint of a channel: `rights` WRITE (+GRANT) = client (send), READ = server.
        Endpoint = 1,
        /// A notification of a channel: WRITE = signal, READ = wait.
        Notification = 2,
        /// A shared memory region, mapped at `vaddr` (`size` bytes); `rights` READ only
        /// when the description marks it read-only for this component.
        Region = 3,
        /// A PciDevice cap (only the iommu-server gets these); `badge` = device index,
        /// `size` = the device's DMA mask width in bits.
        PciDevice = 4,
        /// A device BAR's frames mapped at `vaddr` (`size` bytes, uncached; `badge` = the
        /// BAR number). The slot holds a copy of the cap of the BAR's first page (a VMM
        /// maps it into its guest), or is 0 when that page is not the driver's.
        DeviceFrame = 5,
        /// An I/O port range cap; `vaddr` = first port, `size` = number of ports.
        IoPort = 6,
        /// A send cap (grant) to the iommu-server for one device; `badge` = device index + 1.
        IommuClient = 7,
        /// An untyped cap (`size` bytes); the iommu-server's DMA pools, `badge` = device index.
        Untyped = 8,
        /// An MSI IRQHandler cap; `badge` = device index, `vaddr` = MSI address,
        /// `size` = MSI data | vector << 32.
        Msi = 9,
        /// A send cap to init's supervisor endpoint (management components).
        Supervisor = 10,
        /// No cap (slot 0): a component or device whose faults this component handles.
        /// `name` = its name; `badge` = component index, or device index |
        /// [`FAULT_SOURCE_DEVICE`]; for a device `vaddr` = its driver's component index;
        /// `size` = fault policy | restart limit << 8.
        FaultSource = 11,
        /// No cap (slot 0): a component of the system, listed for management components
        /// so they can name drivers; `badge` = its component index, `size` = its role.
        Peer = 12,
        /// An MSI-X IRQHandler cap (the iommu-server, for a device with MSI-X and no
        /// MSI); `badge` = device index, `size` = table entry | vector << 32.
        Msix = 13,
        /// A signal cap to the fault doorbell: a notification init binds to the TCB of
        /// the management component that handles faults (the iommu-server gets one;
        /// init keeps one). A signal means "fetch reports" (`FaultNext` from the server,
        /// [`SUPERVISOR_FAULT_NEXT`] from init); it carries nothing to lose.
        FaultDoorbell = 14,
        /// No cap (slot 0): a traffic rule for a filter component. `name` = the client
        /// connection it applies to; `size` = `system::FilterRule::word` (direction,
        /// protocol, destination ports).
        FilterRule = 15,
        /// An ISA device's interrupt line: an IRQHandler cap (Ack, SetNotification);
        /// `name` = the ISA device, `badge` = its ISA IRQ. `size` = [`DOORBELL_IRQ`]
        /// when init already bound the line to the component's fault doorbell (a
        /// management component: its one wait covers faults and the device); 0 when
        /// the component binds it to a notification of its own.
        IrqLine = 16,
    }
}

crate::abi_enum! {
    /// Why a supervisor request failed (reply word 0; 0 = done).
    pub enum SupervisorStatus: u64 {
        /// Done.
        Ok = 0,
        /// No component with that index.
        NoSuchComponent = 1,
        /// The component was cut off: it stays down.
        CutOff = 2,
        /// Unknown label.
        BadRequest = 3,
        /// Rebuilding failed (budget exhausted); the component stays down.
        RebuildFailed = 4,
        /// [`SUPERVISOR_FAULT_NEXT`]: no report is queued.
        Empty = 5,
        /// The target is not the requester's to restart or cut off (it handles neither
        /// its faults nor its device's, or it is the iommu-server).
        Denied = 6,
    }
}

/// Sent by a component's runtime on [`FAULT_EP`] when its `main` returned: `mrs[0]` =
/// exit code. Init counts the component as stopped (fault labels are `abi::fault`'s).
pub const COMPONENT_EXITED: u64 = 0x5300;
/// Badge bit of supervisor caps: init's one endpoint takes faults (badge = component
/// index) and supervisor requests (badge = this bit | the requester's index).
pub const SUPERVISOR_BADGE: u64 = 1 << 32;
/// A CPU-fault report: component `mrs[0]` had CPU fault `mrs[1]` (an
/// `abi::fault::FaultKind`) at `mrs[2]`; `mrs[3]` = what init did: [`REPORT_LEFT_DOWN`],
/// [`REPORT_RESTARTED`] | restarts so far << 8, or [`REPORT_STAYS_DOWN`]. Init queues
/// these for the handler and rings its [`CapKind::FaultDoorbell`]; the handler fetches
/// them with [`SUPERVISOR_FAULT_NEXT`]. Without a doorbell (a handler that is not a
/// management component) init sends this label by NBSend on the first endpoint channel
/// whose server the handler is (lossy fallback).
pub const COMPONENT_FAULT_REPORT: u64 = 0x5303;
/// [`COMPONENT_FAULT_REPORT`]: policy `log`, the component is left suspended.
pub const REPORT_LEFT_DOWN: u64 = 0;
/// [`COMPONENT_FAULT_REPORT`]: restarted (generation + 1).
pub const REPORT_RESTARTED: u64 = 1;
/// [`COMPONENT_FAULT_REPORT`]: cut off or out of restarts: it stays down.
pub const REPORT_STAYS_DOWN: u64 = 2;
/// Supervisor request: restart component `mrs[0]` (its index). Reply `[status, generation]`.
pub const SUPERVISOR_RESTART: u64 = 0x5301;
/// Supervisor request: cut component `mrs[0]` off (suspend, revoke; it stays down). Reply `[status]`.
pub const SUPERVISOR_CUTOFF: u64 = 0x5302;
/// Supervisor request: pop the oldest queued CPU-fault report for the caller. Reply
/// `[status | lost << 8 | remaining << 32, component | kind << 32, at, action]` (the
/// fields of [`COMPONENT_FAULT_REPORT`]); status `Empty` when none is queued; `lost`
/// (24 bits) counts reports dropped because the queue ([`COMPONENT_REPORT_QUEUE`]) was
/// full since the previous fetch; `remaining` is how many are still queued, so the
/// handler stops fetching without a last empty call (init stops answering once the
/// system ends and every queue is fetched).
pub const SUPERVISOR_FAULT_NEXT: u64 = 0x5304;
/// CPU-fault reports init queues per handler.
pub const COMPONENT_REPORT_QUEUE: usize = 64;
/// Badge of the iommu-server's [`CapKind::FaultDoorbell`] signal.
pub const DOORBELL_IOMMU: u64 = 1;
/// Badge of init's own doorbell signal.
pub const DOORBELL_INIT: u64 = 2;
/// Badge of an ISA device's interrupt line on its management component's doorbell.
pub const DOORBELL_IRQ: u64 = 4;
/// Supervisor request: line `mrs[0]` of init's authority graph (the `graph:` lines it
/// printed at start, in order). Reply `[status, lines in all, length in bytes, 0]`
/// and the line's text (without `graph: `) in message words 4.. ([`GRAPH_LINE_WORDS`]
/// at most, little-endian bytes); status `Empty` past the last line.
pub const SUPERVISOR_GRAPH_LINE: u64 = 0x5305;
/// Message words of text a [`SUPERVISOR_GRAPH_LINE`] reply carries (longer lines are cut).
pub const GRAPH_LINE_WORDS: usize = 20;

/// One named cap of a component.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapEntry {
    /// Name (the channel, region or device name), NUL padded.
    pub name: [u8; CAP_NAME_LEN],
    /// [`CapKind`] raw value.
    pub kind: u8,
    /// `CapRights` raw value the cap carries.
    pub rights: u8,
    /// Reserved (zero).
    pub _pad: [u8; 6],
    /// Slot in the component's CNode (a CPtr it can use directly).
    pub slot: u64,
    /// Where the region / BAR is mapped (0 if not mapped); first port for I/O ports.
    pub vaddr: u64,
    /// Bytes (regions, frames, untyped) or number of ports.
    pub size: u64,
    /// Badge (channels: the badge the server sees) or device index.
    pub badge: u64,
}

impl CapEntry {
    /// An entry with `name` truncated to [`CAP_NAME_LEN`] bytes.
    pub fn new(name: &str, kind: CapKind, rights: u8, slot: u64) -> Self {
        CapEntry { name: pad_name(name), kind: kind.raw(), rights, _pad: [0; 6], slot, vaddr: 0, size: 0, badge: 0 }
    }

    /// The name up to its first NUL ("?" if not UTF-8).
    pub fn name(&self) -> &str {
        str_of(&self.name)
    }

    /// The kind, if valid.
    pub fn kind(&self) -> Option<CapKind> {
        CapKind::try_from(self.kind).ok()
    }
}

/// The info page of one component.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ComponentInfo {
    /// [`COMPONENT_MAGIC`].
    pub magic: [u8; 8],
    /// [`COMPONENT_VERSION`].
    pub version: u32,
    /// 1 for the first instance, +1 per restart.
    pub generation: u32,
    /// Component name, NUL padded.
    pub name: [u8; NAME_LEN],
    /// Index of the component in the system description (its fault badge).
    pub index: u16,
    /// Reserved (zero).
    pub _pad: [u8; 6],
    /// The component's spare untyped caps (from [`BUDGET_UNTYPED`]).
    pub budget_untyped: SlotRegion,
    /// Bytes in the spare untyped caps.
    pub budget_bytes: u64,
    /// Start of the heap region.
    pub heap_vaddr: u64,
    /// Bytes of the heap region.
    pub heap_bytes: u64,
    /// Top (exclusive) of the stack.
    pub stack_top: u64,
    /// Bytes of stack (a guard page lies below).
    pub stack_bytes: u64,
    /// Entries used in `caps`.
    pub cap_count: u32,
    /// Reserved (zero).
    pub _pad2: u32,
    /// log2 of the slots of its CNode (`cnode_bits`): slots `0..1 << cnode_radix` are
    /// its CSpace (0 from an init older than this field).
    pub cnode_radix: u64,
    /// The named caps.
    pub caps: [CapEntry; MAX_CAPS],
}

const_assert_eq!(core::mem::size_of::<CapEntry>(), 64);
const_assert_eq!(core::mem::size_of::<ComponentInfo>(), layout::PAGE_SIZE as usize);

/// Why an info page could not take another entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InfoFull;

impl ComponentInfo {
    /// An empty info page for component `index` called `name`, generation `generation`.
    pub fn new(name: &str, index: u16, generation: u32) -> Self {
        ComponentInfo {
            magic: COMPONENT_MAGIC,
            version: COMPONENT_VERSION,
            generation,
            name: pad_name(name),
            index,
            _pad: [0; 6],
            budget_untyped: SlotRegion::default(),
            budget_bytes: 0,
            heap_vaddr: 0,
            heap_bytes: 0,
            stack_top: 0,
            stack_bytes: 0,
            cap_count: 0,
            _pad2: 0,
            cnode_radix: 0,
            caps: [CapEntry::new("", CapKind::Endpoint, 0, 0); MAX_CAPS],
        }
    }

    /// Whether magic, version and count are what this crate expects.
    pub fn is_valid(&self) -> bool {
        self.magic == COMPONENT_MAGIC && self.version == COMPONENT_VERSION && self.cap_count as usize <= MAX_CAPS
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        str_of(&self.name)
    }

    /// The used entries.
    pub fn caps(&self) -> &[CapEntry] {
        &self.caps[..(self.cap_count as usize).min(MAX_CAPS)]
    }

    /// The first entry called `name`.
    pub fn cap(&self, name: &str) -> Option<&CapEntry> {
        self.caps().iter().find(|c| c.name() == name)
    }

    /// The first entry called `name` of kind `kind`.
    pub fn cap_of(&self, name: &str, kind: CapKind) -> Option<&CapEntry> {
        self.caps().iter().find(|c| c.name() == name && c.kind == kind.raw())
    }

    /// Appends an entry.
    pub fn push(&mut self, entry: CapEntry) -> Result<(), InfoFull> {
        let i = self.cap_count as usize;
        if i >= MAX_CAPS {
            return Err(InfoFull);
        }
        self.caps[i] = entry;
        self.cap_count += 1;
        Ok(())
    }

    /// The page as bytes (what init writes into the info frame).
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: ComponentInfo is repr(C) plain data of integers and byte arrays with
        // no padding bytes (sizes asserted above; every gap is an explicit field), so
        // all its bytes are initialised; the slice lives as long as `self`.
        unsafe { core::slice::from_raw_parts((self as *const Self).cast::<u8>(), core::mem::size_of::<Self>()) }
    }
}

/// `name` truncated (at a char boundary) and NUL padded to `N` bytes.
fn pad_name<const N: usize>(name: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let mut len = name.len().min(N);
    while !name.is_char_boundary(len) {
        len -= 1;
    }
    out[..len].copy_from_slice(&name.as_bytes()[..len]);
    out
}

fn str_of(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..end]).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_page_round_trip() {
        let mut info = ComponentInfo::new("edu-driver", 3, 2);
        assert!(info.is_valid());
        assert_eq!(info.name(), "edu-driver");
        let mut e = CapEntry::new("mgmt", CapKind::Endpoint, 0b110, FIRST_NAMED);
        e.badge = 7;
        info.push(e).unwrap();
        info.push(CapEntry::new("status", CapKind::Region, 1, FIRST_NAMED + 1)).unwrap();
        assert_eq!(info.caps().len(), 2);
        assert_eq!(info.cap("mgmt").unwrap().badge, 7);
        assert_eq!(info.cap("status").unwrap().kind(), Some(CapKind::Region));
        assert!(info.cap_of("status", CapKind::Endpoint).is_none());
        assert!(info.cap("nope").is_none());
        let bytes = info.as_bytes();
        assert_eq!(bytes.len(), 4096);
        assert_eq!(&bytes[..8], b"CAPCOMP1");
    }

    #[test]
    fn full_page_and_long_names() {
        let mut info = ComponentInfo::new("a-component-name-longer-than-32-bytes!", 0, 1);
        let e = CapEntry::new("ääääääääääääää", CapKind::Endpoint, 0, 0);
        assert_eq!(e.name().len(), 24);
        assert_eq!(info.name().len(), NAME_LEN);
        for i in 0..MAX_CAPS {
            info.push(CapEntry::new("c", CapKind::Untyped, 0, i as u64)).unwrap();
        }
        assert_eq!(info.push(CapEntry::new("c", CapKind::Untyped, 0, 0)), Err(InfoFull));
        info.cap_count = MAX_CAPS as u32 + 1;
        assert!(!info.is_valid());
        // Truncation keeps UTF-8 valid.
        let e = CapEntry::new("ääääääääääääää", CapKind::Endpoint, 0, 0);
        assert_eq!(e.name(), "ä".repeat(12));
    }

    #[test]
    fn fixed_slots_below_named_caps() {
        for s in [TCB, CNODE, VSPACE, IPC_BUFFER, DEBUG_CONSOLE, FAULT_EP, BUDGET_UNTYPED] {
            assert!(s > 0 && s < FIRST_NAMED);
        }
        assert_eq!(COMPONENT_INFO_VADDR, layout::ROOT_BOOTINFO_VADDR);
        const _: () = assert!(COMPONENT_MAP_VADDR < COMPONENT_HEAP_VADDR);
        const _: () = assert!(COMPONENT_HEAP_VADDR < COMPONENT_INFO_VADDR);
    }
}
