//! `systems/<name>.toml` -> checked, packed `CAPSYS01` bytes (the `mksys` library).
//!
//! [`compile`] reads a description with serde + toml, checks every rule the host can
//! see and reports each mistake as `file:line: entry: message` (all of them, not just
//! the first), then packs it with [`abi::system::encode`] and parses the result back
//! with [`abi::system::SystemDesc::parse`] (the same check the root task makes).
//! [`dot`] renders the authority graph. The format is documented in docs/system.md.

mod check;
pub mod dot;
mod filters;
pub mod model;

pub use check::compile;

/// 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The entry a line belongs to, from the nearest `[table]` header above it
/// (`device 'nic'`, `component 'x'`, `[system]`); "top level" before any header.
pub fn entry_at(text: &str, line: usize) -> String {
    let header = text.lines().take(line).filter_map(|l| l.trim().strip_prefix('[')).last();
    let Some(header) = header else { return "top level".into() };
    let inner = header.trim_start_matches('[').split(']').next().unwrap_or("").trim();
    match inner.split_once('.') {
        Some((table, name)) => {
            let kind = match table.trim() {
                "components" => "component",
                "channels" => "channel",
                "regions" => "region",
                "devices" => "device",
                "filters" => "filter",
                "isa" => "ISA device",
                other => other,
            };
            format!("{kind} '{}'", name.trim().trim_matches('"'))
        }
        None => format!("[{inner}]"),
    }
}
