//! Per-driver domain state: buffers, frames, placed frames, the free list.
//!
//! Besides the buffers the server allocates, a driver may send frames to be mapped
//! at IOVAs it chose (a VMM mirroring guest memory).
//!
//! The kernel operations a domain needs go through [`DmaOps`], so the bookkeeping
//! (rollback on failure, frames reused only after unmap and revoke) is host-tested.

use abi::error::SyscallError;
use abi::iommu::{IommuStatus, MAX_CLIENT_FRAMES};
use abi::layout::PAGE_SIZE;
use abi::rights::CapRights;
use alloc::vec::Vec;

use crate::iova::IovaAllocator;

/// IO page tables one mapping may need made (every level below the root, 4 levels).
pub const MAX_NEW_TABLES: u64 = 3;

/// The kernel operations behind a domain; frames are named by the server's cap slots.
pub trait DmaOps {
    /// Retypes a new 4 KiB frame from the device's DMA pool; `None` when it is empty.
    fn new_frame(&mut self, device: u16) -> Option<u64>;
    /// Maps `frame` at `iova` in the device's IOSpace (creating IO page tables).
    fn map_io(&mut self, device: u16, frame: u64, iova: u64, rights: CapRights) -> Result<(), u64>;
    /// Removes `frame`'s IO mapping (the kernel completes the invalidation first).
    fn unmap_io(&mut self, frame: u64) -> Result<(), u64>;
    /// Revokes every copy derived from `frame` (the driver's, and its CPU mappings).
    fn revoke(&mut self, frame: u64) -> Result<(), u64>;
    /// Maps a frame the driver sent (`frame`: the server's copy, of a cap the driver
    /// chose: any type) at `iova` without invoking it; `InvalidCapability` if it is
    /// not a 4 KiB RAM frame.
    fn map_placed(&mut self, device: u16, frame: u64, iova: u64, rights: CapRights) -> Result<(), u64> {
        self.map_io(device, frame, iova, rights)
    }
    /// IO page tables made so far by [`Self::map_io`] (a running count).
    fn tables_made(&self) -> u64 {
        0
    }
}

/// One buffer: its IOVA range and the frame of each page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// First IOVA.
    pub iova: u64,
    /// Frame cap slot of each page.
    pub frames: Vec<u64>,
}

/// The DMA state of one driver's device.
#[derive(Debug)]
pub struct Domain {
    /// The device index (system description order).
    pub device: u16,
    iovas: IovaAllocator,
    buffers: Vec<Buffer>,
    /// Frames unmapped and revoked, ready for reuse by this domain.
    free_frames: Vec<u64>,
    /// Frames the driver sent (`DmaMapFrame`): IOVA and the server's copy's slot.
    client_frames: Vec<(u64, u64)>,
    /// The driver's fault notification (`FaultWatch`; the server's copy's slot), 0: none.
    pub watch: u64,
    /// Server slots the driver's placed frames may take, their copies and the IO page
    /// tables made to map them counted together (the server's share for this device;
    /// none until the server sets it).
    pub placed_quota: u64,
    /// IO page tables made to map placed frames: they stay in the IOSpace (and in the
    /// server's CNode) for good, so they count against the quota for good.
    pub placed_tables: u64,
    /// Set by the supervisor's cutoff: every request is refused.
    pub cut_off: bool,
    /// The driver instance (badge generation) the records belong to; 0 before the
    /// first request.
    pub generation: u32,
}

impl Domain {
    /// A domain handing out IOVAs below `limit`.
    pub fn new(device: u16, limit: u64) -> Self {
        Domain {
            device,
            iovas: IovaAllocator::new(limit),
            buffers: Vec::new(),
            free_frames: Vec::new(),
            client_frames: Vec::new(),
            watch: 0,
            placed_quota: u64::MAX,
            placed_tables: 0,
            cut_off: false,
            generation: 0,
        }
    }

