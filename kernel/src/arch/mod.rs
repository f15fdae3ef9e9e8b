//! Hardware layer (x86_64 only).
//!
//! Hardware layer. Only x86_64 exists; everything hardware-specific stays below here.

mod x86_64;
pub use self::x86_64::*;
