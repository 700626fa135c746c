//! # ember-data
//!
//! Datasets and the `DataLoader` (`torch.utils.data`), and MNIST (`torchvision.datasets`):
//!
//! * [`Dataset`] (`len`, `get(i)`, and `get_batch(indices)` for datasets that gather a whole
//!   batch at once), [`TensorDataset`], [`Subset`], [`random_split`];
//! * [`DataLoader`]: batches, seeded shuffling (a new order each epoch, the same on every
//!   machine and thread count), `drop_last`, [samplers](sampler) (including
//!   [`DistributedSampler`]'s per-process shards), custom collation, and
//!   prefetching of the next batches on a background thread;
//! * [`Mnist`], read from the IDX files ([`idx`]) with sha256 checks, kept as `u8` and
//!   converted per batch through [`transforms`] (`ToTensor`, `Normalize`, `Compose`).
//!
//! ```
//! use ember_data::{DataLoader, TensorDataset};
//! use ember_autograd::Tensor;
//! let x = Tensor::randn([100, 3]);
//! let y = Tensor::randn([100, 1]);
//! let loader = DataLoader::new(TensorDataset::new((x, y)), 32).shuffle(true).seed(0);
//! assert_eq!(loader.len(), 4);
//! for (xb, yb) in &loader {
//!     assert_eq!(xb.shape()[0], yb.shape()[0]);
//! }
//! ```

// Every `unsafe` block says why it is sound; an `unsafe fn`'s body is not one big unsafe block.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod dataset;
mod error;
pub mod idx;
mod loader;
mod mnist;
mod mnist_device;
pub mod sampler;
pub mod transforms;

pub use dataset::{
    random_split, random_split_fractions, Collate, Dataset, Subset, TensorDataset, TensorTuple,
};
pub use error::DataError;
pub use loader::{DataLoader, Iter, DEFAULT_PREFETCH};
pub use mnist::Mnist;
pub use mnist_device::MnistOnDevice;
pub use sampler::{
    DistributedSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler,
};
pub use transforms::{Compose, Normalize, ToTensor, Transform};