    /// A new driver instance (`generation`) made its first request: forgets the old
    /// instance's buffers and free frames without touching the kernel (init revoked
    /// the old budget, pool and frames with it, so their IO mappings are gone and the
    /// slots are empty) and returns their slots. The old IOVAs stay allocated for
    /// good (quarantine): a device still running an old transfer faults on them
    /// instead of reaching the new instance's buffers.
    pub fn new_instance(&mut self, generation: u32) -> (usize, Vec<u64>) {
        self.generation = generation;
        self.iovas.quarantine_all();
        let buffers = core::mem::take(&mut self.buffers);
        let count = buffers.len();
        let mut slots: Vec<u64> = buffers.into_iter().flat_map(|b| b.frames).collect();
        slots.append(&mut self.free_frames);
        slots.extend(self.client_frames.drain(..).map(|(_, slot)| slot));
        let watch = core::mem::take(&mut self.watch);
        if watch != 0 {
            slots.push(watch);
        }
        (count, slots)
    }

    /// The live buffers.
    pub fn buffers(&self) -> &[Buffer] {
        &self.buffers
    }

    /// Frames waiting for reuse.
    pub fn free_frames(&self) -> &[u64] {
        &self.free_frames
    }

    /// Forgets the free frames (their pool was revoked); returns their slots.
    pub fn take_free_frames(&mut self) -> Vec<u64> {
        core::mem::take(&mut self.free_frames)
    }

    /// Allocates and maps a buffer of `pages` pages; returns its IOVA and first frame.
    /// On failure nothing stays mapped or allocated.
    pub fn alloc(&mut self, ops: &mut impl DmaOps, pages: u64, rights: CapRights) -> Result<(u64, u64), IommuStatus> {
        if self.cut_off {
            return Err(IommuStatus::CutOff);
        }
        let iova = self.iovas.alloc(pages).ok_or(IommuStatus::OutOfIova)?;
        let mut frames = Vec::new();
        for page in 0..pages {
            let Some(frame) = self.free_frames.pop().or_else(|| ops.new_frame(self.device)) else {
                self.undo(ops, iova, frames);
                return Err(IommuStatus::OutOfMemory);
            };
            if ops.map_io(self.device, frame, iova + page * PAGE_SIZE, rights).is_err() {
                self.free_frames.push(frame);
                self.undo(ops, iova, frames);
                return Err(IommuStatus::KernelError);
            }
            frames.push(frame);
        }
        let first = frames[0];
        self.buffers.push(Buffer { iova, frames });
        Ok((iova, first))
    }

    fn undo(&mut self, ops: &mut impl DmaOps, iova: u64, frames: Vec<u64>) {
        for frame in frames {
            let _ = ops.unmap_io(frame);
            self.free_frames.push(frame);
        }
        self.iovas.free(iova);
    }

    /// The frame of page `page` of the buffer at `iova`.
    pub fn frame(&self, iova: u64, page: u64) -> Result<u64, IommuStatus> {
        if self.cut_off {
            return Err(IommuStatus::CutOff);
        }
        let buffer = self.buffers.iter().find(|b| b.iova == iova).ok_or(IommuStatus::NotFound)?;
        buffer.frames.get(page as usize).copied().ok_or(IommuStatus::NotFound)
    }

    /// Unmaps the buffer at `iova`, revokes every copy of its frames and keeps the
    /// frames for reuse; returns its page count.
    pub fn free(&mut self, ops: &mut impl DmaOps, iova: u64) -> Result<u64, IommuStatus> {
        self.release(ops, iova, true)
    }

    /// [`Self::free`], giving the IOVAs back only if `reuse` (else they stay allocated:
    /// quarantined).
    fn release(&mut self, ops: &mut impl DmaOps, iova: u64, reuse: bool) -> Result<u64, IommuStatus> {
        let at = self.buffers.iter().position(|b| b.iova == iova).ok_or(IommuStatus::NotFound)?;
        let buffer = self.buffers.remove(at);
        if reuse {
            self.iovas.free(iova);
        }
        let pages = buffer.frames.len() as u64;
        let mut failed = false;
        for frame in buffer.frames {
            // A frame whose unmap or revoke failed is not reused.
            if ops.unmap_io(frame).is_ok() && ops.revoke(frame).is_ok() {
                self.free_frames.push(frame);
            } else {
                failed = true;
            }
        }
        if failed {
            Err(IommuStatus::KernelError)
        } else {
            Ok(pages)
        }
    }

    /// Unmaps every buffer (a reset or cutoff); returns how many there were. Their
    /// IOVAs stay allocated for good (quarantine, as for a new instance): the device is
    /// not reset with its domain, so a transfer the old driver left running faults on
    /// them instead of reaching the next instance's buffers.
    pub fn free_all(&mut self, ops: &mut impl DmaOps) -> usize {
        let iovas: Vec<u64> = self.buffers.iter().map(|b| b.iova).collect();
        for &iova in &iovas {
            let _ = self.release(ops, iova, false);
        }
        self.iovas.quarantine_all();
        iovas.len()
    }

