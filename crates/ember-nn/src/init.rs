//! `nn.init`: in-place initialisers with PyTorch's gains and fan computations. Each overwrites
//! the tensor's values without recording a graph (as under `torch.no_grad()`), so it works on a
//! parameter that requires grad. Random ones draw from the default generator (seed it with
//! `manual_seed`) or, in their `_with` form, from a given [`Generator`], in the tensor's own
//! dtype and device, with PyTorch's formulas and calls (`uniform_(-bound, bound)`,
//! `normal_(0, std)`), so they give PyTorch's numbers.
//!
//! ```
//! use ember_autograd::Tensor;
//! use ember_nn::init;
//! let w = Tensor::zeros([3, 5]);
//! init::kaiming_uniform_(&w, 5f64.sqrt(), init::FanMode::FanIn, init::Nonlinearity::LeakyRelu);
//! let bound = 1.0 / 5f64.sqrt();
//! assert!(w.to_vec::<f32>().iter().all(|v| v.abs() as f64 <= bound));
//! ```

use ember_autograd::Generator;
use ember_autograd::{no_grad, Tensor};

/// The nonlinearity a gain is computed for (`calculate_gain`'s first argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nonlinearity {
    /// `linear` (gain 1)
    Linear,
    /// `conv1d`, `conv2d`, `conv3d` and the transposed convolutions (gain 1)
    Conv,
    /// `sigmoid` (gain 1)
    Sigmoid,
    /// `tanh` (gain 5/3)
    Tanh,
    /// `relu` (gain √2)
    Relu,
    /// `leaky_relu` (gain √(2 / (1 + slope²)), slope 0.01 unless given)
    LeakyRelu,
    /// `selu` (gain 3/4)
    Selu,
}

/// Which fan Kaiming initialisation preserves the variance of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// `fan_in`: the forward pass (the default).
    FanIn,
    /// `fan_out`: the backward pass.
    FanOut,
}

/// PyTorch's recommended gain for `nonlinearity`; `param` is leaky_relu's negative slope
/// (0.01 when `None`).
#[track_caller]
pub fn calculate_gain(nonlinearity: Nonlinearity, param: Option<f64>) -> f64 {
    match nonlinearity {
        Nonlinearity::Linear | Nonlinearity::Conv | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f64.sqrt(),
        Nonlinearity::LeakyRelu => {
            let slope = param.unwrap_or(0.01);
            (2.0 / (1.0 + slope * slope)).sqrt()
        }
        Nonlinearity::Selu => 0.75,
    }
}

/// `(fan_in, fan_out)` of a weight: `size(1)` and `size(0)` times the receptive field (the
/// product of the remaining dims). Panics for fewer than 2 dims, as PyTorch.
#[track_caller]
pub fn calculate_fan_in_and_fan_out(t: &Tensor) -> (usize, usize) {
    if t.dim() < 2 {
        panic!(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions (shape {:?})",
            t.shape()
        );
    }
    let receptive: usize = t.shape()[2..].iter().product();
    (t.shape()[1] * receptive, t.shape()[0] * receptive)
}

#[track_caller]
fn fan(t: &Tensor, mode: FanMode) -> usize {
    let (fan_in, fan_out) = calculate_fan_in_and_fan_out(t);
    match mode {
        FanMode::FanIn => fan_in,
        FanMode::FanOut => fan_out,
    }
}

#[track_caller]
fn check_float(op: &str, t: &Tensor) {
    if !t.dtype().is_float() {
        panic!(
            "{op}: expected a floating-point tensor, got {}",
            t.dtype().name()
        );
    }
}

/// Fills `t` with values drawn from `U(low, high)` (`nn.init.uniform_`).
#[track_caller]
pub fn uniform_(t: &Tensor, low: f64, high: f64) {
    uniform_impl(t, low, high, None)
}

/// [`uniform_`] drawing from `gen`.
#[track_caller]
pub fn uniform_with_(t: &Tensor, low: f64, high: f64, gen: &Generator) {
    uniform_impl(t, low, high, Some(gen))
}

#[track_caller]
fn uniform_impl(t: &Tensor, low: f64, high: f64, gen: Option<&Generator>) {
    check_float("uniform_", t);
    let _g = no_grad();
    t.uniform_with_(low, high, gen);
}

/// Fills `t` with values drawn from `N(mean, std²)` (`nn.init.normal_`).
#[track_caller]
pub fn normal_(t: &Tensor, mean: f64, std: f64) {
    normal_impl(t, mean, std, None)
}

/// [`normal_`] drawing from `gen`.
#[track_caller]
pub fn normal_with_(t: &Tensor, mean: f64, std: f64, gen: &Generator) {
    normal_impl(t, mean, std, Some(gen))
}

