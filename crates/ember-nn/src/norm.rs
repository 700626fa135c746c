//! Normalisation layers: `BatchNorm1d` and `BatchNorm2d` (batch statistics in training with
//! running averages, running statistics in evaluation; one definition for both) and `LayerNorm`.

use crate::module::{Buffer, Module, Parameter, TrainFlag};
use ember_autograd::{no_grad, DType, Tensor};
use ember_nn_derive::Module;

/// Batch normalisation over dim 1 of `x` (any `(N, C, …)`), shared by `BatchNorm1d` and
/// `F::batch_norm`. `momentum` of `None` is the cumulative average (`1 / num_batches_tracked`).
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn batch_norm_impl(
    op: &str,
    x: &Tensor,
    running_mean: Option<&Tensor>,
    running_var: Option<&Tensor>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    momentum: Option<f64>,
    num_batches_tracked: Option<&Tensor>,
    eps: f64,
) -> Tensor {
    if x.dim() < 2 {
        panic!(
            "{op}: expected an input of shape (N, C) or (N, C, L), got shape {:?}",
            x.shape()
        );
    }
    let c = x.shape()[1];
    for (what, t) in [
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ] {
        if let Some(t) = t {
            if t.shape() != [c] {
                panic!(
                    "{op}: {what} should contain {c} elements (one per channel of the input of shape {:?}), got shape {:?}",
                    x.shape(),
                    t.shape()
                );
            }
        }
    }
    let nd = x.dim();
    let dims: Vec<isize> = std::iter::once(0)
        .chain(2..nd as isize)
        .collect::<Vec<isize>>();
    let mut pshape = vec![1usize; nd];
    pshape[1] = c;
    let per_channel = |t: &Tensor| t.reshape(&pshape[..]);
    let use_batch = training || running_mean.is_none() || running_var.is_none();
    let y = if use_batch {
        let n = x.numel() / c.max(1);
        if training && n <= 1 {
            panic!(
                "{op}: expected more than 1 value per channel when training, got input size {:?}",
                x.shape()
            );
        }
        let mean = x.mean_dim(&dims[..], true);
        let xc = x - &mean;
        let var = (&xc * &xc).mean_dim(&dims[..], true);
        if training {
            if let (Some(rm), Some(rv)) = (running_mean, running_var) {
                let _g = no_grad();
                if let Some(nbt) = num_batches_tracked {
                    nbt.add_(1i64);
                }
                let f = match (momentum, num_batches_tracked) {
                    (Some(m), _) => m,
                    (None, Some(nbt)) => 1.0 / nbt.item(),
                    (None, None) => 0.0,
                };
                let unbiased = n as f64 / (n as f64 - 1.0);
                rm.mul_(1.0 - f);
                rm.add_(&(&mean.detach().reshape([c]) * f));
                rv.mul_(1.0 - f);
                rv.add_(&(&var.detach().reshape([c]) * (f * unbiased)));
            }
        }
        &xc * &(&var + eps).rsqrt()
    } else {
        let (rm, rv) = (running_mean.unwrap(), running_var.unwrap());
        &(x - &per_channel(rm)) * &(&per_channel(rv) + eps).rsqrt()
    };
    let y = match weight {
        Some(w) => &y * &per_channel(w),
        None => y,
    };
    match bias {
        Some(b) => &y + &per_channel(b),
        None => y,
    }
}

