//! Boot-time logic that needs no hardware: loader hand-off parsing, physical memory
//! accounting and the untyped split. All of it is tested on the host.

pub mod memory;
pub mod packed_image;
pub mod params;
pub mod untyped;
