//! The edu driver thread: DMA only through the iommu-server's buffers.
//!
//! Runs in its own VSpace and CSpace (slots in `crate::drv`). Every step prints an
//! `iommutest: ok/FAIL` line; at the end it stores its failure count in the data both
//! spaces share and signals the root task's notification.

use abi::iommu::{IommuLabel, IommuStatus, IOVA_BASE};
use abi::layout::PAGE_SIZE;
use abi::pci;
use abi::rights::CapRights;
use edu_driver::{Edu, EduRegisters};
use libcap::cap::{Frame, Notification, VSpace};
use libcap::check::Checker;
use libcap::iommu::{ClientSpace, DmaBuffer, IommuClient, IommuError};
use libcap::{ipc, println};

use crate::drv;

/// Where the driver maps its DMA buffers.
const DMA_VADDRS: core::ops::Range<u64> = 0x0000_5000_0000_0000..0x0000_5000_0100_0000;

/// Waits for the server's forwarded DmaFault for the transfer `start` begins, then lets
/// the transfer complete; returns the faulting IOVA (None: no fault forwarded).
fn dma_fault_of(edu: &Edu, start: impl FnOnce() -> bool) -> Option<u64> {
    if !start() {
        return None;
    }
    // The server NBSends the fault: we wait in Recv before the DMA happens.
    let m = ipc::recv(drv::FAULTS).ok()?;
    let _ = edu.complete();
    (m.info.label == IommuLabel::DmaFault.raw()).then_some(m.mrs[1])
}

/// Writes `pattern + i` into the first 8 words of `buffer`.
fn fill(buffer: &DmaBuffer, pattern: u64, offset: u64) {
    let words = (buffer.vaddr + offset) as *mut u64;
    for i in 0..8 {
        // SAFETY: the buffer is mapped read-write at `vaddr` and `offset + 64` is inside it.
        unsafe { words.add(i).write_volatile(pattern + i as u64) };
    }
}

fn holds(buffer: &DmaBuffer, pattern: u64, offset: u64) -> bool {
    let words = (buffer.vaddr + offset) as *const u64;
    // SAFETY: as in `fill`.
    (0..8).all(|i| unsafe { words.add(i).read_volatile() } == pattern + i as u64)
}

pub(crate) extern "C" fn driver_main(_: u64) -> ! {
    let mut c = Checker::new("iommutest");
    run(&mut c);
    crate::FAILURES.store(c.failures, core::sync::atomic::Ordering::SeqCst);
    let _ = ipc::signal(drv::DONE);
    // Block (the root task runs below this thread's priority).
    loop {
        let _ = ipc::recv(drv::FAULTS);
    }
}

fn run(c: &mut Checker) {
    let space = ClientSpace {
        cnode: drv::CNODE,
        vspace: VSpace(drv::VSPACE),
        untyped: drv::UNTYPED,
        slots: 32..240,
        vaddrs: DMA_VADDRS,
    };
    let mut client = IommuClient::new(drv::SERVER, space);
    // Read-modify-write: the kernel refuses clearing Interrupt Disable (no INTx).
    let command = client.config_read(pci::COMMAND, 2).unwrap_or(0) | pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER;
    c.check(
        "enable decoding and bus mastering through the server",
        client.config_write(pci::COMMAND, 2, command).is_ok(),
    );
    c.check(
        "a BAR read through the server is denied",
        client.config_read(0x10, 4) == Err(IommuError::Status(IommuStatus::Denied)),
    );
    let msi = client.msi();
    if let Err(e) = &msi {
        println!("iommutest: msi failed: {e:?}");
    }
    c.check("an MSI from the server", msi.is_ok());
    let Ok((handler, msi)) = msi else { return };
    println!("iommutest: MSI vector {:#x} address {:#x}", msi.vector, msi.address);
    c.check(
        "bind the MSI to the driver's notification",
        handler.set_notification(Notification(drv::NOTIFICATION)).is_ok(),
    );
    // SAFETY: the root task mapped edu's BAR page uncached at REGS_VADDR in this space.
    let regs: &EduRegisters = unsafe { EduRegisters::at(crate::REGS_VADDR) };
    let edu = Edu::new(regs, handler, Notification(drv::NOTIFICATION));
    c.check("edu answers", edu.present());

    let rw = CapRights::READ.union(CapRights::WRITE);
    let one = client.dma_alloc(PAGE_SIZE, rw);
    if let Err(e) = &one {
        println!("iommutest: dma_alloc failed: {e:?}");
    }
    c.check("dma_alloc of one page", one.is_ok());
    let Ok(one) = one else { return };
    let paddr = Frame(one.frames.start).address().unwrap_or(0);
    println!("iommutest: buffer at iova {:#x} vaddr {:#x} frame {paddr:#x}", one.iova, one.vaddr);
    c.check("its IOVA lies below edu's 28-bit DMA mask", one.iova + PAGE_SIZE <= 1 << 28 && one.iova >= IOVA_BASE);
    c.check("its frame lies above 4 GiB", paddr >= 1 << 32);
    fill(&one, 0xd0_0000, 0);
    let sent = edu.to_device(one.iova, 0, 64);
    let back = edu.to_ram(0, one.iova + 0x800, 64);
    c.check(
        "edu DMA round trip RAM -> device -> RAM through the buffer",
        sent.is_ok() && back.is_ok() && holds(&one, 0xd0_0000, 0x800),
    );

    let three = client.dma_alloc(3 * PAGE_SIZE, rw);
    c.check("dma_alloc of three pages", three.is_ok());
    let Ok(three) = three else { return };
    c.check("one unmapped guard page lies between the buffers", three.iova == one.iova + 2 * PAGE_SIZE);
    fill(&three, 0xd1_0000, 0);
    let last = three.iova + 2 * PAGE_SIZE;
    let ok = edu.to_device(three.iova, 0, 64).is_ok() && edu.to_ram(0, last + 8, 64).is_ok();
    c.check("edu writes the third page of the buffer", ok && holds(&three, 0xd1_0000, 2 * PAGE_SIZE + 8));

    let guard = three.iova + 3 * PAGE_SIZE;
    let fault = dma_fault_of(&edu, || edu.start_to_ram(0, guard, 8).is_ok());
    println!("iommutest: guard page {guard:#x}: fault forwarded for {fault:x?}");
    c.check("a DMA into the guard page faults and the fault is forwarded", fault == Some(guard));

    let freed = client.dma_free(&one);
    c.check("dma_free of the one-page buffer", freed == Ok(1));
    c.check("the driver's frame cap died with it (revoked)", Frame(one.frames.start).address().is_err());
    let fault = dma_fault_of(&edu, || edu.start_to_ram(0, one.iova, 8).is_ok());
    println!("iommutest: freed buffer {:#x}: fault forwarded for {fault:x?}", one.iova);
    c.check("a DMA to the freed IOVA faults and the fault is forwarded", fault == Some(one.iova));
    c.check("freeing it again is refused", client.dma_free(&one) == Err(IommuError::Status(IommuStatus::NotFound)));
    c.check(
        "a zero-byte buffer is refused",
        client.dma_alloc(0, rw) == Err(IommuError::Status(IommuStatus::BadRequest)),
    );
    c.check(
        "a buffer without device rights is refused",
        client.dma_alloc(PAGE_SIZE, CapRights::GRANT) == Err(IommuError::Status(IommuStatus::BadRequest)),
    );
    let again = client.dma_alloc(PAGE_SIZE, rw);
    c.check("the freed IOVA and frame are handed out again", again.as_ref().is_ok_and(|b| b.iova == one.iova));
}
