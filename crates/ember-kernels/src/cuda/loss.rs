//! Fused losses on `CudaStorage` (`loss.cu`): cross-entropy (index and probability targets,
//! weights, ignore_index, label smoothing) and NLL, forward and backward — the methods of
//! `cpu/loss.rs` with its checks and messages.
//!
//! The forward computes the reduced loss and the total weight of the rows that count on the
//! device. `LossForward::weight_sum` is a host `f64`, so the methods with the CPU's signature
//! read it back for class-index targets (one wait per forward); the `*_device_weight` forms
//! keep it on the device and their backward takes it from there, so a training step need not
//! wait at all (see `docs/cuda.md`).

use super::errors;
use super::geometry::row_threads;
use super::kernels::{err, Family};
use super::params::{CeP, GradP};
use super::storage::{blocks_for, same_device, CudaStorage};
use crate::dtype::DType;
use crate::layout::Layout;
use crate::loss::{CeOptions, CeTarget, LossForward, LossGrad, LossReduction, LossRows};
use crate::{cuda_args, kname};

/// The forward of a loss with its total weight left on the device.
#[derive(Debug)]
pub struct DeviceLossForward {
    /// The loss: one element per row (reduction `None`) or a single element.
    pub loss: CudaStorage,
    /// Each row's logsumexp (cross-entropy only).
    pub lse: Option<CudaStorage>,
    /// The summed weight of the rows that count: a one-element f64 storage.
    pub weight_sum: CudaStorage,
}

/// Row geometry as `(classes, inner, rows)` (see [`LossRows`]).
fn geom(op: &str, shape: &[usize]) -> (usize, usize, usize) {
    let g = LossRows::of(op, shape);
    (g.classes, g.inner, g.rows)
}

fn float_input(op: &str, s: &CudaStorage) -> DType {
    let d = s.dtype();
    if !d.is_float() {
        panic!("{op}: expected a floating-point input, got {}", d.name());
    }
    d
}

/// `(s, l)` converted to `dtype`, contiguous (the storage itself when it already is).
fn contiguous_as(s: &CudaStorage, l: &Layout, dtype: DType) -> CudaStorage {
    if s.dtype() == dtype {
        s.contiguous(l)
    } else {
        s.cast(l, dtype)
    }
}

/// Class-index targets (an integer dtype, checked by the dispatch) as contiguous int64.
fn index_targets(s: &CudaStorage, l: &Layout) -> CudaStorage {
    contiguous_as(s, l, DType::I64)
}

/// The per-class weights (one per class, checked by the dispatch) in the input's dtype.
fn weights(opts: &CeOptions<'_, CudaStorage>, dtype: DType) -> Option<CudaStorage> {
    opts.weight.map(|(s, l)| contiguous_as(s, l, dtype))
}

fn ce_params(
    opts: &CeOptions<'_, CudaStorage>,
    (classes, inner, rows): (usize, usize, usize),
) -> CeP {
    CeP {
        rows: rows as u64,
        classes: classes as u64,
        inner: inner as u64,
        ignore: opts.ignore_index,
        keep: 1.0 - opts.label_smoothing,
        smooth: opts.label_smoothing / classes as f64,
        err_code: errors::code(err::TARGET, opts.op),
    }
}

/// Block size and shared memory of the row kernels (a block per row).
fn row_launch(classes: usize, elem: usize) -> (u32, u32) {
    let t = row_threads(classes).min(256);
    (t, t * elem.max(8) as u32)
}

/// The upstream gradient as the backward kernels read it: a contiguous storage of the input's
/// dtype (per row, or one element) and its parameters.
fn grad_of(g: LossGrad<'_, CudaStorage>, dtype: DType) -> (CudaStorage, GradP) {
    match g {
        LossGrad::Rows(s, l) => (
            contiguous_as(s, l, dtype),
            GradP {
                per_row: 1,
                pad: 0,
                factor: 1.0,
            },
        ),
        LossGrad::Reduced(s, l, factor) => (
            contiguous_as(s, l, dtype),
            GradP {
                per_row: 0,
                pad: 0,
                factor,
            },
        ),
    }
}

