//! A driver instance hands its iommu-server client cap to a peer, then dies.
//!
//! Generation 1 sends its `IommuClient` cap (badge = driver_badge(dev, 1)) to the
//! `keeper` over an endpoint channel (client caps carry Grant), then CPU-faults; init
//! restarts it. Generation 2 allocates and uses a buffer, tells the keeper to go, and
//! checks its buffer again after the keeper called the server with generation 1's cap.

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use abi::layout::PAGE_SIZE;
use abi::msginfo::MessageInfo;
use abi::rights::CapRights;
use edu_driver::Edu;
use libcap::iommu::IommuClient;
use libcap::{ipc, println};

pub fn run(info: &'static ComponentInfo, client: &mut IommuClient, endpoint: u64, edu: &Edu, gen: u32) -> ExitCode {
    let Some(leak) = info.cap_of("leak", CapKind::Endpoint) else {
        println!("edudrv: leak: FAIL no 'leak' endpoint");
        return ExitCode::UserFailure;
    };
    let rw = CapRights::READ.union(CapRights::WRITE);
    let a = match client.dma_alloc(PAGE_SIZE, rw) {
        Ok(a) => a,
        Err(e) => {
            println!("edudrv: leak: FAIL dma_alloc: {e:?}");
            return ExitCode::UserFailure;
        }
    };
    let ok = crate::round_trip(edu, &a, 0xab00_0000 + u64::from(gen));
    println!("edudrv: leak: gen {gen} buffer iova {:#x}, DMA round trip {}", a.iova, if ok { "ok" } else { "FAILED" });
    if gen == 1 {
        ipc::set_extra_cap(endpoint);
        let info = MessageInfo { label: 1, caps_unwrapped: 0, extra_caps: 1, length: 1 };
        let sent = ipc::send(leak.slot, info, [0; 4]);
        println!("edudrv: leak: gen 1 sent its iommu client cap to the keeper: {sent:?}; now crashing");
        // SAFETY: deliberately a read of an unmapped address: init restarts us.
        let v = unsafe { core::ptr::read_volatile(0x0000_dead_0000 as *const u64) };
        println!("edudrv: leak: FAIL read {v:#x}");
        return ExitCode::UserFailure;
    }
    // Generation 2: let the keeper act (it has a higher priority: it runs at once).
    // (It gets this instance's cap too: the flip PoC uses both, after this instance
    // freed its buffer so no frame of the pool stays alive.)
    if info.name() == "edu-flip" {
        let freed = client.dma_free(&a);
        println!("edudrv: leak: gen {gen} freed its buffer before handing over its cap: {freed:?}");
    }
    ipc::set_extra_cap(endpoint);
    let go = MessageInfo { label: 2, caps_unwrapped: 0, extra_caps: 1, length: 1 };
    let _ = ipc::send(leak.slot, go, [0; 4]);
    for _ in 0..100 {
        ipc::yield_now();
    }
    let ok = crate::round_trip(edu, &a, 0xcd00_0000 + u64::from(gen));
    println!(
        "edudrv: leak: gen {gen} DMA round trip through its own live buffer {:#x} after the keeper's call: {}",
        a.iova,
        if ok { "ok" } else { "FAILED (buffer unmapped under the live driver)" }
    );
    let freed = client.dma_free(&a);
    println!("edudrv: leak: gen {gen} frees its own buffer {:#x}: {freed:?}", a.iova);
    ExitCode::Success
}
