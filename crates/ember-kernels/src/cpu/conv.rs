//! CPU convolutions: the forward, the input gradient (which is also the transposed convolution)
//! and the weight gradient of a 2-D convolution with strides, asymmetric padding, dilation and
//! groups. Each works one (sample, group) at a time: the sample's patch matrix ("im2col", one row
//! per kernel tap and input channel, one column per output position) is built into a buffer that
//! is reused across samples and stays in cache, and multiplied by the weight with the GEMM of
//! `matmul.rs`, whose strided operands let the weight, its transpose and the output gradient be
//! read in place. Samples run in parallel above `CONV_GRAIN`; the weight gradient sums its
//! per-sample products over fixed chunks of the batch and then adds the chunks in order, so the
//! result does not depend on the number of threads.
//!
//! A pointwise convolution (1×1 kernel, stride 1, no padding) skips the patch matrix: the input
//! itself, viewed as (channels, positions), is the GEMM operand.

use super::buffer::Buffer;
use super::matmul::{Gemm, MatRef};
use super::num::{Float, Num};
use super::par::CONV_GRAIN;
use super::{CpuElement, CpuStorage};
use crate::conv::{ConvGeom as Geom, ConvParams};
use crate::layout::Layout;
use rayon::prelude::*;

/// The element types convolutions run in (f32, f64).
pub trait ConvElement: Float + Gemm + CpuElement + Send + Sync {}
impl ConvElement for f32 {}
impl ConvElement for f64 {}

impl Geom {
    /// Multiply-adds of the whole convolution (one of its three GEMM passes).
    fn work(&self) -> usize {
        self.n * self.cout * self.ohw() * self.k()
    }
}

/// Output positions `o` in `0..out` whose input index `o·stride + d` falls inside `0..len`.
fn valid_range(d: isize, stride: usize, len: usize, out: usize) -> (usize, usize) {
    let lo = if d >= 0 {
        0
    } else {
        (d.unsigned_abs()).div_ceil(stride)
    };
    let room = len as isize - d;
    let hi = if room <= 0 {
        0
    } else {
        (room as usize).div_ceil(stride)
    };
    let lo = lo.min(out);
    (lo, hi.min(out).max(lo))
}

/// Where one sample's channel group starts in a strided 4-D tensor, and its channel, row and
/// column strides.
#[derive(Clone, Copy)]
struct Plane {
    base: usize,
    sc: usize,
    sh: usize,
    sw: usize,
}

/// A run of one patch-matrix row: `len` entries from `at`, either outside the input (zero) or
/// reading the input from position `src` every `step` elements.
#[derive(Clone, Copy)]
enum Segment {
    Padding {
        at: usize,
        len: usize,
    },
    Input {
        at: usize,
        len: usize,
        src: usize,
        step: usize,
    },
    /// Consecutive output rows read from consecutive input rows (see [`RowRun`]).
    Rows(RowRun),
}

/// `rows` consecutive output rows (row length `ow`, entries `ow0..ow1` of each inside the input)
/// of one patch-matrix row at `at`, whose input rows follow one another in memory `ow` apart:
/// the span from `at + ow0` to `at + (rows - 1)·ow + ow1` maps one to one onto the input from
/// `src`, except the gaps between rows, which are padding. One copy (or add) replaces a run per
/// row, which is what a stride-1 "same" convolution over a contiguous input always has.
#[derive(Clone, Copy)]
struct RowRun {
    at: usize,
    src: usize,
    rows: usize,
    ow0: usize,
    ow1: usize,
    ow: usize,
}

impl RowRun {
    /// Where the span starts in the patch matrix, and its length.
    fn span(&self) -> (usize, usize) {
        (
            self.at + self.ow0,
            (self.rows - 1) * self.ow + self.ow1 - self.ow0,
        )
    }

    /// The padding entries between the rows, as `(start, len)`.
    fn gaps(self) -> impl Iterator<Item = (usize, usize)> {
        let len = self.ow - (self.ow1 - self.ow0);
        (0..self.rows.saturating_sub(1))
            .map(move |r| (self.at + r * self.ow + self.ow1, len))
            .filter(|&(_, len)| len > 0)
    }
}

