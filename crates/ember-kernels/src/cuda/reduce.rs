//! Reductions on `CudaStorage` (`reduce.cu`): sum/prod/max/min over any dims, argmax/argmin
//! along one dim, variance, logsumexp and the norm gradient clipping needs — the methods of
//! `cpu/reduce.rs` (and `norm_pow_sum` of `cpu/optim.rs`) with their dtype rules and messages.
//! Outputs are contiguous in keepdim shape.

use super::device::Device;
use super::geometry::{self, RedGeom};
use super::kernels::{Family, NORM_KINDS};
use super::params::RedP;
use super::storage::{check_extent, CudaStorage};
use crate::cuda_args;
use crate::dtype::DType;
use crate::layout::Layout;
use crate::op::ReduceOp;
use crate::reduce::{reduce_dtype, ArgReduceOp};
use std::sync::Arc;

/// Marks the reduced dims (`dims` empty = all), panicking on a dim out of range.
fn reduce_mask(op: &str, shape: &[usize], dims: &[usize]) -> Vec<bool> {
    let nd = shape.len();
    if dims.is_empty() {
        return vec![true; nd];
    }
    let mut mask = vec![false; nd];
    for &d in dims {
        match mask.get_mut(d) {
            Some(r) => *r = true,
            None if nd == 0 && d == 0 => {}
            None => panic!("{op}: dim {d} out of range for a tensor of shape {shape:?}"),
        }
    }
    mask
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

fn geometry_of(op: &str, layout: &Layout, mask: &[bool]) -> RedGeom {
    geometry::reduction(layout.shape(), layout.strides(), mask).unwrap_or_else(|_| {
        panic!(
            "{op}: CUDA reductions take at most {} groups of mergeable kept or reduced dims (shape {:?}, strides {:?})",
            geometry::MAX_DIMS,
            layout.shape(),
            layout.strides()
        )
    })
}

/// One reduction: kernel `name` (and `name_final`) of `family`/`dtype` over `(x, layout)` into
/// `out` (and `idx` for arg reductions), with per-output context `ctx` and parameters `p`.
#[allow(clippy::too_many_arguments)]
fn run(
    dev: &Arc<Device>,
    name: &'static str,
    final_name: &'static str,
    x: &CudaStorage,
    layout: &Layout,
    g: &RedGeom,
    out: u64,
    idx: u64,
    ctx: u64,
    p: RedP,
) {
    if g.m == 0 {
        return;
    }
    if g.k > 0 {
        check_extent(name, layout, x.len());
    }
    let l = geometry::red_launch(g);
    let f = dev.function(Family::Reduce, x.dtype(), name);
    let xp = x.ptr_at(layout.offset());
    let (per_output, split, geom) = (u32::from(l.per_output), l.split, *g);
    // Partial accumulators (at most 16 bytes each) when each output is split.
    let partial = (split > 1).then(|| dev.alloc(g.m as usize * split as usize * 16));
    let pp = partial.as_ref().map_or(0, |b| b.ptr());
    let shared = if l.per_output { l.threads * 16 } else { 0 };
    let mut args = cuda_args![xp, geom, per_output, split, pp, out, idx, ctx, p];
    // SAFETY: `NAME(const In*, RedGeom, u32, u32, A*, Out*, i64*, const void*, RedP)`; the
    // input layout lies in its storage, `out`/`idx` hold `m` outputs, `ctx` `m` values (or is
    // unused), `partial` `m * split` accumulators; shared memory holds one accumulator per
    // thread.
    unsafe { dev.launch(f, (l.grid_x, split, 1), l.threads, shared, &mut args) };
    if split > 1 {
        let f = dev.function(Family::Reduce, x.dtype(), final_name);
        let m = g.m;
        let mut args = cuda_args![pp, m, split, out, idx, ctx, p];
        // SAFETY: `NAME_final(const A*, u64, u32, Out*, i64*, const void*, RedP)` over the
        // partials written above (same stream, so after them).
        unsafe {
            dev.launch(
                f,
                (super::storage::blocks_for(m as usize, 128), 1, 1),
                128,
                0,
                &mut args,
            )
        };
    }
}

/// `(kernel, final kernel)` names of reduction `base` for dtype `d`.
macro_rules! red_names {
    ($base:literal, $d:expr) => {
        (
            $crate::kname!($base, $d),
            match $d {
                DType::Bool => concat!($base, "_bool_final"),
                DType::U8 => concat!($base, "_u8_final"),
                DType::I64 => concat!($base, "_i64_final"),
                DType::F32 => concat!($base, "_f32_final"),
                DType::F64 => concat!($base, "_f64_final"),
            },
        )
    };
}

fn plain(div: f64) -> RedP {
    RedP {
        div,
        ..Default::default()
    }
}

impl CudaStorage {
    /// Reduces the elements selected by `layout` over `dims` (sorted, deduplicated; empty =
    /// all) into a new contiguous storage of keepdim shape. Sum/Prod of bool/u8/i64 give i64,
    /// floats keep their dtype; Max/Min keep the dtype and propagate NaN.
    pub fn reduce(&self, layout: &Layout, dims: &[usize], op: ReduceOp) -> CudaStorage {
        let name = match op {
            ReduceOp::Sum => "sum",
            ReduceOp::Prod => "prod",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
        };
        let mask = reduce_mask(name, layout.shape(), dims);
        if matches!(op, ReduceOp::Max | ReduceOp::Min) {
            check_nonempty(name, layout.shape(), &mask, dims);
        }
        let g = geometry_of(name, layout, &mask);
        let dev = self.device_arc().clone();
        let out = CudaStorage::uninit(&dev, g.m as usize, reduce_dtype(op, self.dtype()));
        let d = self.dtype();
        let (k, kf) = match op {
            ReduceOp::Sum => red_names!("red_sum", d),
            ReduceOp::Prod => red_names!("red_prod", d),
            ReduceOp::Max => red_names!("red_max", d),
            ReduceOp::Min => red_names!("red_min", d),
        };
        run(&dev, k, kf, self, layout, &g, out.ptr(), 0, 0, plain(1.0));
        out
    }

    /// The largest (`Max`) or smallest value along `dim` and its index (i64), in keepdim
    /// shape. Ties give the first index; NaN counts as the extreme and its first index wins.
    pub fn arg_reduce(
        &self,
        layout: &Layout,
        dim: usize,
        op: ArgReduceOp,
    ) -> (CudaStorage, CudaStorage) {
        let name = match op {
            ArgReduceOp::Max => "argmax",
            ArgReduceOp::Min => "argmin",
        };
        let shape = layout.shape();
        let n = if shape.is_empty() {
            if dim > 0 {
                panic!("{name}: dim {dim} out of range for a tensor of shape []");
            }
            1
        } else {
            if dim >= shape.len() {
                panic!("{name}: dim {dim} out of range for a tensor of shape {shape:?}");
            }
            shape[dim]
        };
        if n == 0 {
            panic!("{name}(): Expected reduction dim {dim} to have non-zero size. (input shape {shape:?})");
        }
        let mut mask = vec![false; shape.len()];
        if !shape.is_empty() {
            mask[dim] = true;
        }
        let g = geometry_of(name, layout, &mask);
        let dev = self.device_arc().clone();
        let vals = CudaStorage::uninit(&dev, g.m as usize, self.dtype());
        let idx = CudaStorage::uninit(&dev, g.m as usize, DType::I64);
        let d = self.dtype();
        let (k, kf) = match op {
            ArgReduceOp::Max => red_names!("red_argmax", d),
            ArgReduceOp::Min => red_names!("red_argmin", d),
        };
        run(
            &dev,
            k,
            kf,
            self,
            layout,
            &g,
            vals.ptr(),
            idx.ptr(),
            0,
            plain(1.0),
        );
        (vals, idx)
    }

    /// Variance over `dims` (empty = all) in keepdim shape: `Σ (x - mean)² / max(N -
    /// correction, 0)` by two passes (mean first). Floating-point dtypes only.
    pub fn var(&self, layout: &Layout, dims: &[usize], correction: f64) -> CudaStorage {
        let d = self.dtype();
        if !d.is_float() {
            panic!("var(): std and var only support floating point and complex dtypes, got {d}");
        }
        let mask = reduce_mask("var", layout.shape(), dims);
        let g = geometry_of("var", layout, &mask);
        let dev = self.device_arc().clone();
        let cnt = g.k as f64;
        let means = CudaStorage::uninit(&dev, g.m as usize, d);
        let (k, kf) = red_names!("red_sum", d);
        run(&dev, k, kf, self, layout, &g, means.ptr(), 0, 0, plain(cnt));
        let out = CudaStorage::uninit(&dev, g.m as usize, d);
        let (k, kf) = red_names!("red_sqdev", d);
        let div = (cnt - correction).max(0.0);
        run(
            &dev,
            k,
            kf,
            self,
            layout,
            &g,
            out.ptr(),
            0,
            means.ptr(),
            plain(div),
        );
        out
    }

    /// `log Σ exp(x)` over `dims` (empty = all) in keepdim shape, max-subtracted so it never
    /// overflows; a slice of all `-inf` gives `-inf`. Integer and bool inputs compute in f32.
    pub fn logsumexp(&self, layout: &Layout, dims: &[usize]) -> CudaStorage {
        let d = self.dtype();
        if !d.is_float() {
            let x = self.cast(layout, DType::F32);
            return x.logsumexp(&Layout::contiguous(layout.shape()), dims);
        }
        let mask = reduce_mask("logsumexp", layout.shape(), dims);
        let g = geometry_of("logsumexp", layout, &mask);
        let dev = self.device_arc().clone();
        let max = CudaStorage::uninit(&dev, g.m as usize, d);
        let (k, kf) = red_names!("red_max", d);
        run(&dev, k, kf, self, layout, &g, max.ptr(), 0, 0, plain(1.0));
        let out = CudaStorage::uninit(&dev, g.m as usize, d);
        let (k, kf) = red_names!("red_lse", d);
        run(
            &dev,
            k,
            kf,
            self,
            layout,
            &g,
            out.ptr(),
            0,
            max.ptr(),
            plain(1.0),
        );
        out
    }

    /// [`CudaStorage::norm_pow_sum`] left on the device: a one-element f64 storage, with no
    /// host wait (gradient clipping can scale by it on the device).
    pub fn norm_pow_sum_device(&self, layout: &Layout, ord: f64) -> CudaStorage {
        let d = self.dtype();
        if !d.is_float() {
            panic!("norm: expected a floating-point parameter, got {d}");
        }
        let kind = if ord == 2.0 {
            "SQ"
        } else if ord == 1.0 {
            "ABS"
        } else if ord == 0.0 {
            "NONZERO"
        } else if ord == f64::INFINITY {
            "MAX"
        } else if ord == f64::NEG_INFINITY {
            "MIN"
        } else {
            "POW"
        };
        let kind = NORM_KINDS.iter().position(|&k| k == kind).unwrap() as u32;
        let mask = vec![true; layout.ndim()];
        let g = geometry_of("norm", layout, &mask);
        let dev = self.device_arc().clone();
        let out = CudaStorage::uninit(&dev, 1, DType::F64);
        let (k, kf) = red_names!("red_norm", d);
        let p = RedP {
            div: 1.0,
            ord,
            kind,
            pad: 0,
        };
        run(&dev, k, kf, self, layout, &g, out.ptr(), 0, 0, p);
        out
    }

    /// The un-rooted vector norm of the elements `layout` selects, accumulated in f64:
    /// `Σ|x|^ord` for finite non-zero `ord`, the number of non-zero elements for `ord == 0`,
    /// `max |x|` for `+inf` and `min |x|` for `-inf` (`inf` when empty). Deterministic (a fixed
    /// reduction tree). Returns a host value, so it waits for the device; see
    /// [`CudaStorage::norm_pow_sum_device`] for the form that does not.
    pub fn norm_pow_sum(&self, layout: &Layout, ord: f64) -> f64 {
        self.norm_pow_sum_device(layout, ord)
            .to_vec::<f64>(&Layout::contiguous(&[1]))[0]
    }
}
