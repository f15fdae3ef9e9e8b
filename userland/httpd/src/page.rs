//! The status page as HTML (and as plain text) from the read-only status regions.
//!
//! Every status region the partition maps read-only is a page some component writes
//! (`capring::status`): management's `status-page`, the iommu-server's
//! `iommu-status`, the bridge's `bridge-status`, init's `authority-graph`, and any
//! other a description adds. Each becomes a section; its text's table markup
//! (`# caption`, `! header | ...`, `cell | cell`, `label: value`) becomes HTML tables.
//! All text is escaped; the page has no script, only a meta refresh.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use capring::status::StatusPage;

/// Most bytes of page body; sections past it are left out (and the page says so).
pub const BODY_MAX: usize = 48 * 1024;
/// Most bytes read from one status region.
const SOURCE_MAX: usize = 16 * 1024;
/// Seconds between the browser's reloads of the page.
const REFRESH_SECONDS: u32 = 5;

/// One read-only status region: its name and the page in it.
pub struct Source {
    /// The region's name in the description.
    pub region: &'static str,
    /// Its bytes.
    pub page: StatusPage,
    /// Its size.
    pub size: usize,
}

/// What the partition says of itself.
pub struct Me {
    /// Its station address.
    pub mac: [u8; 6],
    /// Requests served so far (this one included).
    pub served: u64,
}

/// Title, writer and sort key of a known region; others keep their name, in between.
/// Keys of 8 and more get the page's whole width (wide tables).
fn known(region: &'static str) -> (String, &'static str, u8) {
    match region {
        "status-page" => ("Management: faults, components, restarts".into(), "management", 0),
        "bridge-status" => ("Bridge: frames and drops per port".into(), "bridge", 1),
        "iommu-status" => ("DMA domains and pools".into(), "iommu-server", 8),
        "authority-graph" => ("Authority graph".into(), "init", 9),
        other => (other.into(), other.strip_suffix("-status").unwrap_or("its writer"), 5),
    }
}

/// The sources in page order.
pub fn ordered(mut sources: Vec<Source>) -> Vec<Source> {
    sources.sort_by_key(|s| known(s.region).2);
    sources
}

/// The current text of `s`, or None if nothing consistent was published.
fn text_of(s: &Source) -> Option<String> {
    let mut buf = vec![0u8; s.size.min(SOURCE_MAX)];
    let n = s.page.read(&mut buf)?;
    buf.truncate(n);
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// `text` with HTML's special characters escaped.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The class of a cell under `header`: a nonzero fault/drop counter or a cut-off stands out.
fn class_of(header: &str, cell: &str) -> &'static str {
    let h = header.to_ascii_lowercase();
    let counter = ["fault", "lost", "drop", "refused", "restart", "cut"].iter().any(|k| h.contains(k));
    let nonzero = cell.split(' ').next().and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 0);
    if (counter && nonzero) || cell.starts_with("cut off") {
        " class=\"hot\""
    } else {
        ""
    }
}

