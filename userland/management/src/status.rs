//! Management's status page: its counters, the components, the devices it handles.
//!
//! If the description gives management a writable `status-page` region, it writes
//! this text there at start and after every fault report (`capring::status`, in its
//! table markup); a user partition maps the region read-only and shows it. It tells
//! which component faulted and was restarted as far as management heard (CPU-fault
//! reports from init, its own restarts after DMA faults).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use abi::component::CapKind;
use abi::rights::CapRights;
use abi::system::ComponentRole;

use crate::{policy_name, Management};

/// CPU faults and restarts of one component as management heard of them.
#[derive(Clone, Copy, Default)]
pub(crate) struct Heard {
    /// The component's index (its `Peer` badge).
    pub index: u64,
    pub cpu_faults: u64,
    pub restarts: u64,
}

/// Adds a CPU fault (`cpu`) and/or a restart of `component` to `heard`.
pub(crate) fn note(heard: &mut Vec<Heard>, component: u64, cpu: bool, restarted: bool) {
    let at = match heard.iter().position(|h| h.index == component) {
        Some(at) => at,
        None => {
            heard.push(Heard { index: component, ..Heard::default() });
            heard.len() - 1
        }
    };
    heard[at].cpu_faults += u64::from(cpu);
    heard[at].restarts += u64::from(restarted);
}

impl Management {
    /// Writes [`Self::status_text`] to the `status-page` region, if management has one.
    pub(crate) fn publish_status(&self) {
        let Some(region) =
            self.info.cap_of("status-page", CapKind::Region).filter(|c| c.rights & CapRights::WRITE.raw() != 0)
        else {
            return;
        };
        let text = self.status_text();
        // SAFETY: init mapped the region writable for management alone at this address
        // for its whole life; it is used only as a status page.
        let page = unsafe { capring::status::StatusPage::new(region.vaddr as *mut u8, region.size as usize) };
        page.publish(text.as_bytes());
    }

    /// The counters, the components and each watched device's state, in the status
    /// page's table markup: what the page shows and the console's `status` prints.
    pub(crate) fn status_text(&self) -> String {
        let c = &self.counters;
        let mut text = String::new();
        let _ = writeln!(text, "# Faults handled by management");
        let _ = writeln!(text, "! DMA faults | restarts | cut-offs | CPU faults | DMA reports lost | CPU reports lost");
        let _ = writeln!(
            text,
            "{} | {} | {} | {} | {} | {}",
            c.faults, c.restarts, c.cut_offs, c.cpu_faults, c.dma_lost, c.cpu_lost
        );
        let _ = writeln!(text, "# Components (as init lists them to management)");
        let _ = writeln!(text, "! component | role | CPU faults | restarts");
        for p in self.info.caps().iter().filter(|c| c.kind() == Some(CapKind::Peer)) {
            let role = match ComponentRole::try_from(p.size as u8) {
                Ok(ComponentRole::IommuServer) => "iommu-server",
                Ok(ComponentRole::Management) => "management",
                Ok(ComponentRole::Driver) => "driver",
                _ => "component",
            };
            let h = self.heard.iter().find(|h| h.index == p.badge).copied().unwrap_or_default();
            let _ = writeln!(text, "{} | {role} | {} | {}", p.name(), h.cpu_faults, h.restarts);
        }
        let _ = writeln!(text, "# Devices whose DMA faults management handles");
        let _ = writeln!(text, "! device | driver | DMA domain | policy | restarts | state");
        for w in &self.watched {
            let _ = writeln!(
                text,
                "{} | {} | its own IOSpace | {} | {} of {} | {}",
                w.name,
                self.peer(w.driver),
                policy_name(w.policy),
                w.restarts,
                w.limit,
                if w.cut_off { "cut off" } else { "assigned" }
            );
        }
        text
    }
}
