//! A canary page of the partition's own memory, checked after every datagram.
//!
//! Only where the description gives the partition a writable `canary-address` region
//! (a test system's read-only debug path to the rogue driver, which may know the
//! address but holds no cap to the page): the partition retypes one frame of its
//! spare budget, maps it, fills it with a pattern, and publishes the frame's physical
//! address there ([`ADDRESS_MAGIC`], then the address). A device that could write the
//! page would change the pattern; [`Canary::intact`] says whether it is unchanged.

use abi::component::{CapKind, ComponentInfo, BUDGET_UNTYPED, CNODE, VSPACE};
use abi::error::SyscallError;
use abi::layout::PAGE_SIZE;
use abi::object::ObjectType;
use abi::rights::CapRights;
use libcap::cap::{CNode, Frame, PageTable, Untyped, VSpace};

/// The first word of the `canary-address` region once the address follows it.
pub const ADDRESS_MAGIC: u64 = u64::from_le_bytes(*b"CANARYPA");
/// Where the page is mapped (a range no other mapping of the partition uses).
const CANARY_VADDR: u64 = 0x0000_5600_0000_0000;
/// Words of the page.
const WORDS: usize = (PAGE_SIZE / 8) as usize;

/// The canary page.
pub struct Canary {
    words: *mut u64,
    /// Its physical address (what the partition published).
    pub paddr: u64,
}

/// Word `i` of the pattern.
pub fn pattern(i: usize) -> u64 {
    0xca4a_7259_0000_0000 | i as u64
}

impl Canary {
    /// Plants the canary if the description gives a writable `canary-address` region;
    /// `Ok(None)` without one.
    pub fn plant(info: &'static ComponentInfo) -> Result<Option<Canary>, &'static str> {
        let Some(region) =
            info.cap_of("canary-address", CapKind::Region).filter(|c| c.rights & CapRights::WRITE.raw() != 0)
        else {
            return Ok(None);
        };
        let root = CNode(CNODE);
        let mut free = info.caps().iter().map(|c| c.slot).max().unwrap_or(0).max(BUDGET_UNTYPED + 6) + 1;
        // One object from whichever spare untyped still has room for it.
        let mut make = |kind: ObjectType| -> Result<u64, &'static str> {
            let slot = free;
            (info.budget_untyped.start..info.budget_untyped.end)
                .find(|&u| Untyped(u).retype(kind, 0, root, 0, 0, slot, 1).is_ok())
                .ok_or("no spare untyped for the canary")?;
            free += 1;
            Ok(slot)
        };
        let frame = Frame(make(ObjectType::Frame4K)?);
        let rw = CapRights::READ.union(CapRights::WRITE);
        // Page-table levels as the first tries find them missing (as `IommuClient` does).
        for level in [ObjectType::Pdpt, ObjectType::PageDirectory, ObjectType::PageTable] {
            match frame.map(VSpace(VSPACE), CANARY_VADDR, rw, 0) {
                Ok(()) => break,
                Err(e) if e.code == SyscallError::FailedLookup => {}
                Err(_) => return Err("map the canary page"),
            }
            match PageTable(make(level)?).map(VSpace(VSPACE), CANARY_VADDR) {
                Ok(()) => {}
                Err(e) if e.code == SyscallError::DeleteFirst => {}
                Err(_) => return Err("map a page table for the canary"),
            }
        }
        // Mapped by a try above, or now that every level exists (a remap is allowed).
        frame.map(VSpace(VSPACE), CANARY_VADDR, rw, 0).map_err(|_| "map the canary page")?;
        let paddr = frame.address().map_err(|_| "the canary frame's address")?;
        let words = CANARY_VADDR as *mut u64;
        for i in 0..WORDS {
            // SAFETY: the frame is mapped read-write at CANARY_VADDR (above), one page
            // that nothing else maps.
            unsafe { words.add(i).write_volatile(pattern(i)) };
        }
        let published = region.vaddr as *mut u64;
        // SAFETY: init mapped the region writable for this partition at this address for
        // its whole life; it is at least one page, so two words fit.
        unsafe {
            published.add(1).write_volatile(paddr);
            published.write_volatile(ADDRESS_MAGIC);
        }
        let canary = Canary { words, paddr };
        if !canary.intact() {
            return Err("the canary page does not hold its pattern (not mapped?)");
        }
        Ok(Some(canary))
    }

    /// Whether every word still holds the pattern.
    pub fn intact(&self) -> bool {
        // SAFETY: the page stays mapped read-write at `words` for the partition's life.
        (0..WORDS).all(|i| unsafe { self.words.add(i).read_volatile() } == pattern(i))
    }
}
