//! The rules `SystemDesc::parse` checks after bounds: names, indices, budgets.
//!
//! The host tool checks the same rules with file:line messages; this is the second
//! check, on the packed bytes, so a corrupt or hand-made description never starts.

use super::*;

fn invalid(at: At, reason: &'static str) -> SystemError {
    SystemError::Invalid { at, reason }
}

/// Whether `i` names a component or is [`NONE`].
fn component_or_none(i: u16, count: usize) -> bool {
    i == NONE || (i as usize) < count
}

/// Finds an earlier record `j < i` for which `same(j)` holds.
fn earlier(i: usize, same: impl Fn(usize) -> bool) -> Option<u16> {
    (0..i).find(|&j| same(j)).map(|j| j as u16)
}

pub(super) fn check(desc: &SystemDesc<'_>) -> Result<(), SystemError> {
    let h = desc.header;
    if h._pad != 0 {
        return Err(invalid(At::Header, "padding is not zero"));
    }
    desc.name_ok(h.name, NAME_MAX, At::Header)?;
    let components = desc.components();
    let n = components.len();
    if n == 0 {
        return Err(invalid(At::Header, "no components"));
    }
    if !component_or_none(h.supervisor, n) {
        return Err(invalid(At::Header, "supervisor is not a component"));
    }
    if !component_or_none(h.iommu_server, n) {
        return Err(invalid(At::Header, "iommu_server is not a component"));
    }
    let mut needed: u64 = 0;
    for (i, c) in components.iter().enumerate() {
        let at = At::Component(i as u16);
        let name = desc.name_ok(c.name, NAME_MAX, at)?;
        desc.name_ok(c.program, PROGRAM_NAME_MAX, at)?;
        if let Some(first) = earlier(i, |j| desc.str(components.get(j).unwrap_or_default().name) == name) {
            return Err(SystemError::Duplicate { at, first });
        }
        let role = ComponentRole::try_from(c.role).map_err(|_| invalid(at, "unknown role"))?;
        FaultPolicy::try_from(c.fault_policy).map_err(|_| invalid(at, "unknown fault policy"))?;
        if c.priority > c.mcp {
            return Err(invalid(at, "priority above mcp"));
        }
        if !(CNODE_RADIX_MIN..=CNODE_RADIX_MAX).contains(&c.cnode_radix) {
            return Err(invalid(at, "cnode radix out of range"));
        }
        if c.budget_bytes == 0 || c.stack_bytes == 0 {
            return Err(invalid(at, "zero budget or stack"));
        }
        if !c.budget_bytes.is_multiple_of(PAGE)
            || !u64::from(c.stack_bytes).is_multiple_of(PAGE)
            || !u64::from(c.heap_bytes).is_multiple_of(PAGE)
        {
            return Err(invalid(at, "budget, stack or heap is not a page multiple"));
        }
        if u64::from(c.stack_bytes) + u64::from(c.heap_bytes) > c.budget_bytes {
            return Err(invalid(at, "stack and heap do not fit in the budget"));
        }
        if !component_or_none(c.fault_handler, n) || c.fault_handler == i as u16 {
            return Err(invalid(at, "fault handler is not another component"));
        }
        match role {
            ComponentRole::IommuServer if h.iommu_server != i as u16 => {
                return Err(invalid(at, "a second iommu-server (the header names another)"));
            }
            ComponentRole::IommuServer if c.fault_policy == FaultPolicy::Restart.raw() => {
                return Err(invalid(at, "the iommu-server cannot be restarted"));
            }
            ComponentRole::Driver if desc.devices_of(i as u16).next().is_none() => {
                return Err(invalid(at, "driver without a device"));
            }
            _ => {}
        }
        needed = needed.saturating_add(c.budget_bytes);
    }
    if h.iommu_server != NONE
        && components.get(h.iommu_server as usize).map(|c| c.role) != Some(ComponentRole::IommuServer.raw())
    {
        return Err(invalid(At::Header, "iommu_server does not have the iommu-server role"));
    }
    check_channels(desc, n)?;
    check_filter_rules(desc, n)?;
    needed = needed.saturating_add(check_regions(desc, n)?);
    needed = needed.saturating_add(check_devices(desc, n)?);
    check_isa(desc, n)?;
    if needed > h.min_ram_bytes {
        return Err(SystemError::OverBudget { needed, min_ram: h.min_ram_bytes });
    }
    Ok(())
}

