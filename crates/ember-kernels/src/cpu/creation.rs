//! CPU kernels of the creation ops: random fills from a reserved Philox stream, `arange`,
//! `linspace` and `eye`. Every random output element `j` reads block `j / K`, lane `j % K` of its
//! stream (see `crate::random`), so the values do not depend on how the work is split.

use super::buffer::Buffer;
use super::map::map;
use super::num::Float;
use super::par::for_each_chunk_mut;
use super::{CpuElement, CpuStorage};
use crate::cpu_dispatch_float;
use crate::dtype::DType;
use crate::layout::Layout;
use crate::random::PhiloxStream;

/// Random fills below this many elements stay on one thread (a Philox block costs ~10 ns, so
/// smaller fills finish before rayon would have spread them).
pub const RANDOM_GRAIN: usize = 1 << 14;

/// 2⁻²⁴ and 2⁻⁵³: one unit in the last place of a [0, 1) float built from 24 / 53 random bits.
const F32_UNIT: f32 = 1.0 / (1u32 << 24) as f32;
const F64_UNIT: f64 = 1.0 / (1u64 << 53) as f64;

/// A float in [0, 1) from the top 24 bits of `x`.
#[inline(always)]
fn unit_f32(x: u32) -> f32 {
    (x >> 8) as f32 * F32_UNIT
}

/// A float in [0, 1) from the top 53 bits of `hi:lo`.
#[inline(always)]
fn unit_f64(lo: u32, hi: u32) -> f64 {
    ((((hi as u64) << 32) | lo as u64) >> 11) as f64 * F64_UNIT
}

/// Philox blocks generated per batch by [`fill_blocks`].
const BATCH: usize = 16;

/// The random words of `BATCH` consecutive blocks, word-major: `w[k][i]` is word `k` of block `i`.
type Words = [[u32; BATCH]; 4];

/// Fills `out[j]` with `f(words)[j % K][j / K]` over batches of `BATCH` blocks, in parallel
/// chunks. `f` maps the words of a batch to `K` values per block, word-major so that its loops
/// run over arrays of lanes and vectorise; only a chunk's ragged ends are generated twice.
fn fill_blocks<T: Copy + Default + Send, const K: usize>(
    out: &mut [T],
    stream: PhiloxStream,
    f: impl Fn(&Words) -> [[T; BATCH]; K] + Sync,
) {
    for_each_chunk_mut(out, RANDOM_GRAIN, |start, chunk| {
        let end = start + chunk.len();
        let mut j = start;
        let mut flat = [[T::default(); K]; BATCH];
        while j < end {
            let first = j / K;
            let vals = f(&stream.blocks::<BATCH>(first as u64));
            for (i, v) in flat.iter_mut().enumerate() {
                *v = std::array::from_fn(|k| vals[k][i]);
            }
            let flat = flat.as_flattened();
            let from = j - first * K;
            let take = (flat.len() - from).min(end - j);
            chunk[j - start..j - start + take].copy_from_slice(&flat[from..from + take]);
            j += take;
        }
    });
}

/// `g` of each word: four values per block.
#[inline(always)]
fn per_word<T: Copy + Default>(w: &Words, g: impl Fn(u32) -> T) -> [[T; BATCH]; 4] {
    let mut out = [[T::default(); BATCH]; 4];
    for (o, w) in out.iter_mut().zip(w) {
        for (o, &x) in o.iter_mut().zip(w) {
            *o = g(x);
        }
    }
    out
}

/// `g` of each pair of words (a 64-bit draw): two values per block.
#[inline(always)]
fn per_pair<T: Copy + Default>(w: &Words, g: impl Fn(u32, u32) -> T) -> [[T; BATCH]; 2] {
    let mut out = [[T::default(); BATCH]; 2];
    for (h, o) in out.iter_mut().enumerate() {
        for (i, o) in o.iter_mut().enumerate() {
            *o = g(w[2 * h][i], w[2 * h + 1][i]);
        }
    }
    out
}