    /// Unmaps every frame the driver placed (a reset or cutoff), their IOVAs staying
    /// quarantined like the buffers'; returns the server's copies' slots to delete.
    pub fn unmap_all_client(&mut self, ops: &mut impl DmaOps) -> Vec<u64> {
        let frames = core::mem::take(&mut self.client_frames);
        self.iovas.quarantine_all();
        frames
            .into_iter()
            .map(|(_, slot)| {
                let _ = ops.unmap_io(slot);
                slot
            })
            .collect()
    }

    /// Maps the frame the driver sent (the server's copy in `slot`) at `iova`, which
    /// the driver chose, with `rights`. Refused when the domain is cut off, the driver
    /// has [`MAX_CLIENT_FRAMES`] mapped or its [`Self::placed_quota`] of server slots
    /// would not hold the mapping at its worst, or the IOVA is in use, past the limit or
    /// in the MSI window; nothing stays reserved then (but the IO page tables the
    /// kernel walk made stay, and count in [`Self::placed_tables`]).
    pub fn map_client(
        &mut self,
        ops: &mut impl DmaOps,
        iova: u64,
        slot: u64,
        rights: CapRights,
    ) -> Result<(), IommuStatus> {
        if self.cut_off {
            return Err(IommuStatus::CutOff);
        }
        // The copy's slot and as many new tables as the mapping may need must fit the
        // device's share: one driver cannot use up the server's slots or untyped.
        let cost = self.client_frames.len() as u64 + self.placed_tables;
        if self.client_frames.len() >= MAX_CLIENT_FRAMES || cost + 1 + MAX_NEW_TABLES > self.placed_quota {
            return Err(IommuStatus::OutOfMemory);
        }
        if iova.checked_add(PAGE_SIZE).is_none_or(|end| end > self.iovas.limit()) {
            return Err(IommuStatus::OutOfIova);
        }
        if !self.iovas.reserve(iova, 1) {
            return Err(IommuStatus::IovaInUse);
        }
        let tables = ops.tables_made();
        let mapped = ops.map_placed(self.device, slot, iova, rights);
        self.placed_tables += ops.tables_made().saturating_sub(tables);
        if let Err(code) = mapped {
            self.iovas.free(iova);
            // Not a 4 KiB RAM frame (a 2 MiB or device frame, or no frame at all).
            let not_a_frame = code == SyscallError::InvalidCapability.raw();
            return Err(if not_a_frame { IommuStatus::BadRequest } else { IommuStatus::KernelError });
        }
        self.client_frames.push((iova, slot));
        Ok(())
    }

    /// Unmaps the frame the driver placed at `iova` (the kernel completes the
    /// invalidation first) and gives the IOVA back; returns the server's copy's slot
    /// for the caller to delete.
    pub fn unmap_client(&mut self, ops: &mut impl DmaOps, iova: u64) -> Result<u64, IommuStatus> {
        if self.cut_off {
            return Err(IommuStatus::CutOff);
        }
        let at = self.client_frames.iter().position(|&(i, _)| i == iova).ok_or(IommuStatus::NotFound)?;
        let (_, slot) = self.client_frames[at];
        ops.unmap_io(slot).map_err(|_| IommuStatus::KernelError)?;
        self.client_frames.swap_remove(at);
        self.iovas.free(iova);
        Ok(slot)
    }

