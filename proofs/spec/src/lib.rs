//! Executable mirror of the Coq model in proofs/coq, for differential tests.
//!
//! `model`, `step`, `hw` and `invariant` mirror Model.v, Step.v, Hw.v and Invariant.v
//! one definition per item, under the Coq names (proofs/spec/names.py checks the
//! lists match); `drive` holds what a test needs besides (boot state, fills, probes),
//! `trace` records traces for the replay through extracted Coq (proofs/replay).
//! `cspace` and `threads` mirror Cspace.v and Threads.v, the layers for issue 9's
//! holes 2 and 12.
//! The `mutant-*` features apply check.sh's model mutants to `step`.

pub mod cspace;
pub mod drive;
pub mod hw;
pub mod invariant;
pub mod model;
pub mod step;
pub mod threads;
pub mod trace;

#[cfg(test)]
mod holes_tests;
#[cfg(test)]
mod kernel_holes_diff;
#[cfg(test)]
mod tests;
