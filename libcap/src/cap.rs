//! Typed capabilities: one Rust type per cap kind with its invocations.
//!
//! A capability is named by its address in the caller's CSpace ([`CPtr`]). Slots of
//! the root task's CNode are addressed with depth 64 (its guard covers the high bits),
//! so a slot index is also a valid [`CPtr`].

use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::IpcBuffer;
use abi::msginfo::MessageInfo;
use abi::object::ObjectType;
use abi::rights::CapRights;

use crate::syscall;

/// A capability address.
pub type CPtr = u64;

/// Depth that resolves a full capability address.
pub const FULL_DEPTH: u64 = 64;

/// A failed invocation: the kernel's error and its detail word (the failing argument
/// index, or address bits left for a lookup failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    /// What went wrong.
    pub code: SyscallError,
    /// Which argument.
    pub detail: u64,
}

/// Result of an invocation.
pub type Result<T> = core::result::Result<T, Error>;

/// The calling thread's IPC buffer. The FS base points at it (the kernel sets it at
/// Configure, and for the root task at boot) and its `user_data` word holds its own
/// address (written by the start code), so one FS-relative load finds it on every CPU,
/// with or without FSGSBASE.
#[cfg(target_os = "none")]
pub fn ipc_buffer() -> *mut IpcBuffer {
    let base: u64;
    // SAFETY: reads one word at the thread pointer: the mapped IPC buffer of every
    // thread that uses this (threads without a buffer never call it).
    unsafe {
        core::arch::asm!("mov {}, qword ptr fs:[{off}]", out(reg) base, off = const abi::ipc_buffer::SELF_OFFSET,
            options(nostack, preserves_flags, readonly));
    }
    base as *mut IpcBuffer
}

/// Host builds have no IPC buffer.
#[cfg(not(target_os = "none"))]
pub fn ipc_buffer() -> *mut IpcBuffer {
    core::ptr::null_mut()
}

/// Invokes `cap` with `label`, message registers `mrs` and extra caps `extra`.
pub fn invoke(cap: CPtr, label: Invocation, mrs: &[u64], extra: &[CPtr]) -> Result<[u64; 4]> {
    let buffer = ipc_buffer();
    for (i, &cptr) in extra.iter().enumerate().take(3) {
        // SAFETY: the IPC buffer page is mapped read-write for this thread.
        unsafe { (*buffer).caps_or_badges[i] = cptr };
    }
    for (i, &mr) in mrs.iter().enumerate().skip(4).take(116) {
        // SAFETY: as above.
        unsafe { (*buffer).msg[i] = mr };
    }
    let reg = |i: usize| mrs.get(i).copied().unwrap_or(0);
    invoke_written(cap, label, [reg(0), reg(1), reg(2), reg(3)], mrs.len(), extra.len())
}

/// As [`invoke`] for a message whose words from MR4 on the caller already wrote to the
/// IPC buffer (the batches, which would otherwise build and copy 67 words): `regs` are
/// MR0..MR3, `length` the message length, `extra_caps` the extra caps written.
fn invoke_written(cap: CPtr, label: Invocation, regs: [u64; 4], length: usize, extra_caps: usize) -> Result<[u64; 4]> {
    let info =
        MessageInfo { label: label.raw(), caps_unwrapped: 0, extra_caps: extra_caps as u8, length: length as u8 };
    let (rax, detail, results) = syscall::call(cap, info.to_word(), regs);
    if rax == 0 {
        Ok(results)
    } else {
        Err(Error { code: SyscallError::try_from(rax).unwrap_or(SyscallError::IllegalOperation), detail })
    }
}

/// An untyped memory region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Untyped(pub CPtr);
/// A CNode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CNode(pub CPtr);
/// A frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame(pub CPtr);
/// A page table, page directory or PDPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageTable(pub CPtr);
/// A VSpace root (PML4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VSpace(pub CPtr);
/// An endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint(pub CPtr);