#[track_caller]
fn normal_impl(t: &Tensor, mean: f64, std: f64, gen: Option<&Generator>) {
    check_float("normal_", t);
    let _g = no_grad();
    t.normal_with_(mean, std, gen);
}

/// Fills `t` with `value` (`nn.init.constant_`).
#[track_caller]
pub fn constant_(t: &Tensor, value: f64) {
    let _g = no_grad();
    t.fill_(value);
}

/// Fills `t` with zeros (`nn.init.zeros_`).
#[track_caller]
pub fn zeros_(t: &Tensor) {
    constant_(t, 0.0)
}

/// Fills `t` with ones (`nn.init.ones_`).
#[track_caller]
pub fn ones_(t: &Tensor) {
    constant_(t, 1.0)
}

/// Glorot uniform: `U(-a, a)` with `a = gain * √(6 / (fan_in + fan_out))`
/// (`nn.init.xavier_uniform_`).
#[track_caller]
pub fn xavier_uniform_(t: &Tensor, gain: f64) {
    xavier_uniform_impl(t, gain, None)
}

/// [`xavier_uniform_`] drawing from `gen`.
#[track_caller]
pub fn xavier_uniform_with_(t: &Tensor, gain: f64, gen: &Generator) {
    xavier_uniform_impl(t, gain, Some(gen))
}

#[track_caller]
fn xavier_std(t: &Tensor, gain: f64) -> f64 {
    let (fan_in, fan_out) = calculate_fan_in_and_fan_out(t);
    gain * (2.0 / (fan_in + fan_out) as f64).sqrt()
}

#[track_caller]
fn xavier_uniform_impl(t: &Tensor, gain: f64, gen: Option<&Generator>) {
    let a = 3f64.sqrt() * xavier_std(t, gain);
    uniform_impl(t, -a, a, gen)
}

/// Glorot normal: `N(0, std²)` with `std = gain * √(2 / (fan_in + fan_out))`
/// (`nn.init.xavier_normal_`).
#[track_caller]
pub fn xavier_normal_(t: &Tensor, gain: f64) {
    let std = xavier_std(t, gain);
    normal_impl(t, 0.0, std, None)
}

/// [`xavier_normal_`] drawing from `gen`.
#[track_caller]
pub fn xavier_normal_with_(t: &Tensor, gain: f64, gen: &Generator) {
    let std = xavier_std(t, gain);
    normal_impl(t, 0.0, std, Some(gen))
}

#[track_caller]
fn kaiming_std(t: &Tensor, a: f64, mode: FanMode, nonlinearity: Nonlinearity) -> Option<f64> {
    if t.numel() == 0 {
        // PyTorch warns and leaves a zero-element tensor alone.
        return None;
    }
    let gain = calculate_gain(nonlinearity, Some(a));
    Some(gain / (fan(t, mode) as f64).sqrt())
}

/// He uniform: `U(-b, b)` with `b = gain * √(3 / fan)`, the gain from `nonlinearity` (with
/// negative slope `a` for leaky_relu) (`nn.init.kaiming_uniform_`). `Linear` uses
/// `a = √5, FanIn, LeakyRelu`, i.e. `b = 1/√fan_in`.
#[track_caller]
pub fn kaiming_uniform_(t: &Tensor, a: f64, mode: FanMode, nonlinearity: Nonlinearity) {
    if let Some(std) = kaiming_std(t, a, mode, nonlinearity) {
        let b = 3f64.sqrt() * std;
        uniform_impl(t, -b, b, None)
    }
}

/// [`kaiming_uniform_`] drawing from `gen`.
#[track_caller]
pub fn kaiming_uniform_with_(
    t: &Tensor,
    a: f64,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    gen: &Generator,
) {
    if let Some(std) = kaiming_std(t, a, mode, nonlinearity) {
        let b = 3f64.sqrt() * std;
        uniform_impl(t, -b, b, Some(gen))
    }
}

/// He normal: `N(0, std²)` with `std = gain / √fan` (`nn.init.kaiming_normal_`).
#[track_caller]
pub fn kaiming_normal_(t: &Tensor, a: f64, mode: FanMode, nonlinearity: Nonlinearity) {
    if let Some(std) = kaiming_std(t, a, mode, nonlinearity) {
        normal_impl(t, 0.0, std, None)
    }
}

/// [`kaiming_normal_`] drawing from `gen`.
#[track_caller]
pub fn kaiming_normal_with_(
    t: &Tensor,
    a: f64,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    gen: &Generator,
) {
    if let Some(std) = kaiming_std(t, a, mode, nonlinearity) {
        normal_impl(t, 0.0, std, Some(gen))
    }
}
