//! Gradient clipping (`torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`), in place on the
//! parameters' `.grad()`.

use ember_autograd::{no_grad, DType, Tensor};
use std::borrow::Borrow;

/// Scales the gradients of `parameters` in place so that their total `norm_type`-norm (as if all
/// gradients were one vector) is at most `max_norm`, and returns that total norm (before clipping)
/// as a 0-dim tensor of the gradients' dtype. As PyTorch: the scale is
/// `min(1, max_norm / (total + 1e-6))`; `norm_type` may be `f64::INFINITY` (largest magnitude);
/// parameters without a gradient are ignored; no gradients gives a norm of 0.
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_optim::clip::clip_grad_norm_;
/// let w = Tensor::zeros([2]).requires_grad_(true);
/// w.set_grad(Some(Tensor::from_slice(&[3.0f32, 4.0], [2])));
/// let total = clip_grad_norm_(&[w.clone()], 1.0, 2.0);
/// assert_eq!(total.item(), 5.0);
/// let g = w.grad().unwrap().to_vec::<f32>();
/// assert!((g[0] - 0.6).abs() < 1e-5 && (g[1] - 0.8).abs() < 1e-5);
/// ```
pub fn clip_grad_norm_<I>(parameters: I, max_norm: f64, norm_type: f64) -> Tensor
where
    I: IntoIterator,
    I::Item: Borrow<Tensor>,
{
    let _guard = no_grad();
    let grads: Vec<Tensor> = parameters
        .into_iter()
        .filter_map(|p| p.borrow().grad())
        .collect();
    let Some(first) = grads.first() else {
        return Tensor::scalar(0f32);
    };
    let dtype = first.dtype();
    let parts = grads.iter().map(|g| g.norm_pow_sum(norm_type));
    // PyTorch takes the norm of the per-gradient norms; for these orders that equals one norm
    // over all elements, computed here in f64 without the intermediate roots.
    let total = if norm_type == f64::INFINITY {
        parts.fold(0.0, |m: f64, x| if x.is_nan() || x > m { x } else { m })
    } else if norm_type == f64::NEG_INFINITY {
        parts.fold(
            f64::INFINITY,
            |m: f64, x| if x.is_nan() || x < m { x } else { m },
        )
    } else if norm_type == 0.0 {
        // The 0-"norm" of the per-gradient counts: how many gradients have a non-zero element.
        parts.filter(|&c| c != 0.0).count() as f64
    } else {
        parts.sum::<f64>().powf(1.0 / norm_type)
    };
    // The clip coefficient is computed in the gradients' dtype, as PyTorch's tensor arithmetic.
    let coef = if dtype == DType::F32 {
        let t = total as f32;
        ((max_norm as f32) / (t + 1e-6f32)) as f64
    } else {
        max_norm / (total + 1e-6)
    };
    // A NaN coefficient scales too, as PyTorch's clamp keeps NaN.
    if coef < 1.0 || coef.is_nan() {
        for g in &grads {
            g.mul_(coef);
        }
    }
    Tensor::scalar(total).to_dtype(if dtype.is_float() { dtype } else { DType::F32 })
}

/// Clamps every gradient of `parameters` in place to `[-clip_value, clip_value]`
/// (`torch.nn.utils.clip_grad_value_`); parameters without a gradient are ignored.
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_optim::clip::clip_grad_value_;
/// let w = Tensor::zeros([3]).requires_grad_(true);
/// w.set_grad(Some(Tensor::from_slice(&[-3.0f32, 0.5, 2.0], [3])));
/// clip_grad_value_(&[w.clone()], 1.0);
/// assert_eq!(w.grad().unwrap().to_vec::<f32>(), vec![-1.0, 0.5, 1.0]);
/// ```
pub fn clip_grad_value_<I>(parameters: I, clip_value: f64)
where
    I: IntoIterator,
    I::Item: Borrow<Tensor>,
{
    let _guard = no_grad();
    for p in parameters {
        if let Some(g) = p.borrow().grad() {
            g.clamp_(Some(-clip_value), Some(clip_value));
        }
    }
}
