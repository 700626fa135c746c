//! The NCCL transport (CUDA tensors), through cudarc's `nccl` feature, bootstrapped over MPI:
//! the ranks are started by `mpirun`, rank 0's NCCL unique id reaches the others through an MPI
//! all-gather, and the header exchange, `barrier` and the liveness checks stay on MPI.
//!
//! NCCL needs the device address of a CUDA tensor's elements and the stream its kernels run
//! on; [`DeviceBuffer`] is that narrow view of a CUDA storage, so that this transport does not
//! depend on the CUDA backend's internals.

#[cfg(feature = "nccl")]
mod backend;

#[cfg(feature = "nccl")]
pub use backend::DeviceBuffer;

#[cfg(feature = "nccl")]
pub(crate) use backend::transport;

/// Without the `nccl` feature there is no NCCL transport.
#[cfg(not(feature = "nccl"))]
pub(crate) fn transport(
    _timeout: std::time::Duration,
) -> Result<Box<dyn crate::transport::Transport>, crate::error::DistError> {
    Err(crate::error::DistError::Unavailable {
        backend: crate::op::Backend::Nccl,
        reason: "Ember was built without NCCL: enable the `nccl` feature of ember-distributed \
                 (or of ember), which needs CUDA, NCCL and Open MPI at run time"
            .into(),
    })
}
