//! The packed system description (`CAPSYS01`) and its checked, no-alloc parser.
//!
//! The host tool `mksys` (tests/src/sysdesc) reads `systems/<name>.toml`, checks it and
//! packs it with [`encode`] into the boot image entry named [`SYSTEM_ENTRY`]; the root task
//! reads it back with [`SystemDesc::parse`], which checks everything again (defence in
//! depth): bounds, UTF-8 names, indices in range, enums valid, no duplicate names or
//! devices, budgets within the minimum RAM, the read-only rule of regions.
//!
//! Layout (little-endian, 8-byte aligned records, like bootinfo): a [`SystemHeader`], then
//! arrays named by [`ArrayRef`] (byte offset from the header's start, count), then a string
//! table (`strings`, counted in bytes) that names are [`StrRef`]s into. Records are read
//! with unaligned loads, so the description may sit at any address.

use core::fmt;

pub use crate::bootinfo::ArrayRef;
use static_assertions::const_assert_eq;

#[cfg(any(test, feature = "alloc"))]
#[path = "system_encode.rs"]
mod encode_impl;
#[cfg(any(test, feature = "alloc"))]
pub use encode_impl::{encode, StringTable, SystemParts};

#[path = "system_check.rs"]
mod check;
#[cfg(test)]
#[path = "system_tests.rs"]
mod tests;

/// The header's magic bytes.
pub const SYSTEM_MAGIC: [u8; 8] = *b"CAPSYS01";
/// Current format version (2: ISA devices and filter rules).
pub const SYSTEM_VERSION: u32 = 2;
/// Name of the boot image entry holding the packed description.
pub const SYSTEM_ENTRY: &str = "system";
/// "No component" in a component-index field (supervisor: init itself; handler: init logs).
pub const NONE: u16 = 0xffff;
/// Most records of one kind (bounds the parser's duplicate checks).
pub const MAX_RECORDS: u32 = 1024;
/// Longest component, channel, region or device name (fits a `CapEntry` name).
pub const NAME_MAX: usize = 23;
/// Longest program name (a boot image entry name, NUL-terminated in 32 bytes).
pub const PROGRAM_NAME_MAX: usize = 31;
/// Smallest CNode radix a component may ask for.
pub const CNODE_RADIX_MIN: u8 = 5;
/// Largest CNode radix a component may ask for.
pub const CNODE_RADIX_MAX: u8 = 16;
/// [`IsaDevice::irq`] of a device without an interrupt line (its component polls).
pub const NO_IRQ: u8 = 0xff;
/// ISA interrupt lines (IRQ 0..=15; the kernel maps them through the MADT overrides).
pub const ISA_IRQS: u8 = 16;
/// COM1's ports: the kernel's log and init's console; never an ISA device's.
pub const COM1_PORTS: (u16, u16) = (0x3f8, 0x3ff);
/// Page size every budget, region and pool is a multiple of.
pub const PAGE: u64 = 4096;
/// First address above the user half (region vaddrs lie below it).
pub const USER_TOP: u64 = 0x0000_8000_0000_0000;

crate::abi_enum! {
    /// What a component is for.
    pub enum ComponentRole: u8 {
        /// An ordinary component.
        Normal = 0,
        /// The user-level IOMMU server (exactly one when devices exist).
        IommuServer = 1,
        /// A management component (fault policy, console).
        Management = 2,
        /// A device driver: drives at least one device.
        Driver = 3,
    }
}

crate::abi_enum! {
    /// What happens when a component or a device faults.
    pub enum FaultPolicy: u8 {
        /// Log and leave it be.
        Log = 0,
        /// Revoke, unassign, start a fresh instance (up to `restart_limit` times).
        Restart = 1,
        /// Stop it / leave the device unassigned.
        CutOff = 2,
    }
}

crate::abi_enum! {
    /// The kind of a channel.
    pub enum ChannelKind: u8 {
        /// Synchronous endpoint: client sends (write+grant, badged), server receives.
        Endpoint = 0,
        /// Notification: client signals (write, badged), server waits.
        Notification = 1,
    }
}

crate::abi_enum! {
    /// How a device is found on the machine.
    pub enum DeviceMatch: u8 {
        /// `segment:bus:devfn`.
        PciAddress = 0,
        /// First function with this vendor and device id.
        VendorDevice = 1,
        /// First function with this class and subclass.
        Class = 2,
    }
}

