//! Creation ops on the device (`random.cu`): random fills from a reserved Philox stream and
//! `arange`, `linspace`, `eye` — the functions of `cpu/creation.rs` as `CudaStorage`
//! constructors with a device ordinal. Value `j` of a random op reads block `j / K`, lane
//! `j % K` of its stream (see `crate::random`), so draws depend only on (seed, offset, j).

use super::device::Device;
use super::kernels::Family;
use super::storage::{blocks_for, check_extent, CudaStorage};
use crate::dtype::{DType, Element};
use crate::layout::Layout;
use crate::random::philox::PhiloxStream;
use crate::{cuda_args, kname};
use std::ffi::c_void;
use std::sync::Arc;

/// Largest value strictly below `x` (finite `x`).
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

/// The 32-bit threshold below which a draw succeeds with probability `p`.
fn threshold(p: f64) -> u64 {
    (p * 4294967296.0) as u64
}

/// Launches `f` with a thread per Philox block (`values / per_block` of them) or per item.
///
/// # Safety
/// `args` must match the kernel's parameters and its buffers hold the values it writes.
unsafe fn launch_items(
    dev: &Arc<Device>,
    f: cudarc::driver::sys::CUfunction,
    items: usize,
    args: &mut [*mut c_void],
) {
    // SAFETY: the caller's contract (arguments match, buffers hold what the kernel writes).
    unsafe { dev.launch(f, (blocks_for(items, 256), 1, 1), 256, 0, args) };
}

impl CudaStorage {
    /// `n` uniform values in `[low, high)` of a float `dtype` on device `ordinal`.
    pub fn uniform(
        n: usize,
        low: f64,
        high: f64,
        dtype: DType,
        stream: PhiloxStream,
        ordinal: usize,
    ) -> CudaStorage {
        let dev = Device::expect(ordinal);
        let mut out = CudaStorage::uninit(&dev, n, dtype);
        if n == 0 {
            return out;
        }
        let (op, seed, offset) = (out.ptr(), stream.seed, stream.offset);
        let n64 = n as u64;
        match dtype {
            DType::F32 => {
                let (lo, hi) = (low as f32, high as f32);
                if hi > lo {
                    let (range, cap) = (hi - lo, next_down_f32(hi));
                    let f = dev.function(Family::Random, dtype, "uniform_f32");
                    let mut args = cuda_args![op, n64, seed, offset, lo, range, cap];
                    // SAFETY: `uniform_f32(float*, u64, u64, u64, float, float, float)`, n values.
                    unsafe { launch_items(&dev, f, n.div_ceil(4), &mut args) };
                } else {
                    out.fill(&Layout::contiguous(&[n]), crate::Scalar::Float(lo as f64));
                }
            }
            DType::F64 => {
                if high > low {
                    let (range, cap) = (high - low, next_down_f64(high));
                    let f = dev.function(Family::Random, dtype, "uniform_f64");
                    let mut args = cuda_args![op, n64, seed, offset, low, range, cap];
                    // SAFETY: `uniform_f64(double*, u64, u64, u64, double, double, double)`.
                    unsafe { launch_items(&dev, f, n.div_ceil(2), &mut args) };
                } else {
                    out.fill(&Layout::contiguous(&[n]), crate::Scalar::Float(low));
                }
            }
            _ => panic!("uniform: expected a floating-point dtype, got {dtype}"),
        }
        out
    }

    /// `n` normal values with `mean` and `std` of a float `dtype`, by Box–Muller.
    pub fn normal(
        n: usize,
        mean: f64,
        std: f64,
        dtype: DType,
        stream: PhiloxStream,
        ordinal: usize,
    ) -> CudaStorage {
        let dev = Device::expect(ordinal);
        let out = CudaStorage::uninit(&dev, n, dtype);
        if n == 0 {
            return out;
        }
        let (op, seed, offset, n64) = (out.ptr(), stream.seed, stream.offset, n as u64);
        match dtype {
            DType::F32 => {
                let (m, s) = (mean as f32, std as f32);
                let f = dev.function(Family::Random, dtype, "normal_f32");
                let mut args = cuda_args![op, n64, seed, offset, m, s];
                // SAFETY: `normal_f32(float*, u64, u64, u64, float, float)`, n values.
                unsafe { launch_items(&dev, f, n.div_ceil(4), &mut args) };
            }
            DType::F64 => {
                let f = dev.function(Family::Random, dtype, "normal_f64");
                let mut args = cuda_args![op, n64, seed, offset, mean, std];
                // SAFETY: `normal_f64(double*, u64, u64, u64, double, double)`, n values.
                unsafe { launch_items(&dev, f, n.div_ceil(2), &mut args) };
            }
            _ => panic!("normal: expected a floating-point dtype, got {dtype}"),
        }
        out
    }

