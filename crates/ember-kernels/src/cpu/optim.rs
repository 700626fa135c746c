//! Fused CPU optimizer updates and the norm reduction used by gradient clipping.
//!
//! Every update is one pass that reads each element of the parameter, its gradient and its state
//! buffers once and writes the parameter and the state back, with PyTorch's single-tensor
//! formulas in PyTorch's order of operations (so the rounding matches). The options that change
//! the formula (weight decay, amsgrad, nesterov, …) are const generics: each combination gets its
//! own branch-free loop that LLVM vectorises. Large tensors are split into chunks run by rayon.

use super::map::{map, zip_inplace};
use super::num::Float;
use super::par::{n_chunks, ELEMENTWISE_GRAIN};
use super::simd::with_avx2;
use super::{CpuElement, CpuStorage};
use crate::layout::Layout;
use crate::optim::{AdagradStep, AdamStep, RmspropStep, SgdStep};

/// Splits each non-empty state slice at `mid` (empty slices stand for absent state buffers).
#[allow(clippy::type_complexity)]
fn split_states<'a, T, const K: usize>(
    st: [&'a mut [T]; K],
    mid: usize,
) -> ([&'a mut [T]; K], [&'a mut [T]; K]) {
    let mut l: [&'a mut [T]; K] = std::array::from_fn(|_| Default::default());
    let mut r: [&'a mut [T]; K] = std::array::from_fn(|_| Default::default());
    for (k, s) in st.into_iter().enumerate() {
        if !s.is_empty() {
            let (a, b) = s.split_at_mut(mid);
            l[k] = a;
            r[k] = b;
        }
    }
    (l, r)
}

fn fused_rec<T: Send + Sync, const K: usize, F>(
    p: &mut [T],
    g: &[T],
    st: [&mut [T]; K],
    size: usize,
    f: &F,
) where
    F: Fn(&mut [T], &[T], [&mut [T]; K]) + Sync,
{
    if p.len() <= size {
        f(p, g, st);
        return;
    }
    // Split on a chunk boundary; rayon::join needs no heap allocation.
    let mid = (p.len() / size).div_ceil(2) * size;
    let (p0, p1) = p.split_at_mut(mid);
    let (g0, g1) = g.split_at(mid);
    let (s0, s1) = split_states(st, mid);
    rayon::join(
        || fused_rec(p0, g0, s0, size, f),
        || fused_rec(p1, g1, s1, size, f),
    );
}

/// Runs `f(p, g, states)` over contiguous operands of equal length, in parallel chunks when
/// large. Each state is either empty (absent) or as long as `p`.
fn fused<T: Send + Sync, const K: usize, F>(p: &mut [T], g: &[T], st: [&mut [T]; K], f: F)
where
    F: Fn(&mut [T], &[T], [&mut [T]; K]) + Sync,
{
    let n = p.len();
    let chunks = n_chunks(n, ELEMENTWISE_GRAIN);
    if chunks <= 1 {
        f(p, g, st);
        return;
    }
    // Chunks are whole cache lines so neighbouring threads never write the same line.
    let size = n.div_ceil(chunks).next_multiple_of(64);
    fused_rec(p, g, st, size, &f);
}

/// Runs the fused update over a parameter and gradient of any layouts: strided operands (rare:
/// parameters are normally contiguous leaves) go through contiguous copies.
fn strided<T: CpuElement, const K: usize, F>(
    p: &mut [T],
    lp: &Layout,
    g: &[T],
    lg: &Layout,
    st: [&mut [T]; K],
    f: F,
) where
    F: Fn(&mut [T], &[T], [&mut [T]; K]) + Sync,
{
    let gcopy;
    let g = match lg.contiguous_range() {
        Some((s, e)) => &g[s..e],
        None => {
            gcopy = map(g, lg, |x| x);
            &gcopy[..]
        }
    };
    match lp.contiguous_range() {
        Some((s, e)) => fused(&mut p[s..e], g, st, f),
        None => {
            let mut tmp = map(p, lp, |x| x);
            fused(&mut tmp, g, st, f);
            zip_inplace(p, lp, &tmp, &Layout::contiguous(lp.shape()), |_, x| x);
        }
    }
}

fn check_shapes(op: &str, lp: &Layout, lg: &Layout) {
    if lp.shape() != lg.shape() {
        panic!(
            "{op}: the gradient has shape {:?} but the parameter has shape {:?}",
            lg.shape(),
            lp.shape()
        );
    }
}

fn grad_slice<'a, T: CpuElement>(op: &str, g: &'a CpuStorage) -> &'a [T] {
    T::unwrap_ref(g).unwrap_or_else(|| {
        panic!(
            "{op}: the gradient has dtype {} but the parameter has dtype {}",
            g.dtype(),
            T::DTYPE
        )
    })
}

/// A state buffer as a slice of `n` elements (empty when absent).
fn state_slice<'a, T: CpuElement>(
    op: &str,
    what: &str,
    s: Option<&'a mut CpuStorage>,
    n: usize,
) -> &'a mut [T] {
    let Some(s) = s else {
        return &mut [];
    };
    let d = s.dtype();
    let b = T::unwrap_mut(s).unwrap_or_else(|| {
        panic!(
            "{op}: the {what} state has dtype {d} but the parameter has dtype {}",
            T::DTYPE
        )
    });
    if b.len() != n {
        panic!(
            "{op}: the {what} state has {} elements but the parameter has {n}",
            b.len()
        );
    }
    if n == 0 {
        return &mut [];
    }
    b
}

