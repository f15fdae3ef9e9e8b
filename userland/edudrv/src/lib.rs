//! The edu driver component: DMA only through its iommu-server pool, in four modes.
//!
//! Init gives the driver a send cap (Grant) to the iommu-server for its device (an
//! `IommuClient` entry), the first page of the device's BAR 0 (a `DeviceFrame` entry)
//! and its spare budget untyped. It never holds the device's PciDevice, IOSpace or
//! IO page tables: it asks the server for config access, an MSI and DMA buffers
//! (`libcap::iommu`), then does an edu DMA round trip RAM -> device -> RAM through its
//! buffer and logs `edudrv: DMA through the pool ok (iova 0x..., gen N)`.
//!
//! The mode is the program (one ELF per mode, all from this crate; a description picks
//! one with `program = "edudrv-rogue-outside"`, for instance):
//! - `edudrv` ([`Mode::Normal`]): the round trip, then the driver exits;
//! - `edudrv-rogue-outside`: generation 1 also programs edu to read an IOVA outside its
//!   pool; later generations read generation 1's second buffer (a stale IOVA); both
//!   are blocked and reach management, which applies the device's policy;
//! - `edudrv-rogue-device`: asks for what it was not given (a supervisor request, a
//!   BAR through config space, another device's client slot): each refused;
//! - `edudrv-use-freed`: frees its buffer, then DMAs to the stale IOVA: blocked;
//! - `edudrv-crash`: generation 1 CPU-faults holding a buffer; init restarts it, and
//!   the next generation's DMA works again;
//! - `edudrv-rogue-targets`: writes into a partition's page and the kernel image by
//!   physical address (`targets`); both blocked, reported, then restart and cut-off;
//! - `edudrv-storm`: [`STORM_FAULTS`] DMAs outside its pool in a row, then exits (the
//!   lossless fault-report scenario);
//! - `edudrv-stale`: generation 1 takes a second buffer and CPU-faults; generation 2
//!   frees and names generation 1's IOVAs and sends malformed requests: each is
//!   refused with a status, the server keeps serving and the round trip still works.
#![no_std]

use abi::component::{CapKind, ComponentInfo, BUDGET_UNTYPED, CNODE, VSPACE};
use abi::exit::ExitCode;
use abi::iommu::{IommuLabel, IommuStatus, IOVA_BASE};
use abi::layout::PAGE_SIZE;
use abi::msginfo::MessageInfo;
use abi::object::ObjectType;
use abi::pci;
use abi::rights::CapRights;
use edu_driver::{Edu, EduRegisters};
use libcap::cap::{CNode, Frame, Notification, Untyped, VSpace};
use libcap::iommu::{ClientSpace, DmaBuffer, IommuClient, IommuError};
use libcap::{ipc, println};

mod leak;
mod round15;
mod targets;

/// What the driver does after its round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Round trip, then exit.
    Normal,
    /// DMA outside the pool (generation 1) or to a stale IOVA (later generations).
    RogueOutside,
    /// Ask for authority it was not given.
    RogueDevice,
    /// Write to a partition's canary page (generation 1) or the kernel image (later).
    RogueTargets,
    /// DMA to a freed buffer.
    UseFreed,
    /// Generation 1 faults (CPU) while holding a buffer; later generations run normally.
    Crash,
    /// Several DMAs outside the pool in a row.
    Storm,
    /// [`FLOOD_FAULTS`] DMAs outside the pool (more than the server queues per device).
    Flood,
    /// Generation 1 faults holding two buffers; generation 2 names them and sends junk.
    Stale,
    /// From attack round 2: generation 1 hands its iommu-server client cap to a peer
    /// over the `leak` endpoint, then crashes; generation 2 checks its DMA after the peer
    /// used the stale cap.
    Leak,
    /// From attack round 15: places one 4 KiB frame of its own at many IOVAs
    /// (`DmaMapFrame`) to use up the server's slots and IO page tables (`hog`).
    Hog,
    /// From attack round 15: places a frame a peer lent it, starts a device write
    /// into it and CPU-faults (`round15::outlive`).
    Outlive,
    /// From attack round 15: sends the server's endpoint cap as a `DmaMapFrame` frame
    /// (`round15::block`).
    Block,
}

