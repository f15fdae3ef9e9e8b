//! MSI-X checks with two virtio-net functions (MSI-X only, behind the IOMMU).
//!
//! MSI-X with two modern virtio-net functions A and B (`iommu_platform=on,
//! disable-legacy=on`; virtio-pci interrupts only by MSI-X). The kernel reports each
//! function's MSI-X capability, keeps the table and PBA pages out of device untyped,
//! programs entries itself (masked, remappable format) and alone writes the message
//! control. The interrupt is virtio's configuration-change vector, raised by QEMU when
//! the device finds a driver error (a queue_enable write of 0 after DRIVER_OK sets
//! DEVICE_NEEDS_RESET and notifies the config vector): no rings, no DMA needed.
//! Shown: the vector fires; a stale entry of A naming a vector now handed to B raises
//! nothing (the IRTE checks the requester id); deleting a vector's cap blocks it (the
//! entry is masked: the message waits in the PBA and arrives when a new cap unmasks it).

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::error::SyscallError;
use libcap::abi::exit::ExitCode;
use libcap::abi::object::ObjectType;
use libcap::abi::pci::{self, MsixInfo, MSIX_ENABLE};
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, IrqControl, IrqHandler, Notification, PciDevice, ATTR_UNCACHED};
use libcap::check::Checker;
use libcap::device::DeviceMemory;
use libcap::ipc;
use libcap::println;

/// Where each function's virtio common configuration page is mapped.
const COMMON_VADDR: u64 = 0x0000_4000_0200_0000;
/// Polls before an interrupt counts as not delivered (QEMU sends it before the
/// triggering store retires).
const POLLS: u32 = 20_000;
/// virtio status bits.
const ACKNOWLEDGE: u8 = 1;
const DRIVER: u8 = 2;
const DRIVER_OK: u8 = 4;
const FEATURES_OK: u8 = 8;
const NEEDS_RESET: u8 = 0x40;
/// Config-change raises back to back, enough for more than 64 to land in one tick.
const BURST: u32 = 400;

/// Whether the boot found a modern virtio-net function (this scenario).
pub fn present(bi: &BootInfo) -> bool {
    bi.pci_devices().iter().any(|d| d.vendor_id == 0x1af4 && d.device_id == 0x1041)
}

/// One virtio function: its PciDevice cap, MSI-X capability and common config.
struct Virtio {
    pci: PciDevice,
    info: MsixInfo,
    common: u64,
}

fn bar_address(pci: PciDevice, n: u8) -> u64 {
    let at = 0x10 + 4 * u64::from(n);
    let low = pci.config_read(at, 4).unwrap_or(0);
    let high = if low & 6 == 4 { pci.config_read(at + 4, 4).unwrap_or(0) } else { 0 };
    (high << 32) | (low & !0xf)
}

/// The (BAR, offset) of the virtio common configuration (vendor capability type 1).
fn common_cfg(pci: PciDevice) -> Option<(u8, u64)> {
    let mut at = pci.config_read(pci::CAPABILITY_POINTER, 1).ok()? & !3;
    for _ in 0..pci::MAX_CAPABILITIES {
        if !(0x40..0x100).contains(&at) {
            return None;
        }
        let header = pci.config_read(at, 2).ok()?;
        if header & 0xff == 0x09 && pci.config_read(at + 3, 1).ok()? == 1 {
            return Some((pci.config_read(at + 4, 1).ok()? as u8, pci.config_read(at + 8, 4).ok()?));
        }
        at = (header >> 8) & !3;
    }
    None
}

impl Virtio {
    fn reg<T>(&self, offset: u64) -> *mut T {
        (self.common + offset) as *mut T
    }
    fn write8(&self, offset: u64, v: u8) {
        // SAFETY: `common` maps the device's common configuration page uncached.
        unsafe { self.reg::<u8>(offset).write_volatile(v) }
    }
    fn read8(&self, offset: u64) -> u8 {
        // SAFETY: as in `write8`.
        unsafe { self.reg::<u8>(offset).read_volatile() }
    }
    fn write16(&self, offset: u64, v: u16) {
        // SAFETY: as in `write8`.
        unsafe { self.reg::<u16>(offset).write_volatile(v) }
    }
    fn write32(&self, offset: u64, v: u32) {
        // SAFETY: as in `write8`.
        unsafe { self.reg::<u32>(offset).write_volatile(v) }
    }