    /// 0/1 draws with the per-element probabilities of `probs` (float, any layout), same dtype.
    /// A probability outside [0, 1] is reported at the next synchronisation.
    pub fn bernoulli(probs: &CudaStorage, layout: &Layout, stream: PhiloxStream) -> CudaStorage {
        let d = probs.dtype();
        if !d.is_float() {
            panic!("bernoulli: expected a floating-point tensor, got {d}");
        }
        let dev = probs.device_arc().clone();
        let n = layout.numel();
        let out = CudaStorage::uninit(&dev, n, d);
        if n == 0 {
            return out;
        }
        check_extent("bernoulli", layout, probs.len());
        let owned;
        let pp = match layout.contiguous_range() {
            Some((s, _)) => probs.ptr_at(s),
            None => {
                owned = probs.contiguous(layout);
                owned.ptr()
            }
        };
        let f = dev.function(Family::Random, d, kname!("bernoulli", d));
        let (op, n64, seed, offset, e) = (
            out.ptr(),
            n as u64,
            stream.seed,
            stream.offset,
            dev.error_slot(),
        );
        let mut args = cuda_args![op, pp, n64, seed, offset, e];
        // SAFETY: `bernoulli_T(T*, const T*, u64, u64, u64, u64*)`, n contiguous values each.
        unsafe { launch_items(&dev, f, n.div_ceil(4), &mut args) };
        out
    }

    /// `n` draws that are 1 with probability `p` and 0 otherwise, in any `dtype`.
    pub fn bernoulli_scalar(
        n: usize,
        p: f64,
        dtype: DType,
        stream: PhiloxStream,
        ordinal: usize,
    ) -> CudaStorage {
        let dev = Device::expect(ordinal);
        let out = CudaStorage::uninit(&dev, n, dtype);
        if n == 0 {
            return out;
        }
        let always = u32::from(p >= 1.0);
        let t = if p >= 1.0 { 0 } else { threshold(p) as u32 };
        let f = dev.function(Family::Random, dtype, kname!("bernoulli_scalar", dtype));
        let (op, n64, seed, offset) = (out.ptr(), n as u64, stream.seed, stream.offset);
        let mut args = cuda_args![op, n64, seed, offset, t, always];
        // SAFETY: `bernoulli_scalar_T(T*, u64, u64, u64, u32, u32)`, n values.
        unsafe { launch_items(&dev, f, n.div_ceil(4), &mut args) };
        out
    }

    /// `n` int64 values uniform in `[low, high)` (`low < high`).
    pub fn randint(
        n: usize,
        low: i64,
        high: i64,
        stream: PhiloxStream,
        ordinal: usize,
    ) -> CudaStorage {
        let dev = Device::expect(ordinal);
        let out = CudaStorage::uninit(&dev, n, DType::I64);
        if n == 0 {
            return out;
        }
        let range = (high as i128 - low as i128) as u64;
        let f = dev.function(Family::Random, DType::I64, "randint_i64");
        let (op, n64, seed, offset) = (out.ptr(), n as u64, stream.seed, stream.offset);
        let mut args = cuda_args![op, n64, seed, offset, low, range];
        // SAFETY: `randint_i64(i64*, u64, u64, u64, i64, u64)`, n values.
        unsafe { launch_items(&dev, f, n.div_ceil(2), &mut args) };
        out
    }

    /// A random permutation of `0..n` by Fisher–Yates (swap `t` exchanges `i = n-1-t` with a
    /// draw in `[0, i]` from block `t / 2`, lane `t % 2`), the CPU backend's exact sequence.
    /// Fisher–Yates is sequential, so it runs on the host and the result is uploaded.
    pub fn randperm(n: usize, stream: PhiloxStream, ordinal: usize) -> CudaStorage {
        let mut out: Vec<i64> = (0..n as i64).collect();
        for t in 0..n.saturating_sub(1) {
            let b = stream.block((t / 2) as u64);
            let l = 2 * (t % 2);
            let x = ((b[l + 1] as u64) << 32) | b[l] as u64;
            let i = n - 1 - t;
            let j = ((x as u128 * (i as u128 + 1)) >> 64) as usize;
            out.swap(i, j);
        }
        CudaStorage::from_vec(out, ordinal)
    }

