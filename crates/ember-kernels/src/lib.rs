//! # ember-kernels
//!
//! The bottom layer of Ember: element types ([`DType`]), devices ([`Device`]), strided layouts
//! ([`Layout`]) with the view algebra, device storage ([`Storage`]) and the kernels that compute on
//! it. There is no autograd here; `ember-autograd` builds the user's `Tensor` on top.
//!
//! ```
//! use ember_kernels::{Layout, Storage, Device, DType, Scalar, op::UnaryOp};
//! let s = Storage::full(6, Scalar::Float(-1.5), DType::F32, Device::Cpu);
//! let l = Layout::contiguous(&[2, 3]).transpose(0, 1);
//! let r = s.unary(&l, UnaryOp::Abs);
//! assert_eq!(r.to_vec::<f32>(&Layout::contiguous(&[3, 2])), vec![1.5; 6]);
//! ```

#![warn(missing_docs)]
// Kernel entry points take (storage, layout) pairs per operand, so long argument lists are the
// honest shape of the API; indexing parallel per-operand arrays by dim reads best as index loops.
#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]
// Every `unsafe` block says why it is sound; an `unsafe fn`'s body is not one big unsafe block.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod conv;
pub mod cpu;
pub mod cuda;
pub mod device;
pub mod dtype;
pub mod indexing;
pub mod layout;
pub mod linalg;
pub mod loss;
pub mod op;
pub mod optim;
pub mod random;
pub mod reduce;
pub mod shape;
pub mod storage;

pub use cpu::{CpuElement, CpuStorage};
pub use device::Device;
pub use dtype::{Category, DType, Element, Scalar};
pub use layout::Layout;
pub use storage::Storage;
