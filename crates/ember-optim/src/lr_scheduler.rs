//! Learning-rate schedulers (`torch.optim.lr_scheduler`). A scheduler does not hold the optimizer:
//! it is given `&mut dyn Optimizer` when built and at each `step`, and changes the groups' `lr`
//! with PyTorch's recurrences (so schedulers chain, and the sequences match PyTorch's bit for bit
//! up to float rounding).
//!
//! ```
//! use ember_autograd::Tensor;
//! use ember_optim::lr_scheduler::{LRScheduler, StepLR};
//! use ember_optim::{Optimizer, SGD};
//! let w = Tensor::zeros([2]).requires_grad_(true);
//! let mut opt = SGD::new([w], 0.1);
//! let mut sched = StepLR::new(&mut opt, 2, 0.5);
//! let mut lrs = Vec::new();
//! for _ in 0..4 {
//!     opt.step();
//!     sched.step(&mut opt);
//!     lrs.push(sched.get_last_lr()[0]);
//! }
//! assert_eq!(lrs, vec![0.1, 0.05, 0.05, 0.025]);
//! ```

use crate::optimizer::Optimizer;
use crate::state_dict::OptimError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::f64::consts::PI;

/// A scheduler stepped once per epoch (or per batch) after `optimizer.step()`.
pub trait LRScheduler {
    /// Advances one epoch and sets each group's learning rate.
    fn step(&mut self, opt: &mut dyn Optimizer);
    /// The learning rates this scheduler set last, one per group.
    fn get_last_lr(&self) -> Vec<f64>;
    /// The current epoch (0 right after construction).
    fn last_epoch(&self) -> i64;
    /// The scheduler's state as JSON (PyTorch's `state_dict()`): `base_lrs`, `last_epoch`,
    /// `_step_count`, `_last_lr` and the scheduler's own settings under PyTorch's names.
    fn state_dict(&self) -> Value;
    /// Continues from a state written by [`LRScheduler::state_dict`] (PyTorch's
    /// `load_state_dict`); refuses a state of another scheduler or number of groups.
    fn load_state_dict(&mut self, state: &Value) -> Result<(), OptimError>;
}

/// The JSON of a scheduler's state.
fn to_state(s: &impl Serialize) -> Value {
    serde_json::to_value(s).expect("a scheduler's state is plain data")
}

/// A scheduler of type `T` read back from `state`, checked to drive `groups` parameter groups.
fn from_state<T: DeserializeOwned>(
    name: &str,
    state: &Value,
    groups: usize,
    groups_of: impl Fn(&T) -> usize,
) -> Result<T, OptimError> {
    let s: T = serde_json::from_value(state.clone())
        .map_err(|e| OptimError::Mismatch(format!("not a {name} state: {e}")))?;
    if groups_of(&s) != groups {
        return Err(OptimError::Mismatch(format!(
            "{name}: the state has {} parameter groups, this scheduler {groups}",
            groups_of(&s)
        )));
    }
    Ok(s)
}

/// What every epoch-based scheduler keeps: PyTorch's `base_lrs`, `last_epoch`, `_step_count`,
/// `_last_lr`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Base {
    base_lrs: Vec<f64>,
    last_epoch: i64,
    #[serde(rename = "_step_count")]
    step_count: i64,
    #[serde(rename = "_last_lr")]
    last_lr: Vec<f64>,
}

impl Base {
    /// PyTorch's constructor: `initial_lr` defaults to each group's current lr.
    fn new(opt: &mut dyn Optimizer) -> Base {
        let base_lrs = (0..opt.num_param_groups())
            .map(|g| match opt.initial_lr(g) {
                Some(lr) => lr,
                None => {
                    let lr = opt.lr(g);
                    opt.set_initial_lr(g, lr);
                    lr
                }
            })
            .collect();
        Base {
            base_lrs,
            last_epoch: -1,
            step_count: 0,
            last_lr: Vec::new(),
        }
    }
}

