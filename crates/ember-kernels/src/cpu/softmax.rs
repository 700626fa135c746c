//! Softmax and log-softmax along one dim (forward and fused backward) on `CpuStorage`, plus the
//! SIMD helpers shared with the reductions: a vectorisable f32 `exp` and run-time selection of
//! AVX2+FMA copies of hot loops (the crate is compiled for baseline x86-64).

use super::map::map;
use super::num::{Float, Num};
use super::par::{n_chunks, ELEMENTWISE_GRAIN};
use super::simd::{exp_f32, lanes_fold, multiversion, Pick, L};
use super::{Buffer, CpuElement, CpuStorage};
use crate::layout::Layout;
use rayon::prelude::*;

/// A float type softmax works on: its `exp` for vectorised loops.
pub(crate) trait SoftFloat: Float + CpuElement + Pick {
    /// `e^self`; `F` says whether FMA may be used.
    fn fexp<const F: bool>(self) -> Self;
}

impl SoftFloat for f32 {
    #[inline(always)]
    fn fexp<const F: bool>(self) -> f32 {
        exp_f32::<F>(self)
    }
}

impl SoftFloat for f64 {
    #[inline(always)]
    fn fexp<const F: bool>(self) -> f64 {
        self.exp()
    }
}

/// The larger of `a` and `x` ignoring NaN in `x` (one `maxps` in lane loops held in
/// registers). Softmax uses it for the row max: a NaN input still makes the whole row NaN
/// through `exp(x - max)` and the sum.
#[inline(always)]
fn max_plain<T: Num>(a: T, x: T) -> T {
    if x > a {
        x
    } else {
        a
    }
}

/// Columns processed together when softmax runs along a non-innermost dim.
const TILE: usize = 256;

/// `out = exp(x - m)` and returns its sum (lane-wise, so it vectorises).
#[inline(always)]
fn exp_store_sum<T: SoftFloat, const F: bool>(x: &[T], m: T, out: &mut [T]) -> T {
    let mut lanes = [T::ZERO; L];
    let mut xc = x.chunks_exact(L);
    let mut oc = out.chunks_exact_mut(L);
    for (xs, os) in (&mut xc).zip(&mut oc) {
        let xs: &[T; L] = xs.try_into().unwrap();
        let os: &mut [T; L] = os.try_into().unwrap();
        for j in 0..L {
            let e = (xs[j] - m).fexp::<F>();
            os[j] = e;
            lanes[j] = lanes[j] + e;
        }
    }
    let mut tail = T::ZERO;
    for (o, &v) in oc.into_remainder().iter_mut().zip(xc.remainder()) {
        let e = (v - m).fexp::<F>();
        *o = e;
        tail = tail + e;
    }
    pairwise(lanes) + tail
}

/// Sum of the lanes as a balanced tree.
#[inline(always)]
fn pairwise<T: Float>(mut lanes: [T; L]) -> T {
    let mut w = L;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            lanes[j] = lanes[j] + lanes[j + w];
        }
    }
    lanes[0]
}

/// `Σ a[i] * b[i]` in lanes.
#[inline(always)]
fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let mut lanes = [T::ZERO; L];
    let mut ac = a.chunks_exact(L);
    let mut bc = b.chunks_exact(L);
    for (x, y) in (&mut ac).zip(&mut bc) {
        let x: &[T; L] = x.try_into().unwrap();
        let y: &[T; L] = y.try_into().unwrap();
        for j in 0..L {
            lanes[j] = lanes[j] + x[j] * y[j];
        }
    }
    let mut tail = T::ZERO;
    for (&x, &y) in ac.remainder().iter().zip(bc.remainder()) {
        tail = tail + x * y;
    }
    pairwise(lanes) + tail
}

