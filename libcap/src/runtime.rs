//! Program start-up and the panic handler.
//!
//! The kernel starts a program at `_start` with `rsp` at the top of its stack, the
//! bootinfo address in `rdi` and the FS base at its IPC buffer. `_start` aligns the stack and calls the `main` that the
//! program registered with [`entry!`](crate::entry); `main`'s exit code ends the system
//! (the root task is the system for now).

use abi::bootinfo::BootInfo;
use abi::exit::ExitCode;

#[cfg(target_os = "none")]
core::arch::global_asm!(
    ".section .text._start, \"ax\"",
    ".global _start",
    "_start:",
    "    and rsp, -16",
    "    mov rax, {ipc_buffer}",
    "    mov [rax + {self_offset}], rax",
    "    xor ebp, ebp",
    "    call libcap_start",
    "    ud2",
    ipc_buffer = const abi::layout::ROOT_IPC_BUFFER_VADDR,
    self_offset = const abi::ipc_buffer::SELF_OFFSET,
);

/// Checks the bootinfo header and runs `main`; called by the code [`entry!`](crate::entry) expands to.
pub fn start(addr: u64, main: fn(&'static BootInfo) -> ExitCode) -> ! {
    if addr != abi::layout::ROOT_BOOTINFO_VADDR {
        crate::println!("libcap: bootinfo at unexpected address {addr:#x}");
        crate::syscall::debug_halt(ExitCode::UserFailure);
    }
    // SAFETY: the kernel maps the bootinfo read-only at this fixed address for the root
    // task's whole life: the header and every page its `size` covers (the accessors
    // read the arrays only inside `size`, checked by `is_valid` and on each access).
    let bootinfo: &'static BootInfo = unsafe { &*(addr as *const BootInfo) };
    if !bootinfo.is_valid() {
        crate::println!(
            "libcap: bootinfo magic/version/size mismatch (version {}, size {})",
            bootinfo.version,
            bootinfo.size
        );
        crate::syscall::debug_halt(ExitCode::UserFailure);
    }
    let code = main(bootinfo);
    crate::syscall::debug_halt(code)
}

/// Declares the program's `main(&'static BootInfo) -> ExitCode`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn libcap_start(bootinfo: *const $crate::abi::bootinfo::BootInfo) -> ! {
            $crate::runtime::start(bootinfo as u64, $main)
        }
    };
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(loc) => crate::println!("user panic at {}:{}: {}", loc.file(), loc.line(), info.message()),
        None => crate::println!("user panic: {}", info.message()),
    }
    if crate::component::is_component() {
        crate::component::fault_stop();
    }
    crate::syscall::debug_halt(ExitCode::UserFailure)
}
