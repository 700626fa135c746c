//! Fused in-place optimizer updates on `Storage` (SGD, Adam/AdamW, RMSprop, Adagrad) and the
//! norm reduction gradient clipping needs: device dispatch.
//!
//! Each update is one pass over the parameter, its gradient and its state buffers, in place. The
//! scalars that change from step to step (learning rate, Adam's bias corrections) arrive in the
//! `*Step` structs, so the kernels keep no state of their own. State buffers are whole contiguous
//! storages with one element per parameter element, in the parameter's logical (row-major) order.

use crate::layout::Layout;
use crate::storage::{dispatch, operand, operand_mut, Storage};

/// The scalars of one `torch.optim.SGD` step for one parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0: plain SGD, no buffer).
    pub momentum: f64,
    /// Dampening of the momentum (not applied on the buffer's first step, as in PyTorch).
    pub dampening: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// True on the momentum buffer's first step: the buffer's contents are ignored and it is set
    /// to the (decayed) gradient, as PyTorch's `buf = clone(grad)`.
    pub first_step: bool,
}

/// The scalars of one `torch.optim.Adam` / `AdamW` step for one parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// Learning rate (used by AdamW's decoupled decay).
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Term added to the denominator.
    pub eps: f64,
    /// Weight decay: an L2 penalty on the gradient, or AdamW's `p *= 1 - lr * weight_decay`.
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay instead of the L2 penalty.
    pub decoupled_weight_decay: bool,
    /// Keep the running maximum of the second moment (`max_exp_avg_sq` must be given).
    pub amsgrad: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// `lr / (1 - beta1^step)`.
    pub step_size: f64,
    /// `sqrt(1 - beta2^step)`.
    pub bias_correction2_sqrt: f64,
}

/// The scalars of one `torch.optim.RMSprop` step for one parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmspropStep {
    /// Learning rate.
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average.
    pub alpha: f64,
    /// Term added to the denominator.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Momentum factor (`momentum_buffer` must be given when non-zero).
    pub momentum: f64,
    /// Normalise by the estimated variance (`grad_avg` must be given).
    pub centered: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// The scalars of one `torch.optim.Adagrad` step for one parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradStep {
    /// The decayed learning rate `lr / (1 + (step - 1) * lr_decay)`.
    pub clr: f64,
    /// Term added to the denominator.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Storage {
    /// One SGD step in place on the parameter elements `lp` selects, with gradient `(grad, lg)`
    /// (same shape and dtype) and, when `momentum != 0`, the momentum buffer.
    pub fn sgd_step(
        &mut self,
        lp: &Layout,
        grad: &Storage,
        lg: &Layout,
        momentum_buffer: Option<&mut Storage>,
        h: &SgdStep,
    ) {
        let dev = self.device();
        dispatch!(self, p: S => {
            let g = operand::<S>("sgd", dev, grad);
            let buf = momentum_buffer.map(|b| operand_mut::<S>("sgd", dev, b));
            p.sgd_step(lp, g, lg, buf, h)
        })
    }

    /// One Adam/AdamW step in place (see [`AdamStep`]); `max_exp_avg_sq` is needed with amsgrad.
    pub fn adam_step(
        &mut self,
        lp: &Layout,
        grad: &Storage,
        lg: &Layout,
        exp_avg: &mut Storage,
        exp_avg_sq: &mut Storage,
        max_exp_avg_sq: Option<&mut Storage>,
        h: &AdamStep,
    ) {
        let dev = self.device();
        dispatch!(self, p: S => {
            let g = operand::<S>("adam", dev, grad);
            let m = operand_mut::<S>("adam", dev, exp_avg);
            let v = operand_mut::<S>("adam", dev, exp_avg_sq);
            let vmax = max_exp_avg_sq.map(|b| operand_mut::<S>("adam", dev, b));
            p.adam_step(lp, g, lg, m, v, vmax, h)
        })
    }

    /// One RMSprop step in place (see [`RmspropStep`]).
    pub fn rmsprop_step(
        &mut self,
        lp: &Layout,
        grad: &Storage,
        lg: &Layout,
        square_avg: &mut Storage,
        momentum_buffer: Option<&mut Storage>,
        grad_avg: Option<&mut Storage>,
        h: &RmspropStep,
    ) {
        let dev = self.device();
        dispatch!(self, p: S => {
            let g = operand::<S>("rmsprop", dev, grad);
            let sq = operand_mut::<S>("rmsprop", dev, square_avg);
            let buf = momentum_buffer.map(|b| operand_mut::<S>("rmsprop", dev, b));
            let ga = grad_avg.map(|b| operand_mut::<S>("rmsprop", dev, b));
            p.rmsprop_step(lp, g, lg, sq, buf, ga, h)
        })
    }

    /// One Adagrad step in place (see [`AdagradStep`]).
    pub fn adagrad_step(
        &mut self,
        lp: &Layout,
        grad: &Storage,
        lg: &Layout,
        sum: &mut Storage,
        h: &AdagradStep,
    ) {
        let dev = self.device();
        dispatch!(self, p: S => {
            let g = operand::<S>("adagrad", dev, grad);
            let s = operand_mut::<S>("adagrad", dev, sum);
            p.adagrad_step(lp, g, lg, s, h)
        })
    }

    /// The un-rooted vector norm of the elements `layout` selects, accumulated in f64:
    /// `Σ|x|^ord` for finite non-zero `ord`, the number of non-zero elements for `ord == 0`,
    /// `max |x|` for `+inf` and `min |x|` for `-inf` (`inf` when empty). Deterministic: the
    /// summation order depends only on the number of elements, not on the number of threads.
    pub fn norm_pow_sum(&self, layout: &Layout, ord: f64) -> f64 {
        dispatch!(self, s: S => s.norm_pow_sum(layout, ord))
    }
}
