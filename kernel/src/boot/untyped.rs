//! The root task's untyped list: free RAM, then device memory.
//!
//! Turns what is left of physical memory after boot into the root task's untyped list:
//! free RAM first, then device memory (physical space that is neither RAM, firmware
//! reserved nor owned by the kernel).

use abi::bootinfo::UntypedDesc;
use abi::object::UNTYPED_MAX_BITS;

use super::memory::{split_power_of_two, Block, Range, RangeSet};

/// Most untyped regions handed out (bootinfo's array is variable; this bounds the
/// kernel's list and the root CNode slots reserved for them).
pub const MAX_UNTYPED: usize = 256;

/// Smallest untyped handed out: one page.
pub const MIN_UNTYPED_BITS: u32 = 12;

/// The list plus what went into it.
#[derive(Clone, Debug)]
pub struct UntypedList {
    /// Entries, RAM first.
    pub entries: [UntypedDesc; MAX_UNTYPED],
    /// Valid entries.
    pub count: usize,
    /// Bytes of RAM described.
    pub ram_bytes: u64,
    /// RAM entries.
    pub ram_count: usize,
    /// Bytes of device memory described.
    pub device_bytes: u64,
    /// Blocks that did not fit in the list (their memory stays unused).
    pub dropped: usize,
}

impl UntypedList {
    fn push(&mut self, block: Block, device: bool) {
        if self.count == MAX_UNTYPED {
            self.dropped += 1;
            return;
        }
        self.entries[self.count] =
            UntypedDesc { paddr: block.paddr, size_bits: block.size_bits, is_device: device as u8, _reserved: [0; 6] };
        self.count += 1;
        let bytes = 1u64 << block.size_bits;
        if device {
            self.device_bytes += bytes;
        } else {
            self.ram_bytes += bytes;
            self.ram_count += 1;
        }
    }

    /// The valid entries.
    pub fn as_slice(&self) -> &[UntypedDesc] {
        &self.entries[..self.count]
    }
}

/// Builds the list. `free_ram` is RAM nobody uses; `not_device` is everything that must
/// never become device memory (all RAM, firmware-reserved ranges, kernel-owned MMIO);
/// device memory is `device_window` minus `not_device`.
pub fn build(free_ram: &RangeSet, not_device: &RangeSet, device_window: Range) -> UntypedList {
    let mut list = UntypedList {
        entries: [UntypedDesc::default(); MAX_UNTYPED],
        count: 0,
        ram_bytes: 0,
        ram_count: 0,
        device_bytes: 0,
        dropped: 0,
    };
    for r in free_ram.as_slice() {
        split_power_of_two(*r, MIN_UNTYPED_BITS, UNTYPED_MAX_BITS, |b| list.push(b, false));
    }
    let mut cursor = device_window.start;
    let gap = |start: u64, end: u64, list: &mut UntypedList| {
        if start < end {
            split_power_of_two(Range { start, end }, MIN_UNTYPED_BITS, UNTYPED_MAX_BITS, |b| list.push(b, true));
        }
    };
    for r in not_device.as_slice() {
        if r.end <= cursor {
            continue;
        }
        if r.start >= device_window.end {
            break;
        }
        gap(cursor, r.start.min(device_window.end), &mut list);
        cursor = cursor.max(r.end);
    }
    gap(cursor, device_window.end, &mut list);
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_then_device_and_no_overlap() {
        let mut free = RangeSet::new();
        free.add(Range { start: 0x40_0000, end: 0x800_0000 }).unwrap();
        let mut not_device = RangeSet::new();
        not_device.add(Range { start: 0, end: 0x800_0000 }).unwrap();
        not_device.add(Range { start: 0xb000_0000, end: 0xc000_0000 }).unwrap(); // ECAM
        not_device.add(Range { start: 0xfed9_0000, end: 0xfed9_1000 }).unwrap(); // IOMMU
        let list = build(&free, &not_device, Range { start: 0x10_0000, end: 1 << 32 });
        assert_eq!(list.ram_bytes, 0x800_0000 - 0x40_0000);
        assert!(list.as_slice()[..list.ram_count].iter().all(|u| u.is_device == 0));
        assert!(list.as_slice()[list.ram_count..].iter().all(|u| u.is_device == 1));
        for u in list.as_slice() {
            let r = Range::new(u.paddr, 1 << u.size_bits);
            assert_eq!(u.paddr % (1 << u.size_bits), 0);
            if u.is_device == 1 {
                assert!(!not_device.overlaps(r), "{r} overlaps a non-device range");
            }
        }
        assert_eq!(list.device_bytes, (1u64 << 32) - 0x800_0000 - 0x1000_0000 - 0x1000);
        assert_eq!(list.dropped, 0);
    }
}
