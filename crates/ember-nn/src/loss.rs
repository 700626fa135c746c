//! Loss modules with PyTorch's definitions and options. Each is built with `new()` (PyTorch's
//! defaults) and builder methods named after PyTorch's arguments, and called as
//! `loss.forward(&input, &target)`:
//!
//! ```
//! use ember_autograd::Tensor;
//! use ember_nn::{CrossEntropyLoss, Reduction};
//! let logits = Tensor::from_slice(&[0.1f64, 6.0, -2.0, 3.2], [1, 4]);
//! let labels = Tensor::from_slice(&[2i64], [1]);
//! let l = CrossEntropyLoss::new().forward(&logits, &labels);
//! assert!((l.item() - 8.0619).abs() < 1e-4);
//! let per_sample = CrossEntropyLoss::new().reduction(Reduction::None).label_smoothing(0.1);
//! assert_eq!(per_sample.forward(&logits, &labels).shape(), &[1]);
//! ```
//!
//! `CrossEntropyLoss` and `NLLLoss` run as one fused kernel each (forward and backward); the
//! elementwise losses compose tensor ops, with explicit backward formulas for the two binary
//! cross-entropies so their gradients match PyTorch's at every point. Every backward is made of
//! differentiable ops on the inputs' graphs, so second derivatives (`create_graph`) are right.

use ember_autograd::shape::broadcast_shapes;
use ember_autograd::smallvec::smallvec;
use ember_autograd::{custom_op, no_grad, LossReduction, Tensor};
use std::str::FromStr;

/// How a loss combines its per-element values (PyTorch's `reduction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// No reduction: one loss per element (per sample for class losses).
    None,
    /// The mean (weighted mean for `CrossEntropyLoss` / `NLLLoss` with class weights).
    #[default]
    Mean,
    /// The sum.
    Sum,
    /// The sum divided by the batch size (`KLDivLoss` only).
    BatchMean,
}

impl FromStr for Reduction {
    type Err = String;
    /// Parses PyTorch's strings: `"none"`, `"mean"`, `"sum"`, `"batchmean"`.
    #[track_caller]
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Reduction::None),
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            "batchmean" => Ok(Reduction::BatchMean),
            other => Err(format!("{other} is not a valid value for reduction")),
        }
    }
}

impl Reduction {
    #[track_caller]
    fn kernel(self, op: &str) -> LossReduction {
        match self {
            Reduction::None => LossReduction::None,
            Reduction::Mean => LossReduction::Mean,
            Reduction::Sum => LossReduction::Sum,
            Reduction::BatchMean => batchmean_unsupported(op),
        }
    }

    /// Applies the reduction to elementwise losses.
    #[track_caller]
    fn apply(self, op: &str, l: Tensor) -> Tensor {
        match self {
            Reduction::None => l,
            Reduction::Mean => l.mean(),
            Reduction::Sum => l.sum(),
            Reduction::BatchMean => batchmean_unsupported(op),
        }
    }
}

#[track_caller]
fn batchmean_unsupported(op: &str) -> ! {
    panic!("{op}: reduction 'batchmean' is only supported by kl_div (KLDivLoss)")
}

/// The gradients of an elementwise loss given the upstream gradient spread over the elements:
/// `(d input, d target)`, each only when asked for (`[input needs it, target needs it]`).
type PointwiseGrads = dyn Fn(&Tensor, [bool; 2]) -> (Option<Tensor>, Option<Tensor>) + Send + Sync;