impl Untyped {
    /// Creates `count` objects in slots `offset..offset+count` of the CNode found at
    /// (`root`, `node_index`, `node_depth`); depth 0 means `root` itself.
    #[allow(clippy::too_many_arguments)]
    pub fn retype(
        self,
        object_type: ObjectType,
        size_bits: u64,
        root: CNode,
        node_index: u64,
        node_depth: u64,
        offset: u64,
        count: u64,
    ) -> Result<()> {
        invoke(
            self.0,
            Invocation::UntypedRetype,
            &[object_type.raw(), size_bits, node_index, node_depth, offset, count],
            &[root.0],
        )
        .map(|_| ())
    }
}

/// A slot named by CNode, index and depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRef {
    /// The CNode to resolve from.
    pub root: CNode,
    /// Address within it.
    pub index: u64,
    /// Bits of `index` to resolve.
    pub depth: u64,
}

impl CNode {
    /// Slot `index` resolved with full depth.
    pub fn slot(self, index: u64) -> SlotRef {
        SlotRef { root: self, index, depth: FULL_DEPTH }
    }

    /// Copies `src` to the empty slot `dest` (a child of `src`) with at most `rights`.
    pub fn copy(dest: SlotRef, src: SlotRef, rights: CapRights) -> Result<()> {
        invoke(
            dest.root.0,
            Invocation::CNodeCopy,
            &[dest.index, dest.depth, src.index, src.depth, u64::from(rights.raw())],
            &[src.root.0],
        )
        .map(|_| ())
    }

    /// Like [`CNode::copy`], also setting a badge (endpoints, notifications) or a guard
    /// (`guard << 8 | guard_bits` for CNodes).
    pub fn mint(dest: SlotRef, src: SlotRef, rights: CapRights, badge: u64) -> Result<()> {
        invoke(
            dest.root.0,
            Invocation::CNodeMint,
            &[dest.index, dest.depth, src.index, src.depth, u64::from(rights.raw()), badge],
            &[src.root.0],
        )
        .map(|_| ())
    }

    /// Moves `src` to the empty slot `dest`.
    pub fn move_cap(dest: SlotRef, src: SlotRef) -> Result<()> {
        invoke(dest.root.0, Invocation::CNodeMove, &[dest.index, dest.depth, src.index, src.depth], &[src.root.0])
            .map(|_| ())
    }

    /// Moves `src` to `dest`, setting a badge or guard on the way.
    pub fn mutate(dest: SlotRef, src: SlotRef, data: u64) -> Result<()> {
        invoke(
            dest.root.0,
            Invocation::CNodeMutate,
            &[dest.index, dest.depth, src.index, src.depth, data],
            &[src.root.0],
        )
        .map(|_| ())
    }

    /// Moves `pivot` to `dest` and `src` to `pivot` (`dest == src` swaps them).
    pub fn rotate(dest: SlotRef, pivot: SlotRef, src: SlotRef) -> Result<()> {
        invoke(
            dest.root.0,
            Invocation::CNodeRotate,
            &[dest.index, dest.depth, pivot.index, pivot.depth, src.index, src.depth],
            &[pivot.root.0, src.root.0],
        )
        .map(|_| ())
    }

    /// Deletes the cap in `slot`.
    pub fn delete(slot: SlotRef) -> Result<()> {
        invoke(slot.root.0, Invocation::CNodeDelete, &[slot.index, slot.depth], &[]).map(|_| ())
    }

    /// Deletes every cap derived from the cap in `slot`.
    pub fn revoke(slot: SlotRef) -> Result<()> {
        invoke(slot.root.0, Invocation::CNodeRevoke, &[slot.index, slot.depth], &[]).map(|_| ())
    }
}

/// Frame map attribute: executable.
pub const ATTR_EXECUTABLE: u64 = 1 << 0;
/// Frame map attribute: uncached.
pub const ATTR_UNCACHED: u64 = 1 << 1;

