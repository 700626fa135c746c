//! Fused optimizer updates on `CudaStorage` (`optim.cu`): SGD, Adam/AdamW, RMSprop, Adagrad —
//! the methods of `cpu/optim.rs`, with its checks, messages and formulas (the kernels round
//! exactly as the CPU loops do). Parameters and gradients of any layout: strided ones go
//! through contiguous copies, as on the CPU. (`norm_pow_sum` is in `reduce.rs`.)

use super::device::Device;
use super::kernels::Family;
use super::params::{AdagradP, AdamP, RmsP, SgdP};
use super::storage::{blocks_for, check_extent, same_device, CudaStorage};
use crate::dtype::DType;
use crate::layout::Layout;
use crate::optim::{AdagradStep, AdamStep, RmspropStep, SgdStep};
use crate::{cuda_args, kname};
use std::ffi::c_void;
use std::sync::Arc;

fn check_shapes(op: &str, lp: &Layout, lg: &Layout) {
    if lp.shape() != lg.shape() {
        panic!(
            "{op}: the gradient has shape {:?} but the parameter has shape {:?}",
            lg.shape(),
            lp.shape()
        );
    }
}

fn float_param(op: &str, p: &CudaStorage) -> DType {
    let d = p.dtype();
    if !d.is_float() {
        panic!("{op}: expected a floating-point parameter, got {d}");
    }
    d
}

fn check_grad(op: &str, d: DType, g: &CudaStorage) {
    if g.dtype() != d {
        panic!(
            "{op}: the gradient has dtype {} but the parameter has dtype {d}",
            g.dtype()
        );
    }
}

/// The address of a state buffer of `n` elements (0 when absent).
fn state(op: &str, what: &str, p: &CudaStorage, s: Option<&CudaStorage>, n: usize) -> u64 {
    let Some(s) = s else {
        return 0;
    };
    same_device(op, p, s);
    let d = p.dtype();
    if s.dtype() != d {
        panic!(
            "{op}: the {what} state has dtype {} but the parameter has dtype {d}",
            s.dtype()
        );
    }
    if s.len() != n {
        panic!(
            "{op}: the {what} state has {} elements but the parameter has {n}",
            s.len()
        );
    }
    s.ptr()
}

/// Runs `launch(p, g)` with contiguous parameter and gradient addresses: a strided gradient
/// is copied first, a strided parameter is updated in a contiguous copy written back after.
fn with_contiguous(
    p: &mut CudaStorage,
    lp: &Layout,
    g: &CudaStorage,
    lg: &Layout,
    launch: impl FnOnce(u64, u64),
) {
    let n = lp.numel();
    if n == 0 {
        return;
    }
    check_extent("optimizer step", lp, p.len());
    check_extent("optimizer step", lg, g.len());
    let gcopy;
    let gp = match lg.contiguous_range() {
        Some((s, _)) => g.ptr_at(s),
        None => {
            gcopy = g.contiguous(lg);
            gcopy.ptr()
        }
    };
    match lp.contiguous_range() {
        Some((s, _)) => launch(p.ptr_at(s), gp),
        None => {
            let tmp = p.contiguous(lp);
            launch(tmp.ptr(), gp);
            let lc = Layout::contiguous(lp.shape());
            p.copy_from(lp, &tmp, &lc);
        }
    }
}

/// Launches an update kernel over `n` elements, a thread per element.
///
/// # Safety
/// `args` must match the kernel's parameters; every buffer holds `n` elements.
unsafe fn run(
    dev: &Arc<Device>,
    f: cudarc::driver::sys::CUfunction,
    n: usize,
    args: &mut [*mut c_void],
) {
    // SAFETY: the caller's contract (arguments match, every buffer holds `n` elements).
    unsafe { dev.launch(f, (blocks_for(n, 256), 1, 1), 256, 0, args) };
}

fn sign(maximize: bool) -> f64 {
    if maximize {
        -1.0
    } else {
        1.0
    }
}