/// Runs `$body` with `$T` the parameter's float type and `$p` its typed buffer.
macro_rules! float_param {
    ($s:expr, $op:expr, $T:ident, $p:ident => $body:expr) => {
        match $s {
            CpuStorage::F32($p) => {
                type $T = f32;
                $body
            }
            CpuStorage::F64($p) => {
                type $T = f64;
                $body
            }
            other => panic!(
                "{}: expected a floating-point parameter, got {}",
                $op,
                other.dtype()
            ),
        }
    };
}

/// `-1` when maximizing, else `1` (multiplying by it negates exactly).
fn sign<T: Float>(maximize: bool) -> T {
    T::of(if maximize { -1.0 } else { 1.0 })
}

// ----- SGD -----

#[derive(Clone, Copy)]
struct SgdC<T> {
    nlr: T,
    wd: T,
    sign: T,
    mom: T,
    damp1: T,
}

/// See [`sgd_plain_impl`]; dispatches to an AVX2 build when available.
fn sgd_plain<T: Float, const WD: bool>(p: &mut [T], g: &[T], c: SgdC<T>) {
    with_avx2!(sgd_plain_impl::<T, WD>[T: Float, const WD: bool](p: &mut [T], g: &[T], c: SgdC<T>))
}

/// `p -= lr * d` with `d = ±g (+ wd·p)`.
#[inline(always)]
fn sgd_plain_impl<T: Float, const WD: bool>(p: &mut [T], g: &[T], c: SgdC<T>) {
    let g = &g[..p.len()];
    for (p, &g) in p.iter_mut().zip(g) {
        let mut d = g * c.sign;
        if WD {
            d = d + c.wd * *p;
        }
        *p = *p + c.nlr * d;
    }
}

/// See [`sgd_momentum_impl`]; dispatches to an AVX2 build when available.
fn sgd_momentum<T: Float, const WD: bool, const FIRST: bool, const NEST: bool>(
    p: &mut [T],
    g: &[T],
    b: &mut [T],
    c: SgdC<T>,
) {
    with_avx2!(sgd_momentum_impl::<T, WD, FIRST, NEST>[T: Float, const WD: bool, const FIRST: bool, const NEST: bool](p: &mut [T], g: &[T], b: &mut [T], c: SgdC<T>))
}

/// Momentum SGD: `buf = momentum·buf + (1 − dampening)·d` (or `buf = d` on the first step), then
/// `p -= lr · (nesterov ? d + momentum·buf : buf)`.
#[inline(always)]
fn sgd_momentum_impl<T: Float, const WD: bool, const FIRST: bool, const NEST: bool>(
    p: &mut [T],
    g: &[T],
    b: &mut [T],
    c: SgdC<T>,
) {
    let n = p.len();
    let (g, b) = (&g[..n], &mut b[..n]);
    for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
        let mut d = g * c.sign;
        if WD {
            d = d + c.wd * *p;
        }
        *b = if FIRST { d } else { *b * c.mom + c.damp1 * d };
        let u = if NEST { d + c.mom * *b } else { *b };
        *p = *p + c.nlr * u;
    }
}

fn sgd<T: Float + CpuElement>(
    p: &mut [T],
    lp: &Layout,
    g: &[T],
    lg: &Layout,
    buf: &mut [T],
    h: &SgdStep,
) {
    let c = SgdC {
        nlr: T::of(-h.lr),
        wd: T::of(h.weight_decay),
        sign: sign(h.maximize),
        mom: T::of(h.momentum),
        damp1: T::of(1.0 - h.dampening),
    };
    let wd = h.weight_decay != 0.0;
    if h.momentum == 0.0 {
        if wd {
            strided(p, lp, g, lg, [], |p, g, []| sgd_plain::<T, true>(p, g, c));
        } else {
            strided(p, lp, g, lg, [], |p, g, []| sgd_plain::<T, false>(p, g, c));
        }
        return;
    }
    macro_rules! go {
        ($wd:literal, $first:literal, $nest:literal) => {
            strided(p, lp, g, lg, [buf], |p, g, [b]| {
                sgd_momentum::<T, $wd, $first, $nest>(p, g, b, c)
            })
        };
    }
    match (wd, h.first_step, h.nesterov) {
        (false, false, false) => go!(false, false, false),
        (false, false, true) => go!(false, false, true),
        (false, true, false) => go!(false, true, false),
        (false, true, true) => go!(false, true, true),
        (true, false, false) => go!(true, false, false),
        (true, false, true) => go!(true, false, true),
        (true, true, false) => go!(true, true, false),
        (true, true, true) => go!(true, true, true),
    }
}

// ----- Adam / AdamW -----

#[derive(Clone, Copy)]
struct AdamC<T> {
    sign: T,
    wd: T,
    decay: T,
    w: T,
    w1: T,
    lerp_small: bool,
    b2: T,
    c2: T,
    bc2s: T,
    eps: T,
    nss: T,
}

const WD_NONE: u8 = 0;
const WD_L2: u8 = 1;
const WD_DECOUPLED: u8 = 2;

/// See [`adam_chunk_impl`]; dispatches to an AVX2 build when available.
fn adam_chunk<T: Float, const WD: u8, const AMS: bool>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    vmax: &mut [T],
    c: AdamC<T>,
) {
    with_avx2!(adam_chunk_impl::<T, WD, AMS>[T: Float, const WD: u8, const AMS: bool](p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], vmax: &mut [T], c: AdamC<T>))
}