impl Frame {
    /// Maps the frame at `vaddr` in `vspace`.
    pub fn map(self, vspace: VSpace, vaddr: u64, rights: CapRights, attributes: u64) -> Result<()> {
        invoke(self.0, Invocation::FrameMap, &[vaddr, u64::from(rights.raw()), attributes], &[vspace.0]).map(|_| ())
    }
    /// Removes the mapping this cap made.
    pub fn unmap(self) -> Result<()> {
        invoke(self.0, Invocation::FrameUnmap, &[], &[]).map(|_| ())
    }
    /// The frame's physical address.
    pub fn address(self) -> Result<u64> {
        invoke(self.0, Invocation::FrameGetAddress, &[], &[]).map(|r| r[0])
    }
    /// What the cap says of its frame: physical address, the virtual address this cap
    /// maps it at (0: none), size in bytes and whether it is device memory.
    pub fn info(self) -> Result<FrameInfo> {
        invoke(self.0, Invocation::FrameGetAddress, &[], &[]).map(|r| FrameInfo {
            paddr: r[0],
            vaddr: r[1],
            bytes: r[2],
            is_device: r[3] != 0,
        })
    }
}

/// [`Frame::info`]'s answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Physical address.
    pub paddr: u64,
    /// Where this cap maps it (0: not mapped).
    pub vaddr: u64,
    /// Size in bytes (4 KiB or 2 MiB).
    pub bytes: u64,
    /// Device memory (never DMA-mappable).
    pub is_device: bool,
}

impl PageTable {
    /// Installs the table for `vaddr` in `vspace`.
    pub fn map(self, vspace: VSpace, vaddr: u64) -> Result<()> {
        invoke(self.0, Invocation::PageTableMap, &[vaddr], &[vspace.0]).map(|_| ())
    }
    /// Uninstalls it.
    pub fn unmap(self) -> Result<()> {
        invoke(self.0, Invocation::PageTableUnmap, &[], &[]).map(|_| ())
    }
}

/// A thread control block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tcb(pub CPtr);
/// A notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notification(pub CPtr);

impl Tcb {
    /// Sets the thread's CSpace, VSpace, IPC buffer and fault endpoint (a cptr in its
    /// own CSpace, 0 for none).
    pub fn configure(
        self,
        fault_ep: CPtr,
        cspace: CNode,
        vspace: VSpace,
        ipc_buffer_vaddr: u64,
        ipc_frame: Frame,
    ) -> Result<()> {
        invoke(self.0, Invocation::TcbConfigure, &[fault_ep, ipc_buffer_vaddr], &[cspace.0, vspace.0, ipc_frame.0])
            .map(|_| ())
    }
    /// Like [`Tcb::configure`] without an IPC buffer: the thread's messages carry only
    /// the four register MRs and no caps.
    pub fn configure_without_buffer(self, fault_ep: CPtr, cspace: CNode, vspace: VSpace) -> Result<()> {
        invoke(self.0, Invocation::TcbConfigure, &[fault_ep, 0], &[cspace.0, vspace.0]).map(|_| ())
    }
    /// Writes registers (`abi::registers` order), optionally resuming the thread.
    pub fn write_registers(self, resume: bool, regs: &abi::registers::UserRegisters) -> Result<()> {
        let mut mrs = [0u64; 2 + abi::registers::USER_REGISTER_COUNT];
        mrs[0] = u64::from(resume);
        mrs[1] = abi::registers::USER_REGISTER_COUNT as u64;
        mrs[2..].copy_from_slice(&regs.to_array());
        invoke(self.0, Invocation::TcbWriteRegisters, &mrs, &[]).map(|_| ())
    }
    /// Reads registers, optionally suspending the thread first.
    pub fn read_registers(self, suspend: bool) -> Result<abi::registers::UserRegisters> {
        let count = abi::registers::USER_REGISTER_COUNT;
        invoke(self.0, Invocation::TcbReadRegisters, &[u64::from(suspend), count as u64], &[])?;
        let mut regs = [0u64; abi::registers::USER_REGISTER_COUNT];
        for (i, r) in regs.iter_mut().enumerate() {
            // SAFETY: the kernel wrote `count` words to this thread's IPC buffer.
            *r = unsafe { (*ipc_buffer()).msg[i] };
        }
        Ok(abi::registers::UserRegisters::from_array(regs))
    }
    /// Sets the thread pointer (FS base) of the thread; for the caller itself the
    /// register changes at once.
    pub fn set_tls_base(self, fs_base: u64) -> Result<()> {
        invoke(self.0, Invocation::TcbSetTlsBase, &[fs_base], &[]).map(|_| ())
    }

