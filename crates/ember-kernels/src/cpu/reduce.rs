//! Reductions on `CpuStorage`: sum/prod/max/min over a set of dims, argmax/argmin along one dim,
//! variance and logsumexp. Outputs are contiguous in keepdim shape (reduced dims of size 1).
//!
//! All reductions go through one driver. The input's dims are put in memory order (largest
//! stride outermost) and merged where possible, so the innermost loop either reduces a run of
//! input into one accumulator ("inner" reduction, the vectorised `Reducer::slice`) or adds a run
//! of input into a run of accumulators ("outer" reduction such as summing the rows of an
//! `[N, C]` matrix, `Reducer::rows`). Large inputs are split over threads along the outermost
//! dim: a kept dim splits the output, a reduced dim gives each task private accumulators that
//! are combined in order afterwards.

use super::buffer::{Buffer, PoolElement};
use super::map::map;
use super::num::Num;
use super::par::{n_chunks, REDUCE_GRAIN};
use super::simd::{exp_f32, lanes_fold, multiversion, Pick, L};
use super::{CpuElement, CpuStorage};
use crate::dtype::{DType, Element};
use crate::layout::Layout;
use crate::op::ReduceOp;
use crate::reduce::ArgReduceOp;
use crate::shape::{contiguous_strides, Dims};
use rayon::prelude::*;
use smallvec::SmallVec;
use std::marker::PhantomData;

/// One dim of a reduction plan: its size, input stride and output stride (0 when reduced).
#[derive(Clone, Copy, Debug)]
struct PDim {
    n: usize,
    si: usize,
    so: usize,
}

/// The iteration plan of a reduction of one strided input.
struct Plan {
    /// Non-trivial dims in memory order (outermost first), merged where possible.
    dims: SmallVec<[PDim; 6]>,
    /// Storage offset of the first input element.
    off: usize,
    /// Number of outputs.
    m: usize,
    /// Number of input elements reduced into each output.
    count: usize,
}

/// Marks the reduced dims (`dims` empty = all), panicking on a dim out of range.
fn reduce_mask(op: &str, shape: &[usize], dims: &[usize]) -> SmallVec<[bool; 6]> {
    let nd = shape.len();
    if dims.is_empty() {
        return SmallVec::from_elem(true, nd);
    }
    let mut mask = SmallVec::from_elem(false, nd);
    for &d in dims {
        match mask.get_mut(d) {
            Some(r) => *r = true,
            // A 0-dim tensor accepts dim 0 (as PyTorch's dim=-1/0 on a scalar).
            None if nd == 0 && d == 0 => {}
            None => panic!("{op}: dim {d} out of range for a tensor of shape {shape:?}"),
        }
    }
    mask
}

impl Plan {
    fn new(layout: &Layout, mask: &[bool]) -> Plan {
        let (shape, st) = (layout.shape(), layout.strides());
        let out_shape: Dims = shape
            .iter()
            .zip(mask)
            .map(|(&n, &r)| if r { 1 } else { n })
            .collect();
        let ost = contiguous_strides(&out_shape);
        let count = shape
            .iter()
            .zip(mask)
            .filter(|(_, &r)| r)
            .map(|(&n, _)| n)
            .product();
        let mut raw: SmallVec<[PDim; 6]> = (0..shape.len())
            .filter(|&d| shape[d] != 1)
            .map(|d| PDim {
                n: shape[d],
                si: st[d],
                so: if mask[d] { 0 } else { ost[d] },
            })
            .collect();
        // Memory order; broadcast (stride 0) dims go outermost so the inner loop reads memory.
        raw.sort_by_key(|p| std::cmp::Reverse(if p.si == 0 { usize::MAX } else { p.si }));
        let mut dims: SmallVec<[PDim; 6]> = SmallVec::new();
        for p in raw {
            match dims.last_mut() {
                Some(q) if q.si == p.si * p.n && q.so == p.so * p.n => {
                    q.n *= p.n;
                    q.si = p.si;
                    q.so = p.so;
                }
                _ => dims.push(p),
            }
        }
        Plan {
            dims,
            off: layout.offset(),
            m: out_shape.iter().product(),
            count,
        }
    }
}

/// A reduction: how input elements fold into an accumulator. `Ctx` is a per-output value the
/// fold may use (the mean for variance, the shift for logsumexp; `()` otherwise). `F` says the
/// code is compiled with AVX2+FMA.
trait Reducer: Sync {
    type In: Copy + Sync;
    type Acc: PoolElement;
    type Ctx: Copy + Sync;
    fn init(&self) -> Self::Acc;
    fn step<const F: bool>(&self, a: Self::Acc, x: Self::In, c: Self::Ctx) -> Self::Acc;
    fn combine(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// The fold of a contiguous run from `init` (the vectorised hot loop of inner reductions).
    #[inline(always)]
    fn slice<const F: bool>(&self, xs: &[Self::In], c: Self::Ctx) -> Self::Acc {
        xs.iter().fold(self.init(), |a, &x| self.step::<F>(a, x, c))
    }
    /// `acc[k] = step(acc[k], xs[k], cs[k])` (the hot loop of outer reductions).
    #[inline(always)]
    fn rows<const F: bool>(&self, acc: &mut [Self::Acc], xs: &[Self::In], cs: &[Self::Ctx]) {
        for ((a, &x), &c) in acc.iter_mut().zip(xs).zip(cs) {
            *a = self.step::<F>(*a, x, c);
        }
    }
}

/// The largest (`MAX`) or smallest element of `xs`, NaN if any is NaN (`init` when empty).
/// Values and NaN flags are kept in separate lanes: a plain compare-select per lane vectorises
/// well, while a NaN-aware select per lane does not.
#[inline(always)]
pub(crate) fn extreme_slice<T: Num, const MAX: bool>(xs: &[T]) -> T {
    let init = if MAX { T::LOWEST } else { T::HIGHEST };
    let pick = |a: T, x: T| {
        let better = if MAX { x > a } else { x < a };
        if better {
            x
        } else {
            a
        }
    };
    let mut m = [init; L];
    let mut nan = [false; L];
    let mut it = xs.chunks_exact(L);
    for c in &mut it {
        let c: &[T; L] = c.try_into().unwrap();
        for j in 0..L {
            m[j] = pick(m[j], c[j]);
            nan[j] |= T::is_nan(c[j]);
        }
    }
    let best = m.iter().fold(init, |a, &b| pick(a, b));
    let any_nan = nan.iter().fold(false, |a, &b| a | b);
    let tail = it.remainder();
    let best = tail.iter().fold(best, |a, &b| pick(a, b));
    if any_nan | tail.iter().any(|&x| T::is_nan(x)) {
        T::from_f64(f64::NAN)
    } else {
        best
    }
}

/// Independent memory streams a long sum reads at once. One sequential stream leaves a core's
/// memory bandwidth unused (the prefetcher keeps too few lines in flight); four contiguous
/// quarters read in lock-step measured 24–28 GB/s per core against 15–18 for one stream.
const STREAMS: usize = 4;

/// A float a tree sum adds in: f32 adds trees of 8 values before widening to f64, f64 trees of
/// 4 (both a 256-bit register's worth of lanes, twice).
trait TreeLane: Copy + Default + std::ops::Add<Output = Self> {
    /// Values each lane adds as one tree.
    const TREE: usize;
    /// The value as the f64 the lanes accumulate in.
    fn widen(self) -> f64;
}

impl TreeLane for f32 {
    const TREE: usize = 8;
    #[inline(always)]
    fn widen(self) -> f64 {
        self as f64
    }
}

impl TreeLane for f64 {
    const TREE: usize = 4;
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
}

/// `t[j] = Σ f(c[k·L + j])` over `k < T::TREE`, added as a balanced tree of neighbours.
///
/// An `#[inline(always)]` fn writing into caller-owned arrays, not a closure or
/// `std::array::from_fn`: inside the AVX2 copy either was left as an out-of-line call compiled
/// for SSE that spilled every tree to the stack (half the speed on cached data).
#[inline(always)]
fn tree<T: TreeLane>(c: &[T], f: &impl Fn(T) -> T, t: &mut [T; L]) {
    let c = &c[..T::TREE * L];
    for (j, tj) in t.iter_mut().enumerate() {
        let mut v = [T::default(); 8];
        for (k, vk) in v[..T::TREE].iter_mut().enumerate() {
            *vk = f(c[k * L + j]);
        }
        let mut w = T::TREE;
        while w > 1 {
            w /= 2;
            for k in 0..w {
                v[k] = v[2 * k] + v[2 * k + 1];
            }
        }
        *tj = v[0];
    }
}

/// `Σ f(x)` with an f64 result: 16 lanes each add a tree of `T::TREE` values in `T`, and those
/// partials accumulate in f64 lanes. For f32, error stays near f32 rounding of one value even
/// for 16M-element sums, at memory speed. Long inputs are read as [`STREAMS`] quarters in
/// lock-step; the grouping depends only on the length, so results are reproducible.
#[inline(always)]
fn tree_sum<T: TreeLane>(xs: &[T], f: impl Fn(T) -> T) -> f64 {
    let c = T::TREE * L;
    let mut acc = [0f64; L];
    let mut t = [[T::default(); L]; STREAMS];
    let per = xs.len() / (STREAMS * c) * c;
    for i in (0..per).step_by(c) {
        for (s, ts) in t.iter_mut().enumerate() {
            tree(&xs[s * per + i..], &f, ts);
        }
        for j in 0..L {
            acc[j] += ((t[0][j] + t[1][j]) + (t[2][j] + t[3][j])).widen();
        }
    }
    let mut it = xs[STREAMS * per..].chunks_exact(c);
    for chunk in &mut it {
        tree(chunk, &f, &mut t[0]);
        for j in 0..L {
            acc[j] += t[0][j].widen();
        }
    }
    let mut tail = 0f64;
    for &x in it.remainder() {
        tail += f(x).widen();
    }
    pairwise_f64(acc) + tail
}

#[inline(always)]
fn pairwise_f64(mut a: [f64; L]) -> f64 {
    let mut w = L;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            a[j] += a[j + w];
        }
    }
    a[0]
}

