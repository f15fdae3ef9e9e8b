//! The controller: enable, admin commands, one I/O queue pair, Read/Write.
//!
//! One command is outstanding per queue at a time: the driver writes the entry, rings
//! the tail doorbell, and waits for the completion whose phase tag is new (calling the
//! caller's `wait` between looks: a bounded notification wait when MSI-X delivers
//! completions, a yield when polling; `wait` returns false once the caller's deadline
//! passed, and the command fails with a timeout). Every completion is checked against the command it must
//! answer before its head is used ([`Completion::check`]).

use core::sync::atomic::{fence, Ordering};

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::WriteOnly;

use crate::identify::{ControllerId, NamespaceId};
use crate::queue::{Command, Completion, Rings};
use crate::registers::{Aqa, Cc, Csts, Limits, NvmeRegisters};
use crate::{prp, NvmeError, PAGE};

/// Looks at a completion queue this many times (calling `wait` in between) before
/// a command times out.
pub const COMMAND_POLLS: u64 = 20_000_000;
/// Looks at CSTS per CAP.TO unit (500 ms) while waiting for ready.
pub const READY_POLLS_PER_UNIT: u64 = 1_000_000;

/// DMA memory the caller got from its pool: CPU address and the IOVA the device uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaRegion {
    /// Where the CPU sees it (mapped read-write).
    pub vaddr: u64,
    /// Where the device sees it (consecutive IOVAs, page aligned).
    pub iova: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

impl DmaRegion {
    fn check(&self, at_least: u64) -> Result<(), NvmeError> {
        if self.bytes < at_least || !self.iova.is_multiple_of(PAGE) || !self.vaddr.is_multiple_of(PAGE) {
            return Err(NvmeError::BadRegion);
        }
        Ok(())
    }
}

/// A queue pair's memory and rings.
struct QueuePair {
    qid: u16,
    sq: DmaRegion,
    cq: DmaRegion,
    rings: Rings,
}

/// A controller the driver owns.
pub struct Controller {
    regs: &'static NvmeRegisters,
    bar: u64,
    limits: Limits,
    admin: QueuePair,
    io: Option<QueuePair>,
    namespace: Option<(u32, NamespaceId)>,
    max_transfer: u64,
    /// Completions seen, over all queues.
    pub completions: u64,
}

impl Controller {
    /// Resets the controller whose BAR 0 is mapped at `bar` (`bar_bytes` of it, uncached)
    /// and enables it with the admin queues in `admin_sq` and `admin_cq` (a page each).
    ///
    /// # Safety
    /// `bar..bar + bar_bytes` must be this NVMe controller's BAR 0, mapped uncached for
    /// the caller's whole life and used by nothing else; the regions must be DMA memory
    /// of that size mapped read-write at `vaddr` and at `iova` in the device's domain,
    /// used by nothing else while the controller lives.
    pub unsafe fn enable(
        bar: u64,
        bar_bytes: u64,
        admin_sq: DmaRegion,
        admin_cq: DmaRegion,
        wait: &mut dyn FnMut() -> bool,
    ) -> Result<Self, NvmeError> {
        admin_sq.check(PAGE)?;
        admin_cq.check(PAGE)?;
        if bar_bytes < 0x1000 + 16 {
            return Err(NvmeError::DoorbellOutsideBar { qid: 0, offset: 0x1000 });
        }
        // SAFETY: the caller guarantees BAR 0 is mapped at `bar` (at least the register
        // block, checked above); the register block is 0x38 bytes of MMIO.
        let regs: &'static NvmeRegisters = unsafe { &*(bar as *const NvmeRegisters) };
        let limits = Limits::from_cap(regs.cap.get(), bar_bytes, 1)?;
        let entries = limits.queue_entries;
        let c = Controller {
            regs,
            bar,
            limits,
            admin: QueuePair { qid: 0, sq: admin_sq, cq: admin_cq, rings: Rings::new(entries) },
            io: None,
            namespace: None,
            max_transfer: u64::MAX,
            completions: 0,
        };
        c.regs.cc.modify(Cc::EN::CLEAR);
        c.wait_ready(false, wait)?;
        zero(admin_cq);
        c.regs.aqa.write(Aqa::ASQS.val(u32::from(entries) - 1) + Aqa::ACQS.val(u32::from(entries) - 1));
        c.regs.asq.set(admin_sq.iova);
        c.regs.acq.set(admin_cq.iova);
        c.regs.cc.write(Cc::IOSQES.val(6) + Cc::IOCQES.val(4) + Cc::MPS.val(0) + Cc::CSS.val(0) + Cc::EN::SET);
        c.wait_ready(true, wait)?;
        Ok(c)
    }