/// Renders one status text's markup as tables.
fn tables(out: &mut String, text: &str) {
    let mut open = false;
    let mut headers: Vec<String> = Vec::new();
    let close = |out: &mut String, open: &mut bool| {
        if core::mem::take(open) {
            out.push_str("</tbody></table>\n");
        }
    };
    for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        if let Some(caption) = line.strip_prefix("# ") {
            close(out, &mut open);
            headers.clear();
            let _ = writeln!(out, "<table><caption>{}</caption><tbody>", esc(caption));
            open = true;
            continue;
        }
        if !open {
            out.push_str("<table><tbody>\n");
            open = true;
            headers.clear();
        }
        if let Some(head) = line.strip_prefix("! ") {
            headers = head.split(" | ").map(String::from).collect();
            out.push_str("<tr>");
            for h in &headers {
                let _ = write!(out, "<th scope=\"col\">{}</th>", esc(h));
            }
            out.push_str("</tr>\n");
        } else if line.contains(" | ") {
            out.push_str("<tr>");
            for (i, cell) in line.split(" | ").enumerate() {
                let class = class_of(headers.get(i).map_or("", String::as_str), cell);
                let _ = write!(out, "<td{class}>{}</td>", esc(cell));
            }
            out.push_str("</tr>\n");
        } else if let Some((label, value)) = line.split_once(": ") {
            let _ = writeln!(out, "<tr><th scope=\"row\">{}</th><td>{}</td></tr>", esc(label), esc(value));
        } else {
            let _ = writeln!(out, "<tr><td colspan=\"9\">{}</td></tr>", esc(line));
        }
    }
    close(out, &mut open);
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}\
header{background:#1d2f4f;color:#fff;padding:1em 2em}header h1{margin:0 0 .2em;font-size:1.5em}\
header p{margin:.2em 0;color:#cfd8e8}main{padding:1em 2em;display:grid;gap:1em;\
grid-template-columns:repeat(auto-fit,minmax(34em,1fr))}section{background:#fff;border:1px solid #d8dce3;\
border-radius:6px;padding:.6em 1.2em 1em;overflow-x:auto}section.wide{grid-column:1/-1}h2{font-size:1.1em;margin:.4em 0 .6em}\
table{border-collapse:collapse;width:100%;margin:.4em 0 1em}caption{text-align:left;font-weight:600;\
padding:.2em 0;color:#3b4a66}th,td{border-bottom:1px solid #e4e7ec;padding:.25em .6em;text-align:left;\
vertical-align:top}th{background:#f0f2f6;font-weight:600}td.hot{color:#b3261e;font-weight:700}\
p.src{color:#6b7485;font-size:.85em;margin:0}code{background:#eef0f4;padding:0 .25em;border-radius:3px}";

/// The HTML page.
pub fn html(me: &Me, sources: &[Source]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>capkernel appliance: status</title><style>{STYLE}</style></head><body>\n\
         <header><h1>capkernel appliance: status</h1>\
         <p id=\"partition\">capkernel appliance: user partition httpd, serving 10.0.2.15:80 (TCP), MAC {}; \
         request {} since boot; refreshed every {REFRESH_SECONDS} s.</p>\
         <p>This partition holds no device, no IOSpace and no IOVA: frames reach it through rings \
         from the bridge. Everything below is read from status regions mapped read-only into it.</p>\
         </header>\n<main>",
        netclient::hex(&me.mac),
        me.served
    );
    for s in sources {
        let (title, writer, key) = known(s.region);
        if out.len() >= BODY_MAX - 2048 {
            let _ = writeln!(out, "<section><p>Section '{}' left out: the page is full.</p></section>", esc(s.region));
            continue;
        }
        let wide = if key >= 8 { " class=\"wide\"" } else { "" };
        let _ = writeln!(out, "<section id=\"{}\"{wide}><h2>{}</h2>", esc(s.region), esc(&title));
        match text_of(s) {
            Some(text) => {
                let mut part = String::new();
                tables(&mut part, &text);
                let room = (BODY_MAX - 1024).saturating_sub(out.len());
                if part.len() > room {
                    out.push_str("<p>Too long for the page: see <a href=\"/status.txt\">/status.txt</a>.</p>\n");
                } else {
                    out.push_str(&part);
                }
            }
            None => out.push_str("<p>Nothing published yet.</p>\n"),
        }
        let _ = writeln!(
            out,
            "<p class=\"src\">Written by {writer} into region <code>{}</code>, read-only here.</p></section>",
            esc(s.region)
        );
    }
    out.push_str("</main></body></html>\n");
    out
}

/// The same as plain text (`/status.txt`): the published texts as they are.
pub fn text(me: &Me, sources: &[Source]) -> String {
    let mut out = format!(
        "capkernel appliance: user partition httpd\naddress 10.0.2.15, MAC {}, port 80\nrequests served {}\n\
         this partition holds no device, no IOSpace and no IOVA: frames reach it through rings\n",
        netclient::hex(&me.mac),
        me.served
    );
    for s in sources {
        let body = text_of(s).unwrap_or_else(|| String::from("nothing published yet\n"));
        if out.len() + body.len() > BODY_MAX {
            let _ = writeln!(out, "\n{}: left out (the page is full)", s.region);
            continue;
        }
        let _ = write!(out, "\n{} (read-only):\n{body}", s.region);
    }
    out
}
