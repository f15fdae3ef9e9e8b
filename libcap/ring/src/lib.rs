//! Shared-memory SPSC rings between components: the sDDF-style data plane.
//!
//! A driver and its client share a *data region* (buffers) and a few *rings* (queues of
//! fixed-size entries naming byte ranges of the data region). Each ring has exactly one
//! producer and one consumer, which may be different components in different address
//! spaces; a notification (a channel of the system description) tells the other side that
//! something changed. Clients never see IOVAs: an entry names an `offset` into the data
//! region, and the driver translates it to the IOVA of the same byte itself.
//!
//! Either side may be hostile. Nothing the peer writes is trusted: indices are checked
//! against the capacity ([`RingError::Corrupt`]), and entries are copied out of shared
//! memory once, then checked against the data region ([`BufDesc::range`]), never followed
//! blindly. A corrupt peer can make its own queue useless, never make the other side read
//! or write outside the ring or the region.
//!
//! # Layout (one ring, `bytes` long, 64-byte aligned, starting zeroed)
//!
//! | offset | field | written by |
//! |---|---|---|
//! | 0 | `tail: u32`, free-running count of entries produced | producer |
//! | 4 | `producer_waiting: u32`, 1 while the producer sleeps on a full ring | producer |
//! | 64 | `head: u32`, free-running count of entries consumed | consumer |
//! | 68 | `consumer_waiting: u32`, 1 while the consumer sleeps on an empty ring | consumer |
//! | 128 | `capacity` entries of `T` (`capacity` the largest power of two that fits) | producer |
//!
//! The two halves of the header sit on separate cache lines so neither side's stores
//! bounce the other's line. Entry `i` lives in slot `i % capacity`.
//!
//! # Memory ordering
//!
//! The producer writes an entry's slot, then publishes it with a `Release` store of
//! `tail`; the consumer's `Acquire` load of `tail` therefore sees the slot's contents
//! (release/acquire pairing on `tail`). Symmetrically the consumer copies the slot out and
//! then frees it with a `Release` store of `head`; the producer's `Acquire` load of `head`
//! orders its later overwrite of the slot after the consumer's read. No slot is ever
//! written by the consumer, and neither index is written by more than one side.
//!
//! Sleeping without a lost wake-up (the sDDF "signal requested" protocol): a consumer
//! about to wait stores `consumer_waiting = 1`, issues a `SeqCst` fence and looks at
//! `tail` again; a producer that published issues a `SeqCst` fence and then reads
//! `consumer_waiting`. With both fences, either the consumer sees the new `tail` (and
//! does not sleep) or the producer sees the flag (and signals); both may happen, which
//! costs one spurious wake-up, never a lost one. The same holds for a producer waiting
//! for space. On x86-64 the `Acquire`/`Release` accesses are plain moves and each fence is
//! one `mfence`, paid only by a side about to sleep or one that just published.
#![no_std]

#[cfg(test)]
extern crate std;

mod desc;
pub mod layout;
pub mod mark;
mod region;
mod ring;
pub mod status;

pub use desc::{BlockOp, BlockRequest, BufDesc, RegionRange};
pub use region::DataRegion;
pub use ring::{Consumer, Producer, RingEntry, RingError, RingMemory, HEADER_BYTES};
