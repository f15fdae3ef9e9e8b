//! The host checks of a system description and its conversion to packed records.
//!
//! Every mistake becomes one `file:line: entry: message` line; [`compile`] returns all
//! of them, or the packed bytes when there is none.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::ops::Range;

use abi::system::{
    encode, valid_name, Channel, ChannelKind, Component, ComponentRole, Device, DeviceMatch, FaultPolicy, PortRange,
    Region, RegionMap, SystemDesc, SystemParts, CNODE_RADIX_MAX, CNODE_RADIX_MIN, NAME_MAX, NONE, PAGE,
    PROGRAM_NAME_MAX, USER_TOP,
};
use toml::Spanned;

use super::model::{FaultsToml, MatchToml, Size, SystemFile};
use super::{entry_at, line_of};

#[path = "isa.rs"]
mod isa;

/// Collects errors with their file and line.
pub(super) struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<String>,
}

impl Ctx<'_> {
    pub(super) fn err(&mut self, span: &Range<usize>, entry: &str, msg: impl Display) {
        let line = line_of(self.text, span.start);
        self.errors.push(format!("{}:{line}: {entry}: {msg}", self.file));
    }

    /// Bytes of a size that must be a page multiple (and not 0 unless `zero_ok`).
    fn size(&mut self, s: &Spanned<Size>, entry: &str, what: &str, zero_ok: bool) -> u64 {
        match s.get_ref().bytes() {
            Ok(0) if !zero_ok => self.err(&s.span(), entry, format!("{what} is zero")),
            Ok(b) if !b.is_multiple_of(PAGE) => {
                self.err(&s.span(), entry, format!("{what} {b} is not a multiple of the page size (4096)"))
            }
            Ok(b) => return b,
            Err(e) => self.err(&s.span(), entry, format!("{what}: {e}")),
        }
        0
    }

    /// An integer in `range` (or `default` when absent).
    fn int(&mut self, v: &Option<Spanned<i64>>, entry: &str, what: &str, range: Range<i64>, default: i64) -> i64 {
        match v {
            None => default,
            Some(s) if range.contains(s.get_ref()) => *s.get_ref(),
            Some(s) => {
                let (lo, hi) = (range.start, range.end - 1);
                self.err(&s.span(), entry, format!("{what} {} is out of range {lo}..={hi}", s.get_ref()));
                default
            }
        }
    }

    pub(super) fn name(&mut self, name: &str, span: &Range<usize>, entry: &str, max: usize) {
        if !valid_name(name, max) {
            self.err(span, entry, format!("name must be 1..={max} characters of A-Z a-z 0-9 - _ ."));
        }
    }
}

/// Components by name -> index, in file order.
pub(super) struct Names(BTreeMap<String, u16>);

impl Names {
    pub(super) fn get(&self, name: &str) -> Option<u16> {
        self.0.get(name).copied()
    }
}

/// Entries of a table in file order (serde's map sorts them by name).
pub(super) fn in_file_order<T>(map: &BTreeMap<String, Spanned<T>>) -> Vec<(&String, &Spanned<T>)> {
    let mut v: Vec<_> = map.iter().collect();
    v.sort_by_key(|(_, s)| s.span().start);
    v
}

fn fault_policy(
    ctx: &mut Ctx<'_>,
    f: &Option<Spanned<FaultsToml>>,
    entry: &str,
    names: &Names,
    me: Option<&str>,
) -> (u16, u8, u8) {
    let Some(f) = f else { return (NONE, FaultPolicy::Log.raw(), 0) };
    let span = f.span();
    let f = f.get_ref();
    let handler = match f.handler.as_deref() {
        None | Some("init") => NONE,
        Some(h) if Some(h) == me => {
            ctx.err(&span, entry, "a component cannot handle its own faults");
            NONE
        }
        Some(h) => names.get(h).unwrap_or_else(|| {
            ctx.err(&span, entry, format!("fault handler '{h}' is not a component (or \"init\")"));
            NONE
        }),
    };
    let policy = match f.policy.as_deref() {
        None | Some("log") => FaultPolicy::Log,
        Some("restart") => FaultPolicy::Restart,
        Some("cut-off") => FaultPolicy::CutOff,
        Some(p) => {
            ctx.err(&span, entry, format!("fault policy '{p}' is not one of log, restart, cut-off"));
            FaultPolicy::Log
        }
    };
    let default_limit = if policy == FaultPolicy::Restart { 3 } else { 0 };
    let limit = match f.limit {
        None => default_limit,
        Some(l) if (0..=255).contains(&l) => l as u8,
        Some(l) => {
            ctx.err(&span, entry, format!("restart limit {l} is out of range 0..=255"));
            0
        }
    };
    (handler, policy.raw(), limit)
}

