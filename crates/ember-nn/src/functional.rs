//! `nn.functional` (`F`): the layers and losses as plain functions of tensors.
//!
//! Losses here take PyTorch's default options (mean reduction, no weights); for other options
//! use the loss modules' builders, e.g. `nn::CrossEntropyLoss::new().label_smoothing(0.1)`.
//!
//! ```
//! use ember_autograd::Tensor;
//! use ember_nn::functional as F;
//! let t = F::one_hot(&Tensor::scalar(0i64), Some(3));
//! assert_eq!(t.to_vec::<i64>(), vec![1, 0, 0]);
//! let l = F::mse_loss(&Tensor::scalar(10f32), &Tensor::scalar(1f32));
//! assert_eq!(l.item(), 81.0);
//! ```

use crate::loss;
use ember_autograd::smallvec::smallvec;
use ember_autograd::Generator;
use ember_autograd::{custom_op, no_grad, AdaptiveSize, DType, IntOrPair, Padding, Tensor};

/// `x @ weight.T + bias` for `x` of shape `(*, in_features)`, `weight` `(out, in)`, `bias`
/// `(out)`; 2-D inputs with a bias go through one fused `addmm`. Operands of different dtypes
/// panic with PyTorch's messages (no promotion).
#[track_caller]
pub fn linear(input: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
    let in_features = weight.shape().get(1).copied().unwrap_or(0);
    if weight.dim() != 2 {
        panic!(
            "linear: expected a 2-D weight (out_features, in_features), got shape {:?}",
            weight.shape()
        );
    }
    if input.dim() == 0 || input.shape()[input.dim() - 1] != in_features {
        panic!(
            "linear: input of shape {:?} does not end in in_features = {in_features} (weight shape {:?})",
            input.shape(),
            weight.shape()
        );
    }
    if let Some(b) = bias {
        // An input/weight mismatch is reported first, by the product below, as in PyTorch.
        if input.dtype() == weight.dtype() && b.dtype() != weight.dtype() {
            panic!(
                "self and mat2 must have the same dtype, but got {} and {}",
                scalar_type_name(b.dtype()),
                scalar_type_name(weight.dtype())
            );
        }
    }
    let wt = weight.t();
    match (input.dim(), bias) {
        (2, Some(b)) => b.addmm(input, &wt, 1.0, 1.0),
        (2, None) => input.matmul(&wt),
        (1, _) => {
            let y = input.matmul(&wt);
            match bias {
                Some(b) => &y + b,
                None => y,
            }
        }
        _ => {
            // Fold the leading dims into one batch dim, run the 2-D path, unfold.
            let mut shape: Vec<usize> = input.shape().to_vec();
            let x2 = input.reshape([-1, in_features as isize]);
            let y = linear(&x2, weight, bias);
            *shape.last_mut().unwrap() = weight.shape()[0];
            y.reshape(shape)
        }
    }
}

/// PyTorch's `ScalarType` name of a dtype, as its dtype-mismatch messages print it (`Double`).
#[track_caller]
fn scalar_type_name(d: DType) -> &'static str {
    match d {
        DType::Bool => "Bool",
        DType::U8 => "Byte",
        DType::I64 => "Long",
        DType::F32 => "Float",
        DType::F64 => "Double",
    }
}

/// `max(x, 0)`
#[track_caller]
pub fn relu(x: &Tensor) -> Tensor {
    x.relu()
}

/// `x` where positive, `negative_slope * x` elsewhere.
#[track_caller]
pub fn leaky_relu(x: &Tensor, negative_slope: f64) -> Tensor {
    x.leaky_relu(negative_slope)
}

/// `x` where positive, `alpha * (exp(x) - 1)` elsewhere.
#[track_caller]
pub fn elu(x: &Tensor, alpha: f64) -> Tensor {
    x.elu(alpha)
}

/// GELU; `approximate` is `"none"` (exact, erf) or `"tanh"`.
#[track_caller]
pub fn gelu(x: &Tensor, approximate: &str) -> Tensor {
    x.gelu(approximate)
}

/// `x * sigmoid(x)`
#[track_caller]
pub fn silu(x: &Tensor) -> Tensor {
    x.silu()
}

/// `1 / (1 + exp(-x))`
#[track_caller]
pub fn sigmoid(x: &Tensor) -> Tensor {
    x.sigmoid()
}

/// `tanh(x)`
#[track_caller]
pub fn tanh(x: &Tensor) -> Tensor {
    x.tanh()
}

/// Softmax along `dim`.
#[track_caller]
pub fn softmax(x: &Tensor, dim: isize) -> Tensor {
    x.softmax(dim)
}

/// Log-softmax along `dim`.
#[track_caller]
pub fn log_softmax(x: &Tensor, dim: isize) -> Tensor {
    x.log_softmax(dim)
}

