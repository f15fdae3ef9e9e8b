//! Init builds the described system: plan, budgets, build, connect, start.
//!
//! `run` looks for the boot image's `system` entry, checks it again (`SystemDesc::parse`),
//! makes the plan (every refusal before anything is built), carves each component's
//! budget into child untyped init keeps, builds every component, gives each the caps
//! the description names (channels, regions, devices, supervisor), prints the authority
//! summary and the `graph:` lines, starts them all and becomes their supervisor.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use libcap::abi::bootimage::BootImage;
use libcap::abi::bootinfo::BootInfo;
use libcap::abi::component::{CapEntry, CapKind, DOORBELL_INIT, SUPERVISOR_BADGE};
use libcap::abi::exit::ExitCode;
use libcap::abi::layout::PAGE_SIZE;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::abi::system::{ChannelKind, ComponentRole, SystemDesc, NONE, SYSTEM_ENTRY};
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, CPtr, Frame, IoPortControl, IrqControl, Msi, PciDevice, Result};
use libcap::println;

use crate::build::{self, root, Budget, Built, Piece};
use crate::plan::{self, bdf, Plan};

/// Where a component stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Started and not stopped.
    Running,
    /// Its `main` returned.
    Exited,
    /// Faulted under `log` (left suspended), cut off, or out of restarts.
    Down,
}

/// One component as the supervisor sees it.
pub struct Comp {
    /// Its budget (the pieces are its parent caps: revoke them and it is gone).
    pub budget: Budget,
    /// Its objects and info page.
    pub built: Built,
    /// 1, +1 per restart.
    pub generation: u32,
    /// Restarts so far.
    pub restarts: u32,
    /// State.
    pub status: Status,
    /// DMA pools just built, (device plan index, init slot), until handed over.
    pub pools: Vec<(usize, CPtr)>,
    /// The init slots its build and its connection took (in that order): a restart
    /// empties and reuses exactly these, so restarts cost init no slots.
    pub windows: [core::ops::Range<u64>; 2],
}

/// Consecutive device frames of a BAR: (page offset in the BAR, frame caps in order).
pub type FrameRun = (u64, Vec<CPtr>);

/// Init-owned objects several components share.
pub struct Shared {
    /// The one endpoint init receives faults and supervisor requests on.
    pub fault_ep: CPtr,
    /// Per channel: its endpoint or notification.
    pub channels: Vec<CPtr>,
    /// Per region: its frames.
    pub regions: Vec<Vec<CPtr>>,
    /// The iommu-server's endpoint (0 without devices).
    pub iommu_ep: CPtr,
    /// Per device: the slot of its DMA pool in the iommu-server's CNode (0 if none).
    pub pool_slots: Vec<u64>,
    /// Per device, per memory BAR (by number): runs of device frames (page offset in
    /// the BAR, frames in order); the MSI-X table and PBA pages fall between runs.
    pub bar_frames: Vec<Vec<(u8, Vec<FrameRun>)>>,
    /// Per device: its MSI handler caps (init keeps them; the iommu-server gets copies).
    pub msis: Vec<Vec<(CPtr, Msi)>>,
    /// Per component: the fault doorbell init binds to a management component's TCB
    /// and init's own signal cap to it (badge `DOORBELL_INIT`); `(0, 0)` for others.
    pub doorbells: Vec<(CPtr, CPtr)>,
    /// Per ISA device: init's handler for its interrupt line (`crate::isa`).
    pub isa_lines: crate::isa::Lines,
}

/// CPU-fault reports init keeps for one handler until it fetches them.
#[derive(Default)]
pub struct ReportQueue {
    /// `[component, kind, at, action]`, oldest first.
    pub queue: alloc::collections::VecDeque<[u64; 4]>,
    /// Reports dropped (queue full) since the handler's last fetch.
    pub lost: u64,
}

/// Everything the supervisor needs.
pub struct System<'a> {
    /// The plan (description, components, devices).
    pub plan: Plan<'a>,
    /// The shared objects.
    pub shared: Shared,
    /// Per component.
    pub comps: Vec<Comp>,
    /// The system's name.
    pub name: &'a str,
    /// Bootinfo.
    pub bi: &'a BootInfo,
    /// Per component: CPU-fault reports queued for it as a fault handler.
    pub reports: Vec<ReportQueue>,
}

