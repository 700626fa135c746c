//! Test and benchmark support for Ember's crates (not published): the PyTorch parity vectors in
//! `parity/` as Ember tensors, the timing and PyTorch side-by-side helpers the benchmarks share,
//! and the record of which backward nodes the second-derivative checks covered.

#![warn(missing_docs)]

pub mod bench;
pub mod parity;
pub mod second_order;

pub use parity::*;
