//! `Dataset`, its batching (`Collate`), `TensorDataset`, `Subset` and `random_split`
//! (`torch.utils.data`).

use crate::error::DataError;
use ember_autograd::{Generator, Tensor};
use std::sync::Arc;

/// A map-style dataset: `len()` samples, sample `i` by `get(i)` (`torch.utils.data.Dataset`).
///
/// Datasets are shared with the `DataLoader`'s prefetch thread, hence `Send + Sync`. A dataset
/// that can gather several samples at once (one indexed copy per tensor instead of one small
/// copy per sample) overrides [`get_batch`](Dataset::get_batch).
///
/// ```
/// use ember_data::Dataset;
/// use ember_autograd::Tensor;
/// /// Sample i is (i, i²).
/// struct Squares(usize);
/// impl Dataset for Squares {
///     type Sample = (Tensor, Tensor);
///     fn len(&self) -> usize { self.0 }
///     fn get(&self, i: usize) -> (Tensor, Tensor) {
///         (Tensor::scalar(i as f32), Tensor::scalar((i * i) as f32))
///     }
/// }
/// assert_eq!(Squares(5).get(3).1.item(), 9.0);
/// ```
pub trait Dataset: Send + Sync {
    /// What one sample is, e.g. `(Tensor, Tensor)` for (input, target).
    type Sample: Send + 'static;

    /// Number of samples.
    fn len(&self) -> usize;

    /// Sample `index` (`0..len()`); panics when out of range.
    fn get(&self, index: usize) -> Self::Sample;

    /// True when there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples at `indices` stacked into one batch (a new leading dim of size
    /// `indices.len()`). The default stacks `get(i)` with [`Collate`].
    fn get_batch(&self, indices: &[usize]) -> Self::Sample
    where
        Self::Sample: Collate,
    {
        Collate::collate(indices.iter().map(|&i| self.get(i)).collect())
    }
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    type Sample = D::Sample;
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> D::Sample {
        (**self).get(index)
    }
    fn get_batch(&self, indices: &[usize]) -> D::Sample
    where
        D::Sample: Collate,
    {
        (**self).get_batch(indices)
    }
}

impl<D: Dataset + ?Sized> Dataset for Box<D> {
    type Sample = D::Sample;
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> D::Sample {
        (**self).get(index)
    }
    fn get_batch(&self, indices: &[usize]) -> D::Sample
    where
        D::Sample: Collate,
    {
        (**self).get_batch(indices)
    }
}

/// Samples that the default collation can batch: tensors are stacked along a new dim 0
/// (PyTorch's `default_collate`), tuples and vectors field by field.
///
/// ```
/// use ember_data::Collate;
/// use ember_autograd::Tensor;
/// let samples = vec![
///     (Tensor::zeros([3]), Tensor::scalar(1i64)),
///     (Tensor::ones([3]), Tensor::scalar(0i64)),
/// ];
/// let (x, y) = Collate::collate(samples);
/// assert_eq!((x.shape(), y.shape()), (&[2, 3][..], &[2][..]));
/// ```
pub trait Collate: Sized {
    /// The samples stacked into one batch (`samples` is non-empty).
    fn collate(samples: Vec<Self>) -> Self;
}

impl Collate for Tensor {
    fn collate(samples: Vec<Tensor>) -> Tensor {
        Tensor::stack(&samples, 0)
    }
}

impl Collate for Vec<Tensor> {
    fn collate(samples: Vec<Vec<Tensor>>) -> Vec<Tensor> {
        let width = samples.first().map_or(0, |s| s.len());
        let mut columns: Vec<Vec<Tensor>> = (0..width)
            .map(|_| Vec::with_capacity(samples.len()))
            .collect();
        for (i, s) in samples.into_iter().enumerate() {
            if s.len() != width {
                panic!(
                    "collate: each sample must have the same number of tensors, got {width} in \
                     sample 0 and {} in sample {i}",
                    s.len()
                );
            }
            for (col, t) in columns.iter_mut().zip(s) {
                col.push(t);
            }
        }
        columns.into_iter().map(Tensor::collate).collect()
    }
}

macro_rules! collate_tuple {
    ($($t:ident $v:ident),+) => {
        impl<$($t: Collate),+> Collate for ($($t,)+) {
            fn collate(samples: Vec<Self>) -> Self {
                $(let mut $v = Vec::with_capacity(samples.len());)+
                for ($($t,)+) in samples {
                    $($v.push($t);)+
                }
                ($($t::collate($v),)+)
            }
        }
    };
}
#[allow(non_snake_case)]
mod tuple_impls {
    use super::Collate;
    collate_tuple!(A a);
    collate_tuple!(A a, B b);
    collate_tuple!(A a, B b, C c);
    collate_tuple!(A a, B b, C c, D d);
}

