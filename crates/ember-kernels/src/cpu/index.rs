//! CPU indexing kernels: `index_select`, `gather`, `scatter`/`scatter_add`, `masked_fill`, `cat` and
//! `one_hot`. Inputs may have any strides; outputs are new contiguous buffers (except the in-place
//! `scatter_add_inplace`). Whole contiguous blocks move with `copy_from_slice`; index values are
//! range-checked as they are read, panicking with PyTorch's wording.

use super::map::zip;
use super::par::{for_each_chunk_mut, n_chunks, ELEMENTWISE_GRAIN};
use super::strided::Walker;
use super::{Buffer, CpuElement, CpuStorage};
use crate::cpu_dispatch;
use crate::dtype::{DType, Element, Scalar};
use crate::layout::Layout;
use crate::shape::{at_least_1d, check_dim, check_index_shapes, numel, Dims};
use rayon::prelude::*;

/// Runs `$body` with `$v` bound to the typed slice of an integer index storage `$s`.
macro_rules! index_dispatch {
    ($op:expr, $s:expr, $v:ident => $body:expr) => {
        match $s {
            CpuStorage::I64($v) => $body,
            CpuStorage::U8($v) => $body,
            other => panic!(
                "{}(): Expected dtype int64 for index, got {}",
                $op,
                other.dtype()
            ),
        }
    };
}

#[cold]
#[inline(never)]
fn out_of_bounds(op: &str, v: i64, dim: usize, size: usize) -> ! {
    panic!("{op}: index {v} is out of bounds for dimension {dim} with size {size}")
}

/// The index value as a position along a dim of `size`, or a panic naming the op.
#[inline(always)]
fn checked<I: Element>(op: &str, ix: I, dim: usize, size: usize) -> usize {
    let v = ix.to_i64();
    if v < 0 || v as u64 >= size as u64 {
        out_of_bounds(op, v, dim, size)
    }
    v as usize
}

/// Storage position of outer element number `i` (row-major) of the dims `shape`/`strides`.
fn unravel(shape: &[usize], strides: &[usize], offset: usize, mut i: usize) -> usize {
    let mut pos = offset;
    for d in (0..shape.len()).rev() {
        pos += (i % shape[d]) * strides[d];
        i /= shape[d];
    }
    pos
}

/// A strided block (the trailing dims of a layout) copied into contiguous destinations, one
/// `copy_from_slice` per contiguous run.
struct Block {
    n: usize,
    contiguous: bool,
    walker: Walker<1>,
    inner_stride: usize,
}

impl Block {
    fn new(shape: &[usize], strides: &[usize]) -> Self {
        let l = Layout::new(shape, strides, 0);
        let walker = Walker::new([&l]);
        let [inner_stride] = walker.inner_strides();
        Block {
            n: l.numel(),
            contiguous: l.is_contiguous(),
            walker,
            inner_stride,
        }
    }

    /// `dst = src[base + block positions]`; `dst.len() == self.n`.
    #[inline]
    fn copy<T: Copy>(&self, dst: &mut [T], src: &[T], base: usize) {
        if self.contiguous {
            dst.copy_from_slice(&src[base..base + self.n]);
            return;
        }
        let st = self.inner_stride;
        self.walker.runs(0, self.n, |pos, [o], len| {
            let d = &mut dst[pos..pos + len];
            let o = base + o;
            if st == 1 {
                d.copy_from_slice(&src[o..o + len]);
            } else {
                for (i, v) in d.iter_mut().enumerate() {
                    *v = src[o + i * st];
                }
            }
        });
    }
}

/// Calls `f(row, dst_row)` for each `row_len`-element row of `out`, across rayon when large.
fn for_each_row<T: Send>(out: &mut [T], row_len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if out.is_empty() || row_len == 0 {
        return;
    }
    let rows = out.len() / row_len;
    let chunks = n_chunks(out.len(), ELEMENTWISE_GRAIN).min(rows);
    if chunks <= 1 {
        for (r, d) in out.chunks_mut(row_len).enumerate() {
            f(r, d);
        }
        return;
    }
    let per = rows.div_ceil(chunks);
    out.par_chunks_mut(per * row_len)
        .enumerate()
        .for_each(|(c, chunk)| {
            for (k, d) in chunk.chunks_mut(row_len).enumerate() {
                f(c * per + k, d);
            }
        });
}