/// Builds and runs the system in the boot image, or returns None if there is none.
pub fn run(
    bi: &'static BootInfo,
    image_bytes: &'static [u8],
    slots: &SlotAllocator,
    objects: &mut ObjectAllocator<'_>,
) -> Option<ExitCode> {
    let image = match BootImage::parse(image_bytes) {
        Ok(i) => i,
        Err(e) => {
            println!("init: boot image unreadable: {e:?}: nothing started");
            return Some(ExitCode::UserFailure);
        }
    };
    let entry = image.files().find(|f| f.name == SYSTEM_ENTRY)?;
    let desc = match SystemDesc::parse(entry.data) {
        Ok(d) => d,
        Err(e) => {
            println!("init: {e}: nothing started");
            return Some(ExitCode::UserFailure);
        }
    };
    let name = desc.name();
    let plan = match plan::make(bi, &image, desc) {
        Ok(p) => p,
        Err(msg) => {
            println!("init: system '{name}': {msg}: nothing started");
            return Some(ExitCode::UserFailure);
        }
    };
    let mut system = match construct(bi, plan, slots, objects) {
        Ok(s) => s,
        Err(msg) => {
            println!("init: system '{name}': {msg}: nothing started");
            return Some(ExitCode::UserFailure);
        }
    };
    summary(&system);
    for (i, c) in system.comps.iter_mut().enumerate() {
        if let Err(e) = build::start(&c.built) {
            println!("init: cannot start component #{i}: {e:?}");
            return Some(ExitCode::UserFailure);
        }
    }
    println!("init: system '{name}' started: {} components", system.comps.len());
    Some(crate::supervisor::supervise(&mut system, slots))
}

