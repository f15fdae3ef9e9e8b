//! Capabilities: typed view and four-word slot encoding.
//!
//! Capabilities: the kernel's typed view and its fixed four-word encoding in a slot.

use abi::rights::CapRights;

/// Size of a 4 KiB, 2 MiB or 1 GiB frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameSize {
    /// 4 KiB.
    Small,
    /// 2 MiB.
    Large,
    /// 1 GiB.
    Huge,
}

impl FrameSize {
    /// log2 of the size.
    pub const fn bits(self) -> u32 {
        match self {
            FrameSize::Small => 12,
            FrameSize::Large => 21,
            FrameSize::Huge => 30,
        }
    }

    /// The CPU paging level whose entry maps a frame of this size (0 = PT, 1 = PD,
    /// 2 = PDPT): the same in a VSpace and a GuestSpace.
    pub const fn cpu_level(self) -> usize {
        match self {
            FrameSize::Small => 0,
            FrameSize::Large => 1,
            FrameSize::Huge => 2,
        }
    }

    /// The VT-d second-level table level whose entry maps a frame of this size (1 =
    /// leaf table, 2 = 2 MiB superpage, 3 = 1 GiB superpage).
    pub const fn io_level(self) -> u8 {
        match self {
            FrameSize::Small => 1,
            FrameSize::Large => 2,
            FrameSize::Huge => 3,
        }
    }
}

/// Which kind of space a mapping is in. The two kinds have different tables, TLBs and
/// invalidation: a mapping is only ever removed by the code for its own kind (a CPU
/// unmap of an IO mapping would drop the record and leave the device its frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// A VSpace (CPU page tables).
    Cpu,
    /// An IOSpace (VT-d second-level tables, the device view).
    Io,
}

/// Where a frame or page table is mapped: the VSpace (or IOSpace) root and the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Physical address of the VSpace's PML4, or of the IOSpace's root table.
    pub vspace: u64,
    /// Virtual address (or IOVA) of the mapping.
    pub vaddr: u64,
    /// VSpace or IOSpace.
    pub kind: MapKind,
}

impl Mapping {
    /// The mapping is in an IOSpace (device view), not a VSpace.
    pub fn is_io(&self) -> bool {
        self.kind == MapKind::Io
    }
}

