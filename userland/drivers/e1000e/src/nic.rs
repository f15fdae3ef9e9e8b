//! The driver core: reset, MAC, link, one receive and one transmit ring.
//!
//! The DMA region the caller gives is laid out as: page 0 the receive ring, page 1 the
//! transmit ring, then [`RX_DESCS`] receive buffers and [`TX_DESCS`] transmit buffers
//! of [`RX_BUF`] bytes each. Frames are copied into and out of these buffers, so the
//! device only ever sees the region's IOVAs.

use core::sync::atomic::{fence, Ordering};

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use crate::desc::{Ring, RxDesc, TxDesc, RX_DD, RX_EOP, TX_DD, TX_EOP, TX_IFCS, TX_RS};
use crate::registers::{Ctrl, Eerd, Interrupt, Rah, Rctl, Registers, Status, Tctl, REGISTERS_BYTES};
use crate::{DmaRegion, E1000eError, PAGE};

/// Receive descriptors (a multiple of 8).
pub const RX_DESCS: u32 = 16;
/// Transmit descriptors (a multiple of 8).
pub const TX_DESCS: u32 = 16;
/// Bytes of each buffer (RCTL.BSIZE 0).
pub const RX_BUF: usize = 2048;
/// Pages the DMA region needs.
pub const REGION_PAGES: u64 = 2 + (RX_DESCS as u64 + TX_DESCS as u64) * RX_BUF as u64 / PAGE;
/// Looks at a self-clearing bit or EERD this many times (calling `wait` in between).
const POLLS: u32 = 100_000;
/// Inter-packet gap the datasheet recommends for copper (IPGT 10, IPGR1 8, IPGR2 6).
const TIPG_COPPER: u32 = 10 | 8 << 10 | 6 << 20;

/// One 82574 with its rings set up.
pub struct E1000e {
    regs: &'static Registers,
    region: DmaRegion,
    rx: Ring,
    tx: Ring,
    mac: [u8; 6],
}

impl E1000e {
    /// Resets the device at `bar0` (`bar0_bytes` mapped), reads its MAC, sets the link
    /// up and both rings; interrupts stay masked (the caller polls or unmasks).
    ///
    /// # Safety
    /// `bar0` must be the device's BAR 0 mapped uncached for `bar0_bytes` bytes, and
    /// `region` DMA memory mapped at `region.vaddr` that nothing else uses, for as long
    /// as the value lives.
    pub unsafe fn new(
        bar0: u64,
        bar0_bytes: u64,
        region: DmaRegion,
        wait: &mut dyn FnMut() -> bool,
    ) -> Result<Self, E1000eError> {
        let pages = region.bytes / PAGE;
        if bar0_bytes < REGISTERS_BYTES
            || pages < REGION_PAGES
            || !region.iova.is_multiple_of(PAGE)
            || !region.vaddr.is_multiple_of(PAGE)
        {
            return Err(E1000eError::BadRegion);
        }
        // SAFETY: the caller vouches for the mapping; its size covers the block.
        let regs: &'static Registers = unsafe { &*(bar0 as *const Registers) };
        regs.imc.set(!0);
        regs.ctrl.modify(Ctrl::RST::SET);
        if !poll(wait, || !regs.ctrl.is_set(Ctrl::RST)) {
            return Err(E1000eError::ResetTimeout);
        }
        regs.imc.set(!0);
        let _ = regs.icr.get();
        let mac = read_mac(regs, wait)?;
        regs.ctrl.modify(Ctrl::SLU::SET + Ctrl::ASDE::SET + Ctrl::PHY_RST::CLEAR);
        for m in regs.mta.iter() {
            m.set(0);
        }
        let mut nic = E1000e { regs, region, rx: Ring::new(RX_DESCS), tx: Ring::new(TX_DESCS), mac };
        nic.setup_rx();
        nic.setup_tx();
        Ok(nic)
    }

