//! Invocation labels and each operation's message layout.
//!
//! Invocation labels: the operation requested when a capability is invoked with
//! [`crate::syscall::Syscall::Call`] (label in the message info), and each operation's
//! message layout.

crate::abi_enum! {
    /// What an invocation asks of the invoked object.
    pub enum Invocation: u64 {
        /// Untyped: create objects. MRs: type, size_bits, dest CNode depth, dest index,
        /// count; extra cap 0: destination CNode.
        UntypedRetype = 1,
        /// CNode: Revoke(index, depth): delete every cap derived from the slot's cap.
        CNodeRevoke = 2,
        /// CNode: Delete(index, depth).
        CNodeDelete = 3,
        /// CNode: Copy(dest index, dest depth, src index, src depth, rights); extra cap 0: src CNode.
        CNodeCopy = 4,
        /// CNode: Mint(dest index, dest depth, src index, src depth, rights, badge); extra cap 0: src CNode.
        CNodeMint = 5,
        /// CNode: Move(dest index, dest depth, src index, src depth); extra cap 0: src CNode.
        CNodeMove = 6,
        /// CNode: Mutate(dest index, dest depth, src index, src depth, guard); extra cap 0: src CNode.
        CNodeMutate = 7,
        /// CNode: Rotate(dest, dest depth, pivot, pivot depth, src, src depth); extra caps: pivot root, src root.
        CNodeRotate = 8,
        /// CNode: CancelBadgedSends(index, depth): abort every send blocked with that badged endpoint cap's badge.
        CNodeCancelBadgedSends = 9,
        /// Frame: Map(vaddr, rights, attributes); extra cap 0: VSpace.
        FrameMap = 20,
        /// Frame: Unmap().
        FrameUnmap = 21,
        /// Frame: GetAddress() -> (physical address, virtual address this cap maps it at or 0,
        /// size in bytes, 1 if device memory).
        FrameGetAddress = 22,
        /// Page-table level: Map(vaddr); extra cap 0: VSpace.
        PageTableMap = 23,
        /// Page-table level: Unmap().
        PageTableUnmap = 24,
        /// TCB: Configure(fault endpoint cptr, IPC buffer vaddr); extra caps: CSpace root,
        /// VSpace root, IPC buffer frame.
        TcbConfigure = 30,
        /// TCB: WriteRegisters(resume, count, registers...) in [`crate::registers`] order.
        TcbWriteRegisters = 31,
        /// TCB: ReadRegisters(suspend, count) -> registers in the caller's IPC buffer message area.
        TcbReadRegisters = 32,
        /// TCB: Resume().
        TcbResume = 33,
        /// TCB: Suspend().
        TcbSuspend = 34,
        /// TCB: SetPriority(priority); extra cap 0: the authority TCB whose MCP bounds it.
        TcbSetPriority = 35,
        /// TCB: SetMCPriority(mcp); extra cap 0: the authority TCB.
        TcbSetMcp = 36,
        /// TCB: BindNotification(); extra cap 0: the notification.
        TcbBindNotification = 37,
        /// TCB: UnbindNotification().
        TcbUnbindNotification = 38,
        /// TCB: SetTlsBase(fs base): the thread pointer, for CPUs whose user mode cannot
        /// write it (no FSGSBASE). Configure already sets it to the IPC buffer address.
        /// A non-canonical value is `InvalidArgument`.
        TcbSetTlsBase = 39,
        /// TCB: SetGsBase(gs base), as SetTlsBase for the GS base.
        TcbSetGsBase = 29,
        /// TCB: GetTlsBase() -> (fs base, gs base) of the thread (the live registers
        /// when it is the caller).
        TcbGetTlsBase = 28,
        /// IRQControl: Get(irq, dest index, dest depth); extra cap 0: dest CNode root.
        /// ISA IRQs 0..15 are translated through the MADT overrides; 16.. are GSIs.
        IrqControlGet = 40,
        /// IRQHandler: Ack(): unmask the line after handling one interrupt.
        IrqHandlerAck = 41,
        /// IRQHandler: SetNotification(); extra cap 0: notification signalled on each interrupt.
        IrqHandlerSetNotification = 42,
        /// IRQHandler: Clear(): mask the line and forget the notification.
        IrqHandlerClear = 43,
        /// IOPortControl: Issue(first, last, dest index, dest depth); extra cap 0: dest CNode root.
        IoPortControlIssue = 44,
        /// IOPort: In8(port) -> value.
        IoPortIn8 = 45,
        /// IOPort: In16(port) -> value.
        IoPortIn16 = 46,
        /// IOPort: In32(port) -> value.
        IoPortIn32 = 47,
        /// IOPort: Out8(port, value).
        IoPortOut8 = 48,
        /// IOPort: Out16(port, value).
        IoPortOut16 = 49,
        /// IOPort: Out32(port, value).
        IoPortOut32 = 50,
        /// IRQControl: GetMsi(dest index, dest depth) -> (vector, MSI address, MSI data);
        /// extra cap 0: dest CNode root, extra cap 1: the PciDevice allowed to raise it.
        /// Needs interrupt remapping: the vector's IRTE accepts only that device's
        /// requester id. The driver writes the returned address and data into the
        /// device's MSI capability (PciDevice ConfigWrite allows exactly that).
        IrqControlGetMsi = 51,
        /// IRQControl: GetMsix(dest index, dest depth, entry) -> (vector, entry); extra cap
        /// 0: dest CNode root, extra cap 1: the PciDevice whose MSI-X table entry `entry`
        /// the vector is for. Needs interrupt remapping and the function's memory
        /// decoding on. The kernel writes the entry itself (remappable-format address
        /// and data naming an IRTE that accepts only that device's requester id) and
        /// leaves it masked: `IrqHandlerMsixMask(0)` unmasks it. An entry that already
        /// has a handler cap is `RevokeFirst`. Deleting the last cap masks the entry,
        /// clears its address and data, and removes the IRTE.
        IrqControlGetMsix = 52,
        /// IRQHandler of an MSI-X entry: MsixMask(masked 0/1) -> pending bit of the entry
        /// before the change (from the Pending Bit Array, which no driver can map).
        IrqHandlerMsixMask = 53,
        /// PciDevice: ConfigRead(offset, width 1/2/4) -> value, in the function's own
        /// configuration space.
        PciDeviceConfigRead = 60,
        /// PciDevice: ConfigWrite(offset, width, value). Writable: the command register
        /// (offset 4, width 2) and, while interrupt remapping is on, the MSI capability's
        /// control, address and data registers (a device can only raise interrupts whose
        /// IRTE names it, so any address it is given is harmless). BARs stay as firmware set them.
        PciDeviceConfigWrite = 61,
        /// PciDevice: MsixInfo() -> [`crate::pci::MsixInfo`] words: the function's MSI-X
        /// capability (table size, BAR and offset of the table and of the PBA, message
        /// control). `FailedLookup` if it has none, or none the kernel could take out
        /// of device untyped at boot.
        PciDeviceMsixInfo = 62,
        /// PciDevice: MsixControl(control): writes MSI-X Enable and Function Mask (no
        /// other bit may be set; `InvalidArgument`). The only way to write the MSI-X
        /// message control. Enabling first masks every table entry no handler cap owns.
        /// Needs interrupt remapping and, to enable, memory decoding on.
        PciDeviceMsixControl = 63,
        /// PciDevice: BarInfo(n 0..=5) -> (base, size): memory BAR `n` as the kernel
        /// measured it at boot (BARs never move). Size 0: no memory BAR there (an I/O
        /// BAR, unassigned, or the top half of a 64-bit BAR). `RangeError` for n > 5.
        PciDeviceBarInfo = 64,
        /// IOSpace: Assign(n, cptr...); extra cap 0: the PciDevice to put in this DMA
        /// domain, with its whole alias group: MR0 (absent = 0) is the number n of the
        /// group's other members and MR1..=n the cptrs of their PciDevice caps (see
        /// `bootinfo::PciDeviceDesc::alias_group`). The context entries of every member
        /// and every alias requester id are written, then the context cache and IOTLB
        /// invalidated. A set that is not exactly the group is InvalidArgument.
        IoSpaceAssign = 70,
        /// IOSpace: Unassign(n, cptr...); extra cap 0 and MRs as for Assign: the group
        /// is taken out (all its DMA blocked again).
        IoSpaceUnassign = 71,
        /// IOPageTable: Map(iova); extra cap 0: the IOSpace. Installs the table at the level below
        /// the lowest present one for `iova`.
        IoPageTableMap = 72,
        /// IOPageTable: Unmap().
        IoPageTableUnmap = 73,
        /// Frame: MapIO(iova, rights); extra cap 0: the IOSpace. Non-device frames only.
        FrameMapIo = 74,
        /// Frame: UnmapIO(): removes the IO mapping; returns after the IOTLB invalidation completed.
        FrameUnmapIo = 75,
        /// IOSpace: SetFaultHandler(); extra cap 0: a notification (signalled with its badge
        /// on each DMA fault; the records wait in the kernel's fault queue) or an endpoint
        /// (receives a `DmaFault` message with the IOSpace's oldest queued record if a
        /// thread waits on it when the fault is drained; else the record stays queued).
        IoSpaceSetFaultHandler = 76,
        /// IOSpace: MapBatch(iova, rights, count, frame cptrs...): maps `count` (1..=64)
        /// 4 KiB frames at consecutive pages from `iova`; all are checked before any is mapped.
        IoSpaceMapBatch = 77,
        /// IOSpace: UnmapBatch(count, frame cptrs...): removes the frames' IO mappings in
        /// this IOSpace with one IOTLB invalidation, completed before return.
        IoSpaceUnmapBatch = 78,
        /// IOSpace: NextFault() -> 4 words: pops this IOSpace's oldest queued DMA fault
        /// record (see `fault::NextFault` for the words: requester, reason, write,
        /// has-more, IOVA, faults lost since the last NextFault). Nothing queued and
        /// nothing lost: `fault::NEXT_FAULT_EMPTY` (FailedLookup). Only this IOSpace's
        /// records: another domain's are never visible.
        IoSpaceNextFault = 79,
        /// DebugConsole: PutChar(byte): print one byte (0..=255) on the kernel console.
        DebugPutChar = 80,
        /// DebugConsole: Write(user address, length): print `length` (at most
        /// [`DEBUG_WRITE_MAX`]) bytes of the caller's memory on the kernel console. Every
        /// page must be mapped user-readable and be RAM (a device frame is
        /// `InvalidUserPointer`); nothing is printed unless all of it is.
        DebugWrite = 81,
        /// DebugConsole: Halt(code): end the whole system with exit code `code` (at most
        /// [`DEBUG_HALT_MAX`]; see [`crate::exit`]). Returns only if refused.
        DebugHalt = 82,
        /// DebugConsole: IommuCounters() -> 2 words: second-level leaf entries written or
        /// cleared, and IOTLB invalidations completed, since boot (all domains). Needs no
        /// right; `make bench` reads it around a batch of frames (IOMMU work per packet).
        DebugIommuCounters = 83,
        /// DebugConsole: KernelStretch() -> the longest time the kernel ran with
        /// interrupts off (a trap's dispatch to its return; a guest's time inside
        /// VcpuRun excluded) since the last KernelStretch, in time-stamp ticks (guest
        /// instructions under QEMU's `-icount shift=0`); starts a new measurement.
        /// `IllegalOperation` unless the kernel command line has `latency=on`.
        DebugKernelStretch = 84,
        /// VCPU: Run([rip, [rax]]); extra cap 0: the GuestSpace to run in. MR0 (if
        /// sent) replaces the guest RIP, ending any interrupt shadow (the instruction
        /// before it was emulated), and MR1 the guest RAX first (resuming after an
        /// emulated instruction costs no WriteRegs). Enters the guest and returns at
        /// the next exit the kernel does not handle itself, with the exit record
        /// ([`crate::vcpu::VmExit`], [`crate::vcpu::EXIT_WORDS`] words) in the
        /// caller's IPC buffer message area; its first four words are also the
        /// result registers. `IllegalOperation` without an IPC buffer.
        VcpuRun = 90,
        /// VCPU: ReadRegs(first, count) -> guest registers `first..first+count` in
        /// [`crate::vcpu::VcpuReg`] order, in the caller's IPC buffer message area.
        VcpuReadRegs = 91,
        /// VCPU: WriteRegs(first, count, values...): sets guest registers. Values the
        /// virtualization hardware would refuse are kept (the next Run reports an
        /// `Invalid` exit); EFER always keeps the bit the hardware needs (SVME). Writing
        /// RIP drops an event delivery the last exit interrupted and any interrupt
        /// shadow (the guest is elsewhere now; a VMM resetting a VCPU writes RIP).
        VcpuWriteRegs = 92,
        /// VCPU: InjectIrq(vector 32..=255): makes the external interrupt `vector`
        /// pending; the guest takes it when its RFLAGS.IF allows (one pending at a
        /// time: a second before the first is taken replaces it). `RangeError` for a
        /// vector below 32.
        VcpuInjectIrq = 93,
    }
}

/// Longest buffer one `DebugWrite` accepts; longer writes fail with `RangeError`.
pub const DEBUG_WRITE_MAX: u64 = 4096;
/// Largest exit code `DebugHalt` accepts (QEMU's debug-exit status is one byte).
pub const DEBUG_HALT_MAX: u64 = 0x7f;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for i in Invocation::ALL {
            assert_eq!(Invocation::try_from(i.raw()), Ok(*i));
        }
        assert!(Invocation::try_from(0).is_err());
    }
}
