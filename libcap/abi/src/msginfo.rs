//! The message-info word of IPC: label, capability counts and message length.
//!
//! Layout (seL4's): bits 0..7 length in message registers, 7..9 extra caps,
//! 9..12 caps-unwrapped mask, 12..64 label.

/// Most message registers a message may carry.
pub const MAX_MESSAGE_LENGTH: u64 = 120;
/// Most extra capabilities a message may carry.
pub const MAX_EXTRA_CAPS: u64 = 3;
/// Where the label starts in the word.
pub const LABEL_SHIFT: u32 = 12;

/// A decoded message-info word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// Invocation label or user-defined protocol label (52 bits).
    pub label: u64,
    /// Bit mask of extra caps that were unwrapped to badges.
    pub caps_unwrapped: u8,
    /// Number of extra capabilities transferred.
    pub extra_caps: u8,
    /// Number of message registers used.
    pub length: u8,
}

impl MessageInfo {
    /// A message with `label` and `length` registers and no caps.
    pub const fn new(label: u64, length: u8) -> Self {
        MessageInfo { label, caps_unwrapped: 0, extra_caps: 0, length }
    }

    /// Packs the fields into the word passed in a register; out-of-range fields are masked.
    pub const fn to_word(self) -> u64 {
        (self.length as u64 & 0x7f)
            | ((self.extra_caps as u64 & 0x3) << 7)
            | ((self.caps_unwrapped as u64 & 0x7) << 9)
            | ((self.label & ((1 << (64 - LABEL_SHIFT)) - 1)) << LABEL_SHIFT)
    }

    /// Unpacks a word the kernel produced (no range checks, fields are masked).
    pub const fn from_word_masked(word: u64) -> Self {
        MessageInfo {
            length: (word & 0x7f) as u8,
            extra_caps: ((word >> 7) & 0x3) as u8,
            caps_unwrapped: ((word >> 9) & 0x7) as u8,
            label: word >> LABEL_SHIFT,
        }
    }

    /// Unpacks a word; `None` if the length or cap count exceeds the ABI limits.
    pub const fn from_word(word: u64) -> Option<Self> {
        let info = MessageInfo {
            length: (word & 0x7f) as u8,
            extra_caps: ((word >> 7) & 0x3) as u8,
            caps_unwrapped: ((word >> 9) & 0x7) as u8,
            label: word >> LABEL_SHIFT,
        };
        if info.length as u64 > MAX_MESSAGE_LENGTH || info.extra_caps as u64 > MAX_EXTRA_CAPS {
            None
        } else {
            Some(info)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for (label, len, caps, unwrapped) in [(0, 0, 0, 0), (0xf_ffff_ffff_ffff, 120, 3, 7), (42, 4, 1, 1)] {
            let info = MessageInfo { label, length: len, extra_caps: caps, caps_unwrapped: unwrapped };
            assert_eq!(MessageInfo::from_word(info.to_word()), Some(info));
        }
        assert_eq!(MessageInfo::from_word(121), None);
    }
}
