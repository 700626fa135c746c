//! Shape arithmetic shared by every backend: dimension lists, negative-dim normalisation,
//! `-1` inference and broadcasting.

use crate::layout::Layout;
use smallvec::SmallVec;

/// A small inline list of sizes or strides: tensors rarely have more than six dims.
pub type Dims = SmallVec<[usize; 6]>;

/// Number of elements of a shape (1 for a 0-dim tensor).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major (C-contiguous) strides of a shape.
pub fn contiguous_strides(shape: &[usize]) -> Dims {
    let mut strides: Dims = SmallVec::from_elem(1, shape.len());
    let mut acc = 1;
    for d in (0..shape.len()).rev() {
        strides[d] = acc;
        acc *= shape[d].max(1);
    }
    strides
}

/// Maps a possibly negative dim to `0..ndim`, panicking with PyTorch's message when out of range.
/// A 0-dim tensor accepts dims -1 and 0, as in PyTorch.
#[track_caller]
pub fn normalize_dim(dim: isize, ndim: usize) -> usize {
    let n = ndim.max(1) as isize;
    if dim < -n || dim >= n {
        panic!(
            "Dimension out of range (expected to be in range of [{}, {}], but got {dim})",
            -n,
            n - 1
        );
    }
    if dim < 0 {
        (dim + n) as usize
    } else {
        dim as usize
    }
}

/// Resolves a requested shape with at most one `-1` against `numel` elements, as `view`/`reshape`.
#[track_caller]
pub fn infer_shape(op: &str, requested: &[isize], numel_in: usize, from: &[usize]) -> Dims {
    let mut infer_at = None;
    let mut known = 1usize;
    for (i, &s) in requested.iter().enumerate() {
        if s == -1 {
            if infer_at.replace(i).is_some() {
                panic!("{op}: only one dimension can be inferred");
            }
        } else if s < 0 {
            panic!("{op}: invalid shape dimension {s}");
        } else {
            known *= s as usize;
        }
    }
    let mut out: Dims = requested.iter().map(|&s| s.max(0) as usize).collect();
    match infer_at {
        Some(i) => {
            if known == 0 || !numel_in.is_multiple_of(known) {
                panic!("{op}: shape '{requested:?}' is invalid for input of size {numel_in} (input shape {from:?})");
            }
            out[i] = numel_in / known;
        }
        None => {
            if known != numel_in {
                panic!("{op}: shape '{requested:?}' is invalid for input of size {numel_in} (input shape {from:?})");
            }
        }
    }
    out
}

