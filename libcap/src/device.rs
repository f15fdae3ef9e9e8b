//! Device memory for user-level drivers.
//!
//! Device memory for user-level drivers: the bootinfo's device untyped regions, split by
//! halves on demand down to the 4 KiB frame over a register page (a BAR).

use abi::bootinfo::BootInfo;
use abi::object::ObjectType;
use abi::slots;

use crate::alloc::SlotAllocator;
use crate::cap::{CNode, Frame, Untyped};

/// Most untyped pieces tracked (bootinfo regions plus the halves split off them).
const MAX_PIECES: usize = 128;

/// One device untyped piece: cap, base, log2 size, and whether it was split or used.
#[derive(Clone, Copy)]
struct Piece {
    cap: Untyped,
    base: u64,
    bits: u64,
    used: bool,
}

/// The device untyped memory a driver holds.
pub struct DeviceMemory {
    pieces: [Piece; MAX_PIECES],
    count: usize,
}

impl DeviceMemory {
    /// Every device untyped region of the bootinfo.
    pub fn new(bi: &BootInfo) -> Self {
        let empty = Piece { cap: Untyped(0), base: 0, bits: 0, used: true };
        let mut memory = DeviceMemory { pieces: [empty; MAX_PIECES], count: 0 };
        for (i, u) in bi.untyped().iter().enumerate().filter(|(_, u)| u.is_device == 1) {
            memory.push(Piece {
                cap: Untyped(bi.untyped_caps.start + i as u64),
                base: u.paddr,
                bits: u64::from(u.size_bits),
                used: false,
            });
        }
        memory
    }

    fn push(&mut self, piece: Piece) -> bool {
        if self.count == MAX_PIECES {
            return false;
        }
        self.pieces[self.count] = piece;
        self.count += 1;
        true
    }

    /// Frame caps for up to `pages` device pages from `paddr` (page aligned) on, in
    /// consecutive slots: the largest unused aligned piece starting at `paddr` that fits
    /// is retyped whole (so a big BAR costs few splits). Returns (first slot, count);
    /// `None` if no unused device untyped covers `paddr` or a retype fails.
    pub fn frames_from(&mut self, slots: &SlotAllocator, paddr: u64, pages: u64) -> Option<(u64, u64)> {
        let root = CNode(slots::INIT_CNODE);
        if pages == 0 {
            return None;
        }
        loop {
            let i = self.pieces[..self.count]
                .iter()
                .position(|p| !p.used && p.base <= paddr && paddr < p.base + (1 << p.bits))?;
            let Piece { cap, base, bits, .. } = self.pieces[i];
            let count = 1u64 << (bits - 12);
            if base == paddr && count <= pages {
                let first = slots.alloc_range(count).ok()?;
                cap.retype(ObjectType::Frame4K, 0, root, 0, 0, first, count).ok()?;
                self.pieces[i].used = true;
                return Some((first, count));
            }
            if bits == 12 || self.count + 2 > MAX_PIECES {
                return None;
            }
            let halves = slots.alloc_range(2).ok()?;
            cap.retype(ObjectType::Untyped, bits - 1, root, 0, 0, halves, 2).ok()?;
            self.pieces[i].used = true;
            self.push(Piece { cap: Untyped(halves), base, bits: bits - 1, used: false });
            self.push(Piece { cap: Untyped(halves + 1), base: base + (1 << (bits - 1)), bits: bits - 1, used: false });
        }
    }

    /// A frame cap for the device page at `paddr` (page aligned), splitting untyped by
    /// halves; `None` if no unused device untyped covers it or a retype fails.
    pub fn frame_at(&mut self, slots: &SlotAllocator, paddr: u64) -> Option<Frame> {
        let root = CNode(slots::INIT_CNODE);
        loop {
            let i = self.pieces[..self.count]
                .iter()
                .position(|p| !p.used && p.base <= paddr && paddr < p.base + (1 << p.bits))?;
            let Piece { cap, base, bits, .. } = self.pieces[i];
            if bits == 12 {
                let frame = Frame(slots.alloc().ok()?);
                cap.retype(ObjectType::Frame4K, 0, root, 0, 0, frame.0, 1).ok()?;
                self.pieces[i].used = true;
                return Some(frame);
            }
            if self.count + 2 > MAX_PIECES {
                return None;
            }
            let halves = slots.alloc_range(2).ok()?;
            cap.retype(ObjectType::Untyped, bits - 1, root, 0, 0, halves, 2).ok()?;
            self.pieces[i].used = true;
            self.push(Piece { cap: Untyped(halves), base, bits: bits - 1, used: false });
            self.push(Piece { cap: Untyped(halves + 1), base: base + (1 << (bits - 1)), bits: bits - 1, used: false });
        }
    }
}