/// Σ of f32, accumulated in f64.
struct SumF32;
impl Reducer for SumF32 {
    type In = f32;
    type Acc = f64;
    type Ctx = ();
    fn init(&self) -> f64 {
        0.0
    }
    #[inline(always)]
    fn step<const F: bool>(&self, a: f64, x: f32, _: ()) -> f64 {
        a + x as f64
    }
    #[inline(always)]
    fn combine(&self, a: f64, b: f64) -> f64 {
        a + b
    }
    #[inline(always)]
    fn slice<const F: bool>(&self, xs: &[f32], _: ()) -> f64 {
        tree_sum(xs, |x| x)
    }
}

/// Σ of f64.
struct SumF64;
impl Reducer for SumF64 {
    type In = f64;
    type Acc = f64;
    type Ctx = ();
    fn init(&self) -> f64 {
        0.0
    }
    #[inline(always)]
    fn step<const F: bool>(&self, a: f64, x: f64, _: ()) -> f64 {
        a + x
    }
    #[inline(always)]
    fn combine(&self, a: f64, b: f64) -> f64 {
        a + b
    }
    #[inline(always)]
    fn slice<const F: bool>(&self, xs: &[f64], _: ()) -> f64 {
        tree_sum(xs, |x| x)
    }
}

/// Σ of bool/u8/i64 into i64 (wrapping, as PyTorch).
struct SumInt<T>(PhantomData<T>);
impl<T: Element> Reducer for SumInt<T> {
    type In = T;
    type Acc = i64;
    type Ctx = ();
    fn init(&self) -> i64 {
        0
    }
    #[inline(always)]
    fn step<const F: bool>(&self, a: i64, x: T, _: ()) -> i64 {
        a.wrapping_add(x.to_i64())
    }
    #[inline(always)]
    fn combine(&self, a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }
    #[inline(always)]
    fn slice<const F: bool>(&self, xs: &[T], _: ()) -> i64 {
        lanes_fold(
            xs,
            0i64,
            |a, x| a.wrapping_add(x.to_i64()),
            i64::wrapping_add,
        )
    }
}

/// Π of floats in their own dtype.
struct ProdF<T>(PhantomData<T>);
impl<T: Num> Reducer for ProdF<T> {
    type In = T;
    type Acc = T;
    type Ctx = ();
    fn init(&self) -> T {
        T::ONE
    }
    #[inline(always)]
    fn step<const F: bool>(&self, a: T, x: T, _: ()) -> T {
        T::mul(a, x)
    }
    #[inline(always)]
    fn combine(&self, a: T, b: T) -> T {
        T::mul(a, b)
    }
    #[inline(always)]
    fn slice<const F: bool>(&self, xs: &[T], _: ()) -> T {
        lanes_fold(xs, T::ONE, T::mul, T::mul)
    }
}

/// Π of bool/u8/i64 into i64 (wrapping).
struct ProdInt<T>(PhantomData<T>);
impl<T: Element> Reducer for ProdInt<T> {
    type In = T;
    type Acc = i64;
    type Ctx = ();
    fn init(&self) -> i64 {
        1
    }
    #[inline(always)]
    fn step<const F: bool>(&self, a: i64, x: T, _: ()) -> i64 {
        a.wrapping_mul(x.to_i64())
    }
    #[inline(always)]
    fn combine(&self, a: i64, b: i64) -> i64 {
        a.wrapping_mul(b)
    }
    #[inline(always)]
    fn slice<const F: bool>(&self, xs: &[T], _: ()) -> i64 {
        lanes_fold(
            xs,
            1i64,
            |a, x| a.wrapping_mul(x.to_i64()),
            i64::wrapping_mul,
        )
    }
}

/// Largest (`MAX`) or smallest value, NaN propagating.
struct Extreme<T, const MAX: bool>(PhantomData<T>);
impl<T: Pick, const MAX: bool> Reducer for Extreme<T, MAX> {
    type In = T;
    type Acc = T;
    type Ctx = ();
    fn init(&self) -> T {
        if MAX {
            T::LOWEST
        } else {
            T::HIGHEST
        }
    }
    #[inline(always)]
    fn step<const F: bool>(&self, a: T, x: T, _: ()) -> T {
        self.combine(a, x)
    }
    #[inline(always)]
    fn combine(&self, a: T, b: T) -> T {
        if MAX {
            T::pmax(a, b)
        } else {
            T::pmin(a, b)
        }
    }
    #[inline(always)]
    fn slice<const F: bool>(&self, xs: &[T], _: ()) -> T {
        extreme_slice::<T, MAX>(xs)
    }
}

/// Σ (x - mean)² of f32 (the second pass of variance; `Ctx` is the mean).
struct SqDevF32;
impl Reducer for SqDevF32 {
    type In = f32;
    type Acc = f64;
    type Ctx = f32;
    fn init(&self) -> f64 {
        0.0
    }
    #[inline(always)]
    fn step<const F: bool>(&self, a: f64, x: f32, m: f32) -> f64 {
        let d = x - m;
        a + (d * d) as f64
    }
    #[inline(always)]
    fn combine(&self, a: f64, b: f64) -> f64 {
        a + b
    }
    #[inline(always)]
    fn slice<const F: bool>(&self, xs: &[f32], m: f32) -> f64 {
        tree_sum(xs, |x| (x - m) * (x - m))
    }
}

/// Σ (x - mean)² of f64.
struct SqDevF64;
impl Reducer for SqDevF64 {
    type In = f64;
    type Acc = f64;
    type Ctx = f64;
    fn init(&self) -> f64 {
        0.0
    }
    #[inline(always)]
    fn step<const F: bool>(&self, a: f64, x: f64, m: f64) -> f64 {
        a + (x - m) * (x - m)
    }
    #[inline(always)]
    fn combine(&self, a: f64, b: f64) -> f64 {
        a + b
    }
    #[inline(always)]
    fn slice<const F: bool>(&self, xs: &[f64], m: f64) -> f64 {
        tree_sum(xs, |x| (x - m) * (x - m))
    }
}