    /// The checked CAP fields in use.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The version register (major << 16 | minor << 8).
    pub fn version(&self) -> u32 {
        self.regs.vs.get()
    }

    fn wait_ready(&self, ready: bool, wait: &mut dyn FnMut() -> bool) -> Result<(), NvmeError> {
        let polls = u64::from(self.limits.timeout_units) * READY_POLLS_PER_UNIT;
        for _ in 0..polls {
            let csts = self.regs.csts.extract();
            if ready && csts.is_set(Csts::CFS) {
                return Err(NvmeError::ControllerFatal);
            }
            if csts.is_set(Csts::RDY) == ready {
                return Ok(());
            }
            if !wait() {
                break;
            }
        }
        Err(NvmeError::ReadyTimeout { ready })
    }

    fn doorbell(&self, qid: u16, completion: bool, value: u16) {
        let at = self.bar + self.limits.doorbell(qid, completion);
        // SAFETY: `Limits::from_cap` checked that the doorbells of queues 0 and 1 lie
        // inside the mapped BAR; a doorbell is a 32-bit MMIO register.
        let register: &WriteOnly<u32> = unsafe { &*(at as *const WriteOnly<u32>) };
        register.set(u32::from(value));
    }

    /// Submits `command` on the admin queue (`io` false) or the I/O queue and waits
    /// for its checked completion.
    fn run(&mut self, io: bool, command: Command, wait: &mut dyn FnMut() -> bool) -> Result<Completion, NvmeError> {
        let q = if io { self.io.as_mut().ok_or(NvmeError::BadTransfer)? } else { &mut self.admin };
        let (slot, cid, tail) = q.rings.submit();
        let entry = (q.sq.vaddr + u64::from(slot) * 64) as *mut Command;
        // SAFETY: slot < entries <= 64, so the entry lies in the queue's page (checked
        // by `DmaRegion::check`), DMA memory the caller gave the controller alone.
        unsafe { entry.write_volatile(command.with_cid(cid)) };
        // The entry must be in memory before the device sees the new tail.
        fence(Ordering::SeqCst);
        let (qid, entries, cq) = (q.qid, q.rings.entries, q.cq);
        self.doorbell(qid, false, tail);
        for _ in 0..COMMAND_POLLS {
            let q = if io { self.io.as_mut().ok_or(NvmeError::BadTransfer)? } else { &mut self.admin };
            let at = (cq.vaddr + u64::from(q.rings.cq_head) * 16) as *const Completion;
            // SAFETY: cq_head < entries <= 64: inside the completion queue's page.
            let head_word = unsafe { core::ptr::addr_of!((*at).dw3).read_volatile() };
            let probe = Completion { dw3: head_word, ..Default::default() };
            if probe.phase() != q.rings.phase {
                if !wait() {
                    break;
                }
                continue;
            }
            // The rest of the entry is read only after its phase tag showed it new.
            fence(Ordering::Acquire);
            // SAFETY: as above.
            let done = unsafe { at.read_volatile() };
            let head = q.rings.complete(&done).ok_or(NvmeError::CommandTimeout { cid })?;
            self.completions += 1;
            self.doorbell(qid, true, head);
            done.check(qid, cid, entries)?;
            return Ok(done);
        }
        Err(NvmeError::CommandTimeout { cid })
    }

    /// Identify Controller into `page` (one DMA page).
    pub fn identify_controller(
        &mut self,
        page: DmaRegion,
        wait: &mut dyn FnMut() -> bool,
    ) -> Result<ControllerId, NvmeError> {
        page.check(PAGE)?;
        self.run(false, Command::identify(1, 0, page.iova), wait)?;
        let id = ControllerId::parse(&read_page(page))?;
        self.max_transfer = id.max_transfer();
        Ok(id)
    }

