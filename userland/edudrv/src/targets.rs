//! `edudrv-rogue-targets`: edu writes into a partition's page and the kernel.
//!
//! An attacker who knows physical addresses, with no cap to what lies there: generation
//! 1 has edu write 64 bytes to the physical address of `udpecho`'s canary page, which
//! the test system publishes in the read-only `canary-address` region (the address
//! only); later generations write 64 bytes to the kernel image's load address (its ELF,
//! docs/boot.md). The device's IOSpace maps neither, so VT-d blocks each write and
//! reports the address; management applies the device's policy (restart, then cut-off).

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use libcap::iommu::DmaBuffer;
use libcap::{ipc, println};

/// The kernel image's physical load address: `KERNEL_PHYS` of `kernel/linker.ld`, the
/// first `PT_LOAD` segment's `p_paddr` in the kernel ELF (the test compares the two).
pub const KERNEL_IMAGE_PADDR: u64 = 0x20_0000;
/// The first word of `canary-address` once the partition published its address
/// (`udpecho`'s `canary::ADDRESS_MAGIC`; the test system grants the region read-only).
const ADDRESS_MAGIC: u64 = u64::from_le_bytes(*b"CANARYPA");
/// Yields while waiting for the partition to publish its address.
const ADDRESS_POLLS: u32 = 2_000_000;
/// Bytes each rogue write covers.
const WRITE_BYTES: u64 = 64;

/// The partition's published canary address, once it is there.
fn canary_address(info: &'static ComponentInfo) -> Result<u64, &'static str> {
    let region = info.cap_of("canary-address", CapKind::Region).ok_or("no 'canary-address' region")?;
    let words = region.vaddr as *const u64;
    for _ in 0..ADDRESS_POLLS {
        // SAFETY: init mapped the region (read-only, at least a page) at this address
        // for the component's whole life; the partition writes the address before the
        // magic word.
        let (magic, address) = unsafe { (words.read_volatile(), words.add(1).read_volatile()) };
        if magic == ADDRESS_MAGIC {
            return Ok(address);
        }
        ipc::yield_now();
    }
    Err("the partition never published its canary address")
}

/// The rogue writes of this generation; then waits as every rogue mode does.
pub(crate) fn run(info: &'static ComponentInfo, d: &mut crate::Driver, a: &DmaBuffer) -> ExitCode {
    let target = if d.gen == 1 {
        match canary_address(info) {
            Ok(p) => {
                println!(
                    "edudrv: rogue-targets: writing {WRITE_BYTES} bytes to udpecho's canary page at physical {p:#x}"
                );
                p
            }
            Err(what) => {
                println!("edudrv: FAIL rogue-targets: {what}");
                return ExitCode::UserFailure;
            }
        }
    } else {
        println!(
            "edudrv: rogue-targets: writing {WRITE_BYTES} bytes to the kernel image at physical {KERNEL_IMAGE_PADDR:#x} (gen {})",
            d.gen
        );
        KERNEL_IMAGE_PADDR
    };
    // edu's buffer still holds the round trip's pattern: that is what it writes.
    let _ = d.edu.to_ram(0, target, WRITE_BYTES);
    println!("edudrv: rogue-targets: the write to {target:#x} finished (the device sees no error)");
    crate::after_fault(d, a)
}
