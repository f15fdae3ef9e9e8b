//! Host test: `cnode::FlatCSpace` finds the slots `single_level_slot` finds.
//!
//! Random CNode shapes as the kernel stores them (radix 1..=16, a guard that fits) and
//! random addresses, matching and not.

use super::cnode::{single_level_slot, FlatCSpace};

#[test]
fn flat_lookups_agree_with_single_level_slot() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        // CNode caps as the kernel stores them: radix 1..=16, a guard that fits.
        let radix = (next() % 16 + 1) as u32;
        let guard_bits = if next() % 8 == 0 { (next() % 64) as u32 } else { 64 - radix };
        let guard = match next() % 3 {
            0 => 0,
            _ if guard_bits == 0 => 0,
            _ => next() >> (64 - guard_bits) >> (next() % 4),
        };
        let cptr = match next() % 3 {
            0 => next(),
            1 if radix > 0 && guard_bits < 64 => (guard << radix) | (next() & ((1 << radix) - 1)),
            _ => next() & 0xffff,
        };
        let slots = 0x10_0000;
        let flat = FlatCSpace::new(slots, radix, guard_bits, guard);
        let expected = single_level_slot(slots, radix, guard_bits, guard, cptr);
        assert_eq!(
            flat.and_then(|f| f.slot(cptr)),
            expected,
            "radix {radix} guard {guard_bits}:{guard:#x} cptr {cptr:#x}"
        );
        assert_eq!(flat.is_some(), radix + guard_bits == 64);
    }
}
