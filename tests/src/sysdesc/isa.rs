//! The host checks of `[isa.<name>]` entries: legacy devices with ports and an IRQ.
//!
//! An ISA device (a second UART for management's console, say) names its I/O port
//! ranges, an optional ISA interrupt line and the component that gets both. The ranges
//! share the description's `port_ranges` with PCI devices' ports: a port has one owner.

use abi::reserved::reserved_port_overlap;
use abi::system::{IndexRange, IsaDevice, PortRange, SystemParts, COM1_PORTS, ISA_IRQS, NAME_MAX, NO_IRQ};

use super::super::model::SystemFile;
use super::{in_file_order, Ctx, Names};

/// Who owns port range `i` of `p` (a device or an earlier ISA device), for messages.
fn owner(p: &SystemParts, device_names: &[String], isa_names: &[String], i: usize) -> String {
    let holds = |r: &IndexRange| (r.first..r.first + r.count).contains(&(i as u32));
    if let Some(d) = p.devices.iter().position(|d| holds(&d.ports)) {
        return format!("device '{}'", device_names[d]);
    }
    p.isa_devices
        .iter()
        .position(|d| holds(&d.ports))
        .map_or_else(String::new, |d| format!("ISA device '{}'", isa_names[d]))
}

/// Checks and packs every `[isa.<name>]` (after the devices, whose ports come first).
pub(super) fn isa_devices(
    ctx: &mut Ctx<'_>,
    p: &mut SystemParts,
    sys: &SystemFile,
    names: &Names,
    device_names: &[String],
) {
    let mut isa_names: Vec<String> = Vec::new();
    for (name, d) in in_file_order(&sys.isa) {
        let entry = format!("ISA device '{name}'");
        ctx.name(name, &d.span(), &entry, NAME_MAX);
        let d = d.get_ref();
        let component = names.get(d.component.get_ref()).unwrap_or_else(|| {
            ctx.err(&d.component.span(), &entry, format!("component '{}' is not a component", d.component.get_ref()));
            0
        });
        let irq = match &d.irq {
            None => NO_IRQ,
            Some(v) if (0..i64::from(ISA_IRQS)).contains(v.get_ref()) => *v.get_ref() as u8,
            Some(v) => {
                ctx.err(&v.span(), &entry, format!("irq {} is not an ISA line (0..=15)", v.get_ref()));
                NO_IRQ
            }
        };
        if irq != NO_IRQ {
            if let Some(o) = p.isa_devices.iter().position(|o| o.irq == irq) {
                let msg = format!("irq {irq} is taken by ISA device '{}' (a line has one owner)", isa_names[o]);
                ctx.err(&d.irq.as_ref().map_or(0..0, |v| v.span()), &entry, msg);
            }
        }
        let first = p.port_ranges.len() as u32;
        if d.ports.get_ref().is_empty() {
            ctx.err(&d.ports.span(), &entry, "no port ranges (ports = [[first, last]])");
        }
        for r in d.ports.get_ref() {
            let (lo, hi) = match r.get_ref().as_slice() {
                [lo, hi] if (0..=0xffff).contains(lo) && (0..=0xffff).contains(hi) && lo <= hi => {
                    (*lo as u16, *hi as u16)
                }
                [lo, hi] if lo > hi => {
                    ctx.err(&r.span(), &entry, format!("port range {lo:#x}..{hi:#x}: first is above last"));
                    continue;
                }
                _ => {
                    ctx.err(&r.span(), &entry, "a port range is [first, last] with ports in 0..=0xffff");
                    continue;
                }
            };
            if let Some(res) = reserved_port_overlap(lo, hi) {
                let msg = format!(
                    "ports {lo:#x}..={hi:#x} touch {:#x}..={:#x}, which the kernel never issues: {}",
                    res.first, res.last, res.reason
                );
                ctx.err(&r.span(), &entry, msg);
            }
            if lo <= COM1_PORTS.1 && COM1_PORTS.0 <= hi {
                ctx.err(
                    &r.span(),
                    &entry,
                    format!("ports {lo:#x}..={hi:#x} touch COM1 (0x3f8..=0x3ff: the kernel's log)"),
                );
            }
            if let Some(i) = p.port_ranges.iter().position(|o| lo <= o.last && o.first <= hi) {
                let o = p.port_ranges[i];
                let msg = format!(
                    "ports {lo:#x}..={hi:#x} overlap {:#x}..={:#x} of {} (a port has one owner)",
                    o.first,
                    o.last,
                    owner(p, device_names, &isa_names, i)
                );
                ctx.err(&r.span(), &entry, msg);
            }
            p.port_ranges.push(PortRange { first: lo, last: hi, _pad: 0 });
        }
        let ports = IndexRange { first, count: p.port_ranges.len() as u32 - first };
        p.isa_devices.push(IsaDevice { name: p.strings.add(name), ports, component, irq, _pad: [0; 5] });
        isa_names.push(name.clone());
    }
}