/// One graph node for an elementwise loss and its reduction, named as PyTorch's loss node
/// (`MseLossBackward0`, …) whatever the reduction: `value` holds the per-element losses
/// (computed without recording), `grads` maps the upstream gradient spread over the elements to
/// the input's and target's gradients. `grads` builds them from differentiable ops on handles
/// that keep their graphs, so under `create_graph` the gradient is itself differentiable.
/// `target` is the checked target (the input's dtype); its gradient is summed back to its
/// shape when it broadcast.
#[track_caller]
fn pointwise_loss(
    op: &str,
    name: &'static str,
    reduction: Reduction,
    input: &Tensor,
    target: &Tensor,
    value: Tensor,
    grads: Box<PointwiseGrads>,
) -> Tensor {
    let out = {
        let _g = no_grad();
        reduction.apply(op, value)
    };
    let shape = input.shape().to_vec();
    let target_shape = target.shape().to_vec();
    let needs = [input.requires_grad(), target.requires_grad()];
    custom_op(out, name, &[input, target], move |g| {
        let spread = match reduction {
            Reduction::None => g.clone(),
            Reduction::Sum => g.expand(&shape[..]),
            Reduction::Mean => &g.expand(&shape[..]) / shape.iter().product::<usize>() as f64,
            Reduction::BatchMean => unreachable!("refused by Reduction::apply"),
        };
        let (dx, dt) = grads(&spread, needs);
        smallvec![dx, dt.map(|d| d.sum_to(&target_shape))]
    })
}

/// A loss: `forward(input, target)` gives the loss tensor (0-dim unless `Reduction::None`).
pub trait Loss {
    /// Computes the loss of `input` against `target`.
    #[track_caller]
    fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor;
}

/// Whether an elementwise loss accepts a target that broadcasts to the input's shape.
#[derive(Clone, Copy, PartialEq)]
enum TargetShape {
    /// Exactly the input's shape (the binary cross-entropies, as PyTorch).
    Same,
    /// Any shape that broadcasts *to* the input's shape (`[1]` or `[1, C]` against `[N, C]`).
    BroadcastsToInput,
}

/// Checks an elementwise loss's operands: float input, float target of an accepted shape.
/// Returns the target converted to the input's dtype.
///
/// PyTorch warns and broadcasts when the shapes differ, which silently turns the classic `[N, 1]`
/// prediction against an `[N]` target into an `[N, N]` loss. Here a target broadcasts only when
/// the result keeps the input's shape; otherwise the call panics with the fix.
#[track_caller]
fn check_pointwise(op: &str, input: &Tensor, target: &Tensor, rule: TargetShape) -> Tensor {
    if !input.dtype().is_float() {
        panic!(
            "{op}: expected a floating-point input, got {} of shape {:?}",
            input.dtype().name(),
            input.shape()
        );
    }
    if !target.dtype().is_float() {
        panic!(
            "{op}: expected a floating-point target, got {} of shape {:?} (convert it with .float())",
            target.dtype().name(),
            target.shape()
        );
    }
    if input.shape() != target.shape() {
        let joint = broadcast_shapes(input.shape(), target.shape());
        let keeps_input = joint.as_deref() == Some(input.shape());
        if rule == TargetShape::Same || !keeps_input {
            let outcome = match joint {
                Some(j) if rule == TargetShape::BroadcastsToInput => {
                    format!(
                        "broadcasting them would give shape {:?}, not the input's",
                        j.as_slice()
                    )
                }
                Some(_) => "this loss needs both of the same shape".to_string(),
                None => "they do not broadcast".to_string(),
            };
            panic!(
                "{op}: target shape {:?} does not match input shape {:?} ({outcome}); reshape the target to the input's shape, e.g. target.unsqueeze(1) or target.view_as(&input)",
                target.shape(),
                input.shape()
            );
        }
    }
    target.to_dtype(input.dtype())
}

/// Panics, as PyTorch's `binary_cross_entropy`, unless every input element is in `[0, 1]` (NaN is
/// not). One reduction where the input lives and a one-element read, not a copy of the input.
#[track_caller]
fn check_probabilities(op: &str, input: &Tensor) {
    let x = input.detach();
    let inside = x.ge(0.0).logical_and(&x.le(1.0));
    if inside.all().item() == 0.0 {
        panic!("{op}: all elements of input should be between 0 and 1");
    }
}

