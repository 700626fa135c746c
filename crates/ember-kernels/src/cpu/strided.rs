//! Walking N strided operands in lock-step. Dims of size 1 are dropped and adjacent dims that are
//! contiguous in every operand are merged, so the innermost loop is as long as possible; callers
//! then get "runs": a start position in the logical (row-major) order, the storage offset of each
//! operand there, and a length along which each operand advances by its inner stride.

use crate::layout::Layout;
use crate::shape::Dims;
use smallvec::SmallVec;

/// A coalesced iteration plan over N layouts of one shape.
pub struct Walker<const N: usize> {
    dims: Dims,
    strides: [Dims; N],
    offsets: [usize; N],
}

impl<const N: usize> Walker<N> {
    /// Plans iteration over `layouts`, which must all have the same shape.
    pub fn new(layouts: [&Layout; N]) -> Self {
        let shape = layouts[0].shape();
        debug_assert!(layouts.iter().all(|l| l.shape() == shape));
        let mut dims: Dims = SmallVec::new();
        let mut strides: [Dims; N] = std::array::from_fn(|_| SmallVec::new());
        for d in 0..shape.len() {
            if shape[d] == 1 {
                continue;
            }
            let mergeable = !dims.is_empty()
                && (0..N)
                    .all(|k| *strides[k].last().unwrap() == layouts[k].strides()[d] * shape[d]);
            if mergeable {
                *dims.last_mut().unwrap() *= shape[d];
                for k in 0..N {
                    *strides[k].last_mut().unwrap() = layouts[k].strides()[d];
                }
            } else {
                dims.push(shape[d]);
                for k in 0..N {
                    strides[k].push(layouts[k].strides()[d]);
                }
            }
        }
        Walker {
            dims,
            strides,
            offsets: std::array::from_fn(|k| layouts[k].offset()),
        }
    }

    /// Total number of elements.
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// Strides of each operand along the innermost (coalesced) dim.
    pub fn inner_strides(&self) -> [usize; N] {
        std::array::from_fn(|k| self.strides[k].last().copied().unwrap_or(1))
    }

    /// Calls `f(position, offsets, len)` for each run covering logical positions `start..end`.
    pub fn runs(&self, start: usize, end: usize, mut f: impl FnMut(usize, [usize; N], usize)) {
        let nd = self.dims.len();
        if start >= end {
            return;
        }
        if nd == 0 {
            f(start, self.offsets, 1);
            return;
        }
        let inner = self.dims[nd - 1];
        let mut idx: Dims = SmallVec::from_elem(0, nd);
        let mut rem = start;
        for d in (0..nd).rev() {
            idx[d] = rem % self.dims[d];
            rem /= self.dims[d];
        }
        let mut offs = self.offsets;
        for k in 0..N {
            for d in 0..nd {
                offs[k] += idx[d] * self.strides[k][d];
            }
        }
        let mut pos = start;
        while pos < end {
            let len = (inner - idx[nd - 1]).min(end - pos);
            f(pos, offs, len);
            pos += len;
            idx[nd - 1] += len;
            for k in 0..N {
                offs[k] += len * self.strides[k][nd - 1];
            }
            if idx[nd - 1] < inner {
                continue;
            }
            // Carry into the outer dims.
            for k in 0..N {
                offs[k] -= inner * self.strides[k][nd - 1];
            }
            idx[nd - 1] = 0;
            let mut d = nd - 1;
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                for k in 0..N {
                    offs[k] += self.strides[k][d];
                }
                if idx[d] < self.dims[d] {
                    break;
                }
                for k in 0..N {
                    offs[k] -= self.dims[d] * self.strides[k][d];
                }
                idx[d] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_match_positions() {
        let a = Layout::contiguous(&[3, 4, 5])
            .transpose(0, 2)
            .slice(1, 1, 4, 2);
        let b = Layout::contiguous(a.shape());
        let w = Walker::new([&a, &b]);
        let want: Vec<usize> = a.positions().collect();
        for (s, e) in [(0, want.len()), (3, 17), (7, 8)] {
            let mut got = Vec::new();
            w.runs(s, e, |pos, offs, len| {
                let st = w.inner_strides();
                for i in 0..len {
                    assert_eq!(offs[1] + i * st[1], pos + i);
                    got.push(offs[0] + i * st[0]);
                }
            });
            assert_eq!(got, want[s..e]);
        }
    }

    #[test]
    fn contiguous_merges_to_one_dim() {
        let a = Layout::contiguous(&[2, 3, 4]);
        let w = Walker::new([&a]);
        assert_eq!(w.dims.as_slice(), &[24]);
    }
}