impl CudaStorage {
    /// Forms the reduced loss from per-row losses and weights: `(loss, weight_sum)`.
    fn reduce_rows(
        loss: CudaStorage,
        rw: &CudaStorage,
        reduction: LossReduction,
    ) -> (CudaStorage, CudaStorage) {
        let dev = loss.device_arc().clone();
        let d = loss.dtype();
        let ws = CudaStorage::uninit(&dev, 1, DType::F64);
        let rows = loss.len() as u64;
        let t = row_threads(loss.len()).min(1024);
        let f = dev.function(Family::Loss, d, kname!("loss_reduce", d));
        let out = match reduction {
            LossReduction::None => None,
            _ => Some(CudaStorage::uninit(&dev, 1, d)),
        };
        let mean = u32::from(reduction == LossReduction::Mean);
        let (lp, rp, op, wp) = (
            loss.ptr(),
            rw.ptr(),
            out.as_ref().map_or(0, |o| o.ptr()),
            ws.ptr(),
        );
        let mut args = cuda_args![lp, rp, rows, mean, op, wp];
        // SAFETY: `loss_reduce_T(const T*, const double*, u64, u32, T*, double*)` over `rows`
        // losses and weights, one block; `out` (when given) and `ws` hold one element each.
        unsafe { dev.launch(f, (1, 1, 1), t, t * 8, &mut args) };
        (out.unwrap_or(loss), ws)
    }

    /// Fused cross-entropy forward with the total weight left on the device.
    pub fn cross_entropy_device_weight(
        &self,
        layout: &Layout,
        target: CeTarget<'_, CudaStorage>,
        opts: &CeOptions<'_, CudaStorage>,
        reduction: LossReduction,
    ) -> DeviceLossForward {
        let d = float_input(opts.op, self);
        let g = geom(opts.op, layout.shape());
        let (classes, _, rows) = g;
        let dev = self.device_arc().clone();
        let x = self.contiguous(layout);
        let w = weights(opts, d);
        let loss = CudaStorage::uninit(&dev, rows, d);
        let lse = CudaStorage::uninit(&dev, rows, d);
        let rw = CudaStorage::uninit(&dev, rows, DType::F64);
        let p = ce_params(opts, g);
        let (t, shared) = row_launch(classes, d.size_in_bytes());
        let (xp, wp, lp, sp, rp) = (
            x.ptr(),
            w.as_ref().map_or(0, |w| w.ptr()),
            loss.ptr(),
            lse.ptr(),
            rw.ptr(),
        );
        match target {
            CeTarget::Index(ts, tl) => {
                same_device(opts.op, self, ts);
                // One target per row: checked by the dispatch.
                let tg = index_targets(ts, tl);
                let f = dev.function(Family::Loss, d, kname!("ce_fwd_index", d));
                let (tp, e) = (tg.ptr(), dev.error_slot());
                let mut args = cuda_args![xp, tp, wp, lp, sp, rp, p, e];
                // SAFETY: `ce_fwd_index_T(const T*, const i64*, const T*, T*, T*, double*, CeP,
                // u64*)`: x holds rows·classes elements, targets/losses/lse/weights one per
                // row, w one per class (or null).
                unsafe { dev.launch(f, (blocks_for(rows, 1), 1, 1), t, shared, &mut args) };
            }
            CeTarget::Prob(ts, tl) => {
                same_device(opts.op, self, ts);
                let tg = contiguous_as(ts, tl, d);
                let f = dev.function(Family::Loss, d, kname!("ce_fwd_prob", d));
                let tp = tg.ptr();
                let mut args = cuda_args![xp, tp, wp, lp, sp, rp, p];
                // SAFETY: `ce_fwd_prob_T(const T*, const T*, const T*, T*, T*, double*, CeP)`:
                // x and targets hold rows·classes elements, the outputs one per row.
                unsafe { dev.launch(f, (blocks_for(rows, 1), 1, 1), t, shared, &mut args) };
            }
        }
        let (loss, weight_sum) = CudaStorage::reduce_rows(loss, &rw, reduction);
        DeviceLossForward {
            loss,
            lse: Some(lse),
            weight_sum,
        }
    }

