//! The receive benchmark's frames: what the sender stamps, what the client checks.
//!
//! `e1000edrv-blast` sends batches of [`BATCH`] broadcast frames of the local
//! experimental EtherType 0x88b5; each carries its batch number, its index in the batch
//! and the sender's TSC at the doorbell write. `netclient-rxbench` receives them
//! through the driver under test. Batches `0..RUNS` are 60-byte frames, the next
//! `RUNS` 1514-byte ones; the first of each size warms up.

/// Frames per batch, batches per frame size (the first warms up), the sizes.
pub const BATCH: u32 = 8;
pub const RUNS: u32 = 33;
pub const SIZES: [usize; 2] = [60, 1514];
/// Byte offsets of the batch number (u32), the index (u32) and the stamp (u64), LE.
pub const AT_BATCH: usize = 14;
pub const AT_INDEX: usize = 18;
pub const AT_STAMP: usize = 22;

/// The frame size of batch `batch`.
pub fn size_of_batch(batch: u32) -> usize {
    SIZES[((batch / RUNS) as usize).min(SIZES.len() - 1)]
}

/// Frame `index` of batch `batch` from `mac`, stamp zero (the sender fills it in).
pub fn frame(mac: [u8; 6], batch: u32, index: u32) -> alloc::vec::Vec<u8> {
    let mut f = alloc::vec![0u8; size_of_batch(batch)];
    f[..6].fill(0xff);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[AT_BATCH..AT_BATCH + 4].copy_from_slice(&batch.to_le_bytes());
    f[AT_INDEX..AT_INDEX + 4].copy_from_slice(&index.to_le_bytes());
    f
}

/// (batch, index, stamp) of a benchmark frame, if `f` is one (length checked).
pub fn parse(f: &[u8]) -> Option<(u32, u32, u64)> {
    if f.len() < AT_STAMP + 8 || f[12..14] != [0x88, 0xb5] {
        return None;
    }
    let word = |at: usize| u32::from_le_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]]);
    let (batch, index) = (word(AT_BATCH), word(AT_INDEX));
    let stamp = u64::from_le_bytes(f[AT_STAMP..AT_STAMP + 8].try_into().ok()?);
    (f.len() == size_of_batch(batch)).then_some((batch, index, stamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_refused() {
        let mut f = frame([2; 6], RUNS + 1, 5);
        assert_eq!(f.len(), 1514);
        f[AT_STAMP..AT_STAMP + 8].copy_from_slice(&77u64.to_le_bytes());
        assert_eq!(parse(&f), Some((RUNS + 1, 5, 77)));
        assert_eq!(parse(&f[..60]), None, "a 1514-byte batch's frame cut short");
        assert_eq!(parse(&f[..20]), None);
        f[12] = 0x08;
        assert_eq!(parse(&f), None, "another EtherType");
    }
}