/// Largest value of the type strictly below `x` (finite `x`).
fn next_down_f32(x: f32) -> f32 {
    if x == 0.0 {
        -f32::from_bits(1)
    } else if x > 0.0 {
        f32::from_bits(x.to_bits() - 1)
    } else {
        f32::from_bits(x.to_bits() + 1)
    }
}

fn next_down_f64(x: f64) -> f64 {
    if x == 0.0 {
        -f64::from_bits(1)
    } else if x > 0.0 {
        f64::from_bits(x.to_bits() - 1)
    } else {
        f64::from_bits(x.to_bits() + 1)
    }
}

/// `n` uniform values in `[low, high)` of a float `dtype`.
pub fn uniform(n: usize, low: f64, high: f64, dtype: DType, stream: PhiloxStream) -> CpuStorage {
    match dtype {
        DType::F32 => {
            let mut out = Buffer::<f32>::uninit(n);
            let (lo, hi) = (low as f32, high as f32);
            if hi > lo {
                // `u * range + lo` can round up to `hi`; the cap keeps the interval half-open.
                let (range, cap) = (hi - lo, next_down_f32(hi));
                fill_blocks(&mut out, stream, |w| {
                    per_word(w, |x| (unit_f32(x) * range + lo).min(cap))
                });
            } else {
                out.fill(lo);
            }
            CpuStorage::F32(out)
        }
        DType::F64 => {
            let mut out = Buffer::<f64>::uninit(n);
            if high > low {
                let (range, cap) = (high - low, next_down_f64(high));
                fill_blocks(&mut out, stream, |w| {
                    per_pair(w, |a, b| (unit_f64(a, b) * range + low).min(cap))
                });
            } else {
                out.fill(low);
            }
            CpuStorage::F64(out)
        }
        _ => panic!("uniform: expected a floating-point dtype, got {dtype}"),
    }
}

/// ln x for positive normal f32 `x`, branch-free so that LLVM vectorises it (std's `ln` is a
/// libm call per element) and identical on every platform. Max error about 2 ulp.
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = (bits >> 23) as i32 - 127;
    // Mantissa in [1, 2), then folded into [√½, √2) so the series argument stays small.
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    e += big as i32;
    // ln m = 2 atanh(s) = 2 (s + s³/3 + s⁵/5 + …) with |s| ≤ 0.172.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let poly = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0))));
    e as f32 * std::f32::consts::LN_2 + 2.0 * s * poly
}

/// (sin 2πu, cos 2πu) for `u` in [0, 1), branch-free (vectorisable): the angle is reduced
/// exactly to a quarter turn `q` plus `a` in [-π/4, π/4], where Taylor series of degree 9/10 are
/// accurate to f32 precision, then rotated by `q`.
#[inline(always)]
pub fn sin_cos_turns_f32(u: f32) -> (f32, f32) {
    let t = u * 4.0;
    // t + 0.5 ≥ 0, so truncation is floor (and, unlike `floor`, needs no SSE4.1 or libm call).
    let qi = (t + 0.5) as i32;
    let a = (t - qi as f32) * std::f32::consts::FRAC_PI_2;
    let a2 = a * a;
    let s = a
        * (1.0
            + a2 * (-1.0 / 6.0
                + a2 * (1.0 / 120.0 + a2 * (-1.0 / 5040.0 + a2 * (1.0 / 362880.0)))));
    let c = 1.0
        + a2 * (-0.5
            + a2 * (1.0 / 24.0
                + a2 * (-1.0 / 720.0 + a2 * (1.0 / 40320.0 + a2 * (-1.0 / 3628800.0)))));
    let qi = qi as u32 & 3;
    let (x, y) = if qi & 1 != 0 { (c, s) } else { (s, c) };
    let sin = f32::from_bits(x.to_bits() ^ ((qi & 2) << 30));
    let cos = f32::from_bits(y.to_bits() ^ (((qi + 1) & 2) << 30));
    (sin, cos)
}

