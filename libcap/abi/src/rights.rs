//! Capability access rights, as a bit set passed to Mint and frame mappings.

/// A set of rights; unknown bits are rejected by [`CapRights::from_raw`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CapRights(u8);

impl CapRights {
    /// Read (receive on endpoints, read frames).
    pub const READ: CapRights = CapRights(1 << 0);
    /// Write (send on endpoints, write frames).
    pub const WRITE: CapRights = CapRights(1 << 1);
    /// Grant: capabilities may be transferred through the object.
    pub const GRANT: CapRights = CapRights(1 << 2);
    /// Grant-reply: reply capabilities may be transferred.
    pub const GRANT_REPLY: CapRights = CapRights(1 << 3);
    /// No rights.
    pub const NONE: CapRights = CapRights(0);
    /// Every right.
    pub const ALL: CapRights = CapRights(0xf);

    /// Parses a raw right mask; `None` if it has bits beyond [`CapRights::ALL`].
    pub const fn from_raw(raw: u64) -> Option<Self> {
        if raw & !(Self::ALL.0 as u64) != 0 {
            None
        } else {
            Some(CapRights(raw as u8))
        }
    }
    /// The raw mask.
    pub const fn raw(self) -> u8 {
        self.0
    }
    /// Rights in both sets.
    pub const fn intersect(self, other: CapRights) -> CapRights {
        CapRights(self.0 & other.0)
    }
    /// Rights in either set.
    pub const fn union(self, other: CapRights) -> CapRights {
        CapRights(self.0 | other.0)
    }
    /// Whether every right in `other` is in `self`.
    pub const fn contains(self, other: CapRights) -> bool {
        self.0 & other.0 == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reject_unknown() {
        for raw in 0..16u64 {
            assert_eq!(CapRights::from_raw(raw).map(|r| r.raw() as u64), Some(raw));
        }
        assert_eq!(CapRights::from_raw(0x10), None);
        let rw = CapRights::READ.union(CapRights::WRITE);
        assert!(rw.contains(CapRights::READ) && !rw.contains(CapRights::GRANT));
        assert_eq!(rw.intersect(CapRights::WRITE), CapRights::WRITE);
    }
}