/// A name: `len` bytes at `offset` in the string table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StrRef {
    /// Byte offset into the string table.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

/// A run of records in another array: `count` entries from index `first`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexRange {
    /// Index of the first entry.
    pub first: u32,
    /// Number of entries.
    pub count: u32,
}

/// The header at offset 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemHeader {
    /// [`SYSTEM_MAGIC`].
    pub magic: [u8; 8],
    /// [`SYSTEM_VERSION`].
    pub version: u32,
    /// Length of the whole description in bytes.
    pub total_size: u32,
    /// RAM the description needs at least (all budgets, pools and regions fit in it).
    pub min_ram_bytes: u64,
    /// Component index of the supervisor, or [`NONE`]: init supervises.
    pub supervisor: u16,
    /// Component index of the iommu-server, or [`NONE`] if there are no devices.
    pub iommu_server: u16,
    /// Zero.
    pub _pad: u32,
    /// The system's name.
    pub name: StrRef,
    /// [`Component`] records.
    pub components: ArrayRef,
    /// [`Channel`] records.
    pub channels: ArrayRef,
    /// [`Region`] records.
    pub regions: ArrayRef,
    /// [`RegionMap`] records.
    pub region_maps: ArrayRef,
    /// [`Device`] records.
    pub devices: ArrayRef,
    /// [`PortRange`] records ([`Device::ports`] and [`IsaDevice::ports`] index into them).
    pub port_ranges: ArrayRef,
    /// [`FilterRule`] records.
    pub filter_rules: ArrayRef,
    /// The string table (count in bytes).
    pub strings: ArrayRef,
    /// [`IsaDevice`] records.
    pub isa_devices: ArrayRef,
}

/// One component.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Component {
    /// Unique name.
    pub name: StrRef,
    /// Boot image entry of its program.
    pub program: StrRef,
    /// Memory budget (page multiple): everything of the component comes out of it.
    pub budget_bytes: u64,
    /// Stack size (page multiple).
    pub stack_bytes: u32,
    /// Heap size (page multiple, may be 0).
    pub heap_bytes: u32,
    /// Scheduling priority (<= `mcp`).
    pub priority: u8,
    /// Maximum controlled priority.
    pub mcp: u8,
    /// CNode radix ([`CNODE_RADIX_MIN`]..=[`CNODE_RADIX_MAX`]).
    pub cnode_radix: u8,
    /// [`ComponentRole`].
    pub role: u8,
    /// Component index that handles its faults, or [`NONE`]: init logs them.
    pub fault_handler: u16,
    /// [`FaultPolicy`].
    pub fault_policy: u8,
    /// Most restarts under [`FaultPolicy::Restart`].
    pub restart_limit: u8,
}

/// One channel between two components.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Unique name among channels.
    pub name: StrRef,
    /// [`ChannelKind`].
    pub kind: u8,
    /// Zero.
    pub _pad: u8,
    /// [`NONE`], or (a notification) the index of another notification channel with
    /// the same server whose object this one shares: the server then waits on one
    /// object for every channel of the group and tells them apart by badge (as a
    /// Microkit PD does with its one notification).
    pub shares: u16,
    /// Component index of the sender / signaller.
    pub client: u16,
    /// Component index of the receiver / waiter.
    pub server: u16,
    /// Badge minted into the client's cap.
    pub badge: u64,
}

impl Default for Channel {
    /// A channel that shares nothing ([`Channel::shares`] = [`NONE`]).
    fn default() -> Self {
        Channel { name: StrRef::default(), kind: 0, _pad: 0, shares: NONE, client: 0, server: 0, badge: 0 }
    }
}

/// One shared memory region.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// Unique name among regions.
    pub name: StrRef,
    /// Size (page multiple, not 0).
    pub size_bytes: u64,
    /// Unused (zero): the read-only marks are [`RegionMap::readonly`].
    pub readonly_for: u64,
}

/// One component's mapping of a region.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionMap {
    /// Region index.
    pub region: u16,
    /// Component index.
    pub component: u16,
    /// 1: mapped read-write; 0: read-only.
    pub writable: u8,
    /// 1: the region marks this component read-only (then `writable` must be 0).
    pub readonly: u8,
    /// Zero.
    pub _pad: u16,
    /// Where to map it (page aligned, user half), 0: init chooses.
    pub vaddr: u64,
}