/// Σ e^(x - shift) of f32 (the second pass of logsumexp), with the vectorised `exp`.
struct ExpShiftF32;
impl Reducer for ExpShiftF32 {
    type In = f32;
    type Acc = f64;
    type Ctx = f32;
    fn init(&self) -> f64 {
        0.0
    }
    #[inline(always)]
    fn step<const F: bool>(&self, a: f64, x: f32, s: f32) -> f64 {
        a + exp_f32::<F>(x - s) as f64
    }
    #[inline(always)]
    fn combine(&self, a: f64, b: f64) -> f64 {
        a + b
    }
    #[inline(always)]
    fn slice<const F: bool>(&self, xs: &[f32], s: f32) -> f64 {
        tree_sum(xs, |x| exp_f32::<F>(x - s))
    }
}

/// Σ e^(x - shift) of f64.
struct ExpShiftF64;
impl Reducer for ExpShiftF64 {
    type In = f64;
    type Acc = f64;
    type Ctx = f64;
    fn init(&self) -> f64 {
        0.0
    }
    #[inline(always)]
    fn step<const F: bool>(&self, a: f64, x: f64, s: f64) -> f64 {
        a + (x - s).exp()
    }
    #[inline(always)]
    fn combine(&self, a: f64, b: f64) -> f64 {
        a + b
    }
}

/// One run of the innermost dim `inner` at input position `pi`, output position `po`. (A
/// function, not a closure: closures are compiled without the caller's AVX2 features when
/// they are not inlined.)
#[inline(always)]
fn run<R: Reducer, const F: bool>(
    r: &R,
    x: &[R::In],
    inner: PDim,
    (pi, po): (usize, usize),
    acc: &mut [R::Acc],
    ctx: &[R::Ctx],
) {
    let (n, si, so) = (inner.n, inner.si, inner.so);
    if so == 0 {
        // Short runs skip the lane machinery of `slice`, which costs more than it saves.
        let v = if si == 1 && n >= 2 * L {
            r.slice::<F>(&x[pi..pi + n], ctx[po])
        } else {
            let c = ctx[po];
            (0..n).fold(r.init(), |a, k| r.step::<F>(a, x[pi + k * si], c))
        };
        acc[po] = r.combine(acc[po], v);
    } else if si == 1 && so == 1 {
        r.rows::<F>(&mut acc[po..po + n], &x[pi..pi + n], &ctx[po..po + n]);
    } else {
        for k in 0..n {
            let o = po + k * so;
            acc[o] = r.step::<F>(acc[o], x[pi + k * si], ctx[o]);
        }
    }
}

/// Runs `r` over the input dims `dims` starting at `off` into `acc` (positions relative to the
/// start of `acc`), on the calling thread.
#[inline(always)]
fn serial_impl<R: Reducer, const F: bool>(
    r: &R,
    x: &[R::In],
    dims: &[PDim],
    off: usize,
    acc: &mut [R::Acc],
    ctx: &[R::Ctx],
) {
    let Some((&inner, outer)) = dims.split_last() else {
        acc[0] = r.step::<F>(acc[0], x[off], ctx[0]);
        return;
    };
    // The next dim out is a plain loop; an odometer walks the rest.
    let Some((&mid, rest)) = outer.split_last() else {
        run::<R, F>(r, x, inner, (off, 0), acc, ctx);
        return;
    };
    let mut idx: SmallVec<[usize; 6]> = SmallVec::from_elem(0, rest.len());
    let (mut pi, mut po) = (off, 0usize);
    for _ in 0..rest.iter().map(|d| d.n).product::<usize>() {
        for k in 0..mid.n {
            run::<R, F>(r, x, inner, (pi + k * mid.si, po + k * mid.so), acc, ctx);
        }
        let mut d = rest.len();
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            pi += rest[d].si;
            po += rest[d].so;
            if idx[d] < rest[d].n {
                break;
            }
            pi -= rest[d].n * rest[d].si;
            po -= rest[d].n * rest[d].so;
            idx[d] = 0;
        }
    }
}

multiversion!(fn serial<R: Reducer>(r: &R, x: &[R::In], dims: &[PDim], off: usize, acc: &mut [R::Acc], ctx: &[R::Ctx]) => serial_impl);

/// Runs `r` over the whole plan, in parallel when large; returns one accumulator per output.
/// `ctx` has one entry per output.
fn drive<R: Reducer>(r: &R, x: &[R::In], plan: &Plan, ctx: &[R::Ctx]) -> Buffer<R::Acc> {
    let mut acc = Buffer::<R::Acc>::filled(plan.m, r.init());
    let dims = &plan.dims;
    let n: usize = dims.iter().map(|d| d.n).product();
    if plan.m == 0 || n == 0 {
        return acc;
    }
    let chunks = n_chunks(n, REDUCE_GRAIN);
    if chunks <= 1 || dims.is_empty() {
        serial(r, x, dims, plan.off, &mut acc, ctx);
        return acc;
    }
    // The kept dim with the largest output stride: splitting it splits the output contiguously.
    let kept = (0..dims.len())
        .filter(|&d| dims[d].so != 0)
        .max_by_key(|&d| dims[d].so);
    let first = dims[0];
    // A reduced split's parts depend only on the shape (not on the thread count), so results
    // are bit-identical however many threads run.
    let parts = (n / (REDUCE_GRAIN / 2)).clamp(2, 32).min(first.n);
    // Splitting the outermost dim reads memory in big contiguous pieces; when it is reduced,
    // each part needs private accumulators, so only while the output is small next to the work.
    let private_ok = plan.m.saturating_mul(parts) <= n / 4;
    let split_reduced = first.so == 0
        && match kept {
            None => true,
            Some(k) => private_ok && (first.n >= chunks || dims[k].n < chunks),
        };
    if split_reduced {
        // Private accumulators per part, combined in order (so results do not depend on timing).
        let size = first.n.div_ceil(parts);
        let partials: Vec<Buffer<R::Acc>> = (0..first.n.div_ceil(size))
            .into_par_iter()
            .map(|p| {
                let (a, b) = (p * size, ((p + 1) * size).min(first.n));
                let mut local = Buffer::<R::Acc>::filled(plan.m, r.init());
                let mut sub = dims.clone();
                sub[0].n = b - a;
                serial(r, x, &sub, plan.off + a * first.si, &mut local, ctx);
                local
            })
            .collect();
        for part in partials {
            for (a, &b) in acc.iter_mut().zip(part.iter()) {
                *a = r.combine(*a, b);
            }
        }
    } else if let Some(k) = kept {
        // Each output is computed whole inside one part: the split cannot change results.
        let kd = dims[k];
        let size = kd.n.div_ceil(chunks.min(kd.n));
        acc.par_chunks_mut(size * kd.so)
            .enumerate()
            .for_each(|(p, out)| {
                let a = p * size;
                let len = out.len() / kd.so;
                let mut sub = dims.clone();
                sub[k].n = len;
                let c = &ctx[a * kd.so..(a + len) * kd.so];
                serial(r, x, &sub, plan.off + a * kd.si, out, c);
            });
    } else {
        serial(r, x, dims, plan.off, &mut acc, ctx);
    }
    acc
}

/// Per-output unit contexts for reductions that need none (a `Vec<()>` allocates nothing).
fn units(m: usize) -> Vec<()> {
    vec![(); m]
}

/// `f` of each accumulator, as a new buffer.
fn finish<A: PoolElement, O: PoolElement>(acc: &[A], f: impl Fn(A) -> O + Sync) -> Buffer<O> {
    map(acc, &Layout::contiguous(&[acc.len()]), f)
}

/// PyTorch's name of a reduction, for messages.
fn op_name(op: ReduceOp) -> &'static str {
    match op {
        ReduceOp::Sum => "sum",
        ReduceOp::Prod => "prod",
        ReduceOp::Max => "max",
        ReduceOp::Min => "min",
    }
}

/// Panics like PyTorch when a max/min-like reduction has nothing to reduce.
fn check_nonempty(op: &str, shape: &[usize], mask: &[bool], dims: &[usize]) {
    if dims.is_empty() {
        if shape.iter().product::<usize>() == 0 {
            panic!("{op}(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the 'dim' argument. (input shape {shape:?})");
        }
        return;
    }
    if let Some(d) = (0..shape.len()).find(|&d| mask[d] && shape[d] == 0) {
        panic!("{op}(): Expected reduction dim {d} to have non-zero size. (input shape {shape:?})");
    }
}

