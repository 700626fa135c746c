//! Fused in-place optimizer updates as Tensor methods. They are never recorded (an optimizer step
//! is outside the graph, as PyTorch's `@torch.no_grad` step), write the parameter and its state
//! buffers in place in one pass, and bump their version counters.

use crate::grad_mode::is_grad_enabled;
use crate::tensor::Tensor;
use ember_kernels::optim::{AdagradStep, AdamStep, RmspropStep, SgdStep};

impl Tensor {
    /// Checks the operands of a fused update before any storage is locked for writing: no recording
    /// conflict, grad of the parameter's shape and dtype in separate storage, state buffers of the
    /// parameter's dtype contiguous over their whole storage, none aliasing.
    fn check_fused(&self, op: &str, grad: &Tensor, states: &[&Tensor]) {
        if self.is_leaf() && self.requires_grad() && is_grad_enabled() {
            panic!("{op}: a leaf Variable that requires grad is being used in an in-place operation (run optimizer updates under no_grad).");
        }
        if grad.shape() != self.shape() {
            panic!(
                "{op}: the gradient has shape {:?} but the parameter has shape {:?}",
                grad.shape(),
                self.shape()
            );
        }
        if grad.device() != self.device() {
            panic!(
                "{op}: expected all tensors to be on the same device, but found at least two devices, {} and {}",
                self.device(),
                grad.device()
            );
        }
        if !self.dtype().is_float() || grad.dtype() != self.dtype() {
            panic!(
                "{op}: expected a floating-point parameter and a gradient of the same dtype, got {} and {}",
                self.dtype(),
                grad.dtype()
            );
        }
        if let Some(s) = states.iter().find(|s| s.dtype() != self.dtype()) {
            panic!(
                "{op}: state buffers must have the parameter's dtype {}, got {}",
                self.dtype(),
                s.dtype()
            );
        }
        if grad.shares_storage(self) {
            panic!("{op}: the gradient shares storage with the parameter");
        }
        for (i, s) in states.iter().enumerate() {
            let whole = s.layout().contiguous_range() == Some((0, s.storage().len()));
            if !whole || s.shape() != self.shape() {
                panic!(
                    "{op}: state buffers must be contiguous tensors of the parameter's shape {:?} owning their storage (got shape {:?})",
                    self.shape(),
                    s.shape()
                );
            }
            if s.shares_storage(self)
                || s.shares_storage(grad)
                || states[..i].iter().any(|o| o.shares_storage(s))
            {
                panic!("{op}: state buffers must not share storage with the parameter, its gradient or each other");
            }
        }
    }

    /// One `torch.optim.SGD` update of this parameter in place from `grad`; `momentum_buffer` is
    /// required when `h.momentum != 0` (see [`SgdStep`]). Not recorded.
    pub fn sgd_step_(&self, grad: &Tensor, momentum_buffer: Option<&Tensor>, h: &SgdStep) {
        self.check_fused("sgd", grad, momentum_buffer.as_slice());
        {
            let g = grad.storage();
            let mut b = momentum_buffer.map(|b| b.storage_mut());
            self.storage_mut()
                .sgd_step(self.layout(), &g, grad.layout(), b.as_deref_mut(), h);
        }
        self.bump_version();
        if let Some(b) = momentum_buffer {
            b.bump_version();
        }
    }

    /// One `torch.optim.Adam`/`AdamW` update of this parameter in place from `grad`, updating the
    /// moment buffers (and `max_exp_avg_sq` with amsgrad). Not recorded.
    pub fn adam_step_(
        &self,
        grad: &Tensor,
        exp_avg: &Tensor,
        exp_avg_sq: &Tensor,
        max_exp_avg_sq: Option<&Tensor>,
        h: &AdamStep,
    ) {
        let mut states = [exp_avg, exp_avg_sq, exp_avg];
        let n = if let Some(m) = max_exp_avg_sq {
            states[2] = m;
            3
        } else {
            2
        };
        self.check_fused("adam", grad, &states[..n]);
        {
            let g = grad.storage();
            let (mut m, mut v) = (exp_avg.storage_mut(), exp_avg_sq.storage_mut());
            let mut vm = max_exp_avg_sq.map(|b| b.storage_mut());
            self.storage_mut().adam_step(
                self.layout(),
                &g,
                grad.layout(),
                &mut m,
                &mut v,
                vm.as_deref_mut(),
                h,
            );
        }
        self.bump_version();
        for s in &states[..n] {
            s.bump_version();
        }
    }

    /// One `torch.optim.RMSprop` update of this parameter in place from `grad`
    /// (`momentum_buffer` when momentum > 0, `grad_avg` when centered). Not recorded.
    pub fn rmsprop_step_(
        &self,
        grad: &Tensor,
        square_avg: &Tensor,
        momentum_buffer: Option<&Tensor>,
        grad_avg: Option<&Tensor>,
        h: &RmspropStep,
    ) {
        let mut states = [square_avg, square_avg, square_avg];
        let mut n = 1;
        for s in [momentum_buffer, grad_avg].into_iter().flatten() {
            states[n] = s;
            n += 1;
        }
        self.check_fused("rmsprop", grad, &states[..n]);
        {
            let g = grad.storage();
            let mut sq = square_avg.storage_mut();
            let mut b = momentum_buffer.map(|b| b.storage_mut());
            let mut ga = grad_avg.map(|b| b.storage_mut());
            self.storage_mut().rmsprop_step(
                self.layout(),
                &g,
                grad.layout(),
                &mut sq,
                b.as_deref_mut(),
                ga.as_deref_mut(),
                h,
            );
        }
        self.bump_version();
        for s in &states[..n] {
            s.bump_version();
        }
    }

    /// One `torch.optim.Adagrad` update of this parameter in place from `grad`, accumulating into
    /// `sum`. Not recorded.
    pub fn adagrad_step_(&self, grad: &Tensor, sum: &Tensor, h: &AdagradStep) {
        self.check_fused("adagrad", grad, &[sum]);
        {
            let g = grad.storage();
            let mut s = sum.storage_mut();
            self.storage_mut()
                .adagrad_step(self.layout(), &g, grad.layout(), &mut s, h);
        }
        self.bump_version();
        sum.bump_version();
    }

    /// The un-rooted vector norm of the elements, in f64 (`Σ|x|^ord`; the count of non-zeros for
    /// `ord == 0`; `max |x|` / `min |x|` for `±inf`), as gradient clipping needs it. Deterministic
    /// whatever the number of threads. Not recorded.
    pub fn norm_pow_sum(&self, ord: f64) -> f64 {
        if !self.dtype().is_float() {
            panic!(
                "norm: expected a floating-point tensor, got {}",
                self.dtype()
            );
        }
        self.storage().norm_pow_sum(self.layout(), ord)
    }
}
