//! # ember-optim
//!
//! PyTorch's `torch.optim`: the [`Optimizer`] trait with parameter groups, `zero_grad`, and a
//! `state_dict` saved as safetensors + JSON; the optimizers [`SGD`], [`Adam`], [`AdamW`],
//! [`RMSprop`] and [`Adagrad`] with PyTorch's exact update rules; learning-rate schedulers
//! ([`lr_scheduler`]); and gradient clipping ([`clip`], re-exported by the facade as
//! `nn::utils`).
//!
//! Each `step()` runs under no-grad and updates every parameter in place with one fused pass over
//! the parameter, its gradient and its state (parallel over large tensors); state buffers are
//! allocated on a parameter's first step and never again.
//!
//! ```
//! use ember_autograd::Tensor;
//! use ember_optim::lr_scheduler::{CosineAnnealingLR, LRScheduler};
//! use ember_optim::{Adam, Optimizer};
//! let w = Tensor::from_slice(&[1.0f32, -1.0], [2]).requires_grad_(true);
//! let mut opt = Adam::new([w.clone()], 0.01).weight_decay(1e-4);
//! let mut sched = CosineAnnealingLR::new(&mut opt, 10, 0.0);
//! for _ in 0..3 {
//!     opt.zero_grad();
//!     (&w * &w).sum().backward();
//!     opt.step();
//!     sched.step(&mut opt);
//! }
//! assert!(w.to_vec::<f32>()[0] < 1.0);
//! ```

#![warn(missing_docs)]

mod adagrad;
mod adam;
pub mod clip;
pub mod lr_scheduler;
mod optimizer;
mod rmsprop;
mod sgd;
mod state_dict;

pub use adagrad::{Adagrad, AdagradOptions};
pub use adam::{Adam, AdamOptions, AdamW};
pub use optimizer::{Hyperparams, Optimizer, ParamGroup};
pub use rmsprop::{RMSprop, RMSpropOptions};
pub use sgd::{SgdOptions, SGD};
pub use state_dict::{OptimError, StateDict};
