//! HTTP/1.x request parsing and bounded responses for the status page.
//!
//! A request is read into a buffer of at most [`REQUEST_MAX`] bytes; it is complete at
//! its blank line (`\r\n\r\n` or `\n\n`). Its request line must be `METHOD TARGET
//! HTTP/1.x` in printable ASCII with an origin-form target; anything else (binary,
//! missing parts, a request longer than the buffer, a client that closes early) gets
//! `400 Bad Request`. Only `GET` and `HEAD` are served; another well-formed method gets
//! `405`. Every response says `Connection: close` and carries a `Content-Length`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Bytes of one request kept before it is refused as too long.
pub const REQUEST_MAX: usize = 2048;

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// `GET` (`head` false) or `HEAD` of `path` (the target without its query).
    Get { path: &'a str, head: bool },
    /// A well-formed request with another method.
    OtherMethod,
}

/// Why a request is refused with 400.
#[derive(Debug, PartialEq, Eq)]
pub enum Bad {
    /// No blank line within [`REQUEST_MAX`] bytes.
    TooLong,
    /// The peer closed before the blank line.
    Incomplete,
    /// The request line is not `METHOD /target HTTP/1.x` in printable ASCII.
    RequestLine,
}

/// Where the request's head ends (after its blank line), if it is complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses a complete request head (`closed`: the peer sent nothing more and closed).
pub fn parse(buf: &[u8], closed: bool) -> Result<Request<'_>, Bad> {
    let Some(end) = head_end(buf) else {
        return Err(if buf.len() >= REQUEST_MAX || !closed { Bad::TooLong } else { Bad::Incomplete });
    };
    let line_end = buf[..end].iter().position(|&b| b == b'\n').unwrap_or(end);
    let line = buf[..line_end].strip_suffix(b"\r").unwrap_or(&buf[..line_end]);
    if line.iter().any(|&b| !(0x20..0x7f).contains(&b)) {
        return Err(Bad::RequestLine);
    }
    // Printable ASCII: valid UTF-8.
    let line = core::str::from_utf8(line).map_err(|_| Bad::RequestLine)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Bad::RequestLine);
    };
    let token = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_');
    let version_ok = version.len() == 8 && version.starts_with("HTTP/1.") && version.as_bytes()[7].is_ascii_digit();
    if !token || !version_ok || !target.starts_with('/') {
        return Err(Bad::RequestLine);
    }
    let path = target.split(['?', '#']).next().unwrap_or("/");
    Ok(match method {
        "GET" => Request::Get { path, head: false },
        "HEAD" => Request::Get { path, head: true },
        _ => Request::OtherMethod,
    })
}

/// A whole response: status line, headers, and `body` unless `head`.
pub fn response(status: &str, content_type: &str, extra: &str, body: &[u8], head: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body);
    }
    out
}

/// The request line for the log: at most 80 characters, unprintable bytes as `?`.
pub fn log_line(buf: &[u8]) -> String {
    let line = buf.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or(&[]);
    line.iter().take(80).map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '?' }).collect()
}
