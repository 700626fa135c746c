//! Fused in-place optimizer updates on `Storage` and the norm reduction gradient clipping
//! needs: device dispatch (the step structs are in `crate::optim`).

use crate::layout::Layout;
use crate::optim::{AdagradStep, AdamStep, RmspropStep, SgdStep};
use crate::storage::{dispatch, operand, operand_mut, Storage};

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