/// One device.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Device {
    /// Unique name among devices.
    pub name: StrRef,
    /// [`DeviceMatch`].
    pub match_kind: u8,
    /// PCI bus ([`DeviceMatch::PciAddress`]).
    pub bus: u8,
    /// PCI device << 3 | function ([`DeviceMatch::PciAddress`]).
    pub devfn: u8,
    /// PCI class ([`DeviceMatch::Class`]).
    pub class: u8,
    /// PCI subclass ([`DeviceMatch::Class`]).
    pub subclass: u8,
    /// Bits of IOVA the device can address (12..=64).
    pub dma_mask_bits: u8,
    /// MSI vectors the driver may allocate.
    pub msi_count: u8,
    /// [`FaultPolicy`] for its DMA faults.
    pub fault_policy: u8,
    /// PCI segment ([`DeviceMatch::PciAddress`]).
    pub segment: u16,
    /// Vendor id ([`DeviceMatch::VendorDevice`]).
    pub vendor: u16,
    /// Device id ([`DeviceMatch::VendorDevice`]).
    pub device: u16,
    /// Component index of its driver.
    pub driver: u16,
    /// Component index told of its DMA faults, or [`NONE`]: init logs them.
    pub fault_handler: u16,
    /// Most restarts under [`FaultPolicy::Restart`].
    pub restart_limit: u8,
    /// Zero.
    pub _pad: [u8; 5],
    /// DMA pool the driver may allocate from (page multiple).
    pub dma_pool_bytes: u64,
    /// Its I/O port ranges in [`SystemDesc::port_ranges`].
    pub ports: IndexRange,
}

/// One legacy ISA device (a second UART, say): I/O ports and an ISA interrupt line,
/// no PCI function and no DMA (ISA DMA is reserved), so no IOMMU domain either.
/// Its component gets an `IoPort` cap per range and the line's IRQHandler.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IsaDevice {
    /// Unique name among ISA devices.
    pub name: StrRef,
    /// Its I/O port ranges in [`SystemDesc::port_ranges`] (at least one).
    pub ports: IndexRange,
    /// Component index that gets its ports and interrupt line.
    pub component: u16,
    /// ISA IRQ (below [`ISA_IRQS`]), or [`NO_IRQ`].
    pub irq: u8,
    /// Zero.
    pub _pad: [u8; 5],
}

/// An inclusive range of I/O ports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (>= `first`).
    pub last: u16,
    /// Zero.
    pub _pad: u32,
}

crate::abi_enum! {
    /// What a [`FilterRule`] is about.
    pub enum RuleProtocol: u8 {
        /// ARP (any operation).
        Arp = 0,
        /// ICMP over IPv4 (any type).
        Icmp = 1,
        /// TCP over IPv4, destination port in the rule's range.
        Tcp = 2,
        /// UDP over IPv4, destination port in the rule's range.
        Udp = 3,
    }
}

crate::abi_enum! {
    /// Which way a [`FilterRule`] lets frames through.
    pub enum RuleDirection: u8 {
        /// From the network to the client.
        In = 0,
        /// From the client to the network.
        Out = 1,
    }
}

/// One traffic rule a filter component applies to one of its clients: frames of
/// `protocol` going `direction` pass (TCP and UDP only with a destination port in
/// `port_first..=port_last`); whatever no rule allows is dropped and counted.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterRule {
    /// The client connection it is for (the filter's `<client>-queues` upstream).
    pub client: StrRef,
    /// Component index of the filter that applies it.
    pub filter: u16,
    /// [`RuleDirection`].
    pub direction: u8,
    /// [`RuleProtocol`].
    pub protocol: u8,
    /// First destination port (TCP, UDP; 0 for ARP and ICMP).
    pub port_first: u16,
    /// Last destination port (>= `port_first`; 0 for ARP and ICMP).
    pub port_last: u16,
}

impl FilterRule {
    /// The rule's fields as one word (a filter's info page carries it in
    /// `CapEntry::size` of a `CapKind::FilterRule` entry).
    pub fn word(&self) -> u64 {
        u64::from(self.direction)
            | u64::from(self.protocol) << 8
            | u64::from(self.port_first) << 16
            | u64::from(self.port_last) << 32
    }

    /// A rule back from [`FilterRule::word`] (`client` and `filter` left default),
    /// `None` if a field is invalid.
    pub fn from_word(word: u64) -> Option<FilterRule> {
        let rule = FilterRule {
            direction: word as u8,
            protocol: (word >> 8) as u8,
            port_first: (word >> 16) as u16,
            port_last: (word >> 32) as u16,
            ..FilterRule::default()
        };
        (word >> 48 == 0 && rule.valid()).then_some(rule)
    }