/// Parses "[segment:]bus:dev.fn" (hex).
fn parse_pci(s: &str) -> Option<(u16, u8, u8)> {
    let (rest, func) = s.rsplit_once('.')?;
    let parts: Vec<&str> = rest.split(':').collect();
    let (seg, bus, dev) = match parts.as_slice() {
        [bus, dev] => ("0", *bus, *dev),
        [seg, bus, dev] => (*seg, *bus, *dev),
        _ => return None,
    };
    let seg = u16::from_str_radix(seg, 16).ok()?;
    let bus = u8::from_str_radix(bus, 16).ok()?;
    let dev = u8::from_str_radix(dev, 16).ok().filter(|d| *d < 32)?;
    let func = u8::from_str_radix(func, 16).ok().filter(|f| *f < 8)?;
    Some((seg, bus, dev << 3 | func))
}

fn device_match(ctx: &mut Ctx<'_>, m: &Spanned<MatchToml>, entry: &str, d: &mut Device) {
    let span = m.span();
    let m = m.get_ref();
    let in_range = |v: i64, max: i64| (0..=max).contains(&v);
    match (&m.pci, m.vendor, m.device, m.class, m.subclass) {
        (Some(pci), None, None, None, None) => match parse_pci(pci) {
            Some((seg, bus, devfn)) => {
                d.match_kind = DeviceMatch::PciAddress.raw();
                (d.segment, d.bus, d.devfn) = (seg, bus, devfn);
            }
            None => ctx.err(&span, entry, format!("pci address '{pci}' is not [segment:]bus:dev.fn in hex")),
        },
        (None, Some(v), Some(dev), None, None) if in_range(v, 0xffff) && in_range(dev, 0xffff) => {
            d.match_kind = DeviceMatch::VendorDevice.raw();
            (d.vendor, d.device) = (v as u16, dev as u16);
        }
        (None, None, None, Some(c), sub) if in_range(c, 0xff) && in_range(sub.unwrap_or(0), 0xff) => {
            d.match_kind = DeviceMatch::Class.raw();
            (d.class, d.subclass) = (c as u8, sub.unwrap_or(0) as u8);
        }
        _ => ctx.err(
            &span,
            entry,
            "match must be exactly one of { pci = \"bus:dev.fn\" }, { vendor, device } or { class[, subclass] }, \
             with ids in range",
        ),
    }
}

/// Whether two devices match the same function.
fn same_match(a: &Device, b: &Device) -> bool {
    a.match_kind == b.match_kind
        && (a.segment, a.bus, a.devfn, a.vendor, a.device, a.class, a.subclass)
            == (b.segment, b.bus, b.devfn, b.vendor, b.device, b.class, b.subclass)
}

