//! Kernel object types that Untyped memory can be retyped into, with their sizes.

crate::abi_enum! {
    /// An object type as passed to `Untyped::Retype`.
    pub enum ObjectType: u64 {
        /// Untyped memory (a power-of-two region).
        Untyped = 0,
        /// Thread control block.
        Tcb = 1,
        /// Synchronous IPC endpoint.
        Endpoint = 2,
        /// Asynchronous notification word.
        Notification = 3,
        /// Capability node (2^radix slots).
        CNode = 4,
        /// 4 KiB frame.
        Frame4K = 5,
        /// 2 MiB frame.
        Frame2M = 6,
        /// Page table (level 1).
        PageTable = 7,
        /// Page directory (level 2).
        PageDirectory = 8,
        /// Page-directory-pointer table (level 3).
        Pdpt = 9,
        /// PML4, the root of a VSpace.
        Pml4 = 10,
        /// An IOMMU domain (VT-d second-level translation root plus domain id).
        IoSpace = 11,
        /// One level of an IOSpace's translation tables.
        IoPageTable = 12,
        /// A virtual CPU (hardware virtualization: the VMCB, or a VMCS, and the guest
        /// state it does not hold). Needs a CPU with SVM and nested paging.
        Vcpu = 13,
        /// A guest-physical address space: the root of the nested (second-level) page
        /// tables a VCPU runs under. Its tables are PageTable objects; frames are
        /// mapped into it with Frame::Map.
        GuestSpace = 14,
        /// 1 GiB frame: one PDPT-level leaf in a VSpace or GuestSpace (where the CPU
        /// has 1 GiB pages) and one level-3 superpage leaf in an IOSpace (where every
        /// remapping unit's CAP.SLLPS allows it).
        Frame1G = 15,
    }
}

/// log2 of the size of one CNode slot in bytes.
pub const CNODE_SLOT_BITS: u32 = 6;
/// log2 of the size of a thread control block in bytes.
pub const TCB_SIZE_BITS: u32 = 11;
/// Largest CNode radix: bounds the slots one final-cap deletion visits per object
/// (2^16 slots, 4 MiB) and keeps the fastpath's lookup shifts in range.
pub const CNODE_MAX_RADIX: u32 = 16;
/// log2 of the smallest and largest untyped object.
pub const UNTYPED_MIN_BITS: u32 = 4;
/// log2 of the size of a VCPU in bytes (the VMCB page and the state page).
pub const VCPU_SIZE_BITS: u32 = 13;
/// Largest untyped object, 2^47 bytes.
pub const UNTYPED_MAX_BITS: u32 = 47;

impl ObjectType {
    /// log2 of the object's size in bytes; for `Untyped` and `CNode` the caller-given
    /// `size_bits` (untyped size, or CNode radix) decides it. `None` if out of range.
    pub const fn size_bits(self, size_bits: u32) -> Option<u32> {
        match self {
            ObjectType::Untyped => {
                if size_bits >= UNTYPED_MIN_BITS && size_bits <= UNTYPED_MAX_BITS {
                    Some(size_bits)
                } else {
                    None
                }
            }
            ObjectType::CNode => {
                if size_bits >= 1 && size_bits <= CNODE_MAX_RADIX {
                    Some(size_bits + CNODE_SLOT_BITS)
                } else {
                    None
                }
            }
            ObjectType::Tcb => Some(TCB_SIZE_BITS),
            ObjectType::Endpoint => Some(4),
            ObjectType::Notification => Some(5),
            ObjectType::Frame2M => Some(21),
            ObjectType::Frame1G => Some(30),
            ObjectType::Vcpu => Some(VCPU_SIZE_BITS),
            ObjectType::Frame4K
            | ObjectType::PageTable
            | ObjectType::PageDirectory
            | ObjectType::Pdpt
            | ObjectType::Pml4
            | ObjectType::IoSpace
            | ObjectType::IoPageTable
            | ObjectType::GuestSpace => Some(12),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_sizes() {
        for t in ObjectType::ALL {
            assert_eq!(ObjectType::try_from(t.raw()), Ok(*t));
            assert!(t.size_bits(12).is_some());
        }
        assert_eq!(ObjectType::CNode.size_bits(8), Some(14));
        assert_eq!(ObjectType::CNode.size_bits(CNODE_MAX_RADIX), Some(CNODE_MAX_RADIX + CNODE_SLOT_BITS));
        assert_eq!(ObjectType::CNode.size_bits(CNODE_MAX_RADIX + 1), None);
        assert_eq!(ObjectType::CNode.size_bits(0), None);
        assert_eq!(ObjectType::Untyped.size_bits(3), None);
        assert_eq!(ObjectType::Untyped.size_bits(48), None);
        assert_eq!(ObjectType::Frame1G.size_bits(0), Some(30));
    }
}