fn check_channels(desc: &SystemDesc<'_>, n: usize) -> Result<(), SystemError> {
    let channels = desc.channels();
    for (i, ch) in channels.iter().enumerate() {
        let at = At::Channel(i as u16);
        let name = desc.name_ok(ch.name, NAME_MAX, at)?;
        if let Some(first) = earlier(i, |j| desc.str(channels.get(j).unwrap_or_default().name) == name) {
            return Err(SystemError::Duplicate { at, first });
        }
        ChannelKind::try_from(ch.kind).map_err(|_| invalid(at, "unknown channel kind"))?;
        if ch._pad != 0 {
            return Err(invalid(at, "padding is not zero"));
        }
        if ch.client as usize >= n || ch.server as usize >= n {
            return Err(invalid(at, "client or server is not a component"));
        }
        if ch.client == ch.server {
            return Err(invalid(at, "client and server are the same component"));
        }
        if ch.shares != NONE {
            // Sharing only merges what one server waits on: the group's clients can
            // still only signal, and nobody else gets to wait.
            let Some(owner) = channels.get(ch.shares as usize).filter(|_| ch.shares as usize != i) else {
                return Err(invalid(at, "shares a channel that does not exist"));
            };
            if ch.kind != ChannelKind::Notification.raw() || owner.kind != ChannelKind::Notification.raw() {
                return Err(invalid(at, "only notification channels share an object"));
            }
            if owner.server != ch.server {
                return Err(invalid(at, "shares a channel with another server"));
            }
            if owner.shares != NONE {
                return Err(invalid(at, "shares a channel that itself shares another's"));
            }
        }
    }
    Ok(())
}

fn check_filter_rules(desc: &SystemDesc<'_>, n: usize) -> Result<(), SystemError> {
    for (i, r) in desc.filter_rules().iter().enumerate() {
        let at = At::FilterRule(i as u32);
        desc.name_ok(r.client, NAME_MAX, at)?;
        if r.filter as usize >= n {
            return Err(invalid(at, "filter is not a component"));
        }
        if !r.valid() {
            return Err(invalid(at, "unknown direction or protocol, or bad port range"));
        }
    }
    Ok(())
}

/// Checks regions and their maps; returns the bytes the regions take.
fn check_regions(desc: &SystemDesc<'_>, n: usize) -> Result<u64, SystemError> {
    let regions = desc.regions();
    let mut bytes: u64 = 0;
    for (i, r) in regions.iter().enumerate() {
        let at = At::Region(i as u16);
        let name = desc.name_ok(r.name, NAME_MAX, at)?;
        if let Some(first) = earlier(i, |j| desc.str(regions.get(j).unwrap_or_default().name) == name) {
            return Err(SystemError::Duplicate { at, first });
        }
        if r.size_bytes == 0 || !r.size_bytes.is_multiple_of(PAGE) {
            return Err(invalid(at, "size is zero or not a page multiple"));
        }
        bytes = bytes.saturating_add(r.size_bytes);
    }
    let maps = desc.region_maps();
    for (i, m) in maps.iter().enumerate() {
        let at = At::RegionMap(i as u16);
        if m.region as usize >= regions.len() || m.component as usize >= n {
            return Err(invalid(at, "region or component out of range"));
        }
        if m.writable > 1 || m.readonly > 1 || m._pad != 0 {
            return Err(invalid(at, "writable/readonly not 0 or 1, or padding not zero"));
        }
        if m.writable == 1 && m.readonly == 1 {
            return Err(invalid(at, "writable map of a region marked read-only for this component"));
        }
        if !m.vaddr.is_multiple_of(PAGE) || m.vaddr >= USER_TOP {
            return Err(invalid(at, "vaddr not page aligned or not in the user half"));
        }
        let same = |j: usize| {
            let o = maps.get(j).unwrap_or_default();
            o.region == m.region && o.component == m.component
        };
        if let Some(first) = earlier(i, same) {
            return Err(SystemError::Duplicate { at, first });
        }
        let size = |m: &RegionMap| regions.get(m.region as usize).map_or(0, |r| r.size_bytes);
        let overlaps = |j: usize| {
            let o = maps.get(j).unwrap_or_default();
            m.vaddr != 0
                && o.vaddr != 0
                && o.component == m.component
                && m.vaddr < o.vaddr.saturating_add(size(&o))
                && o.vaddr < m.vaddr.saturating_add(size(&m))
        };
        if earlier(i, overlaps).is_some() {
            return Err(invalid(at, "overlaps another region mapped by the same component"));
        }
    }
    Ok(bytes)
}

/// Whether two devices would match the same function.
fn same_match(a: &Device, b: &Device) -> bool {
    a.match_kind == b.match_kind
        && match DeviceMatch::try_from(a.match_kind) {
            Ok(DeviceMatch::PciAddress) => (a.segment, a.bus, a.devfn) == (b.segment, b.bus, b.devfn),
            Ok(DeviceMatch::VendorDevice) => (a.vendor, a.device) == (b.vendor, b.device),
            Ok(DeviceMatch::Class) => (a.class, a.subclass) == (b.class, b.subclass),
            Err(_) => false,
        }
}