/// Walks one channel group's patch matrix (`k × ohw`, row `(c·kh + i)·kw + j` for kernel tap
/// (i, j) of channel c) as runs along output rows, reporting each run to `f`: im2col copies along
/// these runs, col2im adds back along them.
fn for_each_segment(g: &Geom, x: Plane, mut f: impl FnMut(Segment)) {
    let (ohw, ow) = (g.ohw(), g.ow);
    let [sh, sw] = g.p.stride;
    let pad = |f: &mut dyn FnMut(Segment), at: usize, s: usize, e: usize| {
        if e > s {
            f(Segment::Padding {
                at: at + s,
                len: e - s,
            })
        }
    };
    for c in 0..g.cg {
        for i in 0..g.kh {
            let dh = (i * g.p.dilation[0]) as isize - g.p.padding[0][0] as isize;
            let (oh0, oh1) = valid_range(dh, sh, g.h, g.oh);
            for j in 0..g.kw {
                let dw = (j * g.p.dilation[1]) as isize - g.p.padding[1][0] as isize;
                let (ow0, ow1) = valid_range(dw, sw, g.w, ow);
                let row = ((c * g.kh + i) * g.kw + j) * ohw;
                let contiguous = sw == 1 && x.sw == 1 && sh * x.sh == ow;
                if contiguous && oh0 < oh1 && ow0 < ow1 {
                    let ih = ((oh0 * sh) as isize + dh) as usize;
                    let iw = (ow0 as isize + dw) as usize;
                    pad(&mut f, row, 0, oh0 * ow + ow0);
                    pad(&mut f, row, (oh1 - 1) * ow + ow1, ohw);
                    f(Segment::Rows(RowRun {
                        at: row + oh0 * ow,
                        src: x.base + c * x.sc + ih * x.sh + iw,
                        rows: oh1 - oh0,
                        ow0,
                        ow1,
                        ow,
                    }));
                    continue;
                }
                pad(&mut f, row, 0, oh0 * ow);
                pad(&mut f, row, oh1 * ow, ohw);
                for oh in oh0..oh1 {
                    let start = row + oh * ow;
                    pad(&mut f, start, 0, ow0);
                    pad(&mut f, start, ow1, ow);
                    if ow0 < ow1 {
                        let ih = ((oh * sh) as isize + dh) as usize;
                        let iw = ((ow0 * sw) as isize + dw) as usize;
                        f(Segment::Input {
                            at: start + ow0,
                            len: ow1 - ow0,
                            src: x.base + c * x.sc + ih * x.sh + iw * x.sw,
                            step: sw * x.sw,
                        });
                    }
                }
            }
        }
    }
}

/// Zeroes `s`, writing the one or two entries of a typical gap between rows directly: a
/// `memset` call per gap (thousands per sample) cost more than the copies around them.
fn zero_short<T: Num>(s: &mut [T]) {
    match s {
        [a] => *a = T::ZERO,
        [a, b] => (*a, *b) = (T::ZERO, T::ZERO),
        _ => s.fill(T::ZERO),
    }
}

/// Builds one sample's patch matrix for a channel group into `col` (`k × ohw`, row-major).
fn im2col<T: Num>(x: &[T], plane: Plane, g: &Geom, col: &mut [T]) {
    for_each_segment(g, plane, |s| match s {
        Segment::Padding { at, len } => col[at..at + len].fill(T::ZERO),
        Segment::Input { at, len, src, step } => {
            let dst = &mut col[at..at + len];
            if step == 1 {
                dst.copy_from_slice(&x[src..src + len]);
            } else {
                for (k, d) in dst.iter_mut().enumerate() {
                    *d = x[src + k * step];
                }
            }
        }
        Segment::Rows(run) => {
            let (at, len) = run.span();
            col[at..at + len].copy_from_slice(&x[run.src..run.src + len]);
            for (gap, n) in run.gaps() {
                zero_short(&mut col[gap..gap + n]);
            }
        }
    });
}

