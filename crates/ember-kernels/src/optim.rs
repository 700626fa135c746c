//! The per-step scalars of the fused optimizer updates (SGD, Adam/AdamW, RMSprop, Adagrad),
//! shared by every backend; the device dispatch is in `storage/optim.rs`.
//!
//! Each update is one pass over the parameter, its gradient and its state buffers, in place. The
//! scalars that change from step to step (learning rate, Adam's bias corrections) arrive in the
//! `*Step` structs, so the kernels keep no state of their own. State buffers are whole contiguous
//! storages with one element per parameter element, in the parameter's logical (row-major) order.

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