    /// Fused cross-entropy forward (see `Storage::cross_entropy`). For class-index targets the
    /// weight sum is read back to the host (a wait); probability targets need none.
    pub fn cross_entropy(
        &self,
        layout: &Layout,
        target: CeTarget<'_, CudaStorage>,
        opts: &CeOptions<'_, CudaStorage>,
        reduction: LossReduction,
    ) -> LossForward<CudaStorage> {
        let f = self.cross_entropy_device_weight(layout, target, opts, reduction);
        let weight_sum = match target {
            CeTarget::Prob(..) => geom(opts.op, layout.shape()).2 as f64,
            CeTarget::Index(..) => f.weight_sum.to_vec::<f64>(&Layout::contiguous(&[1]))[0],
        };
        LossForward {
            loss: f.loss,
            lse: f.lse,
            weight_sum,
        }
    }

    /// Fused cross-entropy backward whose `LossGrad::Reduced` factor is further divided by the
    /// device-side `weight_sum` when given (the mean of [`Self::cross_entropy_device_weight`]).
    #[allow(clippy::too_many_arguments)]
    pub fn cross_entropy_backward_device_weight(
        &self,
        layout: &Layout,
        target: CeTarget<'_, CudaStorage>,
        opts: &CeOptions<'_, CudaStorage>,
        lse: &CudaStorage,
        grad: LossGrad<'_, CudaStorage>,
        target_grad: bool,
        weight_sum: Option<&CudaStorage>,
    ) -> (CudaStorage, Option<CudaStorage>) {
        let d = float_input(opts.op, self);
        let g = geom(opts.op, layout.shape());
        let (classes, _, rows) = g;
        let dev = self.device_arc().clone();
        let x = self.contiguous(layout);
        let w = weights(opts, d);
        let (gr, gp) = grad_of(grad, d);
        let out = CudaStorage::uninit(&dev, layout.numel(), d);
        if lse.len() != rows || lse.dtype() != d {
            panic!(
                "{}: the saved logsumexp has {} elements of {}, expected {rows} of {d}",
                opts.op,
                lse.len(),
                lse.dtype()
            );
        }
        let p = ce_params(opts, g);
        let (t, shared) = row_launch(classes, d.size_in_bytes());
        let (xp, wp, sp, gpp, op) = (
            x.ptr(),
            w.as_ref().map_or(0, |w| w.ptr()),
            lse.ptr(),
            gr.ptr(),
            out.ptr(),
        );
        match target {
            CeTarget::Index(ts, tl) => {
                let tg = index_targets(ts, tl);
                let f = dev.function(Family::Loss, d, kname!("ce_bwd_index", d));
                let (tp, ws) = (tg.ptr(), weight_sum.map_or(0, |w| w.ptr()));
                let mut args = cuda_args![xp, tp, wp, sp, gpp, gp, ws, op, p];
                // SAFETY: `ce_bwd_index_T(const T*, const i64*, const T*, const T*, const T*,
                // GradP, const double*, T*, CeP)`: sizes as in the forward; the gradient holds
                // one element per row or one element.
                unsafe { dev.launch(f, (blocks_for(rows, 1), 1, 1), t, shared, &mut args) };
                (out, None)
            }
            CeTarget::Prob(ts, tl) => {
                let tg = contiguous_as(ts, tl, d);
                let tgrad = target_grad.then(|| CudaStorage::uninit(&dev, layout.numel(), d));
                let f = dev.function(Family::Loss, d, kname!("ce_bwd_prob", d));
                let (tp, tgp) = (tg.ptr(), tgrad.as_ref().map_or(0, |t| t.ptr()));
                let mut args = cuda_args![xp, tp, wp, sp, gpp, gp, op, tgp, p];
                // SAFETY: `ce_bwd_prob_T(const T*, const T*, const T*, const T*, const T*, GradP,
                // T*, T*, CeP)`: x, targets, outputs hold rows·classes elements.
                unsafe { dev.launch(f, (blocks_for(rows, 1), 1, 1), t, shared, &mut args) };
                (out, tgrad)
            }
        }
    }

    /// Fused cross-entropy backward (see `Storage::cross_entropy_backward`).
    pub fn cross_entropy_backward(
        &self,
        layout: &Layout,
        target: CeTarget<'_, CudaStorage>,
        opts: &CeOptions<'_, CudaStorage>,
        lse: &CudaStorage,
        grad: LossGrad<'_, CudaStorage>,
        target_grad: bool,
    ) -> (CudaStorage, Option<CudaStorage>) {
        self.cross_entropy_backward_device_weight(
            layout,
            target,
            opts,
            lse,
            grad,
            target_grad,
            None,
        )
    }