macro_rules! scheduler_impl {
    ($ty:ident) => {
        impl LRScheduler for $ty {
            /// PyTorch's `step()`: advance the epoch, compute the new rates from the current
            /// ones (the chainable form), apply them.
            fn step(&mut self, opt: &mut dyn Optimizer) {
                self.base.last_epoch += 1;
                self.base.step_count += 1;
                let lrs = self.get_lr(&self.base, &opt.lrs());
                for (g, &lr) in lrs.iter().enumerate() {
                    opt.set_lr(g, lr);
                }
                self.base.last_lr = lrs;
            }
            fn get_last_lr(&self) -> Vec<f64> {
                self.base.last_lr.clone()
            }
            fn last_epoch(&self) -> i64 {
                self.base.last_epoch
            }
            fn state_dict(&self) -> Value {
                to_state(self)
            }
            fn load_state_dict(&mut self, state: &Value) -> Result<(), OptimError> {
                let groups = self.base.base_lrs.len();
                *self = from_state(stringify!($ty), state, groups, |s: &$ty| {
                    s.base.base_lrs.len()
                })?;
                Ok(())
            }
        }
    };
}

/// Multiplies the learning rate by `gamma` every `step_size` epochs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepLR {
    #[serde(flatten)]
    base: Base,
    step_size: usize,
    gamma: f64,
}

impl StepLR {
    /// `StepLR(optimizer, step_size, gamma)` (PyTorch's default gamma is 0.1).
    pub fn new(opt: &mut dyn Optimizer, step_size: usize, gamma: f64) -> StepLR {
        let mut s = StepLR {
            base: Base::new(opt),
            step_size,
            gamma,
        };
        s.step(opt);
        s
    }

    fn get_lr(&self, b: &Base, cur: &[f64]) -> Vec<f64> {
        let e = b.last_epoch;
        if e == 0 || e % self.step_size as i64 != 0 {
            cur.to_vec()
        } else {
            cur.iter().map(|lr| lr * self.gamma).collect()
        }
    }
}
scheduler_impl!(StepLR);

/// Multiplies the learning rate by `gamma` at each milestone epoch (a repeated milestone
/// multiplies once per repetition).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MultiStepLR {
    #[serde(flatten)]
    base: Base,
    milestones: Vec<usize>,
    gamma: f64,
}

impl MultiStepLR {
    /// `MultiStepLR(optimizer, milestones, gamma)` (PyTorch's default gamma is 0.1).
    pub fn new(opt: &mut dyn Optimizer, milestones: &[usize], gamma: f64) -> MultiStepLR {
        let mut s = MultiStepLR {
            base: Base::new(opt),
            milestones: milestones.to_vec(),
            gamma,
        };
        s.step(opt);
        s
    }

    fn get_lr(&self, b: &Base, cur: &[f64]) -> Vec<f64> {
        let hits = self
            .milestones
            .iter()
            .filter(|&&m| m as i64 == b.last_epoch)
            .count();
        if hits == 0 {
            cur.to_vec()
        } else {
            let f = self.gamma.powi(hits as i32);
            cur.iter().map(|lr| lr * f).collect()
        }
    }
}
scheduler_impl!(MultiStepLR);

/// Multiplies the learning rate by `gamma` every epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExponentialLR {
    #[serde(flatten)]
    base: Base,
    gamma: f64,
}

impl ExponentialLR {
    /// `ExponentialLR(optimizer, gamma)`.
    pub fn new(opt: &mut dyn Optimizer, gamma: f64) -> ExponentialLR {
        let mut s = ExponentialLR {
            base: Base::new(opt),
            gamma,
        };
        s.step(opt);
        s
    }

    fn get_lr(&self, b: &Base, cur: &[f64]) -> Vec<f64> {
        if b.last_epoch == 0 {
            cur.to_vec()
        } else {
            cur.iter().map(|lr| lr * self.gamma).collect()
        }
    }
}
scheduler_impl!(ExponentialLR);

/// Cosine annealing from the base rate down to `eta_min` over `t_max` epochs (and back up after,
/// as PyTorch's recurrence does; SGDR's restarts are `CosineAnnealingWarmRestarts`, not here).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CosineAnnealingLR {
    #[serde(flatten)]
    base: Base,
    #[serde(rename = "T_max")]
    t_max: usize,
    eta_min: f64,
}

