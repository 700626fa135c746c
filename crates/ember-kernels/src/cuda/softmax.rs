//! Softmax and log-softmax along one dim on `CudaStorage` (`softmax.cu`), forward and fused
//! backward — the methods of `cpu/softmax.rs`, with its messages.

use super::geometry::row_threads;
use super::kernels::Family;
use super::storage::{blocks_for, same_device, CudaStorage};
use crate::layout::Layout;
use crate::{cuda_args, kname};

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
    (
        shape[..dim].iter().product(),
        shape[dim],
        shape[dim + 1..].iter().product(),
    )
}

/// The elements of `(s, l)` contiguous: `s` itself when already so (at offset `start`).
fn contiguous_view<'a>(
    s: &'a CudaStorage,
    l: &Layout,
    owned: &'a mut Option<CudaStorage>,
) -> (&'a CudaStorage, usize) {
    match l.contiguous_range() {
        Some((start, _)) => (s, start),
        None => (owned.insert(s.contiguous(l)), 0),
    }
}

/// Grid, block and shared memory of a softmax-shaped launch.
fn launch_shape((outer, n, inner): (usize, usize, usize), elem: usize) -> (u32, u32, u32) {
    if inner == 1 {
        let t = row_threads(n).min(512);
        (blocks_for(outer, 1), t, t * elem as u32)
    } else {
        (blocks_for(outer * inner, 256), 256, 0)
    }
}

impl CudaStorage {
    /// `softmax` (or `log_softmax` when `log`) of the elements selected by `layout` along
    /// `dim`, into a new contiguous storage of the same shape and dtype. Max-subtracted;
    /// floating-point dtypes only.
    pub fn softmax(&self, layout: &Layout, dim: usize, log: bool) -> CudaStorage {
        let op = if log { "log_softmax" } else { "softmax" };
        let d = self.dtype();
        if !d.is_float() {
            panic!("{op}: expected a floating-point tensor, got {d}");
        }
        let sizes = split_dims(op, layout.shape(), dim);
        let dev = self.device_arc().clone();
        let out = CudaStorage::uninit(&dev, layout.numel(), d);
        if layout.numel() == 0 {
            return out;
        }
        let mut owned = None;
        let (x, start) = contiguous_view(self, layout, &mut owned);
        let f = dev.function(Family::Softmax, d, kname!("softmax", d));
        let (grid, block, shared) = launch_shape(sizes, d.size_in_bytes());
        let (xp, yp) = (x.ptr_at(start), out.ptr());
        let (outer, n, inner) = (sizes.0 as u64, sizes.1 as u64, sizes.2 as u64);
        let lg = u32::from(log);
        let mut args = cuda_args![xp, yp, outer, n, inner, lg];
        // SAFETY: `softmax_T(const T*, T*, u64, u64, u64, u32)` over `outer * n * inner`
        // contiguous elements of each buffer; shared memory holds one T per thread.
        unsafe { dev.launch(f, (grid, 1, 1), block, shared, &mut args) };
        out
    }

    /// Gradient of `softmax`/`log_softmax` along `dim` given the upstream gradient `self`
    /// (`lg`) and the forward OUTPUT `out` (`lo`): softmax `out * (g - Σ g·out)`, log-softmax
    /// `g - exp(out) Σ g`. New contiguous storage of the same shape.
    pub fn softmax_backward(
        &self,
        lg: &Layout,
        out: &CudaStorage,
        lo: &Layout,
        dim: usize,
        log: bool,
    ) -> CudaStorage {
        let op = if log {
            "log_softmax_backward"
        } else {
            "softmax_backward"
        };
        let d = self.dtype();
        if !d.is_float() || out.dtype() != d {
            panic!(
                "{op}: expected floating-point tensors of one dtype, got {} and {}",
                d,
                out.dtype()
            );
        }
        same_device(op, self, out);
        if lg.shape() != lo.shape() {
            panic!(
                "{op}: grad_output shape {:?} does not match output shape {:?}",
                lg.shape(),
                lo.shape()
            );
        }
        let sizes = split_dims(op, lg.shape(), dim);
        let dev = self.device_arc().clone();
        let res = CudaStorage::uninit(&dev, lg.numel(), d);
        if lg.numel() == 0 {
            return res;
        }
        let (mut og, mut oy) = (None, None);
        let (g, gs) = contiguous_view(self, lg, &mut og);
        let (y, ys) = contiguous_view(out, lo, &mut oy);
        let f = dev.function(Family::Softmax, d, kname!("softmax_bwd", d));
        let (grid, block, shared) = launch_shape(sizes, d.size_in_bytes());
        let (gp, yp, rp) = (g.ptr_at(gs), y.ptr_at(ys), res.ptr());
        let (outer, n, inner) = (sizes.0 as u64, sizes.1 as u64, sizes.2 as u64);
        let lgf = u32::from(log);
        let mut args = cuda_args![gp, yp, rp, outer, n, inner, lgf];
        // SAFETY: `softmax_bwd_T(const T*, const T*, T*, u64, u64, u64, u32)` over
        // `outer * n * inner` contiguous elements of each buffer.
        unsafe { dev.launch(f, (grid, 1, 1), block, shared, &mut args) };
        res
    }
}
