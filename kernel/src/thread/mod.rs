//! Threads: scheduling, IPC, interrupt delivery, syscall entry, user memory.
//!
//! `sched` (the thread queues) is pure logic, tested on the host; the rest runs on
//! bare metal only.

pub mod sched;

#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
pub mod fastpath;
#[cfg(target_os = "none")]
pub mod finalise;
#[cfg(target_os = "none")]
pub mod ipc;
#[cfg(target_os = "none")]
pub mod irq;
#[cfg(target_os = "none")]
pub mod latency;
#[cfg(target_os = "none")]
pub mod syscall;
#[cfg(target_os = "none")]
pub mod tcb_state;
#[cfg(target_os = "none")]
pub mod user_mem;
