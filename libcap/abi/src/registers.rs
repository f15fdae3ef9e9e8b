//! The user register set as TCB Read/WriteRegisters transfer it.

/// Number of registers in [`UserRegisters`].
pub const USER_REGISTER_COUNT: usize = 18;

/// A thread's user-visible registers, in transfer order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct UserRegisters {
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

static_assertions::const_assert_eq!(core::mem::size_of::<UserRegisters>(), USER_REGISTER_COUNT * 8);

impl UserRegisters {
    /// As an array in transfer order.
    pub fn to_array(&self) -> [u64; USER_REGISTER_COUNT] {
        [
            self.rip,
            self.rsp,
            self.rflags,
            self.rax,
            self.rbx,
            self.rcx,
            self.rdx,
            self.rsi,
            self.rdi,
            self.rbp,
            self.r8,
            self.r9,
            self.r10,
            self.r11,
            self.r12,
            self.r13,
            self.r14,
            self.r15,
        ]
    }

    /// From an array in transfer order.
    pub fn from_array(a: [u64; USER_REGISTER_COUNT]) -> Self {
        UserRegisters {
            rip: a[0],
            rsp: a[1],
            rflags: a[2],
            rax: a[3],
            rbx: a[4],
            rcx: a[5],
            rdx: a[6],
            rsi: a[7],
            rdi: a[8],
            rbp: a[9],
            r8: a[10],
            r9: a[11],
            r10: a[12],
            r11: a[13],
            r12: a[14],
            r13: a[15],
            r14: a[16],
            r15: a[17],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut a = [0u64; USER_REGISTER_COUNT];
        for (i, v) in a.iter_mut().enumerate() {
            *v = i as u64 * 3 + 1;
        }
        assert_eq!(UserRegisters::from_array(a).to_array(), a);
        assert_eq!(UserRegisters::from_array(a).rip, 1);
    }
}
