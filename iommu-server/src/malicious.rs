//! What a malicious iommu-server tries, and the kernel refuses.
//!
//! The server is untrusted for memory safety: it can map only frames it holds caps
//! to, into IOSpaces it holds. Each attempt here is logged as
//! `iommu-server: malicious: <attempt>: refused (<error>)`, or `ACCEPTED` if the kernel
//! let it through (a scenario fails on that).

use abi::object::ObjectType;
use abi::rights::CapRights;
use libcap::cap::{CNode, CPtr, Frame, IoSpace, PciDevice};
use libcap::println;

use crate::server::Kernel;

/// Caps the malicious attempts use besides the server's own.
#[derive(Clone, Copy, Debug)]
pub struct Attempts {
    /// A frame of device memory (not RAM) the server was given, e.g. a BAR page.
    pub device_frame: CPtr,
    /// A slot the server does not hold a cap in (a forged frame "cap").
    pub forged_slot: CPtr,
}

/// An IOVA the attempts use (below edu's 28-bit mask, not one the allocator hands out
/// first).
const IOVA: u64 = 0x0f00_0000;

fn report(attempt: &str, result: Result<(), libcap::cap::Error>) {
    match result {
        Err(e) => println!("iommu-server: malicious: {attempt}: refused ({:?})", e.code),
        Ok(()) => println!("iommu-server: malicious: {attempt}: ACCEPTED"),
    }
}

/// Runs every attempt against device 0's domain (needs one device).
pub(crate) fn run(kernel: &mut Kernel, attempts: &Attempts) {
    let Some(&(caps, iospace)) = kernel.devices.first() else { return };
    let rw = CapRights::READ.union(CapRights::WRITE);
    let device_frame = kernel.map_in(iospace, attempts.device_frame, IOVA, rw);
    report("map a device-memory frame into the IOSpace", device_frame.map_err(error));
    let forged = Frame(attempts.forged_slot).map_io(iospace, IOVA, rw);
    report("map a forged frame slot into the IOSpace", forged);
    // A second domain, as if for another driver.
    let Some(other) = kernel.retype(caps.pool, ObjectType::IoSpace).map(IoSpace) else {
        println!("iommu-server: malicious: FAIL no memory for a second IOSpace");
        return;
    };
    report("assign the device to a second IOSpace", other.assign(PciDevice(caps.pci)));
    // Device 0's frame, mapped in its domain, mapped again into the other one.
    let Some(frame) = kernel.retype(caps.pool, ObjectType::Frame4K) else { return };
    if kernel.map_in(iospace, frame, IOVA, rw).is_ok() {
        let twice = kernel.map_in(other, frame, IOVA, rw);
        report("map a driver's mapped frame into another domain", twice.map_err(error));
        let _ = Frame(frame).unmap_io();
    }
    let _ = CNode::delete(kernel.slot(frame));
    let _ = CNode::delete(kernel.slot(other.0));
}

/// A raw error code back to a libcap error (for [`report`]).
fn error(code: u64) -> libcap::cap::Error {
    let code = abi::error::SyscallError::try_from(code).unwrap_or(abi::error::SyscallError::IllegalOperation);
    libcap::cap::Error { code, detail: 0 }
}