/// Forward over whole rows of length `n` (softmax along the innermost dim).
#[inline(always)]
fn rows_fwd_impl<T: SoftFloat, const F: bool>(x: &[T], out: &mut [T], n: usize, log: bool) {
    for (xr, or) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        let m = lanes_fold(xr, T::LOWEST, max_plain, max_plain);
        if log {
            let s = lanes_fold(xr, T::ZERO, |a, v| a + (v - m).fexp::<F>(), |a, b| a + b);
            let ls = s.ln();
            for (o, &v) in or.iter_mut().zip(xr) {
                *o = (v - m) - ls;
            }
        } else {
            let inv = T::ONE / exp_store_sum::<T, F>(xr, m, or);
            for o in or.iter_mut() {
                *o = *o * inv;
            }
        }
    }
}

multiversion!(fn rows_fwd<T: SoftFloat>(x: &[T], out: &mut [T], n: usize, log: bool) => rows_fwd_impl);

/// Rows of a column tile summed in `T` before the partial sums are added into f64.
const SUM_BLOCK: usize = 32;

/// Forward along the middle dim of one `[n, inner]` block, columns `c0..c1` (at most `TILE`).
/// `out` points at the block's `n * inner` output elements; `drive` gives each task its own
/// columns, so the rows written here are not touched by any other thread.
#[inline(always)]
fn cols_fwd_impl<T: SoftFloat, const F: bool>(
    x: &[T],
    out: SendPtr<T>,
    (n, inner, c0, c1): (usize, usize, usize, usize),
    log: bool,
) {
    let w = c1 - c0;
    let row = |j: usize| &x[j * inner + c0..j * inner + c1];
    // SAFETY: in bounds of the block, and columns c0..c1 belong to this task only.
    let orow =
        |j: usize| unsafe { std::slice::from_raw_parts_mut(out.get().add(j * inner + c0), w) };
    let mut m = [T::LOWEST; TILE];
    let m = &mut m[..w];
    for j in 0..n {
        let r = row(j);
        for c in 0..w {
            m[c] = T::pmax(m[c], r[c]);
        }
    }
    // Column sums run over many rows: blocks of rows are summed in T, the blocks in f64.
    let mut s = [0f64; TILE];
    let s = &mut s[..w];
    let mut j0 = 0;
    while j0 < n {
        let mut sb = [T::ZERO; TILE];
        let sb = &mut sb[..w];
        for j in j0..n.min(j0 + SUM_BLOCK) {
            let r = row(j);
            if log {
                for c in 0..w {
                    sb[c] = sb[c] + (r[c] - m[c]).fexp::<F>();
                }
            } else {
                let o = orow(j);
                for c in 0..w {
                    let e = (r[c] - m[c]).fexp::<F>();
                    o[c] = e;
                    sb[c] = sb[c] + e;
                }
            }
        }
        for c in 0..w {
            s[c] += sb[c].into();
        }
        j0 += SUM_BLOCK;
    }
    let mut k = [T::ZERO; TILE];
    let k = &mut k[..w];
    for c in 0..w {
        // log: the log-sum to subtract; softmax: the reciprocal to scale by.
        k[c] = T::of(if log { s[c].ln() } else { 1.0 / s[c] });
    }
    for j in 0..n {
        let (r, o) = (row(j), orow(j));
        if log {
            for c in 0..w {
                o[c] = (r[c] - m[c]) - k[c];
            }
        } else {
            for c in 0..w {
                o[c] = o[c] * k[c];
            }
        }
    }
}

multiversion!(fn cols_fwd<T: SoftFloat>(x: &[T], out: SendPtr<T>, dims: (usize, usize, usize, usize), log: bool) => cols_fwd_impl);

/// Backward over whole rows: softmax `y * (g - Σ g y)`, log-softmax `g - e^y Σ g`.
#[inline(always)]
fn rows_bwd_impl<T: SoftFloat, const F: bool>(
    g: &[T],
    y: &[T],
    out: &mut [T],
    n: usize,
    log: bool,
) {
    for ((gr, yr), or) in g
        .chunks_exact(n)
        .zip(y.chunks_exact(n))
        .zip(out.chunks_exact_mut(n))
    {
        if log {
            let sg = lanes_fold(gr, T::ZERO, |a, v| a + v, |a, b| a + b);
            for ((o, &gv), &yv) in or.iter_mut().zip(gr).zip(yr) {
                *o = gv - yv.fexp::<F>() * sg;
            }
        } else {
            let d = dot(gr, yr);
            for ((o, &gv), &yv) in or.iter_mut().zip(gr).zip(yr) {
                *o = yv * (gv - d);
            }
        }
    }
}

