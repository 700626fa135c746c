//! `x.i(…)`: Python's basic indexing (`x[1]`, `x[:, 1:3]`, `x[-1]`, `x[::2]`, `x[None]`,
//! `x[..., 0]`) as views built from `select`, `slice` and `unsqueeze`, so the result shares
//! storage, is differentiable, and `x.i(…).copy_(&y)` assigns into `x`.

use crate::tensor::Tensor;
use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

/// One entry of an `.i(…)` index: what Python writes between two commas of `x[…]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorIndexer {
    /// `x[i]`: one position of the dim (negative counts from the end); the dim is dropped.
    Select(isize),
    /// `x[start:end:step]`: bounds are clamped to the dim as in Python, negative ones count from
    /// the end, `None` is the whole side.
    Slice {
        /// First position (`None`: 0).
        start: Option<isize>,
        /// One past the last position (`None`: the dim's size).
        end: Option<isize>,
        /// Distance between kept positions (positive).
        step: usize,
    },
    /// `x[None]`: a new dim of size 1 here.
    NewAxis,
    /// `x[...]`: as many whole dims as the other entries leave.
    Ellipsis,
}

/// `None` in a PyTorch index (`x[:, None]`): `x.i((.., NewAxis))` inserts a dim of size 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewAxis;

/// `...` in a PyTorch index (`x[..., 0]`): `x.i((Ellipsis, 0))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ellipsis;

/// A range with a step, Python's `start:end:step`: `x.i(Step(1..7, 2))` is `x[1:7:2]`,
/// `x.i((.., Step(.., 2)))` is `x[:, ::2]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step<R>(pub R, pub usize);

impl From<NewAxis> for TensorIndexer {
    fn from(_: NewAxis) -> Self {
        TensorIndexer::NewAxis
    }
}

impl From<Ellipsis> for TensorIndexer {
    fn from(_: Ellipsis) -> Self {
        TensorIndexer::Ellipsis
    }
}

impl From<RangeFull> for TensorIndexer {
    fn from(_: RangeFull) -> Self {
        TensorIndexer::Slice {
            start: None,
            end: None,
            step: 1,
        }
    }
}

impl<R: Into<TensorIndexer>> From<Step<R>> for TensorIndexer {
    #[track_caller]
    fn from(Step(range, step): Step<R>) -> Self {
        match range.into() {
            TensorIndexer::Slice { start, end, .. } => TensorIndexer::Slice { start, end, step },
            other => panic!("Step: expected a range, but got {other:?}"),
        }
    }
}

/// Integers select; every range form of them slices. Python's `end` is exclusive, so an
/// inclusive range ends one further (and `..=-1` runs to the end).
macro_rules! integer_indexers {
    ($($t:ty),*) => {$(
        impl From<$t> for TensorIndexer {
            fn from(i: $t) -> Self {
                TensorIndexer::Select(i as isize)
            }
        }
        impl From<Range<$t>> for TensorIndexer {
            fn from(r: Range<$t>) -> Self {
                slice(Some(r.start as isize), Some(r.end as isize))
            }
        }
        impl From<RangeFrom<$t>> for TensorIndexer {
            fn from(r: RangeFrom<$t>) -> Self {
                slice(Some(r.start as isize), None)
            }
        }
        impl From<RangeTo<$t>> for TensorIndexer {
            fn from(r: RangeTo<$t>) -> Self {
                slice(None, Some(r.end as isize))
            }
        }
        impl From<RangeInclusive<$t>> for TensorIndexer {
            fn from(r: RangeInclusive<$t>) -> Self {
                slice(Some(*r.start() as isize), inclusive_end(*r.end() as isize))
            }
        }
        impl From<RangeToInclusive<$t>> for TensorIndexer {
            fn from(r: RangeToInclusive<$t>) -> Self {
                slice(None, inclusive_end(r.end as isize))
            }
        }
    )*};
}
integer_indexers!(i32, i64, isize, usize);

fn slice(start: Option<isize>, end: Option<isize>) -> TensorIndexer {
    TensorIndexer::Slice {
        start,
        end,
        step: 1,
    }
}