/// Checks devices and their port ranges; returns the bytes the DMA pools take.
fn check_devices(desc: &SystemDesc<'_>, n: usize) -> Result<u64, SystemError> {
    let devices = desc.devices();
    let ports = desc.header.port_ranges.count;
    let components = desc.components();
    let mut bytes: u64 = 0;
    if !devices.is_empty() && desc.header.iommu_server == NONE {
        return Err(invalid(At::Header, "devices but no iommu-server"));
    }
    for (i, d) in devices.iter().enumerate() {
        let at = At::Device(i as u16);
        let name = desc.name_ok(d.name, NAME_MAX, at)?;
        DeviceMatch::try_from(d.match_kind).map_err(|_| invalid(at, "unknown match kind"))?;
        FaultPolicy::try_from(d.fault_policy).map_err(|_| invalid(at, "unknown fault policy"))?;
        let same = |j: usize| {
            let o = devices.get(j).unwrap_or_default();
            desc.str(o.name) == name || same_match(&o, &d)
        };
        if let Some(first) = earlier(i, same) {
            return Err(SystemError::Duplicate { at, first });
        }
        if !(12..=64).contains(&d.dma_mask_bits) {
            return Err(invalid(at, "dma_mask_bits not in 12..=64"));
        }
        if d._pad != [0; 5] {
            return Err(invalid(at, "padding is not zero"));
        }
        match components.get(d.driver as usize) {
            Some(c) if c.role == ComponentRole::Driver.raw() => {}
            Some(_) => return Err(invalid(at, "its driver does not have the driver role")),
            None => return Err(invalid(at, "its driver is not a component")),
        }
        if !component_or_none(d.fault_handler, n) {
            return Err(invalid(at, "fault handler is not a component"));
        }
        if !d.dma_pool_bytes.is_multiple_of(PAGE) {
            return Err(invalid(at, "DMA pool is not a page multiple"));
        }
        if d.ports.first.checked_add(d.ports.count).is_none_or(|end| end > ports) {
            return Err(invalid(at, "port ranges out of range"));
        }
        bytes = bytes.saturating_add(d.dma_pool_bytes);
    }
    let ranges = desc.records::<PortRange>(desc.header.port_ranges);
    for (i, p) in ranges.iter().enumerate() {
        if p.first > p.last || p._pad != 0 {
            return Err(invalid(At::PortRange(i as u32), "first port above last, or padding not zero"));
        }
        if earlier(i, |j| ranges.get(j).is_some_and(|o| p.first <= o.last && o.first <= p.last)).is_some() {
            return Err(invalid(At::PortRange(i as u32), "overlaps another port range (a port has one owner)"));
        }
    }
    Ok(bytes)
}

/// Checks ISA devices: a component, an ISA line (or none) that no other ISA device
/// has, and port ranges that exist, are not reserved by the kernel and are not COM1.
fn check_isa(desc: &SystemDesc<'_>, n: usize) -> Result<(), SystemError> {
    let isa = desc.isa_devices();
    let ports = desc.header.port_ranges.count;
    for (i, d) in isa.iter().enumerate() {
        let at = At::IsaDevice(i as u16);
        let name = desc.name_ok(d.name, NAME_MAX, at)?;
        if let Some(first) = earlier(i, |j| desc.str(isa.get(j).unwrap_or_default().name) == name) {
            return Err(SystemError::Duplicate { at, first });
        }
        if d.component as usize >= n {
            return Err(invalid(at, "its component is not a component"));
        }
        if d.irq >= ISA_IRQS && d.irq != NO_IRQ {
            return Err(invalid(at, "irq is not an ISA line (0..=15)"));
        }
        if d.irq != NO_IRQ && earlier(i, |j| isa.get(j).is_some_and(|o| o.irq == d.irq)).is_some() {
            return Err(invalid(at, "irq taken by another ISA device (a line has one owner)"));
        }
        if d._pad != [0; 5] {
            return Err(invalid(at, "padding is not zero"));
        }
        if d.ports.count == 0 || d.ports.first.checked_add(d.ports.count).is_none_or(|end| end > ports) {
            return Err(invalid(at, "no port ranges, or port ranges out of range"));
        }
        for r in desc.port_ranges(d.ports).iter() {
            // The kernel refuses these too; checked here so the description says why.
            if crate::reserved::reserved_port_overlap(r.first, r.last).is_some() {
                return Err(invalid(at, "a port range touches ports the kernel never issues"));
            }
            if r.first <= COM1_PORTS.1 && COM1_PORTS.0 <= r.last {
                return Err(invalid(at, "a port range touches COM1 (the kernel's log)"));
            }
        }
    }
    // A range record is granted to the one device that names it: two naming the same
    // record would share its ports without the overlap check seeing two ranges.
    let devices = desc.devices();
    let owns = |r: IndexRange, k: u32| r.first <= k && k - r.first < r.count;
    for k in 0..ports {
        let owners =
            devices.iter().filter(|d| owns(d.ports, k)).count() + isa.iter().filter(|d| owns(d.ports, k)).count();
        if owners > 1 {
            return Err(invalid(At::PortRange(k), "named by two devices (a port has one owner)"));
        }
    }
    Ok(())
}
