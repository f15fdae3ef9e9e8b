//! The filter: every client's traffic checked against the description's rules.
//!
//! For each client `<c>` the description gives it a connection up (the client side of
//! `<c>`, a port of the bridge), one down (the served side of `<c>-filtered`, to the
//! client's copier) and the `[filters.<c>]` rules (`CapKind::FilterRule` entries).
//! Frames no rule allows, and malformed ones, are dropped and counted per client and
//! direction; the counts go to the `filter-status` region if it is given (a status
//! page others map read-only). A client without rules gets and sends nothing.
#![no_std]
#![no_main]

extern crate alloc;

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use abi::rights::CapRights;
use abi::system::{RuleDirection, RuleProtocol};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capring::status::StatusPage;
use libcap::println;
use relay::Hop;

libcap::component::entry!(main);

/// Most TSC ticks between two refreshes of the status page while frames flow.
const PUBLISH_TICKS: u64 = 20_000_000;

fn main(info: &'static ComponentInfo) -> ExitCode {
    match run(info) {
        Ok(()) => ExitCode::Success,
        Err(what) => {
            println!("filter: FAIL {what}");
            ExitCode::UserFailure
        }
    }
}

/// A rule as the description wrote it ("tcp:80").
fn describe(r: &abi::system::FilterRule) -> String {
    let proto = match RuleProtocol::try_from(r.protocol) {
        Ok(RuleProtocol::Arp) => return "arp".into(),
        Ok(RuleProtocol::Icmp) => return "icmp".into(),
        Ok(RuleProtocol::Tcp) => "tcp",
        Ok(RuleProtocol::Udp) => "udp",
        Err(_) => "?",
    };
    match (r.port_first, r.port_last) {
        (0, u16::MAX) => proto.into(),
        (a, b) if a == b => format!("{proto}:{a}"),
        (a, b) => format!("{proto}:{a}-{b}"),
    }
}

fn rule_list(hop: &Hop, direction: RuleDirection) -> String {
    let rules = hop.rules().unwrap_or(&[]);
    let list: Vec<String> = rules.iter().filter(|r| r.direction == direction.raw()).map(describe).collect();
    if list.is_empty() {
        "nothing".into()
    } else {
        list.join(" ")
    }
}

/// The counters as text for the status page (`capring::status` table markup).
fn report(hops: &[Hop]) -> String {
    use core::fmt::Write;
    let mut text =
        String::from("# Filter: frames per client and direction (dropped: denied by no rule, or malformed)\n");
    text.push_str("! client | in passed | in dropped: denied | in dropped: malformed | out passed | out dropped: denied | out dropped: malformed | allows in | allows out\n");
    for hop in hops {
        let c = &hop.counts;
        let _ = writeln!(
            text,
            "{} | {} | {} | {} | {} | {} | {} | {} | {}",
            hop.name,
            c.passed[0],
            c.denied[0],
            c.malformed[0],
            c.passed[1],
            c.denied[1],
            c.malformed[1],
            rule_list(hop, RuleDirection::In),
            rule_list(hop, RuleDirection::Out)
        );
    }
    text
}

fn run(info: &'static ComponentInfo) -> Result<(), String> {
    let clients: Vec<&str> = relay::connections(info, "-filtered-queues").collect();
    if clients.is_empty() {
        return Err("no clients: the description gives no '<client>-filtered-queues' region".into());
    }
    // A rule for a client it does not serve is a mistake in the description: say so.
    for e in info.caps().iter().filter(|c| c.kind() == Some(CapKind::FilterRule)) {
        if !clients.contains(&e.name()) {
            return Err(format!("a rule names '{}', which has no '{}-filtered' connection", e.name(), e.name()));
        }
    }
    let mut hops = Vec::new();
    for client in clients {
        let rules = relay::rules_for(info, client)?;
        let down = format!("{client}-filtered");
        hops.push(Hop::open(info, "filter", client, client, &down, Some(rules))?);
    }
    for hop in &hops {
        let (i, o) = (rule_list(hop, RuleDirection::In), rule_list(hop, RuleDirection::Out));
        println!("filter: '{}' allows in: {i}; out: {o}", hop.name);
    }
    let status = info
        .cap_of("filter-status", CapKind::Region)
        .filter(|c| c.rights & CapRights::WRITE.raw() != 0)
        // SAFETY: init mapped the region writable for the filter alone at this address
        // for its whole life; it is used only as a status page.
        .map(|r| unsafe { StatusPage::new(r.vaddr as *mut u8, r.size as usize) });
    if let Some(page) = &status {
        page.publish(report(&hops).as_bytes());
    }
    // Formatting the page costs thousands of instructions: it is refreshed at most
    // every PUBLISH_TICKS while frames flow, and whenever the filter goes idle with
    // something new to show.
    let (mut shown_at, mut dirty) = (libcap::deadline::now(), false);
    relay::run(info, &mut hops, |hops, idle| {
        dirty |= !idle;
        let Some(page) = &status else { return };
        if dirty && (idle || libcap::deadline::now().saturating_sub(shown_at) >= PUBLISH_TICKS) {
            page.publish(report(hops).as_bytes());
            (shown_at, dirty) = (libcap::deadline::now(), false);
        }
    })
}