impl CosineAnnealingLR {
    /// `CosineAnnealingLR(optimizer, T_max, eta_min)` (PyTorch's default eta_min is 0).
    pub fn new(opt: &mut dyn Optimizer, t_max: usize, eta_min: f64) -> CosineAnnealingLR {
        if t_max == 0 {
            panic!("CosineAnnealingLR: T_max must be positive");
        }
        let mut s = CosineAnnealingLR {
            base: Base::new(opt),
            t_max,
            eta_min,
        };
        s.step(opt);
        s
    }

    fn get_lr(&self, b: &Base, cur: &[f64]) -> Vec<f64> {
        let (e, t) = (b.last_epoch, self.t_max as f64);
        if e == 0 {
            return cur.to_vec();
        }
        let eta = self.eta_min;
        if (e - 1 - self.t_max as i64).rem_euclid(2 * self.t_max as i64) == 0 {
            return cur
                .iter()
                .zip(&b.base_lrs)
                .map(|(lr, base)| lr + (base - eta) * (1.0 - (PI / t).cos()) / 2.0)
                .collect();
        }
        let e = e as f64;
        let f = (1.0 + (PI * e / t).cos()) / (1.0 + (PI * (e - 1.0) / t).cos());
        cur.iter().map(|lr| f * (lr - eta) + eta).collect()
    }
}
scheduler_impl!(CosineAnnealingLR);

/// Scales the learning rate by a factor moving linearly from `start_factor` to `end_factor` over
/// `total_iters` epochs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinearLR {
    #[serde(flatten)]
    base: Base,
    start_factor: f64,
    end_factor: f64,
    total_iters: usize,
}

impl LinearLR {
    /// `LinearLR(optimizer, start_factor, end_factor, total_iters)` (PyTorch's defaults: 1/3,
    /// 1.0, 5).
    pub fn new(
        opt: &mut dyn Optimizer,
        start_factor: f64,
        end_factor: f64,
        total_iters: usize,
    ) -> LinearLR {
        if start_factor > 1.0 || start_factor <= 0.0 {
            panic!("Starting multiplicative factor expected to be greater than 0 and less or equal to 1.");
        }
        if !(0.0..=1.0).contains(&end_factor) {
            panic!("Ending multiplicative factor expected to be between 0 and 1.");
        }
        let mut s = LinearLR {
            base: Base::new(opt),
            start_factor,
            end_factor,
            total_iters,
        };
        s.step(opt);
        s
    }

    fn get_lr(&self, b: &Base, cur: &[f64]) -> Vec<f64> {
        let e = b.last_epoch;
        if e == 0 {
            return cur.iter().map(|lr| lr * self.start_factor).collect();
        }
        if e > self.total_iters as i64 {
            return cur.to_vec();
        }
        let (s, d) = (self.start_factor, self.end_factor - self.start_factor);
        let f = 1.0 + d / (self.total_iters as f64 * s + (e - 1) as f64 * d);
        cur.iter().map(|lr| lr * f).collect()
    }
}
scheduler_impl!(LinearLR);

/// How `OneCycleLR` interpolates within a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnealStrategy {
    /// Half a cosine (PyTorch's default, `"cos"`).
    Cos,
    /// A straight line (`"linear"`).
    Linear,
}

impl AnnealStrategy {
    fn anneal(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            AnnealStrategy::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            AnnealStrategy::Linear => (end - start) * pct + start,
        }
    }
}

/// `OneCycleLR`'s options beyond `max_lr` and `total_steps` (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OneCycleOptions {
    /// Fraction of the cycle spent increasing the rate (default 0.3).
    pub pct_start: f64,
    /// Interpolation within phases (default cosine).
    pub anneal_strategy: AnnealStrategy,
    /// Cycle momentum (or Adam's beta1) inversely to the rate (default true).
    pub cycle_momentum: bool,
    /// Lowest momentum (default 0.85).
    pub base_momentum: f64,
    /// Highest momentum (default 0.95).
    pub max_momentum: f64,
    /// `initial_lr = max_lr / div_factor` (default 25).
    pub div_factor: f64,
    /// `min_lr = initial_lr / final_div_factor` (default 1e4).
    pub final_div_factor: f64,
    /// Three phases (up, down to initial, down to min) instead of two (default false).
    pub three_phase: bool,
}

