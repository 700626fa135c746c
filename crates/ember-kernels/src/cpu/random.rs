//! CPU kernels of the random ops, with PyTorch's CPU algorithms (the value of each draw is in
//! `crate::random::transforms`). PyTorch's generator is one sequential mt19937 stream, so each
//! op draws its words in order while holding the generator's lock; where every value depends
//! only on its own words (uniform, the vectorised normal path) the lock is released first and
//! the words become values in parallel chunks. Results never depend on the thread count.

use super::buffer::Buffer;
use super::map::map;
use super::par::{for_each_chunk_mut, ELEMENTWISE_GRAIN, NORMAL_GRAIN};
use super::simd::multiversion;
use super::{CpuElement, CpuStorage};
use crate::cpu_dispatch_float;
use crate::dtype::DType;
use crate::layout::Layout;
use crate::random::generator::{Generator, GeneratorState};
use crate::random::transforms as tf;

/// A float dtype's draws: the word each value comes from (32 bits for float32, 64 for float64,
/// as PyTorch's `uniform_real_distribution`) and PyTorch's transforms of it.
trait RandomFloat: CpuElement + bytemuck::Pod {
    /// One draw, stored in place of the value it becomes.
    type Word: bytemuck::Pod + Send + Sync;
    /// The next `out.len()` draws, in order.
    fn draw(st: &mut GeneratorState, out: &mut [Self::Word]);
    /// A value uniform in `[from, to)`.
    fn uniform(w: Self::Word, from: Self, to: Self) -> Self;
    /// A value uniform in `[0, 1)`.
    fn unit(w: Self::Word) -> Self;
    /// The vectorised normal path's 16 values from 16 uniforms.
    fn normal16(u: &[Self; 16], mean: Self, std: Self) -> [Self; 16];
    /// The value's bits, to store where its word was.
    fn to_word(self) -> Self::Word;
}

impl RandomFloat for f32 {
    type Word = u32;
    fn draw(st: &mut GeneratorState, out: &mut [u32]) {
        st.fill_u32(out)
    }
    #[inline(always)]
    fn uniform(w: u32, from: f32, to: f32) -> f32 {
        tf::uniform_f32(w, from, to)
    }
    #[inline(always)]
    fn unit(w: u32) -> f32 {
        tf::unit_f32(w)
    }
    #[inline(always)]
    fn normal16(u: &[f32; 16], mean: f32, std: f32) -> [f32; 16] {
        tf::normal16_f32(u, mean, std)
    }
    #[inline(always)]
    fn to_word(self) -> u32 {
        self.to_bits()
    }
}

impl RandomFloat for f64 {
    type Word = u64;
    fn draw(st: &mut GeneratorState, out: &mut [u64]) {
        st.fill_u64(out)
    }
    #[inline(always)]
    fn uniform(w: u64, from: f64, to: f64) -> f64 {
        tf::uniform_f64(w, from, to)
    }
    #[inline(always)]
    fn unit(w: u64) -> f64 {
        tf::unit_f64(w)
    }
    #[inline(always)]
    fn normal16(u: &[f64; 16], mean: f64, std: f64) -> [f64; 16] {
        tf::normal16_f64(u, mean, std)
    }
    #[inline(always)]
    fn to_word(self) -> u64 {
        self.to_bits()
    }
}

// The transforms always round `mul_add` once (PyTorch's fused products): the AVX2+FMA copies
// make it one instruction and let the loops vectorise, the baseline copies call libm's exact fma,
// so both give the same values and the FMA flag is unused.

#[inline(always)]
fn uniform_words_impl<T: RandomFloat, const FMA: bool>(words: &mut [T::Word], from: T, to: T) {
    for w in words {
        *w = T::uniform(*w, from, to).to_word();
    }
}
multiversion!(
    /// Draws to `uniform` values, in place (as bits).
    fn uniform_words<T: RandomFloat>(words: &mut [T::Word], from: T, to: T) => uniform_words_impl
);

#[inline(always)]
fn normal_blocks_impl<T: RandomFloat, const FMA: bool>(
    blocks: &mut [[T::Word; 16]],
    mean: T,
    std: T,
) {
    for b in blocks {
        *b = T::normal16(&b.map(T::unit), mean, std).map(T::to_word);
    }
}
multiversion!(
    /// Blocks of 16 draws to 16 vectorised-path normals each, in place (as bits).
    fn normal_blocks<T: RandomFloat>(blocks: &mut [[T::Word; 16]], mean: T, std: T) => normal_blocks_impl
);