    /// Whether direction and protocol are known and the port range is well formed.
    pub fn valid(&self) -> bool {
        let ports_ok = match RuleProtocol::try_from(self.protocol) {
            Ok(RuleProtocol::Tcp | RuleProtocol::Udp) => self.port_first <= self.port_last,
            Ok(RuleProtocol::Arp | RuleProtocol::Icmp) => self.port_first == 0 && self.port_last == 0,
            Err(_) => false,
        };
        ports_ok && RuleDirection::try_from(self.direction).is_ok()
    }
}

const_assert_eq!(core::mem::size_of::<StrRef>(), 8);
const_assert_eq!(core::mem::size_of::<IndexRange>(), 8);
const_assert_eq!(core::mem::size_of::<SystemHeader>(), 112);
const_assert_eq!(core::mem::size_of::<Component>(), 40);
const_assert_eq!(core::mem::size_of::<Channel>(), 24);
const_assert_eq!(core::mem::size_of::<Region>(), 24);
const_assert_eq!(core::mem::size_of::<RegionMap>(), 16);
const_assert_eq!(core::mem::size_of::<Device>(), 48);
const_assert_eq!(core::mem::size_of::<PortRange>(), 8);
const_assert_eq!(core::mem::size_of::<FilterRule>(), 16);
const_assert_eq!(core::mem::size_of::<IsaDevice>(), 24);

/// Plain `#[repr(C)]` integer records: any bit pattern is a valid value.
///
/// # Safety
/// Implementors have no padding-sensitive invariants and accept every bit pattern.
pub unsafe trait Record: Copy + Default {}
// SAFETY: every record below is `#[repr(C)]` made of integers and integer arrays only.
unsafe impl Record for Component {}
// SAFETY: as above.
unsafe impl Record for Channel {}
// SAFETY: as above.
unsafe impl Record for Region {}
// SAFETY: as above.
unsafe impl Record for RegionMap {}
// SAFETY: as above.
unsafe impl Record for Device {}
// SAFETY: as above.
unsafe impl Record for PortRange {}
// SAFETY: as above.
unsafe impl Record for FilterRule {}
unsafe impl Record for IsaDevice {}
// SAFETY: as above.
unsafe impl Record for SystemHeader {}

/// Reads a `T` at `at` in `data`, or None if it does not fit.
fn read<T: Record>(data: &[u8], at: usize) -> Option<T> {
    let end = at.checked_add(core::mem::size_of::<T>())?;
    if end > data.len() {
        return None;
    }
    // SAFETY: `at..end` lies inside `data` (checked above); `T: Record` accepts any bits
    // and the read is unaligned, so any address is fine.
    Some(unsafe { core::ptr::read_unaligned(data.as_ptr().add(at).cast::<T>()) })
}

/// A checked array of records inside a description (any alignment).
#[derive(Clone, Copy, Debug)]
pub struct Records<'a, T> {
    bytes: &'a [u8],
    _t: core::marker::PhantomData<T>,
}

impl<'a, T: Record + 'a> Records<'a, T> {
    fn new(bytes: &'a [u8]) -> Self {
        Records { bytes, _t: core::marker::PhantomData }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.bytes.len() / core::mem::size_of::<T>()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `i`, if in range.
    pub fn get(&self, i: usize) -> Option<T> {
        if i >= self.len() {
            return None;
        }
        read(self.bytes, i * core::mem::size_of::<T>())
    }

    /// Every record in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = T> + 'a {
        let this = *self;
        (0..this.len()).map(move |i| this.get(i).unwrap_or_default())
    }
}

/// Which record an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// The header.
    Header,
    /// Component by index.
    Component(u16),
    /// Channel by index.
    Channel(u16),
    /// Region by index.
    Region(u16),
    /// Region map by index.
    RegionMap(u16),
    /// Device by index.
    Device(u16),
    /// Port range by index.
    PortRange(u32),
    /// Filter rule by index.
    FilterRule(u32),
    /// ISA device by index.
    IsaDevice(u16),
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Header => write!(f, "header"),
            At::Component(i) => write!(f, "component #{i}"),
            At::Channel(i) => write!(f, "channel #{i}"),
            At::Region(i) => write!(f, "region #{i}"),
            At::RegionMap(i) => write!(f, "region map #{i}"),
            At::Device(i) => write!(f, "device #{i}"),
            At::PortRange(i) => write!(f, "port range #{i}"),
            At::FilterRule(i) => write!(f, "filter rule #{i}"),
            At::IsaDevice(i) => write!(f, "ISA device #{i}"),
        }
    }
}