/// One Adam pass: `m = lerp(m, d, 1 − β1)`, `v = β2·v + (1 − β2)·d·d`, optional running max,
/// `p += −step_size · m / (sqrt(v) / sqrt(bc2) + eps)`.
#[inline(always)]
fn adam_chunk_impl<T: Float, const WD: u8, const AMS: bool>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    vmax: &mut [T],
    c: AdamC<T>,
) {
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    let vmax = if AMS { &mut vmax[..n] } else { &mut vmax[..0] };
    for i in 0..n {
        let pi = p[i];
        let mut d = g[i] * c.sign;
        if WD == WD_L2 {
            d = d + c.wd * pi;
        }
        // PyTorch's lerp: the form chosen by the weight keeps it exact at the ends.
        let mi = m[i];
        let mi = if c.lerp_small {
            mi + c.w * (d - mi)
        } else {
            d - (d - mi) * c.w1
        };
        m[i] = mi;
        let vi = v[i] * c.b2 + c.c2 * d * d;
        v[i] = vi;
        let vi = if AMS {
            // torch.maximum (NaN wins), written as selects so the loop vectorises.
            let vm = vmax[i];
            #[allow(clippy::eq_op)]
            let x = if (vi > vm) | (vi != vi) { vi } else { vm };
            vmax[i] = x;
            x
        } else {
            vi
        };
        let denom = vi.sqrt() / c.bc2s + c.eps;
        let pi = if WD == WD_DECOUPLED { pi * c.decay } else { pi };
        p[i] = pi + c.nss * mi / denom;
    }
}

fn adam<T: Float + CpuElement>(
    p: &mut [T],
    lp: &Layout,
    g: &[T],
    lg: &Layout,
    states: [&mut [T]; 3],
    h: &AdamStep,
) {
    let w = 1.0 - h.beta1;
    let c = AdamC {
        sign: sign(h.maximize),
        wd: T::of(h.weight_decay),
        decay: T::of(1.0 - h.lr * h.weight_decay),
        w: T::of(w),
        w1: T::of(1.0 - w),
        lerp_small: w.abs() < 0.5,
        b2: T::of(h.beta2),
        c2: T::of(1.0 - h.beta2),
        bc2s: T::of(h.bias_correction2_sqrt),
        eps: T::of(h.eps),
        nss: T::of(-h.step_size),
    };
    let wd = match (h.weight_decay != 0.0, h.decoupled_weight_decay) {
        (false, _) => WD_NONE,
        (true, false) => WD_L2,
        (true, true) => WD_DECOUPLED,
    };
    macro_rules! go {
        ($wd:expr, $ams:literal) => {
            strided(p, lp, g, lg, states, |p, g, [m, v, vm]| {
                adam_chunk::<T, { $wd }, $ams>(p, g, m, v, vm, c)
            })
        };
    }
    match (wd, h.amsgrad) {
        (WD_NONE, false) => go!(WD_NONE, false),
        (WD_NONE, true) => go!(WD_NONE, true),
        (WD_L2, false) => go!(WD_L2, false),
        (WD_L2, true) => go!(WD_L2, true),
        (_, false) => go!(WD_DECOUPLED, false),
        (_, true) => go!(WD_DECOUPLED, true),
    }
}

// ----- RMSprop -----

#[derive(Clone, Copy)]
struct RmsC<T> {
    sign: T,
    wd: T,
    alpha: T,
    c1: T,
    w: T,
    w1: T,
    lerp_small: bool,
    eps: T,
    mom: T,
    nlr: T,
}

/// See [`rms_chunk_impl`]; dispatches to an AVX2 build when available.
fn rms_chunk<T: Float, const WD: bool, const CENTERED: bool, const MOM: bool>(
    p: &mut [T],
    g: &[T],
    sq: &mut [T],
    buf: &mut [T],
    ga: &mut [T],
    c: RmsC<T>,
) {
    with_avx2!(rms_chunk_impl::<T, WD, CENTERED, MOM>[T: Float, const WD: bool, const CENTERED: bool, const MOM: bool](p: &mut [T], g: &[T], sq: &mut [T], buf: &mut [T], ga: &mut [T], c: RmsC<T>))
}

/// One RMSprop pass: `sq = α·sq + (1 − α)·d·d`; centered: `ga = lerp(ga, d, 1 − α)`,
/// `avg = sqrt(sq − ga·ga) + eps`, else `avg = sqrt(sq) + eps`; with momentum
/// `buf = μ·buf + d / avg`, `p −= lr·buf`, else `p −= lr · d / avg`.
#[inline(always)]
fn rms_chunk_impl<T: Float, const WD: bool, const CENTERED: bool, const MOM: bool>(
    p: &mut [T],
    g: &[T],
    sq: &mut [T],
    buf: &mut [T],
    ga: &mut [T],
    c: RmsC<T>,
) {
    let n = p.len();
    let (g, sq) = (&g[..n], &mut sq[..n]);
    let buf = if MOM { &mut buf[..n] } else { &mut buf[..0] };
    let ga = if CENTERED { &mut ga[..n] } else { &mut ga[..0] };
    for i in 0..n {
        let pi = p[i];
        let mut d = g[i] * c.sign;
        if WD {
            d = d + c.wd * pi;
        }
        let s = sq[i] * c.alpha + c.c1 * d * d;
        sq[i] = s;
        let avg = if CENTERED {
            let a = ga[i];
            let a = if c.lerp_small {
                a + c.w * (d - a)
            } else {
                d - (d - a) * c.w1
            };
            ga[i] = a;
            // addcmul(ga, ga, value=-1): s + (−1·a)·a
            (s + -a * a).sqrt()
        } else {
            s.sqrt()
        } + c.eps;
        if MOM {
            let b = buf[i] * c.mom + d / avg;
            buf[i] = b;
            p[i] = pi + c.nlr * b;
        } else {
            p[i] = pi + c.nlr * d / avg;
        }
    }
}

