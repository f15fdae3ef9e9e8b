//! Host tests of the cap encoding: round trips and the raw views of the hot paths.
//!
//! Every cap kind, encoded and decoded; the raw-word views (`cap::raw`, `raw_frame`)
//! the IO and IPC short paths use, checked against `Cap::decode` on the same samples.

use abi::rights::CapRights;

use super::cap::*;
use super::untyped::{Cleared, CLEAR_CHUNK_BYTES, MAX_RETYPE_CLEAR_BYTES};
const NONE: Cleared = Cleared::NONE;

#[test]
fn raw_io_space_agrees_with_decode() {
    for cap in samples() {
        let w = cap.encode();
        let expected = match cap {
            Cap::IoSpace { paddr, levels, domain } => Some((paddr, levels, domain)),
            _ => None,
        };
        assert_eq!(raw::io_space([w[0], w[1], w[2]]), expected, "{cap:?}");
    }
}

#[test]
fn raw_frame_views_agree_with_decode() {
    use raw_frame as r;
    for cap in samples() {
        let w = cap.encode();
        assert_eq!(r::is_null(w[0]), cap.is_null(), "{cap:?}");
        assert_eq!(r::is_frame(w[0]), matches!(cap, Cap::Frame { .. }), "{cap:?}");
        if let Cap::Frame { paddr, size, rights, is_device, mapping } = cap {
            assert_eq!(w[r::WORD_ADDR], paddr);
            assert_eq!(r::size(w[0]), size);
            assert_eq!(r::bytes(w[0]), 1 << size.bits());
            assert_eq!(r::is_device(w[0]), is_device);
            assert_eq!(r::is_mapped(w[0]), mapping.is_some());
            assert_eq!(r::is_io_mapped_frame(w[0]), mapping.is_some_and(|m| m.is_io()));
            assert_eq!(r::rights(w[0]), u64::from(rights.raw()));
            for wanted in [CapRights::READ, CapRights::WRITE, CapRights::READ.union(CapRights::WRITE)] {
                let mappable = size == FrameSize::Small && !is_device && mapping.is_none() && rights.contains(wanted);
                assert_eq!(r::is_mappable_small(w[0], u64::from(wanted.raw())), mappable, "{cap:?}");
            }
            let io_small = size == FrameSize::Small && mapping.is_some_and(|m| m.is_io());
            assert_eq!(r::is_io_mapped_small(w[0]), io_small, "{cap:?}");
            let unmapped = Cap::Frame { paddr, size, rights, is_device, mapping: None };
            let io = Mapping { vspace: 0x7000, vaddr: 0x1000_0000, kind: MapKind::Io };
            let mapped = Cap::Frame { paddr, size, rights, is_device, mapping: Some(io) };
            let mut words = unmapped.encode();
            words[0] = r::with_io_mapping(words[0]);
            (words[r::WORD_SPACE], words[r::WORD_VADDR]) = (io.vspace, io.vaddr);
            assert_eq!(Cap::decode(words), Some(mapped));
            let mut back = mapped.encode();
            back[0] = r::without_mapping(back[0]);
            (back[r::WORD_SPACE], back[r::WORD_VADDR]) = (0, 0);
            assert_eq!(Cap::decode(back), Some(unmapped));
        }
    }
}

