//! What every invocation handler shares: the message, failures and the outcome.
//!
//! The handlers import this file, never `invoke/mod.rs` (the dispatch), so the
//! dispatch imports the handlers and nothing imports it back.

use crate::arch::kmem::{self, DirectMemory};
use crate::arch::trap::TrapFrame;
use crate::object::cap::Cap;
use crate::object::cnode::{self, LookupError};
use crate::object::cte::SlotAddr;
use abi::error::SyscallError;
use abi::ipc_buffer::{CAPS_OFFSET, MSG_OFFSET, REGISTER_MRS};
use abi::msginfo::MessageInfo;

/// A failed invocation: the error and a detail word (argument index or lookup bits left).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The error.
    pub error: SyscallError,
    /// Which argument, or how many address bits were left.
    pub detail: u64,
}

/// What a successful invocation leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Finished: the result registers (rdx, r10, r8, r9).
    Done([u64; REGISTER_MRS]),
    /// Progress made, not finished (a preemption point): the syscall layer rewinds the
    /// user's RIP so the same call runs again after the kernel has returned to user mode.
    Restart,
}

/// Result of a handler that always finishes: the result registers or a failure.
pub type Reply = Result<[u64; REGISTER_MRS], Failure>;

/// Looks up extra cap `k` of the invocation being decoded.
pub type Extra<'a> = &'a dyn Fn(usize) -> Result<(SlotAddr, Cap), Failure>;

/// Most frames one MapBatch/UnmapBatch names.
pub const MAX_BATCH: usize = 64;

/// A failure with `error` naming argument (or detail) `detail`.
pub fn fail(error: SyscallError, detail: u64) -> Failure {
    Failure { error, detail }
}

/// A failed lookup of argument `arg`.
pub fn lookup_fail(e: LookupError, arg: u64) -> Failure {
    fail(e.into(), arg)
}

/// The message of one invocation.
#[allow(missing_docs)]
pub struct Message<'a> {
    pub info: MessageInfo,
    pub frame: &'a TrapFrame,
    pub ipc_buffer: u64,
}

impl Message<'_> {
    /// Message register `i`, or TruncatedMessage naming it if the sender sent fewer.
    pub fn mr(&self, i: usize) -> Result<u64, Failure> {
        if i >= usize::from(self.info.length) {
            return Err(fail(SyscallError::TruncatedMessage, i as u64));
        }
        Ok(match i {
            0 => self.frame.rdx,
            1 => self.frame.r10,
            2 => self.frame.r8,
            3 => self.frame.r9,
            _ if self.ipc_buffer == 0 => return Err(fail(SyscallError::TruncatedMessage, i as u64)),
            _ => kmem::ipc_word(self.ipc_buffer, MSG_OFFSET / 8 + i),
        })
    }

    /// Capability address of extra cap `k`.
    pub fn extra_cptr(&self, k: usize) -> Result<u64, Failure> {
        if k >= usize::from(self.info.extra_caps) || self.ipc_buffer == 0 {
            return Err(fail(SyscallError::InvalidCapability, 100 + k as u64));
        }
        Ok(kmem::ipc_word(self.ipc_buffer, CAPS_OFFSET / 8 + k))
    }
}

/// Resolves the destination slot of a cap-creating invocation: MRs `index_mr`,
/// `index_mr + 1` are index and depth in the CNode given as extra cap 0.
pub fn dest_slot(
    msg: &Message<'_>,
    mem: &DirectMemory,
    extra: Extra<'_>,
    index_mr: usize,
) -> Result<SlotAddr, Failure> {
    let (_, root) = extra(0)?;
    let depth =
        u32::try_from(msg.mr(index_mr + 1)?).map_err(|_| fail(SyscallError::RangeError, index_mr as u64 + 1))?;
    let slot = cnode::lookup_slot(mem, &root, msg.mr(index_mr)?, depth).map_err(|e| fail(e.into(), index_mr as u64))?;
    cnode::decode_empty(mem, slot).map_err(|e| fail(e, index_mr as u64))?;
    Ok(slot)
}
