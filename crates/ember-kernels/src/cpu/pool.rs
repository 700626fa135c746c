//! CPU pooling: max and average over sliding or adaptive windows (`conv::PoolWindows`) of 4-D
//! `(N, C, H, W)` inputs of any strides, and their backward passes. Each (sample, channel) plane
//! is independent, so planes are split across rayon above `POOL_GRAIN` input elements; every
//! output element is computed the same way on any number of threads.
//!
//! Max pooling records, per output, the flat index `h·W + w` within its plane of the first maximal
//! element (a NaN counts as maximal, as in PyTorch); its backward adds each output's gradient at
//! that index, which is also the backward of adaptive max pooling. A window that reads no input
//! (dilated taps all in the padding) gives -inf and PyTorch's index, which may lie past the plane.

use super::buffer::Buffer;
use super::num::Float;
use super::par::POOL_GRAIN;
use super::simd::multiversion;
use super::{CpuElement, CpuStorage};
use crate::conv::{AvgDivisor, PoolWindows, Taps};
use crate::layout::Layout;
use rayon::prelude::*;

/// The strides of a 4-D layout, 0 for size-1 dims.
fn strides4(l: &Layout) -> [usize; 4] {
    assert!(
        l.ndim() == 4,
        "pooling: expected a 4-D (N, C, H, W) layout, got shape {:?}",
        l.shape()
    );
    [0, 1, 2, 3].map(|d| if l.shape()[d] <= 1 { 0 } else { l.strides()[d] })
}

/// Storage position of plane `p` (= n·C + c) of a 4-D layout with `c` channels.
fn plane_base(l: &Layout, s: &[usize; 4], p: usize, c: usize) -> usize {
    l.offset() + (p / c) * s[0] + (p % c) * s[1]
}

/// Runs `f(plane, out_plane)` over `out` split into planes of `plane_len`, across rayon when the
/// op reads at least `POOL_GRAIN` elements.
fn for_planes<T: Send>(
    out: &mut [T],
    plane_len: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if plane_len == 0 {
        return;
    }
    if work >= POOL_GRAIN && out.len() > plane_len {
        out.par_chunks_mut(plane_len)
            .enumerate()
            .for_each(|(p, o)| f(p, o));
    } else {
        out.chunks_mut(plane_len)
            .enumerate()
            .for_each(|(p, o)| f(p, o));
    }
}

/// The windows of every output position along both dims.
fn all_taps(w: &PoolWindows, out: [usize; 2], input: [usize; 2]) -> [Vec<Taps>; 2] {
    [0, 1].map(|d| {
        (0..out[d])
            .map(|o| w.taps(d, o, out[d], input[d]))
            .collect()
    })
}