impl Default for OneCycleOptions {
    fn default() -> Self {
        OneCycleOptions {
            pct_start: 0.3,
            anneal_strategy: AnnealStrategy::Cos,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Phase {
    end_step: f64,
    /// Index into (initial, max, min) learning rates.
    start_lr: usize,
    end_lr: usize,
    /// true: max momentum, false: base momentum.
    start_max_m: bool,
    end_max_m: bool,
}

/// The 1cycle policy: the rate rises from `max_lr / div_factor` to `max_lr`, then anneals to a
/// tiny minimum over `total_steps` steps (stepped once per batch); momentum moves the other way.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OneCycleLR {
    #[serde(flatten)]
    base: Base,
    total_steps: usize,
    #[serde(flatten)]
    o: OneCycleOptions,
    #[serde(rename = "_schedule_phases")]
    phases: Vec<Phase>,
    /// Per group: (initial_lr, max_lr, min_lr).
    lrs: Vec<[f64; 3]>,
    /// The momentum hyper-parameter cycled: Adam's `beta1` or `momentum`.
    use_beta1: bool,
}

impl OneCycleLR {
    /// `OneCycleLR(optimizer, max_lr, total_steps)` with PyTorch's other defaults.
    pub fn new(opt: &mut dyn Optimizer, max_lr: f64, total_steps: usize) -> OneCycleLR {
        OneCycleLR::with_options(opt, &[max_lr], total_steps, OneCycleOptions::default())
    }

    /// `OneCycleLR` with one `max_lr` per group (or one for all) and the given options.
    pub fn with_options(
        opt: &mut dyn Optimizer,
        max_lrs: &[f64],
        total_steps: usize,
        o: OneCycleOptions,
    ) -> OneCycleLR {
        if total_steps == 0 {
            panic!("Expected positive integer total_steps, but got {total_steps}");
        }
        if !(0.0..=1.0).contains(&o.pct_start) {
            panic!(
                "Expected float between 0 and 1 pct_start, but got {}",
                o.pct_start
            );
        }
        let n = opt.num_param_groups();
        if max_lrs.len() != 1 && max_lrs.len() != n {
            panic!("expected {n} values for max_lr, got {}", max_lrs.len());
        }
        let ts = total_steps as f64;
        let phases = if o.three_phase {
            vec![
                Phase {
                    end_step: o.pct_start * ts - 1.0,
                    start_lr: 0,
                    end_lr: 1,
                    start_max_m: true,
                    end_max_m: false,
                },
                Phase {
                    end_step: 2.0 * o.pct_start * ts - 2.0,
                    start_lr: 1,
                    end_lr: 0,
                    start_max_m: false,
                    end_max_m: true,
                },
                Phase {
                    end_step: ts - 1.0,
                    start_lr: 0,
                    end_lr: 2,
                    start_max_m: true,
                    end_max_m: true,
                },
            ]
        } else {
            vec![
                Phase {
                    end_step: o.pct_start * ts - 1.0,
                    start_lr: 0,
                    end_lr: 1,
                    start_max_m: true,
                    end_max_m: false,
                },
                Phase {
                    end_step: ts - 1.0,
                    start_lr: 1,
                    end_lr: 2,
                    start_max_m: false,
                    end_max_m: true,
                },
            ]
        };
        let lrs: Vec<[f64; 3]> = (0..n)
            .map(|g| {
                let max_lr = max_lrs[if max_lrs.len() == 1 { 0 } else { g }];
                let initial = max_lr / o.div_factor;
                opt.set_initial_lr(g, initial);
                [initial, max_lr, initial / o.final_div_factor]
            })
            .collect();
        let use_beta1 = opt.hyper(0, "beta1").is_some();
        let momentum_key = momentum_key(use_beta1);
        if o.cycle_momentum {
            if opt.hyper(0, momentum_key).is_none() {
                panic!(
                    "optimizer must support momentum or beta1 with `cycle_momentum` option enabled"
                );
            }
            for g in 0..n {
                opt.set_hyper(g, momentum_key, o.max_momentum);
            }
        }
        let mut s = OneCycleLR {
            base: Base::new(opt),
            total_steps,
            o,
            phases,
            lrs,
            use_beta1,
        };
        LRScheduler::step(&mut s, opt);
        s
    }
}

/// The optimizer hyper-parameter OneCycleLR cycles.
fn momentum_key(use_beta1: bool) -> &'static str {
    if use_beta1 {
        "beta1"
    } else {
        "momentum"
    }
}

impl LRScheduler for OneCycleLR {
    fn step(&mut self, opt: &mut dyn Optimizer) {
        self.base.last_epoch += 1;
        self.base.step_count += 1;
        let step = self.base.last_epoch;
        if step > self.total_steps as i64 {
            panic!(
                "Tried to step {step} times. The specified number of total steps is {}",
                self.total_steps
            );
        }
        let step = step as f64;
        let mut last = Vec::with_capacity(self.lrs.len());
        for (g, lrs) in self.lrs.iter().enumerate() {
            let mut start = 0.0;
            let (mut lr, mut m) = (0.0, 0.0);
            let mom = |max: bool| {
                if max {
                    self.o.max_momentum
                } else {
                    self.o.base_momentum
                }
            };
            for (i, ph) in self.phases.iter().enumerate() {
                if step <= ph.end_step || i == self.phases.len() - 1 {
                    let pct = (step - start) / (ph.end_step - start);
                    let a = self.o.anneal_strategy;
                    lr = a.anneal(lrs[ph.start_lr], lrs[ph.end_lr], pct);
                    m = a.anneal(mom(ph.start_max_m), mom(ph.end_max_m), pct);
                    break;
                }
                start = ph.end_step;
            }
            opt.set_lr(g, lr);
            if self.o.cycle_momentum {
                opt.set_hyper(g, momentum_key(self.use_beta1), m);
            }
            last.push(lr);
        }
        self.base.last_lr = last;
    }

