//! Management's serial console on an ISA UART: status, graph, restart, cutoff.
//!
//! The description gives management an ISA device (`[isa.com2]`: COM2's ports and ISA
//! IRQ 3; COM1 stays the kernel's log). Init binds the line to management's fault
//! doorbell, so the one wait that covers fault reports also wakes on a keystroke; the
//! console then acknowledges the line and drains the UART (uart_16550 over the
//! `IoPort` cap). Without a line (`irq` left out) it is polled at every wake only.
//! Commands act through the same paths as the fault policy, with the same authority:
//! `restart` = `DriverReset` of the devices it handles that the component drives, then
//! init's `SUPERVISOR_RESTART`; `cutoff` = the iommu-server's `DriverCutoff`. What
//! management may not act on is refused here with the reason, and init and the
//! iommu-server check the same again (their badge checks). Every command and its first
//! reply line are logged on the kernel's serial log (`management: console: ...`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use abi::component::{
    CapKind, SupervisorStatus, DOORBELL_IRQ, GRAPH_LINE_WORDS, SUPERVISOR_GRAPH_LINE, SUPERVISOR_RESTART,
};
use abi::iommu::IommuLabel;
use abi::msginfo::MessageInfo;
use abi::system::ComponentRole;
use libcap::cap::{IoPort, IrqHandler};
use libcap::{ipc, println};
use uart_16550::backend::Backend;
use uart_16550::spec::registers::FifoTriggerLevel;
use uart_16550::spec::registers::IER;
use uart_16550::{Config, Uart16550};

use crate::{request, status_name, Management};

/// Longest command line; a longer one is refused whole.
pub const LINE_MAX: usize = 80;
/// Bytes one [`Console::poll`] handles before fault reports get their turn again.
pub const POLL_BYTES: usize = 256;
/// The prompt after every reply.
pub const PROMPT: &str = "mgmt> ";

/// Port I/O on the UART's eight registers through management's `IoPort` cap.
struct CapPorts {
    cap: IoPort,
    base: u16,
}

impl Backend for CapPorts {
    unsafe fn read(&mut self, register_offset: u8) -> u8 {
        self.cap.in8(self.base + u16::from(register_offset)).unwrap_or(0xff)
    }
    unsafe fn write(&mut self, register_offset: u8, value: u8) {
        let _ = self.cap.out8(self.base + u16::from(register_offset), value);
    }
}

/// The console: its UART, its interrupt line (if any) and the line being typed.
pub struct Console {
    uart: Uart16550<CapPorts>,
    irq: Option<IrqHandler>,
    line: Vec<u8>,
    too_long: bool,
    after_cr: bool,
}

impl Console {
    /// The console on the first ISA port range management holds, if a UART answers.
    pub fn open(m: &Management) -> Option<Console> {
        let caps = m.info.caps();
        let ports = caps.iter().find(|c| c.kind() == Some(CapKind::IoPort) && c.size >= 8)?;
        let name = ports.name();
        let base = ports.vaddr as u16;
        let line = caps.iter().find(|c| c.kind() == Some(CapKind::IrqLine) && c.name() == name);
        // SAFETY: the backend reaches only the eight registers of this port cap, which
        // the description gives management alone (a port has one owner).
        let mut uart = unsafe { Uart16550::new_with_backend(CapPorts { cap: IoPort(ports.slot), base }) };
        let config =
            Config { interrupts: IER::DATA_READY, fifo_trigger_level: Some(FifoTriggerLevel::One), ..Config::DEFAULT };
        if let Err(e) = uart.init(config) {
            println!("management: console {name}: no UART answers at {base:#x} ({e:?}): no console");
            return None;
        }
        let irq = match line {
            Some(l) if l.size == DOORBELL_IRQ => {
                println!("management: console on {name} (ports {base:#x}, irq {}): type help", l.badge);
                Some(IrqHandler(l.slot))
            }
            _ => {
                println!("management: console on {name} (ports {base:#x}, polled at each wake): type help");
                None
            }
        };
        let mut c = Console { uart, irq, line: Vec::new(), too_long: false, after_cr: false };
        c.say("management console: status, graph, restart <component>, cutoff <device>, help");
        c.prompt();
        Some(c)
    }