/// Layer normalisation over the trailing `normalized_shape` dims (biased variance), shared by
/// `LayerNorm` and `F::layer_norm`.
#[track_caller]
pub(crate) fn layer_norm_impl(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Tensor {
    let k = normalized_shape.len();
    if k == 0 || x.dim() < k || &x.shape()[x.dim() - k..] != normalized_shape {
        panic!(
            "layer_norm: expected an input with shape [*, {}], got {:?}",
            normalized_shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            x.shape()
        );
    }
    let dims: Vec<isize> = (-(k as isize)..0).collect();
    let mean = x.mean_dim(&dims[..], true);
    let xc = x - &mean;
    let var = (&xc * &xc).mean_dim(&dims[..], true);
    let y = &xc * &(&var + eps).rsqrt();
    let y = match weight {
        Some(w) => &y * w,
        None => y,
    };
    match bias {
        Some(b) => &y + b,
        None => y,
    }
}

/// A float as Python's `repr` prints it (`1e-05`, `0.001`, `0.1`), for printed layers.
#[track_caller]
fn py_float(v: f64) -> String {
    if v == 0.0 || (1e-4..1e16).contains(&v.abs()) {
        return format!("{v:?}");
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("+", exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// Defines a batch-normalisation layer: the struct (PyTorch's state names), its builders and its
/// `forward` through [`batch_norm_impl`]. `BatchNorm1d` and `BatchNorm2d` differ only in the
/// input ranks they accept.
macro_rules! batch_norm_layer {
    ($(#[$doc:meta])* $name:ident, ranks: [$($rank:literal),+], expected: $expected:literal) => {
        $(#[$doc])*
        #[derive(Module)]
        pub struct $name {
            /// Per-channel scale (`affine`).
            pub weight: Option<Parameter>,
            /// Per-channel shift (`affine` and `bias`).
            pub bias: Option<Parameter>,
            /// Running mean (`track_running_stats`).
            pub running_mean: Option<Buffer>,
            /// Running unbiased variance (`track_running_stats`).
            pub running_var: Option<Buffer>,
            /// Number of training batches seen (int64, `track_running_stats`).
            pub num_batches_tracked: Option<Buffer>,
            /// Number of channels C.
            pub num_features: usize,
            /// Added to the variance for stability (1e-5).
            pub eps: f64,
            /// Weight of the new batch in the running averages (0.1; `None`: cumulative average).
            pub momentum: Option<f64>,
            training: TrainFlag,
        }

        impl $name {
            #[doc = concat!("`", stringify!($name), "(num_features)` with PyTorch's defaults (eps 1e-5, momentum 0.1,")]
            /// affine with a bias, tracking running statistics).
            #[track_caller]
            pub fn new(num_features: usize) -> $name {
                $name {
                    weight: Some(Parameter::new(Tensor::ones([num_features]))),
                    bias: Some(Parameter::new(Tensor::zeros([num_features]))),
                    running_mean: Some(Buffer::new(Tensor::zeros([num_features]))),
                    running_var: Some(Buffer::new(Tensor::ones([num_features]))),
                    num_batches_tracked: Some(Buffer::new(Tensor::full_on(
                        &[],
                        0i64,
                        DType::I64,
                        ember_autograd::Device::Cpu,
                    ))),
                    num_features,
                    eps: 1e-5,
                    momentum: Some(0.1),
                    training: TrainFlag::new(),
                }
            }

            /// Sets `eps`.
            #[track_caller]
            pub fn eps(mut self, eps: f64) -> $name {
                self.eps = eps;
                self
            }

            /// Sets `momentum` (`None`: cumulative moving average).
            #[track_caller]
            pub fn momentum(mut self, momentum: Option<f64>) -> $name {
                self.momentum = momentum;
                self
            }

            /// With `false`, no learned `weight` / `bias`.
            #[track_caller]
            pub fn affine(mut self, affine: bool) -> $name {
                if !affine {
                    self.weight = None;
                    self.bias = None;
                }
                self
            }

            /// With `false`, a learned `weight` but no `bias` (PyTorch's `bias=False`).
            #[track_caller]
            pub fn bias(mut self, bias: bool) -> $name {
                if !bias {
                    self.bias = None;
                }
                self
            }

            /// With `false`, no running statistics: batch statistics are used in evaluation too.
            #[track_caller]
            pub fn track_running_stats(mut self, track: bool) -> $name {
                if !track {
                    self.running_mean = None;
                    self.running_var = None;
                    self.num_batches_tracked = None;
                }
                self
            }
        }

        impl Module for $name {
            #[track_caller]
            fn forward(&self, input: &Tensor) -> Tensor {
                if ![$($rank),+].contains(&input.dim()) || input.shape()[1] != self.num_features {
                    panic!(
                        concat!(stringify!($name), ": expected a ", $expected, " input with {} features in dim 1, got shape {:?}"),
                        self.num_features,
                        input.shape()
                    );
                }
                batch_norm_impl(
                    stringify!($name),
                    input,
                    self.running_mean.as_deref(),
                    self.running_var.as_deref(),
                    self.weight.as_deref(),
                    self.bias.as_deref(),
                    self.training.get(),
                    self.momentum,
                    self.num_batches_tracked.as_deref(),
                    self.eps,
                )
            }
            #[track_caller]
            fn extra_repr(&self) -> String {
                let py = |b: bool| if b { "True" } else { "False" };
                format!(
                    "{}, eps={}, momentum={}, affine={}, bias={}, track_running_stats={}",
                    self.num_features,
                    py_float(self.eps),
                    self.momentum
                        .map_or("None".to_string(), |m| format!("{m:?}")),
                    py(self.weight.is_some()),
                    py(self.bias.is_some()),
                    py(self.running_mean.is_some())
                )
            }
        }
    };
}

batch_norm_layer! {
    /// Batch normalisation of `(N, C)` or `(N, C, L)` inputs (`nn.BatchNorm1d`): in training, each
    /// channel is normalised with the batch's mean and biased variance, and the running mean and
    /// unbiased variance are updated with `momentum` (0.1; `None` for a cumulative average); in
    /// evaluation the running statistics are used. `weight` (ones) and `bias` (zeros) are learned
    /// when `affine`. State names follow PyTorch: `weight`, `bias`, `running_mean`, `running_var`,
    /// `num_batches_tracked`.
    BatchNorm1d, ranks: [2, 3], expected: "2D or 3D"
}

batch_norm_layer! {
    /// Batch normalisation of `(N, C, H, W)` inputs (`nn.BatchNorm2d`), per channel over the
    /// batch and both spatial dims; otherwise as [`BatchNorm1d`] (running statistics, `momentum`
    /// incl. `None` for a cumulative average, evaluation mode, PyTorch's state names).
    ///
    /// ```
    /// use ember_autograd::Tensor;
    /// use ember_nn::{BatchNorm2d, Module};
    /// let bn = BatchNorm2d::new(3);
    /// let y = bn.forward(&Tensor::randn([4, 3, 5, 5]));
    /// assert!(y.mean().item().abs() < 1e-5);
    /// assert_eq!(bn.num_batches_tracked.as_ref().unwrap().item(), 1.0);
    /// assert_eq!(
    ///     bn.repr(),
    ///     "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    /// );
    /// ```
    BatchNorm2d, ranks: [4], expected: "4D"
}

/// Layer normalisation over the trailing `normalized_shape` dims (`nn.LayerNorm`): mean and
/// biased variance per sample, then the learned elementwise `weight` (ones) and `bias` (zeros).
#[derive(Module)]
pub struct LayerNorm {
    /// Elementwise scale, shape `normalized_shape` (`elementwise_affine`).
    pub weight: Option<Parameter>,
    /// Elementwise shift (`elementwise_affine` and `bias`).
    pub bias: Option<Parameter>,
    /// The trailing shape normalised over.
    pub normalized_shape: Vec<usize>,
    /// Added to the variance (1e-5).
    pub eps: f64,
    training: TrainFlag,
}

impl LayerNorm {
    /// `LayerNorm(normalized_shape)` with eps 1e-5 and learned weight and bias.
    #[track_caller]
    pub fn new(normalized_shape: impl Into<Vec<usize>>) -> LayerNorm {
        let shape: Vec<usize> = normalized_shape.into();
        LayerNorm {
            weight: Some(Parameter::new(Tensor::ones(&shape[..]))),
            bias: Some(Parameter::new(Tensor::zeros(&shape[..]))),
            normalized_shape: shape,
            eps: 1e-5,
            training: TrainFlag::new(),
        }
    }

    /// Sets `eps`.
    #[track_caller]
    pub fn eps(mut self, eps: f64) -> LayerNorm {
        self.eps = eps;
        self
    }

    /// With `false`, no learned weight and bias.
    #[track_caller]
    pub fn elementwise_affine(mut self, affine: bool) -> LayerNorm {
        if !affine {
            self.weight = None;
            self.bias = None;
        }
        self
    }

    /// With `false`, no learned bias (PyTorch's `bias=False`).
    #[track_caller]
    pub fn bias(mut self, bias: bool) -> LayerNorm {
        if !bias {
            self.bias = None;
        }
        self
    }
}

impl Module for LayerNorm {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        layer_norm_impl(
            input,
            &self.normalized_shape,
            self.weight.as_deref(),
            self.bias.as_deref(),
            self.eps,
        )
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!(
            "({},), eps={}, elementwise_affine={}",
            self.normalized_shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            py_float(self.eps),
            if self.weight.is_some() {
                "True"
            } else {
                "False"
            }
        )
    }
}