fn max_pool<T: Float + CpuElement + Send + Sync>(
    x: &[T],
    lx: &Layout,
    w: &PoolWindows,
    out: [usize; 2],
) -> (Buffer<T>, Buffer<i64>) {
    let sh = lx.shape();
    let (c, hw_in, ohw) = (sh[1], [sh[2], sh[3]], out[0] * out[1]);
    let planes = sh[0] * c;
    let s = strides4(lx);
    let taps = all_taps(w, out, hw_in);
    let interior = Interior::of(w, &taps[1], s[3]);
    let tiles = tiling(w, out, hw_in, s[3]);
    let mut vals = Buffer::<T>::uninit(planes * ohw);
    let mut idx = Buffer::<i64>::uninit(planes * ohw);
    let one = |p: usize, v: &mut [T], ix: &mut [i64]| {
        let base = plane_base(lx, &s, p, c);
        if let Some(k) = tiles {
            let plane = TiledPlane {
                x,
                base,
                sh: s[2],
                w: hw_in[1],
                out,
            };
            return plane.max(k, v, ix);
        }
        for (oh, th) in taps[0].iter().enumerate() {
            let (v, ix) = (
                &mut v[oh * out[1]..(oh + 1) * out[1]],
                &mut ix[oh * out[1]..(oh + 1) * out[1]],
            );
            v.fill(T::of(f64::NEG_INFINITY));
            for (ow, tw) in taps[1].iter().enumerate() {
                ix[ow] = (th.start * hw_in[1] + tw.start) as i64;
            }
            // Row by row of the windows, so each input row is read once per output row and the
            // running maxima stay in the output slices.
            let mut ih = th.start;
            while ih < th.end {
                let row = base + ih * s[2];
                let flat = (ih * hw_in[1]) as i64;
                let done = interior.map_or(0..0, |int| int.run(x, row, flat, v, ix));
                for (ow, tw) in taps[1].iter().enumerate() {
                    if done.contains(&ow) {
                        continue;
                    }
                    let (mut best, mut at) = (v[ow], ix[ow]);
                    if s[3] == 1 && tw.step == 1 {
                        // Contiguous taps: one bounds check for the window.
                        let taps_row = &x[row + tw.start..row + tw.end.max(tw.start)];
                        for (k, &val) in taps_row.iter().enumerate() {
                            (best, at) = pick(val, best, flat + (tw.start + k) as i64, at);
                        }
                    } else {
                        let mut iw = tw.start;
                        while iw < tw.end {
                            (best, at) = pick(x[row + iw * s[3]], best, flat + iw as i64, at);
                            iw += tw.step;
                        }
                    }
                    (v[ow], ix[ow]) = (best, at);
                }
                ih += th.step;
            }
        }
    };
    if ohw > 0 {
        let work = planes * hw_in[0] * hw_in[1];
        if work >= POOL_GRAIN && planes > 1 {
            vals.par_chunks_mut(ohw)
                .zip(idx.par_chunks_mut(ohw))
                .enumerate()
                .for_each(|(p, (v, ix))| one(p, v, ix));
        } else {
            for (p, (v, ix)) in vals.chunks_mut(ohw).zip(idx.chunks_mut(ohw)).enumerate() {
                one(p, v, ix);
            }
        }
    }
    (vals, idx)
}

/// The window size of pooling windows that tile the input: kernel equal to stride, no padding
/// or dilation, every window inside the input (so no `ceil_mode` partial window), over rows of
/// unit stride `sw`. `MaxPool2d(2)`, the pooling of every small CNN, is one.
fn tiling(w: &PoolWindows, out: [usize; 2], input: [usize; 2], sw: usize) -> Option<[usize; 2]> {
    let PoolWindows::Sliding(p) = w else {
        return None;
    };
    let tiles = (0..2).all(|d| {
        p.stride[d] == p.kernel[d]
            && p.padding[d] == 0
            && p.dilation[d] == 1
            && out[d] * p.kernel[d] <= input[d]
    });
    (tiles && (sw == 1 || out[1] * p.kernel[1] <= 1)).then_some(p.kernel)
}

/// One input plane of a max pooling whose windows tile it ([`tiling`]): the plane starts at
/// `base` in `x`, with rows `sh` apart (unit stride along them) and `w` wide; `out` is the
/// output's size.
struct TiledPlane<'a, T> {
    x: &'a [T],
    base: usize,
    sh: usize,
    w: usize,
    out: [usize; 2],
}

impl<T: Float> TiledPlane<'_, T> {
    /// The maxima `v` and their flat indices `ix` of `k`-sized windows: 2×2 and 3×3 with a
    /// compile-time size, others with the size known at run time.
    fn max(&self, k: [usize; 2], v: &mut [T], ix: &mut [i64]) {
        match k {
            [2, 2] => self.max_square::<2>(v, ix),
            [3, 3] => self.max_square::<3>(v, ix),
            _ => {
                for oh in 0..self.out[0] {
                    for ow in 0..self.out[1] {
                        let first = (oh * k[0] * self.w + ow * k[1]) as i64;
                        let (mut best, mut at) = (T::of(f64::NEG_INFINITY), first);
                        for i in 0..k[0] {
                            let ih = oh * k[0] + i;
                            let row = &self.x[self.base + ih * self.sh + ow * k[1]..][..k[1]];
                            for (j, &val) in row.iter().enumerate() {
                                let flat = (ih * self.w + ow * k[1] + j) as i64;
                                (best, at) = pick(val, best, flat, at);
                            }
                        }
                        (v[oh * self.out[1] + ow], ix[oh * self.out[1] + ow]) = (best, at);
                    }
                }
            }
        }
    }

    /// [`TiledPlane::max`] for `K`×`K` windows: each output row reads its `K` input rows once,
    /// window by window in row-major order, so the running maximum and its index stay in
    /// registers and the first maximum (or the last NaN, PyTorch's rule) wins as in the general
    /// path.
    fn max_square<const K: usize>(&self, v: &mut [T], ix: &mut [i64]) {
        let ow = self.out[1];
        for oh in 0..self.out[0] {
            let rows: [&[T]; K] =
                std::array::from_fn(|i| &self.x[self.base + (oh * K + i) * self.sh..][..ow * K]);
            let flat0 = (oh * K * self.w) as i64;
            let (v, ix) = (
                &mut v[oh * ow..(oh + 1) * ow],
                &mut ix[oh * ow..(oh + 1) * ow],
            );
            for (o, (b, a)) in v.iter_mut().zip(ix.iter_mut()).enumerate() {
                let (mut best, mut at) = (T::of(f64::NEG_INFINITY), flat0 + (o * K) as i64);
                for (i, row) in rows.iter().enumerate() {
                    let taps: &[T; K] = row[o * K..o * K + K].try_into().unwrap();
                    for (j, &val) in taps.iter().enumerate() {
                        (best, at) = pick(val, best, flat0 + (i * self.w + o * K + j) as i64, at);
                    }
                }
                (*b, *a) = (best, at);
            }
        }
    }
}