/// Why a packed description was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemError {
    /// Shorter than a header.
    TooShort {
        /// Bytes present.
        len: usize,
    },
    /// Not `CAPSYS01`.
    BadMagic,
    /// Unknown version.
    BadVersion(u32),
    /// `total_size` differs from the bytes present.
    SizeMismatch {
        /// Size the header declares.
        declared: u32,
        /// Bytes present.
        actual: usize,
    },
    /// An array lies outside the description, overlaps the header, is misaligned or too long.
    ArrayOutOfBounds(&'static str),
    /// A name is out of the string table, empty, too long, not UTF-8 or has a bad character.
    BadName(At),
    /// Two records share a name, or two devices the same match.
    Duplicate {
        /// The later record.
        at: At,
        /// Index of the earlier one (same kind).
        first: u16,
    },
    /// Budgets, DMA pools and regions add up to more than `min_ram_bytes`.
    OverBudget {
        /// Their sum.
        needed: u64,
        /// The description's minimum RAM.
        min_ram: u64,
    },
    /// A record breaks a rule (what is said).
    Invalid {
        /// The record.
        at: At,
        /// The rule it breaks.
        reason: &'static str,
    },
}

impl fmt::Display for SystemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SystemError::TooShort { len } => write!(f, "system description is {len} bytes, shorter than its header"),
            SystemError::BadMagic => write!(f, "system description has a bad magic (not CAPSYS01)"),
            SystemError::BadVersion(v) => {
                write!(f, "system description version {v} is not supported (want {SYSTEM_VERSION})")
            }
            SystemError::SizeMismatch { declared, actual } => {
                write!(f, "system description declares {declared} bytes but {actual} are present")
            }
            SystemError::ArrayOutOfBounds(what) => write!(f, "system description: the {what} array is out of bounds"),
            SystemError::BadName(at) => write!(f, "system description: {at}: bad name"),
            SystemError::Duplicate { at, first } => {
                write!(f, "system description: {at}: duplicate of #{first} (same name or same device)")
            }
            SystemError::OverBudget { needed, min_ram } => write!(
                f,
                "system description: budgets, pools and regions need {needed} bytes, more than min_ram {min_ram}"
            ),
            SystemError::Invalid { at, reason } => write!(f, "system description: {at}: {reason}"),
        }
    }
}

/// A checked view of a packed description.
#[derive(Clone, Copy, Debug)]
pub struct SystemDesc<'a> {
    data: &'a [u8],
    header: SystemHeader,
}

const HEADER_SIZE: usize = core::mem::size_of::<SystemHeader>();

