//! ISA devices of a described system: ports and an interrupt line for a component.
//!
//! An ISA device (`[isa.<name>]` in the description: a second UART, say) has I/O ports
//! and an ISA interrupt line, no PCI function and no DMA. Init takes the line's
//! IRQHandler once ([`take_lines`]) and keeps it across restarts; if the device's
//! component is a management component, init binds the line to that component's
//! fault doorbell (badge `DOORBELL_IRQ`), so its one wait covers fault reports and
//! the device. [`connect`] gives the component an `IoPort` cap per range and a copy
//! of the handler (`IrqLine`) to acknowledge the line with.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use libcap::abi::component::{CapEntry, CapKind, DOORBELL_IRQ};
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::abi::system::{SystemDesc, NO_IRQ};
use libcap::alloc::SlotAllocator;
use libcap::cap::{CNode, CPtr, IoPortControl, IrqControl, IrqHandler, Notification, Result};

use crate::build::{self, root};
use crate::compose::System;

/// Per ISA device: init's IRQHandler for its line (0 without one) and whether the
/// line signals the component's fault doorbell.
pub type Lines = Vec<(CPtr, bool)>;

/// Takes every ISA device's interrupt line; binds it to the doorbell of its component
/// when that has one (`doorbells[component].0`, a notification init owns).
pub fn take_lines(
    desc: &SystemDesc<'_>,
    slots: &SlotAllocator,
    doorbells: &[(CPtr, CPtr)],
) -> core::result::Result<Lines, String> {
    let mut lines = Vec::new();
    for d in desc.isa_devices().iter() {
        let name = desc.str(d.name);
        if d.irq == NO_IRQ {
            lines.push((0, false));
            continue;
        }
        let slot = slots.alloc().map_err(|e| format!("ISA device '{name}': no slot for its IRQ ({e:?})"))?;
        IrqControl(slots::IRQ_CONTROL)
            .get(u64::from(d.irq), root(slot))
            .map_err(|e| format!("ISA device '{name}': IRQ {} refused ({:?})", d.irq, e.code))?;
        let doorbell = doorbells.get(usize::from(d.component)).map_or(0, |b| b.0);
        if doorbell == 0 {
            lines.push((slot, false));
            continue;
        }
        let signal = slots.alloc().map_err(|e| format!("ISA device '{name}': no slot ({e:?})"))?;
        CNode::mint(root(signal), root(doorbell), CapRights::WRITE, DOORBELL_IRQ)
            .and_then(|()| IrqHandler(slot).set_notification(Notification(signal)))
            .map_err(|e| format!("ISA device '{name}': cannot bind IRQ {} to the doorbell ({:?})", d.irq, e.code))?;
        lines.push((slot, true));
    }
    Ok(lines)
}

/// Gives component `i` the ports and interrupt line of each ISA device it holds
/// (after `compose::connect`; on restart too: the ports are issued afresh).
pub fn connect(system: &mut System<'_>, i: usize, slots: &SlotAllocator) -> Result<()> {
    let desc = system.plan.desc;
    for (k, d) in desc.isa_devices().iter().enumerate() {
        if usize::from(d.component) != i {
            continue;
        }
        let name = desc.str(d.name);
        let built = &mut system.comps[i].built;
        for r in desc.port_ranges(d.ports).iter() {
            let tmp = slots.alloc()?;
            IoPortControl(slots::IOPORT_CONTROL).issue(r.first, r.last, root(tmp))?;
            let mut e = CapEntry::new(name, CapKind::IoPort, CapRights::ALL.raw(), 0);
            e.vaddr = u64::from(r.first);
            e.size = u64::from(r.last - r.first) + 1;
            build::give_moved(built, tmp, e)?;
        }
        let (handler, bound) = system.shared.isa_lines[k];
        if handler != 0 {
            let mut e = CapEntry::new(name, CapKind::IrqLine, 0, 0);
            e.badge = u64::from(d.irq);
            e.size = if bound { DOORBELL_IRQ } else { 0 };
            build::give(built, handler, e, CapRights::ALL, 0)?;
        }
    }
    Ok(())
}

/// The `graph:` edges of ISA devices: `<component> -> isa:<name> [ports ..., irq N]`.
pub fn graph_edges(system: &System<'_>, out: &mut Vec<crate::graph_page::Edge>) {
    let desc = system.plan.desc;
    for d in desc.isa_devices().iter() {
        let who = system.plan.components.get(usize::from(d.component)).map_or("?", |c| c.name);
        let mut what = String::new();
        for r in desc.port_ranges(d.ports).iter() {
            what.push_str(&format!("ports {:#x}..={:#x}, ", r.first, r.last));
        }
        if d.irq == NO_IRQ {
            what.push_str("polled");
        } else {
            what.push_str(&format!("irq {}", d.irq));
        }
        out.push((who.into(), format!("isa:{}", desc.str(d.name)), what));
    }
}