/// Checks `text` (read from `file`, which only labels messages) and packs it. `programs`
/// is the list of built programs every `program =` must name (None: not checked).
pub fn compile(file: &str, text: &str, programs: Option<&[String]>) -> Result<Vec<u8>, Vec<String>> {
    let mut ctx = Ctx { file, text, errors: Vec::new() };
    let sys: SystemFile = match toml::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            let msg = e.message().trim().replace('\n', " ");
            return Err(vec![format!("{file}:{line}: {}: {msg}", entry_at(text, line))]);
        }
    };
    let mut p = SystemParts::default();
    let head = sys.system.get_ref();
    ctx.name(head.name.get_ref(), &head.name.span(), "[system]", NAME_MAX);
    p.name = p.strings.add(head.name.get_ref());
    p.min_ram_bytes = ctx.size(&head.min_ram, "[system]", "min_ram", false);

    let comps = in_file_order(&sys.components);
    let names = Names(comps.iter().enumerate().map(|(i, (n, _))| ((*n).clone(), i as u16)).collect());
    let mut roles: Vec<Option<ComponentRole>> = Vec::new();
    for (name, c) in &comps {
        let entry = format!("component '{name}'");
        let span = c.span();
        ctx.name(name, &span, &entry, NAME_MAX);
        if name.as_str() == "init" {
            ctx.err(&span, &entry, "the name 'init' is reserved for the root task");
        }
        let c = c.get_ref();
        let program = c.program.get_ref();
        ctx.name(program, &c.program.span(), &entry, PROGRAM_NAME_MAX);
        if let Some(list) = programs {
            if !list.iter().any(|p| p == program) {
                let msg = format!("unknown program '{program}' (built programs: {})", list.join(", "));
                ctx.err(&c.program.span(), &entry, msg);
            }
        }
        let role = match c.role.as_ref().map(|r| (r.get_ref().as_str(), r.span())) {
            None => None,
            Some(("normal", _)) => Some(ComponentRole::Normal),
            Some(("iommu-server", _)) => Some(ComponentRole::IommuServer),
            Some(("management", _)) => Some(ComponentRole::Management),
            Some(("driver", _)) => Some(ComponentRole::Driver),
            Some((r, s)) => {
                ctx.err(&s, &entry, format!("role '{r}' is not one of normal, iommu-server, management, driver"));
                None
            }
        };
        roles.push(role);
        let priority = ctx.int(&c.priority, &entry, "priority", 0..256, 100);
        let mcp = ctx.int(&c.mcp, &entry, "mcp", 0..256, priority);
        if priority > mcp {
            let s = c.priority.as_ref().map(|s| s.span()).unwrap_or(span.clone());
            ctx.err(&s, &entry, format!("priority {priority} is above its mcp {mcp}"));
        }
        let radix = CNODE_RADIX_MIN as i64..CNODE_RADIX_MAX as i64 + 1;
        let cnode_radix = ctx.int(&c.cnode_bits, &entry, "cnode_bits", radix, 10) as u8;
        let budget = ctx.size(&c.budget, &entry, "budget", false);
        let default = |b: u64| Spanned::new(0..0, Size::Bytes(b as i64));
        let stack = ctx.size(c.stack.as_ref().unwrap_or(&default(16 << 10)), &entry, "stack", false);
        let heap = ctx.size(c.heap.as_ref().unwrap_or(&default(64 << 10)), &entry, "heap", true);
        if budget != 0 && (stack > u32::MAX as u64 || heap > u32::MAX as u64 || stack + heap > budget) {
            ctx.err(&c.budget.span(), &entry, format!("stack {stack} + heap {heap} do not fit in budget {budget}"));
        }
        let (fault_handler, fault_policy, restart_limit) =
            fault_policy(&mut ctx, &c.faults, &entry, &names, Some(name.as_str()));
        p.components.push(Component {
            name: p.strings.add(name),
            program: p.strings.add(program),
            budget_bytes: budget,
            stack_bytes: stack as u32,
            heap_bytes: heap as u32,
            priority: priority as u8,
            mcp: mcp as u8,
            cnode_radix,
            role: 0,
            fault_handler,
            fault_policy,
            restart_limit,
        });
    }
    if comps.is_empty() {
        ctx.err(&sys.system.span(), "[system]", "no components (add [components.<name>] tables)");
    }
    p.supervisor = match head.supervisor.as_ref() {
        None => NONE,
        Some(s) if s.get_ref() == "init" => NONE,
        Some(s) => names.get(s.get_ref()).unwrap_or_else(|| {
            ctx.err(&s.span(), "[system]", format!("supervisor '{}' is not a component (or \"init\")", s.get_ref()));
            NONE
        }),
    };

    let mut device_names: Vec<String> = Vec::new();
    let mut drivers: Vec<Option<u16>> = Vec::new();
    for (name, d) in in_file_order(&sys.devices) {
        let entry = format!("device '{name}'");
        let span = d.span();
        ctx.name(name, &span, &entry, NAME_MAX);
        let d = d.get_ref();
        let mut dev = Device { name: p.strings.add(name), ..Default::default() };
        device_match(&mut ctx, &d.match_, &entry, &mut dev);
        if let Some(i) = p.devices.iter().position(|o| same_match(o, &dev)) {
            let msg = format!("matches the same device as '{}' (a device is named once)", device_names[i]);
            ctx.err(&d.match_.span(), &entry, msg);
        }
        let driver = d.driver.as_ref().and_then(|drv| {
            let found = names.get(drv.get_ref());
            if found.is_none() {
                ctx.err(&drv.span(), &entry, format!("driver '{}' is not a component", drv.get_ref()));
            }
            found
        });
        let pool = d.dma_pool.as_ref().map(|s| ctx.size(s, &entry, "dma_pool", true)).unwrap_or(0);
        dev.dma_pool_bytes = pool;
        dev.dma_mask_bits = ctx.int(&d.dma_mask_bits, &entry, "dma_mask_bits", 12..65, 64) as u8;
        dev.msi_count = ctx.int(&d.msis, &entry, "msis", 0..256, 0) as u8;
        dev.ports.first = p.port_ranges.len() as u32;
        for r in &d.ports {
            match r.get_ref().as_slice() {
                [first, last] if (0..=0xffff).contains(first) && (0..=0xffff).contains(last) && first <= last => {
                    let owner = |i: usize| {
                        let d = p
                            .devices
                            .iter()
                            .position(|d| (d.ports.first..d.ports.first + d.ports.count).contains(&(i as u32)));
                        d.map_or(name.as_str(), |d| device_names[d].as_str())
                    };
                    if let Some(i) =
                        p.port_ranges.iter().position(|o| *first <= o.last as i64 && o.first as i64 <= *last)
                    {
                        let o = p.port_ranges[i];
                        let msg = format!(
                            "ports {first:#x}..={last:#x} overlap {:#x}..={:#x} of device '{}' (a port has one owner)",
                            o.first,
                            o.last,
                            owner(i)
                        );
                        ctx.err(&r.span(), &entry, msg);
                    }
                    p.port_ranges.push(PortRange { first: *first as u16, last: *last as u16, _pad: 0 });
                }
                [first, last] if first > last => {
                    ctx.err(&r.span(), &entry, format!("port range {first:#x}..{last:#x}: first is above last"));
                }
                _ => ctx.err(&r.span(), &entry, "a port range is [first, last] with ports in 0..=0xffff"),
            }
        }
        dev.ports.count = p.port_ranges.len() as u32 - dev.ports.first;
        (dev.fault_handler, dev.fault_policy, dev.restart_limit) =
            fault_policy(&mut ctx, &d.faults, &entry, &names, None);
        drivers.push(driver);
        device_names.push(name.clone());
        p.devices.push(dev);
    }
    isa::isa_devices(&mut ctx, &mut p, &sys, &names, &device_names);
    drives(&mut ctx, &sys, &comps, &device_names, &mut drivers);
    for (i, drv) in drivers.iter().enumerate() {
        let entry = format!("device '{}'", device_names[i]);
        let span = sys.devices[&device_names[i]].span();
        match drv {
            Some(c) => p.devices[i].driver = *c,
            None if sys.devices[&device_names[i]].get_ref().driver.is_none() => {
                ctx.err(&span, &entry, "no driver (set driver = \"<component>\" or drives = on a component)")
            }
            None => {}
        }
    }
    assign_roles(&mut ctx, &mut p, &comps, &roles, &drivers, sys.system.span());
    channels(&mut ctx, &mut p, &sys, &names);
    super::filters::shares(&mut ctx, &mut p, &sys);
    super::filters::filter_rules(&mut ctx, &mut p, &sys, &names);
    regions(&mut ctx, &mut p, &sys, &names);

    let budgets: u64 = p.components.iter().map(|c| c.budget_bytes).sum();
    let pools: u64 = p.devices.iter().map(|d| d.dma_pool_bytes).sum();
    let regions: u64 = p.regions.iter().map(|r| r.size_bytes).sum();
    let needed = budgets.saturating_add(pools).saturating_add(regions);
    if p.min_ram_bytes != 0 && needed > p.min_ram_bytes {
        let msg = format!(
            "budgets ({budgets}) + DMA pools ({pools}) + regions ({regions}) = {needed} bytes exceed min_ram ({})",
            p.min_ram_bytes
        );
        ctx.err(&head.min_ram.span(), "[system]", msg);
    }
    if !ctx.errors.is_empty() {
        return Err(ctx.errors);
    }
    let bytes = encode(&p);
    if let Err(e) = SystemDesc::parse(&bytes) {
        return Err(vec![format!("{file}: internal error: the packed description is rejected: {e}")]);
    }
    Ok(bytes)
}

