//! VCPU invocations: Run, ReadRegs, WriteRegs, InjectIrq.
//!

use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::{MSG_OFFSET, REGISTER_MRS};
use abi::vcpu::{VcpuReg, EXIT_WORDS, VCPU_REG_COUNT};

use crate::arch::kmem;
use crate::arch::svm;
use crate::object::cap::Cap;
use crate::object::vmcb::exit;

use super::args::{fail, Extra, Failure, Message};

/// A checked VCPU invocation.
pub enum VcpuOp {
    /// Run in the GuestSpace rooted at `n_cr3`, first setting RIP and RAX if given;
    /// the exit record goes to the IPC buffer at `ipc_buffer`.
    Run { n_cr3: u64, rip: Option<u64>, rax: Option<u64>, ipc_buffer: u64 },
    /// Registers `first..first + count` into the IPC buffer at `ipc_buffer`.
    ReadRegs { first: usize, count: usize, ipc_buffer: u64 },
    /// Registers `first..first + count` from message registers 2...
    WriteRegs { first: usize, count: usize },
    /// Make `vector` pending.
    InjectIrq { vector: u8 },
}

/// The register range `first..first + count` of a Read/WriteRegs, or RangeError.
fn reg_range(first: u64, count: u64) -> Result<(usize, usize), Failure> {
    let limit = VCPU_REG_COUNT as u64;
    if first >= limit {
        return Err(fail(SyscallError::RangeError, 0));
    }
    if count > limit - first {
        return Err(fail(SyscallError::RangeError, 1));
    }
    Ok((first as usize, count as usize))
}

/// Decodes `label` on a VCPU cap: reads and checks everything, changes nothing.
#[inline(never)]
pub fn decode(msg: &Message<'_>, label: Invocation, extra: Extra<'_>) -> Result<VcpuOp, Failure> {
    match label {
        Invocation::VcpuRun => {
            let (_, space) = extra(0)?;
            let Cap::GuestSpace { paddr: n_cr3 } = space else {
                return Err(fail(SyscallError::InvalidCapability, 100));
            };
            if msg.ipc_buffer == 0 {
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            let length = usize::from(msg.info.length);
            let rip = if length >= 1 { Some(msg.mr(0)?) } else { None };
            let rax = if length >= 2 { Some(msg.mr(1)?) } else { None };
            Ok(VcpuOp::Run { n_cr3, rip, rax, ipc_buffer: msg.ipc_buffer })
        }
        Invocation::VcpuReadRegs => {
            let (first, count) = reg_range(msg.mr(0)?, msg.mr(1)?)?;
            if msg.ipc_buffer == 0 {
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            Ok(VcpuOp::ReadRegs { first, count, ipc_buffer: msg.ipc_buffer })
        }
        Invocation::VcpuWriteRegs => {
            let (first, count) = reg_range(msg.mr(0)?, msg.mr(1)?)?;
            if count > 0 {
                // Every value must have been sent.
                msg.mr(1 + count)?;
            }
            // TR must stay a present TSS (abi::vcpu::tr_word_valid).
            if let Some(i) = (0..count).find(|&i| VcpuReg::ALL[first + i] == VcpuReg::Tr) {
                if !abi::vcpu::tr_word_valid(msg.mr(2 + i)?) {
                    return Err(fail(SyscallError::InvalidArgument, 2 + i as u64));
                }
            }
            Ok(VcpuOp::WriteRegs { first, count })
        }
        Invocation::VcpuInjectIrq => {
            let vector = msg.mr(0)?;
            if !(32..=255).contains(&vector) {
                return Err(fail(SyscallError::RangeError, 0));
            }
            Ok(VcpuOp::InjectIrq { vector: vector as u8 })
        }
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}

/// Performs a checked VCPU invocation on the VCPU at `paddr`.
pub fn invoke(msg: &Message<'_>, paddr: u64, op: VcpuOp) -> [u64; REGISTER_MRS] {
    let v = svm::vcpu(paddr);
    match op {
        VcpuOp::Run { n_cr3, rip, rax, ipc_buffer } => {
            if let Some(rip) = rip {
                v.resume_at(rip);
            }
            if let Some(rax) = rax {
                v.write(VcpuReg::Rax, rax);
            }
            // A VINTR exit only says the guest can now take the pending interrupt:
            // inject it and go on without bothering the VMM.
            // (A VINTR exit is followed by an injection, so this repeats at most once
            // on correct hardware; the bound keeps a wrong one from looping here.)
            // A CR8 write exit only happens while the window is requested (see
            // `prepare_events`): run the write again without the request.
            let mut window = true;
            for _ in 0..4 {
                let v = svm::vcpu(paddr);
                v.prepare_events();
                if !window {
                    v.drop_window();
                }
                crate::thread::latency::guest_ran(svm::run(paddr, n_cr3));
                svm::vcpu(paddr).after_run();
                match svm::vcpu(paddr).vmcb.control.exit_code {
                    exit::VINTR => {}
                    exit::WRITE_CR8 => window = false,
                    _ => break,
                }
            }
            let words = svm::vcpu(paddr).exit().encode();
            for (i, w) in words.iter().enumerate().take(EXIT_WORDS) {
                kmem::set_ipc_word(ipc_buffer, MSG_OFFSET / 8 + i, *w);
            }
            [words[0], words[1], words[2], words[3]]
        }
        VcpuOp::ReadRegs { first, count, ipc_buffer } => {
            for i in 0..count {
                let value = v.read(VcpuReg::ALL[first + i]);
                kmem::set_ipc_word(ipc_buffer, MSG_OFFSET / 8 + i, value);
            }
            [0; REGISTER_MRS]
        }
        VcpuOp::WriteRegs { first, count } => {
            for i in 0..count {
                // decode checked that every value was sent.
                let value = msg.mr(2 + i).unwrap_or(0);
                v.write(VcpuReg::ALL[first + i], value);
            }
            [0; REGISTER_MRS]
        }
        VcpuOp::InjectIrq { vector } => {
            v.inject_irq(vector);
            [0; REGISTER_MRS]
        }
    }
}