/// Adds one sample's patch-matrix gradient `col` back onto the input positions it was read from:
/// `gx` is the group's contiguous `(cg, h, w)` gradient.
/// The padding entries of `col` are overwritten (with zero): they are scratch.
fn col2im<T: Float>(col: &mut [T], g: &Geom, gx: &mut [T]) {
    let plane = Plane {
        base: 0,
        sc: g.hw(),
        sh: g.w,
        sw: 1,
    };
    let add = |gx: &mut [T], src: &[T]| {
        for (d, &v) in gx.iter_mut().zip(src) {
            *d = *d + v;
        }
    };
    for_each_segment(g, plane, |s| match s {
        Segment::Padding { .. } => {}
        Segment::Input {
            at,
            len,
            src: dst,
            step,
        } => {
            let src = &col[at..at + len];
            if step == 1 {
                add(&mut gx[dst..dst + len], src);
            } else {
                for (k, &v) in src.iter().enumerate() {
                    gx[dst + k * step] = gx[dst + k * step] + v;
                }
            }
        }
        Segment::Rows(run) => {
            // The gaps' gradients belong to padding: zeroed, the whole span adds at once.
            for (gap, n) in run.gaps() {
                zero_short(&mut col[gap..gap + n]);
            }
            let (at, len) = run.span();
            add(&mut gx[run.src..run.src + len], &col[at..at + len]);
        }
    });
}

/// A GEMM operand held either in the caller's storage or in a contiguous copy.
enum Operand<'a, T: CpuElement> {
    Borrowed(&'a [T], Layout),
    Owned(Buffer<T>, Layout),
}

impl<'a, T: CpuElement> Operand<'a, T> {
    /// `data` viewed through `l` as `shape` without copying when the strides allow it (the merged
    /// dims must be contiguous among themselves), else a contiguous copy.
    fn new(data: &'a [T], l: &Layout, shape: &[usize]) -> Self {
        assert!(
            l.storage_extent() <= data.len(),
            "conv: layout {l:?} reaches past its storage of {} elements",
            data.len()
        );
        match l.view(shape) {
            Some(v) => Operand::Borrowed(data, v),
            None => Operand::Owned(super::map::map(data, l, |v| v), Layout::contiguous(shape)),
        }
    }

    fn get(&self) -> (&[T], &Layout) {
        match self {
            Operand::Borrowed(d, l) => (d, l),
            Operand::Owned(b, l) => (b, l),
        }
    }
}

/// Stride of dim `d`, 0 for a size-1 dim (whose stride may be anything) so that pointer
/// arithmetic never leaves the storage.
fn st(l: &Layout, d: usize) -> usize {
    if l.shape()[d] <= 1 {
        0
    } else {
        l.strides()[d]
    }
}

/// A 4-D layout's `(n, c)` plane strides.
fn plane(l: &Layout, ni: usize, c0: usize) -> Plane {
    Plane {
        base: l.offset() + ni * st(l, 0) + c0 * st(l, 1),
        sc: st(l, 1),
        sh: st(l, 2),
        sw: st(l, 3),
    }
}

/// Runs `task(t, out_chunk, scratch)` over `out` split into chunks of `chunk` elements, in
/// parallel (each worker with its own scratch of `scratch_len`) when `parallel`.
fn run_tasks<T: ConvElement>(
    out: &mut [T],
    chunk: usize,
    scratch_len: usize,
    parallel: bool,
    task: impl Fn(usize, &mut [T], &mut [T], bool) + Sync + Send,
) {
    if chunk == 0 {
        return;
    }
    if parallel {
        out.par_chunks_mut(chunk).enumerate().for_each_init(
            || Buffer::<T>::uninit(scratch_len),
            |scratch, (t, o)| task(t, o, scratch, false),
        );
    } else {
        let mut scratch = Buffer::<T>::uninit(scratch_len);
        for (t, o) in out.chunks_mut(chunk).enumerate() {
            task(t, o, &mut scratch, true);
        }
    }
}