    /// Sets the thread's GS base (what `wrgsbase` does where the CPU allows it).
    pub fn set_gs_base(self, gs_base: u64) -> Result<()> {
        invoke(self.0, Invocation::TcbSetGsBase, &[gs_base], &[]).map(|_| ())
    }

    /// The thread's (FS base, GS base).
    pub fn tls_bases(self) -> Result<(u64, u64)> {
        invoke(self.0, Invocation::TcbGetTlsBase, &[], &[]).map(|r| (r[0], r[1]))
    }

    /// Makes an inactive thread runnable.
    pub fn resume(self) -> Result<()> {
        invoke(self.0, Invocation::TcbResume, &[], &[]).map(|_| ())
    }
    /// Stops the thread (cancels any IPC it waits in).
    pub fn suspend(self) -> Result<()> {
        invoke(self.0, Invocation::TcbSuspend, &[], &[]).map(|_| ())
    }
    /// Sets the priority; `authority`'s maximum controlled priority bounds it.
    pub fn set_priority(self, authority: Tcb, priority: u8) -> Result<()> {
        invoke(self.0, Invocation::TcbSetPriority, &[u64::from(priority)], &[authority.0]).map(|_| ())
    }
    /// Sets the maximum controlled priority; `authority`'s bounds it.
    pub fn set_mcp(self, authority: Tcb, mcp: u8) -> Result<()> {
        invoke(self.0, Invocation::TcbSetMcp, &[u64::from(mcp)], &[authority.0]).map(|_| ())
    }
    /// Binds a notification: its signals also wake the thread's endpoint receives.
    pub fn bind_notification(self, ntfn: Notification) -> Result<()> {
        invoke(self.0, Invocation::TcbBindNotification, &[], &[ntfn.0]).map(|_| ())
    }
    /// Unbinds the bound notification.
    pub fn unbind_notification(self) -> Result<()> {
        invoke(self.0, Invocation::TcbUnbindNotification, &[], &[]).map(|_| ())
    }
}

/// Authority to create IRQ handler caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqControl(pub CPtr);
/// Handling of one interrupt line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqHandler(pub CPtr);
/// Authority to create I/O port caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoPortControl(pub CPtr);
/// Access to a range of I/O ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoPort(pub CPtr);

/// An MSI the kernel set up for one PCI function: program `address` and `data` into
/// the function's MSI capability ([`PciDevice::enable_msi`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msi {
    /// The CPU vector it arrives on (informational).
    pub vector: u8,
    /// Remappable-format MSI address naming the vector's IRTE.
    pub address: u64,
    /// MSI data.
    pub data: u32,
}

impl IrqControl {
    /// Creates the handler cap for `irq` (ISA 0..15, or a GSI) in `dest`. Returns the GSI.
    pub fn get(self, irq: u64, dest: SlotRef) -> Result<u64> {
        invoke(self.0, Invocation::IrqControlGet, &[irq, dest.index, dest.depth], &[dest.root.0]).map(|r| r[0])
    }
    /// Creates an MSI handler cap in `dest` for an interrupt only `device` can raise
    /// (needs interrupt remapping; `IllegalOperation` without it).
    pub fn get_msi(self, device: PciDevice, dest: SlotRef) -> Result<Msi> {
        invoke(self.0, Invocation::IrqControlGetMsi, &[dest.index, dest.depth], &[dest.root.0, device.0]).map(|r| Msi {
            vector: r[0] as u8,
            address: r[1],
            data: r[2] as u32,
        })
    }
}