/// The outputs along W whose windows lie wholly inside a contiguous input row (no padding, no
/// clipping): there window `ow` reads `ow·stride + k·dilation - padding` for every tap `k`, so
/// the taps can be taken one `k` at a time across all those outputs — independent lanes the
/// compiler vectorises — instead of one window at a time.
#[derive(Clone, Copy)]
struct Interior {
    outputs: (usize, usize),
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: usize,
}

impl Interior {
    fn of(w: &PoolWindows, taps_w: &[Taps], stride_w: usize) -> Option<Interior> {
        let PoolWindows::Sliding(p) = w else {
            return None;
        };
        let (kernel, stride, dilation, padding) =
            (p.kernel[1], p.stride[1], p.dilation[1], p.padding[1]);
        if stride_w != 1 && taps_w.len() > 1 {
            return None;
        }
        let whole = |ow: usize, t: &Taps| t.count() == kernel && t.start + padding == ow * stride;
        let lo = taps_w.iter().enumerate().position(|(o, t)| whole(o, t))?;
        let n = taps_w[lo..]
            .iter()
            .enumerate()
            .take_while(|(j, t)| whole(lo + j, t))
            .count();
        (n >= 4).then_some(Interior {
            outputs: (lo, lo + n),
            kernel,
            stride,
            dilation,
            padding,
        })
    }

    /// Folds this row's taps of the interior outputs into their running maxima `v`/`ix`; returns
    /// the outputs it covered. `row` is the row's first element in `x`, `flat` its `h·W`.
    fn run<T: Float>(
        &self,
        x: &[T],
        row: usize,
        flat: i64,
        v: &mut [T],
        ix: &mut [i64],
    ) -> std::ops::Range<usize> {
        interior_row(self, x, row, flat, v, ix);
        self.outputs.0..self.outputs.1
    }
}

multiversion!(fn interior_row<T: Float>(int: &Interior, x: &[T], row: usize, flat: i64, v: &mut [T], ix: &mut [i64]) => interior_row_impl);

#[inline(always)]
fn interior_row_impl<T: Float, const AVX2: bool>(
    int: &Interior,
    x: &[T],
    row: usize,
    flat: i64,
    v: &mut [T],
    ix: &mut [i64],
) {
    let (lo, hi) = int.outputs;
    let n = hi - lo;
    let (v, ix) = (&mut v[lo..hi], &mut ix[lo..hi]);
    for k in 0..int.kernel {
        // The first tap read, relative to the row; `Interior::of` made it non-negative.
        let first = row + lo * int.stride + k * int.dilation - int.padding;
        let at0 = flat + (first - row) as i64;
        // Whole chunks of `stride` elements (the last may reach past the row, never past `x`)
        // with a compile-time stride, so the loads vectorise.
        let whole = first + n * int.stride <= x.len();
        match int.stride {
            1 => fold::<T, 1>(&x[first..first + n], at0, v, ix),
            2 if whole => fold::<T, 2>(&x[first..first + 2 * n], at0, v, ix),
            3 if whole => fold::<T, 3>(&x[first..first + 3 * n], at0, v, ix),
            s => {
                for (j, (b, a)) in v.iter_mut().zip(ix.iter_mut()).enumerate() {
                    (*b, *a) = pick(x[first + j * s], *b, at0 + (j * s) as i64, *a);
                }
            }
        }
    }
}