    /// Frames the driver placed, by IOVA.
    pub fn client_frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.client_frames.iter().map(|&(iova, _)| iova)
    }

    /// Whether `iova` lies in a frame the driver placed.
    pub fn is_client_frame(&self, iova: u64) -> bool {
        self.client_frames.iter().any(|&(start, _)| (start..start + PAGE_SIZE).contains(&iova))
    }

    /// The device that owns `iova`'s buffer, for fault reports: the buffer's start and
    /// page, or `None` (a guard page, a freed buffer, or never allocated).
    pub fn locate(&self, iova: u64) -> Option<(u64, u64)> {
        self.buffers.iter().find_map(|b| {
            let end = b.iova + b.frames.len() as u64 * PAGE_SIZE;
            (b.iova..end).contains(&iova).then(|| (b.iova, (iova - b.iova) / PAGE_SIZE))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::{BTreeMap, BTreeSet};

    /// A fake kernel: a pool of `pool` frames, the IO mappings, derived copies.
    #[derive(Default)]
    struct Fake {
        pool: u64,
        next: u64,
        mapped: BTreeMap<u64, u64>,
        copies: BTreeMap<u64, u32>,
        fail_map_at: Option<u64>,
        /// 2 MiB and 1 GiB IOVA regions with an IO page table (3 levels).
        tables: BTreeSet<(u32, u64)>,
    }

    impl DmaOps for Fake {
        fn new_frame(&mut self, _: u16) -> Option<u64> {
            (self.next < self.pool).then(|| {
                self.next += 1;
                100 + self.next
            })
        }
        fn map_io(&mut self, _: u16, frame: u64, iova: u64, _: CapRights) -> Result<(), u64> {
            self.tables.insert((21, iova >> 21));
            self.tables.insert((30, iova >> 30));
            if self.fail_map_at == Some(iova) || self.mapped.contains_key(&frame) {
                return Err(1);
            }
            self.mapped.insert(frame, iova);
            Ok(())
        }
        fn unmap_io(&mut self, frame: u64) -> Result<(), u64> {
            self.mapped.remove(&frame);
            Ok(())
        }
        fn revoke(&mut self, frame: u64) -> Result<(), u64> {
            assert!(!self.mapped.contains_key(&frame), "revoked while mapped");
            self.copies.remove(&frame);
            Ok(())
        }
        fn map_placed(&mut self, device: u16, frame: u64, iova: u64, rights: CapRights) -> Result<(), u64> {
            // Slots from 9000 on hold caps that are not 4 KiB RAM frames.
            if frame >= 9000 {
                return Err(SyscallError::InvalidCapability.raw());
            }
            self.map_io(device, frame, iova, rights)
        }
        fn tables_made(&self) -> u64 {
            self.tables.len() as u64
        }
    }

    const RW: CapRights = CapRights::READ.union(CapRights::WRITE);

    #[test]
    fn alloc_maps_each_page_and_free_unmaps_and_revokes() {
        let mut k = Fake { pool: 8, ..Default::default() };
        let mut d = Domain::new(0, 1 << 28);
        let (iova, first) = d.alloc(&mut k, 3, RW).unwrap();
        assert_eq!(k.mapped.len(), 3);
        assert_eq!(k.mapped[&first], iova);
        assert_eq!(d.frame(iova, 2).map(|f| k.mapped[&f]), Ok(iova + 2 * PAGE_SIZE));
        assert_eq!(d.frame(iova, 3), Err(IommuStatus::NotFound));
        assert_eq!(d.locate(iova + 2 * PAGE_SIZE + 8), Some((iova, 2)));
        assert_eq!(d.locate(iova + 3 * PAGE_SIZE), None, "the guard page belongs to nobody");
        k.copies.insert(first, 1);
        assert_eq!(d.free(&mut k, iova), Ok(3));
        assert!(k.mapped.is_empty() && k.copies.is_empty());
        assert_eq!(d.free(&mut k, iova), Err(IommuStatus::NotFound));
        assert_eq!(d.locate(iova), None);
        // The freed frames come back before the pool is touched again.
        let (_, again) = d.alloc(&mut k, 3, RW).unwrap();
        assert!(again > 100 && k.next == 3 && d.free_frames().is_empty());
    }

    #[test]
    fn an_exhausted_pool_rolls_back() {
        let mut k = Fake { pool: 2, ..Default::default() };
        let mut d = Domain::new(0, 1 << 28);
        assert_eq!(d.alloc(&mut k, 3, RW), Err(IommuStatus::OutOfMemory));
        assert!(k.mapped.is_empty() && d.buffers().is_empty());
        assert_eq!(d.free_frames().len(), 2);
        let (iova, _) = d.alloc(&mut k, 2, RW).unwrap();
        assert_eq!(iova, abi::iommu::IOVA_BASE, "the failed buffer's IOVA was returned");
    }

    #[test]
    fn a_refused_map_rolls_back() {
        let base = abi::iommu::IOVA_BASE;
        let mut k = Fake { pool: 8, fail_map_at: Some(base + PAGE_SIZE), ..Default::default() };
        let mut d = Domain::new(0, 1 << 28);
        assert_eq!(d.alloc(&mut k, 2, RW), Err(IommuStatus::KernelError));
        assert!(k.mapped.is_empty() && d.buffers().is_empty());
    }

    #[test]
    fn cutoff_and_reset() {
        let mut k = Fake { pool: 8, ..Default::default() };
        let mut d = Domain::new(0, 1 << 28);
        let (a, _) = d.alloc(&mut k, 1, RW).unwrap();
        d.alloc(&mut k, 2, RW).unwrap();
        assert_eq!(d.free_all(&mut k), 2);
        assert!(k.mapped.is_empty());
        assert_eq!(d.take_free_frames().len(), 3);
        assert!(d.free_frames().is_empty());
        d.cut_off = true;
        assert_eq!(d.alloc(&mut k, 1, RW), Err(IommuStatus::CutOff));
        assert_eq!(d.frame(a, 0), Err(IommuStatus::CutOff));
    }

    #[test]
    fn a_new_instance_forgets_the_old_records_and_quarantines_their_iovas() {
        let mut k = Fake { pool: 8, ..Default::default() };
        let mut d = Domain::new(0, 1 << 28);
        let (a, _) = d.alloc(&mut k, 2, RW).unwrap();
        let (b, _) = d.alloc(&mut k, 1, RW).unwrap();
        d.free(&mut k, b).unwrap();
        let calls = (k.mapped.len(), k.next);
        let (buffers, slots) = d.new_instance(2);
        assert_eq!((buffers, slots.len(), d.generation), (1, 3, 2));
        assert_eq!((k.mapped.len(), k.next), calls, "no kernel operation on dead slots");
        // The old IOVA names nothing now, and is never handed out again.
        assert_eq!(d.free(&mut k, a), Err(IommuStatus::NotFound));
        assert_eq!(d.frame(a, 0), Err(IommuStatus::NotFound));
        let mut k2 = Fake { pool: 8, ..Default::default() };
        let (c, _) = d.alloc(&mut k2, 2, RW).unwrap();
        assert!(c >= a + 3 * PAGE_SIZE, "new IOVA {c:#x} reuses the old instance's {a:#x}");
    }

    #[test]
    fn a_reset_quarantines_the_iovas_it_unmaps() {
        let mut k = Fake { pool: 8, ..Default::default() };
        let mut d = Domain::new(0, 1 << 28);
        let (a, _) = d.alloc(&mut k, 2, RW).unwrap();
        assert_eq!(d.free_all(&mut k), 1);
        assert!(k.mapped.is_empty(), "everything unmapped");
        let (b, _) = d.alloc(&mut k, 2, RW).unwrap();
        assert!(b >= a + 3 * PAGE_SIZE, "IOVA {b:#x} after a reset reuses {a:#x}");
    }

    #[test]
    fn frames_the_driver_places_map_where_it_says_and_nowhere_in_use() {
        let mut k = Fake { pool: 8, ..Default::default() };
        let mut d = Domain::new(0, 1 << 28);
        assert_eq!(d.map_client(&mut k, 0, 500, RW), Ok(()), "IOVA 0 is the driver's to use");
        assert_eq!(d.map_client(&mut k, PAGE_SIZE, 501, RW), Ok(()));
        assert_eq!(k.mapped.get(&501), Some(&PAGE_SIZE));
        assert_eq!(d.map_client(&mut k, PAGE_SIZE, 502, RW), Err(IommuStatus::IovaInUse));
        let (buf, _) = d.alloc(&mut k, 1, RW).unwrap();
        assert_eq!(d.map_client(&mut k, buf, 502, RW), Err(IommuStatus::IovaInUse), "a buffer");
        assert_eq!(d.map_client(&mut k, buf + PAGE_SIZE, 502, RW), Err(IommuStatus::IovaInUse), "its guard");
        assert_eq!(d.map_client(&mut k, 1 << 28, 502, RW), Err(IommuStatus::OutOfIova), "past the mask");
        assert_eq!(d.map_client(&mut k, !0xfff, 502, RW), Err(IommuStatus::OutOfIova));
        assert!(!k.mapped.contains_key(&502), "nothing mapped for the refused");
        // A cap that is no 4 KiB RAM frame (checked by the map, never invoked).
        assert_eq!(d.map_client(&mut k, 2 * PAGE_SIZE, 9001, RW), Err(IommuStatus::BadRequest));
        // A refused kernel map leaves the IOVA free.
        k.fail_map_at = Some(2 * PAGE_SIZE);
        assert_eq!(d.map_client(&mut k, 2 * PAGE_SIZE, 503, RW), Err(IommuStatus::KernelError));
        k.fail_map_at = None;
        assert_eq!(d.map_client(&mut k, 2 * PAGE_SIZE, 503, RW), Ok(()));
        assert!(d.is_client_frame(PAGE_SIZE + 8) && !d.is_client_frame(3 * PAGE_SIZE));
        assert_eq!(d.locate(PAGE_SIZE), None, "not a buffer");
        // Unmap gives the IOVA back and the slot to delete.
        assert_eq!(d.unmap_client(&mut k, PAGE_SIZE), Ok(501));
        assert!(!k.mapped.contains_key(&501));
        assert_eq!(d.unmap_client(&mut k, PAGE_SIZE), Err(IommuStatus::NotFound));
        assert_eq!(d.map_client(&mut k, PAGE_SIZE, 504, RW), Ok(()));
        // A reset unmaps all of them and quarantines their IOVAs.
        let mut slots = d.unmap_all_client(&mut k);
        slots.sort_unstable();
        assert_eq!(slots, [500, 503, 504]);
        assert!(![500, 503, 504].iter().any(|s| k.mapped.contains_key(s)));
        assert_eq!(d.map_client(&mut k, 0, 505, RW), Err(IommuStatus::IovaInUse), "quarantined");
        d.cut_off = true;
        assert_eq!(d.map_client(&mut k, 1 << 20, 505, RW), Err(IommuStatus::CutOff));
    }

    #[test]
    fn placed_frames_are_bounded_and_a_new_instance_drops_them() {
        let mut k = Fake { pool: 0, ..Default::default() };
        let mut d = Domain::new(0, 1 << 28);
        for i in 0..MAX_CLIENT_FRAMES as u64 {
            assert_eq!(d.map_client(&mut k, i * PAGE_SIZE, 1000 + i, RW), Ok(()));
        }
        let next = MAX_CLIENT_FRAMES as u64 * PAGE_SIZE;
        assert_eq!(d.map_client(&mut k, next, 9999, RW), Err(IommuStatus::OutOfMemory));
        d.watch = 77;
        let (_, slots) = d.new_instance(2);
        assert_eq!(slots.len(), MAX_CLIENT_FRAMES + 1, "every placed frame's slot and the watch");
        assert_eq!((d.client_frames().count(), d.watch), (0, 0));
        assert_eq!(d.map_client(&mut k, 0, 1, RW), Err(IommuStatus::IovaInUse), "the old IOVAs are quarantined");
    }

    #[test]
    fn placed_frames_and_their_tables_stay_within_the_devices_share() {
        // From attack round 15: one frame placed 2 MiB apart, over and over, took a
        // server slot and an IO page table each until the server had none left.
        let mut k = Fake::default();
        let mut d = Domain::new(0, 1 << 28);
        d.placed_quota = 40;
        let mut placed = 0;
        while d.map_client(&mut k, (placed + 1) << 21, 500 + placed, RW).is_ok() {
            placed += 1;
        }
        assert_eq!(d.map_client(&mut k, 0x0f00_0000, 999, RW), Err(IommuStatus::OutOfMemory));
        let cost = d.client_frames().count() as u64 + d.placed_tables;
        assert!(cost + 1 + MAX_NEW_TABLES > 40 && cost <= 40, "{placed} placed, cost {cost}");
        // Unmapping gives the copies' slots back, not the tables: cycling map and unmap
        // over fresh IOVAs stops at the share too.
        for i in 0..placed {
            assert!(d.unmap_client(&mut k, (i + 1) << 21).is_ok());
        }
        let mut cycles = 0;
        while d.map_client(&mut k, 0x0800_0000 + (cycles << 21), 600, RW).is_ok() {
            assert!(d.unmap_client(&mut k, 0x0800_0000 + (cycles << 21)).is_ok());
            cycles += 1;
        }
        assert!(cycles > 0 && d.placed_tables <= 40, "tables {} past the share", d.placed_tables);
        // The driver used up its own share, nobody else's.
        assert_eq!(d.map_client(&mut k, 1 << 21, 700, RW), Err(IommuStatus::OutOfMemory));
    }
}