impl IrqControl {
    /// Creates the handler cap for MSI-X table entry `entry` of `device` in `dest`; the
    /// kernel writes the entry (masked) itself. Returns the vector.
    pub fn get_msix(self, device: PciDevice, entry: u64, dest: SlotRef) -> Result<u8> {
        invoke(self.0, Invocation::IrqControlGetMsix, &[dest.index, dest.depth, entry], &[dest.root.0, device.0])
            .map(|r| r[0] as u8)
    }
}

impl IrqHandler {
    /// MSI-X only: masks (`true`) or unmasks its table entry; returns the entry's
    /// pending bit before the change.
    pub fn msix_mask(self, masked: bool) -> Result<bool> {
        invoke(self.0, Invocation::IrqHandlerMsixMask, &[u64::from(masked)], &[]).map(|r| r[0] != 0)
    }
}

impl IrqHandler {
    /// Signals `ntfn` on every interrupt (and unmasks the line).
    pub fn set_notification(self, ntfn: Notification) -> Result<()> {
        invoke(self.0, Invocation::IrqHandlerSetNotification, &[], &[ntfn.0]).map(|_| ())
    }
    /// Re-enables the line after an interrupt was handled.
    pub fn ack(self) -> Result<()> {
        invoke(self.0, Invocation::IrqHandlerAck, &[], &[]).map(|_| ())
    }
    /// Masks the line and unbinds the notification.
    pub fn clear(self) -> Result<()> {
        invoke(self.0, Invocation::IrqHandlerClear, &[], &[]).map(|_| ())
    }
}

impl IoPortControl {
    /// Creates a cap for ports `first..=last` in `dest`.
    pub fn issue(self, first: u16, last: u16, dest: SlotRef) -> Result<()> {
        invoke(
            self.0,
            Invocation::IoPortControlIssue,
            &[first.into(), last.into(), dest.index, dest.depth],
            &[dest.root.0],
        )
        .map(|_| ())
    }
}

impl IoPort {
    /// Reads a byte.
    pub fn in8(self, port: u16) -> Result<u8> {
        invoke(self.0, Invocation::IoPortIn8, &[port.into()], &[]).map(|r| r[0] as u8)
    }
    /// Writes a byte.
    pub fn out8(self, port: u16, value: u8) -> Result<()> {
        invoke(self.0, Invocation::IoPortOut8, &[port.into(), value.into()], &[]).map(|_| ())
    }
    /// Reads a 32-bit word.
    pub fn in32(self, port: u16) -> Result<u32> {
        invoke(self.0, Invocation::IoPortIn32, &[port.into()], &[]).map(|r| r[0] as u32)
    }
    /// Writes a 32-bit word.
    pub fn out32(self, port: u16, value: u32) -> Result<()> {
        invoke(self.0, Invocation::IoPortOut32, &[port.into(), value.into()], &[]).map(|_| ())
    }
}

/// One PCI function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciDevice(pub CPtr);

