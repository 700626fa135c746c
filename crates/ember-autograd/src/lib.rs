//! # ember-autograd
//!
//! The user's [`Tensor`]: creation, every kernel of `ember-kernels` as a method, views that share
//! storage, `std::ops` operators, PyTorch-style printing, and reverse-mode autograd
//! (`backward`, `no_grad`, `autograd::grad`).
//!
//! ```
//! use ember_autograd::Tensor;
//! let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0], [2, 2]).requires_grad_(true);
//! let y = (&x * &x).sum();
//! y.backward();
//! assert_eq!(x.grad().unwrap().to_vec::<f32>(), vec![2.0, 4.0, 6.0, 8.0]);
//! ```

#![warn(missing_docs)]

mod display;
mod engine;
mod grad_mode;
pub mod gradcheck;
mod graph;
mod hooks;
pub mod io;
mod literal;
mod nested;
mod ops;
mod shape_arg;
mod tensor;

/// `torch.autograd`: functional gradients.
pub mod autograd {
    pub use crate::engine::grad;
    pub use crate::graph::SavedTensorsCounter;
}

/// Device-neutral shape rules, for the layers above that check shapes before any tensor exists
/// (a loss's target against its input, a layer's dim argument); ops apply the same rules.
pub mod shape {
    pub use ember_kernels::shape::{broadcast_shapes, normalize_dim};
}

/// The argument types of the convolutions and poolings, and how their tuples print
/// (`spatial_repr`, for the layers' `repr`).
pub mod conv {
    pub use ember_kernels::conv::{spatial_repr, AdaptiveSize, IntOrPair, Padding};
}

/// The hyper-parameters of one fused optimizer step, the arguments of `Tensor::sgd_step_` and
/// its siblings (the optimizers of `ember-optim` build them).
pub mod optim {
    pub use ember_kernels::optim::{AdagradStep, AdamStep, RmspropStep, SgdStep};
}

pub use ember_kernels::conv::{AdaptiveSize, IntOrPair, Padding};
pub use ember_kernels::loss::LossReduction;
pub use ember_kernels::random::{default_generator, initial_seed, manual_seed, Generator};
pub use ember_kernels::{DType, Device, Scalar};
pub use grad_mode::{grad_mode, is_grad_enabled, no_grad, set_grad_enabled, GradModeGuard};
pub use graph::{custom_op, Grads, Node};
pub use hooks::RemovableHandle;
pub use literal::TensorLiteral;
pub use nested::{NestedData, RaggedError};
pub use ops::indexer::{Ellipsis, IndexOp, NewAxis, Step, TensorIndexer};
pub use ops::operand::{Operand, OperandRef};
pub use ops::random::{get_rng_state, set_rng_state};
pub use shape_arg::{IntoDims, IntoShape};
pub use smallvec;
pub use tensor::{live_storages, StorageReadGuard, StorageWriteGuard, Tensor};