/// A new buffer of `n` values: `n` draws (and `extra` more, returned) taken in order under the
/// generator's lock, then `f` turns the words into values in place, lock released.
fn drawn<T: RandomFloat, const EXTRA: usize>(
    n: usize,
    gen: &Generator,
    f: impl FnOnce(&mut [T::Word], &mut [T::Word; EXTRA]),
) -> CpuStorage {
    let mut out = Buffer::<T>::uninit(n);
    let words: &mut [T::Word] = bytemuck::cast_slice_mut(&mut out);
    let mut extra = [bytemuck::Zeroable::zeroed(); EXTRA];
    {
        let mut st = gen.lock();
        T::draw(&mut st, words);
        T::draw(&mut st, &mut extra);
    }
    f(words, &mut extra);
    T::wrap(out)
}

/// `n` values uniform in `[low, high)` of a float `dtype` (`torch.rand`, `uniform_`): one
/// 32-bit word per float32 value, one 64-bit draw per float64 value, in order; the bounds are
/// first rounded to the dtype, as PyTorch does.
pub fn uniform(n: usize, low: f64, high: f64, dtype: DType, gen: &Generator) -> CpuStorage {
    fn go<T: RandomFloat>(n: usize, low: f64, high: f64, gen: &Generator) -> CpuStorage {
        let (from, to) = (T::from_f64(low), T::from_f64(high));
        drawn::<T, 0>(n, gen, |words, _| {
            for_each_chunk_mut(words, ELEMENTWISE_GRAIN, |_, w| uniform_words(w, from, to))
        })
    }
    match dtype {
        DType::F32 => go::<f32>(n, low, high, gen),
        DType::F64 => go::<f64>(n, low, high, gen),
        _ => panic!("uniform: expected a floating-point dtype, got {dtype}"),
    }
}

/// `n` values of `N(mean, std²)` in a float `dtype` (`torch.randn`, `normal_`) by PyTorch's two
/// paths. Into a `contiguous` destination of at least 16 values, the vectorised one: `n` uniforms
/// (plus 16 more when `n` is not a multiple of 16, which recompute the last 16 values) paired by
/// Box–Muller within blocks of 16. Otherwise the sequential one, value by value with the
/// generator's cached second normal (in float64, then rounded).
pub fn normal(
    n: usize,
    mean: f64,
    std: f64,
    dtype: DType,
    contiguous: bool,
    gen: &Generator,
) -> CpuStorage {
    fn sequential<T: CpuElement>(n: usize, mean: f64, std: f64, gen: &Generator) -> CpuStorage {
        let mut out = Buffer::<T>::uninit(n);
        let mut st = gen.lock();
        for o in out.iter_mut() {
            *o = T::from_f64(st.normal_f64(mean, std));
        }
        T::wrap(out)
    }
    fn vectorised<T: RandomFloat>(n: usize, mean: f64, std: f64, gen: &Generator) -> CpuStorage {
        let (mean, std) = (T::from_f64(mean), T::from_f64(std));
        let full = n - n % 16;
        let transform = |words: &mut [T::Word]| {
            let blocks: &mut [[T::Word; 16]] = bytemuck::cast_slice_mut(words);
            for_each_chunk_mut(blocks, NORMAL_GRAIN / 16, |_, b| {
                normal_blocks(b, mean, std)
            })
        };
        if full == n {
            drawn::<T, 0>(n, gen, |words, _| transform(words))
        } else {
            drawn::<T, 16>(n, gen, |words, tail| {
                transform(&mut words[..full]);
                normal_blocks(std::slice::from_mut(tail), mean, std);
                words[n - 16..].copy_from_slice(&tail[..]);
            })
        }
    }
    let vector = n >= 16 && contiguous;
    match dtype {
        DType::F32 if vector => vectorised::<f32>(n, mean, std, gen),
        DType::F64 if vector => vectorised::<f64>(n, mean, std, gen),
        DType::F32 => sequential::<f32>(n, mean, std, gen),
        DType::F64 => sequential::<f64>(n, mean, std, gen),
        _ => panic!("normal: expected a floating-point dtype, got {dtype}"),
    }
}

