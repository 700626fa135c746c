//! # ember-distributed
//!
//! `torch.distributed` for Ember: process groups on existing communication engines — **MPI**
//! (Open MPI, for CPU tensors; feature `mpi`) and **NCCL** (for CUDA tensors, bootstrapped over
//! MPI; feature `nccl`) — their collectives on tensors, [`DistributedDataParallel`], and
//! (in `ember-data`) the `DistributedSampler` that gives each rank its shard of a dataset.
//!
//! Programs are started by `mpirun`, which runs one process per rank:
//!
//! ```text
//! mpirun -np 4 target/release/train
//! ```
//!
//! and each process joins the job with [`init_process_group`]:
//!
//! ```no_run
//! use ember_autograd::Tensor;
//! use ember_distributed::{self as dist, Backend, ReduceOp};
//! # fn main() -> Result<(), dist::DistError> {
//! let pg = dist::init_process_group(Backend::Mpi)?;
//! let t = Tensor::full([3], pg.rank() as f64);
//! dist::all_reduce(&t, ReduceOp::Sum)?; // 0 + 1 + … on every rank
//! # Ok(()) }
//! ```
//!
//! * Collectives take tensors in place, with PyTorch's names and semantics: [`all_reduce`]
//!   (sum, average, max, min, product), [`broadcast`], [`all_gather`], [`reduce_scatter`],
//!   [`send`]/[`recv`], [`barrier`]; any layout and dtype.
//! * Every blocking call has a timeout (10 minutes by default, [`ProcessGroup::set_timeout`]);
//!   failures are [`DistError`]s naming the rank, the operation and the tensor: ranks that
//!   called different operations or passed different shapes (found by a small header exchange
//!   before each collective), a peer that died, a timeout.
//! * Built without the `mpi` feature, [`init_process_group`] returns
//!   [`DistError::Unavailable`]; the default build needs neither library.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod ddp;
mod error;
mod group;
mod header;
#[cfg(feature = "mpi")]
mod mpi;
pub mod nccl;
mod op;
mod peers;
mod transport;
mod wait;

pub use ddp::{DdpOptions, DistributedDataParallel, NoSync, ReductionStats};
pub use error::DistError;
pub use group::{
    all_gather, all_reduce, barrier, broadcast, default_group, destroy_process_group, get_rank,
    get_world_size, init_process_group, init_process_group_with_timeout, is_initialized, recv,
    reduce_scatter, send, ProcessGroup, DEFAULT_TIMEOUT,
};
pub use op::{Backend, ReduceOp};

/// True when this process was started by `mpirun` (or another MPI launcher: a PMIx or PMI
/// one such as srun or MPICH's Hydra), i.e. when [`init_process_group`] can join a job.
/// Without a launcher Open MPI would quietly start a one-process "singleton" job, which is never
/// what a distributed program means, so `init_process_group` refuses instead.
pub fn launched_by_mpirun() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}
