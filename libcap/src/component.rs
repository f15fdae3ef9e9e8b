//! The component runtime: `component::entry!`, the info page and the heap claim.
//!
//! A component (a program init builds from the system description) declares
//! `libcap::component::entry!(main)` with `main(&'static ComponentInfo) -> ExitCode`.
//! Start-up checks the info page init mapped at [`COMPONENT_INFO_VADDR`], adds the heap
//! region to the global allocator and runs `main`. A component does not end the
//! system: when `main` returns it prints its exit code and suspends itself; a panic
//! prints the message and faults (`ud2`), so init's supervisor applies the fault policy.

use core::sync::atomic::{AtomicBool, Ordering};

pub use abi::component::{CapEntry, CapKind, ComponentInfo};
use abi::component::{COMPONENT_INFO_VADDR, TCB};
use abi::exit::ExitCode;

/// Set once a component started: the panic handler then faults instead of halting.
static IS_COMPONENT: AtomicBool = AtomicBool::new(false);

/// Whether this program runs as a component (not as the root task).
pub fn is_component() -> bool {
    IS_COMPONENT.load(Ordering::Relaxed)
}

/// Stops the component after a panic: a CPU fault init's supervisor sees.
pub fn fault_stop() -> ! {
    #[cfg(target_os = "none")]
    // SAFETY: ud2 raises #UD; the kernel delivers it to our fault endpoint (init).
    unsafe {
        core::arch::asm!("ud2", options(noreturn))
    }
    #[cfg(not(target_os = "none"))]
    panic!("fault_stop on the host")
}

/// Checks the info page, claims the heap and runs `main`; called by [`entry!`](crate::component::entry).
pub fn start(addr: u64, main: fn(&'static ComponentInfo) -> ExitCode) -> ! {
    IS_COMPONENT.store(true, Ordering::Relaxed);
    if addr != COMPONENT_INFO_VADDR {
        crate::println!("libcap: component info at unexpected address {addr:#x}");
        fault_stop();
    }
    // SAFETY: init maps the info page read-only at this fixed address for the
    // component's whole life (one page, the size of ComponentInfo, asserted in abi).
    let info: &'static ComponentInfo = unsafe { &*(addr as *const ComponentInfo) };
    if !info.is_valid() {
        crate::println!("libcap: component info magic/version mismatch (version {})", info.version);
        fault_stop();
    }
    #[cfg(target_os = "none")]
    if info.heap_bytes > 0 {
        // SAFETY: init maps heap_bytes of fresh read-write frames at heap_vaddr for this
        // component alone; nothing else in the program names that range.
        let ok = unsafe { crate::heap::claim(info.heap_vaddr as *mut u8, info.heap_bytes as usize) };
        if !ok {
            crate::println!("libcap: {}: heap region at {:#x} unusable", info.name(), info.heap_vaddr);
        }
    }
    let code = main(info);
    crate::println!("{}: exited with {:?}", info.name(), code);
    // Tell init (the fault endpoint's holder) that this component stopped.
    let exited = abi::msginfo::MessageInfo::new(abi::component::COMPONENT_EXITED, 1);
    let _ = crate::ipc::send(abi::component::FAULT_EP, exited, [u64::from(code.raw()), 0, 0, 0]);
    let _ = crate::cap::Tcb(TCB).suspend();
    loop {
        crate::ipc::yield_now();
    }
}

/// Declares the component's `main(&'static ComponentInfo) -> ExitCode`.
#[macro_export]
macro_rules! component_entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn libcap_start(info: *const $crate::abi::component::ComponentInfo) -> ! {
            $crate::component::start(info as u64, $main)
        }
    };
}

pub use crate::component_entry as entry;
