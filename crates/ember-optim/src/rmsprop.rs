//! `torch.optim.RMSprop`.

use crate::optimizer::{
    check_nonneg, hyper_fields, optimizer_impl, zeros_for, Algorithm, Core, Hyperparams, Optimizer,
    ParamGroup, ParamState,
};
use crate::state_dict::{OptimError, StateDict};
use ember_autograd::optim::RmspropStep;
use ember_autograd::Tensor;
use serde::{Deserialize, Serialize};

/// RMSprop's hyper-parameters (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RMSpropOptions {
    /// Learning rate (default 1e-2).
    pub lr: f64,
    /// Smoothing constant (default 0.99).
    pub alpha: f64,
    /// Term added to the denominator (default 1e-8).
    pub eps: f64,
    /// L2 penalty (default 0).
    pub weight_decay: f64,
    /// Momentum factor (default 0).
    pub momentum: f64,
    /// Normalise by the estimated variance of the gradient (default false).
    pub centered: bool,
    /// Maximize the objective instead of minimizing (default false).
    pub maximize: bool,
}

impl Default for RMSpropOptions {
    fn default() -> Self {
        RMSpropOptions {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

impl Hyperparams for RMSpropOptions {
    hyper_fields!(f64: [lr, alpha, eps, weight_decay, momentum], bool: [centered, maximize]);

    fn validate(&self) {
        check_nonneg("learning rate", self.lr);
        check_nonneg("epsilon", self.eps);
        check_nonneg("momentum", self.momentum);
        check_nonneg("weight_decay", self.weight_decay);
        check_nonneg("alpha", self.alpha);
    }
}

pub(crate) struct RmspropAlgo;

impl Algorithm for RmspropAlgo {
    const NAME: &'static str = "RMSprop";
    const BUFFERS: &'static [&'static str] = &["square_avg", "momentum_buffer", "grad_avg"];
    const HAS_STEP: bool = true;
    type Options = RMSpropOptions;

    fn update(p: &Tensor, g: &Tensor, o: &RMSpropOptions, st: &mut ParamState) {
        let need = [true, o.momentum > 0.0, o.centered];
        for (buf, needed) in st.bufs.iter_mut().zip(need) {
            if needed && buf.is_none() {
                *buf = Some(zeros_for(p));
            }
        }
        st.step += 1;
        let h = RmspropStep {
            lr: o.lr,
            alpha: o.alpha,
            eps: o.eps,
            weight_decay: o.weight_decay,
            momentum: o.momentum,
            centered: o.centered,
            maximize: o.maximize,
        };
        let [sq, buf, ga] = &st.bufs;
        p.rmsprop_step_(
            g,
            sq.as_ref().unwrap(),
            buf.as_ref().filter(|_| need[1]),
            ga.as_ref().filter(|_| need[2]),
            &h,
        );
    }
}

/// `torch.optim.RMSprop`. Per parameter, with `d = ±grad + weight_decay·p`:
/// `sq = α·sq + (1 − α)·d²`; centered: `ga = lerp(ga, d, 1 − α)`, `avg = sqrt(sq − ga²) + eps`,
/// else `avg = sqrt(sq) + eps`; with momentum `buf = momentum·buf + d / avg`, `p −= lr·buf`,
/// else `p −= lr · d / avg`.
pub struct RMSprop {
    core: Core<RmspropAlgo>,
}

impl RMSprop {
    /// RMSprop over `params` with learning rate `lr` and PyTorch's other defaults.
    pub fn new(params: impl IntoIterator<Item = Tensor>, lr: f64) -> RMSprop {
        RMSprop::with_options(
            params,
            RMSpropOptions {
                lr,
                ..Default::default()
            },
        )
    }

    /// RMSprop over `params` with the given hyper-parameters.
    pub fn with_options(
        params: impl IntoIterator<Item = Tensor>,
        options: RMSpropOptions,
    ) -> RMSprop {
        RMSprop {
            core: Core::new(params, options),
        }
    }

    /// Sets the smoothing constant (every group and the defaults).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.core.set_all(|o| o.alpha = alpha);
        self
    }

    /// Sets the denominator's epsilon.
    pub fn eps(mut self, eps: f64) -> Self {
        self.core.set_all(|o| o.eps = eps);
        self
    }

    /// Sets the L2 penalty.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.core.set_all(|o| o.weight_decay = weight_decay);
        self
    }

    /// Sets the momentum factor.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.core.set_all(|o| o.momentum = momentum);
        self
    }

    /// Turns the centered variant on or off.
    pub fn centered(mut self, centered: bool) -> Self {
        self.core.set_all(|o| o.centered = centered);
        self
    }

    /// Maximizes instead of minimizing.
    pub fn maximize(mut self, maximize: bool) -> Self {
        self.core.set_all(|o| o.maximize = maximize);
        self
    }
}

optimizer_impl!(RMSprop, RmspropAlgo, RMSpropOptions);