/// 0/1 draws with the per-element probabilities of `probs` (float, any layout), in row-major
/// order, same dtype: a float32 probability compares one 32-bit word in float32, a float64 one
/// a 64-bit draw (PyTorch's `bernoulli(p)`).
pub fn bernoulli(probs: &CpuStorage, layout: &Layout, gen: &Generator) -> CpuStorage {
    fn go<T: CpuElement>(p: &[T], layout: &Layout, gen: &Generator) -> CpuStorage {
        // Gather strided probabilities first so the draws below run over one slice.
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
        let mut st = gen.lock();
        if T::DTYPE == DType::F32 {
            for (o, &p) in out.iter_mut().zip(p) {
                *o = T::from_bool(tf::bernoulli_f32(st.random(), p.to_f64() as f32));
            }
        } else {
            for (o, &p) in out.iter_mut().zip(p) {
                *o = T::from_bool(tf::bernoulli_f64(st.random64(), p.to_f64()));
            }
        }
        T::wrap(out)
    }
    cpu_dispatch_float!(probs, "bernoulli", p => go(p, layout, gen))
}

/// `n` draws that are 1 with probability `p` and 0 otherwise, in any `dtype`: one 64-bit draw
/// each, always (PyTorch's `bernoulli_(p)` draws even for p = 0 or 1, and the stream after it
/// depends on that).
pub fn bernoulli_scalar(n: usize, p: f64, dtype: DType, gen: &Generator) -> CpuStorage {
    fn go<T: CpuElement>(n: usize, p: f64, gen: &Generator) -> CpuStorage {
        let mut out = Buffer::<T>::uninit(n);
        let mut st = gen.lock();
        for o in out.iter_mut() {
            *o = T::from_bool(tf::bernoulli_f64(st.random64(), p));
        }
        T::wrap(out)
    }
    match dtype {
        DType::Bool => go::<bool>(n, p, gen),
        DType::U8 => go::<u8>(n, p, gen),
        DType::I64 => go::<i64>(n, p, gen),
        DType::F32 => go::<f32>(n, p, gen),
        DType::F64 => go::<f64>(n, p, gen),
    }
}

/// `n` int64 values uniform in `[low, high)` (`low < high`): `low + x mod (high − low)` with a
/// 64-bit draw `x` for ranges of at least 2²⁸, one 32-bit word otherwise (`torch.randint`).
pub fn randint(n: usize, low: i64, high: i64, gen: &Generator) -> CpuStorage {
    let range = (high as i128 - low as i128) as u64;
    let mut out = Buffer::<i64>::uninit(n);
    let mut st = gen.lock();
    if range >= tf::WIDE_RANGE {
        for o in out.iter_mut() {
            *o = tf::int_from_to(st.random64(), range, low);
        }
    } else {
        for o in out.iter_mut() {
            *o = tf::int_from_to(st.random() as u64, range, low);
        }
    }
    CpuStorage::I64(out)
}

/// Below this length `randperm` swaps forward with 32-bit words (PyTorch's `u32::MAX / 20`);
/// longer permutations use the inside-out shuffle with 64-bit draws, where `x mod n` of a 32-bit
/// word would be visibly biased.
const RANDPERM_32_BIT_MAX: usize = (u32::MAX / 20) as usize;

/// A random permutation of `0..n` (`torch.randperm`): for `i` in `0..n-1`, swap `i` with
/// `i + x mod (n − i)`.
pub fn randperm(n: usize, gen: &Generator) -> CpuStorage {
    let mut st = gen.lock();
    if n < RANDPERM_32_BIT_MAX {
        let mut out: Vec<i64> = (0..n as i64).collect();
        for i in 0..n.saturating_sub(1) {
            let z = st.random() as usize % (n - i);
            out.swap(i, i + z);
        }
        CpuStorage::from_vec(out)
    } else {
        let mut out = vec![0i64; n];
        for i in 0..n {
            let z = (st.random64() % (i as u64 + 1)) as usize;
            out[i] = out[z];
            out[z] = i as i64;
        }
        CpuStorage::from_vec(out)
    }
}