/// A capability. Object caps name their object by physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// The empty slot.
    Null,
    /// Untyped memory; `free_offset` is the watermark of what has been retyped.
    Untyped {
        /// Base.
        paddr: u64,
        /// log2 of the size.
        size_bits: u8,
        /// Device memory: only frames, never DMA-mappable.
        is_device: bool,
        /// Bytes from `paddr` already handed out.
        free_offset: u64,
        /// Memory a preempted Retype has zeroed so far (`len` 0 if none).
        cleared: super::untyped::Cleared,
    },
    /// A CNode of `1 << radix` slots with a guard.
    CNode {
        /// The slot array.
        paddr: u64,
        /// log2 of the slot count.
        radix: u8,
        /// Number of guard bits.
        guard_bits: u8,
        /// Guard value.
        guard: u64,
    },
    /// A thread control block.
    Tcb {
        /// The object.
        paddr: u64,
    },
    /// A synchronous endpoint.
    Endpoint {
        /// The object.
        paddr: u64,
        /// Badge delivered to receivers (0 = unbadged).
        badge: u64,
        /// Rights.
        rights: CapRights,
    },
    /// A notification.
    Notification {
        /// The object.
        paddr: u64,
        /// Badge OR-ed into the word on signal.
        badge: u64,
        /// Rights.
        rights: CapRights,
    },
    /// A frame of memory.
    Frame {
        /// The frame.
        paddr: u64,
        /// 4 KiB or 2 MiB.
        size: FrameSize,
        /// Mapping rights (READ, WRITE).
        rights: CapRights,
        /// Device memory.
        is_device: bool,
        /// Where this cap mapped it, if anywhere.
        mapping: Option<Mapping>,
    },
    /// A paging structure below the PML4: level 1 = page table, 2 = page directory, 3 = PDPT.
    PageTable {
        /// The table.
        paddr: u64,
        /// Level (1..=3).
        level: u8,
        /// Where it is installed, if anywhere.
        mapping: Option<Mapping>,
    },
    /// A VSpace root (PML4).
    VSpace {
        /// The PML4.
        paddr: u64,
    },
    /// Authority to create IRQ handler caps.
    IrqControl,
    /// Authority to create I/O port caps.
    IoPortControl,
    /// The kernel debug console: any holder prints; Halt needs the GRANT right (init
    /// hands components a copy without it).
    DebugConsole {
        /// Rights (GRANT: may end the system).
        rights: CapRights,
    },
    /// Handling of one interrupt line (an IOAPIC global system interrupt).
    IrqHandler {
        /// The GSI.
        gsi: u8,
    },
    /// One MSI of one PCI function: a vector whose interrupt-remapping entry accepts
    /// only that function's requester id.
    MsiHandler {
        /// The vector (also the IRTE handle).
        vector: u8,
        /// The function allowed to raise it.
        requester_id: u16,
    },
    /// Access to the I/O ports `first..=last`.
    IoPort {
        /// First port.
        first: u16,
        /// Last port.
        last: u16,
    },
    /// A DMA address space (one VT-d domain): its second-level root table.
    IoSpace {
        /// The root table.
        paddr: u64,
        /// Domain id the kernel allocated for it.
        domain: u16,
        /// Translation depth (3: 39-bit, 4: 48-bit).
        levels: u8,
    },
    /// One level of an IOSpace's second-level tables (1 = leaf table).
    IoPageTable {
        /// The table.
        paddr: u64,
        /// Level (1..=3).
        level: u8,
        /// Where it is installed (IOSpace root and IOVA), if anywhere.
        mapping: Option<Mapping>,
    },
    /// One PCI function (requester id) that can be assigned to an IOSpace.
    PciDevice {
        /// PCI segment.
        segment: u16,
        /// Bus/device/function as a requester id.
        requester_id: u16,
    },
    /// A virtual CPU (VMCB and guest state, 8 KiB).
    Vcpu {
        /// The object.
        paddr: u64,
    },
    /// A guest-physical address space: the root of nested page tables.
    GuestSpace {
        /// The root table.
        paddr: u64,
    },
    /// A CNode or TCB being destroyed (seL4's Zombie): it holds the slot of the last cap
    /// to the object while a restartable Delete empties the object's slots, and can
    /// be neither invoked, copied nor moved. It keeps that cap's place in the derivation
    /// tree, so the object's untyped has a child (and cannot be reset) until the object
    /// is gone. The Zombie in the user's slot (the top) heads a stack of records of
    /// nested objects being destroyed; a record is a Zombie in the slot of the last cap
    /// to such an object, itself in a slot of an object lower on that stack (see
    /// `cnode::delete_bounded`).
    Zombie {
        /// The object: a CNode's slot array or a TCB.
        paddr: u64,
        /// log2 of the slot count of a CNode (0 for a TCB).
        radix: u8,
        /// The object is a TCB.
        tcb: bool,
        /// Slots below this index are empty (or hold records).
        index: u32,
        /// In the top: the newest record (0 = none). In a record: the next older
        /// record (0 = the oldest).
        next: u64,
        /// In the top: the oldest record (0 = none). In the oldest record: the top
        /// (how a Revoke that meets a record finds the deletion to continue). In the
        /// other records: a shortcut to an older record of the stack (0 = none).
        last: u64,
        /// A record, not the top of its stack.
        record: bool,
    },
}

pub(crate) mod tag {
    pub const NULL: u64 = 0;
    pub const UNTYPED: u64 = 1;
    pub const CNODE: u64 = 2;
    pub const TCB: u64 = 3;
    pub const ENDPOINT: u64 = 4;
    pub const NOTIFICATION: u64 = 5;
    pub const FRAME: u64 = 6;
    pub const PAGE_TABLE: u64 = 7;
    pub const VSPACE: u64 = 8;
    pub const IRQ_CONTROL: u64 = 9;
    pub const IOPORT_CONTROL: u64 = 10;
    pub const DEBUG_CONSOLE: u64 = 11;
    pub const PCI_DEVICE: u64 = 12;
    pub const IRQ_HANDLER: u64 = 13;
    pub const IO_PORT: u64 = 14;
    pub const IO_SPACE: u64 = 15;
    pub const IO_PAGE_TABLE: u64 = 16;
    pub const MSI_HANDLER: u64 = 17;
    pub const ZOMBIE: u64 = 18;
    pub const VCPU: u64 = 19;
    pub const GUEST_SPACE: u64 = 20;
}

