//! Two guests with an edu device each (`init=vmm-two-edu`): disjoint memory.
//!
//! Guest A runs its edu program (DMA round trip at guest-physical addresses, a DMA
//! outside its memory), marking its data with R15. Then guest B does the same with
//! the second edu, and aims its stray DMA at the *host-physical* address of guest A's
//! DMA destination page, the one name under which B could hope to reach A's memory
//! (every guest-physical address it can name is its own memory or nothing). B's
//! IOSpace has no such IOVA: the DMA is blocked and reported to B's fault handler
//! only, and A's memory still holds A's data.

use libcap::abi::vcpu::VcpuReg;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::check::Checker;
use libcap::device::DeviceMemory;
use libcap::println;

use crate::layout::{DST, VMM_WINDOW};
use crate::{build, start, DeviceSource, Machine};

/// Where guest B's RAM appears in the VMM (guest A's is at [`VMM_WINDOW`]).
const WINDOW_B: u64 = VMM_WINDOW + 0x1_0000_0000;
/// What each guest ORs into its data (its R15).
const MARK_A: u64 = 0xa << 16;
const MARK_B: u64 = 0xb << 16;
/// The guest's data pattern before the mark (guest.rs).
const PATTERN: u64 = 0x6775_6573_7400_0000;

/// The eight words at `window + DST` are guest data marked `mark`.
fn holds(window: u64, mark: u64) -> bool {
    (0..8).all(|i| {
        // SAFETY: the DST page is guest RAM, mapped read-write in the window.
        let word = unsafe { core::ptr::read_volatile((window + DST + 8 * i) as *const u64) };
        word == (PATTERN | mark) + i
    })
}

/// Runs guest A, then guest B, and checks neither reached the other.
pub fn run(
    c: &mut Checker,
    bi: &'static libcap::abi::bootinfo::BootInfo,
    res: (&mut ObjectAllocator<'_>, &SlotAllocator, &mut DeviceMemory),
) {
    let (objects, slots, device_memory) = res;
    println!("vmm: guest A, with the first edu");
    // Guest A's Vmm borrows the allocators: it lives only in this block.
    let (a_dev, a_dst) = {
        let source = DeviceSource::Own { bi, memory: &mut *device_memory, nth: 0 };
        let Some(mut a) = build(c, (&mut *objects, slots), Machine::TwoEdu, VMM_WINDOW, source) else {
            return;
        };
        if !start(c, &mut a, Machine::TwoEdu, &[(VcpuReg::R15, MARK_A)]) {
            return;
        }
        let a_dst = a.ram.iter().take(a.pages).find(|(gpa, _)| *gpa == DST).map(|&(_, f)| f);
        let Some(a_dev) = a.device.take() else { return };
        (a_dev, a_dst)
    };
    let Some(a_dst_paddr) = a_dst.and_then(|f| f.address().ok()) else {
        c.check("find the host-physical address of guest A's DMA page", false);
        return;
    };
    c.check("guest A's own fault record was its only one", a_dev.no_faults_queued());

    println!(
        "vmm: guest B, with the second edu, aims a DMA at guest A's page by its host-physical address {a_dst_paddr:#x}"
    );
    let source = DeviceSource::Own { bi, memory: device_memory, nth: 1 };
    let Some(mut b) = build(c, (objects, slots), Machine::TwoEdu, WINDOW_B, source) else {
        return;
    };
    start(c, &mut b, Machine::TwoEdu, &[(VcpuReg::R15, MARK_B), (VcpuReg::R14, a_dst_paddr)]);
    c.check("guest B's DMA filled B's own memory", holds(WINDOW_B, MARK_B));
    c.check("guest A's memory still holds A's data after guest B's DMA", holds(VMM_WINDOW, MARK_A));
    c.check("guest B's stray DMA was reported to B's IOSpace, not to A's", a_dev.no_faults_queued());
}
