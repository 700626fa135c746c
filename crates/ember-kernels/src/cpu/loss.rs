//! CPU kernels of the fused losses. Cross-entropy computes, per row, the max and the
//! max-subtracted `logsumexp` of the C scores, and the row loss from them (no log-softmax tensor is
//! ever materialised); the backward rebuilds `softmax = exp(x - lse)` from the saved `lse` and
//! writes `g * (softmax * Σ w t' - w t')` in the same pass. Targets are validated on the calling
//! thread before any parallel work, so a bad class index panics with a clean message.

use super::map::map;
use super::num::Float;
use super::par::{n_chunks, ELEMENTWISE_GRAIN};
use super::{Buffer, CpuElement, CpuStorage};
use crate::dtype::DType;
use crate::layout::Layout;
use crate::loss::{CeOptions, CeTarget, LossForward, LossGrad, LossReduction};
use rayon::prelude::*;
use std::borrow::Cow;

/// Row geometry of a contiguous `(N, C, d1, …)` or `(C)` input: row `r` has its class `c` at
/// `base(r) + c * inner`.
#[derive(Clone, Copy, Debug)]
struct Geom {
    classes: usize,
    inner: usize,
    rows: usize,
}

impl Geom {
    fn of(op: &str, shape: &[usize]) -> Geom {
        match shape.len() {
            0 => panic!("{op}: expected an input with a class dimension, got a 0-dim tensor"),
            1 => Geom {
                classes: shape[0],
                inner: 1,
                rows: 1,
            },
            _ => {
                let inner: usize = shape[2..].iter().product();
                Geom {
                    classes: shape[1],
                    inner,
                    rows: shape[0] * inner,
                }
            }
        }
    }

    #[inline(always)]
    fn base(&self, r: usize) -> usize {
        (r / self.inner) * self.classes * self.inner + r % self.inner
    }
}

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

/// Class-index targets as i64 (borrowed when they already are contiguous int64).
fn index_targets<'a>(op: &str, s: &'a CpuStorage, layout: &Layout) -> Cow<'a, [i64]> {
    if !s.dtype().is_int() {
        panic!(
            "{op}: expected class-index targets of an integer dtype, got {}",
            s.dtype().name()
        );
    }
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

/// `max + ln Σ exp(x - max)` over one row (`stride` apart), NaN-propagating.
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
    if m == T::of(f64::NEG_INFINITY) || m == T::of(f64::INFINITY) {
        // All -inf (or a +inf): x - max would be NaN; PyTorch's log_softmax gives m here.
        return m;
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
    g: Geom,
    weight: Option<Vec<T>>,
    eps: T,
    smooth: T,
    keep: T,
}

impl<'a, T: Float + CpuElement> CeArgs<'a, T> {
    fn new(buf: &'a [T], layout: &Layout, opts: &CeOptions<'_, CpuStorage>) -> Self {
        let g = Geom::of(opts.op, layout.shape());
        let weight = opts.weight.map(|(s, l)| {
            if l.numel() != g.classes {
                panic!(
                    "{}: weight must have {} elements (one per class), got shape {:?}",
                    opts.op,
                    g.classes,
                    l.shape()
                );
            }
            s.to_vec::<T>(l)
        });
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

fn ce_forward<T: Float + CpuElement>(
    buf: &[T],
    layout: &Layout,
    target: CeTarget<'_, CpuStorage>,
    opts: &CeOptions<'_, CpuStorage>,
    reduction: LossReduction,
) -> LossForward<CpuStorage> {
    let a = CeArgs::new(buf, layout, opts);
    let Geom {
        classes,
        inner,
        rows,
    } = a.g;
    let mut loss = Buffer::<T>::uninit(rows);
    let mut lse = Buffer::<T>::uninit(rows);
    let x = &*a.x;
    let weight_sum = match target {
        CeTarget::Index(ts, tl) => {
            let t = index_targets(opts.op, ts, tl);
            let ws = validate_targets(
                opts.op,
                &t,
                classes,
                opts.ignore_index,
                a.weight_f64().as_deref(),
            );
            let ignore = opts.ignore_index;
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
            if tl.shape() != layout.shape() {
                panic!(
                    "{}: probability targets must have the input's shape {:?}, got {:?}",
                    opts.op,
                    layout.shape(),
                    tl.shape()
                );
            }
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

fn ce_backward<T: Float + CpuElement>(
    buf: &[T],
    layout: &Layout,
    target: CeTarget<'_, CpuStorage>,
    opts: &CeOptions<'_, CpuStorage>,
    lse: &CpuStorage,
    grad: LossGrad<'_, CpuStorage>,
    target_grad: bool,
) -> (CpuStorage, Option<CpuStorage>) {
    let a = CeArgs::new(buf, layout, opts);
    let Geom { classes, inner, .. } = a.g;
    let lse = lse.as_slice::<T>();
    let gr = RowGrad::<T>::of(grad);
    let x = &*a.x;
    let block = classes * inner;
    let mut out = Buffer::<T>::uninit(x.len());
    match target {
        CeTarget::Index(ts, tl) => {
            let t = index_targets(opts.op, ts, tl);
            let wsum = match &a.weight {
                Some(w) => w.iter().fold(T::of(0.0), |s, &v| s + v),
                None => T::of(classes as f64),
            };
            let ignore = opts.ignore_index;
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
    let Geom {
        classes,
        inner,
        rows,
    } = a.g;
    let t = index_targets(opts.op, target.0, target.1);
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
    let g = Geom::of(opts.op, layout.shape());
    let weight = opts.weight.map(|(s, l)| s.to_vec::<T>(l));
    let t = index_targets(opts.op, target.0, target.1);
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
