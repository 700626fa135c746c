//! The vocabulary of reductions shared by every backend: arg-reductions and the dtype rule of
//! each reduction; the device dispatch is in `storage/reduce.rs`.

use crate::dtype::DType;
use crate::op::ReduceOp;

/// Which extreme `arg_reduce` looks for (`argmax`/`argmin`, `max(dim)`/`min(dim)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgReduceOp {
    /// largest value
    Max,
    /// smallest value
    Min,
}

/// The dtype `op` produces for an input of dtype `d`, as PyTorch: sums and products of bool and
/// integers give int64, floats keep their dtype; max/min keep the dtype.
pub fn reduce_dtype(op: ReduceOp, d: DType) -> DType {
    match op {
        ReduceOp::Sum | ReduceOp::Prod if !d.is_float() => DType::I64,
        _ => d,
    }
}