/// Applies `drives = ` of components to the devices' drivers.
fn drives(
    ctx: &mut Ctx<'_>,
    sys: &SystemFile,
    comps: &[(&String, &Spanned<super::model::ComponentToml>)],
    device_names: &[String],
    drivers: &mut [Option<u16>],
) {
    for (ci, (name, c)) in comps.iter().enumerate() {
        let Some(list) = c.get_ref().drives.as_ref() else { continue };
        let entry = format!("component '{name}'");
        for dev in list.get_ref().list() {
            let Some(di) = device_names.iter().position(|d| *d == dev) else {
                ctx.err(&list.span(), &entry, format!("drives '{dev}', which is not a device"));
                continue;
            };
            match drivers[di] {
                Some(other) if other != ci as u16 => {
                    let msg = format!("drives '{dev}', whose driver is '{}'", comps[other as usize].0);
                    ctx.err(&list.span(), &entry, msg);
                }
                _ if sys.devices[&dev].get_ref().driver.is_some() && drivers[di].is_none() => {}
                _ => drivers[di] = Some(ci as u16),
            }
        }
    }
}

/// Gives every component its role: drivers are the components that drive a device.
fn assign_roles(
    ctx: &mut Ctx<'_>,
    p: &mut SystemParts,
    comps: &[(&String, &Spanned<super::model::ComponentToml>)],
    roles: &[Option<ComponentRole>],
    drivers: &[Option<u16>],
    system: Range<usize>,
) {
    let mut server = None;
    for (i, (name, c)) in comps.iter().enumerate() {
        let entry = format!("component '{name}'");
        let drives_some = drivers.contains(&Some(i as u16));
        let role = match (roles[i], drives_some) {
            (None | Some(ComponentRole::Normal | ComponentRole::Driver), true) => ComponentRole::Driver,
            (Some(ComponentRole::Driver), false) => {
                ctx.err(&c.span(), &entry, "driver without a device (no device names it as driver)");
                ComponentRole::Driver
            }
            (Some(r), true) => {
                ctx.err(&c.span(), &entry, format!("drives a device but has role {r:?}"));
                r
            }
            (r, false) => r.unwrap_or(ComponentRole::Normal),
        };
        if role == ComponentRole::IommuServer {
            if p.components[i].fault_policy == FaultPolicy::Restart.raw() {
                // Its domains, pools and every driver's buffers live in its CNode: a new
                // instance would start with none of them.
                let msg = "the iommu-server cannot be restarted (its domains, DMA pools and buffers would be lost): use policy \"log\" or \"cut-off\"";
                ctx.err(&c.span(), &entry, msg);
            }
            match server {
                Some(first) => {
                    let msg = format!("a second iommu-server (the first is '{}')", comps[first as usize].0);
                    ctx.err(&c.span(), &entry, msg);
                }
                None => server = Some(i as u16),
            }
        }
        p.components[i].role = role.raw();
    }
    p.iommu_server = server.unwrap_or(NONE);
    if server.is_none() && !p.devices.is_empty() {
        let msg = "devices need a component with role = \"iommu-server\"";
        ctx.err(&system, "[system]", msg);
    }
}

