//! Strided layouts and the view algebra. A `Layout` maps a logical index to a position in storage:
//! `offset + Σ index[d] * strides[d]`. Every view (transpose, narrow, expand, …) only builds a new
//! `Layout` over the same storage; nothing here touches data.

use crate::shape::{contiguous_strides, numel, Dims};
use smallvec::SmallVec;

/// Shape, element strides (0 for broadcast dimensions) and start offset of a strided view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Dims,
    strides: Dims,
    offset: usize,
}

impl Layout {
    /// A row-major contiguous layout starting at offset 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout {
            shape: SmallVec::from_slice(shape),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// A layout from its parts (the caller guarantees it stays inside its storage).
    pub fn new(shape: &[usize], strides: &[usize], offset: usize) -> Self {
        assert_eq!(
            shape.len(),
            strides.len(),
            "layout: shape and strides differ in length"
        );
        Layout {
            shape: SmallVec::from_slice(shape),
            strides: SmallVec::from_slice(strides),
            offset,
        }
    }

    /// Sizes of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Element strides of each dimension.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Position of element `[0, 0, …]` in storage.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// True when elements are laid out row-major without gaps (size-1 dims may have any stride).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for d in (0..self.shape.len()).rev() {
            if self.shape[d] == 1 {
                continue;
            }
            if self.strides[d] != expected {
                return false;
            }
            expected *= self.shape[d];
        }
        true
    }

    /// The storage range `start..end` when the layout is contiguous.
    pub fn contiguous_range(&self) -> Option<(usize, usize)> {
        self.is_contiguous()
            .then(|| (self.offset, self.offset + self.numel()))
    }

    /// True when several elements share one storage position: a dim of more than one element
    /// with stride 0 (an `expand`ed view), which can be read but not written element by element.
    pub fn has_overlap(&self) -> bool {
        self.shape()
            .iter()
            .zip(self.strides())
            .any(|(&n, &s)| n > 1 && s == 0)
    }

    /// One past the largest storage position this layout touches (0 when empty).
    pub fn storage_extent(&self) -> usize {
        if self.numel() == 0 {
            return 0;
        }
        self.offset
            + self
                .shape
                .iter()
                .zip(&self.strides)
                .map(|(&s, &st)| (s - 1) * st)
                .sum::<usize>()
            + 1
    }

    fn check_dim(&self, op: &str, dim: usize) {
        if dim >= self.ndim() {
            panic!(
                "{op}: dim {dim} out of range for a tensor of shape {:?}",
                self.shape
            );
        }
    }

    /// Swaps two dimensions.
    pub fn transpose(&self, d0: usize, d1: usize) -> Layout {
        if self.ndim() == 0 {
            return self.clone();
        }
        self.check_dim("transpose", d0);
        self.check_dim("transpose", d1);
        let mut l = self.clone();
        l.shape.swap(d0, d1);
        l.strides.swap(d0, d1);
        l
    }

    /// Reorders dimensions: output dim `i` is input dim `dims[i]`.
    pub fn permute(&self, dims: &[usize]) -> Layout {
        let n = self.ndim();
        let mut seen: SmallVec<[bool; 6]> = SmallVec::from_elem(false, n);
        if dims.len() != n
            || dims
                .iter()
                .any(|&d| d >= n || std::mem::replace(&mut seen[d], true))
        {
            panic!(
                "permute: dims {dims:?} are not a permutation of the {n} dims of shape {:?}",
                self.shape
            );
        }
        Layout {
            shape: dims.iter().map(|&d| self.shape[d]).collect(),
            strides: dims.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        }
    }

    /// Elements `start..start+len` of `dim`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Layout {
        self.slice(dim, start, start + len, 1)
    }

    /// Elements `start..end` of `dim` taking every `step`-th (`x[..., start:end:step]`).
    pub fn slice(&self, dim: usize, start: usize, end: usize, step: usize) -> Layout {
        self.check_dim("slice", dim);
        assert!(step > 0, "slice: step must be positive, got {step}");
        let size = self.shape[dim];
        if start > end || end > size {
            panic!("slice: range {start}..{end} out of bounds for dim {dim} of size {size} (shape {:?})", self.shape);
        }
        let mut l = self.clone();
        l.shape[dim] = (end - start).div_ceil(step);
        if l.shape[dim] > 0 {
            l.offset += start * self.strides[dim];
        }
        l.strides[dim] *= step;
        l
    }

    /// Drops `dim` by fixing it at `index` (`x[..., index, ...]`).
    pub fn select(&self, dim: usize, index: usize) -> Layout {
        self.check_dim("select", dim);
        if index >= self.shape[dim] {
            panic!(
                "select: index {index} is out of bounds for dimension {dim} with size {}",
                self.shape[dim]
            );
        }
        let mut l = self.clone();
        l.offset += index * self.strides[dim];
        l.shape.remove(dim);
        l.strides.remove(dim);
        l
    }

    /// Broadcasts to `shape` (new leading dims and size-1 dims get stride 0), as `expand`.
    pub fn expand(&self, shape: &[usize]) -> Layout {
        let n = shape.len();
        if n < self.ndim() {
            panic!("expand: the number of sizes provided ({n}) must be greater or equal to the number of dimensions in the tensor ({})", self.ndim());
        }
        let lead = n - self.ndim();
        let mut strides: Dims = SmallVec::from_elem(0, n);
        for i in 0..n {
            if i < lead {
                continue;
            }
            let (s, st) = (self.shape[i - lead], self.strides[i - lead]);
            if s == shape[i] {
                strides[i] = st;
            } else if s != 1 {
                panic!("expand: the expanded size of the tensor ({}) must match the existing size ({s}) at non-singleton dimension {i}. Target sizes: {shape:?}. Tensor sizes: {:?}", shape[i], self.shape);
            }
        }
        Layout {
            shape: SmallVec::from_slice(shape),
            strides,
            offset: self.offset,
        }
    }

    /// Inserts a size-1 dimension at `dim` (`0..=ndim`).
    pub fn unsqueeze(&self, dim: usize) -> Layout {
        assert!(
            dim <= self.ndim(),
            "unsqueeze: dim {dim} out of range for shape {:?}",
            self.shape
        );
        let mut l = self.clone();
        let st = if dim < self.ndim() {
            self.strides[dim] * self.shape[dim]
        } else {
            1
        };
        l.shape.insert(dim, 1);
        l.strides.insert(dim, st);
        l
    }

    /// Removes `dim` if its size is 1 (otherwise unchanged, as PyTorch).
    pub fn squeeze(&self, dim: usize) -> Layout {
        if self.ndim() == 0 {
            return self.clone();
        }
        self.check_dim("squeeze", dim);
        let mut l = self.clone();
        if l.shape[dim] == 1 {
            l.shape.remove(dim);
            l.strides.remove(dim);
        }
        l
    }

    /// Removes every size-1 dimension.
    pub fn squeeze_all(&self) -> Layout {
        let keep = |i: &usize| self.shape[*i] != 1;
        let idx: Dims = (0..self.ndim()).filter(keep).collect();
        Layout {
            shape: idx.iter().map(|&d| self.shape[d]).collect(),
            strides: idx.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        }
    }

    /// A layout with `shape` over the same elements without copying, when PyTorch's `view` rule
    /// allows it (each run of merged dims must be contiguous within itself); `None` otherwise.
    pub fn view(&self, shape: &[usize]) -> Option<Layout> {
        if numel(shape) != self.numel() {
            return None;
        }
        if self.numel() == 0 || self.ndim() == 0 {
            return Some(Layout {
                offset: self.offset,
                ..Layout::contiguous(shape)
            });
        }
        // PyTorch's computeStride: walk the old dims from the back in chunks that are contiguous
        // with each other, and give the new dims strides inside each chunk.
        let (old_shape, old_strides) = (&self.shape, &self.strides);
        let mut new_strides: Dims = SmallVec::from_elem(0, shape.len());
        let mut view_d = shape.len() as isize - 1;
        let mut chunk_base_stride = *old_strides.last().unwrap();
        let mut tensor_numel = 1;
        let mut view_numel = 1;
        for tensor_d in (0..old_shape.len()).rev() {
            tensor_numel *= old_shape[tensor_d];
            let chunk_end = tensor_d == 0
                || (old_shape[tensor_d - 1] != 1
                    && old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride);
            if chunk_end {
                while view_d >= 0 && (view_numel < tensor_numel || shape[view_d as usize] == 1) {
                    new_strides[view_d as usize] = view_numel * chunk_base_stride;
                    view_numel *= shape[view_d as usize];
                    view_d -= 1;
                }
                if view_numel != tensor_numel {
                    return None;
                }
                if tensor_d > 0 {
                    chunk_base_stride = old_strides[tensor_d - 1];
                    tensor_numel = 1;
                    view_numel = 1;
                }
            }
        }
        if view_d != -1 {
            return None;
        }
        Some(Layout {
            shape: SmallVec::from_slice(shape),
            strides: new_strides,
            offset: self.offset,
        })
    }

    /// Storage position of a logical multi-index.
    pub fn position(&self, index: &[usize]) -> usize {
        self.offset
            + index
                .iter()
                .zip(&self.strides)
                .map(|(i, s)| i * s)
                .sum::<usize>()
    }

    /// Iterates over the storage positions of every element in row-major order (slow path helper
    /// for reference code and tests; kernels use [`crate::cpu::strided::Walker`]).
    pub fn positions(&self) -> impl Iterator<Item = usize> + '_ {
        let n = self.numel();
        let mut idx: Dims = SmallVec::from_elem(0, self.ndim());
        let mut pos = self.offset;
        (0..n).map(move |k| {
            if k > 0 {
                let mut d = self.ndim();
                while d > 0 {
                    d -= 1;
                    idx[d] += 1;
                    pos += self.strides[d];
                    if idx[d] < self.shape[d] {
                        break;
                    }
                    pos -= self.shape[d] * self.strides[d];
                    idx[d] = 0;
                }
            }
            pos
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_then_view_fails_and_contiguous_views() {
        let l = Layout::contiguous(&[2, 3, 4]);
        assert!(l.is_contiguous());
        let t = l.transpose(1, 2);
        assert!(!t.is_contiguous());
        assert!(t.view(&[2, 12]).is_none());
        assert!(t.view(&[2, 4, 3]).is_some() || t.view(&[2, 4, 3]).is_none());
        // Splitting a transposed dim is fine.
        let v = t.view(&[2, 2, 2, 3]).unwrap();
        assert_eq!(v.strides(), &[12, 2, 1, 4]);
        assert_eq!(l.view(&[6, 4]).unwrap().strides(), &[4, 1]);
    }

    #[test]
    fn only_expanded_dims_overlap() {
        let l = Layout::contiguous(&[1, 3]);
        assert!(!l.has_overlap());
        assert!(!l.transpose(0, 1).has_overlap());
        // A size-1 dim's stride never matters; an expanded dim of 4 does.
        assert!(!Layout::new(&[1, 3], &[0, 1], 0).has_overlap());
        assert!(l.expand(&[4, 3]).has_overlap());
    }

    #[test]
    fn narrow_with_step() {
        let l = Layout::contiguous(&[4, 5]);
        let s = l.slice(1, 1, 5, 2);
        assert_eq!(s.shape(), &[4, 2]);
        assert_eq!(s.strides(), &[5, 2]);
        assert_eq!(s.offset(), 1);
        assert_eq!(
            s.positions().collect::<Vec<_>>(),
            vec![1, 3, 6, 8, 11, 13, 16, 18]
        );
    }

    #[test]
    fn expand_and_unsqueeze() {
        let l = Layout::contiguous(&[3, 1]);
        let e = l.expand(&[2, 3, 4]);
        assert_eq!(e.strides(), &[0, 1, 0]);
        let u = Layout::contiguous(&[3, 4]).unsqueeze(1);
        assert_eq!(u.shape(), &[3, 1, 4]);
        assert_eq!(u.squeeze(1).shape(), &[3, 4]);
    }

    #[test]
    #[should_panic(expected = "expand: the expanded size")]
    fn expand_bad() {
        Layout::contiguous(&[3, 2]).expand(&[3, 4]);
    }
}