/// Carves budgets, builds and connects every component; no component runs yet.
fn construct<'a>(
    bi: &'a BootInfo,
    plan: Plan<'a>,
    slots: &SlotAllocator,
    objects: &mut ObjectAllocator<'_>,
) -> core::result::Result<System<'a>, String> {
    let desc = plan.desc;
    let oom = |what: &str, e| format!("not enough RAM for {what} ({e:?})");
    // Budgets: every piece of every component, largest first (no alignment waste).
    let mut all: Vec<(u8, usize)> =
        plan.components.iter().enumerate().flat_map(|(i, c)| c.pieces.iter().map(move |&b| (b, i))).collect();
    all.sort_unstable_by_key(|b| core::cmp::Reverse(b.0));
    let mut budgets: Vec<Budget> = plan.components.iter().map(|_| Budget { pieces: Vec::new() }).collect();
    for (bits, i) in all {
        // From the top of RAM: DMA pools (carved from budgets) lie above 4 GiB when
        // there is RAM there; the iommu-server remaps them below the device's mask.
        let cap = objects
            .alloc_high(slots, ObjectType::Untyped, u64::from(bits))
            .map_err(|e| oom(&format!("the budget of '{}'", plan.components[i].name), e))?;
        budgets[i].pieces.push(Piece { cap, bits, used: 0 });
    }
    // Init's scratch page (where it fills component frames) gets its page tables now.
    let scratch = objects.alloc(slots, ObjectType::Frame4K, 0).map_err(|e| oom("the scratch page", e))?;
    libcap::alloc::map_frame(objects, slots, Frame(scratch), build::SCRATCH_VADDR, CapRights::ALL, 0)
        .and_then(|()| Frame(scratch).unmap())
        .map_err(|e| format!("cannot map init's scratch page ({e:?})"))?;
    // Init's own objects: the fault endpoint, channels, region frames, iommu endpoint.
    let fault_ep = objects.alloc(slots, ObjectType::Endpoint, 0).map_err(|e| oom("the fault endpoint", e))?;
    let mut channels = Vec::new();
    for ch in desc.channels().iter() {
        let ty =
            if ch.kind == ChannelKind::Notification.raw() { ObjectType::Notification } else { ObjectType::Endpoint };
        // A channel that shares another's notification gets that object (below).
        let own = if ch.shares == NONE { objects.alloc(slots, ty, 0).map_err(|e| oom("a channel", e))? } else { 0 };
        channels.push(own);
    }
    // The description checked that a shared channel is a notification of the same
    // server, and that the one it names shares nothing itself.
    for (k, ch) in desc.channels().iter().enumerate() {
        if ch.shares != NONE {
            channels[k] = channels[usize::from(ch.shares)];
        }
    }
    let mut regions = Vec::new();
    for r in desc.regions().iter() {
        let mut frames = Vec::new();
        for _ in 0..r.size_bytes.div_ceil(4096) {
            frames.push(objects.alloc(slots, ObjectType::Frame4K, 0).map_err(|e| oom("a region", e))?);
        }
        regions.push(frames);
    }
    let iommu_ep = if desc.header().iommu_server != NONE {
        objects.alloc(slots, ObjectType::Endpoint, 0).map_err(|e| oom("the iommu endpoint", e))?
    } else {
        0
    };
    // Device frames over each described device's BARs, from device untyped.
    let mut device_memory = libcap::device::DeviceMemory::new(bi);
    let mut bar_frames = Vec::new();
    for d in plan.devices.iter() {
        let mut frames = Vec::new();
        for b in &d.bars {
            let mut runs: Vec<FrameRun> = Vec::new();
            let mut pages = b.pages().peekable();
            while let Some(offset) = pages.next() {
                // A run of consecutive pages (no hole inside), taken piece by piece.
                let mut end = offset + PAGE_SIZE;
                while pages.peek() == Some(&end) {
                    pages.next();
                    end += PAGE_SIZE;
                }
                let mut frames = Vec::new();
                let mut at = offset;
                while at < end {
                    let (first, count) =
                        device_memory.frames_from(slots, b.base + at, (end - at) / PAGE_SIZE).ok_or_else(|| {
                            format!(
                                "device '{}': BAR{} page {:#x} is not in device untyped",
                                desc.str(d.rec.name),
                                b.bar,
                                b.base + at
                            )
                        })?;
                    frames.extend(first..first + count);
                    at += count * PAGE_SIZE;
                }
                runs.push((offset, frames));
            }
            frames.push((b.bar, runs));
        }
        bar_frames.push(frames);
    }
    // The MSIs each device may use, bound to it (interrupt remapping checks the source).
    let mut msis = Vec::new();
    for d in plan.devices.iter() {
        let mut handlers = Vec::new();
        for n in 0..d.rec.msi_count {
            let slot = slots.alloc().map_err(|e| oom("an MSI slot", e))?;
            let device = PciDevice(bi.pci_device_caps.start + d.pci as u64);
            let made = if msix_only(device) {
                msix_handler(device, u16::from(n), root(slot))
            } else {
                IrqControl(slots::IRQ_CONTROL).get_msi(device, root(slot))
            };
            let msi = made.map_err(|e| {
                format!(
                    "device '{}': MSI {} of {} refused ({:?})",
                    desc.str(d.rec.name),
                    n + 1,
                    d.rec.msi_count,
                    e.code
                )
            })?;
            handlers.push((slot, msi));
        }
        msis.push(handlers);
    }
    // A fault doorbell per management component: reports wait in queues (init's, the
    // iommu-server's) and a signal, which latches, tells the handler to fetch them.
    let mut doorbells = Vec::new();
    for c in plan.components.iter() {
        if ComponentRole::try_from(c.rec.role) != Ok(ComponentRole::Management) {
            doorbells.push((0, 0));
            continue;
        }
        let ntfn = objects.alloc(slots, ObjectType::Notification, 0).map_err(|e| oom("a fault doorbell", e))?;
        let mine = slots.alloc().map_err(|e| oom("a doorbell slot", e))?;
        CNode::mint(root(mine), root(ntfn), CapRights::WRITE, DOORBELL_INIT)
            .map_err(|e| format!("cannot mint the fault doorbell ({e:?})"))?;
        doorbells.push((ntfn, mine));
    }
    let isa_lines = crate::isa::take_lines(&desc, slots, &doorbells)?;
    let pool_slots = alloc::vec![0; plan.devices.len()];
    let shared = Shared { fault_ep, channels, regions, iommu_ep, pool_slots, bar_frames, msis, doorbells, isa_lines };
    let mut comps = Vec::new();
    for (i, mut budget) in budgets.into_iter().enumerate() {
        let first = slots.peek();
        let (built, pools) = build_one(&plan, i, &mut budget, slots, 1, &shared)
            .map_err(|e| format!("building '{}' failed ({e:?})", plan.components[i].name))?;
        let windows = [first..slots.peek(), 0..0];
        let c = Comp { budget, built, generation: 1, restarts: 0, status: Status::Running, pools, windows };
        comps.push(c);
    }
    let name = desc.name();
    let reports = comps.iter().map(|_| ReportQueue::default()).collect();
    let mut system = System { plan, shared, comps, name, bi, reports };
    for i in 0..system.comps.len() {
        let first = slots.peek();
        connect(&mut system, i, slots)
            .map_err(|e| format!("connecting '{}' failed ({e:?})", system.plan.components[i].name))?;
        system.comps[i].windows[1] = first..slots.peek();
    }
    for i in 0..system.comps.len() {
        hand_pools(&mut system, i).map_err(|e| format!("handing the DMA pools over failed ({e:?})"))?;
    }
    Ok(system)
}