/// A per-element weight broadcast against the input, in the input's dtype.
#[track_caller]
fn check_broadcast_weight(op: &str, what: &str, input: &Tensor, w: &Tensor) -> Tensor {
    match broadcast_shapes(w.shape(), input.shape()) {
        Some(s) if s.as_slice() == input.shape() => w.detach().to_dtype(input.dtype()),
        _ => panic!(
            "{op}: {what} of shape {:?} cannot be broadcast to the input shape {:?}",
            w.shape(),
            input.shape()
        ),
    }
}

macro_rules! reduction_builder {
    ($t:ident) => {
        impl $t {
            /// Sets the reduction (`Reduction::Mean` by default).
            #[track_caller]
            pub fn reduction(mut self, reduction: Reduction) -> $t {
                self.reduction = reduction;
                self
            }
        }
        impl Loss for $t {
            #[track_caller]
            fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
                $t::forward(self, input, target)
            }
        }
    };
}

/// Mean squared error `(x - y)²` (`nn.MSELoss`).
#[derive(Clone, Debug, Default)]
pub struct MSELoss {
    /// The reduction (mean).
    pub reduction: Reduction,
}

impl MSELoss {
    /// `MSELoss()`.
    #[track_caller]
    pub fn new() -> MSELoss {
        MSELoss::default()
    }
    /// The loss of `input` against `target` (the input's shape, or one that broadcasts to it).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        const OP: &str = "mse_loss";
        let t = check_pointwise(OP, input, target, TargetShape::BroadcastsToInput);
        let value = {
            let _g = no_grad();
            (&input.detach() - &t.detach()).square()
        };
        let (x, tt) = (input.clone(), t.clone());
        let grads = move |g: &Tensor, needs: [bool; 2]| {
            // d/dx (x - y)² = 2 (x - y); d/dy = -d/dx.
            let dx = &(&(&x - &tt) * 2.0) * g;
            let dt = needs[1].then(|| dx.neg());
            (Some(dx), dt)
        };
        pointwise_loss(
            OP,
            "MseLossBackward0",
            self.reduction,
            input,
            &t,
            value,
            Box::new(grads),
        )
    }
}
reduction_builder!(MSELoss);

/// Mean absolute error `|x - y|` (`nn.L1Loss`).
#[derive(Clone, Debug, Default)]
pub struct L1Loss {
    /// The reduction (mean).
    pub reduction: Reduction,
}

impl L1Loss {
    /// `L1Loss()`.
    #[track_caller]
    pub fn new() -> L1Loss {
        L1Loss::default()
    }
    /// The loss of `input` against `target` (the input's shape, or one that broadcasts to it).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        let t = check_pointwise("l1_loss", input, target, TargetShape::BroadcastsToInput);
        self.reduction.apply("l1_loss", (input - &t).abs())
    }
}
reduction_builder!(L1Loss);

/// `0.5 d² / beta` where `|d| < beta`, `|d| - 0.5 beta` elsewhere (`nn.SmoothL1Loss`, beta 1;
/// beta 0 is the L1 loss).
#[derive(Clone, Debug)]
pub struct SmoothL1Loss {
    /// The reduction (mean).
    pub reduction: Reduction,
    /// The threshold between the quadratic and linear parts.
    pub beta: f64,
}

impl Default for SmoothL1Loss {
    #[track_caller]
    fn default() -> Self {
        SmoothL1Loss {
            reduction: Reduction::Mean,
            beta: 1.0,
        }
    }
}