/// What `raw` reads from the stored words of `cap` must be what `cap` says.
fn check_raw_view(cap: Cap) {
    let w = cap.encode();
    assert_eq!(Cap::decode(w), Some(cap));
    let kind_tag = raw::tag(w[0]);
    let (rights, small) = (raw::rights(w[0]), raw::small(w[0]));
    match cap {
        Cap::CNode { paddr, radix, guard_bits, guard } => {
            assert_eq!(kind_tag, tag::CNODE);
            assert_eq!((small, raw::guard_bits(w[0])), (radix.into(), guard_bits.into()));
            assert_eq!((w[raw::WORD_ADDR], w[raw::WORD_GUARD]), (paddr, guard));
        }
        Cap::Endpoint { paddr, badge, rights: r } | Cap::Notification { paddr, badge, rights: r } => {
            let want = if matches!(cap, Cap::Endpoint { .. }) { tag::ENDPOINT } else { tag::NOTIFICATION };
            assert_eq!(kind_tag, want);
            assert_eq!(rights, u64::from(r.raw()));
            assert_eq!((w[raw::WORD_ADDR], w[raw::WORD_BADGE]), (paddr, badge));
            for needed in 0..16u64 {
                let has = needed & !rights == 0;
                assert_eq!(raw::has_tag_and_rights(w[0], want, needed), has, "{cap:?} {needed:#x}");
                assert!(!raw::has_tag_and_rights(w[0], tag::FRAME, needed));
            }
        }
        Cap::Frame { paddr, rights: r, mapping, .. } => {
            assert_eq!((kind_tag, rights), (tag::FRAME, u64::from(r.raw())));
            assert_eq!(w[raw::WORD_ADDR], paddr);
            if let Some(m) = mapping {
                assert_eq!((w[raw::WORD_SPACE], w[raw::WORD_VADDR]), (m.vspace, m.vaddr));
            }
        }
        Cap::Untyped { paddr, size_bits, .. } => {
            assert_eq!((kind_tag, small, w[raw::WORD_ADDR]), (tag::UNTYPED, size_bits.into(), paddr));
        }
        Cap::PageTable { level, .. } | Cap::IoPageTable { level, .. } => assert_eq!(small, level.into()),
        Cap::IoSpace { levels, .. } => assert_eq!(small, levels.into()),
        Cap::Null => assert_eq!(kind_tag, tag::NULL),
        _ => {}
    }
    // A slot's words are 8 bytes apart.
    assert_eq!(raw::word_addr(0x1000, raw::WORD_VADDR), 0x1000 + 24);
}

#[test]
fn raw_views_agree_with_encode() {
    for cap in samples() {
        check_raw_view(cap);
    }
}

proptest::proptest! {
    #[test]
    fn raw_views_agree_with_encode_for_any_fields(
        paddr in proptest::prelude::any::<u64>(),
        word in proptest::prelude::any::<u64>(),
        rights in 0..16u64,
        radix in 1..=16u8,
        guard_bits in 0..=63u8,
        level in 1..=3u8,
    ) {
        let rights = CapRights::from_raw(rights).unwrap();
        check_raw_view(Cap::CNode { paddr, radix, guard_bits, guard: word });
        check_raw_view(Cap::Endpoint { paddr, badge: word, rights });
        check_raw_view(Cap::Notification { paddr, badge: word, rights });
        let mapping = Some(Mapping { vspace: word, vaddr: paddr ^ word, kind: MapKind::Io });
        let size = if level == 1 { FrameSize::Small } else { FrameSize::Large };
        check_raw_view(Cap::Frame { paddr, size, rights, is_device: level == 3, mapping });
        check_raw_view(Cap::PageTable { paddr, level, mapping: None });
    }
}

