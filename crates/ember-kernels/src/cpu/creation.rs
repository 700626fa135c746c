//! CPU kernels of the deterministic creation ops: `arange`, `linspace` and `eye` (the random
//! fills are in `random.rs`).

use super::buffer::Buffer;
use super::num::Float;
use super::par::for_each_chunk_mut;
use super::{CpuElement, CpuStorage};
use crate::dtype::DType;

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