/// `n` normal values with `mean` and `std` of a float `dtype`, by Box–Muller: each pair of
/// uniforms `(u1, u2)` gives `r cos θ, r sin θ` with `r = √(-2 ln(1 - u1))`, `θ = 2π u2`.
pub fn normal(n: usize, mean: f64, std: f64, dtype: DType, stream: PhiloxStream) -> CpuStorage {
    match dtype {
        DType::F32 => {
            let mut out = Buffer::<f32>::uninit(n);
            let (mean, std) = (mean as f32, std as f32);
            let pair = move |a: u32, b: u32| {
                // 1 - u lies in (0, 1], so the log is finite.
                let r = (-2.0 * ln_f32(1.0 - unit_f32(a))).sqrt();
                let (s, c) = sin_cos_turns_f32(unit_f32(b));
                (r * c * std + mean, r * s * std + mean)
            };
            fill_blocks(&mut out, stream, |w| {
                let mut z = [[0f32; BATCH]; 4];
                for h in 0..2 {
                    for i in 0..BATCH {
                        (z[2 * h][i], z[2 * h + 1][i]) = pair(w[2 * h][i], w[2 * h + 1][i]);
                    }
                }
                z
            });
            CpuStorage::F32(out)
        }
        DType::F64 => {
            let mut out = Buffer::<f64>::uninit(n);
            fill_blocks(&mut out, stream, |w| {
                let mut z = [[0f64; BATCH]; 2];
                for i in 0..BATCH {
                    let r = (-2.0 * (1.0 - unit_f64(w[0][i], w[1][i])).ln()).sqrt();
                    let (s, c) = (std::f64::consts::TAU * unit_f64(w[2][i], w[3][i])).sin_cos();
                    (z[0][i], z[1][i]) = (r * c * std + mean, r * s * std + mean);
                }
                z
            });
            CpuStorage::F64(out)
        }
        _ => panic!("normal: expected a floating-point dtype, got {dtype}"),
    }
}

/// The 32-bit threshold below which a draw counts as a success with probability `p` (exact for
/// `p = 0` and `p = 1`).
#[inline(always)]
fn threshold(p: f64) -> u64 {
    (p * 4294967296.0) as u64
}

/// 0/1 draws with the per-element probabilities of `probs` (float, any layout), same dtype.
pub fn bernoulli(probs: &CpuStorage, layout: &Layout, stream: PhiloxStream) -> CpuStorage {
    fn go<T: CpuElement>(p: &[T], layout: &Layout, stream: PhiloxStream) -> CpuStorage {
        // Gather strided probabilities first so the random fill below runs over one slice.
        let gathered;
        let p = match layout.contiguous_range() {
            Some((s, e)) => &p[s..e],
            None => {
                gathered = map(p, layout, |x| x);
                &gathered[..]
            }
        };
        if let Some(bad) = p.iter().find(|x| !(0.0..=1.0).contains(&x.to_f64())) {
            panic!("bernoulli: expected all probabilities in [0, 1], but found p={bad:?}");
        }
        let mut out = Buffer::<T>::uninit(p.len());
        for_each_chunk_mut(&mut out, RANDOM_GRAIN, |start, chunk| {
            let end = start + chunk.len();
            let mut j = start;
            while j < end {
                let first = j / 4;
                let w = stream.blocks::<BATCH>(first as u64);
                let stop = end.min(4 * (first + BATCH));
                for jj in j..stop {
                    let e = jj - 4 * first;
                    let hit = (w[e % 4][e / 4] as u64) < threshold(p[jj].to_f64());
                    chunk[jj - start] = T::from_bool(hit);
                }
                j = stop;
            }
        });
        T::wrap(out)
    }
    cpu_dispatch_float!(probs, "bernoulli", p => go(p, layout, stream))
}