    fn setup_rx(&mut self) {
        for i in 0..self.rx.len {
            let d = RxDesc { addr: self.buffer(false, i).1, ..Default::default() };
            // SAFETY: `i` < RX_DESCS: inside the receive ring page of the region.
            unsafe { self.rx_desc(i).write_volatile(d) };
        }
        fence(Ordering::SeqCst);
        let iova = self.region.iova;
        self.regs.rdbal.set(iova as u32);
        self.regs.rdbah.set((iova >> 32) as u32);
        self.regs.rdlen.set(self.rx.bytes());
        self.regs.rdh.set(0);
        // Every descriptor but one is the device's (head == tail means none is).
        self.regs.rdt.set(self.rx.len - 1);
        self.regs.rctl.write(Rctl::EN::SET + Rctl::BAM::SET + Rctl::SECRC::SET + Rctl::BSIZE.val(0));
    }

    fn setup_tx(&mut self) {
        for i in 0..self.tx.len {
            // SAFETY: `i` < TX_DESCS: inside the transmit ring page.
            unsafe { self.tx_desc(i).write_volatile(TxDesc::default()) };
        }
        fence(Ordering::SeqCst);
        let iova = self.region.iova + PAGE;
        self.regs.tdbal.set(iova as u32);
        self.regs.tdbah.set((iova >> 32) as u32);
        self.regs.tdlen.set(self.tx.bytes());
        self.regs.tdh.set(0);
        self.regs.tdt.set(0);
        self.regs.tipg.set(TIPG_COPPER);
        self.regs.tctl.write(Tctl::EN::SET + Tctl::PSP::SET + Tctl::CT.val(0x0f) + Tctl::COLD.val(0x3f));
    }

    /// Unmasks the causes this driver waits for: a frame received (RXT0), a transmit
    /// descriptor written back (TXDW), a link change (LSC).
    pub fn enable_interrupts(&self) {
        let _ = self.regs.icr.get();
        self.regs.ims.write(Interrupt::RXT0::SET + Interrupt::TXDW::SET + Interrupt::LSC::SET);
    }

    /// The interrupt mask (IMS).
    pub fn interrupt_mask(&self) -> u32 {
        self.regs.ims.get()
    }

    /// Reads (and so clears) the pending interrupt causes.
    pub fn take_causes(&self) -> u32 {
        self.regs.icr.get()
    }

    /// The MAC address (from RAL0/RAH0, else the EEPROM).
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Whether the link is up, and its speed in Mb/s.
    pub fn link(&self) -> (bool, u32) {
        let speed = match self.regs.status.read(Status::SPEED) {
            0 => 10,
            1 => 100,
            _ => 1000,
        };
        (self.regs.status.is_set(Status::LU), speed)
    }

    /// The (vaddr, iova) of receive (`tx` false) or transmit buffer `i`.
    fn buffer(&self, tx: bool, i: u32) -> (u64, u64) {
        let index = u64::from(i) + if tx { u64::from(RX_DESCS) } else { 0 };
        let offset = 2 * PAGE + index * RX_BUF as u64;
        (self.region.vaddr + offset, self.region.iova + offset)
    }

    fn rx_desc(&self, i: u32) -> *mut RxDesc {
        (self.region.vaddr + u64::from(i % RX_DESCS) * 16) as *mut RxDesc
    }

    fn tx_desc(&self, i: u32) -> *mut TxDesc {
        (self.region.vaddr + PAGE + u64::from(i % TX_DESCS) * 16) as *mut TxDesc
    }

    /// Turns MAC loopback on or off: with it on, every frame sent comes back on the
    /// receive ring and nothing reaches the wire (the benchmarks use it to time the
    /// whole path without waiting for a peer).
    pub fn set_loopback(&self, on: bool) {
        self.regs.rctl.modify(if on { Rctl::LBM::Mac } else { Rctl::LBM::Normal });
    }

    /// Turns unicast promiscuous mode on or off: with it on, frames to any station
    /// address are received (a bridge behind the driver gives its ports their own).
    pub fn set_promiscuous(&self, on: bool) {
        self.regs.rctl.modify(if on { Rctl::UPE::SET } else { Rctl::UPE::CLEAR });
    }

