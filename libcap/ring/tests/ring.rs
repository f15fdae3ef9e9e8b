//! Host tests of the shared-memory rings: order, wrap, hostile peers, threads.

use capring::{BlockOp, BlockRequest, BufDesc, Consumer, Producer, RegionRange, RingError, RingMemory};

/// One 4 KiB ring's memory, 64-byte aligned like a mapped page.
#[repr(C, align(64))]
struct Page([u8; 4096]);

fn page() -> Box<Page> {
    Box::new(Page([0; 4096]))
}

fn ends(p: &mut Page) -> (Producer<BufDesc>, Consumer<BufDesc>) {
    let base = p.0.as_mut_ptr();
    // SAFETY: the page outlives both ends in every test, which use it only as this ring.
    let (a, b) = unsafe { (RingMemory::new(base, 4096).unwrap(), RingMemory::new(base, 4096).unwrap()) };
    (Producer::new(a).unwrap(), Consumer::new(b).unwrap())
}

fn write_u32(p: &mut Page, offset: usize, v: u32) {
    p.0[offset..offset + 4].copy_from_slice(&v.to_le_bytes());
}

fn desc(i: u32) -> BufDesc {
    BufDesc { offset: u64::from(i) * 2048, len: 60 + i, id: i }
}

#[test]
fn capacity_is_a_power_of_two_that_fits() {
    assert_eq!(RingMemory::<BufDesc>::capacity_for(4096), 128);
    assert_eq!(RingMemory::<BlockRequest>::capacity_for(4096), 64);
    assert_eq!(RingMemory::<BufDesc>::capacity_for(128 + 16), 1);
    assert_eq!(RingMemory::<BufDesc>::capacity_for(128 + 15), 0);
    assert_eq!(RingMemory::<BufDesc>::capacity_for(8192), 256);
}

#[test]
fn refuses_small_or_misaligned_memory() {
    let mut p = page();
    let base = p.0.as_mut_ptr();
    // SAFETY: the page outlives the attempts; nothing is kept.
    unsafe {
        assert!(matches!(RingMemory::<BufDesc>::new(base, 100), Err(RingError::TooSmall { bytes: 100 })));
        assert!(matches!(RingMemory::<BufDesc>::new(base.add(8), 2048), Err(RingError::Misaligned)));
        assert!(matches!(RingMemory::<BufDesc>::new(core::ptr::null_mut(), 4096), Err(RingError::Misaligned)));
    }
}

#[test]
fn entries_arrive_in_order_and_full_is_refused() {
    let mut p = page();
    let (mut prod, mut cons) = ends(&mut p);
    assert_eq!(cons.pop(), Ok(None));
    for i in 0..128 {
        prod.push(desc(i)).unwrap();
    }
    assert_eq!(prod.push(desc(999)), Err(RingError::Full));
    // Not published yet: the consumer sees nothing.
    assert_eq!(cons.pop(), Ok(None));
    assert!(!prod.publish(), "nobody asked for a signal");
    for i in 0..128 {
        assert_eq!(cons.pop(), Ok(Some(desc(i))));
    }
    assert_eq!(cons.pop(), Ok(None));
    // Slots come back only after release.
    assert_eq!(prod.push(desc(0)), Err(RingError::Full));
    cons.release();
    assert_eq!(prod.free(), Ok(128));
    prod.push(desc(7)).unwrap();
}

#[test]
fn indices_wrap_past_u32_max() {
    let mut p = page();
    let start = u32::MAX - 5;
    write_u32(&mut p, 0, start);
    write_u32(&mut p, 64, start);
    let (mut prod, mut cons) = ends(&mut p);
    for round in 0..3u32 {
        for i in 0..100 {
            prod.push(desc(round * 100 + i)).unwrap();
        }
        prod.publish();
        for i in 0..100 {
            assert_eq!(cons.pop(), Ok(Some(desc(round * 100 + i))));
        }
        cons.release();
    }
    assert_eq!(u32::from_le_bytes(p.0[0..4].try_into().unwrap()), start.wrapping_add(300));
}

#[test]
fn a_hostile_producer_index_is_refused() {
    let mut p = page();
    let (mut prod, mut cons) = ends(&mut p);
    prod.push(desc(1)).unwrap();
    prod.publish();
    // The producer claims 129 entries in flight in a 128-entry ring.
    write_u32(&mut p, 0, 129);
    assert_eq!(cons.pop(), Err(RingError::Corrupt { head: 0, tail: 129 }));
    // Moving tail backwards is as impossible.
    write_u32(&mut p, 0, u32::MAX);
    assert!(matches!(cons.pop(), Err(RingError::Corrupt { .. })));
}

#[test]
fn a_hostile_consumer_index_is_refused() {
    let mut p = page();
    let (mut prod, _cons) = ends(&mut p);
    prod.push(desc(1)).unwrap();
    prod.publish();
    // The consumer claims to have consumed more than was produced.
    write_u32(&mut p, 64, 5);
    assert!(matches!(prod.free(), Err(RingError::Corrupt { head: 5, tail: 1 })));
    assert!(matches!(prod.push(desc(2)), Ok(()) | Err(RingError::Corrupt { .. })));
}

