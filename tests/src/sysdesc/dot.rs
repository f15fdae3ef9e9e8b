//! The authority graph of a packed description as Graphviz DOT (`mksys --dot`).
//!
//! Nodes: init, components, devices, one IOSpace per device driver, regions, ISA
//! devices (ports and a line, no IOSpace: they cannot DMA). Edges:
//! channels (client -> server), drivers -> devices, the iommu-server -> IOSpaces ->
//! devices, region maps, fault handlers, the supervisor. `live` adds the edges the
//! running system printed as `graph: <from> -> <to> <label>` lines (red).

use std::fmt::Write as _;

use abi::system::{ChannelKind, SystemDesc, NONE, NO_IRQ};

/// A quoted DOT id or label.
fn q(s: &str) -> String {
    // Names are [A-Za-z0-9._-] (checked); labels use DOT's `\n` escape, so only quotes are escaped.
    format!("\"{}\"", s.replace('"', "\\\""))
}

/// The `graph: <from> -> <to> <label>` lines of a serial log, as (from, to, label).
pub fn live_edges(log: &str) -> Vec<(String, String, String)> {
    log.lines()
        .filter_map(|l| l.split_once("graph: ").map(|(_, rest)| rest.trim()))
        .filter_map(|rest| {
            let (from, rest) = rest.split_once(" -> ")?;
            let mut it = rest.trim().splitn(2, ' ');
            let to = it.next()?.trim();
            let label = it.next().unwrap_or("").trim();
            (!from.trim().is_empty() && !to.is_empty()).then(|| (from.trim().into(), to.into(), label.into()))
        })
        .collect()
}

/// DOT text of `desc`'s authority graph, plus `live` edges.
pub fn render(desc: &SystemDesc<'_>, live: &[(String, String, String)]) -> String {
    let mut o = String::new();
    let comp = |i: u16| match i {
        NONE => "init".to_string(),
        i => desc.components().get(i as usize).map(|c| desc.str(c.name).to_string()).unwrap_or_default(),
    };
    let _ = writeln!(o, "digraph {} {{", q(desc.name()));
    let _ = writeln!(o, "  rankdir=LR; node [fontname=\"Helvetica\"]; edge [fontname=\"Helvetica\", fontsize=10];");
    let _ = writeln!(
        o,
        "  \"init\" [shape=box, style=\"rounded,filled\", fillcolor=lightgrey, label=\"init (root task)\"];"
    );
    for c in desc.components().iter() {
        let name = desc.str(c.name);
        let label = format!("{name}\\n{} prio {} budget {}K", desc.str(c.program), c.priority, c.budget_bytes >> 10);
        let _ = writeln!(o, "  {} [shape=box, style=rounded, label={}];", q(name), q(&label));
        let _ = writeln!(o, "  \"init\" -> {} [style=dotted, label=\"builds\"];", q(name));
        if c.fault_handler != NONE {
            let _ = writeln!(o, "  {} -> {} [style=dashed, label=\"faults\"];", q(name), q(&comp(c.fault_handler)));
        }
    }
    let sup = desc.header().supervisor;
    if sup != NONE {
        let _ = writeln!(o, "  {} [peripheries=2];", q(&comp(sup)));
    }
    for ch in desc.channels().iter() {
        let kind = if ch.kind == ChannelKind::Notification.raw() { "ntfn" } else { "ep" };
        let label = format!("{kind} {} (badge {})", desc.str(ch.name), ch.badge);
        let _ = writeln!(o, "  {} -> {} [label={}];", q(&comp(ch.client)), q(&comp(ch.server)), q(&label));
    }
    for (i, r) in desc.regions().iter().enumerate() {
        let name = format!("region:{}", desc.str(r.name));
        let label = format!("{}\\n{}K shared", desc.str(r.name), r.size_bytes >> 10);
        let _ = writeln!(o, "  {} [shape=note, label={}];", q(&name), q(&label));
        for m in desc.region_maps().iter().filter(|m| m.region as usize == i) {
            let rw = if m.writable == 1 { "rw" } else { "ro" };
            let _ = writeln!(o, "  {} -> {} [label={rw}, arrowhead=odot];", q(&comp(m.component)), q(&name));
        }
    }
    let server = desc.header().iommu_server;
    let mut drivers_seen = Vec::new();
    for d in desc.devices().iter() {
        let name = format!("device:{}", desc.str(d.name));
        let driver = comp(d.driver);
        let space = format!("iospace:{driver}");
        let label = format!("{}\\npool {}K, {} bits", desc.str(d.name), d.dma_pool_bytes >> 10, d.dma_mask_bits);
        let _ =
            writeln!(o, "  {} [shape=component, style=filled, fillcolor=lightyellow, label={}];", q(&name), q(&label));
        let _ = writeln!(o, "  {} [shape=hexagon, label={}];", q(&space), q(&format!("IOSpace\\n{driver}")));
        let _ = writeln!(o, "  {} -> {} [label=\"builds\"];", q(&comp(server)), q(&space));
        let _ = writeln!(o, "  {} -> {} [label=\"assigned\"];", q(&space), q(&name));
        let _ = writeln!(o, "  {} -> {} [label=\"drives (BARs, ports)\"];", q(&driver), q(&name));
        if !drivers_seen.contains(&d.driver) {
            drivers_seen.push(d.driver);
            let _ = writeln!(o, "  {} -> {} [label=\"dma_alloc\"];", q(&driver), q(&comp(server)));
        }
        if d.fault_handler != NONE {
            let _ =
                writeln!(o, "  {} -> {} [style=dashed, label=\"DMA faults\"];", q(&space), q(&comp(d.fault_handler)));
        }
    }
    for d in desc.isa_devices().iter() {
        let name = format!("isa:{}", desc.str(d.name));
        let ports: Vec<String> =
            desc.port_ranges(d.ports).iter().map(|r| format!("{:#x}-{:#x}", r.first, r.last)).collect();
        let irq = if d.irq == NO_IRQ { "polled".to_string() } else { format!("ISA IRQ {}", d.irq) };
        let label = format!("{}\\nports {}\\n{irq}, no DMA", desc.str(d.name), ports.join(", "));
        let _ =
            writeln!(o, "  {} [shape=component, style=filled, fillcolor=lightblue, label={}];", q(&name), q(&label));
        let _ = writeln!(o, "  {} -> {} [label=\"ports, irq\"];", q(&comp(d.component)), q(&name));
    }
    for (from, to, label) in live {
        let _ = writeln!(o, "  {} -> {} [color=red, fontcolor=red, label={}];", q(from), q(to), q(label));
    }
    o.push_str("}\n");
    o
}
