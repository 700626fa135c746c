//! CPU kernels of the fused losses. Cross-entropy computes, per row, the max and the
//! max-subtracted `logsumexp` of the C scores, and the row loss from them (no log-softmax tensor is
//! ever materialised); the backward rebuilds `softmax = exp(x - lse)` from the saved `lse` and
//! writes `g * (softmax * Σ w t' - w t')` in the same pass. Targets are validated on the calling
//! thread before any parallel work, so a bad class index panics with a clean message.

use super::map::map;
use super::num::Float;
use super::par::{n_chunks, ELEMENTWISE_GRAIN};
use super::simd::lanes_fold;
use super::simd::multiversion;
use super::softmax::SoftFloat;
use super::{Buffer, CpuElement, CpuStorage};
use crate::dtype::DType;
use crate::layout::Layout;
use crate::loss::{CeOptions, CeTarget, LossForward, LossGrad, LossReduction, LossRows};
use rayon::prelude::*;
use std::borrow::Cow;

/// The elements of `(buf, layout)` as a contiguous slice (borrowed when already contiguous).
fn contiguous<'a, T: CpuElement>(buf: &'a [T], layout: &Layout) -> Cow<'a, [T]> {
    match layout.contiguous_range() {
        Some((s, e)) => Cow::Borrowed(&buf[s..e]),
        None => Cow::Owned(map(buf, layout, |v| v).into_vec()),
    }
}

/// The elements of a storage of any dtype converted to `T`, contiguous (borrowed when possible).
fn as_contiguous<'a, T: CpuElement>(s: &'a CpuStorage, layout: &Layout) -> Cow<'a, [T]> {
    match T::unwrap_ref(s) {
        Some(b) => contiguous(b, layout),
        None => Cow::Owned(s.to_vec::<T>(layout)),
    }
}

/// Class-index targets (an integer dtype, checked by the dispatch) as i64, borrowed when they
/// already are contiguous int64.
fn index_targets<'a>(s: &'a CpuStorage, layout: &Layout) -> Cow<'a, [i64]> {
    as_contiguous::<i64>(s, layout)
}

/// Checks every target and returns the summed weight of the rows that count.
fn validate_targets(
    op: &str,
    targets: &[i64],
    classes: usize,
    ignore: i64,
    weight: Option<&[f64]>,
) -> f64 {
    let mut total = 0.0;
    for &y in targets {
        if y == ignore {
            continue;
        }
        if y < 0 || y as usize >= classes {
            panic!(
                "{op}: target {y} is out of bounds: class-index targets must be in [0, {classes}) or equal ignore_index ({ignore})"
            );
        }
        total += weight.map_or(1.0, |w| w[y as usize]);
    }
    total
}

/// Runs `f(first_row, a_chunk, b_chunk)` over two per-row buffers, in parallel when the rows
/// carry enough work (`per_row` elements each).
fn par_rows<T: Send>(
    a: &mut [T],
    b: &mut [T],
    per_row: usize,
    f: impl Fn(usize, &mut [T], &mut [T]) + Sync,
) {
    let rows = a.len();
    let chunks = n_chunks(rows * per_row.max(1), ELEMENTWISE_GRAIN).min(rows.max(1));
    if chunks <= 1 {
        f(0, a, b);
        return;
    }
    let size = rows.div_ceil(chunks);
    a.par_chunks_mut(size)
        .zip(b.par_chunks_mut(size))
        .enumerate()
        .for_each(|(i, (ca, cb))| f(i * size, ca, cb));
}

/// Runs `f(first_outer, chunk)` over an output of `outer` blocks of `block` elements.
fn par_blocks<T: Send>(out: &mut [T], block: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let outer = out.len().checked_div(block).unwrap_or(0);
    let chunks = n_chunks(out.len(), ELEMENTWISE_GRAIN).min(outer.max(1));
    if chunks <= 1 || block == 0 {
        f(0, out);
        return;
    }
    let per = outer.div_ceil(chunks);
    out.par_chunks_mut(per * block)
        .enumerate()
        .for_each(|(i, c)| f(i * per, c));
}

/// `max + ln Σ exp(x - max)` over one row (`stride` apart), NaN-propagating. A row holding `+inf`
/// (or only `-inf`) gives NaN, as PyTorch's `log_softmax` does (`x - max` is `inf - inf` there):
/// the same value the contiguous-row kernel computes.
#[inline(always)]
fn row_lse<T: Float>(x: &[T], base: usize, stride: usize, classes: usize) -> T {
    let mut m = T::of(f64::NEG_INFINITY);
    let mut nan = false;
    for c in 0..classes {
        let v = x[base + c * stride];
        nan |= T::is_nan(v);
        if v > m {
            m = v;
        }
    }
    if nan {
        return T::of(f64::NAN);
    }
    let mut s = T::of(0.0);
    for c in 0..classes {
        s = s + (x[base + c * stride] - m).exp();
    }
    m + s.ln()
}

/// The upstream gradient per row.
enum RowGrad<T> {
    Rows(Vec<T>),
    Same(T),
}

impl<T: Float + CpuElement> RowGrad<T> {
    fn of(g: LossGrad<'_, CpuStorage>) -> Self {
        match g {
            LossGrad::Rows(s, l) => RowGrad::Rows(s.to_vec::<T>(l)),
            LossGrad::Reduced(s, l, f) => RowGrad::Same(T::of(s.to_vec::<f64>(l)[0] * f)),
        }
    }
    #[inline(always)]
    fn at(&self, r: usize) -> T {
        match self {
            RowGrad::Rows(v) => v[r],
            RowGrad::Same(g) => *g,
        }
    }
}

