//! The authority graph as a status page: init fills the `authority-graph` region.
//!
//! If the description declares a region named [`REGION`], init writes the system's
//! authority edges into it (the same edges as its `graph:` lines) as a status page
//! (`capring::status` layout and table markup) once, before any component runs; the
//! components that map it (read-only: nobody needs to write it) can show it. The
//! region is memory init made for the description like any other: a partition that
//! maps it gains a page of text, no authority.

use alloc::string::String;
use core::fmt::Write;

use libcap::abi::layout::PAGE_SIZE;
use libcap::cap::Frame;
use libcap::println;

use crate::build;
use crate::compose::System;

/// The region init fills with the graph.
pub const REGION: &str = "authority-graph";

/// One edge: from, to, what it carries.
pub type Edge = (String, String, String);

/// Writes `edges` into the [`REGION`] region of `system`, if it declares one.
pub fn publish(system: &System<'_>, edges: &[Edge]) {
    let desc = system.plan.desc;
    let Some(index) = desc.regions().iter().position(|r| desc.str(r.name) == REGION) else { return };
    let Some(frames) = system.shared.regions.get(index) else { return };
    let mut text = String::from("# Authority graph (init, from the system description)\n! from | to | authority\n");
    for (from, to, what) in edges {
        let _ = writeln!(text, "{from} | {to} | {what}");
    }
    let page = PAGE_SIZE as usize;
    let room = (frames.len() * page).saturating_sub(capring::status::HEADER);
    if text.len() > room {
        // Whole lines only, and say so.
        let note = "(more edges than the region holds: see init's graph: lines)\n";
        let keep = text[..room.saturating_sub(note.len())].rfind('\n').map_or(0, |n| n + 1);
        text.truncate(keep);
        text.push_str(note);
    }
    // The text first, the header (which makes it visible) last.
    let bytes = text.as_bytes();
    let mut done = 0;
    for (k, &frame) in frames.iter().enumerate() {
        let start = (k * page).max(capring::status::HEADER);
        let end = ((k + 1) * page).min(capring::status::HEADER + bytes.len());
        if start >= end {
            break;
        }
        let from = start - capring::status::HEADER;
        if let Err(e) = build::fill(Frame(frame), start - k * page, &bytes[from..from + (end - start)]) {
            println!("init: region '{REGION}' not written: {e:?}");
            return;
        }
        done = end - capring::status::HEADER;
    }
    let header = capring::status::header(done as u32);
    match frames.first().map(|&f| build::fill(Frame(f), 0, &header)) {
        Some(Ok(())) => println!("init: region '{REGION}': {} edges, {done} bytes", edges.len()),
        Some(Err(e)) => println!("init: region '{REGION}' not written: {e:?}"),
        None => {}
    }
}
