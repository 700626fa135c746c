//! `torch.optim.Adagrad`.

use crate::optimizer::{
    check_nonneg, hyper_fields, optimizer_impl, Algorithm, Core, Hyperparams, Optimizer,
    ParamGroup, ParamState,
};
use crate::state_dict::{OptimError, StateDict};
use ember_autograd::optim::AdagradStep;
use ember_autograd::Tensor;
use serde::{Deserialize, Serialize};

/// Adagrad's hyper-parameters (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdagradOptions {
    /// Learning rate (default 1e-2).
    pub lr: f64,
    /// Learning-rate decay (default 0).
    pub lr_decay: f64,
    /// L2 penalty (default 0).
    pub weight_decay: f64,
    /// Starting value of the squared-gradient sums (default 0).
    pub initial_accumulator_value: f64,
    /// Term added to the denominator (default 1e-10).
    pub eps: f64,
    /// Maximize the objective instead of minimizing (default false).
    pub maximize: bool,
}

impl Default for AdagradOptions {
    fn default() -> Self {
        AdagradOptions {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

impl Hyperparams for AdagradOptions {
    hyper_fields!(f64: [lr, lr_decay, weight_decay, initial_accumulator_value, eps], bool: [maximize]);

    fn validate(&self) {
        check_nonneg("learning rate", self.lr);
        check_nonneg("lr_decay", self.lr_decay);
        check_nonneg("weight_decay", self.weight_decay);
        check_nonneg("initial_accumulator_value", self.initial_accumulator_value);
        check_nonneg("epsilon", self.eps);
    }
}

pub(crate) struct AdagradAlgo;

impl Algorithm for AdagradAlgo {
    const NAME: &'static str = "Adagrad";
    const BUFFERS: &'static [&'static str] = &["sum"];
    const HAS_STEP: bool = true;
    type Options = AdagradOptions;

    fn update(p: &Tensor, g: &Tensor, o: &AdagradOptions, st: &mut ParamState) {
        if st.bufs[0].is_none() {
            st.bufs[0] = Some(p.full_like(o.initial_accumulator_value));
        }
        st.step += 1;
        let h = AdagradStep {
            clr: o.lr / (1.0 + (st.step - 1) as f64 * o.lr_decay),
            eps: o.eps,
            weight_decay: o.weight_decay,
            maximize: o.maximize,
        };
        p.adagrad_step_(g, st.bufs[0].as_ref().unwrap(), &h);
    }
}

/// `torch.optim.Adagrad`. Per parameter, with `d = ±grad + weight_decay·p` and `t` its step
/// count: `sum += d²`, `p −= lr / (1 + (t − 1)·lr_decay) · d / (sqrt(sum) + eps)`; `sum` starts at
/// `initial_accumulator_value`.
pub struct Adagrad {
    core: Core<AdagradAlgo>,
}

impl Adagrad {
    /// Adagrad over `params` with learning rate `lr` and PyTorch's other defaults.
    pub fn new(params: impl IntoIterator<Item = Tensor>, lr: f64) -> Adagrad {
        Adagrad::with_options(
            params,
            AdagradOptions {
                lr,
                ..Default::default()
            },
        )
    }

    /// Adagrad over `params` with the given hyper-parameters.
    pub fn with_options(
        params: impl IntoIterator<Item = Tensor>,
        options: AdagradOptions,
    ) -> Adagrad {
        Adagrad {
            core: Core::new(params, options),
        }
    }

    /// Sets the learning-rate decay (every group and the defaults).
    pub fn lr_decay(mut self, lr_decay: f64) -> Self {
        self.core.set_all(|o| o.lr_decay = lr_decay);
        self
    }

    /// Sets the L2 penalty.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.core.set_all(|o| o.weight_decay = weight_decay);
        self
    }

    /// Sets the starting value of the squared-gradient sums (before the first step).
    pub fn initial_accumulator_value(mut self, v: f64) -> Self {
        self.core.set_all(|o| o.initial_accumulator_value = v);
        self
    }

    /// Sets the denominator's epsilon.
    pub fn eps(mut self, eps: f64) -> Self {
        self.core.set_all(|o| o.eps = eps);
        self
    }

    /// Maximizes instead of minimizing.
    pub fn maximize(mut self, maximize: bool) -> Self {
        self.core.set_all(|o| o.maximize = maximize);
        self
    }
}

optimizer_impl!(Adagrad, AdagradAlgo, AdagradOptions);
