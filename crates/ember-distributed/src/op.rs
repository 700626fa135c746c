//! The names of the choices a caller makes: which backend, which reduction.

/// The communication engine of a process group (`torch.distributed.Backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Open MPI, for CPU tensors; ranks are started by `mpirun`.
    Mpi,
    /// NCCL, for CUDA tensors, bootstrapped over MPI (also started by `mpirun`).
    Nccl,
}

/// How `all_reduce` and `reduce_scatter` combine the ranks' values
/// (`torch.distributed.ReduceOp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Elementwise sum.
    Sum,
    /// Elementwise mean over the ranks (floating-point tensors only).
    Avg,
    /// Elementwise maximum.
    Max,
    /// Elementwise minimum.
    Min,
    /// Elementwise product.
    Product,
}

impl ReduceOp {
    /// PyTorch's spelling (`ReduceOp.SUM`, …), for messages.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "SUM",
            ReduceOp::Avg => "AVG",
            ReduceOp::Max => "MAX",
            ReduceOp::Min => "MIN",
            ReduceOp::Product => "PRODUCT",
        }
    }

    pub(crate) fn code(self) -> i64 {
        match self {
            ReduceOp::Sum => 0,
            ReduceOp::Avg => 1,
            ReduceOp::Max => 2,
            ReduceOp::Min => 3,
            ReduceOp::Product => 4,
        }
    }
}