/// DMAs outside the pool `edudrv-storm` issues (each at its own IOVA).
pub const STORM_FAULTS: u64 = 5;
/// DMAs outside the pool `edudrv-flood` issues (more than the server's report queue).
pub const FLOOD_FAULTS: u64 = 200;

/// Where the driver maps its DMA buffers.
const DMA_VADDRS: core::ops::Range<u64> = 0x0000_5400_0000_0000..0x0000_5400_0100_0000;
/// An IOVA below edu's 28-bit mask that the server never handed out (outside the pool).
pub const OUTSIDE_IOVA: u64 = 0x0800_0000;
/// Generation 1's second buffer in rogue-outside mode (first fit: one page and a
/// guard page after the first buffer): stale once the driver was restarted.
pub const STALE_IOVA: u64 = IOVA_BASE + 2 * PAGE_SIZE;
/// An address no component has mapped (the crash mode reads it).
const CRASH_ADDRESS: u64 = 0x0000_dead_0000;
/// Server polls while waiting for management's verdict before giving up.
const VERDICT_POLLS: u32 = 200_000;

/// Everything the driver set up.
pub(crate) struct Driver {
    client: IommuClient,
    edu: Edu,
    endpoint: u64,
    gen: u32,
    free_slot: u64,
}

/// Runs the driver in `mode`.
pub fn run(info: &'static ComponentInfo, mode: Mode) -> ExitCode {
    let mut d = match setup(info) {
        Ok(d) => d,
        Err(what) => {
            println!("edudrv: FAIL {what}");
            return ExitCode::UserFailure;
        }
    };
    let gen = d.gen;
    // Serving: its device, MSI and server connection set up (`make bench` times a
    // restart from management's fault to here; the TSC counts guest instructions).
    println!("edudrv: generation {gen}, mode {mode:?}: serving at tsc {}", libcap::deadline::now());
    if mode == Mode::RogueDevice {
        rogue_device(&mut d);
    }
    if mode == Mode::Stale && gen > 1 {
        stale_requests(&mut d);
    }
    if mode == Mode::Leak {
        return crate::leak::run(info, &mut d.client, d.endpoint, &d.edu, gen);
    }
    if mode == Mode::Hog {
        return crate::round15::hog(info, &mut d);
    }
    if mode == Mode::Block {
        return crate::round15::block(&mut d);
    }
    let rw = CapRights::READ.union(CapRights::WRITE);
    let a = match d.client.dma_alloc(PAGE_SIZE, rw) {
        Ok(a) => a,
        Err(e) => {
            println!("edudrv: FAIL dma_alloc: {e:?}");
            return ExitCode::UserFailure;
        }
    };
    let frame = Frame(a.frames.start).address().unwrap_or(0);
    println!("edudrv: buffer iova {:#x} frame {frame:#x} vaddr {:#x} (gen {gen})", a.iova, a.vaddr);
    if !round_trip(&d.edu, &a, 0xed00_0000 + u64::from(gen) * 0x100) {
        println!("edudrv: FAIL the DMA round trip through iova {:#x} (gen {gen})", a.iova);
        return ExitCode::UserFailure;
    }
    println!("edudrv: DMA through the pool ok (iova {:#x}, gen {gen})", a.iova);
    match mode {
        Mode::Normal | Mode::RogueDevice => ExitCode::Success,
        Mode::Storm => {
            for k in 0..STORM_FAULTS {
                let _ = d.edu.to_device(OUTSIDE_IOVA + k * PAGE_SIZE, 0, 64);
            }
            println!("edudrv: storm: {STORM_FAULTS} DMAs outside the pool issued");
            ExitCode::Success
        }
        Mode::Flood => {
            for k in 0..FLOOD_FAULTS {
                let _ = d.edu.to_device(OUTSIDE_IOVA + k * PAGE_SIZE, 0, 64);
            }
            println!("edudrv: flood: {FLOOD_FAULTS} DMAs outside the pool issued");
            ExitCode::Success
        }
        Mode::Stale if gen == 1 => {
            match d.client.dma_alloc(PAGE_SIZE, rw) {
                Ok(b) => println!("edudrv: stale: second buffer iova {:#x} (gen {gen})", b.iova),
                Err(e) => println!("edudrv: FAIL second dma_alloc: {e:?}"),
            }
            println!("edudrv: stale: crashing while holding iovas {:#x} and {STALE_IOVA:#x}", a.iova);
            // SAFETY: deliberately a read of an unmapped address (see the crash mode).
            let v = unsafe { core::ptr::read_volatile(CRASH_ADDRESS as *const u64) };
            println!("edudrv: FAIL read {v:#x} from an unmapped address");
            ExitCode::UserFailure
        }
        Mode::Stale | Mode::Leak | Mode::Hog | Mode::Block => ExitCode::Success,
        Mode::Outlive => round15::outlive(info, &mut d, &a),
        Mode::Crash if gen == 1 => {
            println!("edudrv: crash: reading {:#x} while holding iova {:#x}", CRASH_ADDRESS, a.iova);
            // SAFETY: deliberately a read of an unmapped address: the CPU fault goes to
            // init, which applies the component's policy.
            let v = unsafe { core::ptr::read_volatile(CRASH_ADDRESS as *const u64) };
            println!("edudrv: FAIL read {v:#x} from an unmapped address");
            ExitCode::UserFailure
        }
        Mode::Crash => ExitCode::Success,
        Mode::RogueOutside if gen == 1 => {
            // A second buffer: its IOVA is stale once this instance is gone.
            match d.client.dma_alloc(PAGE_SIZE, rw) {
                Ok(b) => println!("edudrv: second buffer iova {:#x} (gen {gen})", b.iova),
                Err(e) => println!("edudrv: FAIL second dma_alloc: {e:?}"),
            }
            println!("edudrv: rogue-outside: programming edu to read iova {OUTSIDE_IOVA:#x} (outside the pool)");
            let _ = d.edu.to_device(OUTSIDE_IOVA, 0, 64);
            after_fault(&mut d, &a)
        }
        Mode::RogueTargets => targets::run(info, &mut d, &a),
        Mode::RogueOutside => {
            println!("edudrv: rogue-outside: reading the stale iova {STALE_IOVA:#x} of generation 1");
            let _ = d.edu.to_device(STALE_IOVA, 0, 64);
            after_fault(&mut d, &a)
        }
        Mode::UseFreed => {
            let iova = a.iova;
            match d.client.dma_free(&a) {
                Ok(pages) => println!("edudrv: use-freed: freed iova {iova:#x} ({pages} page)"),
                Err(e) => {
                    println!("edudrv: FAIL dma_free: {e:?}");
                    return ExitCode::UserFailure;
                }
            }
            // Copying the frame cap names its slot without invoking it (an empty slot
            // would be a cap fault): it fails once the server revoked the frame.
            let root = CNode(CNODE);
            let alive = CNode::copy(root.slot(d.free_slot), root.slot(a.frames.start), CapRights::READ).is_ok();
            println!("edudrv: use-freed: frame cap after free: {}", if alive { "ALIVE" } else { "revoked" });
            println!("edudrv: use-freed: programming edu to read the freed iova {iova:#x}");
            let _ = d.edu.to_device(iova, 0, 64);
            println!("edudrv: use-freed: transfer finished (the device read zeros: blocked)");
            ExitCode::Success
        }
    }
}