impl SmoothL1Loss {
    /// `SmoothL1Loss()`.
    #[track_caller]
    pub fn new() -> SmoothL1Loss {
        SmoothL1Loss::default()
    }
    /// Sets `beta` (>= 0).
    #[track_caller]
    pub fn beta(mut self, beta: f64) -> SmoothL1Loss {
        if beta < 0.0 {
            panic!("smooth_l1_loss does not support negative values for beta, got {beta}");
        }
        self.beta = beta;
        self
    }
    /// The loss of `input` against `target` (the input's shape, or one that broadcasts to it).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        const OP: &str = "smooth_l1_loss";
        let t = check_pointwise(OP, input, target, TargetShape::BroadcastsToInput);
        let beta = self.beta;
        let value = {
            let _g = no_grad();
            let d = (&input.detach() - &t.detach()).abs();
            if beta == 0.0 {
                d
            } else {
                let quad = &d.square() * (0.5 / beta);
                let lin = &d - 0.5 * beta;
                Tensor::where_cond(&d.lt(beta), &quad, &lin)
            }
        };
        let (x, tt) = (input.clone(), t.clone());
        let grads = move |g: &Tensor, needs: [bool; 2]| {
            // d/dx: (x - y) / beta inside |x - y| < beta, sign(x - y) outside; d/dy = -d/dx.
            let d = &x - &tt;
            let slope = if beta == 0.0 {
                d.sign()
            } else {
                Tensor::where_cond(&d.abs().lt(beta), &(&d / beta), &d.sign())
            };
            let dx = &slope * g;
            let dt = needs[1].then(|| dx.neg());
            (Some(dx), dt)
        };
        pointwise_loss(
            OP,
            "SmoothL1LossBackward0",
            self.reduction,
            input,
            &t,
            value,
            Box::new(grads),
        )
    }
}
reduction_builder!(SmoothL1Loss);

/// `0.5 d²` where `|d| < delta`, `delta (|d| - 0.5 delta)` elsewhere (`nn.HuberLoss`, delta 1).
#[derive(Clone, Debug)]
pub struct HuberLoss {
    /// The reduction (mean).
    pub reduction: Reduction,
    /// The threshold between the quadratic and linear parts.
    pub delta: f64,
}

impl Default for HuberLoss {
    #[track_caller]
    fn default() -> Self {
        HuberLoss {
            reduction: Reduction::Mean,
            delta: 1.0,
        }
    }
}

impl HuberLoss {
    /// `HuberLoss()`.
    #[track_caller]
    pub fn new() -> HuberLoss {
        HuberLoss::default()
    }
    /// Sets `delta` (> 0).
    #[track_caller]
    pub fn delta(mut self, delta: f64) -> HuberLoss {
        if delta <= 0.0 {
            panic!("huber_loss does not support non-positive values for delta, got {delta}");
        }
        self.delta = delta;
        self
    }
    /// The loss of `input` against `target` (the input's shape, or one that broadcasts to it).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        const OP: &str = "huber_loss";
        let t = check_pointwise(OP, input, target, TargetShape::BroadcastsToInput);
        let delta = self.delta;
        let value = {
            let _g = no_grad();
            let d = (&input.detach() - &t.detach()).abs();
            let quad = &d.square() * 0.5;
            let lin = &(&d - 0.5 * delta) * delta;
            Tensor::where_cond(&d.lt(delta), &quad, &lin)
        };
        let (x, tt) = (input.clone(), t.clone());
        let grads = move |g: &Tensor, needs: [bool; 2]| {
            // d/dx: x - y inside |x - y| < delta, delta sign(x - y) outside; d/dy = -d/dx.
            let d = &x - &tt;
            let slope = Tensor::where_cond(&d.abs().lt(delta), &d, &(&d.sign() * delta));
            let dx = &slope * g;
            let dt = needs[1].then(|| dx.neg());
            (Some(dx), dt)
        };
        pointwise_loss(
            OP,
            "HuberLossBackward0",
            self.reduction,
            input,
            &t,
            value,
            Box::new(grads),
        )
    }
}
reduction_builder!(HuberLoss);