fn rmsprop<T: Float + CpuElement>(
    p: &mut [T],
    lp: &Layout,
    g: &[T],
    lg: &Layout,
    states: [&mut [T]; 3],
    h: &RmspropStep,
) {
    let w = 1.0 - h.alpha;
    let c = RmsC {
        sign: sign(h.maximize),
        wd: T::of(h.weight_decay),
        alpha: T::of(h.alpha),
        c1: T::of(1.0 - h.alpha),
        w: T::of(w),
        w1: T::of(1.0 - w),
        lerp_small: w.abs() < 0.5,
        eps: T::of(h.eps),
        mom: T::of(h.momentum),
        nlr: T::of(-h.lr),
    };
    macro_rules! go {
        ($wd:literal, $c:literal, $m:literal) => {
            strided(p, lp, g, lg, states, |p, g, [sq, b, ga]| {
                rms_chunk::<T, $wd, $c, $m>(p, g, sq, b, ga, c)
            })
        };
    }
    match (h.weight_decay != 0.0, h.centered, h.momentum > 0.0) {
        (false, false, false) => go!(false, false, false),
        (false, false, true) => go!(false, false, true),
        (false, true, false) => go!(false, true, false),
        (false, true, true) => go!(false, true, true),
        (true, false, false) => go!(true, false, false),
        (true, false, true) => go!(true, false, true),
        (true, true, false) => go!(true, true, false),
        (true, true, true) => go!(true, true, true),
    }
}

// ----- Adagrad -----

/// See [`adagrad_chunk_impl`]; dispatches to an AVX2 build when available.
fn adagrad_chunk<T: Float, const WD: bool>(p: &mut [T], g: &[T], sum: &mut [T], c: [T; 4]) {
    with_avx2!(adagrad_chunk_impl::<T, WD>[T: Float, const WD: bool](p: &mut [T], g: &[T], sum: &mut [T], c: [T; 4]))
}

/// One Adagrad pass: `sum += d·d`, `p −= clr · d / (sqrt(sum) + eps)`.
#[inline(always)]
fn adagrad_chunk_impl<T: Float, const WD: bool>(p: &mut [T], g: &[T], sum: &mut [T], c: [T; 4]) {
    let [sign, wd, eps, nclr] = c;
    let n = p.len();
    let (g, sum) = (&g[..n], &mut sum[..n]);
    for i in 0..n {
        let pi = p[i];
        let mut d = g[i] * sign;
        if WD {
            d = d + wd * pi;
        }
        // addcmul_(grad, grad, value=1): sum + (1·d)·d
        let s = sum[i] + d * d;
        sum[i] = s;
        p[i] = pi + nclr * d / (s.sqrt() + eps);
    }
}

fn adagrad<T: Float + CpuElement>(
    p: &mut [T],
    lp: &Layout,
    g: &[T],
    lg: &Layout,
    sum: &mut [T],
    h: &AdagradStep,
) {
    let c = [
        sign(h.maximize),
        T::of(h.weight_decay),
        T::of(h.eps),
        T::of(-h.clr),
    ];
    if h.weight_decay != 0.0 {
        strided(p, lp, g, lg, [sum], |p, g, [s]| {
            adagrad_chunk::<T, true>(p, g, s, c)
        });
    } else {
        strided(p, lp, g, lg, [sum], |p, g, [s]| {
            adagrad_chunk::<T, false>(p, g, s, c)
        });
    }
}

// ----- norms -----

/// Combines partial results over `x` in a fixed binary tree of `ELEMENTWISE_GRAIN` leaves, so the
/// result depends only on `x.len()`, never on the number of threads.
fn tree_reduce<T: Float>(x: &[T], kind: NormKind, ord: f64) -> f64 {
    if x.len() <= ELEMENTWISE_GRAIN {
        return norm_leaf(x, kind, ord);
    }
    let mid = x.len().div_ceil(ELEMENTWISE_GRAIN).div_ceil(2) * ELEMENTWISE_GRAIN;
    let (a, b) = x.split_at(mid);
    let (ra, rb) = rayon::join(|| tree_reduce(a, kind, ord), || tree_reduce(b, kind, ord));
    match kind {
        NormKind::Max => nan_max(ra, rb),
        NormKind::Min => nan_min(ra, rb),
        _ => ra + rb,
    }
}

/// What a norm accumulates.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NormKind {
    Sq,
    Abs,
    NonZero,
    Pow,
    Max,
    Min,
}

/// `Σ f(x)` in f64 with eight independent accumulators (so the loop vectorises).
#[inline(always)]
fn sum8<T: Float>(x: &[T], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            acc[k] += f(c[k].into());
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|&v| f(v.into())).sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || a > b {
        a
    } else {
        b
    }
}

fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || a < b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn norm_leaf_impl<T: Float>(x: &[T], kind: NormKind, ord: f64) -> f64 {
    let abs = |v: T| Into::<f64>::into(v).abs();
    match kind {
        NormKind::Sq => sum8(x, |v| v * v),
        NormKind::Abs => sum8(x, f64::abs),
        NormKind::NonZero => sum8(x, |v| (v != 0.0) as u8 as f64),
        NormKind::Pow => sum8(x, |v| v.abs().powf(ord)),
        NormKind::Max => x.iter().fold(0.0, |m, &v| nan_max(abs(v), m)),
        NormKind::Min => x.iter().fold(f64::INFINITY, |m, &v| nan_min(abs(v), m)),
    }
}

/// See [`norm_leaf_impl`]; dispatches to an AVX2 build when available.
fn norm_leaf<T: Float>(x: &[T], kind: NormKind, ord: f64) -> f64 {
    with_avx2!(norm_leaf_impl::<T>[T: Float](x: &[T], kind: NormKind, ord: f64) -> f64)
}

