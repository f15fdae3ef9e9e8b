//! The user-level serial console driver.
//!
//! The user-level serial console: a driver thread in its own address space and its own
//! CSpace holding only the COM1 I/O-port cap and its endpoint. It drives the UART with
//! uart_16550 through a backend that performs port I/O by invoking that cap, and
//! serves write requests (`libcap::console::CONSOLE_WRITE`) from other programs.

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::msginfo::MessageInfo;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, IoPort, IoPortControl, Result};
use libcap::console::{CONSOLE_CHUNK, CONSOLE_WRITE};
use libcap::ipc;
use libcap::space::{clone_image_space, spawn_with};
use uart_16550::backend::Backend;
use uart_16550::{Config, Uart16550};

/// COM1's first port.
const COM1: u16 = 0x3f8;
/// Slots in the server's own CNode.
const SERVER_EP: u64 = 1;
const SERVER_PORTS: u64 = 2;
/// Radix of the server's CNode and the guard that makes its CPtrs small integers.
const SERVER_RADIX: u64 = 4;
/// Where the server's stack and IPC buffer go in its address space.
const SERVER_REGION: u64 = 0x0000_6000_0000_0000;

/// Bytes the server has written (shared memory: the image's data pages).
pub static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Port I/O through an IOPort capability.
struct CapPorts(IoPort);

impl Backend for CapPorts {
    unsafe fn read(&mut self, register_offset: u8) -> u8 {
        self.0.in8(COM1 + u16::from(register_offset)).unwrap_or(0xff)
    }
    unsafe fn write(&mut self, register_offset: u8, value: u8) {
        let _ = self.0.out8(COM1 + u16::from(register_offset), value);
    }
}

extern "C" fn server(_: u64) -> ! {
    // SAFETY: the backend reaches exactly COM1's eight registers through our cap.
    let mut uart = unsafe { Uart16550::new_with_backend(CapPorts(IoPort(SERVER_PORTS))) };
    // The kernel already configured COM1; only take over if the UART answers.
    let _ = uart.init(Config::default());
    let mut msg = ipc::recv(SERVER_EP);
    loop {
        let written = match msg {
            Ok(m) if m.info.label == CONSOLE_WRITE => {
                let count =
                    (m.mrs[0] as usize).min(CONSOLE_CHUNK).min((usize::from(m.info.length).saturating_sub(1)) * 8);
                let mut buf = [0u8; CONSOLE_CHUNK];
                for (i, byte) in buf.iter_mut().enumerate().take(count) {
                    let word = 1 + i / 8;
                    let w = if word < 4 { m.mrs[word] } else { ipc::mr(word) };
                    *byte = (w >> (8 * (i % 8))) as u8;
                }
                uart.send_bytes_exact(&buf[..count]);
                WRITTEN.fetch_add(count as u64, SeqCst);
                count as u64
            }
            _ => 0,
        };
        msg = ipc::reply_recv(SERVER_EP, MessageInfo::new(0, 1), [written, 0, 0, 0]);
    }
}

/// Starts the console server; returns the endpoint cap (in the root CSpace) clients call.
pub fn start(bi: &BootInfo, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) -> Result<u64> {
    let root = CNode(slots::INIT_CNODE);
    let ep = objects.alloc(slots, ObjectType::Endpoint, 0)?;
    let ports = slots.alloc()?;
    IoPortControl(slots::IOPORT_CONTROL).issue(COM1, COM1 + 7, root.slot(ports))?;
    // Its own CNode: endpoint (receive only) and the ports, nothing else.
    let cnode = objects.alloc(slots, ObjectType::CNode, SERVER_RADIX)?;
    let guarded = slots.alloc()?;
    let guard_bits = 64 - SERVER_RADIX;
    CNode::mint(root.slot(guarded), root.slot(cnode), CapRights::ALL, guard_bits)?;
    let own = |index: u64| libcap::cap::SlotRef { root: CNode(guarded), index, depth: 64 };
    CNode::copy(own(SERVER_EP), root.slot(ep), CapRights::READ)?;
    CNode::move_cap(own(SERVER_PORTS), root.slot(ports))?;
    let space = clone_image_space(objects, slots, bi)?;
    spawn_with(objects, slots, CNode(guarded), space, server, 0, 250, SERVER_REGION, 0)?;
    Ok(ep)
}