/// Cross-entropy of logits `(C)`, `(N, C)` or `(N, C, d1, …)` (`nn.CrossEntropyLoss`): a fused,
/// stable log-softmax + NLL. Targets are class indices of any integer dtype (shape `(N, d1, …)`)
/// or class probabilities (float, the input's shape, e.g. one-hot rows). Options: per-class
/// `weight`, `ignore_index` (-100), `label_smoothing` (0), `reduction` (mean: weighted by the
/// targets' class weights for indices, over rows for probabilities).
#[derive(Clone, Debug)]
pub struct CrossEntropyLoss {
    /// Per-class weights `(C)`.
    pub weight: Option<Tensor>,
    /// Class-index targets equal to this are skipped.
    pub ignore_index: i64,
    /// The reduction (mean).
    pub reduction: Reduction,
    /// Mixes the target with the uniform distribution: `(1 - ε) t + ε / C`.
    pub label_smoothing: f64,
}

impl Default for CrossEntropyLoss {
    #[track_caller]
    fn default() -> Self {
        CrossEntropyLoss {
            weight: None,
            ignore_index: -100,
            reduction: Reduction::Mean,
            label_smoothing: 0.0,
        }
    }
}

impl CrossEntropyLoss {
    /// `CrossEntropyLoss()`.
    #[track_caller]
    pub fn new() -> CrossEntropyLoss {
        CrossEntropyLoss::default()
    }
    /// Sets the per-class weights `(C)`.
    #[track_caller]
    pub fn weight(mut self, weight: &Tensor) -> CrossEntropyLoss {
        self.weight = Some(weight.detach());
        self
    }
    /// Sets `ignore_index`.
    #[track_caller]
    pub fn ignore_index(mut self, ignore_index: i64) -> CrossEntropyLoss {
        self.ignore_index = ignore_index;
        self
    }
    /// Sets `label_smoothing` in `[0, 1]`.
    #[track_caller]
    pub fn label_smoothing(mut self, label_smoothing: f64) -> CrossEntropyLoss {
        if !(0.0..=1.0).contains(&label_smoothing) {
            panic!(
                "cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}"
            );
        }
        self.label_smoothing = label_smoothing;
        self
    }
    /// The loss of logits `input` against `target` (class indices or probabilities).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        input.cross_entropy(
            target,
            self.weight.as_ref(),
            self.ignore_index,
            self.label_smoothing,
            self.reduction.kernel("cross_entropy"),
        )
    }
}
reduction_builder!(CrossEntropyLoss);

/// Negative log-likelihood of log-probabilities `(C)`, `(N, C)` or `(N, C, d1, …)` with
/// class-index targets of any integer dtype (`nn.NLLLoss`): `-weight[y] * input[y]`, the mean
/// dividing by the summed weights of the targets that are not `ignore_index`.
#[derive(Clone, Debug)]
pub struct NLLLoss {
    /// Per-class weights `(C)`.
    pub weight: Option<Tensor>,
    /// Targets equal to this are skipped.
    pub ignore_index: i64,
    /// The reduction (mean).
    pub reduction: Reduction,
}

impl Default for NLLLoss {
    #[track_caller]
    fn default() -> Self {
        NLLLoss {
            weight: None,
            ignore_index: -100,
            reduction: Reduction::Mean,
        }
    }
}

impl NLLLoss {
    /// `NLLLoss()`.
    #[track_caller]
    pub fn new() -> NLLLoss {
        NLLLoss::default()
    }
    /// Sets the per-class weights `(C)`.
    #[track_caller]
    pub fn weight(mut self, weight: &Tensor) -> NLLLoss {
        self.weight = Some(weight.detach());
        self
    }
    /// Sets `ignore_index`.
    #[track_caller]
    pub fn ignore_index(mut self, ignore_index: i64) -> NLLLoss {
        self.ignore_index = ignore_index;
        self
    }
    /// The loss of log-probabilities `input` against class indices `target`.
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        input.nll_loss(
            target,
            self.weight.as_ref(),
            self.ignore_index,
            self.reduction.kernel("nll_loss"),
        )
    }
}
reduction_builder!(NLLLoss);

/// Binary cross-entropy of probabilities `x ∈ [0, 1]` against targets `y` (`nn.BCELoss`):
/// `-w (y log x + (1 - y) log(1 - x))` with the logs clamped at -100, as PyTorch.
#[derive(Clone, Debug, Default)]
pub struct BCELoss {
    /// Per-element weight, broadcast to the input.
    pub weight: Option<Tensor>,
    /// The reduction (mean).
    pub reduction: Reduction,
}