/// A group of tensors that a [`TensorDataset`] indexes together along dim 0: one `Tensor`, a
/// tuple of up to four, or a `Vec<Tensor>` (any number).
pub trait TensorTuple: Clone + Send + Sync + 'static {
    /// The tensors of the group, in order.
    fn tensors(&self) -> Vec<&Tensor>;
    /// The group with `f` applied to each tensor.
    fn map(&self, f: impl FnMut(&Tensor) -> Tensor) -> Self;
}

impl TensorTuple for Tensor {
    fn tensors(&self) -> Vec<&Tensor> {
        vec![self]
    }
    fn map(&self, mut f: impl FnMut(&Tensor) -> Tensor) -> Self {
        f(self)
    }
}

impl TensorTuple for Vec<Tensor> {
    fn tensors(&self) -> Vec<&Tensor> {
        self.iter().collect()
    }
    fn map(&self, f: impl FnMut(&Tensor) -> Tensor) -> Self {
        self.iter().map(f).collect()
    }
}

macro_rules! tensor_tuple {
    ($($i:tt),+) => {
        impl TensorTuple for ($(tensor_tuple!(@t $i),)+) {
            fn tensors(&self) -> Vec<&Tensor> {
                vec![$(&self.$i),+]
            }
            fn map(&self, mut f: impl FnMut(&Tensor) -> Tensor) -> Self {
                ($(f(&self.$i),)+)
            }
        }
    };
    (@t $i:tt) => { Tensor };
}
tensor_tuple!(0);
tensor_tuple!(0, 1);
tensor_tuple!(0, 1, 2);
tensor_tuple!(0, 1, 2, 3);

/// Tensors sharing their first dimension, sample `i` being row `i` of each
/// (`torch.utils.data.TensorDataset`). A batch is gathered with one `index_select` per tensor.
///
/// ```
/// use ember_data::{Dataset, TensorDataset};
/// use ember_autograd::Tensor;
/// let x = Tensor::arange(6).view([3, 2]);
/// let y = Tensor::from_vec(vec![0i64, 1, 0], [3]);
/// let ds = TensorDataset::new((x, y));
/// assert_eq!(ds.len(), 3);
/// let (xi, yi) = ds.get(1);
/// assert_eq!((xi.to_vec::<i64>(), yi.item()), (vec![2, 3], 1.0));
/// ```
#[derive(Clone)]
pub struct TensorDataset<T: TensorTuple = (Tensor, Tensor)> {
    tensors: T,
    len: usize,
}

impl<T: TensorTuple> TensorDataset<T> {
    /// The dataset over `tensors`; panics with the shapes when their first dims differ.
    pub fn new(tensors: T) -> TensorDataset<T> {
        TensorDataset::try_new(tensors).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The dataset over `tensors`, or an error when there are none, one is 0-dim, or their
    /// first dims differ.
    pub fn try_new(tensors: T) -> Result<TensorDataset<T>, DataError> {
        let all = tensors.tensors();
        let Some(first) = all.first() else {
            return Err(DataError::SizeMismatch {
                reason: "TensorDataset: needs at least one tensor".into(),
            });
        };
        for (i, t) in all.iter().enumerate() {
            if t.dim() == 0 {
                return Err(DataError::SizeMismatch {
                    reason: format!(
                        "TensorDataset: tensor {i} is 0-dim; every tensor needs a first \
                         dimension to index samples by"
                    ),
                });
            }
            if t.shape()[0] != first.shape()[0] {
                return Err(DataError::SizeMismatch {
                    reason: format!(
                        "TensorDataset: size mismatch between tensors: tensor 0 has {} samples \
                         (shape {:?}) but tensor {i} has {} (shape {:?})",
                        first.shape()[0],
                        first.shape(),
                        t.shape()[0],
                        t.shape()
                    ),
                });
            }
        }
        let len = first.shape()[0];
        Ok(TensorDataset { tensors, len })
    }

    /// The tensors, as given.
    pub fn tensors(&self) -> &T {
        &self.tensors
    }
}

fn check_index(op: &str, index: usize, len: usize) {
    if index >= len {
        panic!("{op}: index {index} is out of range for a dataset of {len} samples");
    }
}

/// `indices` as a 1-D int64 tensor.
pub(crate) fn index_tensor(indices: &[usize]) -> Tensor {
    let v: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    let n = v.len();
    Tensor::from_vec(v, [n])
}

impl<T: TensorTuple> Dataset for TensorDataset<T> {
    type Sample = T;
    fn len(&self) -> usize {
        self.len
    }
    /// Row `index` of each tensor, as views (no copy).
    fn get(&self, index: usize) -> T {
        check_index("TensorDataset", index, self.len);
        self.tensors.map(|t| t.select(0, index))
    }
    /// One `index_select` along dim 0 per tensor.
    fn get_batch(&self, indices: &[usize]) -> T {
        for &i in indices {
            check_index("TensorDataset", i, self.len);
        }
        let idx = index_tensor(indices);
        self.tensors.map(|t| t.index_select(0, &idx))
    }
}

/// The samples of `dataset` at `indices`, in that order (`torch.utils.data.Subset`).
///
/// ```
/// use std::sync::Arc;
/// use ember_data::{Dataset, Subset, TensorDataset};
/// use ember_autograd::Tensor;
/// let ds = Arc::new(TensorDataset::new(Tensor::arange(10)));
/// let evens = Subset::new(ds, (0..10).step_by(2).collect());
/// assert_eq!((evens.len(), evens.get(3).item()), (5, 6.0));
/// ```
pub struct Subset<D> {
    dataset: Arc<D>,
    indices: Vec<usize>,
}

impl<D> Clone for Subset<D> {
    fn clone(&self) -> Self {
        Subset {
            dataset: self.dataset.clone(),
            indices: self.indices.clone(),
        }
    }
}

impl<D: Dataset> Subset<D> {
    /// The subset of `dataset` at `indices`; panics when an index is out of range.
    pub fn new(dataset: Arc<D>, indices: Vec<usize>) -> Subset<D> {
        let n = dataset.len();
        for &i in &indices {
            check_index("Subset", i, n);
        }
        Subset { dataset, indices }
    }