impl PciDevice {
    /// Reads `width` (1, 2 or 4) bytes of its configuration space at `offset`.
    pub fn config_read(self, offset: u64, width: u64) -> Result<u64> {
        invoke(self.0, Invocation::PciDeviceConfigRead, &[offset, width], &[]).map(|r| r[0])
    }
    /// Writes its command register.
    pub fn write_command(self, value: u16) -> Result<()> {
        self.config_write(abi::pci::COMMAND, 2, u64::from(value))
    }
    /// Writes `width` bytes at `offset` (the kernel allows the command register and,
    /// with interrupt remapping, the MSI capability's registers).
    pub fn config_write(self, offset: u64, width: u64, value: u64) -> Result<()> {
        invoke(self.0, Invocation::PciDeviceConfigWrite, &[offset, width, value], &[]).map(|_| ())
    }
    /// Offset of its capability with id `id` (0x05 MSI, 0x11 MSI-X); the walk is
    /// `abi::pci::find_capability`.
    pub fn find_capability(self, id: u8) -> Result<Option<u64>> {
        abi::pci::find_capability(|offset, width| self.config_read(offset, width), id)
    }
    /// Its MSI-X capability as the kernel offers it.
    pub fn msix_info(self) -> Result<abi::pci::MsixInfo> {
        invoke(self.0, Invocation::PciDeviceMsixInfo, &[], &[]).map(abi::pci::MsixInfo::from_words)
    }
    /// Memory BAR `n` (0..=5) as the kernel measured it at boot: `(base, size)`, size 0
    /// if there is no memory BAR `n`.
    pub fn bar_info(self, n: u64) -> Result<(u64, u64)> {
        invoke(self.0, Invocation::PciDeviceBarInfo, &[n], &[]).map(|r| (r[0], r[1]))
    }
    /// Writes MSI-X Enable / Function Mask (`abi::pci::MSIX_ENABLE`, `MSIX_FUNCTION_MASK`).
    pub fn msix_control(self, control: u64) -> Result<()> {
        invoke(self.0, Invocation::PciDeviceMsixControl, &[control], &[]).map(|_| ())
    }
    /// Programs `msi` into its MSI capability (one vector) and enables MSI. Returns
    /// `Ok(false)` if the function has no usable MSI capability.
    pub fn enable_msi(self, msi: &Msi) -> Result<bool> {
        let Some(at) = self.find_capability(abi::pci::CAPABILITY_MSI)? else { return Ok(false) };
        let control = self.config_read(at + 2, 2)?;
        let Some(regs) = abi::pci::MsiRegisters::at(at, control) else { return Ok(false) };
        let write = |(offset, width): (u64, u64), value| self.config_write(offset, width, value);
        write(regs.address_low, msi.address & 0xffff_ffff)?;
        if let Some(high) = regs.address_high {
            write(high, msi.address >> 32)?;
        }
        write(regs.data, u64::from(msi.data))?;
        // One vector (MME 0), enabled.
        write(regs.control, (control & !(7 << 4)) | 1)?;
        Ok(true)
    }
}

/// A DMA address space (VT-d domain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoSpace(pub CPtr);
/// One level of an IOSpace's translation tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoPageTable(pub CPtr);

impl IoSpace {
    /// Puts `device` in this DMA domain.
    pub fn assign(self, device: PciDevice) -> Result<()> {
        invoke(self.0, Invocation::IoSpaceAssign, &[], &[device.0]).map(|_| ())
    }
    /// Takes `device` out (its DMA is blocked again).
    pub fn unassign(self, device: PciDevice) -> Result<()> {
        invoke(self.0, Invocation::IoSpaceUnassign, &[], &[device.0]).map(|_| ())
    }
    /// Puts `device` and the `others` of its DMA alias group (bootinfo `alias_group`)
    /// in this DMA domain: the group is the unit of assignment.
    pub fn assign_group(self, device: PciDevice, others: &[PciDevice]) -> Result<()> {
        self.group_call(Invocation::IoSpaceAssign, device, others)
    }
    /// Takes `device` and the `others` of its alias group out.
    pub fn unassign_group(self, device: PciDevice, others: &[PciDevice]) -> Result<()> {
        self.group_call(Invocation::IoSpaceUnassign, device, others)
    }
    fn group_call(self, label: Invocation, device: PciDevice, others: &[PciDevice]) -> Result<()> {
        let mut mrs = [0u64; 64];
        let n = others.len().min(mrs.len() - 1);
        mrs[0] = n as u64;
        for (mr, other) in mrs[1..].iter_mut().zip(&others[..n]) {
            *mr = other.0;
        }
        invoke(self.0, label, &mrs[..=n], &[device.0]).map(|_| ())
    }
}

