//! Tensor ops, grouped by kind. Each op computes through `Storage` and, when an input requires
//! grad, records one graph node with its backward (see `graph.rs`).

pub(crate) mod conv;
mod convert;
mod create;
pub(crate) mod elementwise;
mod fused_optim;
pub(crate) mod index;
pub(crate) mod indexer;
mod inplace;
mod loss;
mod matmul;
pub(crate) mod operand;
mod operators;
mod pool;
pub(crate) mod random;
mod reduce;
mod resize;
mod view;