    /// Resets the device, negotiates VERSION_1 + ACCESS_PLATFORM, points the config
    /// vector at MSI-X entry `entry`, sets DRIVER_OK and writes 0 to queue_enable:
    /// QEMU calls that a driver error, sets NEEDS_RESET and notifies the config vector.
    /// Returns whether the device reports NEEDS_RESET.
    fn raise_config(&self, entry: u16) -> bool {
        self.write8(0x14, 0);
        let mut spins = 0;
        while self.read8(0x14) != 0 && spins < 1000 {
            spins += 1;
        }
        self.write8(0x14, ACKNOWLEDGE | DRIVER);
        self.write32(0x08, 1);
        self.write32(0x0c, 0b11); // bits 32 (VERSION_1) and 33 (ACCESS_PLATFORM)
        self.write32(0x08, 0);
        self.write32(0x0c, 0);
        self.write8(0x14, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        self.write16(0x10, entry);
        self.write8(0x14, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        self.write16(0x16, 0);
        self.write16(0x1c, 0);
        self.read8(0x14) & NEEDS_RESET != 0
    }
}

fn setup(
    c: &mut Checker,
    slots: &SlotAllocator,
    dm: &mut DeviceMemory,
    objects: &mut ObjectAllocator,
    pci: PciDevice,
    n: u64,
    name: &str,
) -> Option<Virtio> {
    let info = pci.msix_info();
    c.check(&alloc::format!("{name}: the kernel reports its MSI-X capability"), info.is_ok());
    let info = info.ok()?;
    println!(
        "dmatest: virtio {name}: MSI-X at {:#x}, {} entries, table BAR {} + {:#x}, PBA BAR {} + {:#x}, control {:#x}",
        info.at, info.table_size, info.table_bar, info.table_offset, info.pba_bar, info.pba_offset, info.control
    );
    let table = bar_address(pci, info.table_bar) + info.table_offset;
    let pba = bar_address(pci, info.pba_bar) + info.pba_offset;
    c.check(
        &alloc::format!("{name}: no device frame covers its MSI-X table page"),
        dm.frame_at(slots, table).is_none(),
    );
    c.check(&alloc::format!("{name}: no device frame covers its PBA page"), dm.frame_at(slots, pba).is_none());
    c.check(
        &alloc::format!("{name}: a ConfigWrite to the MSI-X message control is refused"),
        pci.config_write(info.at + 2, 2, MSIX_ENABLE).map_err(|e| e.code) == Err(SyscallError::InvalidArgument),
    );
    let (bar, offset) = common_cfg(pci)?;
    let paddr = bar_address(pci, bar) + offset;
    let frame = dm.frame_at(slots, paddr & !0xfff);
    let vaddr = COMMON_VADDR + n * 0x10_0000;
    c.check(
        &alloc::format!("{name}: the rest of the BARs stays mappable (common config page)"),
        frame.is_some_and(|f| map_frame(objects, slots, f, vaddr, CapRights::ALL, ATTR_UNCACHED).is_ok()),
    );
    Some(Virtio { pci, info, common: vaddr + (paddr & 0xfff) })
}

fn notification(slots: &SlotAllocator, objects: &mut ObjectAllocator, badge: u64) -> Notification {
    let root = CNode(slots::INIT_CNODE);
    let object = objects.alloc(slots, ObjectType::Notification, 0).expect("notification");
    let badged = slots.alloc().expect("slot");
    CNode::mint(root.slot(badged), root.slot(object), CapRights::ALL, badge).expect("mint");
    Notification(badged)
}

/// Runs the MSI-X checks.
pub fn run(bi: &BootInfo, c: &mut Checker, slots: &SlotAllocator, objects: &mut ObjectAllocator) -> ExitCode {
    let root = CNode(slots::INIT_CNODE);
    let found: alloc::vec::Vec<usize> =
        (0..bi.pci_devices().len()).filter(|&i| bi.pci_devices()[i].device_id == 0x1041).collect();
    c.check("two virtio-net functions", found.len() == 2);
    if found.len() != 2 {
        return c.finish();
    }
    let mut dm = DeviceMemory::new(bi);
    let cap = |i: usize| PciDevice(bi.pci_device_caps.start + found[i] as u64);
    let (Some(a), Some(b)) =
        (setup(c, slots, &mut dm, objects, cap(0), 0, "A"), setup(c, slots, &mut dm, objects, cap(1), 1, "B"))
    else {
        return c.finish();
    };
    let control = IrqControl(slots::IRQ_CONTROL);
    let get = |v: &Virtio, entry: u64| {
        let slot = slots.alloc().expect("slot");
        control.get_msix(v.pci, entry, root.slot(slot)).map(|vector| (IrqHandler(slot), vector))
    };
    let command = a.pci.config_read(pci::COMMAND, 2).unwrap_or(0) as u16;
    let _ = a.pci.write_command(command & !(pci::COMMAND_MEMORY as u16));
    c.check(
        "GetMsix with memory decoding off is refused",
        get(&a, 0).map(|_| ()).map_err(|e| e.code) == Err(SyscallError::IllegalOperation),
    );
    for v in [&a, &b] {
        let command = v.pci.config_read(pci::COMMAND, 2).unwrap_or(0) as u16;
        let on = (pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER) as u16;
        c.check("enable memory decoding and bus mastering", v.pci.write_command(command | on).is_ok());
    }
    c.check(
        "GetMsix past the table is refused",
        get(&a, a.info.table_size).map(|_| ()).map_err(|e| e.code) == Err(SyscallError::RangeError),
    );
    c.check(
        "MsixControl with another bit is refused",
        a.pci.msix_control(1).map_err(|e| e.code) == Err(SyscallError::InvalidArgument),
    );
    let ntfn_a = notification(slots, objects, 0xa);
    let ntfn_b = notification(slots, objects, 0xb);
    let Ok((ha, va)) = get(&a, 0) else {
        c.check("GetMsix for A's entry 0", false);
        return c.finish();
    };
    println!("dmatest: A's MSI-X entry 0 on vector {va:#x}");
    c.check(
        "a second cap for the same entry is refused",
        get(&a, 0).map(|_| ()).map_err(|e| e.code) == Err(SyscallError::RevokeFirst),
    );
    c.check("bind A's vector", ha.set_notification(ntfn_a).is_ok());
    c.check("enable MSI-X on A", a.pci.msix_control(MSIX_ENABLE).is_ok());
    c.check("A's message control reads enabled", a.pci.msix_info().is_ok_and(|i| i.control & MSIX_ENABLE != 0));
    c.check("unmask A's entry 0", ha.msix_mask(false).is_ok());
    c.check("A reports the driver error (NEEDS_RESET)", a.raise_config(0));
    c.check("A's config-change interrupt arrives on A's MSI-X vector", ipc::poll_within(ntfn_a.0, POLLS) == 0xa);

    // A stale entry: with A's memory decoding off, the kernel's clearing write on the
    // delete is dropped, so A's entry 0 keeps naming the IRTE of the freed vector,
    // which B's entry 0 gets next. A raising it must reach nobody.
    let command = a.pci.config_read(pci::COMMAND, 2).unwrap_or(0) as u16;
    let _ = a.pci.write_command(command & !(pci::COMMAND_MEMORY as u16));
    c.check("delete A's handler cap (A not decoding)", CNode::delete(root.slot(ha.0)).is_ok());
    let _ = a.pci.write_command(command);
    let Ok((hb, vb)) = get(&b, 0) else {
        c.check("GetMsix for B's entry 0", false);
        return c.finish();
    };
    println!("dmatest: B's MSI-X entry 0 on vector {vb:#x}");
    c.check("B's entry 0 gets the vector A's stale entry names", vb == va);
    c.check("bind B's vector", hb.set_notification(ntfn_b).is_ok());
    c.check("enable MSI-X on B", b.pci.msix_control(MSIX_ENABLE).is_ok() && hb.msix_mask(false).is_ok());
    c.check("A reports the driver error again", a.raise_config(0));
    c.check("A's stale entry naming B's vector raises nothing", ipc::poll_within(ntfn_b.0, POLLS) == 0);
    c.check("B reports the driver error (NEEDS_RESET)", b.raise_config(0));
    c.check("B's own config-change interrupt arrives on B's vector", ipc::poll_within(ntfn_b.0, POLLS) == 0xb);

    // Deleting B's cap masks and clears its entry and removes the IRTE.
    c.check("delete B's handler cap", CNode::delete(root.slot(hb.0)).is_ok());
    c.check("B reports the driver error again", b.raise_config(0));
    c.check("after the delete B's interrupt is blocked", ipc::poll_within(ntfn_b.0, POLLS) == 0);
    let Ok((hb2, _)) = get(&b, 0) else {
        c.check("GetMsix for B's entry 0 again", false);
        return c.finish();
    };
    c.check("bind B's new cap", hb2.set_notification(ntfn_b).is_ok());
    let pending = hb2.msix_mask(false);
    c.check("the blocked message waited in the PBA (entry masked, pending)", pending == Ok(true));
    c.check("unmasking the reprogrammed entry delivers it", ipc::poll_within(ntfn_b.0, POLLS) == 0xb);
    // The per-tick limit applies as for MSI: a burst of raises past 64 in one tick
    // suspends the vector's IRTE (the kernel logs it), and a later tick restores it.
    for _ in 0..BURST {
        b.raise_config(0);
    }
    let _ = ipc::poll(ntfn_b.0);
    let mut back = false;
    for _ in 0..10 {
        let deadline = libcap::deadline::Deadline::after(60_000_000);
        while !deadline.passed() {}
        if b.raise_config(0) && ipc::poll_within(ntfn_b.0, POLLS) == 0xb {
            back = true;
            break;
        }
    }
    c.check("after a burst of raises B's vector works again on a later tick", back);
    c.check("masking an MSI handler's entry is refused for a plain MSI", {
        let slot = slots.alloc().expect("slot");
        control.get_msi(b.pci, root.slot(slot)).is_ok()
            && IrqHandler(slot).msix_mask(true).map_err(|e| e.code) == Err(SyscallError::IllegalOperation)
    });
    c.check("disable MSI-X on B", b.pci.msix_control(0).is_ok());
    c.finish()
}