const FLAG_DEVICE: u64 = 1 << 16;
const FLAG_MAPPED: u64 = 1 << 17;
const FLAG_LARGE: u64 = 1 << 18;
const FLAG_IO: u64 = 1 << 19;
/// A frame cap's 1 GiB size (FLAG_LARGE is its 2 MiB size; never both).
const FLAG_HUGE: u64 = 1 << 20;
/// An untyped's word 0: where its [`Cleared`](super::untyped::Cleared) record's 24
/// bits start (`Cleared::raw`); its start is word 3.
const CLEARED_SHIFT: u32 = 40;

/// The encoded form stored in a slot: `w[0]` tag (bits 0..8), rights (8..16), flags
/// (16..24), a small field (24..32: size bits, radix, level), guard bits (32..40), an
/// untyped's zeroed pages (40..64); `w[1]` object address; `w[2]` badge, guard,
/// watermark or mapping VSpace; `w[3]` mapping address or an untyped's zeroed run.
pub type CapWords = [u64; 4];

impl Cap {
    /// Encodes the cap.
    pub fn encode(&self) -> CapWords {
        let word0 = |tag: u64, rights: CapRights, flags: u64, small: u64, guard_bits: u64| {
            tag | (u64::from(rights.raw()) << raw::RIGHTS_SHIFT)
                | flags
                | (small << raw::SMALL_SHIFT)
                | (guard_bits << raw::GUARD_BITS_SHIFT)
        };
        let mapped = |m: &Option<Mapping>| {
            m.map_or((0, 0, 0), |m| (FLAG_MAPPED | if m.is_io() { FLAG_IO } else { 0 }, m.vspace, m.vaddr))
        };
        match *self {
            Cap::Null => [0; 4],
            Cap::Untyped { paddr, size_bits, is_device, free_offset, cleared } => [
                word0(tag::UNTYPED, CapRights::NONE, if is_device { FLAG_DEVICE } else { 0 }, size_bits.into(), 0)
                    | (cleared.raw() << CLEARED_SHIFT),
                paddr,
                free_offset,
                cleared.start,
            ],
            Cap::CNode { paddr, radix, guard_bits, guard } => {
                [word0(tag::CNODE, CapRights::NONE, 0, radix.into(), guard_bits.into()), paddr, guard, 0]
            }
            Cap::Tcb { paddr } => [tag::TCB, paddr, 0, 0],
            Cap::Endpoint { paddr, badge, rights } => [word0(tag::ENDPOINT, rights, 0, 0, 0), paddr, badge, 0],
            Cap::Notification { paddr, badge, rights } => [word0(tag::NOTIFICATION, rights, 0, 0, 0), paddr, badge, 0],
            Cap::Frame { paddr, size, rights, is_device, mapping } => {
                let (m, vspace, vaddr) = mapped(&mapping);
                let size_flag = match size {
                    FrameSize::Small => 0,
                    FrameSize::Large => FLAG_LARGE,
                    FrameSize::Huge => FLAG_HUGE,
                };
                let flags = m | if is_device { FLAG_DEVICE } else { 0 } | size_flag;
                [word0(tag::FRAME, rights, flags, 0, 0), paddr, vspace, vaddr]
            }
            Cap::PageTable { paddr, level, mapping } => {
                let (m, vspace, vaddr) = mapped(&mapping);
                [word0(tag::PAGE_TABLE, CapRights::NONE, m, level.into(), 0), paddr, vspace, vaddr]
            }
            Cap::VSpace { paddr } => [tag::VSPACE, paddr, 0, 0],
            Cap::Vcpu { paddr } => [tag::VCPU, paddr, 0, 0],
            Cap::GuestSpace { paddr } => [tag::GUEST_SPACE, paddr, 0, 0],
            Cap::IrqControl => [tag::IRQ_CONTROL, 0, 0, 0],
            Cap::IoPortControl => [tag::IOPORT_CONTROL, 0, 0, 0],
            Cap::DebugConsole { rights } => [word0(tag::DEBUG_CONSOLE, rights, 0, 0, 0), 0, 0, 0],
            Cap::PciDevice { segment, requester_id } => {
                [tag::PCI_DEVICE, 0, (u64::from(segment) << 16) | u64::from(requester_id), 0]
            }
            Cap::IrqHandler { gsi } => [tag::IRQ_HANDLER, 0, u64::from(gsi), 0],
            Cap::MsiHandler { vector, requester_id } => {
                [tag::MSI_HANDLER, 0, (u64::from(requester_id) << 8) | u64::from(vector), 0]
            }
            Cap::IoSpace { paddr, domain, levels } => {
                [word0(tag::IO_SPACE, CapRights::NONE, 0, levels.into(), 0), paddr, domain.into(), 0]
            }
            Cap::IoPageTable { paddr, level, mapping } => {
                let (m, root, iova) = mapped(&mapping);
                [word0(tag::IO_PAGE_TABLE, CapRights::NONE, m, level.into(), 0), paddr, root, iova]
            }
            Cap::IoPort { first, last } => [tag::IO_PORT, 0, (u64::from(first) << 16) | u64::from(last), 0],
            Cap::Zombie { paddr, radix, tcb, index, next, last, record } => [
                word0(
                    tag::ZOMBIE,
                    CapRights::NONE,
                    if tcb { FLAG_DEVICE } else { 0 } | if record { FLAG_MAPPED } else { 0 },
                    radix.into(),
                    0,
                ) | (u64::from(index) << 32),
                paddr,
                next,
                last,
            ],
        }
    }