impl BCELoss {
    /// `BCELoss()`.
    #[track_caller]
    pub fn new() -> BCELoss {
        BCELoss::default()
    }
    /// Sets the per-element weight (broadcast to the input).
    #[track_caller]
    pub fn weight(mut self, weight: &Tensor) -> BCELoss {
        self.weight = Some(weight.detach());
        self
    }
    /// The loss of probabilities `input` against `target` (same shape; gradients flow to both).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        const OP: &str = "binary_cross_entropy";
        let t = check_pointwise(OP, input, target, TargetShape::Same);
        let w = self
            .weight
            .as_ref()
            .map(|w| check_broadcast_weight(OP, "weight", input, w));
        check_probabilities(OP, input);
        let l = {
            let _g = no_grad();
            let (x, t) = (input.detach(), t.detach());
            let lx = x.log().clamp_min(-100.0);
            let l1x = x.rsub(1.0).log().clamp_min(-100.0);
            let l = -&(&(&t * &lx) + &(&t.rsub(1.0) * &l1x));
            match &w {
                Some(w) => &l * w,
                None => l,
            }
        };
        // The backward reads the input and target with their graphs: under `create_graph` these
        // ops record, so the gradient is itself differentiable.
        let (x, tt) = (input.clone(), t.clone());
        let grads = move |g: &Tensor, needs: [bool; 2]| {
            let gw = match &w {
                Some(w) => g * w,
                None => g.clone(),
            };
            // PyTorch's gradients: w (x - y) / max(x (1 - x), 1e-12) and w (log(1 - x) - log x).
            let denom = (&x * &x.rsub(1.0)).clamp_min(1e-12);
            let dx = needs[0].then(|| &(&(&x - &tt) / &denom) * &gw);
            let dy = needs[1].then(|| &(&x.rsub(1.0).log() - &x.log()) * &gw);
            (dx, dy)
        };
        pointwise_loss(
            OP,
            "BinaryCrossEntropyBackward0",
            self.reduction,
            input,
            &t,
            l,
            Box::new(grads),
        )
    }
}
reduction_builder!(BCELoss);

/// Binary cross-entropy of logits (`nn.BCEWithLogitsLoss`), computed stably as
/// `(1 - y) x + (1 + (p - 1) y) softplus(-x)`, times `weight`; `pos_weight` `p` (broadcast
/// along the last dim, one per class) weights the positive targets.
#[derive(Clone, Debug, Default)]
pub struct BCEWithLogitsLoss {
    /// Per-element weight, broadcast to the input.
    pub weight: Option<Tensor>,
    /// Weight of positive examples, broadcast to the input (typically `(C)`).
    pub pos_weight: Option<Tensor>,
    /// The reduction (mean).
    pub reduction: Reduction,
}