    fn get_last_lr(&self) -> Vec<f64> {
        self.base.last_lr.clone()
    }

    fn last_epoch(&self) -> i64 {
        self.base.last_epoch
    }

    fn state_dict(&self) -> Value {
        to_state(self)
    }

    fn load_state_dict(&mut self, state: &Value) -> Result<(), OptimError> {
        let groups = self.lrs.len();
        *self = from_state("OneCycleLR", state, groups, |s: &OneCycleLR| s.lrs.len())?;
        Ok(())
    }
}

/// Whether `ReduceLROnPlateau` watches a quantity to minimize or to maximize.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlateauMode {
    /// Lower is better (`"min"`, the default).
    Min,
    /// Higher is better (`"max"`).
    Max,
}

/// How `ReduceLROnPlateau` compares with the best value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdMode {
    /// Relative improvement (`"rel"`, the default).
    Rel,
    /// Absolute improvement (`"abs"`).
    Abs,
}

/// `ReduceLROnPlateau`'s options (PyTorch's defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlateauOptions {
    /// Minimize or maximize the metric (default min).
    pub mode: PlateauMode,
    /// Multiplier of the rate on a plateau (default 0.1; must be < 1).
    pub factor: f64,
    /// Epochs without improvement tolerated (default 10).
    pub patience: usize,
    /// Smallest change counted as improvement (default 1e-4).
    pub threshold: f64,
    /// Relative or absolute threshold (default relative).
    pub threshold_mode: ThresholdMode,
    /// Epochs to wait after a reduction (default 0).
    pub cooldown: usize,
    /// Lower bound of each group's rate (one value for all, or one per group; default 0).
    #[serde(skip)]
    pub min_lr: Vec<f64>,
    /// Reductions smaller than this are skipped (default 1e-8).
    pub eps: f64,
}

