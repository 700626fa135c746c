//! Test and benchmark support for Ember's crates (not published): the PyTorch parity vectors in
//! `parity/` as Ember tensors, and the timing and PyTorch side-by-side helpers the benchmarks share.

#![warn(missing_docs)]

pub mod bench;
pub mod parity;

pub use parity::*;