/// `c = alpha·a@b (+c)` through the splitting GEMM when `split`, else on this thread.
fn gemm<T: ConvElement>(
    split: bool,
    mkn: (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    acc: bool,
    c: &mut [T],
) {
    if mkn.1 == 0 {
        if !acc {
            c.fill(T::ZERO);
        }
    } else if split {
        T::gemm(mkn, T::ONE, a, b, acc, c)
    } else {
        T::gemm_serial(mkn, T::ONE, a, b, acc, c)
    }
}

fn forward<T: ConvElement>(
    x: &[T],
    lx: &Layout,
    w: &[T],
    lw: &Layout,
    bias: Option<(&[T], &Layout)>,
    g: &Geom,
) -> Buffer<T> {
    let (k, ohw) = (g.k(), g.ohw());
    let mut out = Buffer::<T>::uninit(g.n * g.cout * ohw);
    let wm = Operand::new(w, lw, &[g.cout, k]);
    let (wd, wl) = wm.get();
    assert!(
        lx.storage_extent() <= x.len(),
        "conv2d: input layout reaches past its storage"
    );
    // The pointwise path reads the input as a (channels, positions) matrix when its rows merge.
    let direct = g
        .pointwise()
        .then(|| lx.view(&[g.n, g.cin, g.hw()]))
        .flatten();
    let tasks = g.n * g.groups();
    let parallel = tasks > 1 && g.work() >= CONV_GRAIN;
    let scratch = if direct.is_some() { 0 } else { k * ohw };
    run_tasks(
        &mut out,
        g.og * ohw,
        scratch,
        parallel,
        |t, y, col, split| {
            let (ni, gi) = (t / g.groups(), t % g.groups());
            let acc = match bias {
                Some((b, lb)) => {
                    for (r, row) in y.chunks_mut(ohw).enumerate() {
                        row.fill(b[lb.offset() + (gi * g.og + r) * st(lb, 0)]);
                    }
                    true
                }
                None => false,
            };
            let a = MatRef::new(
                wd,
                wl.offset() + gi * g.og * st(wl, 0),
                st(wl, 0),
                st(wl, 1),
            );
            let b = match &direct {
                Some(v) => MatRef::new(
                    x,
                    v.offset() + ni * st(v, 0) + gi * g.cg * st(v, 1),
                    st(v, 1),
                    st(v, 2),
                ),
                None => {
                    im2col(x, plane(lx, ni, gi * g.cg), g, col);
                    MatRef::new(col, 0, ohw, 1)
                }
            };
            gemm(split, (g.og, k, ohw), a, b, acc, y);
        },
    );
    out
}

fn backward_input<T: ConvElement>(
    gy: &[T],
    lg: &Layout,
    w: &[T],
    lw: &Layout,
    g: &Geom,
) -> Buffer<T> {
    let (k, ohw, hw) = (g.k(), g.ohw(), g.hw());
    let mut out = Buffer::<T>::uninit(g.n * g.cin * hw);
    let wm = Operand::new(w, lw, &[g.cout, k]);
    let (wd, wl) = wm.get();
    let gm = Operand::new(gy, lg, &[g.n, g.cout, ohw]);
    let (gd, gl) = gm.get();
    let pointwise = g.pointwise();
    let tasks = g.n * g.groups();
    let parallel = tasks > 1 && g.work() >= CONV_GRAIN;
    let scratch = if pointwise { 0 } else { k * ohw };
    run_tasks(
        &mut out,
        g.cg * hw,
        scratch,
        parallel,
        |t, gx, col, split| {
            let (ni, gi) = (t / g.groups(), t % g.groups());
            // Wᵍᵀ (k × og) @ gyᵍ (og × ohw): the gradient of every patch-matrix entry.
            let a = MatRef::new(
                wd,
                wl.offset() + gi * g.og * st(wl, 0),
                st(wl, 1),
                st(wl, 0),
            );
            let b = MatRef::new(
                gd,
                gl.offset() + ni * st(gl, 0) + gi * g.og * st(gl, 1),
                st(gl, 1),
                st(gl, 2),
            );
            if pointwise {
                gemm(split, (k, g.og, ohw), a, b, false, gx);
            } else {
                gemm(split, (k, g.og, ohw), a, b, false, col);
                gx.fill(T::ZERO);
                col2im(col, g, gx);
            }
        },
    );
    out
}

/// Number of batch chunks the weight gradient sums separately before adding them in order:
/// enough to keep both cores busy, fixed by the batch size alone (not the thread count) so the
/// summation order, hence the result, is the same on any number of threads.
const WGRAD_CHUNKS: usize = 8;

fn backward_weight<T: ConvElement>(
    x: &[T],
    lx: &Layout,
    gy: &[T],
    lg: &Layout,
    g: &Geom,
) -> Buffer<T> {
    let (k, ohw) = (g.k(), g.ohw());
    let size = g.cout * k;
    let gm = Operand::new(gy, lg, &[g.n, g.cout, ohw]);
    let (gd, gl) = gm.get();
    assert!(
        lx.storage_extent() <= x.len(),
        "conv2d: input layout reaches past its storage"
    );
    let direct = g
        .pointwise()
        .then(|| lx.view(&[g.n, g.cin, g.hw()]))
        .flatten();
    let chunks = g.n.clamp(1, WGRAD_CHUNKS);
    let per = g.n.div_ceil(chunks).max(1);
    let chunks = g.n.div_ceil(per).max(1);
    let mut partial = Buffer::<T>::uninit(chunks * size);
    let tasks = chunks * g.groups();
    let parallel = tasks > 1 && g.work() >= CONV_GRAIN;
    // Each task's scratch: the patch matrix (unless pointwise) and its gradient's transpose.
    let patches = if direct.is_some() { 0 } else { k * ohw };
    run_tasks(
        &mut partial,
        g.og * k,
        patches + k * g.og,
        parallel,
        |t, gw, scratch, split| {
            let (ci, gi) = (t / g.groups(), t % g.groups());
            let samples = ci * per..((ci + 1) * per).min(g.n);
            if samples.is_empty() {
                gw.fill(T::ZERO);
                return;
            }
            let (col, gwt) = scratch.split_at_mut(patches);
            for (s, ni) in samples.enumerate() {
                // gwᵍᵀ (k × og) = patches (k × ohw) @ gyᵍᵀ (ohw × og), summed over the chunk's
                // samples: the transposed product packs the small gyᵍ, not the patch matrix
                // (4.5× less for Conv2d(32, 64, 3)), and reads the patches in place.
                let a = match &direct {
                    Some(v) => MatRef::new(
                        x,
                        v.offset() + ni * st(v, 0) + gi * g.cg * st(v, 1),
                        st(v, 1),
                        st(v, 2),
                    ),
                    None => {
                        im2col(x, plane(lx, ni, gi * g.cg), g, col);
                        MatRef::new(col, 0, ohw, 1)
                    }
                };
                let b = MatRef::new(
                    gd,
                    gl.offset() + ni * st(gl, 0) + gi * g.og * st(gl, 1),
                    st(gl, 2),
                    st(gl, 1),
                );
                gemm(split, (k, ohw, g.og), a, b, s > 0, gwt);
            }
            for (r, row) in gw.chunks_mut(k).enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = gwt[c * g.og + r];
                }
            }
        },
    );
    if chunks == 1 {
        return partial;
    }
    let mut out = Buffer::<T>::uninit(size);
    out.copy_from_slice(&partial[..size]);
    for c in 1..chunks {
        for (o, &p) in out.iter_mut().zip(&partial[c * size..(c + 1) * size]) {
            *o = *o + p;
        }
    }
    out
}