/// One-hot encoding of int64 class indices (`num_classes` of `None`: the largest index + 1).
#[track_caller]
pub fn one_hot(x: &Tensor, num_classes: Option<usize>) -> Tensor {
    x.one_hot(num_classes)
}

/// Dropout: in training, zeroes each element with probability `p` (from the default generator)
/// and scales the rest by `1/(1-p)`; otherwise returns `x`.
#[track_caller]
pub fn dropout(x: &Tensor, p: f64, training: bool) -> Tensor {
    dropout_with(x, p, training, None)
}

/// [`dropout`] drawing its mask from `gen` (the default generator when `None`).
#[track_caller]
pub fn dropout_with(x: &Tensor, p: f64, training: bool, gen: Option<&Generator>) -> Tensor {
    if !(0.0..=1.0).contains(&p) {
        panic!("dropout probability has to be between 0 and 1, but got {p}");
    }
    if !training || p == 0.0 {
        return x.clone();
    }
    if !x.dtype().is_float() {
        panic!(
            "dropout: expected a floating-point input, got {}",
            x.dtype().name()
        );
    }
    let mask = if p == 1.0 {
        // Everything dropped: no draws (as PyTorch).
        x.zeros_like()
    } else {
        // PyTorch's CPU dropout: `noise.bernoulli_(1 - p).div_(1 - p)`.
        let _g = no_grad();
        let keep = Tensor::bernoulli_scalar(x.shape(), 1.0 - p, x.dtype(), gen);
        &keep / (1.0 - p)
    };
    let out = {
        let _g = no_grad();
        x * &mask
    };
    custom_op(out, "NativeDropoutBackward0", &[x], move |g| {
        smallvec![Some(g * &mask)]
    })
}

/// Channel-wise dropout (`F.dropout2d`): in training, each `(n, c)` plane of an `(N, C, …)`
/// input is zeroed with probability `p` (mask from the default generator) and the rest scaled by
/// `1/(1-p)`; otherwise returns `x`.
#[track_caller]
pub fn dropout2d(x: &Tensor, p: f64, training: bool) -> Tensor {
    dropout2d_with(x, p, training, None)
}

/// [`dropout2d`] drawing its mask from `gen` (the default generator when `None`).
#[track_caller]
pub fn dropout2d_with(x: &Tensor, p: f64, training: bool, gen: Option<&Generator>) -> Tensor {
    if !(0.0..=1.0).contains(&p) {
        panic!("dropout probability has to be between 0 and 1, but got {p}");
    }
    if !training || p == 0.0 {
        return x.clone();
    }
    if x.dim() < 2 {
        panic!(
            "dropout2d: feature dropout requires at least 2 dimensions in the input, got shape {:?}",
            x.shape()
        );
    }
    // One draw per (n, c) plane, broadcast over the spatial dims.
    let mut mask_shape = vec![1usize; x.dim()];
    mask_shape[..2].copy_from_slice(&x.shape()[..2]);
    let mask = if p == 1.0 {
        Tensor::zeros(&mask_shape[..]).to_dtype(x.dtype())
    } else {
        let keep = Tensor::bernoulli_scalar(&mask_shape[..], 1.0 - p, x.dtype(), gen);
        &keep * (1.0 / (1.0 - p))
    };
    x * &mask.to_device(x.device())
}

/// 2-D convolution (`F.conv2d`): see [`Tensor::conv2d`].
#[track_caller]
pub fn conv2d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: impl Into<IntOrPair>,
    padding: impl Into<Padding>,
    dilation: impl Into<IntOrPair>,
    groups: usize,
) -> Tensor {
    input.conv2d(weight, bias, stride, padding, dilation, groups)
}

/// 1-D convolution (`F.conv1d`): see [`Tensor::conv1d`].
#[track_caller]
pub fn conv1d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: impl Into<Padding>,
    dilation: usize,
    groups: usize,
) -> Tensor {
    input.conv1d(weight, bias, stride, padding, dilation, groups)
}

/// 2-D transposed convolution (`F.conv_transpose2d`): see [`Tensor::conv_transpose2d`].
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn conv_transpose2d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: impl Into<IntOrPair>,
    padding: impl Into<IntOrPair>,
    output_padding: impl Into<IntOrPair>,
    groups: usize,
    dilation: impl Into<IntOrPair>,
) -> Tensor {
    input.conv_transpose2d(
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
    )
}

/// 2-D max pooling (`F.max_pool2d`, stride `None` = the kernel size): see [`Tensor::max_pool2d`].
#[track_caller]
pub fn max_pool2d(
    input: &Tensor,
    kernel_size: impl Into<IntOrPair>,
    stride: Option<IntOrPair>,
    padding: impl Into<IntOrPair>,
    dilation: impl Into<IntOrPair>,
    ceil_mode: bool,
) -> Tensor {
    input.max_pool2d(kernel_size, stride, padding, dilation, ceil_mode)
}