    /// The underlying dataset.
    pub fn dataset(&self) -> &Arc<D> {
        &self.dataset
    }

    /// The indices into the underlying dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl<D: Dataset> Dataset for Subset<D> {
    type Sample = D::Sample;
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> D::Sample {
        check_index("Subset", index, self.indices.len());
        self.dataset.get(self.indices[index])
    }
    /// The underlying dataset's `get_batch` on the mapped indices (still one gather per tensor).
    fn get_batch(&self, indices: &[usize]) -> D::Sample
    where
        D::Sample: Collate,
    {
        let n = self.indices.len();
        let mapped: Vec<usize> = indices
            .iter()
            .map(|&i| {
                check_index("Subset", i, n);
                self.indices[i]
            })
            .collect();
        self.dataset.get_batch(&mapped)
    }
}

/// Splits `dataset` into non-overlapping random subsets of the given `lengths`
/// (`torch.utils.data.random_split`); the same `seed` gives the same split on any machine.
/// Panics when the lengths do not add up to `dataset.len()`.
///
/// ```
/// use ember_data::{random_split, Dataset, TensorDataset};
/// use ember_autograd::Tensor;
/// let parts = random_split(TensorDataset::new(Tensor::arange(10)), &[7, 3], 42);
/// assert_eq!((parts[0].len(), parts[1].len()), (7, 3));
/// ```
pub fn random_split<D: Dataset>(dataset: D, lengths: &[usize], seed: u64) -> Vec<Subset<D>> {
    let n = dataset.len();
    let total: usize = lengths.iter().sum();
    if total != n {
        panic!(
            "random_split: sum of input lengths ({total}) does not equal the length of the input \
             dataset ({n})"
        );
    }
    let perm: Vec<usize> = Tensor::randperm_with(n, Some(&Generator::new(seed)))
        .to_vec::<i64>()
        .into_iter()
        .map(|i| i as usize)
        .collect();
    let dataset = Arc::new(dataset);
    let mut start = 0;
    lengths
        .iter()
        .map(|&len| {
            let part = perm[start..start + len].to_vec();
            start += len;
            Subset {
                dataset: dataset.clone(),
                indices: part,
            }
        })
        .collect()
}

/// [`random_split`] with lengths given as fractions of `dataset.len()` summing to 1; the
/// remainder left by rounding down is spread one by one over the first parts, as PyTorch does.
///
/// ```
/// use ember_data::{random_split_fractions, Dataset, TensorDataset};
/// use ember_autograd::Tensor;
/// let parts = random_split_fractions(TensorDataset::new(Tensor::arange(11)), &[0.8, 0.2], 0);
/// assert_eq!((parts[0].len(), parts[1].len()), (9, 2));
/// ```
pub fn random_split_fractions<D: Dataset>(
    dataset: D,
    fractions: &[f64],
    seed: u64,
) -> Vec<Subset<D>> {
    let sum: f64 = fractions.iter().sum();
    if fractions.iter().any(|f| !(0.0..=1.0).contains(f)) || (sum - 1.0).abs() > 1e-9 {
        panic!("random_split: fractions must be in [0, 1] and sum to 1, got {fractions:?}");
    }
    let n = dataset.len();
    let mut lengths: Vec<usize> = fractions
        .iter()
        .map(|f| (n as f64 * f).floor() as usize)
        .collect();
    let remainder = n - lengths.iter().sum::<usize>();
    let k = lengths.len();
    for i in 0..remainder {
        lengths[i % k] += 1;
    }
    random_split(dataset, &lengths, seed)
}