/// The broadcast shape of two shapes (NumPy/PyTorch rules), or `None` when they are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Dims> {
    let n = a.len().max(b.len());
    let mut out: Dims = SmallVec::from_elem(1, n);
    for i in 0..n {
        let da = if i < n - a.len() {
            1
        } else {
            a[i - (n - a.len())]
        };
        let db = if i < n - b.len() {
            1
        } else {
            b[i - (n - b.len())]
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}

/// Like [`broadcast_shapes`], panicking with a message that names the op and both shapes.
pub fn broadcast_or_panic(op: &str, a: &[usize], b: &[usize]) -> Dims {
    broadcast_shapes(a, b)
        .unwrap_or_else(|| panic!("{op}: shapes {a:?} and {b:?} cannot be broadcast together"))
}

/// The shape of `torch.cat(parts, dim)`: the parts' common shape with `dim` summed. 1-D empty
/// parts (shape `[0]`) are skipped when the others have more dims, as PyTorch's legacy rule.
/// Panics naming the shapes when they disagree outside `dim`, or when `parts` is empty.
pub fn cat_shape(parts: &[&[usize]], dim: usize) -> Dims {
    if parts.is_empty() {
        panic!("cat: expected a non-empty list of Tensors");
    }
    let legacy_empty = |s: &&[usize]| s.len() == 1 && s[0] == 0;
    let kept: Vec<&[usize]> = parts.iter().copied().filter(|s| !legacy_empty(s)).collect();
    if kept.is_empty() {
        if dim != 0 {
            panic!("cat: dim {dim} out of range for tensors of shape [0]");
        }
        return SmallVec::from_slice(&[0]);
    }
    let first = kept[0];
    if first.is_empty() {
        panic!("cat: zero-dimensional tensor (at position 0) cannot be concatenated");
    }
    if dim >= first.len() {
        panic!("cat: dim {dim} out of range for tensors of shape {first:?}");
    }
    let mut out: Dims = SmallVec::from_slice(first);
    out[dim] = 0;
    for (i, s) in parts.iter().enumerate() {
        if legacy_empty(s) && first.len() != 1 {
            continue;
        }
        if s.len() != first.len() {
            panic!(
                "cat: Tensors must have same number of dimensions: got {} and {} (shapes {first:?} and {s:?})",
                first.len(),
                s.len()
            );
        }
        for d in 0..s.len() {
            if d != dim && s[d] != first[d] {
                panic!(
                    "cat: Sizes of tensors must match except in dimension {dim}. Expected size {} but got size {} for tensor number {i} in the list (shapes {first:?} and {s:?})",
                    first[d], s[d]
                );
            }
        }
        out[dim] += s[dim];
    }
    out
}

/// Panics unless `dim` is a dim of `shape` (a 0-dim shape has dim 0), naming `op`: the index
/// ops' check, shared by every backend.
#[track_caller]
pub fn check_dim(op: &str, dim: usize, shape: &[usize]) {
    if dim >= shape.len().max(1) {
        panic!("{op}: dim {dim} out of range for a tensor of shape {shape:?}");
    }
}

/// A 0-dim layout as 1-D of size 1 (PyTorch treats a scalar's dim 0 that way in gather/scatter).
pub fn at_least_1d(l: &Layout) -> Layout {
    if l.ndim() == 0 {
        l.unsqueeze(0)
    } else {
        l.clone()
    }
}

/// Checks the index/self/src shapes of gather and scatter as PyTorch does (every backend).
#[track_caller]
pub fn check_index_shapes(op: &str, dim: usize, l: &Layout, li: &Layout, ls: Option<&Layout>) {
    let (s, si) = (l.shape(), li.shape());
    if s.len() != si.len() {
        panic!(
            "{op}: Index tensor must have the same number of dimensions as self tensor (index shape {si:?}, self shape {s:?})"
        );
    }
    for d in 0..s.len() {
        if d != dim && si[d] > s[d] {
            panic!("{op}: Size does not match at dimension {d}: expected index {si:?} to be no larger than self {s:?} apart from dimension {dim}");
        }
    }
    if let Some(ls) = ls {
        let ss = ls.shape();
        if ss.len() != si.len() || si.iter().zip(ss).any(|(a, b)| a > b) {
            panic!("{op}: Expected index {si:?} to be no larger than src {ss:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(
            broadcast_shapes(&[2, 1, 3], &[4, 1]).unwrap().as_slice(),
            &[2, 4, 3]
        );
        assert_eq!(broadcast_shapes(&[], &[2]).unwrap().as_slice(), &[2]);
        assert!(broadcast_shapes(&[2, 3], &[4, 3]).is_none());
    }

    #[test]
    fn infer() {
        assert_eq!(infer_shape("view", &[-1, 2], 8, &[8]).as_slice(), &[4, 2]);
        assert_eq!(infer_shape("view", &[2, 4], 8, &[8]).as_slice(), &[2, 4]);
    }

    #[test]
    #[should_panic(expected = "view: shape '[3, -1]' is invalid for input of size 8")]
    fn infer_bad() {
        infer_shape("view", &[3, -1], 8, &[8]);
    }

    #[test]
    fn dims() {
        assert_eq!(normalize_dim(-1, 3), 2);
        assert_eq!(normalize_dim(0, 0), 0);
        assert_eq!(contiguous_strides(&[2, 3, 4]).as_slice(), &[12, 4, 1]);
    }
}
