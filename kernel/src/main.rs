//! The kernel binary: boot assembly and the panic handler.
//!
//! The kernel binary: boot assembly and the panic handler; everything else is the
//! `kernel` library.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod bare {
    use kernel::arch::{cpu, serial};

    core::arch::global_asm!(include_str!("arch/x86_64/boot.S"));
    use core::mem::{offset_of, size_of};
    use kernel::arch::trap::{TrapFrame, SYSCALL_VECTOR};

    core::arch::global_asm!(
        include_str!("arch/x86_64/entry.S"),
        SYSCALL_VECTOR = const SYSCALL_VECTOR,
        FRAME_SIZE = const size_of::<TrapFrame>(),
        FRAME_CS = const offset_of!(TrapFrame, cs),
        FRAME_VECTOR = const offset_of!(TrapFrame, vector),
        FRAME_RIP = const offset_of!(TrapFrame, rip),
        FRAME_RFLAGS = const offset_of!(TrapFrame, rflags),
        FRAME_RSP = const offset_of!(TrapFrame, rsp),
        FRAME_RBX = const offset_of!(TrapFrame, rbx),
        FRAME_RBP = const offset_of!(TrapFrame, rbp),
        FRAME_R12 = const offset_of!(TrapFrame, r12),
        FRAME_R13 = const offset_of!(TrapFrame, r13),
        FRAME_R14 = const offset_of!(TrapFrame, r14),
        FRAME_R15 = const offset_of!(TrapFrame, r15),
        FRAME_RDI = const offset_of!(TrapFrame, rdi),
        FRAME_RSI = const offset_of!(TrapFrame, rsi),
        FRAME_RDX = const offset_of!(TrapFrame, rdx),
        FRAME_R10 = const offset_of!(TrapFrame, r10),
        FRAME_R8 = const offset_of!(TrapFrame, r8),
        FRAME_R9 = const offset_of!(TrapFrame, r9),
        SYS_CALL = const abi::syscall::Syscall::Call.raw(),
        SYS_REPLY_RECV = const abi::syscall::Syscall::ReplyRecv.raw(),
        SYS_YIELD = const abi::syscall::Syscall::Yield.raw(),
    );

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        // SAFETY: single CPU with interrupts off; the system stops below, so breaking a
        // lock held by the code that panicked cannot corrupt anything that runs again.
        unsafe { serial::force_unlock() };
        match info.location() {
            Some(loc) => {
                serial::write_fmt(format_args!("KERNEL PANIC at {}:{}: {}\n", loc.file(), loc.line(), info.message()))
            }
            None => serial::write_fmt(format_args!("KERNEL PANIC: {}\n", info.message())),
        }
        cpu::exit_qemu(abi::exit::ExitCode::KernelPanic.raw())
    }
}

/// Host builds have no kernel to run; the library's logic is exercised by `cargo test`.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the kernel runs on bare metal: use `make run`");
    std::process::exit(2);
}