impl CpuStorage {
    /// Reduces the elements selected by `layout` over `dims` (sorted, deduplicated; empty = all)
    /// into a new contiguous storage of keepdim shape. Sum/Prod of bool/u8/i64 give i64, floats
    /// keep their dtype; Max/Min keep the dtype and propagate NaN.
    pub fn reduce(&self, layout: &Layout, dims: &[usize], op: ReduceOp) -> CpuStorage {
        let name = op_name(op);
        let mask = reduce_mask(name, layout.shape(), dims);
        if matches!(op, ReduceOp::Max | ReduceOp::Min) {
            check_nonempty(name, layout.shape(), &mask, dims);
        }
        let plan = Plan::new(layout, &mask);
        let u = units(plan.m);
        fn extreme<T: CpuElement + Pick>(x: &[T], plan: &Plan, u: &[()], max: bool) -> CpuStorage {
            T::wrap(if max {
                drive(&Extreme::<T, true>(PhantomData), x, plan, u)
            } else {
                drive(&Extreme::<T, false>(PhantomData), x, plan, u)
            })
        }
        fn int_sum<T: Element>(x: &[T], plan: &Plan, u: &[()], sum: bool) -> CpuStorage {
            CpuStorage::I64(if sum {
                drive(&SumInt::<T>(PhantomData), x, plan, u)
            } else {
                drive(&ProdInt::<T>(PhantomData), x, plan, u)
            })
        }
        use CpuStorage as S;
        use ReduceOp::*;
        match (self, op) {
            (S::F32(x), Sum) => S::F32(finish(&drive(&SumF32, x, &plan, &u), |a| a as f32)),
            (S::F64(x), Sum) => S::F64(drive(&SumF64, x, &plan, &u)),
            (S::F32(x), Prod) => S::F32(drive(&ProdF::<f32>(PhantomData), x, &plan, &u)),
            (S::F64(x), Prod) => S::F64(drive(&ProdF::<f64>(PhantomData), x, &plan, &u)),
            (S::I64(x), Sum | Prod) => int_sum(x, &plan, &u, op == Sum),
            (S::U8(x), Sum | Prod) => int_sum(x, &plan, &u, op == Sum),
            (S::Bool(x), Sum | Prod) => int_sum(x, &plan, &u, op == Sum),
            (s, Max | Min) => crate::cpu_dispatch!(s, x => extreme(x, &plan, &u, op == Max)),
        }
    }

    /// The largest (`Max`) or smallest value along `dim` and its index (i64), in keepdim
    /// shape. Ties give the first index; NaN counts as the extreme and its first index wins.
    pub fn arg_reduce(
        &self,
        layout: &Layout,
        dim: usize,
        op: ArgReduceOp,
    ) -> (CpuStorage, CpuStorage) {
        let name = match op {
            ArgReduceOp::Max => "argmax",
            ArgReduceOp::Min => "argmin",
        };
        crate::cpu_dispatch!(self, x => {
            let (v, i) = match op {
                ArgReduceOp::Max => arg_reduce::<_, true>(x, layout, dim, name),
                ArgReduceOp::Min => arg_reduce::<_, false>(x, layout, dim, name),
            };
            (CpuElement::wrap(v), CpuStorage::I64(i))
        })
    }

    /// Variance over `dims` (empty = all) in keepdim shape: `Σ (x - mean)² / max(N - correction,
    /// 0)` by two passes (mean first). Floating-point dtypes only.
    pub fn var(&self, layout: &Layout, dims: &[usize], correction: f64) -> CpuStorage {
        let mask = reduce_mask("var", layout.shape(), dims);
        let plan = Plan::new(layout, &mask);
        let u = units(plan.m);
        let cnt = plan.count as f64;
        let div = (cnt - correction).max(0.0);
        match self {
            CpuStorage::F32(x) => {
                let means = finish(&drive(&SumF32, x, &plan, &u), |s| (s / cnt) as f32);
                let m2 = drive(&SqDevF32, x, &plan, &means);
                CpuStorage::F32(finish(&m2, |v| (v / div) as f32))
            }
            CpuStorage::F64(x) => {
                let mut means = drive(&SumF64, x, &plan, &u);
                means.iter_mut().for_each(|s| *s /= cnt);
                let mut m2 = drive(&SqDevF64, x, &plan, &means);
                m2.iter_mut().for_each(|v| *v /= div);
                CpuStorage::F64(m2)
            }
            other => panic!(
                "var(): std and var only support floating point and complex dtypes, got {}",
                other.dtype()
            ),
        }
    }

    /// `log Σ exp(x)` over `dims` (empty = all) in keepdim shape, max-subtracted so it never
    /// overflows; a slice of all `-inf` gives `-inf`. Integer and bool inputs compute in f32.
    pub fn logsumexp(&self, layout: &Layout, dims: &[usize]) -> CpuStorage {
        let mask = reduce_mask("logsumexp", layout.shape(), dims);
        let plan = Plan::new(layout, &mask);
        let u = units(plan.m);
        // An infinite max would give inf - inf = NaN: shift by 0 then (the sum is 0 or inf).
        match self {
            CpuStorage::F32(x) => {
                let max = drive(&Extreme::<f32, true>(PhantomData), x, &plan, &u);
                let shift = finish(&max, |m| if m.is_infinite() { 0.0 } else { m });
                let sums = drive(&ExpShiftF32, x, &plan, &shift);
                let out = sums.iter().zip(shift.iter());
                CpuStorage::F32(Buffer::from_vec(
                    out.map(|(&s, &c)| (s.ln() + c as f64) as f32).collect(),
                ))
            }
            CpuStorage::F64(x) => {
                let max = drive(&Extreme::<f64, true>(PhantomData), x, &plan, &u);
                let shift = finish(&max, |m| if m.is_infinite() { 0.0 } else { m });
                let mut sums = drive(&ExpShiftF64, x, &plan, &shift);
                for (s, &c) in sums.iter_mut().zip(shift.iter()) {
                    *s = s.ln() + c;
                }
                CpuStorage::F64(sums)
            }
            // An empty view may carry an offset past its storage: do not cast it.
            _ if layout.numel() == 0 => CpuStorage::F32(Buffer::uninit(0))
                .logsumexp(&Layout::contiguous(layout.shape()), dims),
            other => other
                .cast(layout, DType::F32)
                .logsumexp(&Layout::contiguous(layout.shape()), dims),
        }
    }
}