fn norm_pow_sum<T: Float + CpuElement>(x: &[T], layout: &Layout, ord: f64) -> f64 {
    let copy;
    let x = match layout.contiguous_range() {
        Some((s, e)) => &x[s..e],
        None => {
            copy = map(x, layout, |v| v);
            &copy[..]
        }
    };
    let kind = if ord == 2.0 {
        NormKind::Sq
    } else if ord == 1.0 {
        NormKind::Abs
    } else if ord == 0.0 {
        NormKind::NonZero
    } else if ord == f64::INFINITY {
        NormKind::Max
    } else if ord == f64::NEG_INFINITY {
        NormKind::Min
    } else {
        NormKind::Pow
    };
    tree_reduce(x, kind, ord)
}

impl CpuStorage {
    /// One SGD step in place (see [`SgdStep`]); the momentum buffer is required when
    /// `momentum != 0`.
    pub fn sgd_step(
        &mut self,
        lp: &Layout,
        g: &CpuStorage,
        lg: &Layout,
        buf: Option<&mut CpuStorage>,
        h: &SgdStep,
    ) {
        check_shapes("sgd", lp, lg);
        if h.momentum != 0.0 && buf.is_none() {
            panic!("sgd: momentum {} needs a momentum buffer", h.momentum);
        }
        let n = lp.numel();
        float_param!(self, "sgd", T, p => {
            let b = state_slice::<T>("sgd", "momentum_buffer", buf, n);
            sgd::<T>(p, lp, grad_slice("sgd", g), lg, b, h)
        })
    }

    /// One Adam/AdamW step in place (see [`AdamStep`]).
    pub fn adam_step(
        &mut self,
        lp: &Layout,
        g: &CpuStorage,
        lg: &Layout,
        exp_avg: &mut CpuStorage,
        exp_avg_sq: &mut CpuStorage,
        max_exp_avg_sq: Option<&mut CpuStorage>,
        h: &AdamStep,
    ) {
        check_shapes("adam", lp, lg);
        if h.amsgrad && max_exp_avg_sq.is_none() {
            panic!("adam: amsgrad needs a max_exp_avg_sq buffer");
        }
        let n = lp.numel();
        float_param!(self, "adam", T, p => {
            let st = [
                state_slice::<T>("adam", "exp_avg", Some(exp_avg), n),
                state_slice::<T>("adam", "exp_avg_sq", Some(exp_avg_sq), n),
                state_slice::<T>("adam", "max_exp_avg_sq", max_exp_avg_sq.filter(|_| h.amsgrad), n),
            ];
            adam::<T>(p, lp, grad_slice("adam", g), lg, st, h)
        })
    }

    /// One RMSprop step in place (see [`RmspropStep`]).
    pub fn rmsprop_step(
        &mut self,
        lp: &Layout,
        g: &CpuStorage,
        lg: &Layout,
        square_avg: &mut CpuStorage,
        buf: Option<&mut CpuStorage>,
        grad_avg: Option<&mut CpuStorage>,
        h: &RmspropStep,
    ) {
        check_shapes("rmsprop", lp, lg);
        if h.momentum > 0.0 && buf.is_none() {
            panic!("rmsprop: momentum {} needs a momentum buffer", h.momentum);
        }
        if h.centered && grad_avg.is_none() {
            panic!("rmsprop: centered needs a grad_avg buffer");
        }
        let n = lp.numel();
        float_param!(self, "rmsprop", T, p => {
            let st = [
                state_slice::<T>("rmsprop", "square_avg", Some(square_avg), n),
                state_slice::<T>("rmsprop", "momentum_buffer", buf.filter(|_| h.momentum > 0.0), n),
                state_slice::<T>("rmsprop", "grad_avg", grad_avg.filter(|_| h.centered), n),
            ];
            rmsprop::<T>(p, lp, grad_slice("rmsprop", g), lg, st, h)
        })
    }

    /// One Adagrad step in place (see [`AdagradStep`]).
    pub fn adagrad_step(
        &mut self,
        lp: &Layout,
        g: &CpuStorage,
        lg: &Layout,
        sum: &mut CpuStorage,
        h: &AdagradStep,
    ) {
        check_shapes("adagrad", lp, lg);
        let n = lp.numel();
        float_param!(self, "adagrad", T, p => {
            let s = state_slice::<T>("adagrad", "sum", Some(sum), n);
            adagrad::<T>(p, lp, grad_slice("adagrad", g), lg, s, h)
        })
    }