/// The exclusive end of `..=last`: `-1` (the last position) means "to the end".
fn inclusive_end(last: isize) -> Option<isize> {
    (last != -1).then_some(last + 1)
}

/// `x.i(index)`: PyTorch's `x[index]` for one entry or a tuple of entries (integers, ranges,
/// [`Step`], [`NewAxis`], [`Ellipsis`]). The result is a view.
///
/// ```
/// use ember_autograd::{Ellipsis, IndexOp, NewAxis, Step, Tensor};
/// let x = Tensor::arange(12).view([3, 4]);
/// assert_eq!(x.i(-1).to_vec::<i64>(), vec![8, 9, 10, 11]);
/// assert_eq!(x.i((.., 1..3)).shape(), &[3, 2]);
/// assert_eq!(x.i((1, Step(.., 2))).to_vec::<i64>(), vec![4, 6]);
/// assert_eq!(x.i((NewAxis, Ellipsis, 0)).shape(), &[1, 3]);
/// x.i((0, ..2)).copy_(&Tensor::from_slice(&[7i64, 7], [2]));
/// assert_eq!(x.i(0).to_vec::<i64>(), vec![7, 7, 2, 3]);
/// ```
pub trait IndexOp<T> {
    /// The view `self[index]`.
    fn i(&self, index: T) -> Tensor;
}

impl<T: Into<TensorIndexer>> IndexOp<T> for Tensor {
    #[track_caller]
    fn i(&self, index: T) -> Tensor {
        self.index_with(&[index.into()])
    }
}

macro_rules! tuple_index {
    ($($t:ident),+) => {
        impl<$($t: Into<TensorIndexer>),+> IndexOp<($($t,)+)> for Tensor {
            #[track_caller]
            #[allow(non_snake_case)]
            fn i(&self, ($($t,)+): ($($t,)+)) -> Tensor {
                self.index_with(&[$($t.into()),+])
            }
        }
    };
}
tuple_index!(A);
tuple_index!(A, B);
tuple_index!(A, B, C);
tuple_index!(A, B, C, D);
tuple_index!(A, B, C, D, E);
tuple_index!(A, B, C, D, E, F);

impl Tensor {
    /// `self[index]` for a list of entries: each becomes a `select`, `slice` or `unsqueeze`
    /// view of the one before, so gradients and in-place writes flow as for those views.
    #[track_caller]
    pub fn index_with(&self, index: &[TensorIndexer]) -> Tensor {
        use TensorIndexer::*;
        let consumed = index
            .iter()
            .filter(|e| matches!(e, Select(_) | Slice { .. }))
            .count();
        if index.iter().filter(|e| **e == Ellipsis).count() > 1 {
            panic!("IndexError: an index can only have a single ellipsis ('...')");
        }
        if consumed > self.dim() {
            panic!(
                "IndexError: too many indices for tensor of dimension {} (got {consumed})",
                self.dim()
            );
        }
        let mut out = self.clone();
        // The dim of `out` the next entry applies to, and the matching dim of `self` (for
        // messages).
        let (mut d, mut src) = (0usize, 0usize);
        for entry in index {
            match *entry {
                Select(i) => {
                    let n = out.shape()[d];
                    let j = if i < 0 { i + n as isize } else { i };
                    if j < 0 || j >= n as isize {
                        panic!(
                            "IndexError: index {i} is out of bounds for dimension {src} with size {n}"
                        );
                    }
                    out = out.select(d as isize, j as usize);
                    src += 1;
                }
                Slice { start, end, step } => {
                    if step == 0 {
                        panic!("ValueError: slice step cannot be zero");
                    }
                    let n = out.shape()[d] as isize;
                    let clamp = |v: Option<isize>, default: isize| {
                        let v = v.unwrap_or(default);
                        (if v < 0 { v + n } else { v }).clamp(0, n) as usize
                    };
                    let (s, e) = (clamp(start, 0), clamp(end, n));
                    out = out.slice(d as isize, s, e.max(s), step);
                    d += 1;
                    src += 1;
                }
                NewAxis => {
                    out = out.unsqueeze(d as isize);
                    d += 1;
                }
                Ellipsis => {
                    d += self.dim() - consumed;
                    src += self.dim() - consumed;
                }
            }
        }
        out
    }
}