fn channels(ctx: &mut Ctx<'_>, p: &mut SystemParts, sys: &SystemFile, names: &Names) {
    for (name, ch) in in_file_order(&sys.channels) {
        let entry = format!("channel '{name}'");
        ctx.name(name, &ch.span(), &entry, NAME_MAX);
        let ch = ch.get_ref();
        let kind = match ch.kind.get_ref().as_str() {
            "endpoint" => ChannelKind::Endpoint,
            "notification" => ChannelKind::Notification,
            k => {
                ctx.err(&ch.kind.span(), &entry, format!("kind '{k}' is not endpoint or notification"));
                ChannelKind::Endpoint
            }
        };
        let mut end = |s: &Spanned<String>, what: &str| {
            names.get(s.get_ref()).unwrap_or_else(|| {
                ctx.err(&s.span(), &entry, format!("{what} '{}' is not a component", s.get_ref()));
                0
            })
        };
        let (client, server) = (end(&ch.client, "client"), end(&ch.server, "server"));
        if ch.client.get_ref() == ch.server.get_ref() {
            ctx.err(&ch.server.span(), &entry, "client and server are the same component");
        }
        let badge = ctx.int(&ch.badge, &entry, "badge", 0..i64::MAX, 0) as u64;
        p.channels.push(Channel {
            name: p.strings.add(name),
            kind: kind.raw(),
            client,
            server,
            badge,
            ..Default::default()
        });
    }
}