/// `n` draws that are 1 with probability `p` and 0 otherwise, in any `dtype`.
pub fn bernoulli_scalar(n: usize, p: f64, dtype: DType, stream: PhiloxStream) -> CpuStorage {
    fn go<T: CpuElement>(n: usize, p: f64, stream: PhiloxStream) -> CpuStorage {
        let mut out = Buffer::<T>::uninit(n);
        if p >= 1.0 {
            out.fill(T::from_bool(true));
        } else {
            // A 32-bit threshold compares faster than the 64-bit one (which only p = 1 needs).
            let t = threshold(p) as u32;
            fill_blocks(&mut out, stream, |w| per_word(w, |x| T::from_bool(x < t)));
        }
        T::wrap(out)
    }
    match dtype {
        DType::Bool => go::<bool>(n, p, stream),
        DType::U8 => go::<u8>(n, p, stream),
        DType::I64 => go::<i64>(n, p, stream),
        DType::F32 => go::<f32>(n, p, stream),
        DType::F64 => go::<f64>(n, p, stream),
    }
}

/// A 64-bit draw in `[0, range)` from two random words (multiply-shift: bias below range / 2⁶⁴).
#[inline(always)]
fn below(lo: u32, hi: u32, range: u64) -> u64 {
    let x = ((hi as u64) << 32) | lo as u64;
    ((x as u128 * range as u128) >> 64) as u64
}

/// `n` int64 values uniform in `[low, high)` (`low < high`).
pub fn randint(n: usize, low: i64, high: i64, stream: PhiloxStream) -> CpuStorage {
    let range = (high as i128 - low as i128) as u64;
    let mut out = Buffer::<i64>::uninit(n);
    fill_blocks(&mut out, stream, |w| {
        per_pair(w, |a, b| low.wrapping_add(below(a, b, range) as i64))
    });
    CpuStorage::I64(out)
}

/// A random permutation of `0..n` by Fisher–Yates: swap `t` (for `i = n-1-t`) exchanges `i` with
/// a draw in `[0, i]` taken from block `t / 2`, lane `t % 2`.
pub fn randperm(n: usize, stream: PhiloxStream) -> CpuStorage {
    let mut out: Vec<i64> = (0..n as i64).collect();
    let mut w: Words = [[0; BATCH]; 4];
    for t in 0..n.saturating_sub(1) {
        if t % (2 * BATCH) == 0 {
            w = stream.blocks::<BATCH>((t / 2) as u64);
        }
        let i = n - 1 - t;
        let (b, l) = ((t / 2) % BATCH, 2 * (t % 2));
        let j = below(w[l][b], w[l + 1][b], i as u64 + 1) as usize;
        out.swap(i, j);
    }
    CpuStorage::from_vec(out)
}

/// Fills a new buffer with `f(i)` for each index, in parallel chunks.
fn tabulate<T: CpuElement>(n: usize, f: impl Fn(usize) -> T + Sync) -> CpuStorage {
    let mut out = Buffer::<T>::uninit(n);
    for_each_chunk_mut(&mut out, super::par::ELEMENTWISE_GRAIN, |start, chunk| {
        for (k, o) in chunk.iter_mut().enumerate() {
            *o = f(start + k);
        }
    });
    T::wrap(out)
}

/// `n` values `start + i * step`: in f64 for float dtypes (as PyTorch's CPU kernel), in exact
/// integer arithmetic after truncating `start` and `step` for integer dtypes.
pub fn arange(n: usize, start: f64, step: f64, dtype: DType) -> CpuStorage {
    match dtype {
        DType::F32 => tabulate(n, |i| (start + step * i as f64) as f32),
        DType::F64 => tabulate(n, |i| start + step * i as f64),
        DType::I64 | DType::U8 => {
            let (s, st) = (start as i64, step as i64);
            let v = move |i: usize| s.wrapping_add(st.wrapping_mul(i as i64));
            if dtype == DType::I64 {
                tabulate(n, v)
            } else {
                tabulate(n, move |i| v(i) as u8)
            }
        }
        DType::Bool => panic!("arange: not implemented for dtype torch.bool"),
    }
}

