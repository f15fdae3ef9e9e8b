//! The IPC buffer: the per-thread page of extra message registers and caps.
//!
//! The IPC buffer: one page per thread holding the message registers that do not fit in
//! CPU registers and the capability addresses of a message's extra caps.

use crate::msginfo::{MAX_EXTRA_CAPS, MAX_MESSAGE_LENGTH};

/// Message registers passed in CPU registers (`rdx`, `r10`, `r8`, `r9`).
pub const REGISTER_MRS: usize = 4;

/// Layout of the IPC buffer page (seL4's).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IpcBuffer {
    /// Message info of the last message.
    pub tag: u64,
    /// Message registers; the first [`REGISTER_MRS`] travel in CPU registers instead.
    pub msg: [u64; MAX_MESSAGE_LENGTH as usize],
    /// The buffer's own user address: libcap's start code writes it so that the
    /// thread pointer (FS base = this buffer) finds the buffer with one load.
    pub user_data: u64,
    /// Capability addresses of the extra caps to send (or badges received).
    pub caps_or_badges: [u64; MAX_EXTRA_CAPS as usize],
    /// CNode receiving a transferred cap.
    pub receive_cnode: u64,
    /// Slot index receiving a transferred cap.
    pub receive_index: u64,
    /// Depth of `receive_index`.
    pub receive_depth: u64,
}

/// Bytes of an IPC buffer; it is aligned to its size (a page holds four).
pub const IPC_BUFFER_BYTES: usize = 1024;
/// Words of an IPC buffer.
pub const IPC_BUFFER_WORDS: usize = IPC_BUFFER_BYTES / 8;

static_assertions::const_assert_eq!(core::mem::size_of::<IpcBuffer>(), IPC_BUFFER_BYTES);
/// Byte offset of [`IpcBuffer::msg`].
pub const MSG_OFFSET: usize = core::mem::offset_of!(IpcBuffer, msg);
/// Byte offset of [`IpcBuffer::user_data`] (libcap: the buffer's own address).
pub const SELF_OFFSET: usize = core::mem::offset_of!(IpcBuffer, user_data);
/// Byte offset of [`IpcBuffer::caps_or_badges`].
pub const CAPS_OFFSET: usize = core::mem::offset_of!(IpcBuffer, caps_or_badges);