multiversion!(fn rows_bwd<T: SoftFloat>(g: &[T], y: &[T], out: &mut [T], n: usize, log: bool) => rows_bwd_impl);

/// Backward along the middle dim of one `[n, inner]` block, columns `c0..c1`.
#[inline(always)]
fn cols_bwd_impl<T: SoftFloat, const F: bool>(
    g: &[T],
    y: &[T],
    out: SendPtr<T>,
    (n, inner, c0, c1): (usize, usize, usize, usize),
    log: bool,
) {
    let w = c1 - c0;
    fn seg<T>(v: &[T], j: usize, (inner, c0, c1): (usize, usize, usize)) -> &[T] {
        &v[j * inner + c0..j * inner + c1]
    }
    let at = (inner, c0, c1);
    // SAFETY: columns c0..c1 of this block belong to this task only (see `drive`).
    let orow =
        |j: usize| unsafe { std::slice::from_raw_parts_mut(out.get().add(j * inner + c0), w) };
    let mut s = [0f64; TILE];
    let s = &mut s[..w];
    for j in 0..n {
        if log {
            for (a, &gv) in s.iter_mut().zip(seg(g, j, at)) {
                *a += gv.into();
            }
        } else {
            for ((a, &gv), &yv) in s.iter_mut().zip(seg(g, j, at)).zip(seg(y, j, at)) {
                *a += (gv * yv).into();
            }
        }
    }
    let mut st = [T::ZERO; TILE];
    for (t, &a) in st.iter_mut().zip(s.iter()) {
        *t = T::of(a);
    }
    for j in 0..n {
        let it = orow(j)
            .iter_mut()
            .zip(seg(g, j, at))
            .zip(seg(y, j, at))
            .zip(&st);
        if log {
            for (((o, &gv), &yv), &sv) in it {
                *o = gv - yv.fexp::<F>() * sv;
            }
        } else {
            for (((o, &gv), &yv), &sv) in it {
                *o = yv * (gv - sv);
            }
        }
    }
}

multiversion!(fn cols_bwd<T: SoftFloat>(g: &[T], y: &[T], out: SendPtr<T>, dims: (usize, usize, usize, usize), log: bool) => cols_bwd_impl);

/// A raw output pointer shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: only used to write disjoint elements from different threads.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper).
    fn get(self) -> *mut T {
        self.0
    }
}

/// `(outer, n, inner)`: the sizes before, at and after `dim` (a 0-dim tensor is one element).
fn split_dims(op: &str, shape: &[usize], dim: usize) -> (usize, usize, usize) {
    if shape.is_empty() {
        if dim > 0 {
            panic!("{op}: dim {dim} out of range for a tensor of shape []");
        }
        return (1, 1, 1);
    }
    if dim >= shape.len() {
        panic!("{op}: dim {dim} out of range for a tensor of shape {shape:?}");
    }
    let outer = shape[..dim].iter().product();
    let inner = shape[dim + 1..].iter().product();
    (outer, shape[dim], inner)
}

/// The contiguous elements of `(x, layout)`, copied only when the layout is strided. (An empty
/// view may carry an offset past the end of its storage, so it is never sliced.)
fn contiguous<'a, T: CpuElement>(
    x: &'a [T],
    layout: &Layout,
    owned: &'a mut Option<Buffer<T>>,
) -> &'a [T] {
    match layout.contiguous_range() {
        _ if layout.numel() == 0 => &[],
        Some((s, e)) => &x[s..e],
        None => owned.insert(map(x, layout, |v| v)),
    }
}