    /// Decodes a slot's words; `None` for an encoding the kernel never writes.
    pub fn decode(w: CapWords) -> Option<Cap> {
        let tag = raw::tag(w[0]);
        let rights = CapRights::from_raw(raw::rights(w[0]))?;
        let flags = w[0] & (0xff << 16);
        let small = raw::small(w[0]) as u8;
        let guard_bits = raw::guard_bits(w[0]) as u8;
        let mapping = (flags & FLAG_MAPPED != 0).then_some(Mapping {
            vspace: w[raw::WORD_SPACE],
            vaddr: w[raw::WORD_VADDR],
            kind: if flags & FLAG_IO != 0 { MapKind::Io } else { MapKind::Cpu },
        });
        Some(match tag {
            tag::NULL => Cap::Null,
            tag::UNTYPED => Cap::Untyped {
                paddr: w[1],
                size_bits: small,
                is_device: flags & FLAG_DEVICE != 0,
                free_offset: w[2],
                cleared: super::untyped::Cleared::from_raw(w[3], w[0] >> CLEARED_SHIFT),
            },
            tag::CNODE => Cap::CNode { paddr: w[1], radix: small, guard_bits, guard: w[2] },
            tag::TCB => Cap::Tcb { paddr: w[1] },
            tag::ENDPOINT => Cap::Endpoint { paddr: w[1], badge: w[2], rights },
            tag::NOTIFICATION => Cap::Notification { paddr: w[1], badge: w[2], rights },
            tag::FRAME => Cap::Frame {
                paddr: w[1],
                size: match (flags & FLAG_LARGE != 0, flags & FLAG_HUGE != 0) {
                    (false, false) => FrameSize::Small,
                    (true, false) => FrameSize::Large,
                    (false, true) => FrameSize::Huge,
                    (true, true) => return None,
                },
                rights,
                is_device: flags & FLAG_DEVICE != 0,
                mapping,
            },
            tag::PAGE_TABLE => Cap::PageTable { paddr: w[1], level: small, mapping },
            tag::VSPACE => Cap::VSpace { paddr: w[1] },
            tag::VCPU => Cap::Vcpu { paddr: w[1] },
            tag::GUEST_SPACE => Cap::GuestSpace { paddr: w[1] },
            tag::IRQ_CONTROL => Cap::IrqControl,
            tag::IOPORT_CONTROL => Cap::IoPortControl,
            tag::DEBUG_CONSOLE => Cap::DebugConsole { rights },
            tag::PCI_DEVICE => Cap::PciDevice { segment: (w[2] >> 16) as u16, requester_id: w[2] as u16 },
            tag::IRQ_HANDLER => Cap::IrqHandler { gsi: w[2] as u8 },
            tag::MSI_HANDLER => Cap::MsiHandler { vector: w[2] as u8, requester_id: (w[2] >> 8) as u16 },
            tag::IO_SPACE => Cap::IoSpace { paddr: w[1], domain: w[2] as u16, levels: small },
            tag::IO_PAGE_TABLE => Cap::IoPageTable { paddr: w[1], level: small, mapping },
            tag::IO_PORT => Cap::IoPort { first: (w[2] >> 16) as u16, last: w[2] as u16 },
            tag::ZOMBIE => return Some(Cap::decode_zombie(w)),
            _ => return None,
        })
    }