#[test]
fn corrupt_memory_at_start_is_refused() {
    let mut p = page();
    write_u32(&mut p, 0, 1000);
    let base = p.0.as_mut_ptr();
    // SAFETY: the page outlives the attempt.
    let mem = unsafe { RingMemory::<BufDesc>::new(base, 4096).unwrap() };
    assert!(matches!(Consumer::new(mem), Err(RingError::Corrupt { head: 0, tail: 1000 })));
}

#[test]
fn descriptors_outside_the_region_are_refused() {
    let region = 64 * 1024;
    let ok = BufDesc { offset: 2048, len: 1514, id: 3 };
    assert_eq!(ok.range(region), Ok(RegionRange { offset: 2048, len: 1514 }));
    let last = BufDesc { offset: region as u64 - 16, len: 16, id: 0 };
    assert!(last.range(region).is_ok());
    for bad in [
        BufDesc { offset: region as u64 - 16, len: 17, id: 0 },
        BufDesc { offset: region as u64, len: 1, id: 0 },
        BufDesc { offset: u64::MAX - 3, len: 8, id: 0 },
        BufDesc { offset: 0, len: 0, id: 0 },
    ] {
        assert!(matches!(bad.range(region), Err(RingError::OutOfRegion { .. })), "{bad:?}");
    }
}

#[test]
fn block_requests_are_checked_too() {
    let req = BlockRequest { op: 2, status: 0, offset: 4096, lba: 8, count: 8, id: 1 };
    assert_eq!(BlockOp::from_raw(req.op), Ok(BlockOp::Write));
    assert_eq!(req.range(512, 8192), Ok(RegionRange { offset: 4096, len: 4096 }));
    assert!(matches!(req.range(512, 8191), Err(RingError::OutOfRegion { .. })));
    let huge = BlockRequest { count: u32::MAX, ..req };
    assert!(matches!(huge.range(4096, 1 << 20), Err(RingError::OutOfRegion { .. })));
    assert_eq!(BlockOp::from_raw(9), Err(RingError::BadOp(9)));
}

#[test]
fn the_waiting_flags_never_lose_a_wakeup() {
    let mut p = page();
    let (mut prod, mut cons) = ends(&mut p);
    // Consumer about to sleep on an empty ring: the producer's publish must report it.
    assert_eq!(cons.prepare_wait(), Ok(true));
    prod.push(desc(1)).unwrap();
    assert!(prod.publish(), "the consumer asked for a signal");
    cons.done_waiting();
    // Entries already there: prepare_wait says do not sleep and lowers the flag.
    prod.push(desc(2)).unwrap();
    prod.publish();
    assert_eq!(cons.prepare_wait(), Ok(false));
    assert!(!prod.publish());
    // Producer about to sleep on a full ring: the consumer's release must report it.
    while cons.pop().unwrap().is_some() {}
    cons.release();
    while prod.push(desc(3)).is_ok() {}
    prod.publish();
    assert_eq!(prod.prepare_wait(), Ok(true));
    cons.pop().unwrap();
    assert!(cons.release(), "the producer asked for a signal");
}

/// A pointer to the test page that may cross threads (each thread builds its own end).
struct SendPtr(*mut u8);
// SAFETY: the page outlives both threads (joined before it drops) and each thread uses
// it only through its own end of the ring.
unsafe impl Send for SendPtr {}

#[test]
fn two_threads_pass_a_million_entries_in_order() {
    const N: u32 = 1_000_000;
    let mut p = page();
    let (a, b) = (SendPtr(p.0.as_mut_ptr()), SendPtr(p.0.as_mut_ptr()));
    let producer = std::thread::spawn(move || {
        let a = a;
        // SAFETY: see SendPtr.
        let mut prod = Producer::<BufDesc>::new(unsafe { RingMemory::new(a.0, 4096) }.unwrap()).unwrap();
        let mut i = 0;
        while i < N {
            match prod.push(desc(i)) {
                Ok(()) => i += 1,
                Err(RingError::Full) => {
                    prod.publish();
                    std::thread::yield_now();
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        prod.publish();
    });
    let consumer = std::thread::spawn(move || {
        let b = b;
        // SAFETY: see SendPtr.
        let mut cons = Consumer::<BufDesc>::new(unsafe { RingMemory::new(b.0, 4096) }.unwrap()).unwrap();
        let mut next = 0;
        while next < N {
            match cons.pop().unwrap() {
                Some(d) => {
                    assert_eq!(d, desc(next));
                    next += 1;
                    if next % 64 == 0 {
                        cons.release();
                    }
                }
                None => {
                    cons.release();
                    std::thread::yield_now();
                }
            }
        }
    });
    producer.join().unwrap();
    consumer.join().unwrap();
    drop(p);
}