    /// Identify Namespace `nsid` into `page`; remembered as the namespace for I/O.
    pub fn identify_namespace(
        &mut self,
        nsid: u32,
        page: DmaRegion,
        wait: &mut dyn FnMut() -> bool,
    ) -> Result<NamespaceId, NvmeError> {
        page.check(PAGE)?;
        self.run(false, Command::identify(0, nsid, page.iova), wait)?;
        let ns = NamespaceId::parse(&read_page(page))?;
        self.namespace = Some((nsid, ns));
        Ok(ns)
    }

    /// Creates I/O queue pair 1 (completion queue first) in `sq` and `cq` (a page each);
    /// completions raise MSI-X entry `vector` if given.
    pub fn create_io_queues(
        &mut self,
        sq: DmaRegion,
        cq: DmaRegion,
        vector: Option<u16>,
        wait: &mut dyn FnMut() -> bool,
    ) -> Result<(), NvmeError> {
        sq.check(PAGE)?;
        cq.check(PAGE)?;
        zero(cq);
        let entries = self.limits.queue_entries;
        self.run(false, Command::create_cq(1, entries, cq.iova, vector), wait)?;
        self.run(false, Command::create_sq(1, entries, sq.iova, 1), wait)?;
        self.io = Some(QueuePair { qid: 1, sq, cq, rings: Rings::new(entries) });
        Ok(())
    }

    /// Reads (`write` false) or writes `blocks` logical blocks at `lba` from/to `data`
    /// on the I/O queue, with PRP2 a list in `list` when more than two pages move.
    pub fn transfer(
        &mut self,
        write: bool,
        lba: u64,
        blocks: u32,
        data: DmaRegion,
        list: DmaRegion,
        wait: &mut dyn FnMut() -> bool,
    ) -> Result<(), NvmeError> {
        let (nsid, ns) = self.namespace.ok_or(NvmeError::BadTransfer)?;
        let bytes = u64::from(blocks) * u64::from(ns.block_size);
        let end = lba.checked_add(u64::from(blocks)).ok_or(NvmeError::BadTransfer)?;
        if blocks == 0 || bytes > data.bytes || end > ns.blocks || bytes > self.max_transfer {
            return Err(NvmeError::BadTransfer);
        }
        list.check(PAGE)?;
        // SAFETY: `list` is a page of DMA memory the caller gave for PRP lists alone,
        // mapped read-write at `vaddr` (checked aligned and a page long).
        let entries = unsafe { core::slice::from_raw_parts_mut(list.vaddr as *mut u64, prp::LIST_ENTRIES) };
        let (prp1, prp2) = prp::build(data.iova, bytes, entries, list.iova)?;
        // The list and (for a write) the data must be in memory before the doorbell.
        fence(Ordering::SeqCst);
        self.run(true, Command::rw(write, nsid, lba, blocks, prp1, prp2), wait)?;
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// Flushes the namespace's volatile write cache.
    pub fn flush(&mut self, wait: &mut dyn FnMut() -> bool) -> Result<(), NvmeError> {
        let (nsid, _) = self.namespace.ok_or(NvmeError::BadTransfer)?;
        self.run(true, Command::flush(nsid), wait).map(|_| ())
    }
}

/// Zeroes a region (a completion queue before the device may write it).
fn zero(region: DmaRegion) {
    for i in 0..region.bytes / 8 {
        // SAFETY: `region` was checked to be DMA memory mapped read-write, `bytes` long.
        unsafe { ((region.vaddr + i * 8) as *mut u64).write_volatile(0) };
    }
}

/// A copy of the page the device wrote.
fn read_page(region: DmaRegion) -> [u8; 4096] {
    let mut page = [0u8; 4096];
    for (i, b) in page.iter_mut().enumerate() {
        // SAFETY: `region` is at least a page of DMA memory mapped at `vaddr`.
        *b = unsafe { ((region.vaddr + i as u64) as *const u8).read_volatile() };
    }
    page
}