/// The typed slice of an operand that must share the input's dtype.
fn same<'a, T: CpuElement>(op: &str, x: &CpuStorage, s: &'a CpuStorage, what: &str) -> &'a [T] {
    T::unwrap_ref(s).unwrap_or_else(|| {
        panic!(
            "{op}: Input type ({}) and {what} type ({}) should be the same",
            x.dtype(),
            s.dtype()
        )
    })
}

fn check_rank(op: &str, what: &str, l: &Layout) {
    assert!(
        l.ndim() == 4,
        "{op}: expected a 4-D {what} layout (N, C, H, W), got shape {:?}",
        l.shape()
    );
}

impl CpuStorage {
    /// 2-D convolution of the input `(N, C_in, H, W)` (any strides) with the weight
    /// `(C_out, C_in / groups, kH, kW)` and an optional bias `(C_out)`, all of one float dtype,
    /// shapes already validated (`conv::check_conv`); the result is contiguous
    /// `(N, C_out, H_out, W_out)` with `out` the output's spatial size.
    pub fn conv2d(
        &self,
        lx: &Layout,
        w: &CpuStorage,
        lw: &Layout,
        bias: Option<(&CpuStorage, &Layout)>,
        p: &ConvParams,
        out: [usize; 2],
    ) -> CpuStorage {
        check_rank("conv2d", "input", lx);
        check_rank("conv2d", "weight", lw);
        let s = lx.shape();
        let g = Geom::new(
            [s[0], s[1], s[2], s[3]],
            lw.shape()[0],
            [lw.shape()[2], lw.shape()[3]],
            out,
            *p,
        );
        fn go<T: ConvElement>(
            x: &CpuStorage,
            lx: &Layout,
            (w, lw): (&CpuStorage, &Layout),
            bias: Option<(&CpuStorage, &Layout)>,
            g: &Geom,
        ) -> CpuStorage {
            let xs = x.as_slice::<T>();
            let ws = same::<T>("conv2d", x, w, "weight");
            let b = bias.map(|(b, lb)| (same::<T>("conv2d", x, b, "bias"), lb));
            T::wrap(forward(xs, lx, ws, lw, b, g))
        }
        match self {
            CpuStorage::F32(_) => go::<f32>(self, lx, (w, lw), bias, &g),
            CpuStorage::F64(_) => go::<f64>(self, lx, (w, lw), bias, &g),
            other => panic!(
                "conv2d: expected a floating-point input, got {}",
                other.dtype()
            ),
        }
    }

