//! Tensors from runtime nested `Vec`s (PyTorch's `torch.tensor(features)` on lists of lists):
//! the shape is read from the first element at each depth, as PyTorch does, and every other
//! sequence must match it; ragged input is an error naming the offending sequence.

use crate::tensor::Tensor;
use ember_kernels::CpuElement;
use std::fmt;

/// Ragged nested data: a sequence whose length differs from the first one at its depth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaggedError {
    /// The length the first sequence at this depth has.
    pub expected: usize,
    /// The length the offending sequence has.
    pub got: usize,
    /// The depth (dimension) of the offending sequence.
    pub dim: usize,
    /// The offending sequence's position (`[1]` is the second row).
    pub index: Vec<usize>,
}

impl fmt::Display for RaggedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at: String = self.index.iter().map(|i| format!("[{i}]")).collect();
        write!(
            f,
            "expected sequence of length {} at dim {} (got {}): data{at} has {} elements where \
             data{} has {}",
            self.expected,
            self.dim,
            self.got,
            self.got,
            "[0]".repeat(self.dim),
            self.expected
        )
    }
}

impl std::error::Error for RaggedError {}

/// Nested data a tensor can be built from: a scalar element (`f32`, `f64`, `i64`, …) or a `Vec`
/// of nested data, any depth.
pub trait NestedData {
    /// The element type (decides the dtype: `f32` → float32, `i64` → int64, …).
    type Elem: CpuElement;
    /// Appends the lengths of the first sequence at each depth to `shape` (stopping at an empty
    /// one, as PyTorch does).
    fn infer_shape(&self, shape: &mut Vec<usize>);
    /// Appends the elements in row-major order, checking every sequence against `shape`;
    /// `index` is this value's position.
    fn flatten_into(
        &self,
        shape: &[usize],
        index: &mut Vec<usize>,
        out: &mut Vec<Self::Elem>,
    ) -> Result<(), RaggedError>;
}

macro_rules! nested_leaf {
    ($($t:ty),*) => {$(
        impl NestedData for $t {
            type Elem = $t;
            fn infer_shape(&self, _: &mut Vec<usize>) {}
            fn flatten_into(
                &self,
                _: &[usize],
                _: &mut Vec<usize>,
                out: &mut Vec<$t>,
            ) -> Result<(), RaggedError> {
                out.push(*self);
                Ok(())
            }
        }

        impl From<Vec<$t>> for Tensor {
            /// A 1-D tensor of the values (`torch.tensor(list)`).
            fn from(data: Vec<$t>) -> Tensor {
                let n = data.len();
                Tensor::from_vec(data, [n])
            }
        }

        impl From<Vec<Vec<$t>>> for Tensor {
            /// A 2-D tensor of the rows (`torch.tensor(rows)`); panics on ragged rows with
            /// PyTorch's message (see [`Tensor::try_from_nested`] for a `Result`).
            #[track_caller]
            fn from(data: Vec<Vec<$t>>) -> Tensor {
                match Tensor::try_from_nested(&data) {
                    Ok(t) => t,
                    Err(e) => panic!("{e}"),
                }
            }
        }

        impl From<Vec<Vec<Vec<$t>>>> for Tensor {
            /// A 3-D tensor (`torch.tensor(nested)`); panics on ragged input with PyTorch's
            /// message (see [`Tensor::try_from_nested`] for a `Result`).
            #[track_caller]
            fn from(data: Vec<Vec<Vec<$t>>>) -> Tensor {
                match Tensor::try_from_nested(&data) {
                    Ok(t) => t,
                    Err(e) => panic!("{e}"),
                }
            }
        }
    )*};
}
nested_leaf!(f32, f64, i64, u8, bool);

impl<N: NestedData> NestedData for Vec<N> {
    type Elem = N::Elem;
    fn infer_shape(&self, shape: &mut Vec<usize>) {
        shape.push(self.len());
        if let Some(first) = self.first() {
            first.infer_shape(shape);
        }
    }
    fn flatten_into(
        &self,
        shape: &[usize],
        index: &mut Vec<usize>,
        out: &mut Vec<N::Elem>,
    ) -> Result<(), RaggedError> {
        let dim = index.len();
        if self.len() != shape[dim] {
            return Err(RaggedError {
                expected: shape[dim],
                got: self.len(),
                dim,
                index: index.clone(),
            });
        }
        for (i, x) in self.iter().enumerate() {
            index.push(i);
            x.flatten_into(shape, index, out)?;
            index.pop();
        }
        Ok(())
    }
}

impl Tensor {
    /// A tensor from nested `Vec`s of any depth (`torch.tensor(features)`), or the first ragged
    /// sequence as an error. The dtype follows the element type.
    ///
    /// ```
    /// use ember_autograd::{DType, Tensor};
    /// let rows = vec![vec![1.0f32, 2.0, 3.0], vec![4.0, 5.0, 6.0]];
    /// let x = Tensor::try_from_nested(&rows).unwrap();
    /// assert_eq!((x.shape(), x.dtype()), (&[2usize, 3][..], DType::F32));
    /// let y = Tensor::from(rows); // panics instead of returning the error
    /// assert!(x.allclose(&y, 0.0, 0.0));
    ///
    /// let ragged = vec![vec![1i64, 2, 3], vec![4, 5]];
    /// let e = Tensor::try_from_nested(&ragged).unwrap_err();
    /// assert_eq!(
    ///     e.to_string(),
    ///     "expected sequence of length 3 at dim 1 (got 2): data[1] has 2 elements where data[0] has 3"
    /// );
    /// ```
    pub fn try_from_nested<N: NestedData>(data: &N) -> Result<Tensor, RaggedError> {
        let mut shape = Vec::new();
        data.infer_shape(&mut shape);
        let mut out = Vec::with_capacity(shape.iter().product());
        data.flatten_into(&shape, &mut Vec::new(), &mut out)?;
        Ok(Tensor::from_vec(out, shape))
    }
}