/// One tap of every interior window: window `j` reads `taps[j·S]`.
#[inline(always)]
fn fold<T: Float, const S: usize>(taps: &[T], at0: i64, v: &mut [T], ix: &mut [i64]) {
    for (j, ((b, a), c)) in v
        .iter_mut()
        .zip(ix.iter_mut())
        .zip(taps.chunks_exact(S))
        .enumerate()
    {
        (*b, *a) = pick(c[0], *b, at0 + (j * S) as i64, *a);
    }
}

/// The running maximum after reading `val` at `idx`: PyTorch's rule (`val > best` or `val` is
/// NaN) written with bit masks rather than a branch, so the interior loops vectorise (with a
/// branch per element they stayed scalar, ~12 cycles an element).
#[inline(always)]
fn pick<T: Float>(val: T, best: T, idx: i64, at: i64) -> (T, i64) {
    let take = (val > best) | T::is_nan(val);
    let m = -(take as i64);
    (T::select(take, val, best), (idx & m) | (at & !m))
}

fn max_pool_backward<T: Float + CpuElement + Send + Sync>(
    gy: &[T],
    lg: &Layout,
    idx: &[i64],
    li: &Layout,
    input: [usize; 2],
) -> Buffer<T> {
    let sh = lg.shape();
    let (c, ow) = (sh[1], sh[3]);
    let hw = input[0] * input[1];
    let (sg, si) = (strides4(lg), strides4(li));
    // Each plane is zeroed by the thread that scatters into it, while it is in that core's cache.
    let mut gx = Buffer::<T>::uninit(sh[0] * c * hw);
    for_planes(&mut gx, hw, sh[0] * c * sh[2] * ow, |p, plane| {
        plane.fill(T::ZERO);
        let (gb, ib) = (plane_base(lg, &sg, p, c), plane_base(li, &si, p, c));
        for oh in 0..sh[2] {
            for o in 0..ow {
                let i = idx[ib + oh * si[2] + o * si[3]];
                // A window that read no input element (all its taps in the padding or past the
                // end, possible with dilation) holds -inf at PyTorch's index of a position past
                // the plane: its gradient reaches nothing.
                if let Some(v) = usize::try_from(i).ok().and_then(|i| plane.get_mut(i)) {
                    *v = *v + gy[gb + oh * sg[2] + o * sg[3]];
                }
            }
        }
    });
    gx
}

fn avg_pool<T: Float + CpuElement + Send + Sync>(
    x: &[T],
    lx: &Layout,
    w: &PoolWindows,
    div: AvgDivisor,
    out: [usize; 2],
) -> Buffer<T> {
    let sh = lx.shape();
    let (c, hw_in, ohw) = (sh[1], [sh[2], sh[3]], out[0] * out[1]);
    let planes = sh[0] * c;
    let s = strides4(lx);
    let taps = all_taps(w, out, hw_in);
    let mut y = Buffer::<T>::uninit(planes * ohw);
    for_planes(&mut y, ohw, planes * hw_in[0] * hw_in[1], |p, v| {
        let base = plane_base(lx, &s, p, c);
        for (oh, th) in taps[0].iter().enumerate() {
            for (ow, tw) in taps[1].iter().enumerate() {
                let n = th.count() * tw.count();
                v[oh * out[1] + ow] = if n == 0 {
                    T::ZERO
                } else {
                    let mut sum = T::ZERO;
                    for ih in th.start..th.end {
                        let row = base + ih * s[2];
                        for iw in tw.start..tw.end {
                            sum = sum + x[row + iw * s[3]];
                        }
                    }
                    sum / T::of(div.of(w, th, tw) as f64)
                };
            }
        }
    });
    y
}