/// Copies the elements `l` selects from `src` into the contiguous `dst` (parallel when large).
fn copy_into<T: Copy + Send + Sync>(dst: &mut [T], src: &[T], l: &Layout) {
    if let Some((s, e)) = l.contiguous_range() {
        let src = &src[s..e];
        for_each_chunk_mut(dst, ELEMENTWISE_GRAIN, |start, chunk| {
            chunk.copy_from_slice(&src[start..start + chunk.len()])
        });
        return;
    }
    let w = Walker::new([l]);
    let [st] = w.inner_strides();
    for_each_chunk_mut(dst, ELEMENTWISE_GRAIN, |start, chunk| {
        w.runs(start, start + chunk.len(), |pos, [o], len| {
            let d = &mut chunk[pos - start..pos - start + len];
            if st == 1 {
                d.copy_from_slice(&src[o..o + len]);
            } else {
                for (i, v) in d.iter_mut().enumerate() {
                    *v = src[o + i * st];
                }
            }
        });
    });
}

fn index_select_typed<T: CpuElement>(
    src: &[T],
    l: &Layout,
    dim: usize,
    idx: &[usize],
) -> Buffer<T> {
    let (shape, strides) = (l.shape(), l.strides());
    let ni = idx.len();
    let outer = numel(&shape[..dim]);
    let inner = numel(&shape[dim + 1..]);
    let mut out = Buffer::<T>::uninit(outer * ni * inner);
    if out.is_empty() {
        return out;
    }
    let sd = strides[dim];
    let block = Block::new(&shape[dim + 1..], &strides[dim + 1..]);
    if outer == 1 {
        // Rows of the selected dim (dim 0 of a batch: the DataLoader's gather).
        let base = l.offset();
        for_each_row(&mut out, inner, |j, d| {
            block.copy(d, src, base + idx[j] * sd)
        });
        return out;
    }
    let (osh, ost) = (&shape[..dim], &strides[..dim]);
    for_each_row(&mut out, ni * inner, |o, d| {
        let base = unravel(osh, ost, l.offset(), o);
        if inner == 1 {
            for (v, &j) in d.iter_mut().zip(idx) {
                *v = src[base + j * sd];
            }
        } else {
            for (dj, &j) in d.chunks_mut(inner).zip(idx) {
                block.copy(dj, src, base + j * sd);
            }
        }
    });
    out
}

fn gather_typed<T: CpuElement, I: CpuElement>(
    src: &[T],
    l: &Layout,
    dim: usize,
    idx: &[I],
    li: &Layout,
) -> Buffer<T> {
    let (size, sd) = (l.shape()[dim], l.strides()[dim]);
    // The source position without the gathered dim's contribution, walked alongside the index.
    let mut st: Dims = l.strides().into();
    st[dim] = 0;
    let lsrc = Layout::new(li.shape(), &st, l.offset());
    let mut out = Buffer::<T>::uninit(li.numel());
    let w = Walker::new([li, &lsrc]);
    let [si, ss] = w.inner_strides();
    for_each_chunk_mut(&mut out, ELEMENTWISE_GRAIN, |start, chunk| {
        w.runs(start, start + chunk.len(), |pos, [oi, os], len| {
            let d = &mut chunk[pos - start..pos - start + len];
            for (t, v) in d.iter_mut().enumerate() {
                let j = checked("gather", idx[oi + t * si], dim, size);
                *v = src[os + t * ss + j * sd];
            }
        });
    });
    out
}

#[allow(clippy::too_many_arguments)]
fn scatter_typed<T: CpuElement, I: CpuElement, const ADD: bool>(
    dst: &mut [T],
    ld: &Layout,
    dim: usize,
    idx: &[I],
    li: &Layout,
    src: &[T],
    ls: &Layout,
    op: &str,
) {
    let (size, sd) = (ld.shape()[dim], ld.strides()[dim]);
    let mut st: Dims = ld.strides().into();
    st[dim] = 0;
    let ldst = Layout::new(li.shape(), &st, ld.offset());
    let lsrc = Layout::new(li.shape(), ls.strides(), ls.offset());
    // Sequential: later writes must win (scatter) and sums must not depend on thread count.
    let w = Walker::new([li, &ldst, &lsrc]);
    let [si, sdst, ss] = w.inner_strides();
    w.runs(0, w.numel(), |_, [oi, od, os], len| {
        for t in 0..len {
            let j = checked(op, idx[oi + t * si], dim, size);
            let p = od + t * sdst + j * sd;
            let v = src[os + t * ss];
            dst[p] = if ADD { T::add(dst[p], v) } else { v };
        }
    });
}

fn same_dtype<'a, T: CpuElement>(op: &str, want: DType, s: &'a CpuStorage) -> &'a [T] {
    T::unwrap_ref(s).unwrap_or_else(|| {
        panic!(
            "{op}(): Expected self.dtype to be equal to src.dtype, got {want} and {}",
            s.dtype()
        )
    })
}