impl IoPageTable {
    /// Installs the table at the first missing level for `iova` in `iospace`.
    pub fn map(self, iospace: IoSpace, iova: u64) -> Result<()> {
        invoke(self.0, Invocation::IoPageTableMap, &[iova], &[iospace.0]).map(|_| ())
    }
    /// Uninstalls it.
    pub fn unmap(self) -> Result<()> {
        invoke(self.0, Invocation::IoPageTableUnmap, &[], &[]).map(|_| ())
    }
}

impl Frame {
    /// Makes the frame reachable by the devices of `iospace` at `iova` with `rights`.
    pub fn map_io(self, iospace: IoSpace, iova: u64, rights: CapRights) -> Result<()> {
        invoke(self.0, Invocation::FrameMapIo, &[iova, u64::from(rights.raw())], &[iospace.0]).map(|_| ())
    }
    /// Removes the IO mapping; the IOTLB invalidation has completed when this returns.
    pub fn unmap_io(self) -> Result<()> {
        invoke(self.0, Invocation::FrameUnmapIo, &[], &[]).map(|_| ())
    }
}

impl IoSpace {
    /// DMA faults of this IOSpace's devices signal `ntfn` (a notification) or are sent to
    /// a thread waiting on `handler` (an endpoint cap).
    pub fn set_fault_handler(self, handler: CPtr) -> Result<()> {
        invoke(self.0, Invocation::IoSpaceSetFaultHandler, &[], &[handler]).map(|_| ())
    }

    /// Pops this IOSpace's oldest queued DMA fault record (with the count of faults
    /// lost since the last call). `Err` with `abi::fault::NEXT_FAULT_EMPTY`
    /// (FailedLookup) when nothing is queued and nothing was lost. A fault handler
    /// calls it until then after each signal or `DmaFault` message.
    pub fn next_fault(self) -> Result<abi::fault::NextFault> {
        invoke(self.0, Invocation::IoSpaceNextFault, &[], &[]).map(abi::fault::NextFault::decode)
    }
}

/// Writes the cap addresses of `frames` to the IPC buffer's message words from `first`.
fn write_batch_words(frames: &[Frame], first: usize) {
    let buffer = ipc_buffer();
    // SAFETY: the IPC buffer page is mapped read-write for this thread; callers pass at
    // most 64 frames from word 4, inside the 120 message words (the slice index checks).
    let words = unsafe { &mut (&mut (*buffer).msg)[first..first + frames.len()] };
    for (w, f) in words.iter_mut().zip(frames) {
        *w = f.0;
    }
}

impl IoSpace {
    /// Maps `frames` (4 KiB each, at most 64) at consecutive pages from `iova`: all are
    /// checked before any is mapped.
    pub fn map_batch(self, iova: u64, rights: CapRights, frames: &[Frame]) -> Result<()> {
        // MR0..2 iova, rights, count; the caps from MR3 (in a register) on.
        let sent = &frames[..frames.len().min(64)];
        write_batch_words(&sent[sent.len().min(1)..], 4);
        let regs = [iova, u64::from(rights.raw()), frames.len() as u64, sent.first().map_or(0, |f| f.0)];
        invoke_written(self.0, Invocation::IoSpaceMapBatch, regs, 3 + sent.len(), 0).map(|_| ())
    }
    /// Removes the IO mappings of `frames` in this IOSpace with one completed invalidation.
    pub fn unmap_batch(self, frames: &[Frame]) -> Result<()> {
        // MR0 count; the caps from MR1 (in registers up to MR3) on.
        let sent = &frames[..frames.len().min(64)];
        write_batch_words(&sent[sent.len().min(3)..], 4);
        let cap = |i: usize| sent.get(i).map_or(0, |f| f.0);
        let regs = [frames.len() as u64, cap(0), cap(1), cap(2)];
        invoke_written(self.0, Invocation::IoSpaceUnmapBatch, regs, 1 + sent.len(), 0).map(|_| ())
    }
}