/// Whether `device` interrupts by MSI-X only (NVMe, virtio-pci): it has an MSI-X
/// capability the kernel offers and no MSI capability.
fn msix_only(device: PciDevice) -> bool {
    device.msix_info().is_ok() && device.find_capability(libcap::abi::pci::CAPABILITY_MSI).ok().flatten().is_none()
}

/// The handler of MSI-X table entry `entry` of `device`, recorded as an [`Msi`] with
/// address 0 (no MSI address: the kernel wrote the entry) and `data` = the entry.
/// GetMsix needs memory decoding on: it is turned on first if firmware left it off.
fn msix_handler(device: PciDevice, entry: u16, dest: libcap::cap::SlotRef) -> libcap::cap::Result<Msi> {
    let command = device.config_read(libcap::abi::pci::COMMAND, 2)?;
    if command & libcap::abi::pci::COMMAND_MEMORY == 0 {
        device.write_command((command | libcap::abi::pci::COMMAND_MEMORY) as u16)?;
    }
    let vector = IrqControl(slots::IRQ_CONTROL).get_msix(device, u64::from(entry), dest)?;
    Ok(Msi { vector, address: 0, data: u32::from(entry) })
}

/// Builds component `i`'s objects (not its named caps); returns its DMA pool untyped.
pub fn build_one(
    plan: &Plan<'_>,
    i: usize,
    budget: &mut Budget,
    slots: &SlotAllocator,
    generation: u32,
    shared: &Shared,
) -> Result<(Built, Vec<(usize, CPtr)>)> {
    let devs: Vec<usize> =
        plan.devices.iter().enumerate().filter(|(_, d)| usize::from(d.rec.driver) == i).map(|(k, _)| k).collect();
    let pools: Vec<u32> = devs.iter().map(|&k| plan::pool_bits(plan.devices[k].rec.dma_pool_bytes)).collect();
    let mut maps = Vec::new();
    for &(m, vaddr) in &plan.components[i].region_vaddrs {
        let Some(map) = plan.desc.region_maps().get(m) else { continue };
        let rights = if map.writable != 0 { CapRights::ALL } else { CapRights::READ };
        maps.push(build::RegionMapping { frames: &shared.regions[usize::from(map.region)], vaddr, rights });
    }
    for &(k, bar, vaddr) in &plan.components[i].bar_vaddrs {
        if let Some(f) = shared.bar_frames[k].iter().find(|f| f.0 == bar) {
            for (offset, run) in &f.1 {
                maps.push(build::RegionMapping { frames: run, vaddr: vaddr + offset, rights: CapRights::ALL });
            }
        }
    }
    let (built, caps) = build::build(&plan.components[i], budget, slots, generation, &pools, &maps, shared.fault_ep)?;
    Ok((built, devs.into_iter().zip(caps).collect()))
}

