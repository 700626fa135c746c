//! # Ember
//!
//! PyTorch's way of working — tensors, autograd, `nn`, `optim`, `DataLoader`, the training loop —
//! as a Rust library. This facade re-exports the layered crates under torch-like paths:
//! `ember::Tensor`, `ember::nn`, `ember::optim`, `ember::data`, `ember::no_grad()`, …
//!
//! ```
//! use ember::Tensor;
//! let x = Tensor::randn([2, 2]).requires_grad_(true);
//! let z = x.pow(2.0).mean();
//! z.backward();
//! assert!(x.grad().unwrap().allclose(&(&x / 2.0), 1e-6, 1e-6));
//! {
//!     let _g = ember::no_grad();
//!     assert!(!(&x * 2.0).requires_grad());
//! }
//! ```

#![warn(missing_docs)]

pub use ember_autograd::{
    autograd, custom_op, default_generator, get_rng_state, grad_mode, gradcheck, initial_seed, io,
    is_grad_enabled, manual_seed, no_grad, set_grad_enabled, set_rng_state, tensor, AdaptiveSize,
    DType, Device, Ellipsis, Generator, GradModeGuard, IndexOp, IntOrPair, NestedData, NewAxis,
    Operand, OperandRef, Padding, RaggedError, Scalar, Step, Tensor, TensorIndexer,
};

/// Neural-network building blocks (`torch.nn`).
pub mod nn {
    pub use ember_nn::*;

    /// `torch.nn.utils`: gradient clipping.
    pub mod utils {
        pub use ember_optim::clip::{clip_grad_norm_, clip_grad_value_};
    }
}

/// Optimizers and learning-rate schedulers (`torch.optim`).
pub mod optim {
    pub use ember_optim::*;
}

/// Datasets and the `DataLoader` (`torch.utils.data`).
pub mod data {
    pub use ember_data::*;
}

/// Distributed training across processes (`torch.distributed`): process groups on MPI and
/// NCCL, collectives, `DistributedDataParallel`. Enabled by the `mpi` (and `nccl`) features;
/// the `DistributedSampler` is in [`data`].
#[cfg(feature = "mpi")]
pub mod distributed {
    pub use ember_distributed::*;
}

/// The host memory cache: large CPU buffers freed by tensors are kept by size class for reuse
/// (a fresh large allocation page-faults on first write). As `torch.cuda` does for device
/// memory: statistics, and [`cpu::empty_cache`] to give the cached memory back.
///
/// ```
/// let x = ember::Tensor::zeros([1024, 1024]);
/// drop(x);
/// ember::cpu::empty_cache();
/// assert_eq!(ember::cpu::memory_stats().cached_bytes, 0);
/// ```
pub mod cpu {
    pub use ember_kernels::cpu::buffer::{
        empty_cache, memory_stats, reset_peak_memory_stats, HostMemoryStats,
    };
}

/// CUDA devices (`torch.cuda`): whether one can be used, the caching allocator's statistics,
/// synchronisation and the TF32 setting. Tensors move with `x.to_device(Device::Cuda(0))` /
/// `x.cuda()`, models with `model.to(Device::Cuda(0))`. Without the cargo feature `cuda`,
/// [`cuda::is_available`] is false and asking for a CUDA tensor panics saying how to get one.
///
/// ```
/// let device = if ember::cuda::is_available() { ember::Device::Cuda(0) } else { ember::Device::Cpu };
/// let x = ember::Tensor::ones([2, 3]).to_device(device);
/// assert_eq!(x.sum().item(), 6.0);
/// ```
pub mod cuda {
    #[cfg(feature = "cuda")]
    pub use ember_kernels::cuda::{
        allow_tf32, empty_cache, max_memory_allocated, memory_allocated, memory_reserved,
        memory_stats, reset_peak_memory_stats, set_allow_tf32, synchronize, MemoryStats,
    };
    pub use ember_kernels::cuda::{device_count, is_available, unavailable_reason};
}

/// The README's example, compiled and run as a doctest so it cannot rot.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The tutorial for PyTorch users (`docs/tutorial.md`), every lesson compiled and run as a
/// doctest.
#[doc = include_str!("../../../docs/tutorial.md")]
#[cfg(doctest)]
pub struct TutorialDoctests;