/// Argmax (`MAX`) or argmin along `dim`: `(values, indices)`.
fn arg_reduce<T: CpuElement + Pick, const MAX: bool>(
    x: &[T],
    layout: &Layout,
    dim: usize,
    op: &str,
) -> (Buffer<T>, Buffer<i64>) {
    let shape = layout.shape();
    let (outer, n, inner) = if shape.is_empty() {
        if dim > 0 {
            panic!("{op}: dim {dim} out of range for a tensor of shape []");
        }
        (1, 1, 1)
    } else {
        if dim >= shape.len() {
            panic!("{op}: dim {dim} out of range for a tensor of shape {shape:?}");
        }
        let outer: usize = shape[..dim].iter().product();
        (
            outer,
            shape[dim],
            shape[dim + 1..].iter().product::<usize>(),
        )
    };
    if n == 0 {
        panic!(
            "{op}(): Expected reduction dim {dim} to have non-zero size. (input shape {shape:?})"
        );
    }
    let m = outer * inner;
    let mut vals = Buffer::<T>::uninit(m);
    let mut idxs = Buffer::<i64>::uninit(m);
    if m == 0 {
        return (vals, idxs);
    }
    // (m > 0 and n > 0 here, so the view is not empty and its range lies inside `x`.)
    let owned;
    let x: &[T] = match layout.contiguous_range() {
        Some((s, e)) => &x[s..e],
        None => {
            owned = map(x, layout, |v| v);
            &owned
        }
    };
    // `better(x, best)`: x replaces the current best (strictly more extreme, or the first NaN).
    let better = |v: T, b: T| (if MAX { v > b } else { v < b }) | (T::is_nan(v) & !T::is_nan(b));
    // Output positions p0..p1: runs of one outer block, scanned row by row along `dim`.
    let work = |p0: usize, vs: &mut [T], is: &mut [i64]| {
        if inner == 1 {
            for (k, (v, i)) in vs.iter_mut().zip(is.iter_mut()).enumerate() {
                let row = &x[(p0 + k) * n..(p0 + k + 1) * n];
                // Vectorised extreme first, then the first position holding it.
                let e = extreme_slice::<T, MAX>(row);
                let at = if T::is_nan(e) {
                    row.iter().position(|&y| T::is_nan(y))
                } else {
                    row.iter().position(|&y| y == e)
                };
                *v = e;
                *i = at.unwrap_or(0) as i64;
            }
            return;
        }
        let mut p = p0;
        while p < p0 + vs.len() {
            let (o, c0) = (p / inner, p % inner);
            let c1 = inner.min(c0 + (p0 + vs.len() - p));
            let (bv, bi) = (
                &mut vs[p - p0..p - p0 + c1 - c0],
                &mut is[p - p0..p - p0 + c1 - c0],
            );
            let base = o * n * inner;
            bv.copy_from_slice(&x[base + c0..base + c1]);
            bi.fill(0);
            for j in 1..n {
                let row = &x[base + j * inner + c0..base + j * inner + c1];
                // Branch-free updates (arithmetic index blend, `Pick` for the value) so the
                // loop vectorises without masked stores.
                for ((b, i), &v) in bv.iter_mut().zip(bi.iter_mut()).zip(row) {
                    let take = better(v, *b) as i64;
                    *i += (j as i64 - *i) * take;
                    *b = if MAX { T::pmax(*b, v) } else { T::pmin(*b, v) };
                }
            }
            p += c1 - c0;
        }
    };
    let chunks = n_chunks(m * n, REDUCE_GRAIN);
    if chunks <= 1 {
        work(0, &mut vals, &mut idxs);
    } else {
        let size = m.div_ceil(chunks);
        vals.par_chunks_mut(size)
            .zip(idxs.par_chunks_mut(size))
            .enumerate()
            .for_each(|(c, (v, i))| work(c * size, v, i));
    }
    (vals, idxs)
}

/// Shared helpers for the reduction and softmax tests: a small RNG, random strided layouts and
/// the naive grouping of input positions by output.
#[cfg(test)]
pub(crate) mod test_util {
    use crate::layout::Layout;
    use crate::shape::contiguous_strides;

    /// splitmix64.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A random view (offset, permuted, sliced with step, expanded) over a storage of the
    /// returned length. Sizes are 1..=4 with an occasional 0.
    pub(crate) fn random_layout(r: &mut Rng, max_dims: usize) -> (usize, Layout) {
        let nd = r.below(max_dims + 1);
        let shape: Vec<usize> = (0..nd)
            .map(|_| if r.below(12) == 0 { 0 } else { 1 + r.below(4) })
            .collect();
        let off = r.below(3);
        let len = off + shape.iter().product::<usize>();
        let mut l = Layout::new(&shape, &contiguous_strides(&shape), off);
        for _ in 0..r.below(4) {
            if nd == 0 {
                break;
            }
            let d = r.below(nd);
            match r.below(3) {
                0 => {
                    let mut p: Vec<usize> = (0..nd).collect();
                    for i in (1..nd).rev() {
                        p.swap(i, r.below(i + 1));
                    }
                    l = l.permute(&p);
                }
                1 => {
                    let size = l.shape()[d];
                    if size > 0 {
                        l = l.slice(d, r.below(size), size, 1 + r.below(2));
                    }
                }
                _ => {
                    if l.shape()[d] > 0 {
                        let mut target = l.shape().to_vec();
                        target[d] = 1 + r.below(3);
                        l = l.narrow(d, 0, 1).expand(&target);
                    }
                }
            }
        }
        (len, l)
    }

    /// A random sorted subset of `0..nd` (often empty, meaning all dims).
    pub(crate) fn random_dims(r: &mut Rng, nd: usize) -> Vec<usize> {
        (0..nd).filter(|_| r.below(2) == 0).collect()
    }

    /// For each output (contiguous keepdim order), the storage positions of its inputs in
    /// logical order.
    pub(crate) fn groups(l: &Layout, mask: &[bool]) -> Vec<Vec<usize>> {
        let shape = l.shape();
        let out: Vec<usize> = shape
            .iter()
            .zip(mask)
            .map(|(&n, &r)| if r { 1 } else { n })
            .collect();
        let ost = contiguous_strides(&out);
        let mut g = vec![Vec::new(); out.iter().product()];
        for (k, p) in l.positions().enumerate() {
            let (mut rem, mut o) = (k, 0);
            for d in (0..shape.len()).rev() {
                let i = rem % shape[d];
                rem /= shape[d];
                if !mask[d] {
                    o += i * ost[d];
                }
            }
            g[o].push(p);
        }
        g
    }