impl CudaStorage {
    /// One SGD step in place (see [`SgdStep`]); the momentum buffer is required when
    /// `momentum != 0`.
    pub fn sgd_step(
        &mut self,
        lp: &Layout,
        g: &CudaStorage,
        lg: &Layout,
        buf: Option<&mut CudaStorage>,
        h: &SgdStep,
    ) {
        check_shapes("sgd", lp, lg);
        if h.momentum != 0.0 && buf.is_none() {
            panic!("sgd: momentum {} needs a momentum buffer", h.momentum);
        }
        let d = float_param("sgd", self);
        check_grad("sgd", d, g);
        same_device("sgd", self, g);
        let n = lp.numel();
        let momentum = h.momentum != 0.0;
        let b = state(
            "sgd",
            "momentum_buffer",
            self,
            buf.as_deref().filter(|_| momentum),
            n,
        );
        let c = SgdP {
            nlr: -h.lr,
            wd: h.weight_decay,
            sign: sign(h.maximize),
            mom: h.momentum,
            damp1: 1.0 - h.dampening,
            wd_on: u32::from(h.weight_decay != 0.0),
            momentum: u32::from(momentum),
            first: u32::from(h.first_step),
            nesterov: u32::from(h.nesterov),
        };
        let dev = self.device_arc().clone();
        let f = dev.function(Family::Optim, d, kname!("sgd", d));
        let n64 = n as u64;
        with_contiguous(self, lp, g, lg, |pp, gp| {
            let mut args = cuda_args![pp, gp, b, n64, c];
            // SAFETY: `sgd_T(T*, const T*, T*, u64, SgdP)`; p, g and the buffer (read only
            // with momentum) hold n elements.
            unsafe { run(&dev, f, n, &mut args) };
        });
    }

    /// One Adam/AdamW step in place (see [`AdamStep`]).
    #[allow(clippy::too_many_arguments)]
    pub fn adam_step(
        &mut self,
        lp: &Layout,
        g: &CudaStorage,
        lg: &Layout,
        exp_avg: &mut CudaStorage,
        exp_avg_sq: &mut CudaStorage,
        max_exp_avg_sq: Option<&mut CudaStorage>,
        h: &AdamStep,
    ) {
        check_shapes("adam", lp, lg);
        if h.amsgrad && max_exp_avg_sq.is_none() {
            panic!("adam: amsgrad needs a max_exp_avg_sq buffer");
        }
        let d = float_param("adam", self);
        check_grad("adam", d, g);
        same_device("adam", self, g);
        let n = lp.numel();
        let m = state("adam", "exp_avg", self, Some(exp_avg), n);
        let v = state("adam", "exp_avg_sq", self, Some(exp_avg_sq), n);
        let vm = state(
            "adam",
            "max_exp_avg_sq",
            self,
            max_exp_avg_sq.as_deref().filter(|_| h.amsgrad),
            n,
        );
        let w = 1.0 - h.beta1;
        let c = AdamP {
            sign: sign(h.maximize),
            wd: h.weight_decay,
            decay: 1.0 - h.lr * h.weight_decay,
            w,
            w1: 1.0 - w,
            b2: h.beta2,
            c2: 1.0 - h.beta2,
            bc2s: h.bias_correction2_sqrt,
            eps: h.eps,
            nss: -h.step_size,
            wd_mode: match (h.weight_decay != 0.0, h.decoupled_weight_decay) {
                (false, _) => 0,
                (true, false) => 1,
                (true, true) => 2,
            },
            amsgrad: u32::from(h.amsgrad),
            lerp_small: u32::from(w.abs() < 0.5),
            pad: 0,
        };
        let dev = self.device_arc().clone();
        let f = dev.function(Family::Optim, d, kname!("adam", d));
        let n64 = n as u64;
        with_contiguous(self, lp, g, lg, |pp, gp| {
            let mut args = cuda_args![pp, gp, m, v, vm, n64, c];
            // SAFETY: `adam_T(T*, const T*, T*, T*, T*, u64, AdamP)`; every buffer holds n
            // elements (vmax is read only with amsgrad).
            unsafe { run(&dev, f, n, &mut args) };
        });
    }