    /// The input gradient of a 2-D convolution — equally, the transposed convolution of `self`
    /// `(N, C_out, H_out, W_out)` (any strides) with the weight `(C_out, C_in / groups, kH, kW)`:
    /// contiguous `(N, C_in, input[0], input[1])`. Every input position sums the output
    /// gradients of the windows that read it.
    pub fn conv2d_backward_input(
        &self,
        lg: &Layout,
        w: &CpuStorage,
        lw: &Layout,
        p: &ConvParams,
        input: [usize; 2],
    ) -> CpuStorage {
        check_rank("conv2d_backward_input", "gradient", lg);
        check_rank("conv2d_backward_input", "weight", lw);
        let (s, ws) = (lg.shape(), lw.shape());
        let g = Geom::new(
            [s[0], ws[1] * p.groups, input[0], input[1]],
            ws[0],
            [ws[2], ws[3]],
            [s[2], s[3]],
            *p,
        );
        match self {
            CpuStorage::F32(gy) => f32::wrap(backward_input(
                gy,
                lg,
                same("conv_transpose2d", self, w, "weight"),
                lw,
                &g,
            )),
            CpuStorage::F64(gy) => f64::wrap(backward_input(
                gy,
                lg,
                same("conv_transpose2d", self, w, "weight"),
                lw,
                &g,
            )),
            other => panic!(
                "conv_transpose2d: expected a floating-point input, got {}",
                other.dtype()
            ),
        }
    }

    /// The weight gradient of a 2-D convolution of `self`, the input `(N, C_in, H, W)`, given the
    /// output gradient `gy` `(N, C_out, H_out, W_out)` (both any strides): contiguous
    /// `(C_out, C_in / groups, kernel[0], kernel[1])`, summed over the batch.
    pub fn conv2d_backward_weight(
        &self,
        lx: &Layout,
        gy: &CpuStorage,
        lg: &Layout,
        p: &ConvParams,
        kernel: [usize; 2],
    ) -> CpuStorage {
        check_rank("conv2d_backward_weight", "input", lx);
        check_rank("conv2d_backward_weight", "gradient", lg);
        let (s, gs) = (lx.shape(), lg.shape());
        let g = Geom::new([s[0], s[1], s[2], s[3]], gs[1], kernel, [gs[2], gs[3]], *p);
        match self {
            CpuStorage::F32(x) => f32::wrap(backward_weight(
                x,
                lx,
                same("conv2d", self, gy, "gradient"),
                lg,
                &g,
            )),
            CpuStorage::F64(x) => f64::wrap(backward_weight(
                x,
                lx,
                same("conv2d", self, gy, "gradient"),
                lg,
                &g,
            )),
            other => panic!(
                "conv2d: expected a floating-point input, got {}",
                other.dtype()
            ),
        }
    }
}
