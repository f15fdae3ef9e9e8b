//! Ethernet frames: ARP and DHCP of the drivers' self-tests, the filter's classes.
//!
//! Frames from the network are untrusted input: every parser takes any byte slice
//! (short, long, malformed) and answers `None` unless the frame is exactly what it
//! looks for.
#![no_std]

extern crate alloc;

pub mod arp;
pub mod dhcp;
pub mod filter;
pub mod rxbench;

pub use arp::*;