/// Moves component `driver`'s fresh DMA pools into the iommu-server's CNode (the same
/// slot each time, so the server's info page stays right across driver restarts).
pub fn hand_pools(system: &mut System<'_>, driver: usize) -> Result<()> {
    let server = usize::from(system.plan.desc.header().iommu_server);
    let pools = core::mem::take(&mut system.comps[driver].pools);
    if server >= system.comps.len() {
        return Ok(());
    }
    for (k, pool) in pools {
        let d = system.plan.devices[k].rec;
        let index = system.plan.devices[k].index;
        let s = &mut system.comps[server].built;
        if system.shared.pool_slots[k] == 0 {
            let mut e = CapEntry::new(system.plan.desc.str(d.name), CapKind::Untyped, CapRights::ALL.raw(), 0);
            e.size = 1u64 << plan::pool_bits(d.dma_pool_bytes);
            e.badge = u64::from(index);
            system.shared.pool_slots[k] = s.next_slot;
            build::give_moved(s, pool, e)?;
        } else {
            CNode::move_cap(s.space.slot(system.shared.pool_slots[k]), root(pool))?;
        }
    }
    Ok(())
}

/// Issues an I/O port cap for each of `ranges` and moves it to the component as an
/// `IoPort` entry named `name` (a PCI device's ports, an ISA device's).
pub fn give_ports(
    built: &mut Built,
    slots: &SlotAllocator,
    name: &str,
    ranges: impl Iterator<Item = libcap::abi::system::PortRange>,
) -> Result<()> {
    for r in ranges {
        let tmp = slots.alloc()?;
        IoPortControl(slots::IOPORT_CONTROL).issue(r.first, r.last, root(tmp))?;
        let mut e = CapEntry::new(name, CapKind::IoPort, CapRights::ALL.raw(), 0);
        e.vaddr = u64::from(r.first);
        e.size = u64::from(r.last - r.first) + 1;
        build::give_moved(built, tmp, e)?;
    }
    Ok(())
}