fn avg_pool_backward<T: Float + CpuElement + Send + Sync>(
    gy: &[T],
    lg: &Layout,
    w: &PoolWindows,
    div: AvgDivisor,
    input: [usize; 2],
) -> Buffer<T> {
    let sh = lg.shape();
    let (c, out) = (sh[1], [sh[2], sh[3]]);
    let hw = input[0] * input[1];
    let s = strides4(lg);
    let taps = all_taps(w, out, input);
    let mut gx = Buffer::<T>::uninit(sh[0] * c * hw);
    for_planes(&mut gx, hw, sh[0] * c * hw, |p, plane| {
        plane.fill(T::ZERO);
        let base = plane_base(lg, &s, p, c);
        for (oh, th) in taps[0].iter().enumerate() {
            for (ow, tw) in taps[1].iter().enumerate() {
                if th.count() * tw.count() == 0 {
                    continue;
                }
                let g = gy[base + oh * s[2] + ow * s[3]] / T::of(div.of(w, th, tw) as f64);
                for ih in th.start..th.end {
                    for v in &mut plane[ih * input[1] + tw.start..ih * input[1] + tw.end] {
                        *v = *v + g;
                    }
                }
            }
        }
    });
    gx
}

fn float_only(op: &str, s: &CpuStorage) -> ! {
    panic!("{op}: expected a floating-point input, got {}", s.dtype())
}

impl CpuStorage {
    /// Max pooling of the `(N, C, H, W)` input (any strides) over `windows`, `out` the output's
    /// spatial size: the contiguous `(N, C, out[0], out[1])` maxima and the int64 flat index
    /// (`h·W + w` within the plane) of each maximum.
    pub fn max_pool2d(
        &self,
        lx: &Layout,
        windows: &PoolWindows,
        out: [usize; 2],
    ) -> (CpuStorage, CpuStorage) {
        match self {
            CpuStorage::F32(x) => {
                let (v, i) = max_pool(x, lx, windows, out);
                (f32::wrap(v), i64::wrap(i))
            }
            CpuStorage::F64(x) => {
                let (v, i) = max_pool(x, lx, windows, out);
                (f64::wrap(v), i64::wrap(i))
            }
            other => float_only("max_pool2d", other),
        }
    }

    /// The input gradient of a max pooling: each output gradient of `self` `(N, C, H_out, W_out)`
    /// added at its recorded `indices` (same shape, int64) in a zero `(N, C, input[0],
    /// input[1])` gradient.
    pub fn max_pool2d_backward(
        &self,
        lg: &Layout,
        indices: &CpuStorage,
        li: &Layout,
        input: [usize; 2],
    ) -> CpuStorage {
        assert_eq!(
            lg.shape(),
            li.shape(),
            "max_pool2d_backward: gradient and indices shapes differ"
        );
        let idx = indices.as_slice::<i64>();
        match self {
            CpuStorage::F32(g) => f32::wrap(max_pool_backward(g, lg, idx, li, input)),
            CpuStorage::F64(g) => f64::wrap(max_pool_backward(g, lg, idx, li, input)),
            other => float_only("max_pool2d", other),
        }
    }

    /// Average pooling of the `(N, C, H, W)` input (any strides) over `windows`, each sum divided
    /// as `divisor` says (adaptive windows: by their size): contiguous `(N, C, out[0], out[1])`.
    pub fn avg_pool2d(
        &self,
        lx: &Layout,
        windows: &PoolWindows,
        divisor: AvgDivisor,
        out: [usize; 2],
    ) -> CpuStorage {
        match self {
            CpuStorage::F32(x) => f32::wrap(avg_pool(x, lx, windows, divisor, out)),
            CpuStorage::F64(x) => f64::wrap(avg_pool(x, lx, windows, divisor, out)),
            other => float_only("avg_pool2d", other),
        }
    }

    /// The input gradient of an average pooling: each output gradient of `self`, divided as in
    /// the forward, spread over its window in a zero `(N, C, input[0], input[1])` gradient.
    pub fn avg_pool2d_backward(
        &self,
        lg: &Layout,
        windows: &PoolWindows,
        divisor: AvgDivisor,
        input: [usize; 2],
    ) -> CpuStorage {
        match self {
            CpuStorage::F32(g) => f32::wrap(avg_pool_backward(g, lg, windows, divisor, input)),
            CpuStorage::F64(g) => f64::wrap(avg_pool_backward(g, lg, windows, divisor, input)),
            other => float_only("avg_pool2d", other),
        }
    }
}