/// Reduces per-row losses (accumulating in f64 so the result does not depend on threading).
fn reduce_rows<T: Float + CpuElement>(
    rows: Buffer<T>,
    reduction: LossReduction,
    weight_sum: f64,
) -> CpuStorage {
    match reduction {
        LossReduction::None => T::wrap(rows),
        LossReduction::Sum | LossReduction::Mean => {
            let total: f64 = rows.iter().map(|&v| v.into()).sum();
            let v = if reduction == LossReduction::Mean {
                total / weight_sum
            } else {
                total
            };
            T::wrap(Buffer::from_vec(vec![T::of(v)]))
        }
    }
}

fn float_op<'a, T: CpuElement>(op: &str, s: &'a CpuStorage) -> &'a [T] {
    T::unwrap_ref(s).unwrap_or_else(|| {
        panic!(
            "{op}: expected a floating-point input, got {}",
            s.dtype().name()
        )
    })
}

struct CeArgs<'a, T: Clone> {
    x: Cow<'a, [T]>,
    g: LossRows,
    weight: Option<Vec<T>>,
    eps: T,
    smooth: T,
    keep: T,
}

impl<'a, T: Float + CpuElement> CeArgs<'a, T> {
    fn new(buf: &'a [T], layout: &Layout, opts: &CeOptions<'_, CpuStorage>) -> Self {
        let g = LossRows::of(opts.op, layout.shape());
        // One weight per class (checked by the dispatch).
        let weight = opts.weight.map(|(s, l)| s.to_vec::<T>(l));
        let e = opts.label_smoothing;
        CeArgs {
            x: contiguous(buf, layout),
            g,
            weight,
            eps: T::of(e),
            smooth: T::of(e / g.classes as f64),
            keep: T::of(1.0 - e),
        }
    }
    #[inline(always)]
    fn w(&self, c: usize) -> T {
        self.weight.as_ref().map_or(T::of(1.0), |w| w[c])
    }
    fn weight_f64(&self) -> Option<Vec<f64>> {
        self.weight
            .as_ref()
            .map(|w| w.iter().map(|&v| v.into()).collect())
    }
}

/// Lanes of the vectorised row loops.
const LANES: usize = 16;

/// The larger of two as a plain compare (vectorises to max); a NaN in the row still makes the
/// row's `lse` NaN through `exp(x - max)`.
#[inline(always)]
fn max_plain<T: Float>(a: T, x: T) -> T {
    if x > a {
        x
    } else {
        a
    }
}

/// `Σ f(x[i], w[i])` in lanes (so the loop vectorises), `w` all ones when `None`.
#[inline(always)]
fn lanes_sum2<T: Float>(x: &[T], w: Option<&[T]>, f: impl Fn(T, T) -> T) -> T {
    let one = T::of(1.0);
    let mut lanes = [T::of(0.0); LANES];
    let mut tail = T::of(0.0);
    match w {
        Some(w) => {
            let (mut xc, mut wc) = (x.chunks_exact(LANES), w.chunks_exact(LANES));
            for (xs, ws) in (&mut xc).zip(&mut wc) {
                for j in 0..LANES {
                    lanes[j] = lanes[j] + f(xs[j], ws[j]);
                }
            }
            for (&v, &k) in xc.remainder().iter().zip(wc.remainder()) {
                tail = tail + f(v, k);
            }
        }
        None => {
            let mut xc = x.chunks_exact(LANES);
            for xs in &mut xc {
                for j in 0..LANES {
                    lanes[j] = lanes[j] + f(xs[j], one);
                }
            }
            for &v in xc.remainder() {
                tail = tail + f(v, one);
            }
        }
    }
    lanes.iter().fold(tail, |a, &b| a + b)
}

/// What the contiguous-row (`inner == 1`) class-index kernels read.
struct Rows<'a, T> {
    x: &'a [T],
    classes: usize,
    targets: &'a [i64],
    weight: Option<&'a [T]>,
    /// Σ weight (C without weights).
    wsum: T,
    ignore: i64,
    keep: T,
    smooth: T,
}

/// Forward over rows `r0..r0 + loss.len()`: max, vectorised `Σ exp(x - max)`, the row loss.
#[inline(always)]
fn rows_fwd_impl<T: SoftFloat, const F: bool>(
    a: &Rows<'_, T>,
    r0: usize,
    loss: &mut [T],
    lse: &mut [T],
) {
    let c = a.classes;
    for (i, (lo, ls)) in loss.iter_mut().zip(lse.iter_mut()).enumerate() {
        let r = r0 + i;
        let y = a.targets[r];
        if y == a.ignore {
            *lo = T::ZERO;
            *ls = T::ZERO;
            continue;
        }
        let xr = &a.x[r * c..(r + 1) * c];
        let m = lanes_fold(xr, T::LOWEST, max_plain, max_plain);
        let s = lanes_fold(
            xr,
            T::ZERO,
            |acc, v| acc + (v - m).fexp::<F>(),
            |p, q| p + q,
        );
        let z = m + s.ln();
        let y = y as usize;
        let wy = a.weight.map_or(T::ONE, |w| w[y]);
        let mut l = a.keep * wy * (z - xr[y]);
        if a.smooth > T::ZERO {
            // Σ_c w_c (z - x_c) = z Σ w - Σ w x.
            let wx = lanes_sum2(xr, a.weight, |v, k| v * k);
            l = l + a.smooth * (z * a.wsum - wx);
        }
        *lo = l;
        *ls = z;
    }
}