    /// One RMSprop step in place (see [`RmspropStep`]).
    #[allow(clippy::too_many_arguments)]
    pub fn rmsprop_step(
        &mut self,
        lp: &Layout,
        g: &CudaStorage,
        lg: &Layout,
        square_avg: &mut CudaStorage,
        buf: Option<&mut CudaStorage>,
        grad_avg: Option<&mut CudaStorage>,
        h: &RmspropStep,
    ) {
        check_shapes("rmsprop", lp, lg);
        if h.momentum > 0.0 && buf.is_none() {
            panic!("rmsprop: momentum {} needs a momentum buffer", h.momentum);
        }
        if h.centered && grad_avg.is_none() {
            panic!("rmsprop: centered needs a grad_avg buffer");
        }
        let d = float_param("rmsprop", self);
        check_grad("rmsprop", d, g);
        same_device("rmsprop", self, g);
        let n = lp.numel();
        let sq = state("rmsprop", "square_avg", self, Some(square_avg), n);
        let b = state(
            "rmsprop",
            "momentum_buffer",
            self,
            buf.as_deref().filter(|_| h.momentum > 0.0),
            n,
        );
        let ga = state(
            "rmsprop",
            "grad_avg",
            self,
            grad_avg.as_deref().filter(|_| h.centered),
            n,
        );
        let w = 1.0 - h.alpha;
        let c = RmsP {
            sign: sign(h.maximize),
            wd: h.weight_decay,
            alpha: h.alpha,
            c1: 1.0 - h.alpha,
            w,
            w1: 1.0 - w,
            eps: h.eps,
            mom: h.momentum,
            nlr: -h.lr,
            wd_on: u32::from(h.weight_decay != 0.0),
            centered: u32::from(h.centered),
            momentum: u32::from(h.momentum > 0.0),
            lerp_small: u32::from(w.abs() < 0.5),
        };
        let dev = self.device_arc().clone();
        let f = dev.function(Family::Optim, d, kname!("rmsprop", d));
        let n64 = n as u64;
        with_contiguous(self, lp, g, lg, |pp, gp| {
            let mut args = cuda_args![pp, gp, sq, b, ga, n64, c];
            // SAFETY: `rmsprop_T(T*, const T*, T*, T*, T*, u64, RmsP)`; every buffer used by
            // the flags holds n elements.
            unsafe { run(&dev, f, n, &mut args) };
        });
    }

    /// One Adagrad step in place (see [`AdagradStep`]).
    pub fn adagrad_step(
        &mut self,
        lp: &Layout,
        g: &CudaStorage,
        lg: &Layout,
        sum: &mut CudaStorage,
        h: &AdagradStep,
    ) {
        check_shapes("adagrad", lp, lg);
        let d = float_param("adagrad", self);
        check_grad("adagrad", d, g);
        same_device("adagrad", self, g);
        let n = lp.numel();
        let s = state("adagrad", "sum", self, Some(sum), n);
        let c = AdagradP {
            sign: sign(h.maximize),
            wd: h.weight_decay,
            eps: h.eps,
            nclr: -h.clr,
            wd_on: u32::from(h.weight_decay != 0.0),
            pad: 0,
        };
        let dev = self.device_arc().clone();
        let f = dev.function(Family::Optim, d, kname!("adagrad", d));
        let n64 = n as u64;
        with_contiguous(self, lp, g, lg, |pp, gp| {
            let mut args = cuda_args![pp, gp, s, n64, c];
            // SAFETY: `adagrad_T(T*, const T*, T*, u64, AdagradP)`; all hold n elements.
            unsafe { run(&dev, f, n, &mut args) };
        });
    }
}
