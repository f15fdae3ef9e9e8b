//! Host tests of the data region and the NIC queue-region layout.

use capring::layout::net;
use capring::{BufDesc, DataRegion, RegionRange, RingError};

/// A page-aligned block of memory standing in for a mapped region.
#[repr(C, align(4096))]
struct Pages([u8; 4096 * net::PAGES]);

fn pages() -> Box<Pages> {
    Box::new(Pages([0; 4096 * net::PAGES]))
}

#[test]
fn region_copies_in_and_out_within_bounds() {
    let mut mem = vec![0u8; 8192];
    // SAFETY: `mem` outlives the region and is used only through it.
    let region = unsafe { DataRegion::new(mem.as_mut_ptr(), mem.len()) };
    let range = BufDesc { offset: 4096, len: 64, id: 0 }.range(region.len()).unwrap();
    region.write(range, b"hello").unwrap();
    let mut out = [0u8; 5];
    assert_eq!(region.read(range, &mut out), Ok(5));
    assert_eq!(&out, b"hello");
    // Reads stop at the range, not at the buffer.
    let mut long = [0u8; 100];
    assert_eq!(region.read(RegionRange { offset: 4096, len: 3 }, &mut long), Ok(3));
    assert_eq!(&mem[4096..4101], b"hello");
}

#[test]
fn region_refuses_ranges_outside_or_too_long() {
    let mut mem = vec![0u8; 4096];
    // SAFETY: as above.
    let region = unsafe { DataRegion::new(mem.as_mut_ptr(), mem.len()) };
    let mut out = [0u8; 16];
    // A forged range (not from `BufDesc::range`) is still checked.
    let past = RegionRange { offset: 4090, len: 16 };
    assert!(matches!(region.read(past, &mut out), Err(RingError::OutOfRegion { .. })));
    assert!(matches!(region.write(past, &out), Err(RingError::OutOfRegion { .. })));
    let wrap = RegionRange { offset: usize::MAX - 4, len: 16 };
    assert!(matches!(region.read(wrap, &mut out), Err(RingError::OutOfRegion { .. })));
    // Data longer than its range is refused, not truncated into a neighbour.
    assert!(matches!(region.write(RegionRange { offset: 0, len: 4 }, b"too long"), Err(RingError::OutOfRegion { .. })));
    assert!(mem.iter().all(|&b| b == 0), "nothing was written");
}

#[test]
fn driver_and_client_ends_meet() {
    let mut p = pages();
    let base = p.0.as_mut_ptr();
    // SAFETY: the pages outlive both sets of ends, used only as this queue region.
    let (mut driver, mut client) = unsafe { (net::driver(base).unwrap(), net::client(base).unwrap()) };
    let buf = BufDesc { offset: 2048, len: 2048, id: 7 };
    client.rx_free.push(buf).unwrap();
    client.rx_free.publish();
    assert_eq!(driver.rx_free.pop(), Ok(Some(buf)));
    driver.rx_active.push(BufDesc { len: 60, ..buf }).unwrap();
    driver.rx_active.publish();
    assert_eq!(client.rx_active.pop(), Ok(Some(BufDesc { offset: 2048, len: 60, id: 7 })));
    client.tx_active.push(BufDesc { offset: 0, len: 42, id: 1 }).unwrap();
    client.tx_active.publish();
    assert_eq!(driver.tx_active.pop().unwrap().map(|d| d.len), Some(42));
    driver.tx_free.push(BufDesc { offset: 0, len: 42, id: 1 }).unwrap();
    driver.tx_free.publish();
    assert_eq!(client.tx_free.pop().unwrap().map(|d| d.id), Some(1));
    // The four rings are distinct pages: nothing crossed over.
    assert_eq!(client.rx_active.pop(), Ok(None));
    assert_eq!(driver.rx_free.pop(), Ok(None));
}

#[test]
fn nic_info_is_seen_only_once_published() {
    let mut p = pages();
    let base = p.0.as_mut_ptr();
    let info = net::NicInfo { mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56], flags: net::NIC_LOOPBACK, max_frame: 1514 };
    // SAFETY: the pages outlive the calls.
    unsafe {
        assert_eq!(net::read_info(base), None);
        net::publish_info(base, info);
        assert_eq!(net::read_info(base), Some(info));
    }
    // It sits in its own page, after the rings.
    assert_eq!(p.0[net::INFO * 4096..net::INFO * 4096 + 4], net::INFO_READY.to_le_bytes());
    assert!(p.0[..net::INFO * 4096].iter().all(|&b| b == 0));
}

#[test]
fn block_ends_meet_and_info_is_published() {
    use capring::layout::block;
    use capring::{BlockOp, BlockRequest};
    let mut p = pages();
    let base = p.0.as_mut_ptr();
    // SAFETY: the pages outlive the ends, used only as this queue region.
    let (mut driver, mut client) = unsafe { (block::driver(base).unwrap(), block::client(base).unwrap()) };
    let req = BlockRequest { op: BlockOp::Write as u32, status: 0, offset: 4096, lba: 512, count: 8, id: 3 };
    client.request.push(req).unwrap();
    client.request.publish();
    let got = driver.request.pop().unwrap().unwrap();
    assert_eq!(got, req);
    assert_eq!(got.range(512, 8192).map(|r| (r.offset, r.len)), Ok((4096, 4096)));
    assert!(got.range(512, 4096).is_err(), "4 KiB at 4096 does not fit 4 KiB");
    driver.completion.push(BlockRequest { status: block::STATUS_OK, ..got }).unwrap();
    driver.completion.publish();
    assert_eq!(client.completion.pop().unwrap().map(|c| (c.id, c.status)), Some((3, block::STATUS_OK)));
    let info = block::BlockInfo { blocks: 2048, block_size: 512, max_blocks: 32 };
    // SAFETY: as above.
    unsafe {
        assert_eq!(block::read_info(base), None);
        block::publish_info(base, info);
        assert_eq!(block::read_info(base), Some(info));
    }
    assert_eq!(p.0[block::INFO * 4096..block::INFO * 4096 + 4], block::INFO_READY.to_le_bytes());
}