    /// NLL forward with the total weight left on the device.
    pub fn nll_loss_device_weight(
        &self,
        layout: &Layout,
        target: (&CudaStorage, &Layout),
        opts: &CeOptions<'_, CudaStorage>,
        reduction: LossReduction,
    ) -> DeviceLossForward {
        let d = float_input(opts.op, self);
        let g = geom(opts.op, layout.shape());
        let (_, _, rows) = g;
        let dev = self.device_arc().clone();
        let x = self.contiguous(layout);
        let w = weights(opts, d);
        same_device(opts.op, self, target.0);
        let tg = index_targets(target.0, target.1);
        let loss = CudaStorage::uninit(&dev, rows, d);
        let rw = CudaStorage::uninit(&dev, rows, DType::F64);
        let p = ce_params(opts, g);
        let f = dev.function(Family::Loss, d, kname!("nll_fwd", d));
        let (xp, tp, wp, lp, rp, e) = (
            x.ptr(),
            tg.ptr(),
            w.as_ref().map_or(0, |w| w.ptr()),
            loss.ptr(),
            rw.ptr(),
            dev.error_slot(),
        );
        let mut args = cuda_args![xp, tp, wp, lp, rp, p, e];
        // SAFETY: `nll_fwd_T(const T*, const i64*, const T*, T*, double*, CeP, u64*)`, a
        // thread per row; sizes as in cross_entropy.
        unsafe { dev.launch(f, (blocks_for(rows, 128), 1, 1), 128, 0, &mut args) };
        let (loss, weight_sum) = CudaStorage::reduce_rows(loss, &rw, reduction);
        DeviceLossForward {
            loss,
            lse: None,
            weight_sum,
        }
    }

    /// NLL forward (see `Storage::nll_loss`); reads the weight sum back to the host.
    pub fn nll_loss(
        &self,
        layout: &Layout,
        target: (&CudaStorage, &Layout),
        opts: &CeOptions<'_, CudaStorage>,
        reduction: LossReduction,
    ) -> LossForward<CudaStorage> {
        let f = self.nll_loss_device_weight(layout, target, opts, reduction);
        LossForward {
            loss: f.loss,
            lse: None,
            weight_sum: f.weight_sum.to_vec::<f64>(&Layout::contiguous(&[1]))[0],
        }
    }

    /// NLL backward whose reduced gradient is divided by the device-side `weight_sum` when
    /// given.
    pub fn nll_loss_backward_device_weight(
        &self,
        layout: &Layout,
        target: (&CudaStorage, &Layout),
        opts: &CeOptions<'_, CudaStorage>,
        grad: LossGrad<'_, CudaStorage>,
        weight_sum: Option<&CudaStorage>,
    ) -> CudaStorage {
        let d = float_input(opts.op, self);
        let g = geom(opts.op, layout.shape());
        let (_, _, rows) = g;
        let dev = self.device_arc().clone();
        let w = weights(opts, d);
        let tg = index_targets(target.0, target.1);
        let (gr, gp) = grad_of(grad, d);
        let out = CudaStorage::zeros(&dev, layout.numel(), d);
        let p = ce_params(opts, g);
        let f = dev.function(Family::Loss, d, kname!("nll_bwd", d));
        let (tp, wp, gpp, ws, op) = (
            tg.ptr(),
            w.as_ref().map_or(0, |w| w.ptr()),
            gr.ptr(),
            weight_sum.map_or(0, |w| w.ptr()),
            out.ptr(),
        );
        let mut args = cuda_args![tp, wp, gpp, gp, ws, op, p];
        // SAFETY: `nll_bwd_T(const i64*, const T*, const T*, GradP, const double*, T*, CeP)`, a
        // thread per row writing one element of its row.
        unsafe { dev.launch(f, (blocks_for(rows, 128), 1, 1), 128, 0, &mut args) };
        out
    }

    /// NLL backward (see `Storage::nll_loss_backward`).
    pub fn nll_loss_backward(
        &self,
        layout: &Layout,
        target: (&CudaStorage, &Layout),
        opts: &CeOptions<'_, CudaStorage>,
        grad: LossGrad<'_, CudaStorage>,
    ) -> CudaStorage {
        self.nll_loss_backward_device_weight(layout, target, opts, grad, None)
    }
}
