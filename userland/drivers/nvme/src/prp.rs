//! PRP entries for a transfer: PRP1, and PRP2 as the second page or a PRP list.

use crate::{NvmeError, PAGE};

/// Entries in one PRP list page (the driver never chains lists).
pub const LIST_ENTRIES: usize = (PAGE / 8) as usize;

/// PRP1 and PRP2 for `len` bytes at IOVA `data` (page aligned; the buffer's pages are
/// consecutive IOVAs, as the iommu-server maps a buffer). Up to two pages need no list;
/// more are written into `list` (the PRP list page, at IOVA `list_iova`), entry k being
/// page k + 1. At most 1 + [`LIST_ENTRIES`] pages.
pub fn build(data: u64, len: u64, list: &mut [u64], list_iova: u64) -> Result<(u64, u64), NvmeError> {
    if len == 0 || !data.is_multiple_of(PAGE) || !list_iova.is_multiple_of(PAGE) {
        return Err(NvmeError::BadTransfer);
    }
    let pages = len.div_ceil(PAGE);
    match pages {
        1 => Ok((data, 0)),
        2 => Ok((data, data + PAGE)),
        n if (n - 1) as usize <= LIST_ENTRIES.min(list.len()) => {
            for (k, entry) in list.iter_mut().take((n - 1) as usize).enumerate() {
                *entry = data + (k as u64 + 1) * PAGE;
            }
            Ok((data, list_iova))
        }
        _ => Err(NvmeError::BadTransfer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_two_and_many_pages() {
        let mut list = [0u64; LIST_ENTRIES];
        assert_eq!(build(0x10_0000, 512, &mut list, 0x20_0000), Ok((0x10_0000, 0)));
        assert_eq!(build(0x10_0000, 8192, &mut list, 0x20_0000), Ok((0x10_0000, 0x10_1000)));
        assert_eq!(build(0x10_0000, 16384, &mut list, 0x20_0000), Ok((0x10_0000, 0x20_0000)));
        assert_eq!(&list[..4], &[0x10_1000, 0x10_2000, 0x10_3000, 0]);
    }

    #[test]
    fn bad_transfers_are_refused() {
        let mut list = [0u64; 4];
        assert_eq!(build(0x10_0000, 0, &mut list, 0x20_0000), Err(NvmeError::BadTransfer));
        assert_eq!(build(0x10_0200, 512, &mut list, 0x20_0000), Err(NvmeError::BadTransfer));
        assert_eq!(build(0x10_0000, 6 * PAGE, &mut list, 0x20_0000), Err(NvmeError::BadTransfer), "list too short");
        assert!(build(0x10_0000, 5 * PAGE, &mut list, 0x20_0000).is_ok());
    }
}