/// Gives component `i` the named caps the description lists (rebuilt on restart).
pub fn connect(system: &mut System<'_>, i: usize, slots: &SlotAllocator) -> Result<()> {
    let desc = system.plan.desc;
    let me = i as u16;
    let shared = &system.shared;
    let generation = system.comps[i].generation;
    let built = &mut system.comps[i].built;
    for (k, ch) in desc.channels().iter().enumerate() {
        let kind = if ch.kind == ChannelKind::Notification.raw() { CapKind::Notification } else { CapKind::Endpoint };
        let name = desc.str(ch.name);
        if ch.client == me {
            let rights = if kind == CapKind::Endpoint {
                CapRights::WRITE.union(CapRights::GRANT).union(CapRights::GRANT_REPLY)
            } else {
                CapRights::WRITE
            };
            let mut e = CapEntry::new(name, kind, 0, 0);
            e.badge = ch.badge;
            build::give(built, shared.channels[k], e, rights, ch.badge)?;
        }
        if ch.server == me {
            // The waiter of a notification may also signal it: only itself hears, and a
            // badged copy lets it bind its own interrupts to the same object, so one
            // blocking wait covers its clients and its device (as Microkit's PDs do).
            let rights =
                if kind == CapKind::Notification { CapRights::READ.union(CapRights::WRITE) } else { CapRights::READ };
            build::give(built, shared.channels[k], CapEntry::new(name, kind, 0, 0), rights, 0)?;
        }
    }
    for &(m, vaddr) in &system.plan.components[i].region_vaddrs {
        let Some(map) = desc.region_maps().get(m) else { continue };
        let rights = if map.writable != 0 { CapRights::ALL } else { CapRights::READ };
        let r = desc.regions().get(usize::from(map.region)).unwrap_or_default();
        let mut e = CapEntry::new(desc.str(r.name), CapKind::Region, rights.raw(), 0);
        e.vaddr = vaddr;
        e.size = r.size_bytes;
        build::list(built, e)?;
    }
    for r in desc.filter_rules().iter().filter(|r| r.filter == me) {
        let mut e = CapEntry::new(desc.str(r.client), CapKind::FilterRule, 0, 0);
        e.size = r.word();
        build::list(built, e)?;
    }
    let h = desc.header();
    let role = ComponentRole::try_from(system.plan.components[i].rec.role);
    let supervises = h.supervisor == me || role == Ok(ComponentRole::Management);
    if supervises && shared.iommu_ep != 0 {
        // The iommu-server's supervisor requests (DriverReset / DriverCutoff).
        let rights = CapRights::WRITE.union(CapRights::GRANT).union(CapRights::GRANT_REPLY);
        let e = CapEntry::new("iommu", CapKind::IommuClient, 0, 0);
        // Badged with its index: the server serves it only for the devices it handles.
        let badge = libcap::abi::iommu::supervisor_badge(me);
        build::give(built, shared.iommu_ep, CapEntry { badge, ..e }, rights, badge)?;
    }
    if supervises {
        let rights = CapRights::WRITE.union(CapRights::GRANT_REPLY);
        build::give(
            built,
            shared.fault_ep,
            CapEntry::new("supervisor", CapKind::Supervisor, 0, 0),
            rights,
            SUPERVISOR_BADGE | u64::from(me),
        )?;
    }
    if h.iommu_server == me {
        // All rights: it receives on it and mints badged copies (IOSpace fault handlers).
        build::give(built, shared.iommu_ep, CapEntry::new("iommu", CapKind::Endpoint, 0, 0), CapRights::ALL, 0)?;
    }
    for (k, d) in system.plan.devices.iter().enumerate() {
        let name = desc.str(d.rec.name);
        if h.iommu_server == me {
            let mut e = CapEntry::new(name, CapKind::PciDevice, 0, 0);
            e.badge = u64::from(d.index);
            e.size = u64::from(d.rec.dma_mask_bits);
            build::give(built, system.bi.pci_device_caps.start + d.pci as u64, e, CapRights::ALL, 0)?;
            for &(handler, msi) in &shared.msis[k] {
                // Address 0: an MSI-X entry (`msix_handler`), `data` its table entry.
                let kind = if msi.address == 0 { CapKind::Msix } else { CapKind::Msi };
                let mut e = CapEntry::new(name, kind, 0, 0);
                e.vaddr = msi.address;
                e.size = u64::from(msi.data) | u64::from(msi.vector) << 32;
                e.badge = u64::from(d.index);
                build::give(built, handler, e, CapRights::ALL, 0)?;
            }
        }
        if d.rec.driver == me {
            let rights = CapRights::WRITE.union(CapRights::GRANT).union(CapRights::GRANT_REPLY);
            let mut e = CapEntry::new(name, CapKind::IommuClient, 0, 0);
            // The instance's generation in the badge: the server drops an older
            // instance's records when a newer one first calls (abi::iommu).
            e.badge = libcap::abi::iommu::driver_badge(d.index, generation);
            build::give(built, shared.iommu_ep, e, rights, e.badge)?;
            for &(k, bar, vaddr) in &system.plan.components[i].bar_vaddrs {
                if system.plan.devices[k].index != d.index {
                    continue;
                }
                let mut e = CapEntry::new(name, CapKind::DeviceFrame, CapRights::ALL.raw(), 0);
                e.vaddr = vaddr;
                e.size = system.plan.devices[k].bars.iter().find(|b| b.bar == bar).map_or(0, |b| b.size);
                e.badge = u64::from(bar);
                // A copy of the BAR's first page's cap (a VMM maps it into its guest);
                // none when that page is not the driver's (an MSI-X table page).
                let first = shared.bar_frames[k].iter().find(|f| f.0 == bar).and_then(|f| f.1.first());
                match first.filter(|run| run.0 == 0).and_then(|run| run.1.first()) {
                    Some(&frame) => build::give(built, frame, e, CapRights::ALL, 0)?,
                    None => build::list(built, e)?,
                }
            }
            give_ports(built, slots, name, desc.port_ranges(d.rec.ports).iter())?;
        }
    }
    crate::isa::connect(system, i, slots)?;
    crate::grants::connect_extra(system, i)
}