fn samples() -> [Cap; 29] {
    [
        Cap::Vcpu { paddr: 0x40_2000 },
        Cap::GuestSpace { paddr: 0x40_5000 },
        Cap::Zombie {
            paddr: 0x10_0000,
            radix: 28,
            tcb: false,
            index: 0x0fff_ffff,
            next: 0x2040,
            last: 0x3080,
            record: true,
        },
        Cap::Zombie { paddr: 0x20_0800, radix: 0, tcb: true, index: 3, next: 0, last: 0, record: false },
        Cap::Null,
        Cap::Frame {
            paddr: 0x9000,
            size: FrameSize::Small,
            rights: CapRights::READ.union(CapRights::WRITE),
            is_device: false,
            mapping: Some(Mapping { vspace: 0x7000, vaddr: 0x1000_3000, kind: MapKind::Io }),
        },
        Cap::Untyped { paddr: 0x40_0000, size_bits: 22, is_device: false, free_offset: 0x3000, cleared: NONE },
        Cap::Untyped {
            paddr: 0x40_0000,
            size_bits: 36,
            is_device: false,
            free_offset: 0x3000,
            cleared: Cleared::zeroed(0x8000, MAX_RETYPE_CLEAR_BYTES - CLEAR_CHUNK_BYTES),
        },
        Cap::Untyped {
            paddr: 0x40_0000,
            size_bits: 36,
            is_device: true,
            free_offset: 0x20_0000,
            cleared: Cleared::creating(0x1000, 255, abi::object::ObjectType::Frame2M, 21),
        },
        Cap::Untyped { paddr: 0xfe00_0000, size_bits: 23, is_device: true, free_offset: 0, cleared: NONE },
        Cap::CNode { paddr: 0x10_0000, radix: 12, guard_bits: 52, guard: 0 },
        Cap::Tcb { paddr: 0x20_0800 },
        Cap::Endpoint { paddr: 0x20_0010, badge: u64::MAX, rights: CapRights::ALL },
        Cap::Notification { paddr: 0x20_0020, badge: 7, rights: CapRights::WRITE },
        Cap::Frame {
            paddr: 0x20_0000,
            size: FrameSize::Large,
            rights: CapRights::READ,
            is_device: false,
            mapping: Some(Mapping { vspace: 0x1000, vaddr: 0x40_0000, kind: MapKind::Cpu }),
        },
        Cap::Frame {
            paddr: 0x7000,
            size: FrameSize::Small,
            rights: CapRights::READ.union(CapRights::WRITE),
            is_device: false,
            mapping: None,
        },
        Cap::Frame {
            paddr: 0x8000,
            size: FrameSize::Small,
            rights: CapRights::READ,
            is_device: false,
            mapping: Some(Mapping { vspace: 0x2000, vaddr: 0x1000_0000, kind: MapKind::Io }),
        },
        Cap::Frame {
            paddr: 0x4000_0000,
            size: FrameSize::Huge,
            rights: CapRights::ALL,
            is_device: false,
            mapping: Some(Mapping { vspace: 0x2000, vaddr: 0x80_0000_0000, kind: MapKind::Io }),
        },
        Cap::Frame { paddr: 0x3000, size: FrameSize::Small, rights: CapRights::NONE, is_device: true, mapping: None },
        Cap::PageTable { paddr: 0x5000, level: 2, mapping: None },
        Cap::VSpace { paddr: 0x6000 },
        Cap::IrqControl,
        Cap::DebugConsole { rights: CapRights::WRITE },
        Cap::PciDevice { segment: 1, requester_id: 0x00f8 },
        Cap::IrqHandler { gsi: 23 },
        Cap::MsiHandler { vector: 0x81, requester_id: 0x0018 },
        Cap::IoPort { first: 0x40, last: 0x43 },
        Cap::IoSpace { paddr: 0x7000, domain: 3, levels: 4 },
        Cap::IoPageTable {
            paddr: 0x8000,
            level: 1,
            mapping: Some(Mapping { vspace: 0x7000, vaddr: 0x20_0000, kind: MapKind::Io }),
        },
    ]
}

#[test]
fn encode_decode_round_trip() {
    for cap in samples() {
        assert_eq!(Cap::decode(cap.encode()), Some(cap), "{cap:?}");
    }
    assert_eq!(Cap::decode([0xff, 0, 0, 0]), None);
}

#[test]
fn regions() {
    let ut = Cap::Untyped { paddr: 0x40_0000, size_bits: 22, is_device: false, free_offset: 0, cleared: NONE };
    let inside = Cap::Endpoint { paddr: 0x40_0010, badge: 0, rights: CapRights::ALL };
    let outside = Cap::Endpoint { paddr: 0x80_0000, badge: 0, rights: CapRights::ALL };
    assert!(ut.same_region_as(&inside) && !ut.same_region_as(&outside));
    let badged = Cap::Endpoint { paddr: 0x40_0010, badge: 5, rights: CapRights::READ };
    assert!(inside.same_object_as(&badged) && !inside.same_object_as(&outside));
    assert!(!Cap::Null.same_object_as(&Cap::Null));
}