    /// Process CPU time in seconds (user + system), from /proc: with other jobs on the machine,
    /// wall-clock timings of a 2 ms kernel are unreliable.
    pub(crate) fn cpu_seconds() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let rest = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0.0))
            .collect();
        (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
    }

    /// Best wall time and mean CPU time per call of `f`, in ms.
    pub(crate) fn time_ms(mut f: impl FnMut()) -> (f64, f64) {
        use std::time::Instant;
        f();
        let (mut best, mut iters) = (f64::INFINITY, 0);
        let (t0, c0) = (Instant::now(), cpu_seconds());
        while t0.elapsed().as_secs_f64() < 1.0 {
            let t = Instant::now();
            f();
            best = best.min(t.elapsed().as_secs_f64());
            iters += 1;
        }
        (best * 1e3, (cpu_seconds() - c0) * 1e3 / iters as f64)
    }

    /// Equal as floats, NaN equal to NaN, within `tol` relative (plus `tol` absolute).
    pub(crate) fn close(a: f64, b: f64, tol: f64) -> bool {
        (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * (1.0 + b.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{close, groups, random_dims, random_layout, time_ms, Rng};
    use super::*;
    use crate::reduce::reduce_dtype;
    use proptest::prelude::*;

    fn f32s(v: &[f32]) -> CpuStorage {
        CpuStorage::from_vec(v.to_vec())
    }

    fn vals<T: CpuElement>(s: &CpuStorage) -> Vec<T> {
        s.to_vec(&Layout::contiguous(&[s.len()]))
    }

    /// One storage per dtype from small integers (floats: quarters, with an occasional NaN).
    fn all_dtypes(r: &mut Rng, len: usize, nan: bool) -> Vec<CpuStorage> {
        let ints: Vec<i64> = (0..len).map(|_| r.below(7) as i64 - 3).collect();
        let fl: Vec<f64> = ints
            .iter()
            .map(|&i| {
                if nan && r.below(16) == 0 {
                    f64::NAN
                } else {
                    i as f64 / 4.0
                }
            })
            .collect();
        vec![
            CpuStorage::from_vec(ints.iter().map(|&i| i > 0).collect::<Vec<bool>>()),
            CpuStorage::from_vec(
                ints.iter()
                    .map(|&i| (i + 3) as u8 * 40)
                    .collect::<Vec<u8>>(),
            ),
            CpuStorage::from_vec(ints.clone()),
            CpuStorage::from_vec(fl.iter().map(|&v| v as f32).collect::<Vec<f32>>()),
            CpuStorage::from_vec(fl),
        ]
    }

    /// The naive reduction of one group of values, in f64 (floats) or wrapping i64 (others).
    /// `(fs, is)`: the whole storage as f64 and as i64.
    fn reference(
        s: &CpuStorage,
        (fs, is): (&[f64], &[i64]),
        g: &[usize],
        op: ReduceOp,
    ) -> (Option<f64>, Option<i64>) {
        let f = |p: usize| fs[p];
        let i = |p: usize| is[p];
        if s.dtype().is_float() {
            let xs: Vec<f64> = g.iter().map(|&p| f(p)).collect();
            let v = match op {
                ReduceOp::Sum => xs.iter().sum(),
                ReduceOp::Prod => xs.iter().product(),
                ReduceOp::Max => xs.iter().fold(f64::NEG_INFINITY, |a, &x| {
                    if a.is_nan() || x.is_nan() {
                        f64::NAN
                    } else {
                        a.max(x)
                    }
                }),
                ReduceOp::Min => xs.iter().fold(f64::INFINITY, |a, &x| {
                    if a.is_nan() || x.is_nan() {
                        f64::NAN
                    } else {
                        a.min(x)
                    }
                }),
            };
            (Some(v), None)
        } else {
            let xs: Vec<i64> = g.iter().map(|&p| i(p)).collect();
            let v = match op {
                ReduceOp::Sum => xs.iter().fold(0i64, |a, &x| a.wrapping_add(x)),
                ReduceOp::Prod => xs.iter().fold(1i64, |a, &x| a.wrapping_mul(x)),
                ReduceOp::Max => *xs.iter().max().unwrap(),
                ReduceOp::Min => *xs.iter().min().unwrap(),
            };
            (None, Some(v))
        }
    }

    fn check_reduce(s: &CpuStorage, l: &Layout, dims: &[usize], op: ReduceOp) {
        let mask = reduce_mask("t", l.shape(), dims);
        let g = groups(l, &mask);
        let got = s.reduce(l, dims, op);
        assert_eq!(got.dtype(), reduce_dtype(op, s.dtype()));
        assert_eq!(got.len(), g.len());
        let (gf, gi) = (vals::<f64>(&got), vals::<i64>(&got));
        let all = (vals::<f64>(s), vals::<i64>(s));
        for (k, grp) in g.iter().enumerate() {
            match reference(s, (&all.0, &all.1), grp, op) {
                (Some(want), _) => assert!(
                    close(gf[k], want, 1e-5),
                    "{op:?} {:?} {l:?} dims {dims:?} out {k}: got {} want {want}",
                    s.dtype(),
                    gf[k]
                ),
                (_, Some(want)) => assert_eq!(gi[k], want, "{op:?} {:?} {l:?} {dims:?}", s.dtype()),
                _ => unreachable!(),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn reduce_matches_reference(seed in any::<u64>()) {
            let mut r = Rng(seed);
            let (len, l) = random_layout(&mut r, 4);
            let dims = random_dims(&mut r, l.ndim());
            let mask = reduce_mask("t", l.shape(), &dims);
            let count: usize = (0..l.ndim()).filter(|&d| mask[d]).map(|d| l.shape()[d]).product();
            for s in all_dtypes(&mut r, len, true) {
                for op in [ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min] {
                    if count == 0 && matches!(op, ReduceOp::Max | ReduceOp::Min) {
                        continue;
                    }
                    check_reduce(&s, &l, &dims, op);
                }
            }
        }

        #[test]
        fn arg_reduce_matches_reference(seed in any::<u64>()) {
            let mut r = Rng(seed);
            let (len, l) = random_layout(&mut r, 4);
            let nd = l.ndim();
            let dim = if nd == 0 { 0 } else { r.below(nd) };
            if nd > 0 && l.shape()[dim] == 0 {
                return Ok(());
            }
            let mut mask = vec![false; nd];
            if nd > 0 {
                mask[dim] = true;
            }
            let g = groups(&l, &mask);
            for s in all_dtypes(&mut r, len, true) {
                for op in [ArgReduceOp::Max, ArgReduceOp::Min] {
                    let (v, i) = s.arg_reduce(&l, dim, op);
                    prop_assert_eq!(v.dtype(), s.dtype());
                    let (vf, ii) = (vals::<f64>(&v), vals::<i64>(&i));
                    prop_assert_eq!(ii.len(), g.len());
                    for (k, grp) in g.iter().enumerate() {
                        let xs: Vec<f64> = grp.iter().map(|&p| s.to_vec::<f64>(&Layout::new(&[1], &[1], p))[0]).collect();
                        let mut best = 0;
                        for (j, &x) in xs.iter().enumerate() {
                            let b = xs[best];
                            let better = match op { ArgReduceOp::Max => x > b, ArgReduceOp::Min => x < b };
                            if !b.is_nan() && (better || x.is_nan()) {
                                best = j;
                            }
                        }
                        prop_assert_eq!(ii[k], best as i64, "{:?} {:?} {:?} dim {} {:?}", op, s.dtype(), l, dim, xs);
                        prop_assert!(close(vf[k], xs[best], 0.0));
                    }
                }
            }
        }

        #[test]
        fn var_and_logsumexp_match_reference(seed in any::<u64>()) {
            let mut r = Rng(seed);
            let (len, l) = random_layout(&mut r, 4);
            let dims = random_dims(&mut r, l.ndim());
            let mask = reduce_mask("t", l.shape(), &dims);
            let g = groups(&l, &mask);
            let correction = r.below(3) as f64;
            let data: Vec<f64> = (0..len).map(|_| match r.below(20) {
                0 => f64::NEG_INFINITY,
                _ => (r.below(2001) as f64 - 1000.0) / 100.0,
            }).collect();
            let stores = [
                CpuStorage::from_vec(data.iter().map(|&v| v as f32).collect::<Vec<f32>>()),
                CpuStorage::from_vec(data.clone()),
                CpuStorage::from_vec(data.iter().map(|&v| v.max(-5.0) as i64).collect::<Vec<i64>>()),
            ];
            for s in &stores {
                let fin = |p: usize| s.to_vec::<f64>(&Layout::new(&[1], &[1], p))[0];
                let lse = s.logsumexp(&l, &dims);
                prop_assert_eq!(lse.dtype(), s.dtype().to_float());
                let lse = vals::<f64>(&lse);
                for (k, grp) in g.iter().enumerate() {
                    let xs: Vec<f64> = grp.iter().map(|&p| fin(p)).collect();
                    let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let want = if m == f64::NEG_INFINITY { m } else { m + xs.iter().map(|&x| (x - m).exp()).sum::<f64>().ln() };
                    prop_assert!(close(lse[k], want, 1e-5), "lse {:?} {:?} got {} want {}", s.dtype(), xs, lse[k], want);
                }
                if !s.dtype().is_float() {
                    continue;
                }
                let var = vals::<f64>(&s.var(&l, &dims, correction));
                for (k, grp) in g.iter().enumerate() {
                    // Finite data only for the variance check.
                    let xs: Vec<f64> = grp.iter().map(|&p| fin(p)).collect();
                    if xs.iter().any(|x| x.is_infinite()) {
                        continue;
                    }
                    let n = xs.len() as f64;
                    let mean = xs.iter().sum::<f64>() / n;
                    let m2: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
                    let want = m2 / (n - correction).max(0.0);
                    prop_assert!(close(var[k], want, 1e-4), "var {:?} {:?} c={} got {} want {}", s.dtype(), xs, correction, var[k], want);
                }
            }
        }
    }

    #[test]
    fn sum_of_16m_tenths_is_accurate() {
        let n = 1 << 24;
        let s = CpuStorage::from_vec(vec![0.1f32; n]);
        let exact = n as f64 * 0.1f32 as f64;
        for (shape, dims) in [
            (vec![n], vec![]),
            (vec![4096, 4096], vec![1]),
            (vec![4096, 4096], vec![0]),
            (vec![64, 512, 512], vec![0, 2]),
        ] {
            let l = Layout::contiguous(&shape);
            let got = vals::<f32>(&s.reduce(&l, &dims, ReduceOp::Sum));
            let want = exact / got.len() as f64;
            for v in got {
                let rel = ((v as f64 - want) / want).abs();
                assert!(rel < 1e-6, "{shape:?} {dims:?}: {v} vs {want} (rel {rel})");
            }
        }
    }

    /// Row lengths around every boundary of the four-stream path of `tree_sum` (multiples of
    /// the chunk per stream, one more, one less) against a plain f64 sum.
    #[test]
    fn contiguous_sums_across_stream_boundaries() {
        let mut r = Rng(3);
        for len in [
            0, 1, 127, 128, 511, 512, 513, 1023, 1024, 1025, 2047, 2048, 4999, 70_001,
        ] {
            let v: Vec<f64> = (0..len)
                .map(|_| (r.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
                .collect();
            let want: f64 = v.iter().sum();
            let l = Layout::contiguous(&[len]);
            let f64s = CpuStorage::from_vec(v.clone());
            let got = vals::<f64>(&f64s.reduce(&l, &[], ReduceOp::Sum))[0];
            assert!((got - want).abs() < 1e-9, "f64 len {len}: {got} vs {want}");
            let v32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            let want32: f64 = v32.iter().map(|&x| x as f64).sum();
            let got = vals::<f32>(&f32s(&v32).reduce(&l, &[], ReduceOp::Sum))[0];
            assert!(
                (got as f64 - want32).abs() < 1e-4,
                "f32 len {len}: {got} vs {want32}"
            );
        }
    }

    #[test]
    fn large_strided_reductions_match_reference() {
        // Above the parallel threshold, so every split strategy runs.
        let mut r = Rng(7);
        let (a, b, c) = (61, 67, 71);
        let data: Vec<f64> = (0..a * b * c)
            .map(|_| r.below(1000) as f64 / 7.0 - 70.0)
            .collect();
        let stores = [
            CpuStorage::from_vec(data.iter().map(|&v| v as f32).collect::<Vec<f32>>()),
            CpuStorage::from_vec(data.iter().map(|&v| v as i64).collect::<Vec<i64>>()),
        ];
        let base = Layout::contiguous(&[a, b, c]);
        let layouts = [
            base.clone(),
            base.permute(&[2, 0, 1]),
            base.transpose(0, 1),
            base.slice(2, 1, c, 2),
            Layout::contiguous(&[a * b, c]),
            Layout::contiguous(&[a * b, c]).transpose(0, 1),
            Layout::contiguous(&[a * b * c]),
            // A short reduced outer dim with a long kept one (private accumulators too big).
            Layout::contiguous(&[4, a * b * c / 4]),
            Layout::contiguous(&[a * b * c / 4, 4]),
        ];
        for s in &stores {
            let all = vals::<f64>(s);
            for l in &layouts {
                let nd = l.ndim();
                for bits in 0..(1usize << nd) {
                    let dims: Vec<usize> = (0..nd).filter(|d| bits >> d & 1 == 1).collect();
                    check_reduce(s, l, &dims, ReduceOp::Sum);
                    check_reduce(s, l, &dims, ReduceOp::Max);
                }
                for dim in 0..nd {
                    let (v, i) = s.arg_reduce(l, dim, ArgReduceOp::Min);
                    let mut mask = vec![false; nd];
                    mask[dim] = true;
                    let mins = s.reduce(l, &[dim], ReduceOp::Min);
                    let v = vals::<f64>(&v);
                    assert_eq!(v, vals::<f64>(&mins));
                    let g = groups(l, &mask);
                    for (k, &ix) in vals::<i64>(&i).iter().enumerate() {
                        let x = all[g[k][ix as usize]];
                        assert_eq!(x, v[k]);
                        let first = g[k].iter().position(|&q| all[q] == x);
                        assert_eq!(first, Some(ix as usize));
                    }
                }
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        let mut r = Rng(11);
        let v: Vec<f32> = (0..1 << 20)
            .map(|_| r.below(10_000) as f32 * 1e-3 - 5.0)
            .collect();
        let s = f32s(&v);
        let cases = [(vec![1 << 20], vec![]), (vec![1 << 10, 1 << 10], vec![0])];
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                cases
                    .iter()
                    .map(|(shape, dims)| {
                        let l = Layout::contiguous(shape);
                        let sum = vals::<f32>(&s.reduce(&l, dims, ReduceOp::Sum));
                        (sum, vals::<f32>(&s.var(&l, dims, 1.0)))
                    })
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn dtype_rules() {
        let l = Layout::contiguous(&[4]);
        let b = CpuStorage::from_vec(vec![true, false, true, true]);
        assert_eq!(vals::<i64>(&b.reduce(&l, &[], ReduceOp::Sum)), vec![3]);
        assert_eq!(b.reduce(&l, &[], ReduceOp::Sum).dtype(), DType::I64);
        assert_eq!(vals::<i64>(&b.reduce(&l, &[], ReduceOp::Prod)), vec![0]);
        let mx = b.reduce(&l, &[], ReduceOp::Max);
        assert_eq!((mx.dtype(), vals::<bool>(&mx)), (DType::Bool, vec![true]));
        assert_eq!(vals::<bool>(&b.reduce(&l, &[], ReduceOp::Min)), vec![false]);
        let u = CpuStorage::from_vec(vec![200u8, 100, 7, 255]);
        assert_eq!(vals::<i64>(&u.reduce(&l, &[], ReduceOp::Sum)), vec![562]);
        assert_eq!(
            vals::<i64>(&u.reduce(&l, &[], ReduceOp::Prod)),
            vec![200 * 100 * 7 * 255]
        );
        let m = u.reduce(&l, &[], ReduceOp::Min);
        assert_eq!((m.dtype(), vals::<u8>(&m)), (DType::U8, vec![7]));
        let f = f32s(&[1.5, 2.0, -3.0, 0.5]);
        assert_eq!(vals::<f32>(&f.reduce(&l, &[], ReduceOp::Prod)), vec![-4.5]);
        assert_eq!(reduce_dtype(ReduceOp::Sum, DType::F64), DType::F64);
        // A 0-dim tensor reduces to itself.
        let z = CpuStorage::from_vec(vec![2.5f64]);
        let l0 = Layout::contiguous(&[]);
        assert_eq!(vals::<f64>(&z.reduce(&l0, &[], ReduceOp::Sum)), vec![2.5]);
        assert_eq!(vals::<f64>(&z.reduce(&l0, &[0], ReduceOp::Max)), vec![2.5]);
    }

    #[test]
    fn nan_propagates() {
        let l = Layout::contiguous(&[2, 20]);
        let mut v: Vec<f32> = (0..40).map(|i| i as f32).collect();
        v[27] = f32::NAN;
        let s = f32s(&v);
        for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Prod] {
            let r = vals::<f32>(&s.reduce(&l, &[1], op));
            assert!(!r[0].is_nan() && r[1].is_nan(), "{op:?}: {r:?}");
            let r = vals::<f32>(&s.reduce(&l, &[0], op));
            assert!(r[7].is_nan() && !r[6].is_nan(), "{op:?}: {r:?}");
        }
    }

    #[test]
    fn empty_reductions() {
        let s = CpuStorage::from_vec(Vec::<f32>::new());
        let l = Layout::contiguous(&[0, 3]);
        assert_eq!(
            vals::<f32>(&s.reduce(&l, &[0], ReduceOp::Sum)),
            vec![0.0; 3]
        );
        assert_eq!(
            vals::<f32>(&s.reduce(&l, &[0], ReduceOp::Prod)),
            vec![1.0; 3]
        );
        assert_eq!(vals::<f32>(&s.reduce(&l, &[], ReduceOp::Sum)), vec![0.0]);
        assert_eq!(s.reduce(&l, &[1], ReduceOp::Max).len(), 0);
        assert_eq!(s.reduce(&l, &[1], ReduceOp::Sum).len(), 0);
        let i = CpuStorage::from_vec(Vec::<i64>::new());
        assert_eq!(vals::<i64>(&i.reduce(&l, &[0], ReduceOp::Sum)), vec![0; 3]);
        assert!(vals::<f32>(&s.var(&l, &[0], 1.0))
            .iter()
            .all(|v| v.is_nan()));
        assert_eq!(
            vals::<f32>(&s.logsumexp(&l, &[0])),
            vec![f32::NEG_INFINITY; 3]
        );
    }

    #[test]
    #[should_panic(
        expected = "max(): Expected reduction dim to be specified for input.numel() == 0"
    )]
    fn max_of_empty_panics() {
        let s = CpuStorage::from_vec(Vec::<f32>::new());
        s.reduce(&Layout::contiguous(&[0, 3]), &[], ReduceOp::Max);
    }

    #[test]
    #[should_panic(expected = "min(): Expected reduction dim 0 to have non-zero size")]
    fn min_over_empty_dim_panics() {
        let s = CpuStorage::from_vec(Vec::<i64>::new());
        s.reduce(&Layout::contiguous(&[0, 3]), &[0], ReduceOp::Min);
    }

    #[test]
    #[should_panic(expected = "argmax(): Expected reduction dim 1 to have non-zero size")]
    fn argmax_over_empty_dim_panics() {
        let s = CpuStorage::from_vec(Vec::<f32>::new());
        s.arg_reduce(&Layout::contiguous(&[3, 0]), 1, ArgReduceOp::Max);
    }

    #[test]
    fn argmax_first_occurrence_and_nan() {
        let l = Layout::contiguous(&[6]);
        let s = f32s(&[1.0, 3.0, 3.0, 2.0, -1.0, -1.0]);
        let (v, i) = s.arg_reduce(&l, 0, ArgReduceOp::Max);
        assert_eq!((vals::<f32>(&v), vals::<i64>(&i)), (vec![3.0], vec![1]));
        let (v, i) = s.arg_reduce(&l, 0, ArgReduceOp::Min);
        assert_eq!((vals::<f32>(&v), vals::<i64>(&i)), (vec![-1.0], vec![4]));
        let s = f32s(&[1.0, f32::NAN, 5.0, f32::NAN]);
        for op in [ArgReduceOp::Max, ArgReduceOp::Min] {
            let (v, i) = s.arg_reduce(&Layout::contiguous(&[4]), 0, op);
            assert!(vals::<f32>(&v)[0].is_nan());
            assert_eq!(vals::<i64>(&i), vec![1]);
        }
        // Along dim 0 of a matrix (column-wise scan), with a NaN in one column.
        let s = f32s(&[1.0, 5.0, f32::NAN, 7.0, 5.0, 0.0]);
        let (v, i) = s.arg_reduce(&Layout::contiguous(&[2, 3]), 0, ArgReduceOp::Max);
        assert_eq!(vals::<i64>(&i), vec![1, 0, 0]);
        assert_eq!(vals::<f32>(&v)[..2], [7.0, 5.0]);
        // A bool tensor keeps its dtype.
        let b = CpuStorage::from_vec(vec![false, true, true]);
        let (v, i) = b.arg_reduce(&Layout::contiguous(&[3]), 0, ArgReduceOp::Max);
        assert_eq!((vals::<bool>(&v), vals::<i64>(&i)), (vec![true], vec![1]));
    }

    #[test]
    fn var_cases() {
        let s = f32s(&[1.0, 2.0, 3.0, 4.0]);
        let l = Layout::contiguous(&[4]);
        let v = |c: f64| vals::<f32>(&s.var(&l, &[], c))[0];
        assert!((v(1.0) - 5.0 / 3.0).abs() < 1e-6);
        assert!((v(0.0) - 1.25).abs() < 1e-6);
        assert_eq!(v(4.0), f32::INFINITY);
        assert_eq!(v(7.0), f32::INFINITY);
        let one = f32s(&[3.0]);
        assert!(vals::<f32>(&one.var(&Layout::contiguous(&[1]), &[], 1.0))[0].is_nan());
        assert_eq!(
            vals::<f32>(&one.var(&Layout::contiguous(&[1]), &[], 0.0)),
            vec![0.0]
        );
        // Large offset: two-pass keeps precision.
        let big: Vec<f64> = (0..1000).map(|i| 1e9 + (i % 2) as f64).collect();
        let s = CpuStorage::from_vec(big);
        let r = vals::<f64>(&s.var(&Layout::contiguous(&[1000]), &[], 0.0))[0];
        assert!((r - 0.25).abs() < 1e-9, "{r}");
    }

    #[test]
    #[should_panic(expected = "var(): std and var only support floating point")]
    fn var_of_int_panics() {
        CpuStorage::from_vec(vec![1i64, 2]).var(&Layout::contiguous(&[2]), &[], 1.0);
    }

    #[test]
    fn logsumexp_cases() {
        let l = Layout::contiguous(&[2]);
        let r = vals::<f32>(&f32s(&[1000.0, 1000.0]).logsumexp(&l, &[]))[0];
        assert!((r - (1000.0 + std::f32::consts::LN_2)).abs() < 1e-3);
        let r = vals::<f32>(&f32s(&[f32::NEG_INFINITY; 2]).logsumexp(&l, &[]))[0];
        assert_eq!(r, f32::NEG_INFINITY);
        let r = vals::<f32>(&f32s(&[f32::INFINITY, 1.0]).logsumexp(&l, &[]))[0];
        assert_eq!(r, f32::INFINITY);
        let r = vals::<f32>(&f32s(&[f32::NAN, 1.0]).logsumexp(&l, &[]))[0];
        assert!(r.is_nan());
        let i = CpuStorage::from_vec(vec![0i64, 0]).logsumexp(&l, &[]);
        assert_eq!(i.dtype(), DType::F32);
        assert!((vals::<f32>(&i)[0] - std::f32::consts::LN_2).abs() < 1e-6);
    }

    /// Throughput check (run with `cargo test --release -p ember-kernels -- --ignored`).
    #[test]
    #[ignore]
    fn time_sums() {
        let n = 1 << 24;
        let s = CpuStorage::from_vec((0..n).map(|i| (i % 97) as f32 * 0.01).collect::<Vec<_>>());
        let bench = |name: &str, l: &Layout, dims: &[usize], op: ReduceOp| {
            let (wall, cpu) = time_ms(|| {
                std::hint::black_box(s.reduce(l, dims, op));
            });
            eprintln!(
                "{name}: best {wall:.3} ms wall ({:.1} GB/s), {cpu:.3} ms cpu/call",
                n as f64 * 4.0 / wall / 1e6
            );
        };
        {
            // In-cache throughput of each loop shape (one thread, 16K f32 = 64 KiB).
            let cached = |name: &str, l: Layout, dims: &[usize], op: ReduceOp| {
                let (wall, _) = time_ms(|| {
                    for _ in 0..100 {
                        std::hint::black_box(s.reduce(&l, dims, op));
                    }
                });
                eprintln!(
                    "{name} in cache: {:.3} ns/elem",
                    wall * 1e6 / (100.0 * 16384.0)
                );
            };
            cached(
                "sum [16384] all",
                Layout::contiguous(&[16384]),
                &[],
                ReduceOp::Sum,
            );
            cached(
                "sum [64,256] dim 1",
                Layout::contiguous(&[64, 256]),
                &[1],
                ReduceOp::Sum,
            );
            cached(
                "sum [64,256] dim 0",
                Layout::contiguous(&[64, 256]),
                &[0],
                ReduceOp::Sum,
            );
            cached(
                "max [16384] all",
                Layout::contiguous(&[16384]),
                &[],
                ReduceOp::Max,
            );
            cached(
                "max [64,256] dim 0",
                Layout::contiguous(&[64, 256]),
                &[0],
                ReduceOp::Max,
            );
            cached(
                "sum [4096,4] dim 1",
                Layout::contiguous(&[4096, 4]),
                &[1],
                ReduceOp::Sum,
            );
            cached(
                "sum [4096,4] dim 0",
                Layout::contiguous(&[4096, 4]),
                &[0],
                ReduceOp::Sum,
            );
            cached(
                "sum [128,128]^T dim 1",
                Layout::contiguous(&[128, 128]).transpose(0, 1),
                &[1],
                ReduceOp::Sum,
            );
        }
        let c = |shape: &[usize]| Layout::contiguous(shape);
        bench("sum all 16M f32", &c(&[n]), &[], ReduceOp::Sum);
        bench(
            "sum [4096,4096] dim 1",
            &c(&[4096, 4096]),
            &[1],
            ReduceOp::Sum,
        );
        bench(
            "sum [16384,1024] dim 0",
            &c(&[16384, 1024]),
            &[0],
            ReduceOp::Sum,
        );
        let t = c(&[4096, 4096]).transpose(0, 1);
        bench("sum [4096,4096]^T dim 0", &t, &[0], ReduceOp::Sum);
        bench("max all 16M f32", &c(&[n]), &[], ReduceOp::Max);
        bench(
            "max [16384,1024] dim 0",
            &c(&[16384, 1024]),
            &[0],
            ReduceOp::Max,
        );
    }
}