/// Splits the work of a softmax-shaped op over threads: whole rows when `inner == 1`, else
/// (outer block, column tile) tasks that write disjoint elements of the output.
fn drive<T: SoftFloat>(
    (outer, n, inner): (usize, usize, usize),
    rows: impl Fn(usize, &mut [T]) + Sync,
    cols: impl Fn(usize, SendPtr<T>, (usize, usize, usize, usize)) + Sync,
) -> Buffer<T> {
    let numel = outer * n * inner;
    let mut out = Buffer::<T>::uninit(numel);
    if numel == 0 {
        return out;
    }
    let chunks = n_chunks(numel, ELEMENTWISE_GRAIN);
    if inner == 1 {
        let rows_per = outer.div_ceil(chunks);
        if chunks <= 1 {
            rows(0, &mut out);
        } else {
            out.par_chunks_mut(rows_per * n)
                .enumerate()
                .for_each(|(i, c)| rows(i * rows_per, c));
        }
        return out;
    }
    let tiles = inner.div_ceil(TILE);
    let ptr = SendPtr(out.as_mut_ptr());
    let task = |t: usize| {
        let (o, c0) = (t / tiles, (t % tiles) * TILE);
        // SAFETY: `o * n * inner` is inside the output; each task owns its columns of block `o`.
        let base = SendPtr(unsafe { ptr.get().add(o * n * inner) });
        cols(o, base, (n, inner, c0, (c0 + TILE).min(inner)));
    };
    if chunks <= 1 {
        (0..outer * tiles).for_each(task);
    } else {
        (0..outer * tiles).into_par_iter().for_each(task);
    }
    out
}

fn softmax_fwd<T: SoftFloat>(
    x: &[T],
    layout: &Layout,
    dim: usize,
    log: bool,
    op: &str,
) -> Buffer<T> {
    let sizes = split_dims(op, layout.shape(), dim);
    let (_, n, inner) = sizes;
    let mut owned = None;
    let x = contiguous(x, layout, &mut owned);
    drive(
        sizes,
        |r0, out: &mut [T]| rows_fwd(&x[r0 * n..r0 * n + out.len()], out, n, log),
        |o, base, d| cols_fwd(&x[o * n * inner..(o + 1) * n * inner], base, d, log),
    )
}

fn softmax_bwd<T: SoftFloat>(
    (g, lg): (&[T], &Layout),
    (y, ly): (&[T], &Layout),
    dim: usize,
    log: bool,
    op: &str,
) -> Buffer<T> {
    if lg.shape() != ly.shape() {
        panic!(
            "{op}: grad_output shape {:?} does not match output shape {:?}",
            lg.shape(),
            ly.shape()
        );
    }
    let sizes = split_dims(op, lg.shape(), dim);
    let (_, n, inner) = sizes;
    let (mut og, mut oy) = (None, None);
    let g = contiguous(g, lg, &mut og);
    let y = contiguous(y, ly, &mut oy);
    let block = n * inner;
    drive(
        sizes,
        |r0, out: &mut [T]| {
            let r = r0 * n..r0 * n + out.len();
            rows_bwd(&g[r.clone()], &y[r], out, n, log)
        },
        |o, base, d| {
            let r = o * block..(o + 1) * block;
            cols_bwd(&g[r.clone()], &y[r], base, d, log)
        },
    )
}

impl CpuStorage {
    /// `softmax` (or `log_softmax` when `log`) of the elements selected by `layout` along `dim`,
    /// into a new contiguous storage of the same shape and dtype. Fused and max-subtracted;
    /// floating-point dtypes only.
    pub fn softmax(&self, layout: &Layout, dim: usize, log: bool) -> CpuStorage {
        let op = if log { "log_softmax" } else { "softmax" };
        match self {
            CpuStorage::F32(x) => CpuStorage::F32(softmax_fwd(x, layout, dim, log, op)),
            CpuStorage::F64(x) => CpuStorage::F64(softmax_fwd(x, layout, dim, log, op)),
            other => panic!(
                "{op}: expected a floating-point tensor, got {}",
                other.dtype()
            ),
        }
    }

