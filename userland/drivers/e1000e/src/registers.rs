//! The 82574's BAR 0 registers this driver uses (datasheet 10.2), typed.

use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_bitfields! [u32,
    /// Device Control.
    pub Ctrl [
        /// Auto-speed detection enable.
        ASDE OFFSET(5) NUMBITS(1) [],
        /// Set link up.
        SLU OFFSET(6) NUMBITS(1) [],
        /// Device reset (self-clearing).
        RST OFFSET(26) NUMBITS(1) [],
        /// PHY reset.
        PHY_RST OFFSET(31) NUMBITS(1) []
    ],
    /// Device Status.
    pub Status [
        /// Full duplex.
        FD OFFSET(0) NUMBITS(1) [],
        /// Link up.
        LU OFFSET(1) NUMBITS(1) [],
        /// Link speed (0: 10, 1: 100, 2/3: 1000 Mb/s).
        SPEED OFFSET(6) NUMBITS(2) []
    ],
    /// EEPROM Read.
    pub Eerd [
        /// Start a read.
        START OFFSET(0) NUMBITS(1) [],
        /// The read is done.
        DONE OFFSET(1) NUMBITS(1) [],
        /// Word address.
        ADDR OFFSET(2) NUMBITS(14) [],
        /// The word read.
        DATA OFFSET(16) NUMBITS(16) []
    ],
    /// Interrupt causes (ICR, ICS, IMS, IMC).
    pub Interrupt [
        /// Transmit descriptor written back.
        TXDW OFFSET(0) NUMBITS(1) [],
        /// Link status change.
        LSC OFFSET(2) NUMBITS(1) [],
        /// Receive timer: a frame arrived.
        RXT0 OFFSET(7) NUMBITS(1) []
    ],
    /// Receive Control.
    pub Rctl [
        /// Receiver enable.
        EN OFFSET(1) NUMBITS(1) [],
        /// Store bad packets.
        SBP OFFSET(2) NUMBITS(1) [],
        /// Unicast promiscuous.
        UPE OFFSET(3) NUMBITS(1) [],
        /// Multicast promiscuous.
        MPE OFFSET(4) NUMBITS(1) [],
        /// Long packet enable.
        LPE OFFSET(5) NUMBITS(1) [],
        /// Loopback mode.
        LBM OFFSET(6) NUMBITS(2) [
            /// Normal operation.
            Normal = 0,
            /// MAC loopback: every frame sent is received back, nothing leaves.
            Mac = 1
        ],
        /// Broadcast accept.
        BAM OFFSET(15) NUMBITS(1) [],
        /// Buffer size (with BSEX 0: 0 = 2048 bytes).
        BSIZE OFFSET(16) NUMBITS(2) [],
        /// Strip the Ethernet CRC.
        SECRC OFFSET(26) NUMBITS(1) []
    ],
    /// Transmit Control.
    pub Tctl [
        /// Transmitter enable.
        EN OFFSET(1) NUMBITS(1) [],
        /// Pad short packets.
        PSP OFFSET(3) NUMBITS(1) [],
        /// Collision threshold.
        CT OFFSET(4) NUMBITS(8) [],
        /// Collision distance.
        COLD OFFSET(12) NUMBITS(10) []
    ],
    /// Receive Address High.
    pub Rah [
        /// Bytes 4 and 5 of the address.
        HIGH OFFSET(0) NUMBITS(16) [],
        /// Address valid.
        AV OFFSET(31) NUMBITS(1) []
    ]
];

register_structs! {
    /// BAR 0 up to the first receive address pair.
    pub Registers {
        (0x0000 => pub ctrl: ReadWrite<u32, Ctrl::Register>),
        (0x0004 => _r0),
        (0x0008 => pub status: ReadOnly<u32, Status::Register>),
        (0x000c => _r1),
        (0x0014 => pub eerd: ReadWrite<u32, Eerd::Register>),
        (0x0018 => _r2),
        (0x00c0 => pub icr: ReadOnly<u32, Interrupt::Register>),
        (0x00c4 => _r3),
        (0x00d0 => pub ims: ReadWrite<u32, Interrupt::Register>),
        (0x00d4 => _r4),
        (0x00d8 => pub imc: WriteOnly<u32, Interrupt::Register>),
        (0x00dc => _r5),
        (0x0100 => pub rctl: ReadWrite<u32, Rctl::Register>),
        (0x0104 => _r6),
        (0x0400 => pub tctl: ReadWrite<u32, Tctl::Register>),
        (0x0404 => _r7),
        (0x0410 => pub tipg: ReadWrite<u32>),
        (0x0414 => _r8),
        (0x2800 => pub rdbal: ReadWrite<u32>),
        (0x2804 => pub rdbah: ReadWrite<u32>),
        (0x2808 => pub rdlen: ReadWrite<u32>),
        (0x280c => _r9),
        (0x2810 => pub rdh: ReadWrite<u32>),
        (0x2814 => _r10),
        (0x2818 => pub rdt: ReadWrite<u32>),
        (0x281c => _r11),
        (0x3800 => pub tdbal: ReadWrite<u32>),
        (0x3804 => pub tdbah: ReadWrite<u32>),
        (0x3808 => pub tdlen: ReadWrite<u32>),
        (0x380c => _r12),
        (0x3810 => pub tdh: ReadWrite<u32>),
        (0x3814 => _r13),
        (0x3818 => pub tdt: ReadWrite<u32>),
        (0x381c => _r14),
        (0x5200 => pub mta: [ReadWrite<u32>; 128]),
        (0x5400 => pub ral0: ReadWrite<u32>),
        (0x5404 => pub rah0: ReadWrite<u32, Rah::Register>),
        (0x5408 => @END),
    }
}

/// Bytes of BAR 0 the driver needs mapped.
pub const REGISTERS_BYTES: u64 = 0x5408;
