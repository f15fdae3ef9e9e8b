//! Host tests of the VT-d invalidation, fault-event and fault-record encodings.

use super::*;

#[test]
fn context_invalidation_encodings() {
    let device = ContextInvalidation::Device { domain: 5, source: 0x0018 };
    // Type 1, granularity 3 (device), DID 5 in 31:16, SID 0x18 in 47:32, FM 0.
    assert_eq!(device.descriptor(), [0x0000_0018_0005_0031, 0]);
    // ICC, CIRG 3, SID in 31:16, DID in 15:0.
    assert_eq!(device.register(), 0xe000_0000_0018_0005);
    assert_eq!(ContextInvalidation::Global.descriptor(), [0x11, 0]);
    assert_eq!(ContextInvalidation::Global.register(), 0xa000_0000_0000_0000);
}

#[test]
fn iotlb_invalidation_encodings() {
    // Type 2, drain reads and writes; granularity 1 global, 2 domain, 3 page.
    assert_eq!(IotlbInvalidation::Global.descriptor(), [0xd2, 0]);
    assert_eq!(IotlbInvalidation::Domain(7).descriptor(), [0x0007_00e2, 0]);
    let page = IotlbInvalidation::Pages { domain: 7, iova: 0x1000_2000, mask: 0 };
    assert_eq!(page.descriptor(), [0x0007_00f2, 0x1000_2000], "IH clear, AM 0");
    let big = IotlbInvalidation::Pages { domain: 0x1234, iova: 0x20_0000, mask: 9 };
    assert_eq!(big.descriptor(), [0x1234_00f2, 0x20_0009]);
    // IVT, IIRG in 61:60, DR/DW 49:48, DID 47:32; IVA holds address | AM.
    assert_eq!(IotlbInvalidation::Global.registers(), (0, 0x9003_0000_0000_0000));
    assert_eq!(IotlbInvalidation::Domain(7).registers(), (0, 0xa003_0007_0000_0000));
    assert_eq!(big.registers(), (0x20_0009, 0xb003_1234_0000_0000));
}

#[test]
fn covering_blocks_and_choice() {
    assert_eq!(covering_block(0x1000_2000, 0x1000_3000), (0x1000_2000, 0));
    assert_eq!(covering_block(0x1000_0000, 0x1004_0000), (0x1000_0000, 6), "64 aligned pages");
    assert_eq!(covering_block(0x1000_f000, 0x1001_1000), (0x1000_0000, 5), "2 pages across a 64 KiB line");
    assert_eq!(covering_block(0x20_0000, 0x40_0000), (0x20_0000, 9), "a 2 MiB frame");
    assert_eq!(covering_block(0x4000_0000, 0x4000_1000), (0x4000_0000, 0));
    assert_eq!(
        IotlbInvalidation::for_range(3, 0x20_0000, 0x40_0000, Some(18)),
        IotlbInvalidation::Pages { domain: 3, iova: 0x20_0000, mask: 9 }
    );
    assert_eq!(IotlbInvalidation::for_range(3, 0x20_0000, 0x40_0000, Some(8)), IotlbInvalidation::Domain(3));
    assert_eq!(IotlbInvalidation::for_range(3, 0x1000, 0x2000, None), IotlbInvalidation::Domain(3), "no PSI");
    // Two pages far apart need a block beyond MAMV 18 (1 GiB): domain-selective.
    assert_eq!(IotlbInvalidation::for_range(3, 0, 0x8000_0000, Some(18)), IotlbInvalidation::Domain(3));
}

#[test]
fn wait_descriptor_encoding() {
    assert_eq!(wait_descriptor(3, 0x1234), [0x0000_0003_0000_0025, 0x1234]);
    assert_eq!(wait_descriptor(u32::MAX, 0x10_0007)[1], 0x10_0004, "status address is dword aligned");
}

#[test]
fn fault_event_message() {
    assert_eq!(fault_event_msi(0, 0xf0), Some((0xf0, 0xfee0_0000, 0)));
    assert_eq!(fault_event_msi(3, 0xf0), Some((0xf0, 0xfee0_3000, 0)));
    assert_eq!(fault_event_msi(300, 0xf0), None, "x2APIC ids do not fit");
}

#[test]
fn fault_records_decode() {
    let high = fault_event::RECORD_F | (5 << 32) | 0x18;
    let r = FaultRecord::decode(0x1000_2abc, high).unwrap();
    assert_eq!(r, FaultRecord { source: 0x18, reason: 5, iova: 0x1000_2000, write: true, interrupt_index: None });
    let read = FaultRecord::decode(0x3000, high | fault_event::RECORD_READ).unwrap();
    assert!(!read.write);
    assert_eq!(FaultRecord::decode(0x3000, high & !fault_event::RECORD_F), None);
    // Interrupt-remapping faults carry the interrupt index in FI bits 63:48, no address.
    let sid_mismatch = fault_event::RECORD_F | (0x26 << 32) | 0x20;
    let ir = FaultRecord::decode(0x0081_0000_0000_0000, sid_mismatch).unwrap();
    assert_eq!((ir.source, ir.reason, ir.iova, ir.interrupt_index), (0x20, 0x26, 0, Some(0x81)));
}

#[test]
fn fault_storm_masks_until_the_next_tick() {
    let mut s = FaultStorm::new();
    assert!(!s.tick(), "a quiet tick unmasks nothing");
    assert_eq!([0; 3].map(|_| s.interrupt(3)), [false; 3]);
    assert!(s.interrupt(3), "the 4th interrupt in a tick starts the storm");
    assert!(!s.interrupt(3), "masking happens once");
    assert!(s.masked);
    assert!(s.tick(), "the tick unmasks");
    assert!(!s.tick());
    assert_eq!([0; 3].map(|_| s.interrupt(3)), [false; 3], "the count restarted");
    assert_eq!([0; 3].map(|_| s.may_log(2)), [true, true, false], "two lines per tick");
    s.tick();
    assert!(s.may_log(2), "the log budget restarted");
}