/// Waits (polling the server at the lowest priority, so management acts first) until
/// the device is cut off; a restart ends this instance before that.
pub(crate) fn after_fault(d: &mut Driver, a: &DmaBuffer) -> ExitCode {
    for _ in 0..VERDICT_POLLS {
        match d.client.config_read(pci::COMMAND, 2) {
            Err(IommuError::Status(IommuStatus::CutOff)) => {
                println!("edudrv: device cut off: the server refuses its requests (CutOff)");
                println!("edudrv: programming edu to read iova {:#x} after the cut-off", a.iova);
                let _ = d.edu.to_device(a.iova, 0, 64);
                println!("edudrv: transfer after the cut-off finished (blocked: no context entry)");
                return ExitCode::Success;
            }
            _ => ipc::yield_now(),
        }
    }
    println!("edudrv: FAIL no restart or cut-off after the fault (gen {})", d.gen);
    ExitCode::UserFailure
}

/// Generation 2 of `edudrv-stale`: names generation 1's buffers and sends malformed
/// requests; each must be refused with a status (never a fault in the server).
fn stale_requests(d: &mut Driver) {
    let call = |label: u64, mrs: [u64; 4]| ipc::call(d.endpoint, MessageInfo::new(label, 4), mrs).map(|m| m.mrs[0]);
    let tries: [(&str, u64, [u64; 4]); 8] = [
        ("free generation 1's first iova", IommuLabel::DmaFree.raw(), [IOVA_BASE, 0, 0, 0]),
        ("free generation 1's second iova", IommuLabel::DmaFree.raw(), [STALE_IOVA, 0, 0, 0]),
        ("frame of generation 1's buffer", IommuLabel::DmaFrame.raw(), [IOVA_BASE, 0, 0, 0]),
        ("free an unaligned iova", IommuLabel::DmaFree.raw(), [IOVA_BASE + 8, 0, 0, 0]),
        ("alloc 0 bytes", IommuLabel::DmaAlloc.raw(), [0, 3, 0, 0]),
        ("alloc with bad rights", IommuLabel::DmaAlloc.raw(), [4096, 0xff, 0, 0]),
        ("unknown label", 999, [u64::MAX; 4]),
        ("MSI 7", IommuLabel::MsiAlloc.raw(), [7, 0, 0, 0]),
    ];
    for (what, label, mrs) in tries {
        report_stale(what, call(label, mrs));
    }
}