impl Default for PlateauOptions {
    fn default() -> Self {
        PlateauOptions {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: vec![0.0],
            eps: 1e-8,
        }
    }
}

/// Reduces the learning rate by `factor` when a metric has stopped improving for `patience`
/// epochs. Stepped with the metric: `sched.step(&mut opt, val_loss)`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReduceLROnPlateau {
    #[serde(flatten)]
    o: PlateauOptions,
    min_lrs: Vec<f64>,
    /// ±inf until the first metric: stored as a string where JSON has no number for it.
    #[serde(with = "float_or_string")]
    best: f64,
    num_bad_epochs: usize,
    cooldown_counter: usize,
    last_epoch: i64,
    #[serde(rename = "_last_lr")]
    last_lr: Vec<f64>,
}

impl ReduceLROnPlateau {
    /// `ReduceLROnPlateau(optimizer)` with the given options.
    pub fn new(opt: &mut dyn Optimizer, o: PlateauOptions) -> ReduceLROnPlateau {
        if o.factor >= 1.0 {
            panic!("Factor should be < 1.0.");
        }
        let n = opt.num_param_groups();
        let min_lrs = match o.min_lr.len() {
            1 => vec![o.min_lr[0]; n],
            k if k == n => o.min_lr.clone(),
            k => panic!("expected {n} min_lrs, got {k}"),
        };
        let best = match o.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        };
        ReduceLROnPlateau {
            o,
            min_lrs,
            best,
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_epoch: 0,
            last_lr: opt.lrs(),
        }
    }

    fn is_better(&self, a: f64) -> bool {
        let (t, best) = (self.o.threshold, self.best);
        match (self.o.mode, self.o.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - t),
            (PlateauMode::Min, ThresholdMode::Abs) => a < best - t,
            (PlateauMode::Max, ThresholdMode::Rel) => a > best * (t + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => a > best + t,
        }
    }

    /// One epoch with the watched `metric`.
    pub fn step(&mut self, opt: &mut dyn Optimizer, metric: f64) {
        self.last_epoch += 1;
        if self.is_better(metric) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > self.o.patience {
            for g in 0..opt.num_param_groups() {
                let old = opt.lr(g);
                let new = (old * self.o.factor).max(self.min_lrs[g]);
                if old - new > self.o.eps {
                    opt.set_lr(g, new);
                }
            }
            self.cooldown_counter = self.o.cooldown;
            self.num_bad_epochs = 0;
        }
        self.last_lr = opt.lrs();
    }

    /// The learning rates after the last step.
    pub fn get_last_lr(&self) -> Vec<f64> {
        self.last_lr.clone()
    }

    /// The number of steps taken.
    pub fn last_epoch(&self) -> i64 {
        self.last_epoch
    }

    /// The scheduler's state as JSON (PyTorch's `state_dict()` keys: `best`, `num_bad_epochs`,
    /// `cooldown_counter`, `min_lrs`, `last_epoch`, `_last_lr` and the options).
    pub fn state_dict(&self) -> Value {
        to_state(self)
    }

    /// Continues from a state written by [`ReduceLROnPlateau::state_dict`].
    pub fn load_state_dict(&mut self, state: &Value) -> Result<(), OptimError> {
        let groups = self.min_lrs.len();
        *self = from_state(
            "ReduceLROnPlateau",
            state,
            groups,
            |s: &ReduceLROnPlateau| s.min_lrs.len(),
        )?;
        Ok(())
    }
}

/// Non-finite floats as the strings `"inf"`, `"-inf"`, `"nan"` (JSON numbers cannot hold them).
mod float_or_string {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        let r = if v.is_finite() {
            Repr::Number(*v)
        } else if v.is_nan() {
            Repr::Text("nan".into())
        } else if *v > 0.0 {
            Repr::Text("inf".into())
        } else {
            Repr::Text("-inf".into())
        };
        r.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(v),
            Repr::Text(t) => match t.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                other => Err(serde::de::Error::custom(format!(
                    "expected a number, \"inf\", \"-inf\" or \"nan\", got {other:?}"
                ))),
            },
        }
    }
}
