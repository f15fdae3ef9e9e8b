//! Trace recording for the replay through extracted Coq (proofs/replay).
//!
//! Not part of the Coq mirror. A trace is a text file: a first line `init`, then one
//! line per event (a system call or Revoke unit run by `step`, or a hardware step run
//! by `hw`), each followed by a tab and the spec's observation of the state after it
//! ([`obs`]). `proofs/replay/replay.ml` parses the same events, runs them through the
//! `step` and `hw_next` extracted from Replay.v and compares its own observation of
//! the model's state with the recorded one after every event. The formats here and in
//! replay.ml must agree.

use std::fmt::Write;

use crate::drive::{fill_all_logged, init, op_of, pick, reach, revoke_victim, Gen, MIX};
use crate::hw::{hw, msi_ok, Hw};
use crate::model::*;
use crate::step::{step, Op};

/// Rights as two characters: `r` or `-`, then `w` or `-`.
fn rs(r: Rights) -> &'static str {
    match (r.rd, r.wr) {
        (true, true) => "rw",
        (true, false) => "r-",
        (false, true) => "-w",
        (false, false) => "--",
    }
}

/// An optional number: the number, or `-`.
fn on(v: Option<Nat>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn cap_str(c: &Cap) -> String {
    match *c {
        Cap::CUntyped(b, sz, dev, wm) => format!("U({b},{sz},{},{wm})", u8::from(dev)),
        Cap::CCNode(pa) => format!("CN({pa})"),
        Cap::CTcb(pa) => format!("TCB({pa})"),
        Cap::CEndpoint(pa) => format!("EP({pa})"),
        Cap::CNotification(pa) => format!("NT({pa})"),
        Cap::CPageTable(pa) => format!("PT({pa})"),
        Cap::CFrame(pa, r, dev, m) => {
            let m = m.map_or_else(|| "-".to_string(), |(root, i, j)| format!("{root}.{i}.{j}"));
            format!("F({pa},{},{},{m})", rs(r), u8::from(dev))
        }
        Cap::CIoSpace(root, d) => format!("IOS({root},{d})"),
        Cap::CIoPageTable(t, m) => {
            format!("IOPT({t},{})", m.map_or_else(|| "-".to_string(), |(root, i)| format!("{root}.{i}")))
        }
        Cap::CPciDevice(rid) => format!("PCI({rid})"),
        Cap::CIrqControl => "IRQC".to_string(),
        Cap::CMsi(v, rid) => format!("MSI({v},{rid})"),
    }
}

fn section(out: &mut String, name: &str, items: impl IntoIterator<Item = String>) {
    let items: Vec<String> = items.into_iter().collect();
    if !out.is_empty() {
        out.push(' ');
    }
    let _ = write!(out, "{name}[{}]", items.join(" "));
}

/// The observation of a state both sides print: every field, maps in key order, the
/// caches in list order, root entries, leaves and fault queues only where present.
pub fn obs(s: &State) -> String {
    let mut o = String::new();
    section(&mut o, "caps", s.caps.iter().map(|(k, c)| format!("{k}:{}", cap_str(c))));
    section(&mut o, "parent", s.parent.iter().map(|(k, p)| format!("{k}:{p}")));
    section(&mut o, "orig", s.orig.iter().map(|x| x.to_string()));
    section(&mut o, "doms", s.doms.iter().map(|(r, d)| format!("{r}:{d}")));
    let root = s.rootent.iter().flat_map(|(r, m)| m.iter().map(move |(i, t)| format!("{r}.{i}:{t}")));
    section(&mut o, "root", root);
    let leaf = s.leafent.iter().flat_map(|(t, m)| m.iter().map(move |(j, &(pa, r))| format!("{t}.{j}:{pa}/{}", rs(r))));
    section(&mut o, "leaf", leaf);
    section(&mut o, "ctx", s.ctx.iter().map(|(rid, (r, d))| format!("{rid}:{r}/{d}")));
    section(&mut o, "ctxc", s.ctxc.iter().map(|(rid, (r, d))| format!("{rid}:{r}/{d}")));
    let tlb = s.iotlb.iter().map(|e| format!("{}.{}.{}:{}/{}", e.t_dom, e.t_i, e.t_j, e.t_pa, rs(e.t_r)));
    section(&mut o, "tlb", tlb);
    section(&mut o, "irte", s.irte.iter().map(|(v, e)| format!("{v}:{}", on(*e))));
    section(&mut o, "irtec", s.irtec.iter().map(|(v, e)| format!("{v}:{}", on(*e))));
    let faults = s.faults.iter().filter(|(_, q)| !q.is_empty()).map(|(d, q)| {
        let recs: Vec<String> = q.iter().map(|f| format!("{}.{}.{}", f.f_rid, f.f_i, f.f_j)).collect();
        format!("{d}:{}", recs.join(","))
    });
    section(&mut o, "faults", faults);
    let _ = write!(o, " kernel[{},{}]", s.klo, s.khi);
    o
}

/// One event of a trace.
#[derive(Clone, Debug)]
pub enum Event {
    /// A system call or Revoke unit.
    Step(Op),
    /// A hardware step with its witnesses.
    Hw(Hw),
}

/// A list field of an `Evict` event: `_` when empty, else comma-separated items.
fn list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    if items.is_empty() {
        "_".to_string()
    } else {
        items.join(",")
    }
}