    /// `n` values `start + i * step`: in f64 for float dtypes, in exact integer arithmetic
    /// after truncating `start` and `step` for integer dtypes.
    pub fn arange(n: usize, start: f64, step: f64, dtype: DType, ordinal: usize) -> CudaStorage {
        let dev = Device::expect(ordinal);
        let out = CudaStorage::uninit(&dev, n, dtype);
        if n == 0 {
            return out;
        }
        let (op, n64) = (out.ptr(), n as u64);
        let f = match dtype {
            DType::Bool => panic!("arange: not implemented for dtype torch.bool"),
            d => dev.function(Family::Random, d, kname!("arange", d)),
        };
        if dtype.is_float() {
            let mut args = cuda_args![op, n64, start, step];
            // SAFETY: `arange_T(T*, u64, double, double)`, n values.
            unsafe { launch_items(&dev, f, n, &mut args) };
        } else {
            let (s, st) = (start as i64, step as i64);
            let mut args = cuda_args![op, n64, s, st];
            // SAFETY: `arange_T(T*, u64, i64, i64)`, n values.
            unsafe { launch_items(&dev, f, n, &mut args) };
        }
        out
    }

    /// `steps` values from `start` to `end` with PyTorch's formula (both ends exact).
    pub fn linspace(
        start: f64,
        end: f64,
        steps: usize,
        dtype: DType,
        ordinal: usize,
    ) -> CudaStorage {
        let dev = Device::expect(ordinal);
        if dtype == DType::Bool {
            panic!("linspace: not implemented for dtype torch.bool");
        }
        let out = CudaStorage::uninit(&dev, steps, dtype);
        if steps == 0 {
            return out;
        }
        let (op, n) = (out.ptr(), steps as u64);
        let f = dev.function(Family::Random, dtype, kname!("linspace", dtype));
        // SAFETY (all arms): `linspace_T(T*, u64, …)` over `steps` values.
        match dtype {
            DType::F32 => {
                let (s, e) = (start as f32, end as f32);
                if steps == 1 {
                    let mut o = out;
                    o.fill(&Layout::contiguous(&[1]), crate::Scalar::Float(s as f64));
                    return o;
                }
                let step = (e - s) / ((steps - 1) as f64) as f32;
                let mut args = cuda_args![op, n, s, e, step];
                // SAFETY: the linspace kernel's parameters (out, n, start, end, step) in order;
                // `out` holds `steps` elements.
                unsafe { launch_items(&dev, f, steps, &mut args) };
            }
            DType::F64 => {
                if steps == 1 {
                    let mut o = out;
                    o.fill(&Layout::contiguous(&[1]), crate::Scalar::Float(start));
                    return o;
                }
                let step = (end - start) / (steps - 1) as f64;
                let mut args = cuda_args![op, n, start, end, step];
                // SAFETY: the linspace kernel's parameters (out, n, start, end, step) in order;
                // `out` holds `steps` elements.
                unsafe { launch_items(&dev, f, steps, &mut args) };
            }
            _ => {
                // The bounds are converted to the integer type first, then stepped in f64.
                let conv = |v: f64| match dtype {
                    DType::U8 => u8::from_f64(v).to_i64(),
                    _ => i64::from_f64(v),
                };
                let (s, e) = (conv(start), conv(end));
                if steps == 1 {
                    let mut o = out;
                    o.fill(&Layout::contiguous(&[1]), crate::Scalar::Int(s));
                    return o;
                }
                let (sf, ef) = (s as f64, e as f64);
                let step = (ef - sf) / (steps - 1) as f64;
                let mut args = cuda_args![op, n, sf, ef, step];
                // SAFETY: the linspace kernel's parameters (out, n, start, end, step) in order;
                // `out` holds `steps` elements.
                unsafe { launch_items(&dev, f, steps, &mut args) };
            }
        }
        out
    }

    /// An `n × m` identity-like matrix (ones where row == column), row-major.
    pub fn eye(n: usize, m: usize, dtype: DType, ordinal: usize) -> CudaStorage {
        let dev = Device::expect(ordinal);
        let out = CudaStorage::zeros(&dev, n * m, dtype);
        let diag = n.min(m);
        if diag == 0 {
            return out;
        }
        let f = dev.function(Family::Random, dtype, kname!("eye", dtype));
        let (op, d64, m64) = (out.ptr(), diag as u64, m as u64);
        let mut args = cuda_args![op, d64, m64];
        // SAFETY: `eye_T(T*, u64, u64)` writes `out[i * m + i]` for `i < min(n, m)`.
        unsafe { launch_items(&dev, f, diag, &mut args) };
        out
    }
}
