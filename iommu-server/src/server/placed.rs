//! Frames a driver places at IOVAs it names, and DMA fault reports for the driver.
//!
//! A VMM mirrors guest memory for its assigned device: it sends each guest RAM frame
//! (a cap it holds, transferred with Grant into the server's inbox slot) with the IOVA
//! = guest-physical address (`DmaMapFrame`). The server checks the cap is a 4 KiB RAM
//! frame and the IOVA free (`Domain::map_client`), maps its copy and keeps it; the
//! device can then reach exactly those frames. `FaultWatch` gives the server a
//! notification it signals (NBSend, after a liveness probe: an IPC on a slot the
//! driver's restart emptied would be a cap fault that stops the server) on each of the
//! device's DMA faults, whose reports the driver fetches with `DriverFaultNext`; the
//! device's fault handler (management) gets every report as before.

use abi::iommu::{FaultReport, IommuStatus};
use abi::msginfo::MessageInfo;
use abi::rights::CapRights;
use libcap::cap::{CNode, FULL_DEPTH};
use libcap::ipc::{self, Message};
use libcap::println;

use super::{status, Server};

type Reply = Result<(MessageInfo, [u64; 4]), IommuStatus>;

impl Server<'_> {
    /// Points the kernel at the inbox for the next message's cap (or nowhere: CPtr 0
    /// names no CNode, so no cap is transferred). An inbox lost to a moment without
    /// free slots is taken again once one is free.
    pub(super) fn open_inbox(&mut self) {
        if self.inbox == 0 {
            self.inbox = self.kernel.alloc_slot().unwrap_or(0);
        }
        if self.inbox == 0 {
            ipc::set_receive_slot(0, 0, 0);
        } else {
            ipc::set_receive_slot(self.config.cnode, self.inbox, FULL_DEPTH);
        }
    }

    /// Deletes a cap the last message left in the inbox (sent with a request that
    /// does not keep one, or refused).
    pub(super) fn empty_inbox(&mut self, m: Message) {
        if m.info.extra_caps > 0 && self.inbox != 0 {
            let _ = CNode::delete(self.kernel.slot(self.inbox));
        }
    }

    /// The inbox's cap is kept: a fresh slot becomes the inbox.
    fn keep_inbox(&mut self) -> u64 {
        let kept = self.inbox;
        self.inbox = self.kernel.alloc_slot().unwrap_or(0);
        kept
    }

    /// `DmaMapFrame`: maps the frame in the inbox at `iova` for `device`.
    pub(super) fn map_frame(&mut self, device: u16, iova: u64, rights: CapRights) -> Reply {
        if self.inbox == 0 {
            return Err(IommuStatus::OutOfMemory);
        }
        // Only a 4 KiB frame of RAM (a 2 MiB one would cover IOVAs nobody reserved, and
        // device memory is never DMA memory): the map checks it without invoking the
        // cap, which could be anything the driver chose (an invocation of an endpoint
        // cap is an IPC Call: on the server's own endpoint it would wait for ever).
        let slot = self.inbox;
        self.domains[usize::from(device)].map_client(&mut self.kernel, iova, slot, rights)?;
        self.keep_inbox();
        Ok(status(IommuStatus::Ok))
    }

    /// `DmaUnmapFrame`: unmaps the frame placed at `iova` and deletes the server's copy.
    pub(super) fn unmap_frame(&mut self, device: u16, iova: u64) -> Reply {
        // The copy may be dead: a frame the driver got from its own DmaAlloc buffer
        // died when that buffer was freed (revoked). Probe before invoking: an
        // invocation on an empty slot is a cap fault that stops the server.
        self.kernel.careful = true;
        let unmapped = self.domains[usize::from(device)].unmap_client(&mut self.kernel, iova);
        self.kernel.careful = false;
        let slot = unmapped?;
        let _ = CNode::delete(self.kernel.slot(slot));
        self.kernel.freed.push(slot);
        Ok(status(IommuStatus::Ok))
    }

    /// `FaultWatch`: the notification in the inbox hears of the device's DMA faults
    /// from now on (an earlier one is dropped).
    pub(super) fn watch(&mut self, device: u16) -> Reply {
        if self.inbox == 0 {
            return Err(IommuStatus::OutOfMemory);
        }
        let slot = self.keep_inbox();
        let old = core::mem::replace(&mut self.domains[usize::from(device)].watch, slot);
        if old != 0 {
            let _ = CNode::delete(self.kernel.slot(old));
            self.kernel.freed.push(old);
        }
        println!("iommu-server: device {device}: its driver watches its DMA faults");
        Ok(status(IommuStatus::Ok))
    }

    /// `DriverGone` (init, when it tore the device's driver down): the frames the dead
    /// instance placed are unmapped (invalidation completed; a frame a peer lent it is
    /// not revoked with its budget) and deleted, their IOVAs quarantined, and its watch
    /// dropped. Its buffers died with its pool; their records go at the next
    /// instance's first request, as before.
    pub(super) fn driver_gone(&mut self, device: u16) {
        let domain = &mut self.domains[usize::from(device)];
        self.kernel.careful = true;
        let mut slots = domain.unmap_all_client(&mut self.kernel);
        self.kernel.careful = false;
        let placed = slots.len();
        let watch = core::mem::take(&mut domain.watch);
        if watch != 0 {
            slots.push(watch);
        }
        for &slot in &slots {
            let _ = CNode::delete(self.kernel.slot(slot));
        }
        // Nothing to say for a driver that placed nothing (every restart comes here).
        if !slots.is_empty() {
            let generation = domain.generation;
            println!(
                "iommu-server: device {device}: driver generation {generation} gone: {placed} placed frames dropped"
            );
        }
        self.kernel.freed.extend(slots);
    }

    /// `DriverFaultNext`: the oldest report queued for the device's driver.
    pub(super) fn driver_fault_next(&mut self, device: u16) -> Reply {
        if self.domains[usize::from(device)].watch == 0 {
            return Err(IommuStatus::Denied);
        }
        let (report, lost) = self.driver_reports.pop(|d| d == usize::from(device));
        let Some(report) = report else {
            return Ok((MessageInfo::new(0, 4), [IommuStatus::NotFound.raw(), 0, 0, lost]));
        };
        let [packed, iova, lost] = report.encode(lost);
        Ok((MessageInfo::new(0, 4), [IommuStatus::Ok.raw(), packed, iova, lost]))
    }

    /// Queues `report` for the device's driver and signals its watch, if it has one
    /// that is still alive.
    pub(super) fn tell_driver(&mut self, report: FaultReport) {
        let index = usize::from(report.device);
        let Some(watch) = self.domains.get(index).map(|d| d.watch).filter(|&w| w != 0) else { return };
        if !self.kernel.live(watch) {
            return;
        }
        let _ = self.driver_reports.push(report);
        // NBSend: a notification latches the signal; an endpoint cap in its place
        // (the driver's choice) never blocks the server.
        let _ = ipc::nb_send(watch, MessageInfo::new(0, 0), [0; 4]);
    }
}
