//! A guest serial console on a QEMU socket: send a command line, read its reply.
//!
//! Management's console is COM2, QEMU's second `-serial`. [`com2_args`] puts it on a
//! Unix socket that QEMU listens on (`server=on,wait=off`: the guest boots without a
//! client; what it prints while none is connected is dropped). [`SerialConsole`]
//! connects, resynchronises on the prompt, then sends one line at a time and returns
//! the text printed before the next prompt.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// QEMU arguments for a second serial port (COM2: 0x2f8, IRQ 3) on Unix socket `path`.
pub fn com2_args(path: &Path) -> Vec<String> {
    vec!["-serial".to_string(), format!("unix:{},server=on,wait=off", path.display())]
}

/// A connected console.
pub struct SerialConsole {
    stream: UnixStream,
    prompt: String,
    pending: Vec<u8>,
}

impl SerialConsole {
    /// Connects to `path` (QEMU may still be starting: retried for `wait`), sends an
    /// empty line and reads up to `prompt`, then drops whatever else arrives within
    /// half a second (a banner's prompt printed as the client connected).
    pub fn connect(path: &Path, prompt: &str, wait: Duration) -> Result<SerialConsole, String> {
        let until = Instant::now() + wait;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() > until => return Err(format!("{}: {e}", path.display())),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let mut c = SerialConsole { stream, prompt: prompt.to_string(), pending: Vec::new() };
        c.send("")?;
        c.read_prompt(wait)?;
        std::thread::sleep(Duration::from_millis(500));
        c.stream.set_read_timeout(Some(Duration::from_millis(100))).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4096];
        while let Ok(n) = c.stream.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        c.pending.clear();
        Ok(c)
    }

    fn send(&mut self, line: &str) -> Result<(), String> {
        self.stream.write_all(format!("{line}\n").as_bytes()).map_err(|e| format!("sending '{line}': {e}"))
    }

    /// The text before the next prompt (prompt consumed), waiting up to `wait`.
    fn read_prompt(&mut self, wait: Duration) -> Result<String, String> {
        let until = Instant::now() + wait;
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            if let Some(at) = text.find(&self.prompt) {
                let before = text[..at].replace("\r\n", "\n");
                self.pending = text.as_bytes()[at + self.prompt.len()..].to_vec();
                return Ok(before);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no prompt '{}' within {wait:?}; got {text:?}", self.prompt));
            }
            self.stream.set_read_timeout(Some(left.min(Duration::from_millis(500)))).map_err(|e| e.to_string())?;
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(format!("the console closed; got {text:?}")),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Sends `line` and returns the reply printed before the next prompt.
    pub fn command(&mut self, line: &str, wait: Duration) -> Result<String, String> {
        self.send(line)?;
        self.read_prompt(wait).map_err(|e| format!("'{line}': {e}"))
    }
}