    /// Queues `frame` for sending (copied into the next transmit buffer).
    pub fn send(&mut self, frame: &[u8]) -> Result<(), E1000eError> {
        if frame.is_empty() || frame.len() > RX_BUF {
            return Err(E1000eError::FrameSize(frame.len()));
        }
        let slot = self.tx_slot()?;
        let (vaddr, iova) = self.buffer(true, slot);
        // SAFETY: the buffer is RX_BUF bytes of the region and frame.len() <= RX_BUF;
        // the device does not read it: its descriptor is behind the tail.
        unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), vaddr as *mut u8, frame.len()) };
        self.queue_tx(slot, iova, frame.len() as u16);
        Ok(())
    }

    /// Queues `frames` with one doorbell (TDT) write; just before it, `stamp()` is
    /// written (8 bytes, little-endian) at byte `stamp_at` of every frame. The receive
    /// benchmark's sender uses it: QEMU sends an 82574's frames inside that write, so the
    /// stamp is the moment a peer NIC on a hub completes their reception.
    pub fn send_batch_stamped(
        &mut self,
        frames: &[&[u8]],
        stamp_at: usize,
        stamp: impl FnOnce() -> u64,
    ) -> Result<(), E1000eError> {
        let mut queued = [0u64; TX_DESCS as usize];
        for (i, frame) in frames.iter().enumerate() {
            if frame.len() < stamp_at + 8 || frame.len() > RX_BUF || i + 1 >= TX_DESCS as usize {
                return Err(E1000eError::FrameSize(frame.len()));
            }
        }
        for (i, frame) in frames.iter().enumerate() {
            let slot = self.tx_slot()?;
            let (vaddr, iova) = self.buffer(true, slot);
            // SAFETY: as in `send`: the buffer is RX_BUF bytes and the device does not
            // read it (its descriptor is behind the tail until the doorbell below).
            unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), vaddr as *mut u8, frame.len()) };
            let d =
                TxDesc { addr: iova, length: frame.len() as u16, cmd: TX_EOP | TX_IFCS | TX_RS, ..Default::default() };
            // SAFETY: slot < TX_DESCS: inside the transmit ring page.
            unsafe { self.tx_desc(slot).write_volatile(d) };
            self.tx.next = self.tx.after(slot);
            queued[i] = vaddr;
        }
        let now = stamp().to_le_bytes();
        for &vaddr in &queued[..frames.len()] {
            // SAFETY: inside the buffer (checked: stamp_at + 8 <= the frame's length).
            unsafe { core::ptr::copy_nonoverlapping(now.as_ptr(), (vaddr as *mut u8).add(stamp_at), 8) };
        }
        // Buffers and descriptors in memory before the device sees the new tail.
        fence(Ordering::SeqCst);
        self.regs.tdt.set(self.tx.next);
        Ok(())
    }

    /// Queues a frame the device reads from `iova`, whatever it names: what a buggy or
    /// hostile driver can make its device do. The fault scenarios use it to show that
    /// the device's domain stops a read outside the pool and the iommu-server reports
    /// it; nothing in this driver's own memory depends on the outcome.
    pub fn send_from_iova(&mut self, iova: u64, len: u16) -> Result<(), E1000eError> {
        let slot = self.tx_slot()?;
        self.queue_tx(slot, iova, len);
        Ok(())
    }

    /// The next free transmit slot, or `TxFull`.
    fn tx_slot(&self) -> Result<u32, E1000eError> {
        let head = self.tx.check_head(self.regs.tdh.get(), true)?;
        let slot = self.tx.next;
        // The ring is full when the slot after ours is the device's head.
        if self.tx.after(slot) == head {
            return Err(E1000eError::TxFull);
        }
        Ok(slot)
    }

    /// Writes transmit descriptor `slot` and hands it to the device.
    fn queue_tx(&mut self, slot: u32, iova: u64, len: u16) {
        let d = TxDesc { addr: iova, length: len, cmd: TX_EOP | TX_IFCS | TX_RS, ..Default::default() };
        // SAFETY: slot < TX_DESCS: inside the transmit ring page.
        unsafe { self.tx_desc(slot).write_volatile(d) };
        // Buffer and descriptor in memory before the device sees the new tail.
        fence(Ordering::SeqCst);
        self.tx.next = self.tx.after(slot);
        self.regs.tdt.set(self.tx.next);
    }

    /// Whether every queued frame has been sent (the device caught up with the tail
    /// and wrote the last descriptor back).
    pub fn tx_idle(&self) -> Result<bool, E1000eError> {
        let head = self.tx.check_head(self.regs.tdh.get(), true)?;
        if head != self.tx.next {
            return Ok(false);
        }
        let last = (self.tx.next + TX_DESCS - 1) % TX_DESCS;
        // SAFETY: inside the transmit ring page.
        let d = unsafe { self.tx_desc(last).read_volatile() };
        Ok(d.cmd == 0 || d.status & TX_DD != 0)
    }

    /// Copies the next received frame into `out` and gives its buffer back to the
    /// device; `None` if none is waiting. A length the device reports beyond the buffer
    /// (or a frame spread over buffers, which this setup never asks for) is refused.
    pub fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, E1000eError> {
        self.rx.check_head(self.regs.rdh.get(), false)?;
        let slot = self.rx.next;
        // SAFETY: slot < RX_DESCS: inside the receive ring page.
        let d = unsafe { self.rx_desc(slot).read_volatile() };
        if d.status & RX_DD == 0 {
            return Ok(None);
        }
        // The rest of the descriptor and the buffer only after DD was seen.
        fence(Ordering::Acquire);
        let len = usize::from(d.length);
        let result = if len > RX_BUF || d.status & RX_EOP == 0 {
            Err(E1000eError::BadLength(d.length))
        } else {
            let n = len.min(out.len());
            let (vaddr, _) = self.buffer(false, slot);
            // SAFETY: n <= len <= RX_BUF: inside this slot's buffer, which the device
            // finished writing (DD).
            unsafe { core::ptr::copy_nonoverlapping(vaddr as *const u8, out.as_mut_ptr(), n) };
            Ok(Some(n))
        };
        // Back to the device whatever it held: the address is rewritten from our own
        // record, never taken from the descriptor the device wrote.
        let fresh = RxDesc { addr: self.buffer(false, slot).1, ..Default::default() };
        // SAFETY: as above.
        unsafe { self.rx_desc(slot).write_volatile(fresh) };
        fence(Ordering::SeqCst);
        self.regs.rdt.set(slot);
        self.rx.next = self.rx.after(slot);
        result
    }
}