    /// Gradient of `softmax`/`log_softmax` along `dim` given the upstream gradient `self`
    /// (`lg`) and the forward OUTPUT `out` (`lo`): softmax `out * (g - Σ g·out)`, log-softmax
    /// `g - exp(out) Σ g`. New contiguous storage of the same shape.
    pub fn softmax_backward(
        &self,
        lg: &Layout,
        out: &CpuStorage,
        lo: &Layout,
        dim: usize,
        log: bool,
    ) -> CpuStorage {
        let op = if log {
            "log_softmax_backward"
        } else {
            "softmax_backward"
        };
        match (self, out) {
            (CpuStorage::F32(g), CpuStorage::F32(y)) => {
                CpuStorage::F32(softmax_bwd((g, lg), (y, lo), dim, log, op))
            }
            (CpuStorage::F64(g), CpuStorage::F64(y)) => {
                CpuStorage::F64(softmax_bwd((g, lg), (y, lo), dim, log, op))
            }
            (g, y) => panic!(
                "{op}: expected floating-point tensors of one dtype, got {} and {}",
                g.dtype(),
                y.dtype()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::reduce::test_util::{close, random_layout, time_ms, Rng};
    use crate::cpu::simd::has_avx2_fma;
    use proptest::prelude::*;

    fn vals<T: CpuElement>(s: &CpuStorage) -> Vec<T> {
        s.to_vec(&Layout::contiguous(&[s.len()]))
    }

    /// Naive softmax / log-softmax (and their backward given `g`) in f64 over the logical
    /// elements of `(x, l)` along `dim`, in row-major order.
    fn reference(
        x: &[f64],
        g: &[f64],
        shape: &[usize],
        dim: usize,
        log: bool,
    ) -> (Vec<f64>, Vec<f64>) {
        let (outer, n, inner) = split_dims("ref", shape, dim);
        let (mut y, mut gi) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        for o in 0..outer {
            for c in 0..inner {
                let at = |j: usize| o * n * inner + j * inner + c;
                let m = (0..n).map(|j| x[at(j)]).fold(f64::NEG_INFINITY, |a, v| {
                    if a.is_nan() || v.is_nan() {
                        f64::NAN
                    } else {
                        a.max(v)
                    }
                });
                let s: f64 = (0..n).map(|j| (x[at(j)] - m).exp()).sum();
                for j in 0..n {
                    y[at(j)] = if log {
                        (x[at(j)] - m) - s.ln()
                    } else {
                        (x[at(j)] - m).exp() / s
                    };
                }
                let sg: f64 = (0..n).map(|j| g[at(j)]).sum();
                let dot: f64 = (0..n).map(|j| g[at(j)] * y[at(j)]).sum();
                for j in 0..n {
                    gi[at(j)] = if log {
                        g[at(j)] - y[at(j)].exp() * sg
                    } else {
                        y[at(j)] * (g[at(j)] - dot)
                    };
                }
            }
        }
        (y, gi)
    }

    fn check(x: &CpuStorage, lx: &Layout, dim: usize, seed: u64, tol: f64) {
        let mut r = Rng(seed);
        let shape = lx.shape().to_vec();
        let numel: usize = shape.iter().product();
        if numel == 0 {
            // (`to_vec` cannot read an empty view whose offset lies past its storage.)
            assert_eq!(x.softmax(lx, dim, false).len(), 0);
            return;
        }
        let xs = x.to_vec::<f64>(lx);
        let gs: Vec<f64> = (0..numel)
            .map(|_| r.below(200) as f64 / 50.0 - 2.0)
            .collect();
        for log in [false, true] {
            let (want_y, want_g) = reference(&xs, &gs, &shape, dim, log);
            let y = x.softmax(lx, dim, log);
            assert_eq!(y.dtype(), x.dtype());
            let got = vals::<f64>(&y);
            for k in 0..numel {
                assert!(
                    close(got[k], want_y[k], tol),
                    "log={log} {lx:?} dim {dim} at {k}: {} vs {}",
                    got[k],
                    want_y[k]
                );
            }
            // Backward with a strided grad: a transposed copy read back through a transposed view.
            let lc = Layout::contiguous(&shape);
            let g = CpuStorage::from_vec(gs.clone()).cast(&lc, x.dtype());
            let (g, lg) = if shape.len() >= 2 {
                let t = lc.transpose(0, 1);
                let gt = g.contiguous(&t);
                (gt, Layout::contiguous(t.shape()).transpose(0, 1))
            } else {
                (g, lc.clone())
            };
            let gi = vals::<f64>(&g.softmax_backward(&lg, &y, &lc, dim, log));
            for k in 0..numel {
                assert!(
                    close(gi[k], want_g[k], tol * 10.0),
                    "bwd log={log} {lx:?} dim {dim} at {k}: {} vs {}",
                    gi[k],
                    want_g[k]
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn softmax_matches_reference(seed in any::<u64>()) {
            let mut r = Rng(seed);
            let (len, l) = random_layout(&mut r, 4);
            let dim = if l.ndim() == 0 { 0 } else { r.below(l.ndim()) };
            let data: Vec<f64> = (0..len).map(|_| match r.below(25) {
                0 => f64::NEG_INFINITY,
                1 => 80.0,
                _ => (r.below(2001) as f64 - 1000.0) / 100.0,
            }).collect();
            check(&CpuStorage::from_vec(data.iter().map(|&v| v as f32).collect::<Vec<f32>>()), &l, dim, seed, 2e-5);
            check(&CpuStorage::from_vec(data), &l, dim, seed, 1e-10);
        }
    }

    #[test]
    fn large_shapes_rows_and_columns() {
        let mut r = Rng(3);
        for shape in [vec![300, 257], vec![3, 64, 600], vec![2, 70, 3, 40]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n)
                .map(|_| (r.below(4001) as f32 - 2000.0) / 100.0)
                .collect();
            let x = CpuStorage::from_vec(data);
            let l = Layout::contiguous(&shape);
            for dim in 0..shape.len() {
                check(&x, &l, dim, 5, 2e-5);
            }
            check(&x, &l.transpose(0, 1), 1, 6, 2e-5);
        }
    }

    #[test]
    fn special_values() {
        let l = Layout::contiguous(&[2, 3]);
        let x = CpuStorage::from_vec(vec![
            f32::NEG_INFINITY,
            0.0,
            0.0,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        ]);
        let y = vals::<f32>(&x.softmax(&l, 1, false));
        assert_eq!(y[..3], [0.0, 0.5, 0.5]);
        assert!(
            y[3..].iter().all(|v| v.is_nan()),
            "PyTorch gives NaN for an all -inf row"
        );
        let y = vals::<f32>(&x.softmax(&l, 1, true));
        assert_eq!(y[0], f32::NEG_INFINITY);
        assert!((y[1] + std::f32::consts::LN_2).abs() < 1e-6);
        // Large inputs do not overflow.
        let x = CpuStorage::from_vec(vec![1000.0f32, 1000.0, 999.0]);
        let y = vals::<f32>(&x.softmax(&Layout::contiguous(&[3]), 0, false));
        assert!(
            (y[0] - 0.422_318_5).abs() < 1e-6 && (y[2] - 0.155_362_97).abs() < 1e-6,
            "{y:?}"
        );
        // A 0-dim tensor: softmax 1, log_softmax 0.
        let x = CpuStorage::from_vec(vec![5.0f64]);
        assert_eq!(
            vals::<f64>(&x.softmax(&Layout::contiguous(&[]), 0, false)),
            vec![1.0]
        );
        assert_eq!(
            vals::<f64>(&x.softmax(&Layout::contiguous(&[]), 0, true)),
            vec![0.0]
        );
    }

    #[test]
    fn empty_view_with_offset_past_storage() {
        // `slice` keeps the offset of a dim that stays non-empty while another dim is 0.
        let l = Layout::new(&[1, 0], &[1, 1], 2);
        let x = CpuStorage::from_vec(vec![1f32]);
        assert_eq!(x.softmax(&l, 1, false).len(), 0);
        assert_eq!(x.softmax_backward(&l, &x, &l, 0, true).len(), 0);
        let i = CpuStorage::from_vec(vec![1i64]);
        assert_eq!(i.logsumexp(&l, &[1]).len(), 1);
        assert_eq!(i.reduce(&l, &[1], crate::op::ReduceOp::Sum).len(), 1);
    }

    #[test]
    #[should_panic(expected = "softmax: expected a floating-point tensor, got torch.int64")]
    fn softmax_of_int_panics() {
        CpuStorage::from_vec(vec![1i64, 2]).softmax(&Layout::contiguous(&[2]), 0, false);
    }

    #[test]
    #[should_panic(expected = "log_softmax: dim 2 out of range")]
    fn softmax_bad_dim_panics() {
        CpuStorage::from_vec(vec![1f32, 2.0]).softmax(&Layout::contiguous(&[1, 2]), 2, true);
    }

    /// ulp distance between two finite or equal floats.
    fn ulps(a: f32, b: f32) -> u32 {
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0;
        }
        let key = |v: f32| {
            let i = v.to_bits() as i32;
            if i < 0 {
                i32::MIN - i
            } else {
                i
            }
        };
        key(a).abs_diff(key(b))
    }

    #[test]
    fn exp_f32_is_accurate() {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fused(x: f32) -> f32 {
            exp_f32::<true>(x)
        }
        let mut worst = 0;
        let mut x = -110.0f32;
        while x < 90.0 {
            let want = (x as f64).exp() as f32;
            worst = worst.max(ulps(exp_f32::<false>(x), want));
            #[cfg(target_arch = "x86_64")]
            if has_avx2_fma() {
                // SAFETY: checked the CPU features.
                worst = worst.max(ulps(unsafe { fused(x) }, want));
            }
            x += 0.000_37;
        }
        eprintln!("exp_f32 worst error: {worst} ulp");
        assert!(worst <= 2, "worst error {worst} ulp");
        assert_eq!(exp_f32::<false>(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32::<false>(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32::<false>(89.0), f32::INFINITY);
        assert!(exp_f32::<false>(f32::NAN).is_nan());
        assert_eq!(exp_f32::<false>(0.0), 1.0);
        // Subnormal results are not flushed.
        assert_eq!(exp_f32::<false>(-100.0), (-100f64).exp() as f32);
        assert!(exp_f32::<false>(-100.0) > 0.0);
    }

    /// Throughput check (run with `cargo test --release -p ember-kernels -- --ignored`).
    #[test]
    #[ignore]
    fn time_softmax() {
        let (rows, cols) = (4096, 1000);
        let x = CpuStorage::from_vec(
            (0..rows * cols)
                .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
                .collect::<Vec<_>>(),
        );
        let shape = [rows, cols];
        {
            // Compute cost with the data in L2: 32 rows of 1000, one thread.
            let xs = &x.as_slice::<f32>()[..32 * cols];
            let mut out = vec![0f32; 32 * cols];
            for log in [false, true] {
                let (wall, cpu) = time_ms(|| {
                    for _ in 0..100 {
                        rows_fwd(std::hint::black_box(xs), &mut out, cols, log);
                    }
                });
                let per = |t: f64| t * 1e6 / (100.0 * 32.0 * cols as f64);
                eprintln!(
                    "softmax rows in cache log={log}: {:.3} ns/elem wall, {:.3} cpu",
                    per(wall),
                    per(cpu)
                );
            }
        }
        for (name, l, dim) in [
            ("(4096,1000) dim 1", Layout::contiguous(&shape), 1),
            ("(4096,1000) dim 0", Layout::contiguous(&shape), 0),
            ("(64,64,1000) dim 1", Layout::contiguous(&[64, 64, 1000]), 1),
        ] {
            for log in [false, true] {
                let (wall, cpu) = time_ms(|| {
                    std::hint::black_box(x.softmax(&l, dim, log));
                });
                eprintln!("softmax{name} log={log}: best {wall:.3} ms wall, {cpu:.3} ms cpu/call");
            }
        }
        let y = x.softmax(&Layout::contiguous(&shape), 1, false);
        let l = Layout::contiguous(&shape);
        let (wall, cpu) = time_ms(|| {
            std::hint::black_box(x.softmax_backward(&l, &y, &l, 1, false));
        });
        eprintln!(
            "softmax_backward (4096,1000) dim 1: best {wall:.3} ms wall, {cpu:.3} ms cpu/call"
        );
    }
}
