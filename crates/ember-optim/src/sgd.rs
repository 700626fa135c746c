//! `torch.optim.SGD`: stochastic gradient descent with momentum, dampening, Nesterov momentum,
//! weight decay and maximize.

use crate::optimizer::{
    check_nonneg, hyper_fields, optimizer_impl, zeros_for, Algorithm, Core, Hyperparams, Optimizer,
    ParamGroup, ParamState,
};
use crate::state_dict::{OptimError, StateDict};
use ember_autograd::optim::SgdStep;
use ember_autograd::Tensor;
use serde::{Deserialize, Serialize};

/// SGD's hyper-parameters (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SgdOptions {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Momentum factor (default 0).
    pub momentum: f64,
    /// Dampening for momentum (default 0).
    pub dampening: f64,
    /// L2 penalty (default 0).
    pub weight_decay: f64,
    /// Nesterov momentum (default false; needs momentum > 0 and zero dampening).
    pub nesterov: bool,
    /// Maximize the objective instead of minimizing (default false).
    pub maximize: bool,
}

impl Default for SgdOptions {
    fn default() -> Self {
        SgdOptions {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

impl Hyperparams for SgdOptions {
    hyper_fields!(f64: [lr, momentum, dampening, weight_decay], bool: [nesterov, maximize]);

    fn validate(&self) {
        check_nonneg("learning rate", self.lr);
        check_nonneg("momentum", self.momentum);
        check_nonneg("weight_decay", self.weight_decay);
    }
}

pub(crate) struct SgdAlgo;

impl Algorithm for SgdAlgo {
    const NAME: &'static str = "SGD";
    const BUFFERS: &'static [&'static str] = &["momentum_buffer"];
    const HAS_STEP: bool = false;
    type Options = SgdOptions;

    fn check(o: &SgdOptions) {
        if o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0) {
            panic!("Nesterov momentum requires a momentum and zero dampening");
        }
    }

    fn update(p: &Tensor, g: &Tensor, o: &SgdOptions, st: &mut ParamState) {
        let first_step = o.momentum != 0.0 && st.bufs[0].is_none();
        if first_step {
            st.bufs[0] = Some(zeros_for(p));
        }
        let h = SgdStep {
            lr: o.lr,
            momentum: o.momentum,
            dampening: o.dampening,
            weight_decay: o.weight_decay,
            nesterov: o.nesterov,
            maximize: o.maximize,
            first_step,
        };
        let buf = st.bufs[0].as_ref().filter(|_| o.momentum != 0.0);
        p.sgd_step_(g, buf, &h);
    }
}

/// `torch.optim.SGD`. Per parameter, with `d = ±grad + weight_decay·p`: with momentum,
/// `buf = d` on the first step and `buf = momentum·buf + (1 − dampening)·d` after;
/// the update is `p −= lr·(nesterov ? d + momentum·buf : buf)` (or `p −= lr·d` without momentum).
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_optim::SGD;
/// let w = Tensor::from_slice(&[1.0f32], [1]).requires_grad_(true);
/// let mut opt = SGD::new([w.clone()], 0.1).momentum(0.9).nesterov(true);
/// w.set_grad(Some(Tensor::from_slice(&[1.0f32], [1])));
/// opt.step(); // buf = 1, p -= 0.1 * (1 + 0.9)
/// assert!((w.to_vec::<f32>()[0] - 0.81).abs() < 1e-6);
/// ```
#[allow(clippy::upper_case_acronyms)]
pub struct SGD {
    core: Core<SgdAlgo>,
}

impl SGD {
    /// SGD over `params` with learning rate `lr` and PyTorch's other defaults.
    pub fn new(params: impl IntoIterator<Item = Tensor>, lr: f64) -> SGD {
        SGD::with_options(
            params,
            SgdOptions {
                lr,
                ..Default::default()
            },
        )
    }

    /// SGD over `params` with the given hyper-parameters.
    pub fn with_options(params: impl IntoIterator<Item = Tensor>, options: SgdOptions) -> SGD {
        SGD {
            core: Core::new(params, options),
        }
    }

    /// Sets the momentum factor (every group and the defaults).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.core.set_all(|o| o.momentum = momentum);
        self
    }

    /// Sets the dampening.
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.core.set_all(|o| o.dampening = dampening);
        self
    }

    /// Sets the L2 penalty.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.core.set_all(|o| o.weight_decay = weight_decay);
        self
    }

    /// Turns Nesterov momentum on or off.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.core.set_all(|o| o.nesterov = nesterov);
        self
    }

    /// Maximizes instead of minimizing.
    pub fn maximize(mut self, maximize: bool) -> Self {
        self.core.set_all(|o| o.maximize = maximize);
        self
    }
}

optimizer_impl!(SGD, SgdAlgo, SgdOptions);