    /// The rare case of [`Cap::decode`], out of line: inlined, it slows every slot load.
    #[cold]
    #[inline(never)]
    fn decode_zombie(w: CapWords) -> Cap {
        Cap::Zombie {
            paddr: w[1],
            radix: raw::small(w[0]) as u8,
            tcb: w[0] & FLAG_DEVICE != 0,
            index: (w[0] >> 32) as u32,
            next: w[2],
            last: w[3],
            record: w[0] & FLAG_MAPPED != 0,
        }
    }

    /// Whether this is the empty cap.
    pub fn is_null(&self) -> bool {
        matches!(self, Cap::Null)
    }

    /// The memory the cap's object occupies: `(base, size_bits)`; `None` for caps
    /// without a memory object.
    pub fn region(&self) -> Option<(u64, u32)> {
        match *self {
            Cap::Untyped { paddr, size_bits, .. } => Some((paddr, size_bits.into())),
            Cap::CNode { paddr, radix, .. } => Some((paddr, u32::from(radix) + abi::object::CNODE_SLOT_BITS)),
            Cap::Tcb { paddr } => Some((paddr, abi::object::ObjectType::Tcb.size_bits(0)?)),
            Cap::Endpoint { paddr, .. } => Some((paddr, abi::object::ObjectType::Endpoint.size_bits(0)?)),
            Cap::Notification { paddr, .. } => Some((paddr, abi::object::ObjectType::Notification.size_bits(0)?)),
            Cap::Frame { paddr, size, .. } => Some((paddr, size.bits())),
            Cap::Vcpu { paddr } => Some((paddr, abi::object::VCPU_SIZE_BITS)),
            Cap::PageTable { paddr, .. }
            | Cap::VSpace { paddr }
            | Cap::GuestSpace { paddr }
            | Cap::IoSpace { paddr, .. }
            | Cap::IoPageTable { paddr, .. } => Some((paddr, 12)),
            // The object being destroyed: its untyped cannot be reused while it exists.
            Cap::Zombie { paddr, tcb: true, .. } => Some((paddr, abi::object::ObjectType::Tcb.size_bits(0)?)),
            Cap::Zombie { paddr, radix, .. } => Some((paddr, u32::from(radix) + abi::object::CNODE_SLOT_BITS)),
            _ => None,
        }
    }

    /// seL4's sameRegionAs: `other` names memory inside this cap's object (for an
    /// untyped: anything retyped from it), or the same object.
    pub fn same_region_as(&self, other: &Cap) -> bool {
        match (self, other) {
            (Cap::Untyped { .. }, _) => match (self.region(), other.region()) {
                (Some((base, bits)), Some((obase, obits))) => {
                    obase >= base && obase + (1u64 << obits) <= base + (1u64 << bits)
                }
                _ => false,
            },
            _ => self.same_object_as(other),
        }
    }