/// The event as replay.ml parses it: the constructor's name and its arguments.
pub fn event_line(e: &Event) -> String {
    match e {
        Event::Step(o) => match *o {
            Op::Retype(u, k, dst, d) => format!("Retype {u} {k:?} {dst} {d}"),
            Op::Copy(a, b, r) => format!("Copy {a} {b} {}", rs(r)),
            Op::Delete(x) => format!("Delete {x}"),
            Op::RevokeOne(x, v) => format!("RevokeOne {x} {v}"),
            Op::MapIo(f, io, i, j, r) => format!("MapIo {f} {io} {i} {j} {}", rs(r)),
            Op::UnmapIo(f) => format!("UnmapIo {f}"),
            Op::MapIoTable(t, io, i) => format!("MapIoTable {t} {io} {i}"),
            Op::UnmapIoTable(t) => format!("UnmapIoTable {t}"),
            Op::Assign(io, p) => format!("Assign {io} {p}"),
            Op::Unassign(io, p) => format!("Unassign {io} {p}"),
            Op::GetMsi(c, p, d, v) => format!("GetMsi {c} {p} {d} {v}"),
            Op::NextFault(io) => format!("NextFault {io}"),
        },
        Event::Hw(h) => match *h {
            Hw::HwFillTlb { rid, root, d, i, j, pa, r } => format!("FillTlb {rid} {root} {d} {i} {j} {pa} {}", rs(r)),
            Hw::HwFillCtx { rid, e: (root, d) } => format!("FillCtx {rid} {root} {d}"),
            Hw::HwFillIrte { v, e } => format!("FillIrte {v} {}", on(e)),
            Hw::HwEvict { ref t, ref cc, ref ic } => format!(
                "Evict {} {} {}",
                list(t.iter().map(|e| format!("{}.{}.{}.{}.{}", e.t_dom, e.t_i, e.t_j, e.t_pa, rs(e.t_r)))),
                list(cc.iter().map(|(rid, (root, d))| format!("{rid}.{root}.{d}"))),
                list(ic.iter().map(|(v, e)| format!("{v}.{}", on(*e)))),
            ),
            Hw::HwDma { rid, i, j, w, pa } => format!("Dma {rid} {i} {j} {} {pa}", rs(w)),
            Hw::HwDmaFault { rid, i, j, w } => format!("DmaFault {rid} {i} {j} {}", rs(w)),
            Hw::HwMsi { rid, v } => format!("Msi {rid} {v}"),
        },
    }
}

/// Runs events on the spec from Init.v's boot state and writes the trace.
pub struct Recorder {
    s: State,
    /// The trace text so far.
    pub text: String,
    /// System calls and Revoke units recorded.
    pub steps: u64,
    /// Hardware steps recorded.
    pub hw_steps: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A trace at Init.v's `init`.
    pub fn new() -> Self {
        let s = init();
        let text = format!("init\t{}\n", obs(&s));
        Self { s, text, steps: 0, hw_steps: 0 }
    }

    /// The spec state now.
    pub fn state(&self) -> &State {
        &self.s
    }

    /// Runs one event on the spec and records it with the observation after it.
    pub fn apply(&mut self, e: Event) {
        self.s = match &e {
            Event::Step(o) => {
                self.steps += 1;
                step(&self.s, *o)
            }
            Event::Hw(h) => {
                self.hw_steps += 1;
                hw(&self.s, h).expect("a hardware step whose premise holds")
            }
        };
        let _ = writeln!(self.text, "{}\t{}", event_line(&e), obs(&self.s));
    }