multiversion!(fn rows_fwd<T: SoftFloat>(a: &Rows<'_, T>, r0: usize, loss: &mut [T], lse: &mut [T]) => rows_fwd_impl);

/// Backward over the rows of `out` (starting at row `r0`): `g (coef softmax - smooth w)` with
/// `wy` taken off at the target, in one vectorised pass per row.
#[inline(always)]
fn rows_bwd_impl<T: SoftFloat, const F: bool>(
    a: &Rows<'_, T>,
    lse: &[T],
    grad: &RowGrad<T>,
    r0: usize,
    out: &mut [T],
) {
    let c = a.classes;
    for (i, o) in out.chunks_exact_mut(c).enumerate() {
        let r = r0 + i;
        let y = a.targets[r];
        if y == a.ignore {
            o.fill(T::ZERO);
            continue;
        }
        let y = y as usize;
        let xr = &a.x[r * c..(r + 1) * c];
        let (g, z) = (grad.at(r), lse[r]);
        let wy = a.keep * a.weight.map_or(T::ONE, |w| w[y]);
        let k = g * (wy + a.smooth * a.wsum);
        let gs = g * a.smooth;
        match a.weight {
            Some(w) => {
                for ((d, &v), &wc) in o.iter_mut().zip(xr).zip(w) {
                    *d = k * (v - z).fexp::<F>() - gs * wc;
                }
            }
            None => {
                for (d, &v) in o.iter_mut().zip(xr) {
                    *d = k * (v - z).fexp::<F>() - gs;
                }
            }
        }
        o[y] = o[y] - g * wy;
    }
}

multiversion!(fn rows_bwd<T: SoftFloat>(a: &Rows<'_, T>, lse: &[T], grad: &RowGrad<T>, r0: usize, out: &mut [T]) => rows_bwd_impl);

impl<'a, T: SoftFloat> CeArgs<'a, T> {
    fn rows(&'a self, targets: &'a [i64], ignore: i64) -> Rows<'a, T> {
        Rows {
            x: &self.x,
            classes: self.g.classes,
            targets,
            weight: self.weight.as_deref(),
            wsum: match &self.weight {
                Some(w) => w.iter().fold(T::ZERO, |s, &v| s + v),
                None => T::of(self.g.classes as f64),
            },
            ignore,
            keep: self.keep,
            smooth: self.smooth,
        }
    }
}

fn ce_forward<T: SoftFloat>(
    buf: &[T],
    layout: &Layout,
    target: CeTarget<'_, CpuStorage>,
    opts: &CeOptions<'_, CpuStorage>,
    reduction: LossReduction,
) -> LossForward<CpuStorage> {
    let a = CeArgs::new(buf, layout, opts);
    let LossRows {
        classes,
        inner,
        rows,
    } = a.g;
    let mut loss = Buffer::<T>::uninit(rows);
    let mut lse = Buffer::<T>::uninit(rows);
    let x = &*a.x;
    let weight_sum = match target {
        CeTarget::Index(ts, tl) => {
            let t = index_targets(ts, tl);
            let ws = validate_targets(
                opts.op,
                &t,
                classes,
                opts.ignore_index,
                a.weight_f64().as_deref(),
            );
            let ignore = opts.ignore_index;
            if inner == 1 {
                let rows = a.rows(&t, ignore);
                par_rows(&mut loss, &mut lse, classes, |r0, lc, sc| {
                    rows_fwd(&rows, r0, lc, sc)
                });
                return LossForward {
                    loss: reduce_rows(loss, reduction, ws),
                    lse: Some(T::wrap(lse)),
                    weight_sum: ws,
                };
            }
            par_rows(&mut loss, &mut lse, classes, |r0, lc, sc| {
                for (i, (lo, ls)) in lc.iter_mut().zip(sc.iter_mut()).enumerate() {
                    let r = r0 + i;
                    let y = t[r];
                    if y == ignore {
                        *lo = T::of(0.0);
                        *ls = T::of(0.0);
                        continue;
                    }
                    let base = a.g.base(r);
                    let z = row_lse(x, base, inner, classes);
                    let y = y as usize;
                    let mut l = a.keep * a.w(y) * (z - x[base + y * inner]);
                    if a.eps > T::of(0.0) {
                        let mut s = T::of(0.0);
                        for c in 0..classes {
                            s = s + a.w(c) * (z - x[base + c * inner]);
                        }
                        l = l + a.smooth * s;
                    }
                    *lo = l;
                    *ls = z;
                }
            });
            ws
        }
        CeTarget::Prob(ts, tl) => {
            // The input's shape (checked by the dispatch).
            let t = as_contiguous::<T>(ts, tl);
            par_rows(&mut loss, &mut lse, classes, |r0, lc, sc| {
                for (i, (lo, ls)) in lc.iter_mut().zip(sc.iter_mut()).enumerate() {
                    let base = a.g.base(r0 + i);
                    let z = row_lse(x, base, inner, classes);
                    let mut l = T::of(0.0);
                    for c in 0..classes {
                        let k = base + c * inner;
                        let tc = a.keep * t[k] + a.smooth;
                        l = l + a.w(c) * tc * (z - x[k]);
                    }
                    *lo = l;
                    *ls = z;
                }
            });
            rows as f64
        }
    };
    LossForward {
        loss: reduce_rows(loss, reduction, weight_sum),
        lse: Some(T::wrap(lse)),
        weight_sum,
    }
}

fn ce_backward<T: SoftFloat>(
    buf: &[T],
    layout: &Layout,
    target: CeTarget<'_, CpuStorage>,
    opts: &CeOptions<'_, CpuStorage>,
    lse: &CpuStorage,
    grad: LossGrad<'_, CpuStorage>,
    target_grad: bool,
) -> (CpuStorage, Option<CpuStorage>) {
    let a = CeArgs::new(buf, layout, opts);
    let LossRows { classes, inner, .. } = a.g;
    let lse = lse.as_slice::<T>();
    let gr = RowGrad::<T>::of(grad);
    let x = &*a.x;
    let block = classes * inner;
    let mut out = Buffer::<T>::uninit(x.len());
    match target {
        CeTarget::Index(ts, tl) => {
            let t = index_targets(ts, tl);
            let wsum = match &a.weight {
                Some(w) => w.iter().fold(T::of(0.0), |s, &v| s + v),
                None => T::of(classes as f64),
            };
            let ignore = opts.ignore_index;
            if inner == 1 {
                let rows = a.rows(&t, ignore);
                par_blocks(&mut out, block, |o0, chunk| {
                    rows_bwd(&rows, lse, &gr, o0, chunk)
                });
                return (T::wrap(out), None);
            }
            par_blocks(&mut out, block, |o0, chunk| {
                for (ob, blk) in chunk.chunks_mut(block).enumerate() {
                    for s in 0..inner {
                        let r = (o0 + ob) * inner + s;
                        let y = t[r];
                        if y == ignore {
                            for c in 0..classes {
                                blk[s + c * inner] = T::of(0.0);
                            }
                            continue;
                        }
                        let y = y as usize;
                        let g = gr.at(r);
                        let base = a.g.base(r);
                        let wy = a.keep * a.w(y);
                        let coef = wy + a.smooth * wsum;
                        let z = lse[r];
                        for c in 0..classes {
                            let p = (x[base + c * inner] - z).exp();
                            let mut d = coef * p - a.smooth * a.w(c);
                            if c == y {
                                d = d - wy;
                            }
                            blk[s + c * inner] = g * d;
                        }
                    }
                }
            });
            (T::wrap(out), None)
        }
        CeTarget::Prob(ts, tl) => {
            let t = as_contiguous::<T>(ts, tl);
            let t = &*t;
            let run = |o0: usize, chunk: &mut [T], mut tchunk: Option<&mut [T]>| {
                for ob in 0..chunk.len() / block.max(1) {
                    for s in 0..inner {
                        let r = (o0 + ob) * inner + s;
                        let g = gr.at(r);
                        let base = a.g.base(r);
                        let z = lse[r];
                        let mut total = T::of(0.0);
                        for c in 0..classes {
                            total = total + a.w(c) * (a.keep * t[base + c * inner] + a.smooth);
                        }
                        for c in 0..classes {
                            let k = base + c * inner;
                            let wt = a.w(c) * (a.keep * t[k] + a.smooth);
                            let p = (x[k] - z).exp();
                            chunk[ob * block + s + c * inner] = g * (p * total - wt);
                            if let Some(tg) = tchunk.as_deref_mut() {
                                tg[ob * block + s + c * inner] =
                                    -(g * a.keep * a.w(c) * (x[k] - z));
                            }
                        }
                    }
                }
            };
            if target_grad {
                // Rare (a learned soft target): one thread keeps the two outputs simple.
                let mut tg = Buffer::<T>::uninit(x.len());
                run(0, &mut out, Some(&mut tg));
                (T::wrap(out), Some(T::wrap(tg)))
            } else {
                par_blocks(&mut out, block, |o0, chunk| run(o0, chunk, None));
                (T::wrap(out), None)
            }
        }
    }
}

fn nll_forward<T: Float + CpuElement>(
    buf: &[T],
    layout: &Layout,
    target: (&CpuStorage, &Layout),
    opts: &CeOptions<'_, CpuStorage>,
    reduction: LossReduction,
) -> LossForward<CpuStorage> {
    let a = CeArgs::new(buf, layout, opts);
    let LossRows {
        classes,
        inner,
        rows,
    } = a.g;
    let t = index_targets(target.0, target.1);
    let ws = validate_targets(
        opts.op,
        &t,
        classes,
        opts.ignore_index,
        a.weight_f64().as_deref(),
    );
    let mut loss = Buffer::<T>::uninit(rows);
    for (r, l) in loss.iter_mut().enumerate() {
        let y = t[r];
        *l = if y == opts.ignore_index {
            T::of(0.0)
        } else {
            let y = y as usize;
            -(a.w(y) * a.x[a.g.base(r) + y * inner])
        };
    }
    LossForward {
        loss: reduce_rows(loss, reduction, ws),
        lse: None,
        weight_sum: ws,
    }
}

fn nll_backward<T: Float + CpuElement>(
    layout: &Layout,
    target: (&CpuStorage, &Layout),
    opts: &CeOptions<'_, CpuStorage>,
    grad: LossGrad<'_, CpuStorage>,
) -> CpuStorage {
    // Only the shape of the input matters here: the gradient is -w[y] * g at each target.
    let g = LossRows::of(opts.op, layout.shape());
    let weight = opts.weight.map(|(s, l)| s.to_vec::<T>(l));
    let t = index_targets(target.0, target.1);
    let gr = RowGrad::<T>::of(grad);
    let mut out = Buffer::<T>::filled(layout.numel(), T::of(0.0));
    for (r, &y) in t.iter().enumerate() {
        if y != opts.ignore_index {
            let y = y as usize;
            let w = weight.as_ref().map_or(T::of(1.0), |w| w[y]);
            out[g.base(r) + y * g.inner] = -(w * gr.at(r));
        }
    }
    T::wrap(out)
}

impl CpuStorage {
    /// Fused cross-entropy forward (see `Storage::cross_entropy`).
    pub fn cross_entropy(
        &self,
        layout: &Layout,
        target: CeTarget<'_, CpuStorage>,
        opts: &CeOptions<'_, CpuStorage>,
        reduction: LossReduction,
    ) -> LossForward<CpuStorage> {
        match self.dtype() {
            DType::F32 => ce_forward(
                float_op::<f32>(opts.op, self),
                layout,
                target,
                opts,
                reduction,
            ),
            _ => ce_forward(
                float_op::<f64>(opts.op, self),
                layout,
                target,
                opts,
                reduction,
            ),
        }
    }

    /// Fused cross-entropy backward (see `Storage::cross_entropy_backward`).
    pub fn cross_entropy_backward(
        &self,
        layout: &Layout,
        target: CeTarget<'_, CpuStorage>,
        opts: &CeOptions<'_, CpuStorage>,
        lse: &CpuStorage,
        grad: LossGrad<'_, CpuStorage>,
        target_grad: bool,
    ) -> (CpuStorage, Option<CpuStorage>) {
        match self.dtype() {
            DType::F32 => ce_backward(
                float_op::<f32>(opts.op, self),
                layout,
                target,
                opts,
                lse,
                grad,
                target_grad,
            ),
            _ => ce_backward(
                float_op::<f64>(opts.op, self),
                layout,
                target,
                opts,
                lse,
                grad,
                target_grad,
            ),
        }
    }

    /// NLL forward (see `Storage::nll_loss`).
    pub fn nll_loss(
        &self,
        layout: &Layout,
        target: (&CpuStorage, &Layout),
        opts: &CeOptions<'_, CpuStorage>,
        reduction: LossReduction,
    ) -> LossForward<CpuStorage> {
        match self.dtype() {
            DType::F32 => nll_forward(
                float_op::<f32>(opts.op, self),
                layout,
                target,
                opts,
                reduction,
            ),
            _ => nll_forward(
                float_op::<f64>(opts.op, self),
                layout,
                target,
                opts,
                reduction,
            ),
        }
    }

    /// NLL backward (see `Storage::nll_loss_backward`).
    pub fn nll_loss_backward(
        &self,
        layout: &Layout,
        target: (&CpuStorage, &Layout),
        opts: &CeOptions<'_, CpuStorage>,
        grad: LossGrad<'_, CpuStorage>,
    ) -> CpuStorage {
        match self.dtype() {
            DType::F32 => nll_backward::<f32>(layout, target, opts, grad),
            DType::F64 => nll_backward::<f64>(layout, target, opts, grad),
            d => panic!(
                "{}: expected a floating-point input, got {}",
                opts.op,
                d.name()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{CeOptions, CeTarget, LossGrad, LossReduction};
    use proptest::prelude::*;

    /// Per-row cross-entropy (or NLL when `nll`) computed naively in f64 from the logical
    /// values, plus the mean's divisor.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &[f64],
        shape: &[usize],
        targets: &[i64],
        probs: Option<&[f64]>,
        weight: Option<&[f64]>,
        ignore: i64,
        eps: f64,
        nll: bool,
    ) -> (Vec<f64>, f64) {
        let g = LossRows::of("ref", shape);
        let w = |k: usize| weight.map_or(1.0, |w| w[k]);
        let (mut rows, mut div) = (Vec::new(), 0.0);
        for r in 0..g.rows {
            let at = |k: usize| x[g.base(r) + k * g.inner];
            let lse = if nll {
                0.0
            } else {
                let m = (0..g.classes).map(at).fold(f64::NEG_INFINITY, f64::max);
                m + (0..g.classes).map(|k| (at(k) - m).exp()).sum::<f64>().ln()
            };
            let logp = |k: usize| at(k) - lse;
            if let Some(p) = probs {
                let t =
                    |k: usize| (1.0 - eps) * p[g.base(r) + k * g.inner] + eps / g.classes as f64;
                rows.push(-(0..g.classes).map(|k| w(k) * t(k) * logp(k)).sum::<f64>());
                div += 1.0;
                continue;
            }
            let y = targets[r];
            if y == ignore {
                rows.push(0.0);
                continue;
            }
            let y = y as usize;
            let smooth = -(0..g.classes).map(|k| w(k) * logp(k)).sum::<f64>();
            rows.push((1.0 - eps) * -w(y) * logp(y) + eps / g.classes as f64 * smooth);
            div += w(y);
        }
        (rows, div)
    }

    #[derive(Debug, Clone)]
    struct Case {
        shape: Vec<usize>,
        x: Vec<f64>,
        targets: Vec<i64>,
        probs: Option<Vec<f64>>,
        weight: Option<Vec<f64>>,
        eps: f64,
        f32: bool,
        u8_targets: bool,
        /// 0: contiguous, 1: every other class of a wider buffer, 2: transposed storage.
        layout: u8,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            1usize..4,
            1usize..6,
            prop::collection::vec(1usize..3, 0..2),
            (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
            prop_oneof![Just(0.0), 0.0..1.0f64],
            0u8..3,
        )
            .prop_flat_map(|(n, c, sp, (soft, weighted, f32, u8t), eps, layout)| {
                let mut shape = vec![n, c];
                shape.extend(&sp);
                let numel: usize = shape.iter().product();
                let rows = numel / c;
                let cls = c as i64;
                (
                    prop::collection::vec(-8.0..8.0f64, numel),
                    prop::collection::vec(prop_oneof![4 => 0..cls, 1 => Just(-1i64)], rows),
                    prop::collection::vec(0.0..1.0f64, numel),
                    prop::collection::vec(0.1..3.0f64, c),
                )
                    .prop_map(move |(x, t, p, w)| {
                        let layout = if layout == 2 && sp.is_empty() {
                            2
                        } else {
                            layout.min(1)
                        };
                        Case {
                            shape: shape.clone(),
                            x,
                            targets: t,
                            // Exactly representable in f32: the targets are stored in the other dtype.
                            probs: soft.then(|| p.iter().map(|&v| v as f32 as f64).collect()),
                            weight: weighted.then_some(w),
                            eps,
                            f32,
                            u8_targets: u8t,
                            layout,
                        }
                    })
            })
    }

    fn float_storage(v: &[f64], f32: bool) -> CpuStorage {
        if f32 {
            CpuStorage::from_vec(v.iter().map(|&e| e as f32).collect::<Vec<f32>>())
        } else {
            CpuStorage::from_vec(v.to_vec())
        }
    }

    impl Case {
        /// Ignored targets are -1 in the case; the kernel sees -100 (int64) or 255 (uint8).
        fn ignore(&self) -> i64 {
            if self.u8_targets {
                255
            } else {
                -100
            }
        }
        fn target_values(&self) -> Vec<i64> {
            let ig = self.ignore();
            self.targets
                .iter()
                .map(|&t| if t < 0 { ig } else { t })
                .collect()
        }
        /// The input as a (storage, layout) pair of the requested kind holding the values.
        fn input(&self) -> (CpuStorage, Layout) {
            let (n, c) = (self.shape[0], self.shape[1]);
            match self.layout {
                0 => (
                    float_storage(&self.x, self.f32),
                    Layout::contiguous(&self.shape),
                ),
                1 => {
                    // A buffer twice as wide in the class dim; the view takes every other class.
                    let mut wide = self.shape.clone();
                    wide[1] = 2 * c;
                    let inner: usize = self.shape[2..].iter().product();
                    let mut v = vec![f64::NAN; 2 * self.x.len()];
                    for i in 0..n {
                        for k in 0..c {
                            for s in 0..inner {
                                v[(i * 2 * c + 2 * k) * inner + s] =
                                    self.x[(i * c + k) * inner + s];
                            }
                        }
                    }
                    let l = Layout::contiguous(&wide).slice(1, 0, 2 * c, 2);
                    (float_storage(&v, self.f32), l)
                }
                _ => {
                    let mut v = vec![0.0; self.x.len()];
                    for i in 0..n {
                        for k in 0..c {
                            v[k * n + i] = self.x[i * c + k];
                        }
                    }
                    (
                        float_storage(&v, self.f32),
                        Layout::contiguous(&[c, n]).transpose(0, 1),
                    )
                }
            }
        }
        fn targets(&self) -> (CpuStorage, Layout) {
            let mut shape = vec![self.shape[0]];
            shape.extend(&self.shape[2..]);
            let t = self.target_values();
            let s = if self.u8_targets {
                CpuStorage::from_vec(t.iter().map(|&v| v as u8).collect::<Vec<u8>>())
            } else {
                CpuStorage::from_vec(t)
            };
            (s, Layout::contiguous(&shape))
        }
    }

    fn close(a: f64, b: f64, f32: bool) -> bool {
        let tol = if f32 { 1e-4 } else { 1e-10 };
        (a - b).abs() <= tol * (1.0 + b.abs()) || (a.is_nan() && b.is_nan())
    }

    const REDUCTIONS: [LossReduction; 3] =
        [LossReduction::None, LossReduction::Mean, LossReduction::Sum];

    /// A value that is often special: ±inf or NaN mixed among ordinary logits.
    fn special() -> impl Strategy<Value = f64> {
        prop_oneof![
            6 => -4.0..4.0f64,
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(f64::NAN),
        ]
    }

    /// NaN-aware equality of two kernels' results (bitwise on the value, any NaN equal to any).
    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-5 * (1.0 + y.abs())
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The contiguous-row kernel (`inner == 1`) and the strided one (`inner > 1`) give the same
        /// losses and gradients on the same rows, special values included (PyTorch: a row holding
        /// `+inf`, only `-inf`, or NaN has a NaN loss; `-inf` at a non-target class is fine).
        #[test]
        fn both_row_kernels_agree_on_special_values(
            (n, c, x, t, smooth) in (1usize..5, 1usize..6).prop_flat_map(|(n, c)| (
                Just(n), Just(c),
                prop::collection::vec(special(), n * c),
                prop::collection::vec(0..c as i64, n),
                prop_oneof![Just(0.0), Just(0.2)],
            ))
        ) {
            let xs = CpuStorage::from_vec(x.clone());
            let rows_layout = Layout::contiguous(&[n, c]);
            // The same elements seen as (1, C, N): one sample with N positions, so inner = N.
            let spatial_layout = rows_layout.transpose(0, 1).unsqueeze(0);
            let ts = CpuStorage::from_vec(t.clone());
            let (t_rows, t_spatial) = (Layout::contiguous(&[n]), Layout::contiguous(&[1, n]));
            let opts = CeOptions { weight: None, ignore_index: -100, label_smoothing: smooth, op: "cross_entropy" };
            let fa = xs.cross_entropy(&rows_layout, CeTarget::Index(&ts, &t_rows), &opts, LossReduction::None);
            let fb = xs.cross_entropy(&spatial_layout, CeTarget::Index(&ts, &t_spatial), &opts, LossReduction::None);
            let (la, lb) = (fa.loss.to_vec::<f64>(&Layout::contiguous(&[n])), fb.loss.to_vec::<f64>(&Layout::contiguous(&[n])));
            prop_assert!(same(&la, &lb), "losses {:?} vs {:?} for {:?}", la, lb, x);
            for (r, &l) in la.iter().enumerate() {
                let row = &x[r * c..(r + 1) * c];
                let poisoned = row.iter().any(|v| v.is_nan() || *v == f64::INFINITY)
                    || row.iter().all(|v| *v == f64::NEG_INFINITY);
                if poisoned {
                    prop_assert!(l.is_nan(), "row {:?} gives {} (PyTorch: nan)", row, l);
                }
            }
            let g = CpuStorage::from_vec(vec![1.0f64; n]);
            let gl = Layout::contiguous(&[n]);
            let gl2 = Layout::contiguous(&[1, n]);
            let (ga, _) = xs.cross_entropy_backward(&rows_layout, CeTarget::Index(&ts, &t_rows), &opts,
                fa.lse.as_ref().unwrap(), LossGrad::Rows(&g, &gl), false);
            let (gb, _) = xs.cross_entropy_backward(&spatial_layout, CeTarget::Index(&ts, &t_spatial), &opts,
                fb.lse.as_ref().unwrap(), LossGrad::Rows(&g, &gl2), false);
            let ga = ga.to_vec::<f64>(&Layout::contiguous(&[n, c]));
            // The strided kernel's gradient has the (1, C, N) shape: read it back as (N, C).
            let gb = gb.to_vec::<f64>(&Layout::contiguous(&[1, c, n]).squeeze(0).transpose(0, 1));
            prop_assert!(same(&ga, &gb), "gradients {:?} vs {:?} for {:?}", ga, gb, x);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn cross_entropy_forward_and_backward(c in case()) {
            let (xs, xl) = c.input();
            let (ts, tl) = c.targets();
            let ps = c.probs.as_ref().map(|p| float_storage(p, !c.f32));
            let plc = Layout::contiguous(&c.shape);
            let ws = c.weight.as_ref().map(|w| float_storage(w, c.f32));
            let wl = Layout::contiguous(&[c.shape[1]]);
            let opts = CeOptions {
                weight: ws.as_ref().map(|s| (s, &wl)),
                ignore_index: c.ignore(),
                label_smoothing: c.eps,
                op: "cross_entropy",
            };
            let target = match &ps {
                Some(p) => CeTarget::Prob(p, &plc),
                None => CeTarget::Index(&ts, &tl),
            };
            let (rows, div) = reference(
                &c.x, &c.shape, &c.target_values(), c.probs.as_deref(), c.weight.as_deref(),
                c.ignore(), c.eps, false,
            );
            for red in REDUCTIONS {
                let f = xs.cross_entropy(&xl, target, &opts, red);
                let got = f.loss.to_vec::<f64>(&Layout::contiguous(&[f.loss.len()]));
                let want = match red {
                    LossReduction::None => rows.clone(),
                    LossReduction::Sum => vec![rows.iter().sum()],
                    LossReduction::Mean => vec![rows.iter().sum::<f64>() / div],
                };
                prop_assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(&want) {
                    prop_assert!(close(*a, *b, c.f32), "{:?}: {} vs {}", red, a, b);
                }
                prop_assert!((f.weight_sum - div).abs() < 1e-6);
                // Backward with a per-row or scalar upstream gradient against the analytic
                // formula, computed naively.
                let nrows = rows.len();
                let gvals: Vec<f64> = (0..nrows).map(|r| 0.5 + r as f64 * 0.25).collect();
                let gs = float_storage(&gvals, c.f32);
                let gl_rows = Layout::contiguous(&[nrows]);
                let gl_one = Layout::contiguous(&[1]);
                let (grad, scale): (LossGrad<'_, CpuStorage>, Box<dyn Fn(usize) -> f64>) = match red {
                    LossReduction::None => (LossGrad::Rows(&gs, &gl_rows), Box::new(|r| gvals[r])),
                    LossReduction::Sum => (LossGrad::Reduced(&gs, &gl_one, 1.0), Box::new(|_| 0.5)),
                    LossReduction::Mean => (LossGrad::Reduced(&gs, &gl_one, 1.0 / div), Box::new(|_| 0.5 / div)),
                };
                let lse = f.lse.as_ref().unwrap();
                let (gi, gt) = xs.cross_entropy_backward(&xl, target, &opts, lse, grad, ps.is_some());
                let gi = gi.to_vec::<f64>(&Layout::contiguous(&[c.x.len()]));
                let geo = LossRows::of("t", &c.shape);
                let w = |k: usize| c.weight.as_ref().map_or(1.0, |w| w[k]);
                let wsum: f64 = (0..geo.classes).map(w).sum();
                let tv = c.target_values();
                for r in 0..geo.rows {
                    let at = |k: usize| c.x[geo.base(r) + k * geo.inner];
                    let m = (0..geo.classes).map(at).fold(f64::NEG_INFINITY, f64::max);
                    let z = m + (0..geo.classes).map(|k| (at(k) - m).exp()).sum::<f64>().ln();
                    let sm = c.eps / geo.classes as f64;
                    for k in 0..geo.classes {
                        let p = (at(k) - z).exp();
                        let want = match &c.probs {
                            Some(pr) => {
                                let t = |j: usize| (1.0 - c.eps) * pr[geo.base(r) + j * geo.inner] + sm;
                                let s: f64 = (0..geo.classes).map(|j| w(j) * t(j)).sum();
                                scale(r) * (p * s - w(k) * t(k))
                            }
                            None if tv[r] == c.ignore() => 0.0,
                            None => {
                                let y = tv[r] as usize;
                                let wy = (1.0 - c.eps) * w(y);
                                let mut d = (wy + sm * wsum) * p - sm * w(k);
                                if k == y {
                                    d -= wy;
                                }
                                scale(r) * d
                            }
                        };
                        let got = gi[geo.base(r) + k * geo.inner];
                        prop_assert!(close(got, want, c.f32), "grad r{} k{}: {} vs {}", r, k, got, want);
                        if let (Some(gt), Some(_)) = (&gt, &c.probs) {
                            let gt = gt.to_vec::<f64>(&Layout::contiguous(&[c.x.len()]));
                            let want = -scale(r) * (1.0 - c.eps) * w(k) * (at(k) - z);
                            prop_assert!(close(gt[geo.base(r) + k * geo.inner], want, c.f32));
                        }
                    }
                }
            }
        }

        #[test]
        fn nll_forward_and_backward(c in case()) {
            let (xs, xl) = c.input();
            let (ts, tl) = c.targets();
            let ws = c.weight.as_ref().map(|w| float_storage(w, c.f32));
            let wl = Layout::contiguous(&[c.shape[1]]);
            let opts = CeOptions {
                weight: ws.as_ref().map(|s| (s, &wl)),
                ignore_index: c.ignore(),
                label_smoothing: 0.0,
                op: "nll_loss",
            };
            let tv = c.target_values();
            let (rows, div) = reference(&c.x, &c.shape, &tv, None, c.weight.as_deref(), c.ignore(), 0.0, true);
            let f = xs.nll_loss(&xl, (&ts, &tl), &opts, LossReduction::None);
            let got = f.loss.to_vec::<f64>(&Layout::contiguous(&[rows.len()]));
            for (a, b) in got.iter().zip(&rows) {
                prop_assert!(close(*a, *b, c.f32));
            }
            let s = xs.nll_loss(&xl, (&ts, &tl), &opts, LossReduction::Mean);
            prop_assert!(close(s.loss.to_vec::<f64>(&Layout::contiguous(&[1]))[0], rows.iter().sum::<f64>() / div, c.f32));
            let one = float_storage(&[2.0], c.f32);
            let l1 = Layout::contiguous(&[1]);
            let g = xs.nll_loss_backward(&xl, (&ts, &tl), &opts, LossGrad::Reduced(&one, &l1, 1.0));
            let g = g.to_vec::<f64>(&Layout::contiguous(&[c.x.len()]));
            let geo = LossRows::of("t", &c.shape);
            for r in 0..geo.rows {
                for k in 0..geo.classes {
                    let want = if tv[r] == k as i64 {
                        -2.0 * c.weight.as_ref().map_or(1.0, |w| w[k])
                    } else {
                        0.0
                    };
                    prop_assert!(close(g[geo.base(r) + k * geo.inner], want, c.f32));
                }
            }
        }
    }

    #[test]
    fn parallel_rows_do_not_change_the_result() {
        // Enough rows x classes for the parallel path; the sum is accumulated in f64 in order,
        // so one thread and many give the same bits.
        let (n, c) = (700, 97);
        let x: Vec<f32> = (0..n * c)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
            .collect();
        let t: Vec<i64> = (0..n).map(|i| (i * 31 % c) as i64).collect();
        let (xs, ts) = (CpuStorage::from_vec(x), CpuStorage::from_vec(t));
        let (xl, tl) = (Layout::contiguous(&[n, c]), Layout::contiguous(&[n]));
        let opts = CeOptions {
            weight: None,
            ignore_index: -100,
            label_smoothing: 0.1,
            op: "cross_entropy",
        };
        let run = || {
            let f = xs.cross_entropy(&xl, CeTarget::Index(&ts, &tl), &opts, LossReduction::Mean);
            let one = CpuStorage::from_vec(vec![1.0f32]);
            let l1 = Layout::contiguous(&[1]);
            let (g, _) = xs.cross_entropy_backward(
                &xl,
                CeTarget::Index(&ts, &tl),
                &opts,
                f.lse.as_ref().unwrap(),
                LossGrad::Reduced(&one, &l1, 1.0 / f.weight_sum),
                false,
            );
            (
                f.loss.as_slice::<f32>().to_vec(),
                g.as_slice::<f32>().to_vec(),
            )
        };
        let many = run();
        let single = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(run);
        assert_eq!(many, single);
        // Each row's gradient sums to zero (softmax minus a distribution).
        for r in 0..n {
            let s: f32 = many.1[r * c..(r + 1) * c].iter().sum();
            assert!(s.abs() < 1e-6);
        }
    }

    #[test]
    #[should_panic(
        expected = "cross_entropy: target 4 is out of bounds: class-index targets must be in [0, 4) or equal ignore_index (-100)"
    )]
    fn out_of_range_class() {
        let xs = CpuStorage::from_vec(vec![0.0f32; 8]);
        let ts = CpuStorage::from_vec(vec![1i64, 4]);
        let opts = CeOptions {
            weight: None,
            ignore_index: -100,
            label_smoothing: 0.0,
            op: "cross_entropy",
        };
        xs.cross_entropy(
            &Layout::contiguous(&[2, 4]),
            CeTarget::Index(&ts, &Layout::contiguous(&[2])),
            &opts,
            LossReduction::Mean,
        );
    }
}