/// 1-D max pooling (`F.max_pool1d`): see [`Tensor::max_pool1d`].
#[track_caller]
pub fn max_pool1d(
    input: &Tensor,
    kernel_size: usize,
    stride: Option<usize>,
    padding: usize,
    dilation: usize,
    ceil_mode: bool,
) -> Tensor {
    input.max_pool1d(kernel_size, stride, padding, dilation, ceil_mode)
}

/// 2-D average pooling (`F.avg_pool2d`): see [`Tensor::avg_pool2d`].
#[track_caller]
pub fn avg_pool2d(
    input: &Tensor,
    kernel_size: impl Into<IntOrPair>,
    stride: Option<IntOrPair>,
    padding: impl Into<IntOrPair>,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<usize>,
) -> Tensor {
    input.avg_pool2d(
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
    )
}

/// Adaptive 2-D average pooling (`F.adaptive_avg_pool2d`).
#[track_caller]
pub fn adaptive_avg_pool2d(input: &Tensor, output_size: impl Into<AdaptiveSize>) -> Tensor {
    input.adaptive_avg_pool2d(output_size)
}

/// Adaptive 2-D max pooling (`F.adaptive_max_pool2d`).
#[track_caller]
pub fn adaptive_max_pool2d(input: &Tensor, output_size: impl Into<AdaptiveSize>) -> Tensor {
    input.adaptive_max_pool2d(output_size)
}

/// Batch normalisation over `(N, C, …)` (any number of trailing dims, as `BatchNorm1d`/`2d`) with batch statistics when `training`
/// (updating `running_mean` / `running_var` in place with `momentum`) and the running ones
/// otherwise.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn batch_norm(
    x: &Tensor,
    running_mean: Option<&Tensor>,
    running_var: Option<&Tensor>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Tensor {
    crate::norm::batch_norm_impl(
        "batch_norm",
        x,
        running_mean,
        running_var,
        weight,
        bias,
        training,
        Some(momentum),
        None,
        eps,
    )
}

/// Layer normalisation over the trailing dims `normalized_shape`.
#[track_caller]
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Tensor {
    crate::norm::layer_norm_impl(x, normalized_shape, weight, bias, eps)
}

/// Rows of `weight` selected by the integer `indices` (any shape): shape `indices.shape + [dim]`.
#[track_caller]
pub fn embedding(indices: &Tensor, weight: &Tensor) -> Tensor {
    crate::embedding::embedding_impl(indices, weight, None)
}

/// Mean squared error with mean reduction (`F.mse_loss`).
#[track_caller]
pub fn mse_loss(input: &Tensor, target: &Tensor) -> Tensor {
    loss::MSELoss::new().forward(input, target)
}

/// Mean absolute error with mean reduction (`F.l1_loss`).
#[track_caller]
pub fn l1_loss(input: &Tensor, target: &Tensor) -> Tensor {
    loss::L1Loss::new().forward(input, target)
}

/// Smooth L1 loss with threshold `beta` and mean reduction (`F.smooth_l1_loss`).
#[track_caller]
pub fn smooth_l1_loss(input: &Tensor, target: &Tensor, beta: f64) -> Tensor {
    loss::SmoothL1Loss::new().beta(beta).forward(input, target)
}

/// Huber loss with threshold `delta` and mean reduction (`F.huber_loss`).
#[track_caller]
pub fn huber_loss(input: &Tensor, target: &Tensor, delta: f64) -> Tensor {
    loss::HuberLoss::new().delta(delta).forward(input, target)
}

/// Cross-entropy of logits with class-index or probability targets, mean reduction
/// (`F.cross_entropy`).
#[track_caller]
pub fn cross_entropy(input: &Tensor, target: &Tensor) -> Tensor {
    loss::CrossEntropyLoss::new().forward(input, target)
}

/// Negative log-likelihood of log-probabilities with class-index targets, mean reduction
/// (`F.nll_loss`).
#[track_caller]
pub fn nll_loss(input: &Tensor, target: &Tensor) -> Tensor {
    loss::NLLLoss::new().forward(input, target)
}

/// Binary cross-entropy of probabilities, mean reduction (`F.binary_cross_entropy`).
#[track_caller]
pub fn binary_cross_entropy(input: &Tensor, target: &Tensor) -> Tensor {
    loss::BCELoss::new().forward(input, target)
}

/// Binary cross-entropy of logits, mean reduction (`F.binary_cross_entropy_with_logits`).
#[track_caller]
pub fn binary_cross_entropy_with_logits(input: &Tensor, target: &Tensor) -> Tensor {
    loss::BCEWithLogitsLoss::new().forward(input, target)
}

/// KL divergence of log-probabilities `input` from `target` (probabilities, or
/// log-probabilities when `log_target`), mean reduction (`F.kl_div`).
#[track_caller]
pub fn kl_div(input: &Tensor, target: &Tensor, log_target: bool) -> Tensor {
    loss::KLDivLoss::new()
        .log_target(log_target)
        .forward(input, target)
}
