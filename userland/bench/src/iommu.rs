//! iommu-server rows: dma_alloc and dma_free of one 4 KiB buffer via the server.
//!
//! The server runs in its own address space (sharing the root CSpace) and manages
//! q35's SATA controller (00:1f.2: no DMA runs, the server only assigns it to its
//! IOSpace); the bench thread is its client. A
//! `dma_alloc` is a Call whose reply carries the frame cap, plus the client's CPU
//! mapping of the frame; a `dma_free` is a Call after which the server has unmapped the
//! IOVA (invalidation completed) and revoked the frame (the client's cap and mapping).

use abi::bootinfo::BootInfo;
use abi::iommu::driver_badge;
use abi::layout::PAGE_SIZE;
use abi::object::ObjectType;
use abi::rights::CapRights;
use abi::slots;
use iommu_server::server::{Config, DeviceCaps};
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, VSpace};
use libcap::iommu::{ClientSpace, IommuClient};
use libcap::println;
use libcap::space::{clone_image_space, spawn_in};

use crate::{now, report, RUNS};

/// Stack of the server thread, and where the client maps its buffers.
const SERVER_REGION: u64 = 0x0000_5200_0000_0000;
const BUFFERS: core::ops::Range<u64> = 0x0000_5300_0000_0000..0x0000_5300_0010_0000;

/// What the server thread runs with (root CSpace slots).
static SERVER: spin::Once<(u64, u64, core::ops::Range<u64>, [DeviceCaps; 1])> = spin::Once::new();

extern "C" fn server(_: u64) -> ! {
    let (endpoint, untyped, free, devices) = SERVER.get().expect("set before the start");
    let config = Config {
        cnode: slots::INIT_CNODE,
        endpoint: *endpoint,
        fault_ntfn: 0,
        untyped: *untyped..*untyped + 1,
        irq_control: 0,
        free_slots: free.clone(),
        address_bits: 39,
        devices,
        malicious: None,
        msix: &[],
        status: None,
    };
    iommu_server::server::run(&config)
}

/// Measures and reports the rows; says so and returns if there is no SATA controller.
pub fn rows(bi: &'static BootInfo, objects: &mut ObjectAllocator, slots: &SlotAllocator, overhead: u64) {
    let Some(index) = bi.pci_devices().iter().position(|d| d.class == 0x01 && d.subclass == 0x06) else {
        println!("bench: no SATA controller to assign: iommu-server rows skipped");
        return;
    };
    let root = CNode(slots::INIT_CNODE);
    let alloc = |objects: &mut ObjectAllocator, t, bits| objects.alloc(slots, t, bits).expect("bench objects");
    let ep = alloc(objects, ObjectType::Endpoint, 0);
    let pool = alloc(objects, ObjectType::Untyped, 16);
    let untyped = alloc(objects, ObjectType::Untyped, 18);
    let free = slots.alloc_range(256).expect("slots");
    let pci = bi.pci_device_caps.start + index as u64;
    SERVER.call_once(|| {
        (
            ep,
            untyped,
            free..free + 256,
            [DeviceCaps {
                pci,
                pool,
                dma_mask_bits: 28,
                fault_ep: 0,
                msi: None,
                handler: iommu_server::server::NO_HANDLER,
                doorbell: 0,
            }],
        )
    });
    let space = clone_image_space(objects, slots, bi).expect("server space");
    spawn_in(objects, slots, space, server, 0, 255, SERVER_REGION, 0).expect("server thread");
    let send = slots.alloc().expect("slot");
    let rights = CapRights::WRITE.union(CapRights::GRANT);
    CNode::mint(root.slot(send), root.slot(ep), rights, driver_badge(0, 1)).expect("driver cap");
    let first = slots.alloc_range(64).expect("slots");
    let space = ClientSpace {
        cnode: slots::INIT_CNODE,
        vspace: VSpace(slots::INIT_VSPACE),
        untyped: alloc(objects, ObjectType::Untyped, 16),
        slots: first..first + 64,
        vaddrs: BUFFERS,
    };
    let mut client = IommuClient::new(send, space);
    let rw = CapRights::READ.union(CapRights::WRITE);
    // Warm up: page tables on both sides, the first frame retyped.
    let warm = client.dma_alloc(PAGE_SIZE, rw).expect("dma_alloc through the iommu-server");
    client.dma_free(&warm).expect("dma_free through the iommu-server");
    let (mut allocs, mut frees, mut both) = ([0u64; RUNS], [0u64; RUNS], [0u64; RUNS]);
    for i in 0..RUNS {
        let t0 = now();
        let buffer = client.dma_alloc(PAGE_SIZE, rw);
        let t1 = now();
        let freed = buffer.as_ref().map(|b| client.dma_free(b));
        let t2 = now();
        assert!(matches!(freed, Ok(Ok(1))), "dma_alloc/dma_free through the iommu-server");
        (allocs[i], frees[i], both[i]) = (t1 - t0, t2 - t1, t2 - t0);
    }
    report("iommu-server dma_alloc 4 KiB (reply with cap, CPU map)", &mut allocs, overhead);
    report("iommu-server dma_free 4 KiB (unmap IO, revoke)", &mut frees, overhead);
    report("iommu-server dma_alloc+dma_free 4 KiB", &mut both, overhead);
}
