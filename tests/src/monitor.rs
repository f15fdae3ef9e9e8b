//! Reads a running guest's physical memory through QEMU's human monitor.
//!
//! A scenario that adds [`args`] to its QEMU command line listens for the monitor on a
//! Unix socket; [`read_physical`] asks it to `pmemsave` a range into a file and returns
//! the bytes: what the guest's RAM holds, seen from outside the guest (a DMA that got
//! through would show there even if nothing in the guest looked).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The QEMU arguments for a monitor on the Unix socket `socket`.
pub fn args(socket: &Path) -> Vec<String> {
    vec!["-monitor".to_string(), format!("unix:{},server=on,wait=off", socket.display())]
}

/// `len` bytes of guest physical memory from `address`, through the monitor at
/// `socket` (written to a scratch file beside it).
pub fn read_physical(socket: &Path, address: u64, len: usize) -> Result<Vec<u8>, String> {
    let file: PathBuf = socket.with_extension(format!("{address:x}.bin"));
    let _ = std::fs::remove_file(&file);
    let mut s = UnixStream::connect(socket).map_err(|e| format!("monitor {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_millis(500))).map_err(|e| e.to_string())?;
    s.write_all(format!("pmemsave {address:#x} {len} \"{}\"\n", file.display()).as_bytes())
        .map_err(|e| format!("monitor: {e}"))?;
    let until = Instant::now() + Duration::from_secs(20);
    let mut said = Vec::new();
    while Instant::now() < until {
        let mut buf = [0u8; 1024];
        if let Ok(n) = s.read(&mut buf) {
            said.extend_from_slice(&buf[..n]);
        }
        match std::fs::read(&file) {
            Ok(bytes) if bytes.len() == len => {
                let _ = std::fs::remove_file(&file);
                return Ok(bytes);
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    Err(format!(
        "pmemsave {address:#x} {len} wrote nothing in 20 s; the monitor said: {}",
        String::from_utf8_lossy(&said)
    ))
}
