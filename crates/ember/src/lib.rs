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

pub use ember_autograd::{
    autograd, custom_op, default_generator, get_rng_state, grad_mode, gradcheck, initial_seed, io,
    is_grad_enabled, manual_seed, no_grad, set_grad_enabled, set_rng_state, tensor, DType, Device,
    Generator, GradModeGuard, NestedData, Operand, OperandRef, RaggedError, Scalar, Tensor,
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

/// CUDA devices (`torch.cuda`).
pub mod cuda {
    /// True when a CUDA device can be used (always false until the CUDA backend lands).
    pub fn is_available() -> bool {
        device_count() > 0
    }

    /// Number of usable CUDA devices (0 in builds without the CUDA backend).
    pub fn device_count() -> usize {
        0
    }
}

/// The README's example, compiled and run as a doctest so it cannot rot.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