fn regions(ctx: &mut Ctx<'_>, p: &mut SystemParts, sys: &SystemFile, names: &Names) {
    // (component, start, end, region) of every map at a fixed address.
    let mut fixed: Vec<(u16, u64, u64, String)> = Vec::new();
    for (name, r) in in_file_order(&sys.regions) {
        let entry = format!("region '{name}'");
        ctx.name(name, &r.span(), &entry, NAME_MAX);
        let index = p.regions.len() as u16;
        let r = r.get_ref();
        let size_bytes = ctx.size(&r.size, &entry, "size", false);
        p.regions.push(Region { name: p.strings.add(name), size_bytes, readonly_for: 0 });
        for ro in &r.readonly {
            if names.get(ro.get_ref()).is_none() {
                ctx.err(&ro.span(), &entry, format!("read-only for '{}', which is not a component", ro.get_ref()));
            } else if !r.maps.iter().any(|m| m.get_ref().component == *ro.get_ref()) {
                ctx.err(&ro.span(), &entry, format!("read-only for '{}', which does not map it", ro.get_ref()));
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for m in &r.maps {
            let span = m.span();
            let m = m.get_ref();
            let Some(component) = names.get(&m.component) else {
                ctx.err(&span, &entry, format!("mapped by '{}', which is not a component", m.component));
                continue;
            };
            if seen.contains(&m.component.as_str()) {
                ctx.err(&span, &entry, format!("mapped twice by '{}'", m.component));
            }
            seen.push(&m.component);
            let readonly = r.readonly.iter().any(|ro| *ro.get_ref() == m.component);
            if readonly && m.writable {
                let msg = format!("'{}' maps it writable, but the region is read-only for it", m.component);
                ctx.err(&span, &entry, msg);
            }
            let vaddr = m.vaddr.unwrap_or(0);
            if vaddr < 0 || !(vaddr as u64).is_multiple_of(PAGE) || vaddr as u64 >= USER_TOP {
                ctx.err(&span, &entry, format!("vaddr {vaddr:#x} is not page aligned in the user half"));
            }
            let (start, end) = (vaddr.max(0) as u64, (vaddr.max(0) as u64).saturating_add(size_bytes));
            if vaddr > 0 {
                let hit = fixed.iter().find(|(c, s, e, _)| *c == component && start < *e && *s < end);
                if let Some((_, _, _, other)) = hit {
                    let msg = format!("'{}' maps it at {start:#x}, overlapping region '{other}'", m.component);
                    ctx.err(&span, &entry, msg);
                }
                fixed.push((component, start, end, name.clone()));
            }
            p.region_maps.push(RegionMap {
                region: index,
                component,
                writable: m.writable as u8,
                readonly: readonly as u8,
                _pad: 0,
                vaddr: vaddr.max(0) as u64,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_pci;

    #[test]
    fn pci_addresses_parse() {
        assert_eq!(parse_pci("00:03.0"), Some((0, 0, 3 << 3)));
        assert_eq!(parse_pci("0001:02:1f.7"), Some((1, 2, 0x1f << 3 | 7)));
        assert_eq!(parse_pci("00:20.0"), None);
        assert_eq!(parse_pci("nonsense"), None);
    }
}
