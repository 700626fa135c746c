//! `DistError`: every way a distributed call can fail, each message naming the rank that
//! reports it, the operation and the tensor involved, and what to do about it.

use crate::op::Backend;
use std::time::Duration;

/// A failed distributed call. Failures of the transport (a timeout, a peer that died, an MPI
/// or NCCL error) leave the process group unusable: later calls return [`DistError::Broken`].
#[derive(Clone, Debug, PartialEq)]
pub enum DistError {
    /// `init_process_group` outside an MPI launch (no `mpirun`).
    NoMpiEnvironment {
        /// The backend asked for.
        backend: Backend,
    },
    /// The backend is not compiled in, or its library cannot be used.
    Unavailable {
        /// The backend asked for.
        backend: Backend,
        /// Why, and how to get it.
        reason: String,
    },
    /// A call that needs the default process group before `init_process_group`.
    NotInitialized,
    /// `init_process_group` while a group is alive (or after MPI was finalized).
    AlreadyInitialized {
        /// Why a new group cannot be made.
        reason: String,
    },
    /// Bad arguments on this rank (a root out of range, a dtype the op does not take, …).
    InvalidArgument {
        /// The reporting rank.
        rank: usize,
        /// The operation.
        op: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The ranks called different operations, or with tensors of different shapes or dtypes
    /// (found by the header exchange that precedes every collective).
    Mismatch {
        /// The reporting rank.
        rank: usize,
        /// The operation.
        op: &'static str,
        /// Which ranks disagree, and how.
        message: String,
    },
    /// A blocking call did not complete within the group's timeout.
    Timeout {
        /// The reporting rank.
        rank: usize,
        /// The operation and its tensor.
        op: String,
        /// The timeout that expired.
        timeout: Duration,
        /// Which peers the call was waiting for, as far as known.
        detail: String,
    },
    /// A peer process exited while this rank was waiting for it.
    PeerDied {
        /// The reporting rank.
        rank: usize,
        /// The operation and its tensor.
        op: String,
        /// The rank that died.
        peer: usize,
        /// Its pid and host.
        detail: String,
    },
    /// The MPI or NCCL library returned an error.
    Backend {
        /// The reporting rank.
        rank: usize,
        /// The operation and its tensor.
        op: String,
        /// The library's own message.
        message: String,
    },
    /// The group failed earlier and cannot be used any more.
    Broken {
        /// The reporting rank.
        rank: usize,
        /// The first failure.
        cause: String,
    },
    /// `DistributedDataParallel` could not finish a gradient reduction.
    Reduction {
        /// The reporting rank.
        rank: usize,
        /// What went wrong (PyTorch's message where it has one).
        message: String,
    },
}

impl DistError {
    /// True for failures after which the process group cannot be used (the transport may still
    /// hold requests that never complete).
    pub fn breaks_group(&self) -> bool {
        matches!(
            self,
            DistError::Timeout { .. }
                | DistError::PeerDied { .. }
                | DistError::Backend { .. }
                | DistError::Broken { .. }
        )
    }
}

impl std::fmt::Display for DistError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DistError::NoMpiEnvironment { backend } => write!(
                f,
                "init_process_group(Backend::{backend:?}): this process was not started by mpirun \
                 (no OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the environment); launch every \
                 rank with `mpirun -np N <program>`"
            ),
            DistError::Unavailable { backend, reason } => {
                write!(f, "init_process_group(Backend::{backend:?}): {reason}")
            }
            DistError::NotInitialized => write!(
                f,
                "Default process group has not been initialized, please make sure to call \
                 init_process_group."
            ),
            DistError::AlreadyInitialized { reason } => {
                write!(f, "init_process_group: {reason}")
            }
            DistError::InvalidArgument { rank, op, message } => {
                write!(f, "rank {rank}: {op}: {message}")
            }
            DistError::Mismatch { rank, op, message } => {
                write!(f, "rank {rank}: {op}: {message}")
            }
            DistError::Timeout {
                rank,
                op,
                timeout,
                detail,
            } => write!(
                f,
                "rank {rank}: {op} timed out after {:.1} s ({detail}); the process group is no \
                 longer usable (set a longer timeout with ProcessGroup::set_timeout if the peers \
                 are only slow)",
                timeout.as_secs_f64()
            ),
            DistError::PeerDied {
                rank,
                op,
                peer,
                detail,
            } => write!(
                f,
                "rank {rank}: {op} failed: rank {peer} exited ({detail}); the process group is \
                 no longer usable"
            ),
            DistError::Backend { rank, op, message } => {
                write!(f, "rank {rank}: {op} failed: {message}")
            }
            DistError::Broken { rank, cause } => write!(
                f,
                "rank {rank}: the process group is unusable after an earlier failure: {cause}"
            ),
            DistError::Reduction { rank, message } => write!(f, "rank {rank}: {message}"),
        }
    }
}

impl std::error::Error for DistError {}
