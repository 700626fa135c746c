//! `torch.optim.Adam` and `torch.optim.AdamW`.

use crate::optimizer::{
    check_nonneg, optimizer_impl, zeros_for, Algorithm, Core, Hyperparams, Optimizer, ParamGroup,
    ParamState,
};
use crate::state_dict::{OptimError, StateDict};
use ember_autograd::optim::AdamStep;
use ember_autograd::Tensor;
use serde::{Deserialize, Serialize};

/// Adam's and AdamW's hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamOptions {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Decay rates of the first and second moment (default (0.9, 0.999)).
    pub betas: (f64, f64),
    /// Term added to the denominator (default 1e-8).
    pub eps: f64,
    /// Weight decay: an L2 penalty for Adam (default 0), decoupled for AdamW (default 1e-2).
    pub weight_decay: f64,
    /// The AMSGrad variant (default false).
    pub amsgrad: bool,
    /// Maximize the objective instead of minimizing (default false).
    pub maximize: bool,
}

impl Default for AdamOptions {
    /// Adam's defaults (AdamW starts from these with `weight_decay = 1e-2`).
    fn default() -> Self {
        AdamOptions {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
        }
    }
}

impl Hyperparams for AdamOptions {
    fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "lr" => self.lr,
            "beta1" => self.betas.0,
            "beta2" => self.betas.1,
            "eps" => self.eps,
            "weight_decay" => self.weight_decay,
            "amsgrad" => self.amsgrad as u8 as f64,
            "maximize" => self.maximize as u8 as f64,
            _ => return None,
        })
    }

    fn set(&mut self, name: &str, v: f64) -> bool {
        match name {
            "lr" => self.lr = v,
            "beta1" => self.betas.0 = v,
            "beta2" => self.betas.1 = v,
            "eps" => self.eps = v,
            "weight_decay" => self.weight_decay = v,
            "amsgrad" => self.amsgrad = v != 0.0,
            "maximize" => self.maximize = v != 0.0,
            _ => return false,
        }
        true
    }

    fn validate(&self) {
        check_nonneg("learning rate", self.lr);
        check_nonneg("epsilon", self.eps);
        for (i, b) in [self.betas.0, self.betas.1].into_iter().enumerate() {
            if !(0.0..1.0).contains(&b) {
                panic!("Invalid beta parameter at index {i}: {b}");
            }
        }
        check_nonneg("weight_decay", self.weight_decay);
    }
}

/// Adam (`DECOUPLED = false`) or AdamW (`true`).
pub(crate) struct AdamAlgo<const DECOUPLED: bool>;

impl<const DECOUPLED: bool> Algorithm for AdamAlgo<DECOUPLED> {
    const NAME: &'static str = if DECOUPLED { "AdamW" } else { "Adam" };
    const BUFFERS: &'static [&'static str] = &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
    const HAS_STEP: bool = true;
    type Options = AdamOptions;

    fn update(p: &Tensor, g: &Tensor, o: &AdamOptions, st: &mut ParamState) {
        for k in 0..2 + o.amsgrad as usize {
            if st.bufs[k].is_none() {
                st.bufs[k] = Some(zeros_for(p));
            }
        }
        st.step += 1;
        let (beta1, beta2) = o.betas;
        let step = st.step as f64;
        // PyTorch computes these in Python floats from the step count.
        let bias_correction1 = 1.0 - beta1.powf(step);
        let bias_correction2 = 1.0 - beta2.powf(step);
        let h = AdamStep {
            lr: o.lr,
            beta1,
            beta2,
            eps: o.eps,
            weight_decay: o.weight_decay,
            decoupled_weight_decay: DECOUPLED,
            amsgrad: o.amsgrad,
            maximize: o.maximize,
            step_size: o.lr / bias_correction1,
            bias_correction2_sqrt: bias_correction2.sqrt(),
        };
        let [m, v, vmax] = &st.bufs;
        let vmax = vmax.as_ref().filter(|_| o.amsgrad);
        p.adam_step_(g, m.as_ref().unwrap(), v.as_ref().unwrap(), vmax, &h);
    }
}

/// `torch.optim.Adam`. Per parameter, with `d = ±grad + weight_decay·p` and `t` the parameter's
/// step count: `m = lerp(m, d, 1 − β1)`, `v = β2·v + (1 − β2)·d²` (amsgrad: `v̂ = max(v̂, v)`),
/// `p −= lr / (1 − β1ᵗ) · m / (sqrt(v) / sqrt(1 − β2ᵗ) + eps)`.
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_optim::Adam;
/// let w = Tensor::from_slice(&[1.0f32], [1]).requires_grad_(true);
/// let mut opt = Adam::new([w.clone()], 0.1);
/// w.set_grad(Some(Tensor::from_slice(&[0.5f32], [1])));
/// opt.step(); // the first Adam step moves by about lr
/// assert!((w.to_vec::<f32>()[0] - 0.9).abs() < 1e-6);
/// ```
pub struct Adam {
    core: Core<AdamAlgo<false>>,
}

/// `torch.optim.AdamW`: Adam with decoupled weight decay, `p *= 1 − lr·weight_decay` before the
/// Adam update (default `weight_decay = 1e-2`).
pub struct AdamW {
    core: Core<AdamAlgo<true>>,
}

macro_rules! adam_builders {
    ($ty:ident, $wd:expr) => {
        impl $ty {
            /// Over `params` with learning rate `lr` and PyTorch's other defaults.
            pub fn new(params: impl IntoIterator<Item = Tensor>, lr: f64) -> $ty {
                let o = AdamOptions {
                    lr,
                    weight_decay: $wd,
                    ..Default::default()
                };
                $ty::with_options(params, o)
            }

            /// Over `params` with the given hyper-parameters.
            pub fn with_options(
                params: impl IntoIterator<Item = Tensor>,
                options: AdamOptions,
            ) -> $ty {
                $ty {
                    core: Core::new(params, options),
                }
            }

            /// Sets the moment decay rates (every group and the defaults).
            pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
                self.core.set_all(|o| o.betas = (beta1, beta2));
                self
            }

            /// Sets the denominator's epsilon.
            pub fn eps(mut self, eps: f64) -> Self {
                self.core.set_all(|o| o.eps = eps);
                self
            }

            /// Sets the weight decay.
            pub fn weight_decay(mut self, weight_decay: f64) -> Self {
                self.core.set_all(|o| o.weight_decay = weight_decay);
                self
            }

            /// Turns AMSGrad on or off.
            pub fn amsgrad(mut self, amsgrad: bool) -> Self {
                self.core.set_all(|o| o.amsgrad = amsgrad);
                self
            }

            /// Maximizes instead of minimizing.
            pub fn maximize(mut self, maximize: bool) -> Self {
                self.core.set_all(|o| o.maximize = maximize);
                self
            }
        }
    };
}

adam_builders!(Adam, 0.0);
adam_builders!(AdamW, 1e-2);
optimizer_impl!(Adam, AdamAlgo<false>, AdamOptions);
optimizer_impl!(AdamW, AdamAlgo<true>, AdamOptions);