    /// Every fill the hardware may do now, each recorded.
    pub fn fill(&mut self) {
        let mut log = Vec::new();
        fill_all_logged(&self.s, &mut log);
        for h in log {
            self.apply(Event::Hw(h));
        }
    }

    /// A DMA probe: translated through what the device reaches, else a fault.
    pub fn dma(&mut self, rid: Nat, i: Nat, j: Nat, w: Rights) {
        let found = reach(&self.s, rid, i, j).into_iter().find(|&(_, got)| rsub(w, got));
        let h = match found {
            Some((pa, _)) => Hw::HwDma { rid, i, j, w, pa },
            None => Hw::HwDmaFault { rid, i, j, w },
        };
        self.apply(Event::Hw(h));
    }

    /// A system call (Revoke: its units, each followed by fills), then fills.
    pub fn op(&mut self, o: Op) {
        if let Op::RevokeOne(x, _) = o {
            while let Some(v) = revoke_victim(&self.s, x) {
                self.apply(Event::Step(Op::RevokeOne(x, v)));
                self.fill();
            }
        } else {
            self.apply(Event::Step(o));
            self.fill();
        }
    }
}

/// A small deterministic generator (splitmix64), so traces are reproducible by seed.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.bits() % n
    }
}

/// Init.v's `run` (six system calls) with fills, the DMA of its examples, an unmap
/// and a DMA after it, and IoSpaceNextFault.
pub fn record_run() -> Recorder {
    let ro = Rights { rd: true, wr: false };
    let mut r = Recorder::new();
    for o in [
        Op::Retype(0, Kind::KFrame, 10, 0),
        Op::Retype(0, Kind::KIoSpace, 11, 5),
        Op::Retype(0, Kind::KIoPageTable, 12, 0),
        Op::MapIoTable(12, 11, 3),
        Op::MapIo(10, 11, 3, 7, ro),
        Op::Assign(11, 2),
    ] {
        r.op(o);
    }
    r.dma(8, 3, 7, ro);
    r.dma(8, 3, 7, Rights { rd: false, wr: true });
    r.dma(16, 3, 7, ro);
    r.op(Op::UnmapIo(10));
    r.dma(8, 3, 7, ro);
    r.op(Op::NextFault(11));
    r
}

/// A random trace of `len` generated steps, as the spec's random tests make them:
/// operations (from the generator the differential tests share), evictions, DMA
/// (translated or faulting), MSIs and IoSpaceNextFault, with every fill after each.
pub fn record_random(seed: u64, len: usize) -> Recorder {
    let mut rng = Rng(seed);
    let mut r = Recorder::new();
    for _ in 0..len {
        match rng.below(13) {
            0..=7 => {
                let o = MIX[rng.below(MIX.len() as u64) as usize];
                let a = rng.bits().to_le_bytes();
                let g = Gen(o, [a[0], a[1], a[2], a[3]], a[4] & 1 == 1, a[5] & 1 == 1);
                if let Some(op) = op_of(r.state(), g) {
                    r.op(op);
                }
            }
            8 => {
                let keep = rng.bits();
                let s = r.state();
                let bit = |n: usize| keep >> (n % 64) & 1 == 1;
                let t = s.iotlb.iter().enumerate().filter(|(n, _)| bit(*n)).map(|e| *e.1).collect();
                let cc = s.ctxc.iter().enumerate().filter(|(n, _)| bit(n + 21)).map(|e| *e.1).collect();
                let ic = s.irtec.iter().enumerate().filter(|(n, _)| bit(n + 42)).map(|e| *e.1).collect();
                r.apply(Event::Hw(Hw::HwEvict { t, cc, ic }));
                r.fill();
            }
            9 | 10 => {
                let rid = [8, 16][rng.below(2) as usize];
                let (i, j) = (rng.below(3), rng.below(3));
                let wr = rng.below(2) == 1;
                r.dma(rid, i, j, Rights { rd: !wr, wr });
                r.fill();
            }
            11 => {
                let b = rng.bits() as u8;
                let io = pick(r.state(), b, |c| matches!(c, Some(Cap::CIoSpace(..))));
                r.op(Op::NextFault(io));
            }
            _ => {
                let rid = [8, 16][rng.below(2) as usize];
                let v = rng.below(3);
                if msi_ok(r.state(), rid, v) {
                    r.apply(Event::Hw(Hw::HwMsi { rid, v }));
                }
            }
        }
    }
    r
}