/// Prints the one-screen authority summary and the `graph:` lines.
fn summary(system: &System<'_>) {
    let desc = system.plan.desc;
    println!(
        "init: system '{}': {} components, {} channels, {} regions, {} devices",
        system.name,
        system.comps.len(),
        desc.channels().len(),
        desc.regions().len(),
        system.plan.devices.len()
    );
    for (i, c) in system.comps.iter().enumerate() {
        let p = &system.plan.components[i];
        let mut line = String::new();
        for e in c.built.info.caps() {
            let Some(kind) = e.kind().filter(|&k| k != CapKind::Peer) else { continue };
            let what = match kind {
                CapKind::Endpoint | CapKind::Notification if e.rights & CapRights::READ.raw() != 0 => "recv",
                CapKind::Endpoint | CapKind::Notification => "send",
                CapKind::Region if e.rights & CapRights::WRITE.raw() != 0 => "rw",
                CapKind::Region => "ro",
                _ => "",
            };
            let sep = if line.is_empty() { "" } else { ", " };
            if what.is_empty() {
                line.push_str(&format!("{sep}{} {}", build::kind_name(kind), e.name()));
            } else {
                line.push_str(&format!("{sep}{} {} ({what})", build::kind_name(kind), e.name()));
            }
        }
        for d in system.plan.devices.iter().filter(|d| usize::from(d.rec.driver) == i) {
            let sep = if line.is_empty() { "" } else { ", " };
            let pci = system_pci(system.bi, d.pci);
            line.push_str(&format!("{sep}device {} {} via iommu-server", desc.str(d.rec.name), pci));
        }
        if line.is_empty() {
            line.push_str("no caps");
        }
        println!(
            "authority: {}: {line}; budget {} KiB (build {} KiB planned, spare {} KiB), prio {} mcp {}",
            p.name,
            p.rec.budget_bytes / 1024,
            p.need.div_ceil(1024),
            c.built.spare_bytes / 1024,
            p.rec.priority,
            p.rec.mcp
        );
    }
    // The authority edges: printed as `graph:` lines, and for a status page.
    let edges = graph_edges(system);
    for (from, to, what) in &edges {
        println!("graph: {from} -> {to} [{what}]");
    }
    crate::graph_page::publish(system, &edges);
}

/// The authority edges init granted as `graph:` lines print them (without the
/// prefix): served to management's `graph` command (`SUPERVISOR_GRAPH_LINE`).
pub fn graph_lines(system: &System<'_>) -> Vec<String> {
    graph_edges(system).iter().map(|(from, to, what)| format!("{from} -> {to} [{what}]")).collect()
}

/// The authority edges init granted: channels, region maps, each device's IOSpace and
/// pool, ISA devices.
fn graph_edges(system: &System<'_>) -> Vec<crate::graph_page::Edge> {
    let desc = system.plan.desc;
    let mut edges: Vec<crate::graph_page::Edge> = Vec::new();
    for ch in desc.channels().iter() {
        let client = system.plan.components[usize::from(ch.client)].name;
        let server = system.plan.components[usize::from(ch.server)].name;
        let kind = if ch.kind == ChannelKind::Notification.raw() { "ntfn" } else { "ep" };
        edges.push((client.into(), server.into(), format!("{kind} {} badge {}", desc.str(ch.name), ch.badge)));
    }
    for map in desc.region_maps().iter() {
        let c = system.plan.components[usize::from(map.component)].name;
        let r = desc.regions().get(usize::from(map.region)).map_or("?", |r| desc.str(r.name));
        edges.push((c.into(), format!("region:{r}"), String::from(if map.writable != 0 { "rw" } else { "ro" })));
    }
    let server = desc.header().iommu_server;
    for d in system.plan.devices.iter() {
        let driver = system.plan.components[usize::from(d.rec.driver)].name;
        let name = desc.str(d.rec.name);
        if let Some(s) = system.plan.components.get(usize::from(server)) {
            let pci = system_pci(system.bi, d.pci);
            edges.push((s.name.into(), format!("device:{name}"), format!("pci {pci}, iospace")));
            edges.push((driver.into(), s.name.into(), format!("dma {name}, pool {} KiB", d.rec.dma_pool_bytes / 1024)));
        }
    }
    crate::isa::graph_edges(system, &mut edges);
    edges
}

fn system_pci(bi: &BootInfo, index: usize) -> String {
    bi.pci_devices().get(index).map_or_else(|| String::from("?"), |p| bdf(p.bus, p.devfn))
}