    /// Whether both caps name the same object (badges, rights and mappings may differ).
    pub fn same_object_as(&self, other: &Cap) -> bool {
        match (self, other) {
            (Cap::Untyped { paddr: a, size_bits: sa, .. }, Cap::Untyped { paddr: b, size_bits: sb, .. }) => {
                a == b && sa == sb
            }
            (Cap::IrqControl, Cap::IrqControl)
            | (Cap::IoPortControl, Cap::IoPortControl)
            | (Cap::DebugConsole { .. }, Cap::DebugConsole { .. }) => true,
            (Cap::PciDevice { segment: a, requester_id: ra }, Cap::PciDevice { segment: b, requester_id: rb }) => {
                a == b && ra == rb
            }
            (Cap::IrqHandler { gsi: a }, Cap::IrqHandler { gsi: b }) => a == b,
            (Cap::MsiHandler { vector: a, .. }, Cap::MsiHandler { vector: b, .. }) => a == b,
            (Cap::IoPort { first: a, last: la }, Cap::IoPort { first: b, last: lb }) => a == b && la == lb,
            (Cap::Null, _) | (_, Cap::Null) => false,
            _ => {
                core::mem::discriminant(self) == core::mem::discriminant(other)
                    && self.region() == other.region()
                    && self.region().is_some()
            }
        }
    }

    /// The badge of an endpoint or notification cap (0 otherwise).
    pub fn badge(&self) -> u64 {
        match *self {
            Cap::Endpoint { badge, .. } | Cap::Notification { badge, .. } => badge,
            _ => 0,
        }
    }
}

/// Any cap read as raw slot words: the one description of the stored layout (see
/// [`CapWords`]) for the paths that cannot afford a full decode (the IPC fastpath,
/// single-level CSpace lookups, the MapIO short path). [`Cap::encode`] and
/// [`Cap::decode`] use the same constants, and every function here is tested against
/// them.
pub mod raw {
    /// Bytes per stored word.
    const WORD_BYTES: u64 = 8;
    /// Word holding the object's physical address (a CNode's slot array).
    pub const WORD_ADDR: usize = 1;
    /// Word holding an endpoint's or notification's badge.
    pub const WORD_BADGE: usize = 2;
    /// Word holding a CNode's guard value.
    pub const WORD_GUARD: usize = 2;
    /// Word holding a mapping's space (VSpace or IOSpace root).
    pub const WORD_SPACE: usize = 2;
    /// Word holding a mapping's virtual address or IOVA.
    pub const WORD_VADDR: usize = 3;
    /// Word 0: the type tag (`tag::*`).
    pub const TAG_MASK: u64 = 0xff;
    /// Word 0: where the rights mask (`CapRights::raw`) starts.
    pub const RIGHTS_SHIFT: u32 = 8;
    /// Word 0: where the small field (size bits, radix, level) starts.
    pub const SMALL_SHIFT: u32 = 24;
    /// Word 0: where a CNode's guard-bit count starts.
    pub const GUARD_BITS_SHIFT: u32 = 32;
    /// Width of the rights, small and guard-bit fields.
    pub const FIELD_MASK: u64 = 0xff;

    /// Physical address of word `i` of the cap stored in the slot at `slot`.
    #[inline(always)]
    pub const fn word_addr(slot: u64, i: usize) -> u64 {
        slot + WORD_BYTES * i as u64
    }
    /// The type tag in word 0.
    #[inline(always)]
    pub const fn tag(w0: u64) -> u64 {
        w0 & TAG_MASK
    }
    /// An IOSpace cap's (root, levels, domain) from its first three words; `None` for
    /// any other cap.
    #[inline(always)]
    pub const fn io_space(w: [u64; 3]) -> Option<(u64, u8, u16)> {
        if tag(w[0]) != super::tag::IO_SPACE {
            return None;
        }
        Some((w[WORD_ADDR], small(w[0]) as u8, w[2] as u16))
    }
    /// The rights mask in word 0.
    #[inline(always)]
    pub const fn rights(w0: u64) -> u64 {
        (w0 >> RIGHTS_SHIFT) & FIELD_MASK
    }
    /// Whether word 0 has tag `tag` and at least the rights `rights` (one compare).
    #[inline(always)]
    pub const fn has_tag_and_rights(w0: u64, tag: u64, rights: u64) -> bool {
        let want = tag | (rights << RIGHTS_SHIFT);
        w0 & (TAG_MASK | want) == want
    }
    /// The small field in word 0: a CNode's radix, a table's level, an untyped's size.
    #[inline(always)]
    pub const fn small(w0: u64) -> u64 {
        (w0 >> SMALL_SHIFT) & FIELD_MASK
    }
    /// A CNode's guard-bit count in word 0.
    #[inline(always)]
    pub const fn guard_bits(w0: u64) -> u64 {
        (w0 >> GUARD_BITS_SHIFT) & FIELD_MASK
    }
}

