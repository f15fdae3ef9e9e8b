//! Kernel objects and capabilities, one object per file.
//!
//! Kernel objects and capabilities, one object per file. All of it is generic over the
//! memory it lives in, so it is tested on the host.

pub mod cap;
pub mod cnode;
pub mod cte;
pub mod endpoint;
pub mod guest_tlb;
pub mod kcell;
pub mod mdb;
pub mod msi;
pub mod paging;
pub mod roots;
pub mod tcb;
pub mod untyped;
pub mod vcpu;
pub mod vmcb;
pub mod vspace;

#[cfg(test)]
mod cap_tests;
#[cfg(test)]
mod cnode_flat_tests;
#[cfg(test)]
mod delete_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod retype_tests;
#[cfg(test)]
mod zombie_tests;