impl CpuStorage {
    /// `torch.index_select`: the slices of `dim` named by the 1-D integer `index` (i64 or u8),
    /// into a contiguous storage of the input's shape with `dim` resized to the index length.
    pub fn index_select(
        &self,
        l: &Layout,
        dim: usize,
        index: &CpuStorage,
        li: &Layout,
    ) -> CpuStorage {
        let op = "index_select";
        let l = at_least_1d(l);
        check_dim(op, dim, l.shape());
        if li.ndim() > 1 {
            panic!(
                "{op}(): Index is supposed to be a vector, got shape {:?}",
                li.shape()
            );
        }
        let size = l.shape()[dim];
        let idx: Vec<usize> = index_dispatch!(op, index, ix => {
            li.positions().map(|p| checked(op, ix[p], dim, size)).collect()
        });
        cpu_dispatch!(self, s => CpuElement::wrap(index_select_typed(s, &l, dim, &idx)))
    }

    /// `torch.gather`: `out[i][j][k] = self[i][index[i][j][k]][k]` (for `dim == 1`); the output
    /// has the index's shape, which may be smaller than the input in the other dims.
    pub fn gather(&self, l: &Layout, dim: usize, index: &CpuStorage, li: &Layout) -> CpuStorage {
        let op = "gather";
        let (l, li) = (at_least_1d(l), at_least_1d(li));
        check_dim(op, dim, l.shape());
        check_index_shapes(op, dim, &l, &li, None);
        index_dispatch!(op, index, ix => {
            cpu_dispatch!(self, s => CpuElement::wrap(gather_typed(s, &l, dim, ix, &li)))
        })
    }

    /// Out-of-place `self.scatter(dim, index, src)` (or `scatter_add` when `add`): a contiguous
    /// copy of `self` with the first `index.shape` region of `src` (same dtype) written (added) at
    /// the indexed positions. With duplicate indices and `!add`, the last write wins.
    #[allow(clippy::too_many_arguments)]
    pub fn scatter(
        &self,
        l: &Layout,
        dim: usize,
        index: &CpuStorage,
        li: &Layout,
        src: &CpuStorage,
        ls: &Layout,
        add: bool,
    ) -> CpuStorage {
        let mut out = self.contiguous(l);
        let lo = Layout::contiguous(l.shape());
        out.scatter_impl(&lo, dim, index, li, src, ls, add);
        out
    }