/// Frame caps read and changed as raw slot words, for the IO mapping paths that touch
/// up to 64 caps in one call and cannot afford a full decode per cap. Every function
/// here is tested against [`Cap::decode`] / [`Cap::encode`].
pub mod raw_frame {
    use super::raw::TAG_MASK as TAG;
    pub use super::raw::{WORD_ADDR, WORD_SPACE, WORD_VADDR};
    use super::{tag, FrameSize, FLAG_DEVICE, FLAG_HUGE, FLAG_IO, FLAG_LARGE, FLAG_MAPPED};

    /// Whether word 0 is an empty slot's.
    pub const fn is_null(w0: u64) -> bool {
        w0 & TAG == tag::NULL
    }
    /// Whether word 0 is a frame cap's.
    pub const fn is_frame(w0: u64) -> bool {
        w0 & TAG == tag::FRAME
    }
    /// The frame's size.
    pub const fn size(w0: u64) -> FrameSize {
        if w0 & FLAG_HUGE != 0 {
            FrameSize::Huge
        } else if w0 & FLAG_LARGE != 0 {
            FrameSize::Large
        } else {
            FrameSize::Small
        }
    }
    /// Bytes of the frame.
    pub const fn bytes(w0: u64) -> u64 {
        1 << size(w0).bits()
    }
    /// A frame of device memory.
    pub const fn is_device(w0: u64) -> bool {
        w0 & FLAG_DEVICE != 0
    }
    /// Whether word 0 is an unmapped 4 KiB RAM frame's whose rights include `wanted`
    /// (a `CapRights::raw` mask): what a MapBatch page needs, in one mask test.
    pub const fn is_mappable_small(w0: u64, wanted: u64) -> bool {
        let rights = wanted << super::raw::RIGHTS_SHIFT;
        w0 & (TAG | FLAG_DEVICE | FLAG_MAPPED | FLAG_LARGE | FLAG_HUGE | rights) == tag::FRAME | rights
    }
    /// Whether word 0 is a 4 KiB frame's that records an IO mapping.
    pub const fn is_io_mapped_small(w0: u64) -> bool {
        w0 & (TAG | FLAG_MAPPED | FLAG_IO | FLAG_LARGE | FLAG_HUGE) == tag::FRAME | FLAG_MAPPED | FLAG_IO
    }
    /// The cap records a mapping (CPU or IO).
    pub const fn is_mapped(w0: u64) -> bool {
        w0 & FLAG_MAPPED != 0
    }
    /// A frame cap whose recorded mapping is an IO mapping.
    pub const fn is_io_mapped_frame(w0: u64) -> bool {
        w0 & (TAG | FLAG_MAPPED | FLAG_IO) == tag::FRAME | FLAG_MAPPED | FLAG_IO
    }
    /// The cap's rights mask.
    pub const fn rights(w0: u64) -> u64 {
        super::raw::rights(w0)
    }
    /// Word 0 once an IO mapping is recorded (words 2 and 3 get root and IOVA).
    pub const fn with_io_mapping(w0: u64) -> u64 {
        w0 | FLAG_MAPPED | FLAG_IO
    }
    /// Word 0 once the mapping is gone (words 2 and 3 become 0).
    pub const fn without_mapping(w0: u64) -> u64 {
        w0 & !(FLAG_MAPPED | FLAG_IO)
    }
}
