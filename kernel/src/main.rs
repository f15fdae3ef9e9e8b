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
    // entry.S (trap and system call entry, the return to user mode) is assembled with
    // the IPC fastpath in `kernel::thread::fastpath`, from one list of operands.

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