fn report_stale(what: &str, status: Result<u64, abi::error::SyscallError>) {
    match status.map(IommuStatus::try_from) {
        Ok(Ok(IommuStatus::Ok)) => println!("edudrv: stale: {what}: ACCEPTED"),
        Ok(Ok(s)) => println!("edudrv: stale: {what}: refused ({s:?})"),
        Ok(Err(raw)) => println!("edudrv: stale: {what}: refused (status {raw})"),
        Err(e) => println!("edudrv: stale: {what}: FAIL ipc error {e:?}"),
    }
}

/// Asks for what the driver was not given; every attempt must be refused.
fn rogue_device(d: &mut Driver) {
    let label = |l: IommuLabel| MessageInfo::new(l.raw(), 4);
    // The supervisor's request through the driver's own (driver-badged) cap.
    let r = ipc::call(d.endpoint, label(IommuLabel::DriverCutoff), [0; 4]);
    report("DriverCutoff of device 0 through the driver's cap", r.map(|m| m.mrs[0]));
    // Another device's index as if it were a supervisor naming it.
    let r = ipc::call(d.endpoint, label(IommuLabel::DriverReset), [1, 0, 0, 0]);
    report("DriverReset of device 1 through the driver's cap", r.map(|m| m.mrs[0]));
    // Config space beyond the command register and MSI capability (BAR 0).
    let r = d.client.config_read(0x10, 4);
    println!(
        "edudrv: rogue-device: config read of BAR 0: {}",
        match r {
            Err(IommuError::Status(s)) => alloc_free_status(s),
            Ok(_) => "ACCEPTED",
            Err(_) => "refused (ipc)",
        }
    );
    // A client cap for another device: init gave none, so its CSpace holds none (a
    // CNode copy names the slot without invoking it: an empty slot is an error, not
    // a cap fault).
    let root = CNode(CNODE);
    let r = CNode::copy(root.slot(d.free_slot), root.slot(d.free_slot + 1), CapRights::ALL);
    match r {
        Ok(()) => println!("edudrv: rogue-device: a client cap for another device: ACCEPTED"),
        Err(e) => println!("edudrv: rogue-device: a client cap for another device: refused ({:?})", e.code),
    }
}

fn alloc_free_status(s: IommuStatus) -> &'static str {
    match s {
        IommuStatus::Denied => "refused (Denied)",
        IommuStatus::BadRequest => "refused (BadRequest)",
        _ => "refused (other status)",
    }
}