    /// See [`crate::Storage::norm_pow_sum`].
    pub fn norm_pow_sum(&self, layout: &Layout, ord: f64) -> f64 {
        float_param!(self, "norm", T, x => norm_pow_sum::<T>(x, layout, ord))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::Buffer;
    use proptest::prelude::*;

    /// PyTorch's scalar lerp.
    fn lerp<T: Float>(a: T, b: T, w: f64) -> T {
        if w.abs() < 0.5 {
            a + T::of(w) * (b - a)
        } else {
            b - (b - a) * T::of(1.0 - w)
        }
    }

    /// The gradient as PyTorch's single-tensor code forms it: negated when maximizing, plus the
    /// L2 penalty.
    fn dgrad<T: Float>(g: T, p: T, maximize: bool, wd: f64) -> T {
        let mut d = if maximize { -g } else { g };
        if wd != 0.0 {
            d = d + T::of(wd) * p;
        }
        d
    }

    /// Reference updates, one element at a time in logical order, op by op as PyTorch writes them.
    fn ref_sgd<T: Float>(p: &mut [T], g: &[T], b: &mut [T], h: &SgdStep) {
        for i in 0..p.len() {
            let mut d = dgrad(g[i], p[i], h.maximize, h.weight_decay);
            if h.momentum != 0.0 {
                b[i] = if h.first_step {
                    d
                } else {
                    b[i] * T::of(h.momentum) + T::of(1.0 - h.dampening) * d
                };
                d = if h.nesterov {
                    d + T::of(h.momentum) * b[i]
                } else {
                    b[i]
                };
            }
            p[i] = p[i] + T::of(-h.lr) * d;
        }
    }

    fn ref_adam<T: Float>(p: &mut [T], g: &[T], st: &mut [Vec<T>; 3], h: &AdamStep) {
        for i in 0..p.len() {
            let l2 = if h.decoupled_weight_decay {
                0.0
            } else {
                h.weight_decay
            };
            let d = dgrad(g[i], p[i], h.maximize, l2);
            if h.decoupled_weight_decay {
                p[i] = p[i] * T::of(1.0 - h.lr * h.weight_decay);
            }
            st[0][i] = lerp(st[0][i], d, 1.0 - h.beta1);
            st[1][i] = st[1][i] * T::of(h.beta2) + T::of(1.0 - h.beta2) * d * d;
            let v = if h.amsgrad {
                st[2][i] = T::max(st[2][i], st[1][i]);
                st[2][i]
            } else {
                st[1][i]
            };
            let denom = v.sqrt() / T::of(h.bias_correction2_sqrt) + T::of(h.eps);
            p[i] = p[i] + T::of(-h.step_size) * st[0][i] / denom;
        }
    }

    fn ref_rmsprop<T: Float>(p: &mut [T], g: &[T], st: &mut [Vec<T>; 3], h: &RmspropStep) {
        for i in 0..p.len() {
            let d = dgrad(g[i], p[i], h.maximize, h.weight_decay);
            st[0][i] = st[0][i] * T::of(h.alpha) + T::of(1.0 - h.alpha) * d * d;
            let avg = if h.centered {
                st[2][i] = lerp(st[2][i], d, 1.0 - h.alpha);
                (st[0][i] + T::of(-1.0) * st[2][i] * st[2][i]).sqrt()
            } else {
                st[0][i].sqrt()
            } + T::of(h.eps);
            if h.momentum > 0.0 {
                st[1][i] = st[1][i] * T::of(h.momentum) + d / avg;
                p[i] = p[i] + T::of(-h.lr) * st[1][i];
            } else {
                p[i] = p[i] + T::of(-h.lr) * d / avg;
            }
        }
    }

    fn ref_adagrad<T: Float>(p: &mut [T], g: &[T], s: &mut [T], h: &AdagradStep) {
        for i in 0..p.len() {
            let d = dgrad(g[i], p[i], h.maximize, h.weight_decay);
            s[i] = s[i] + d * d;
            p[i] = p[i] + T::of(-h.clr) * d / (s[i].sqrt() + T::of(h.eps));
        }
    }

    /// Values in storage order under `l`.
    fn gather<T: Copy>(x: &[T], l: &Layout) -> Vec<T> {
        l.positions().map(|i| x[i]).collect()
    }

    fn vals(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
        // A small LCG: deterministic data without pulling in an RNG.
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                lo + (hi - lo) * ((s >> 11) as f64 / (1u64 << 53) as f64)
            })
            .collect()
    }

    /// A layout of `shape` over a larger storage: transposed, sliced with a step, or contiguous.
    fn layout_for(shape: &[usize], kind: u8) -> (Layout, usize) {
        match kind {
            0 => (Layout::contiguous(shape), shape.iter().product()),
            1 if shape.len() == 2 => {
                let l = Layout::contiguous(&[shape[1], shape[0]]).transpose(0, 1);
                (l, shape.iter().product())
            }
            _ => {
                let mut big = shape.to_vec();
                big[0] = shape[0] * 2 + 1;
                let l = Layout::contiguous(&big).slice(0, 1, 1 + 2 * shape[0], 2);
                (l, big.iter().product())
            }
        }
    }

    struct Case<T: CpuElement> {
        p: CpuStorage,
        lp: Layout,
        g: CpuStorage,
        lg: Layout,
        p_logical: Vec<T>,
        g_logical: Vec<T>,
        states: [Vec<T>; 3],
    }

    fn case<T: Float + CpuElement>(shape: &[usize], kp: u8, kg: u8, seed: u64) -> Case<T> {
        let (lp, np) = layout_for(shape, kp);
        let (lg, ng) = layout_for(shape, kg);
        let pv: Vec<T> = vals(np, seed, -2.0, 2.0).into_iter().map(T::of).collect();
        let gv: Vec<T> = vals(ng, seed + 1, -1.0, 1.0)
            .into_iter()
            .map(T::of)
            .collect();
        let n = lp.numel();
        let states = [
            vals(n, seed + 2, -0.5, 0.5)
                .into_iter()
                .map(T::of)
                .collect(),
            vals(n, seed + 3, 0.0, 0.5).into_iter().map(T::of).collect(),
            vals(n, seed + 4, 0.0, 0.5).into_iter().map(T::of).collect(),
        ];
        Case {
            p_logical: gather(&pv, &lp),
            g_logical: gather(&gv, &lg),
            p: T::wrap(Buffer::from_vec(pv)),
            g: T::wrap(Buffer::from_vec(gv)),
            lp,
            lg,
            states,
        }
    }

    fn st<T: CpuElement>(v: &[T]) -> CpuStorage {
        T::wrap(Buffer::from_vec(v.to_vec()))
    }

    fn check<T: CpuElement>(what: &str, got: &CpuStorage, l: &Layout, want: &[T]) {
        let g = got.as_slice::<T>();
        let got: Vec<T> = l.positions().map(|i| g[i]).collect();
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            // Bit-for-bit: the kernel does the reference's operations in the same order.
            assert!(
                a == b || (a.to_f64().is_nan() && b.to_f64().is_nan()),
                "{what}: element {i}: kernel {a:?}, reference {b:?}"
            );
        }
    }

    fn run_sgd<T: Float + CpuElement>(shape: &[usize], kp: u8, kg: u8, h: SgdStep, seed: u64) {
        let mut c = case::<T>(shape, kp, kg, seed);
        let mut b = st(&c.states[0]);
        let bo = (h.momentum != 0.0).then_some(&mut b);
        c.p.sgd_step(&c.lp, &c.g, &c.lg, bo, &h);
        let mut want = c.p_logical.clone();
        ref_sgd(&mut want, &c.g_logical, &mut c.states[0], &h);
        check("sgd p", &c.p, &c.lp, &want);
        if h.momentum != 0.0 {
            check("sgd buf", &b, &Layout::contiguous(shape), &c.states[0]);
        }
    }

    fn run_adam<T: Float + CpuElement>(shape: &[usize], kp: u8, kg: u8, h: AdamStep, seed: u64) {
        let mut c = case::<T>(shape, kp, kg, seed);
        let (mut m, mut v, mut vm) = (st(&c.states[0]), st(&c.states[1]), st(&c.states[2]));
        let vmo = h.amsgrad.then_some(&mut vm);
        c.p.adam_step(&c.lp, &c.g, &c.lg, &mut m, &mut v, vmo, &h);
        let mut want = c.p_logical.clone();
        ref_adam(&mut want, &c.g_logical, &mut c.states, &h);
        let cl = Layout::contiguous(shape);
        check("adam p", &c.p, &c.lp, &want);
        check("adam m", &m, &cl, &c.states[0]);
        check("adam v", &v, &cl, &c.states[1]);
        if h.amsgrad {
            check("adam vmax", &vm, &cl, &c.states[2]);
        }
    }

    fn run_rms<T: Float + CpuElement>(shape: &[usize], kp: u8, kg: u8, h: RmspropStep, seed: u64) {
        let mut c = case::<T>(shape, kp, kg, seed);
        // square_avg must dominate grad_avg² for the centered square root.
        c.states[0].iter_mut().for_each(|x| *x = *x + T::of(1.0));
        let (mut sq, mut b, mut ga) = (st(&c.states[0]), st(&c.states[1]), st(&c.states[2]));
        let bo = (h.momentum > 0.0).then_some(&mut b);
        let gao = h.centered.then_some(&mut ga);
        c.p.rmsprop_step(&c.lp, &c.g, &c.lg, &mut sq, bo, gao, &h);
        let mut want = c.p_logical.clone();
        ref_rmsprop(&mut want, &c.g_logical, &mut c.states, &h);
        let cl = Layout::contiguous(shape);
        check("rmsprop p", &c.p, &c.lp, &want);
        check("rmsprop square_avg", &sq, &cl, &c.states[0]);
        if h.momentum > 0.0 {
            check("rmsprop buf", &b, &cl, &c.states[1]);
        }
        if h.centered {
            check("rmsprop grad_avg", &ga, &cl, &c.states[2]);
        }
    }

    fn run_adagrad<T: Float + CpuElement>(
        shape: &[usize],
        kp: u8,
        kg: u8,
        h: AdagradStep,
        seed: u64,
    ) {
        let mut c = case::<T>(shape, kp, kg, seed);
        let mut s = st(&c.states[1]);
        c.p.adagrad_step(&c.lp, &c.g, &c.lg, &mut s, &h);
        let mut want = c.p_logical.clone();
        ref_adagrad(&mut want, &c.g_logical, &mut c.states[1], &h);
        check("adagrad p", &c.p, &c.lp, &want);
        check("adagrad sum", &s, &Layout::contiguous(shape), &c.states[1]);
    }

    fn shape() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(1usize..6, 1..4)
    }

    fn adam_h(
        amsgrad: bool,
        decoupled: bool,
        wd: f64,
        maximize: bool,
        beta1: f64,
        step: i32,
    ) -> AdamStep {
        let (lr, beta2) = (0.01, 0.999);
        AdamStep {
            lr,
            beta1,
            beta2,
            eps: 1e-8,
            weight_decay: wd,
            decoupled_weight_decay: decoupled,
            amsgrad,
            maximize,
            step_size: lr / (1.0 - beta1.powi(step)),
            bias_correction2_sqrt: (1.0 - f64::powi(beta2, step)).sqrt(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn sgd_matches_reference(shape in shape(), kp in 0u8..3, kg in 0u8..3, mom in prop::sample::select(vec![0.0, 0.9]),
                                 damp in prop::sample::select(vec![0.0, 0.3]), wd in prop::sample::select(vec![0.0, 0.01]),
                                 nesterov: bool, maximize: bool, first: bool, f64_: bool, seed in 0u64..1000) {
            let h = SgdStep { lr: 0.05, momentum: mom, dampening: damp, weight_decay: wd,
                nesterov: nesterov && mom != 0.0, maximize, first_step: first };
            if f64_ { run_sgd::<f64>(&shape, kp, kg, h, seed) } else { run_sgd::<f32>(&shape, kp, kg, h, seed) }
        }

        #[test]
        fn adam_matches_reference(shape in shape(), kp in 0u8..3, kg in 0u8..3, amsgrad: bool, decoupled: bool,
                                  wd in prop::sample::select(vec![0.0, 0.1]), maximize: bool,
                                  beta1 in prop::sample::select(vec![0.9, 0.3]), step in 1i32..5, f64_: bool, seed in 0u64..1000) {
            let h = adam_h(amsgrad, decoupled, wd, maximize, beta1, step);
            if f64_ { run_adam::<f64>(&shape, kp, kg, h, seed) } else { run_adam::<f32>(&shape, kp, kg, h, seed) }
        }

        #[test]
        fn rmsprop_matches_reference(shape in shape(), kp in 0u8..3, kg in 0u8..3, centered: bool,
                                     mom in prop::sample::select(vec![0.0, 0.5]), wd in prop::sample::select(vec![0.0, 0.01]),
                                     alpha in prop::sample::select(vec![0.99, 0.3]), maximize: bool, f64_: bool, seed in 0u64..1000) {
            let h = RmspropStep { lr: 0.01, alpha, eps: 1e-8, weight_decay: wd, momentum: mom, centered, maximize };
            if f64_ { run_rms::<f64>(&shape, kp, kg, h, seed) } else { run_rms::<f32>(&shape, kp, kg, h, seed) }
        }

        #[test]
        fn adagrad_matches_reference(shape in shape(), kp in 0u8..3, kg in 0u8..3,
                                     wd in prop::sample::select(vec![0.0, 0.01]), maximize: bool, f64_: bool, seed in 0u64..1000) {
            let h = AdagradStep { clr: 0.1 / 1.02, eps: 1e-10, weight_decay: wd, maximize };
            if f64_ { run_adagrad::<f64>(&shape, kp, kg, h, seed) } else { run_adagrad::<f32>(&shape, kp, kg, h, seed) }
        }

        #[test]
        fn norms_match_reference(shape in shape(), k in 0u8..3, ord in prop::sample::select(vec![2.0, 1.0, 0.0, 3.0, 0.5, f64::INFINITY, f64::NEG_INFINITY]), seed in 0u64..1000) {
            let (l, n) = layout_for(&shape, k);
            let mut v = vals(n, seed, -2.0, 2.0);
            v[0] = 0.0;
            let x: Vec<f64> = gather(&v, &l);
            let got = f64::wrap(Buffer::from_vec(v.clone())).norm_pow_sum(&l, ord);
            let want = if ord == f64::INFINITY {
                x.iter().fold(0.0, |m, v| v.abs().max(m))
            } else if ord == f64::NEG_INFINITY {
                x.iter().fold(f64::INFINITY, |m, v| v.abs().min(m))
            } else if ord == 0.0 {
                x.iter().filter(|v| **v != 0.0).count() as f64
            } else {
                x.iter().map(|v| v.abs().powf(ord)).sum()
            };
            prop_assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "ord {}: {} vs {}", ord, got, want);
        }
    }

    /// Large tensors take the parallel path; chunk boundaries must not change any element.
    #[test]
    fn parallel_path_matches_reference() {
        let shape = [300, 457];
        run_sgd::<f32>(
            &shape,
            0,
            0,
            SgdStep {
                lr: 0.1,
                momentum: 0.9,
                dampening: 0.1,
                weight_decay: 0.01,
                nesterov: false,
                maximize: false,
                first_step: false,
            },
            7,
        );
        run_adam::<f32>(&shape, 0, 1, adam_h(true, true, 0.01, false, 0.9, 3), 8);
        run_adam::<f64>(&shape, 2, 0, adam_h(false, false, 0.0, true, 0.9, 1), 9);
        run_rms::<f32>(
            &shape,
            0,
            0,
            RmspropStep {
                lr: 0.01,
                alpha: 0.99,
                eps: 1e-8,
                weight_decay: 0.0,
                momentum: 0.5,
                centered: true,
                maximize: false,
            },
            10,
        );
        run_adagrad::<f32>(
            &shape,
            0,
            0,
            AdagradStep {
                clr: 0.01,
                eps: 1e-10,
                weight_decay: 0.0,
                maximize: false,
            },
            11,
        );
    }

    #[test]
    fn norm_is_deterministic_and_exact_on_large_input() {
        let n = 1_000_003;
        let v: Vec<f32> = (0..n).map(|i| ((i % 7) as f32) - 3.0).collect();
        let s = f32::wrap(Buffer::from_vec(v));
        let l = Layout::contiguous(&[n]);
        let want: f64 = (0..n).map(|i| (((i % 7) as f64) - 3.0).powi(2)).sum();
        let a = s.norm_pow_sum(&l, 2.0);
        assert_eq!(a, want);
        assert_eq!(
            a,
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap()
                .install(|| s.norm_pow_sum(&l, 2.0))
        );
        assert_eq!(s.norm_pow_sum(&l, f64::INFINITY), 3.0);
    }

    #[test]
    #[should_panic(
        expected = "sgd: the gradient has dtype torch.float64 but the parameter has dtype torch.float32"
    )]
    fn dtype_mismatch_panics() {
        let mut p = CpuStorage::from_vec(vec![1f32; 4]);
        let g = CpuStorage::from_vec(vec![1f64; 4]);
        let l = Layout::contiguous(&[4]);
        let h = SgdStep {
            lr: 0.1,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
            first_step: false,
        };
        p.sgd_step(&l, &g, &l, None, &h);
    }

    #[test]
    #[should_panic(expected = "adam: the gradient has shape [3] but the parameter has shape [4]")]
    fn shape_mismatch_panics() {
        let mut p = CpuStorage::from_vec(vec![1f32; 4]);
        let g = CpuStorage::from_vec(vec![1f32; 3]);
        let (mut m, mut v) = (
            CpuStorage::from_vec(vec![0f32; 4]),
            CpuStorage::from_vec(vec![0f32; 4]),
        );
        p.adam_step(
            &Layout::contiguous(&[4]),
            &g,
            &Layout::contiguous(&[3]),
            &mut m,
            &mut v,
            None,
            &adam_h(false, false, 0.0, false, 0.9, 1),
        );
    }
}