/// `steps` values from `start` to `end` with PyTorch's formula: `step = (end - start) / (steps-1)`
/// (in the dtype for floats, in f64 for integers), element `i` is `start + step * i` for
/// `i < steps / 2` and `end - step * (steps - 1 - i)` after, so both endpoints are exact.
pub fn linspace(start: f64, end: f64, steps: usize, dtype: DType) -> CpuStorage {
    fn float<T: CpuElement + Float>(start: f64, end: f64, steps: usize) -> CpuStorage {
        let (s, e) = (T::of(start), T::of(end));
        if steps <= 1 {
            return T::wrap(Buffer::filled(steps, s));
        }
        let step = (e - s) / T::of((steps - 1) as f64);
        let half = steps / 2;
        tabulate(steps, move |i| {
            if i < half {
                s + step * T::of(i as f64)
            } else {
                e - step * T::of((steps - 1 - i) as f64)
            }
        })
    }
    fn int<T: CpuElement>(start: f64, end: f64, steps: usize) -> CpuStorage {
        // PyTorch converts the bounds to the integer type first, then steps in f64.
        let (s, e) = (T::from_f64(start).to_i64(), T::from_f64(end).to_i64());
        if steps <= 1 {
            return T::wrap(Buffer::filled(steps, T::from_i64(s)));
        }
        let step = (e as f64 - s as f64) / (steps - 1) as f64;
        let half = steps / 2;
        tabulate(steps, move |i| {
            let v = if i < half {
                s as f64 + step * i as f64
            } else {
                e as f64 - step * (steps - 1 - i) as f64
            };
            T::from_f64(v)
        })
    }
    match dtype {
        DType::F32 => float::<f32>(start, end, steps),
        DType::F64 => float::<f64>(start, end, steps),
        DType::I64 => int::<i64>(start, end, steps),
        DType::U8 => int::<u8>(start, end, steps),
        DType::Bool => panic!("linspace: not implemented for dtype torch.bool"),
    }
}

/// An `n × m` identity-like matrix (ones where row == column), row-major.
pub fn eye(n: usize, m: usize, dtype: DType) -> CpuStorage {
    fn go<T: CpuElement>(n: usize, m: usize) -> CpuStorage {
        let mut out = Buffer::filled(n * m, T::from_bool(false));
        for i in 0..n.min(m) {
            out[i * m + i] = T::from_bool(true);
        }
        T::wrap(out)
    }
    match dtype {
        DType::Bool => go::<bool>(n, m),
        DType::U8 => go::<u8>(n, m),
        DType::I64 => go::<i64>(n, m),
        DType::F32 => go::<f32>(n, m),
        DType::F64 => go::<f64>(n, m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_ln_and_sin_cos_are_accurate() {
        let mut worst_ln = 0f64;
        for k in 1..=(1u32 << 24) {
            // Every input Box–Muller can give: 1 - u for u = k·2⁻²⁴.
            let x = k as f32 * F32_UNIT;
            let got = ln_f32(x) as f64;
            let want = (x as f64).ln();
            worst_ln = worst_ln.max((got - want).abs() / want.abs().max(1e-3));
        }
        assert!(worst_ln < 3e-7, "ln relative error {worst_ln}");
        let mut worst = 0f64;
        for k in (0..(1u32 << 24)).step_by(7) {
            let u = k as f32 * F32_UNIT;
            let (s, c) = sin_cos_turns_f32(u);
            let a = std::f64::consts::TAU * u as f64;
            worst = worst
                .max((s as f64 - a.sin()).abs())
                .max((c as f64 - a.cos()).abs());
        }
        assert!(worst < 4e-7, "sin/cos error {worst}");
        assert_eq!(sin_cos_turns_f32(0.0), (0.0, 1.0));
        assert_eq!(sin_cos_turns_f32(0.25), (1.0, 0.0));
        assert_eq!(sin_cos_turns_f32(0.5).1, -1.0);
    }
}