fn report(what: &str, status: Result<u64, abi::error::SyscallError>) {
    match status.map(IommuStatus::try_from) {
        Ok(Ok(IommuStatus::Ok)) => println!("edudrv: rogue-device: {what}: ACCEPTED"),
        Ok(Ok(s)) => println!("edudrv: rogue-device: {what}: refused ({s:?})"),
        Ok(Err(raw)) => println!("edudrv: rogue-device: {what}: refused (status {raw})"),
        Err(e) => println!("edudrv: rogue-device: {what}: refused ({e:?})"),
    }
}

/// Writes a pattern into the buffer, has edu copy it in and back out 2 KiB further on,
/// and checks it arrived.
pub(crate) fn round_trip(edu: &Edu, buffer: &DmaBuffer, pattern: u64) -> bool {
    let words = buffer.vaddr as *mut u64;
    for i in 0..8 {
        // SAFETY: the buffer is one page mapped read-write at `vaddr`; words 0..8 and
        // 256..264 lie inside it.
        unsafe {
            words.add(i).write_volatile(pattern + i as u64);
            words.add(256 + i).write_volatile(0);
        }
    }
    if edu.to_device(buffer.iova, 0, 64).is_err() || edu.to_ram(0, buffer.iova + 0x800, 64).is_err() {
        return false;
    }
    // SAFETY: as above.
    (0..8).all(|i| unsafe { words.add(256 + i).read_volatile() } == pattern + i as u64)
}

/// The driver's caps from its info page, an MSI, bus mastering on.
fn setup(info: &'static ComponentInfo) -> Result<Driver, &'static str> {
    let client =
        info.caps().iter().find(|c| c.kind() == Some(CapKind::IommuClient)).ok_or("no iommu-server client cap")?;
    let bar = info.cap_of(client.name(), CapKind::DeviceFrame).ok_or("no BAR frame for the device")?;
    let used = info.caps().iter().map(|c| c.slot).max().unwrap_or(0).max(BUDGET_UNTYPED + 6);
    // 64 KiB of the spare budget (whichever piece holds it) for the notification and
    // the page tables the client makes.
    let untyped = used + 1;
    let root = CNode(CNODE);
    (info.budget_untyped.start..info.budget_untyped.end)
        .find(|&u| Untyped(u).retype(ObjectType::Untyped, 16, root, 0, 0, untyped, 1).is_ok())
        .ok_or("no 64 KiB of spare untyped")?;
    let used = used + 1;
    let ntfn = used + 1;
    Untyped(untyped)
        .retype(ObjectType::Notification, 0, CNode(CNODE), 0, 0, ntfn, 1)
        .map_err(|_| "cannot make a notification")?;
    let space =
        ClientSpace { cnode: CNODE, vspace: VSpace(VSPACE), untyped, slots: used + 2..used + 258, vaddrs: DMA_VADDRS };
    let mut iommu = IommuClient::new(client.slot, space);
    let command = iommu.config_read(pci::COMMAND, 2).map_err(|_| "config read of the command register")?;
    iommu
        .config_write(pci::COMMAND, 2, command | pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER)
        .map_err(|_| "enable bus mastering (boot with iommu=allow-unremapped-dma on QEMU 7.2)")?;
    let (handler, msi) = iommu.msi().map_err(|e| {
        println!("edudrv: msi: {e:?}");
        "no MSI from the server"
    })?;
    // A badged copy for the handler: an unbadged signal leaves the word 0 and a poll
    // (the driver waits by polling, bounded) would never see it.
    let badged = used + 258;
    CNode::mint(root.slot(badged), root.slot(ntfn), CapRights::ALL, 1).map_err(|_| "mint the MSI badge")?;
    handler.set_notification(Notification(badged)).map_err(|_| "bind the MSI")?;
    println!("edudrv: device {} via the server: MSI vector {:#x}", client.name(), msi.vector);
    // SAFETY: init mapped the first page of edu's BAR 0 uncached at `bar.vaddr` for
    // this component alone, for its whole life.
    let regs: &'static EduRegisters = unsafe { EduRegisters::at(bar.vaddr) };
    let edu = Edu::new(regs, handler, Notification(ntfn));
    if !edu.present() {
        return Err("edu does not answer at its BAR");
    }
    Ok(Driver { client: iommu, edu, endpoint: client.slot, gen: info.generation, free_slot: used + 259 })
}
