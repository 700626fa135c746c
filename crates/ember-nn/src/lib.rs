//! # ember-nn
//!
//! PyTorch's `torch.nn` for Ember: the [`Module`] trait, layers ([`Linear`], [`Sequential`],
//! [`Conv2d`], [`MaxPool2d`], [`BatchNorm1d`], [`BatchNorm2d`], [`LayerNorm`], [`Embedding`],
//! [`Dropout`], activations, …), losses
//! ([`CrossEntropyLoss`], [`NLLLoss`], [`MSELoss`], …), [`init`], the functional API
//! ([`functional`], PyTorch's `F`) and `state_dict` / safetensors files with PyTorch's names.
//!
//! ```
//! use ember_autograd::Tensor;
//! use ember_nn::{self as nn, Module};
//!
//! let model = nn::Sequential::new()
//!     .add(nn::Linear::new(8, 4)).add(nn::ReLU)
//!     .add(nn::Linear::new(4, 2)).add(nn::LogSoftmax::new(1));
//! let x = Tensor::zeros([3, 8]);
//! let labels = Tensor::from_slice(&[0i64, 1, 1], [3]);
//! let loss = nn::NLLLoss::new().forward(&model.forward(&x), &labels);
//! loss.backward();
//! assert!(model[0].weight().grad().is_some());
//! ```
//!
//! ## How a model knows its parameters
//!
//! One mechanism serves every module, built-in or the user's own: `#[derive(Module)]` reads the
//! struct's fields and implements [`ModuleVisit`], a visitor that reports each field that is a
//! [`Parameter`], a [`Buffer`], a [`TrainFlag`] or a submodule (also inside `Option` and `Vec`),
//! under the field's name. Every other capability — `parameters()`, `named_parameters()` with
//! PyTorch's dotted names, `state_dict()`, `train()`/`eval()`, `zero_grad()`, `apply()`,
//! `to(device)`, safetensors I/O — is a provided method of [`Module`] walking that visitor, so a
//! model writes only `forward`. (A derive rather than a runtime registry keeps the structure
//! static and checked by the compiler: a field holding a bare `Tensor` is a compile error asking
//! for `Parameter`/`Buffer` or `#[module(skip)]`.)
//!
//! Parameters are [`Tensor`] handles: `parameters()` returns handles sharing storage and
//! gradients with the model, so an optimizer updating them in place trains the model.
//!
//! ## Indexing a `Sequential`
//!
//! `model[i]` (and `model["fc1"]` for a `Sequential` built with names, PyTorch's
//! `nn.Sequential(OrderedDict(...))`) is a `&dyn Module`. Through it, `model[0].weight()` /
//! `.bias()` / `.get_parameter("weight")` reach parameters by name, and
//! `model[0].downcast_ref::<Linear>()` (or `model.get::<Linear>(0)`, `model.get::<Linear>("fc1")`)
//! gives the concrete layer, whose parameters are public fields (`linear.weight`, dereferencing
//! to its `Tensor`).
//!
//! ## Printing
//!
//! Every module implements `Display` as PyTorch's `print(model)`: `println!("{model}")` for a
//! `Sequential`, a layer or a `#[derive(Module)]` struct (the derive writes the impl).
//!
//! ## Options
//!
//! Rust has no keyword arguments: constructors take PyTorch's positional arguments
//! (`Linear::new(784, 128)`, `LayerNorm::new([5])`) and builder methods named after the keyword
//! arguments set the rest (`Linear::new(5, 3).bias(false)`,
//! `CrossEntropyLoss::new().label_smoothing(0.1).reduction(Reduction::Sum)`).

#![warn(missing_docs)]

// The derive macro names the crate as `::ember_nn`; this makes that path work inside it too.
extern crate self as ember_nn;

mod activation;
mod conv;
mod embedding;
pub mod functional;
pub mod init;
mod layers;
mod loss;
mod module;
mod norm;
mod pool;
mod sequential;
mod state;

pub use activation::{LeakyReLU, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Tanh, ELU, GELU};
pub use conv::{Conv1d, Conv2d, ConvTranspose2d};
pub use embedding::Embedding;
pub use ember_nn_derive::Module;
pub use layers::{Dropout, Dropout2d, Flatten, Identity, Linear, Unflatten};
pub use loss::{
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, Loss, MSELoss,
    NLLLoss, Reduction, SmoothL1Loss,
};
pub use module::{Buffer, Member, Module, ModuleVisit, Parameter, TrainFlag, Visitor, VisitorMut};
pub use norm::{BatchNorm1d, BatchNorm2d, LayerNorm};
pub use pool::{AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool1d, MaxPool2d};
pub use sequential::{Sequential, SequentialKey};
pub use state::{
    load_safetensors, load_safetensors_bytes, save_safetensors, IncompatibleKeys, LoadError,
    NnError, StateDict,
};
