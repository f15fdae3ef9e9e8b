//! NVMe driver core: typed registers, queues, PRP lists, Identify parsing.
//!
//! Everything the device reports is untrusted input: register fields (queue sizes,
//! doorbell stride, page sizes, timeouts), Identify data (LBA format, namespace size)
//! and completion entries (command id, submission-queue head, status) are bounded
//! before use, and a bad value is a [`NvmeError`] that names it. The pure parts
//! (`queue`, `prp`, `identify`, register decoding) are host-tested; `controller`
//! drives real MMIO and DMA memory the caller provides (IOVAs from its DMA pool).
#![no_std]

pub mod controller;
pub mod identify;
pub mod prp;
pub mod queue;
pub mod registers;

pub use controller::{Controller, DmaRegion};
pub use identify::{ControllerId, NamespaceId};

/// PCI vendor:device of QEMU's NVMe controller.
pub const QEMU_NVME: (u16, u16) = (0x1b36, 0x0010);
/// The memory page size the driver uses (CC.MPS = 0).
pub const PAGE: u64 = 4096;

/// What went wrong, naming the untrusted value where there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NvmeError {
    /// CAP.MPSMIN above 4 KiB: the controller cannot use 4 KiB pages.
    PageSizeUnsupported(u8),
    /// CAP.CSS does not offer the NVM command set.
    NoNvmCommandSet,
    /// CAP.MQES + 1 (queue entries the controller allows) below 2.
    QueueTooSmall(u32),
    /// The doorbell of queue pair `qid` lies outside the mapped BAR.
    DoorbellOutsideBar { qid: u16, offset: u64 },
    /// CSTS.CFS: the controller reports a fatal status.
    ControllerFatal,
    /// CSTS.RDY did not reach `ready` in time.
    ReadyTimeout { ready: bool },
    /// No completion arrived in time for command `cid`.
    CommandTimeout { cid: u16 },
    /// A completion named a command id that is not outstanding.
    BadCommandId(u16),
    /// A completion reported a submission-queue head beyond the queue.
    BadQueueHead(u16),
    /// A completion for a different submission queue than the one it came on.
    BadQueueId(u16),
    /// The command completed with status (SCT << 8 | SC).
    Status { cid: u16, status: u16 },
    /// Identify data out of range (field name).
    BadIdentify(&'static str),
    /// A transfer the driver refuses: zero, beyond the buffer, the namespace, or MDTS.
    BadTransfer,
    /// A DMA region too small or not page aligned.
    BadRegion,
}

impl core::fmt::Display for NvmeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            NvmeError::PageSizeUnsupported(m) => write!(f, "CAP.MPSMIN {m}: 4 KiB pages unsupported"),
            NvmeError::NoNvmCommandSet => write!(f, "CAP.CSS lacks the NVM command set"),
            NvmeError::QueueTooSmall(n) => write!(f, "CAP.MQES allows {n} entries per queue (need 2)"),
            NvmeError::DoorbellOutsideBar { qid, offset } => {
                write!(f, "doorbell of queue {qid} at BAR offset {offset:#x} is outside the mapped BAR")
            }
            NvmeError::ControllerFatal => write!(f, "controller fatal status (CSTS.CFS)"),
            NvmeError::ReadyTimeout { ready } => write!(f, "CSTS.RDY did not become {}", u8::from(ready)),
            NvmeError::CommandTimeout { cid } => write!(f, "no completion for command {cid}"),
            NvmeError::BadCommandId(cid) => write!(f, "completion names command {cid}, which is not outstanding"),
            NvmeError::BadQueueHead(h) => write!(f, "completion reports SQ head {h}, beyond the queue"),
            NvmeError::BadQueueId(q) => write!(f, "completion for submission queue {q}, not the one used"),
            NvmeError::Status { cid, status } => write!(f, "command {cid} failed: status {status:#x}"),
            NvmeError::BadIdentify(what) => write!(f, "Identify data: {what} out of range"),
            NvmeError::BadTransfer => write!(f, "transfer refused (length, buffer, namespace or MDTS)"),
            NvmeError::BadRegion => write!(f, "DMA region too small or not page aligned"),
        }
    }
}