/// Calls `done` until it holds, with `wait` in between, at most [`POLLS`] times or
/// until `wait` gives up.
fn poll(wait: &mut dyn FnMut() -> bool, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..POLLS {
        if done() {
            return true;
        }
        if !wait() {
            break;
        }
    }
    done()
}

/// The MAC: RAL0/RAH0 if the device loaded them (AV), else EEPROM words 0..3.
fn read_mac(regs: &Registers, wait: &mut dyn FnMut() -> bool) -> Result<[u8; 6], E1000eError> {
    let mut mac = [0u8; 6];
    if regs.rah0.is_set(Rah::AV) {
        mac[..4].copy_from_slice(&regs.ral0.get().to_le_bytes());
        mac[4..].copy_from_slice(&(regs.rah0.read(Rah::HIGH) as u16).to_le_bytes());
    } else {
        for word in 0..3u32 {
            regs.eerd.write(Eerd::ADDR.val(word) + Eerd::START::SET);
            if !poll(wait, || regs.eerd.is_set(Eerd::DONE)) {
                return Err(E1000eError::EepromTimeout);
            }
            let data = regs.eerd.read(Eerd::DATA) as u16;
            mac[word as usize * 2..word as usize * 2 + 2].copy_from_slice(&data.to_le_bytes());
        }
        regs.ral0.set(u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]));
        regs.rah0.write(Rah::HIGH.val(u32::from(u16::from_le_bytes([mac[4], mac[5]]))) + Rah::AV::SET);
    }
    if mac == [0; 6] || mac[0] & 1 != 0 {
        return Err(E1000eError::BadMac(mac));
    }
    Ok(mac)
}