    fn say(&mut self, text: &str) {
        for line in text.lines() {
            self.uart.send_bytes_exact(line.as_bytes());
            self.uart.send_bytes_exact(b"\r\n");
        }
    }

    fn prompt(&mut self) {
        self.uart.send_bytes_exact(PROMPT.as_bytes());
    }

    /// Acknowledges the line, then reads what the UART holds (at most [`POLL_BYTES`])
    /// and runs each complete command (a keystroke after the read raises the line
    /// again). True if bytes may be left: the caller fetches fault reports and polls
    /// again before it waits, so typing cannot hold fault handling off.
    pub fn poll(&mut self, m: &mut Management) -> bool {
        if let Some(irq) = self.irq {
            let _ = irq.ack();
        }
        for _ in 0..POLL_BYTES {
            let Ok(byte) = self.uart.try_receive_byte() else { return false };
            self.byte(m, byte);
        }
        true
    }

    fn byte(&mut self, m: &mut Management, byte: u8) {
        let after_cr = core::mem::replace(&mut self.after_cr, byte == b'\r');
        match byte {
            b'\n' if after_cr => {}
            b'\r' | b'\n' => {
                let line = core::mem::take(&mut self.line);
                if core::mem::take(&mut self.too_long) {
                    self.say(&format!("error: line longer than {LINE_MAX} characters: ignored"));
                } else if let Ok(text) = core::str::from_utf8(&line) {
                    let reply = run(m, text.trim());
                    if !reply.is_empty() {
                        // Not the graph's lines themselves: `make graph --live` reads
                        // every `graph: ` line of this log as an edge.
                        let first = match reply.lines().next().unwrap_or("") {
                            l if l.starts_with("graph: ") => format!("{} graph lines", reply.lines().count()),
                            l => String::from(l),
                        };
                        println!("management: console: '{}' -> {first}", text.trim());
                        self.say(&reply);
                    }
                }
                self.prompt();
            }
            0x08 | 0x7f => {
                self.line.pop();
            }
            0x20..=0x7e if self.line.len() < LINE_MAX => self.line.push(byte),
            0x20..=0x7e => self.too_long = true,
            _ => {}
        }
    }
}

/// The reply to one command line (empty for an empty line).
fn run(m: &mut Management, line: &str) -> String {
    let mut words = line.split_ascii_whitespace();
    let Some(command) = words.next() else { return String::new() };
    let args: Vec<&str> = words.collect();
    match (command, args.as_slice()) {
        ("help", []) => String::from(
            "status              components, devices, faults, restarts, cut-offs\n\
             graph               the authority edges init granted\n\
             restart <component> restart a component whose faults management handles\n\
             cutoff <device>     cut a device management handles off for good\n\
             help                this list",
        ),
        ("status", []) => m.status_text(),
        ("graph", []) => graph(m),
        ("restart", [name]) => restart(m, name),
        ("cutoff", [name]) => cutoff(m, name),
        ("restart", []) => String::from("error: restart needs a component name: restart <component>"),
        ("cutoff", []) => String::from("error: cutoff needs a device name: cutoff <device>"),
        ("restart" | "cutoff", _) => format!("error: {command} takes one name, not {}", args.len()),
        ("help" | "status" | "graph", _) => format!("error: {command} takes no arguments"),
        _ => format!("error: unknown command '{command}' (commands: status, graph, restart, cutoff, help)"),
    }
}