    /// In-place `scatter_add_`: adds the first `index.shape` region of `src` into the elements of
    /// `self` (selected by `l`) at the indexed positions.
    pub fn scatter_add_inplace(
        &mut self,
        l: &Layout,
        dim: usize,
        index: &CpuStorage,
        li: &Layout,
        src: &CpuStorage,
        ls: &Layout,
    ) {
        self.scatter_impl(l, dim, index, li, src, ls, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn scatter_impl(
        &mut self,
        l: &Layout,
        dim: usize,
        index: &CpuStorage,
        li: &Layout,
        src: &CpuStorage,
        ls: &Layout,
        add: bool,
    ) {
        let op = if add { "scatter_add" } else { "scatter" };
        let (l, li, ls) = (at_least_1d(l), at_least_1d(li), at_least_1d(ls));
        check_dim(op, dim, l.shape());
        check_index_shapes(op, dim, &l, &li, Some(&ls));
        let dt = self.dtype();
        index_dispatch!(op, index, ix => {
            cpu_dispatch!(self, d => {
                let s = same_dtype(op, dt, src);
                if add {
                    scatter_typed::<_, _, true>(d, &l, dim, ix, &li, s, &ls, op)
                } else {
                    scatter_typed::<_, _, false>(d, &l, dim, ix, &li, s, &ls, op)
                }
            })
        })
    }

    /// `masked_fill`: `value` (converted to the storage dtype) where the bool `mask` (layout
    /// already broadcast to `l`'s shape) is true, the input elsewhere; a new contiguous storage.
    pub fn masked_fill(
        &self,
        l: &Layout,
        mask: &CpuStorage,
        lm: &Layout,
        value: Scalar,
    ) -> CpuStorage {
        let m = match mask {
            CpuStorage::Bool(m) => m,
            other => panic!(
                "masked_fill: only supports boolean masks, but got mask with dtype {}",
                other.dtype()
            ),
        };
        if lm.shape() != l.shape() {
            panic!(
                "masked_fill: the mask's layout {:?} is not broadcast to the input's shape {:?}",
                lm.shape(),
                l.shape()
            );
        }
        cpu_dispatch!(self, x => {
            let v = value.to_elem();
            CpuElement::wrap(zip(x, l, m, lm, move |x, m| if m { v } else { x }))
        })
    }

    /// `torch.cat`: the parts (one dtype, shapes equal except at `dim`) joined along `dim` into a
    /// contiguous storage. 1-D empty parts (shape `[0]`) are skipped, as PyTorch's legacy rule.
    pub fn cat(parts: &[(&CpuStorage, &Layout)], dim: usize) -> CpuStorage {
        let shapes: Vec<&[usize]> = parts.iter().map(|(_, l)| l.shape()).collect();
        let out_shape = crate::shape::cat_shape(&shapes, dim);
        let kept: Vec<(&CpuStorage, &Layout)> = parts
            .iter()
            .filter(|(_, l)| !(l.ndim() == 1 && l.shape()[0] == 0) || out_shape.len() == 1)
            .copied()
            .collect();
        let dt = kept[0].0.dtype();
        if let Some((s, _)) = kept.iter().find(|(s, _)| s.dtype() != dt) {
            panic!(
                "cat: expected all tensors to have the same dtype, got {dt} and {}",
                s.dtype()
            );
        }
        fn go<T: CpuElement>(
            kept: &[(&CpuStorage, &Layout)],
            dim: usize,
            out_shape: &[usize],
        ) -> CpuStorage {
            let parts: Vec<(&[T], &Layout)> =
                kept.iter().map(|(s, l)| (s.as_slice::<T>(), *l)).collect();
            T::wrap(cat_typed(&parts, dim, out_shape))
        }
        match dt {
            DType::Bool => go::<bool>(&kept, dim, &out_shape),
            DType::U8 => go::<u8>(&kept, dim, &out_shape),
            DType::I64 => go::<i64>(&kept, dim, &out_shape),
            DType::F32 => go::<f32>(&kept, dim, &out_shape),
            DType::F64 => go::<f64>(&kept, dim, &out_shape),
        }
    }

    /// `nn.functional.one_hot`: an int64 storage of shape `l.shape + [num_classes]` with a 1 at
    /// each index (which must be int64, in `0..num_classes`).
    pub fn one_hot(&self, l: &Layout, num_classes: usize) -> CpuStorage {
        let idx = match self {
            CpuStorage::I64(v) => v,
            _ => panic!("one_hot is only applicable to index tensor of type LongTensor."),
        };
        let n = l.numel();
        let mut out = Buffer::<i64>::filled(n * num_classes, 0);
        let w = Walker::new([l]);
        let [st] = w.inner_strides();
        w.runs(0, n, |pos, [o], len| {
            for t in 0..len {
                let v = idx[o + t * st];
                if v < 0 {
                    panic!("one_hot: Class values must be non-negative.");
                }
                if v as u64 >= num_classes as u64 {
                    panic!("one_hot: Class values must be smaller than num_classes.");
                }
                out[(pos + t) * num_classes + v as usize] = 1;
            }
        });
        CpuStorage::I64(out)
    }
}

fn cat_typed<T: CpuElement>(
    parts: &[(&[T], &Layout)],
    dim: usize,
    out_shape: &[usize],
) -> Buffer<T> {
    let mut out = Buffer::<T>::uninit(numel(out_shape));
    if out.is_empty() {
        return out;
    }
    let outer = numel(&out_shape[..dim]);
    let inner = numel(&out_shape[dim + 1..]);
    if outer == 1 {
        // Each part fills one contiguous stretch of the output.
        let mut rest: &mut [T] = &mut out;
        for &(s, l) in parts {
            let (head, tail) = rest.split_at_mut(l.numel());
            copy_into(head, s, l);
            rest = tail;
        }
        return out;
    }
    // Per part: its block length in an output row, and a plan to copy that block.
    let plans: Vec<(usize, Block)> = parts
        .iter()
        .map(|(_, l)| {
            let (sh, st) = (l.shape(), l.strides());
            (sh[dim] * inner, Block::new(&sh[dim..], &st[dim..]))
        })
        .collect();
    let row = out_shape[dim] * inner;
    for_each_row(&mut out, row, |o, d| {
        let mut col = 0;
        for (&(s, l), (len, block)) in parts.iter().zip(&plans) {
            if *len == 0 {
                continue;
            }
            let base = unravel(&l.shape()[..dim], &l.strides()[..dim], l.offset(), o);
            block.copy(&mut d[col..col + len], s, base);
            col += len;
        }
    });
    out
}