impl BCEWithLogitsLoss {
    /// `BCEWithLogitsLoss()`.
    #[track_caller]
    pub fn new() -> BCEWithLogitsLoss {
        BCEWithLogitsLoss::default()
    }
    /// Sets the per-element weight.
    #[track_caller]
    pub fn weight(mut self, weight: &Tensor) -> BCEWithLogitsLoss {
        self.weight = Some(weight.detach());
        self
    }
    /// Sets `pos_weight`.
    #[track_caller]
    pub fn pos_weight(mut self, pos_weight: &Tensor) -> BCEWithLogitsLoss {
        self.pos_weight = Some(pos_weight.detach());
        self
    }
    /// The loss of logits `input` against `target` (same shape; gradients flow to both).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        const OP: &str = "binary_cross_entropy_with_logits";
        let t = check_pointwise(OP, input, target, TargetShape::Same);
        let w = self
            .weight
            .as_ref()
            .map(|w| check_broadcast_weight(OP, "weight", input, w));
        let pw = self
            .pos_weight
            .as_ref()
            .map(|p| check_broadcast_weight(OP, "pos_weight", input, p));
        // softplus(-x) = max(-x, 0) + log1p(exp(-|x|)), finite for every x.
        let softplus_neg = |x: &Tensor| &x.neg().relu() + &x.abs().neg().exp().log1p();
        // 1 + (p - 1) y: the weight of the softplus term.
        let coef = |t: &Tensor, p: &Option<Tensor>| match p {
            Some(p) => &(t * &(p - 1.0)) + 1.0,
            None => t.ones_like(),
        };
        let l = {
            let _g = no_grad();
            let (x, t) = (input.detach(), t.detach());
            let l = &(&t.rsub(1.0) * &x) + &(&coef(&t, &pw) * &softplus_neg(&x));
            match &w {
                Some(w) => &l * w,
                None => l,
            }
        };
        // The backward reads the input and target with their graphs, so that under
        // `create_graph` the gradient is itself differentiable.
        let (x, tt) = (input.clone(), t.clone());
        let grads = move |g: &Tensor, needs: [bool; 2]| {
            let gw = match &w {
                Some(w) => g * w,
                None => g.clone(),
            };
            // d/dx = (1 + (p-1) y) σ(x) - p y ; d/dy = -x + (p-1) softplus(-x).
            let dx = needs[0].then(|| {
                let s = x.sigmoid();
                let dx = match &pw {
                    Some(p) => &(&coef(&tt, &pw) * &s) - &(&tt * p),
                    None => &s - &tt,
                };
                &dx * &gw
            });
            let dy = needs[1].then(|| {
                let dy = match &pw {
                    Some(p) => &x.neg() + &(&(p - 1.0) * &softplus_neg(&x)),
                    None => x.neg(),
                };
                &dy * &gw
            });
            (dx, dy)
        };
        pointwise_loss(
            OP,
            "BinaryCrossEntropyWithLogitsBackward0",
            self.reduction,
            input,
            &t,
            l,
            Box::new(grads),
        )
    }
}
reduction_builder!(BCEWithLogitsLoss);

/// KL divergence `target * (log(target) - input)` of log-probabilities `input` from `target`
/// (`nn.KLDivLoss`); with `log_target` the target is given as log-probabilities:
/// `exp(target) * (target - input)`. Zero targets contribute 0. `Reduction::BatchMean` divides
/// the sum by the batch size (the mathematically correct KL); `Mean` averages over elements.
#[derive(Clone, Debug, Default)]
pub struct KLDivLoss {
    /// The reduction (mean, as PyTorch's default; `BatchMean` is the true KL).
    pub reduction: Reduction,
    /// Whether the target holds log-probabilities.
    pub log_target: bool,
}

impl KLDivLoss {
    /// `KLDivLoss()`.
    #[track_caller]
    pub fn new() -> KLDivLoss {
        KLDivLoss::default()
    }
    /// Sets `log_target`.
    #[track_caller]
    pub fn log_target(mut self, log_target: bool) -> KLDivLoss {
        self.log_target = log_target;
        self
    }
    /// The divergence of log-probabilities `input` from `target` (same shape).
    #[track_caller]
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Tensor {
        const OP: &str = "kl_div";
        let t = check_pointwise(OP, input, target, TargetShape::Same);
        let l = if self.log_target {
            &t.exp() * &(&t - input)
        } else {
            // xlogy(t, t) - t x, with 0 log 0 = 0 (and a finite gradient there).
            let pos = t.gt(0.0);
            let safe = Tensor::where_cond(&pos, &t, &t.ones_like());
            &(&t * &safe.log()) - &(&t * input)
        };
        match self.reduction {
            Reduction::BatchMean => {
                let n = if input.dim() == 0 {
                    1
                } else {
                    input.shape()[0]
                };
                &l.sum() / n as f64
            }
            r => r.apply(OP, l),
        }
    }
}
reduction_builder!(KLDivLoss);