/// Whether `name` is a valid record name: ASCII letters, digits, `-`, `_`, `.`.
pub fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl<'a> SystemDesc<'a> {
    /// Checks `data` completely (see the module doc) and returns a view of it.
    pub fn parse(data: &'a [u8]) -> Result<SystemDesc<'a>, SystemError> {
        let header: SystemHeader = read(data, 0).ok_or(SystemError::TooShort { len: data.len() })?;
        if header.magic != SYSTEM_MAGIC {
            return Err(SystemError::BadMagic);
        }
        if header.version != SYSTEM_VERSION {
            return Err(SystemError::BadVersion(header.version));
        }
        if header.total_size as usize != data.len() {
            return Err(SystemError::SizeMismatch { declared: header.total_size, actual: data.len() });
        }
        let arrays: [(&'static str, ArrayRef, usize); 9] = [
            ("components", header.components, core::mem::size_of::<Component>()),
            ("channels", header.channels, core::mem::size_of::<Channel>()),
            ("regions", header.regions, core::mem::size_of::<Region>()),
            ("region_maps", header.region_maps, core::mem::size_of::<RegionMap>()),
            ("devices", header.devices, core::mem::size_of::<Device>()),
            ("port_ranges", header.port_ranges, core::mem::size_of::<PortRange>()),
            ("filter_rules", header.filter_rules, core::mem::size_of::<FilterRule>()),
            ("strings", header.strings, 1),
            ("isa_devices", header.isa_devices, core::mem::size_of::<IsaDevice>()),
        ];
        for (what, r, size) in arrays {
            let end = (r.count as usize).checked_mul(size).and_then(|b| b.checked_add(r.offset as usize));
            let ok = r.count == 0
                || (r.offset as usize >= HEADER_SIZE
                    && (r.offset as usize).is_multiple_of(8)
                    && end.is_some_and(|e| e <= data.len())
                    && (size == 1 || r.count <= MAX_RECORDS));
            if !ok {
                return Err(SystemError::ArrayOutOfBounds(what));
            }
        }
        let desc = SystemDesc { data, header };
        desc.check()?;
        Ok(desc)
    }

    /// The header.
    pub fn header(&self) -> &SystemHeader {
        &self.header
    }

    /// The system's name.
    pub fn name(&self) -> &'a str {
        self.str(self.header.name)
    }

    fn records<T: Record + 'a>(&self, r: ArrayRef) -> Records<'a, T> {
        let start = r.offset as usize;
        let len = (r.count as usize).saturating_mul(core::mem::size_of::<T>());
        Records::new(self.data.get(start..start.saturating_add(len)).unwrap_or(&[]))
    }

    /// The components.
    pub fn components(&self) -> Records<'a, Component> {
        self.records(self.header.components)
    }

    /// The channels.
    pub fn channels(&self) -> Records<'a, Channel> {
        self.records(self.header.channels)
    }

    /// The shared regions.
    pub fn regions(&self) -> Records<'a, Region> {
        self.records(self.header.regions)
    }

    /// Who maps which region where.
    pub fn region_maps(&self) -> Records<'a, RegionMap> {
        self.records(self.header.region_maps)
    }

    /// The devices.
    pub fn devices(&self) -> Records<'a, Device> {
        self.records(self.header.devices)
    }

    /// The traffic rules of every filter component.
    pub fn filter_rules(&self) -> Records<'a, FilterRule> {
        self.records(self.header.filter_rules)
    }

    /// The ISA devices.
    pub fn isa_devices(&self) -> Records<'a, IsaDevice> {
        self.records(self.header.isa_devices)
    }

    /// A device's I/O port ranges (`ports` from [`Device::ports`]); empty if out of range.
    pub fn port_ranges(&self, ports: IndexRange) -> Records<'a, PortRange> {
        let all = self.header.port_ranges;
        let fits = ports.first.checked_add(ports.count).is_some_and(|end| end <= all.count);
        let at = ArrayRef {
            offset: all.offset + ports.first.wrapping_mul(core::mem::size_of::<PortRange>() as u32),
            count: ports.count,
        };
        if fits && ports.count > 0 {
            self.records(at)
        } else {
            Records::new(&[])
        }
    }

    /// The string `s` names ("" if it is not a valid UTF-8 slice of the table).
    pub fn str(&self, s: StrRef) -> &'a str {
        self.try_str(s).unwrap_or("")
    }

    fn try_str(&self, s: StrRef) -> Option<&'a str> {
        let table = self.header.strings;
        let end = s.offset.checked_add(s.len)?;
        if end > table.count {
            return None;
        }
        let start = table.offset as usize + s.offset as usize;
        core::str::from_utf8(self.data.get(start..start + s.len as usize)?).ok()
    }

    /// Index and record of the component called `name`.
    pub fn component_by_name(&self, name: &str) -> Option<(u16, Component)> {
        self.components().iter().enumerate().find(|(_, c)| self.str(c.name) == name).map(|(i, c)| (i as u16, c))
    }

    /// Index and record of the device called `name`.
    pub fn device_by_name(&self, name: &str) -> Option<(u16, Device)> {
        self.devices().iter().enumerate().find(|(_, d)| self.str(d.name) == name).map(|(i, d)| (i as u16, d))
    }

    /// Indices of the devices `component` drives.
    pub fn devices_of(&self, component: u16) -> impl Iterator<Item = u16> + 'a {
        let devices = self.devices();
        (0..devices.len()).filter(move |&i| devices.get(i).is_some_and(|d| d.driver == component)).map(|i| i as u16)
    }

    fn name_ok(&self, s: StrRef, max: usize, at: At) -> Result<&'a str, SystemError> {
        self.try_str(s).filter(|n| valid_name(n, max)).ok_or(SystemError::BadName(at))
    }

    /// Every rule of the module doc, after the bounds checks of `parse`.
    fn check(&self) -> Result<(), SystemError> {
        check::check(self)
    }
}