/// Init's `graph:` lines, fetched one by one.
fn graph(m: &Management) -> String {
    let Some(sup) = m.supervisor else { return String::from("error: no supervisor cap: init's graph is out of reach") };
    let mut out = String::new();
    for n in 0u64.. {
        let Ok(reply) = ipc::call(sup, MessageInfo::new(SUPERVISOR_GRAPH_LINE, 1), [n, 0, 0, 0]) else {
            return format!("error: init did not answer for graph line {n}");
        };
        if SupervisorStatus::try_from(reply.mrs[0]) != Ok(SupervisorStatus::Ok) {
            break;
        }
        let len = (reply.mrs[2] as usize).min(GRAPH_LINE_WORDS * 8);
        let bytes: Vec<u8> = (0..len).map(|i| (ipc::mr(4 + i / 8) >> (8 * (i % 8))) as u8).collect();
        out.push_str("graph: ");
        out.push_str(core::str::from_utf8(&bytes).unwrap_or("?"));
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("graph: no edges");
    }
    out
}

/// `restart <component>`: what the policy does for it, if it is management's to restart.
fn restart(m: &mut Management, name: &str) -> String {
    let peers: Vec<(u64, &'static str, u64)> =
        m.info.caps().iter().filter(|c| c.kind() == Some(CapKind::Peer)).map(|c| (c.badge, c.name(), c.size)).collect();
    let Some(&(index, name, role)) = peers.iter().find(|p| p.1 == name) else {
        let all: Vec<&str> = peers.iter().map(|p| p.1).collect();
        return format!("error: no component '{name}' (components: {})", all.join(", "));
    };
    if index == u64::from(m.info.index) {
        return String::from("refused: management does not restart itself");
    }
    if ComponentRole::try_from(role as u8) == Ok(ComponentRole::IommuServer) {
        return format!("refused: {name} is the iommu-server (its domains, pools and buffers would be lost)");
    }
    let handles_faults = m.info.caps().iter().any(|c| c.kind() == Some(CapKind::FaultSource) && c.badge == index);
    let drives: Vec<usize> = (0..m.watched.len()).filter(|&k| m.watched[k].driver == index).collect();
    if !handles_faults && drives.is_empty() {
        return format!(
            "refused: management may not restart {name}: it handles neither its faults nor a device it drives"
        );
    }
    let mut out = String::new();
    for k in drives {
        let w = &m.watched[k];
        if w.cut_off {
            out.push_str(&format!("device {} stays cut off (no reset)\n", w.name));
            continue;
        }
        let reset = request(m.iommu, IommuLabel::DriverReset.raw(), w.index);
        out.push_str(&format!("device {} reset by the iommu-server: {}\n", w.name, status_name(reset)));
    }
    match request(m.supervisor, SUPERVISOR_RESTART, index) {
        Some([0, generation, ..]) => {
            m.counters.restarts += 1;
            m.print_counters();
            format!("restarted {name}: generation {generation}\n{out}restarts now {}", m.counters.restarts)
        }
        Some([status, ..]) => {
            format!("error: init refused to restart {name}: {:?}\n{out}", SupervisorStatus::try_from(status))
        }
        None => format!("error: no supervisor cap: cannot restart {name}\n{out}"),
    }
}

/// `cutoff <device>`: the iommu-server unassigns it for good, if management handles it.
fn cutoff(m: &mut Management, name: &str) -> String {
    let Some(k) = m.watched.iter().position(|w| w.name == name) else {
        let mine: Vec<&str> = m.watched.iter().map(|w| w.name).collect();
        return format!(
            "refused: management does not handle device '{name}' (its devices: {})",
            if mine.is_empty() { String::from("none") } else { mine.join(", ") }
        );
    };
    if m.watched[k].cut_off {
        return format!("error: device {name} is already cut off");
    }
    let reply = request(m.iommu, IommuLabel::DriverCutoff.raw(), m.watched[k].index);
    let status = status_name(reply);
    if status != "ok" {
        return format!("error: the iommu-server refused to cut {name} off: {status}");
    }
    m.watched[k].cut_off = true;
    m.counters.cut_offs += 1;
    m.print_counters();
    format!("device {name} cut off: it stays unassigned ({status}); cut-offs now {}", m.counters.cut_offs)
}
