//! `gradcheck` and `gradgradcheck`: compare autograd's first and second derivatives with central
//! finite differences, as `torch.autograd.gradcheck`/`gradgradcheck` do. Used by the property
//! tests of every differentiable op and loss.

use crate::engine::grad;
use crate::tensor::Tensor;

/// Checks the gradients of `f` at `inputs` (f64 leaves that require grad): the analytic gradient
/// of `sum(f(inputs) * w)` for a fixed pseudo-random weight `w` against central differences with
/// step `eps`, elementwise within `atol + rtol * |numeric|`. Returns a description of the first
/// mismatch.
///
/// ```
/// use ember_autograd::{gradcheck::gradcheck, Tensor};
/// let x = Tensor::from_slice(&[0.3f64, -1.2, 2.0], [3]).requires_grad_(true);
/// gradcheck(|v| v[0].tanh(), &[x], 1e-6, 1e-6, 1e-4).unwrap();
/// ```
pub fn gradcheck(
    f: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    eps: f64,
    atol: f64,
    rtol: f64,
) -> Result<(), String> {
    let out = f(inputs);
    let w = weights(&out);
    let weighted = |o: &Tensor| (o * &w).sum().item();
    let analytic = if out.requires_grad() {
        grad(&[(&out * &w).sum()], inputs, None, false, false)
    } else {
        vec![None; inputs.len()]
    };
    for (i, x) in inputs.iter().enumerate() {
        let base = x.detach().to_vec::<f64>();
        let a = analytic[i]
            .as_ref()
            .map(|g| g.to_vec::<f64>())
            .unwrap_or_else(|| vec![0.0; base.len()]);
        for k in 0..base.len() {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[k] += delta;
                let xi = Tensor::from_vec(v, x.shape()).to_dtype(x.dtype());
                let args: Vec<Tensor> = inputs
                    .iter()
                    .enumerate()
                    .map(|(j, t)| if j == i { xi.clone() } else { t.detach() })
                    .collect();
                let _g = crate::no_grad();
                weighted(&f(&args))
            };
            let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
            if (a[k] - numeric).abs() > atol + rtol * numeric.abs() {
                return Err(format!(
                    "input {i} element {k}: analytic {} vs numeric {numeric}",
                    a[k]
                ));
            }
        }
    }
    Ok(())
}

/// A fixed, non-uniform weighting of `out`'s elements: catches gradients that only sum correctly.
fn weights(out: &Tensor) -> Tensor {
    let w: Vec<f64> = (0..out.numel())
        .map(|k| 0.5 + ((k * 7919) % 13) as f64 / 13.0)
        .collect();
    Tensor::from_vec(w, out.shape()).to_dtype(out.dtype())
}

/// Checks the second derivatives of `f` at `inputs`: [`gradcheck`] of the function that maps the
/// inputs to the gradient of `sum(f(inputs) * w)` with respect to them (computed by autograd with
/// `create_graph`, flattened and concatenated), so every backward used must itself be
/// differentiable and correct.
///
/// ```
/// use ember_autograd::{gradcheck::gradgradcheck, Tensor};
/// let x = Tensor::from_slice(&[0.3f64, -1.2, 2.0], [3]).requires_grad_(true);
/// gradgradcheck(|v| v[0].tanh(), &[x], 1e-6, 1e-6, 1e-4).unwrap();
/// ```
pub fn gradgradcheck(
    f: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    eps: f64,
    atol: f64,
    rtol: f64,
) -> Result<(), String> {
    let first = |xs: &[Tensor]| {
        // gradcheck evaluates its function under no_grad for the finite differences; the first
        // derivative needs the graph whatever the caller's mode.
        let _mode = crate::grad_mode::grad_mode(true);
        let xs: Vec<Tensor> = xs
            .iter()
            .map(|x| {
                if x.requires_grad() {
                    x.clone()
                } else {
                    x.detach().requires_grad_(true)
                }
            })
            .collect();
        let out = f(&xs);
        let w = weights(&out);
        let grads = grad(&[(&out * &w).sum()], &xs, None, true, true);
        let flat: Vec<Tensor> = grads
            .into_iter()
            .zip(&xs)
            .map(|(g, x)| g.unwrap_or_else(|| x.detach().zeros_like()).reshape([-1]))
            .collect();
        Tensor::cat(&flat, 0)
    };
    gradcheck(first, inputs, eps, atol, rtol).map_err(|e| format!("second derivative: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custom_op;
    use smallvec::smallvec;

    #[test]
    fn catches_a_wrong_backward() {
        let x = Tensor::from_slice(&[0.5f64, 1.5], [2]).requires_grad_(true);
        // d/dx of x^2 claimed to be x (should be 2x): gradcheck must reject it.
        let bad = |v: &[Tensor]| {
            let x = v[0].clone();
            let xs = x.detach();
            custom_op(x.detach().square(), "BadSquare", &[&x], move |g| {
                smallvec![Some(g * &xs)]
            })
        };
        assert!(gradcheck(bad, std::slice::from_ref(&x), 1e-6, 1e-6, 1e-4).is_err());
        assert!(gradcheck(|v| v[0].square(), &[x], 1e-6, 1e-6, 1e-4).is_ok());
    }

    #[test]
    fn catches_a_backward_that_is_not_differentiable() {
        let x = Tensor::from_slice(&[0.5f64, 1.5], [2]).requires_grad_(true);
        // The right first derivative (2x), computed from a detached copy: its own derivative is
        // lost, which gradgradcheck must notice.
        let opaque = |v: &[Tensor]| {
            let x = v[0].clone();
            let xs = x.detach();
            custom_op(x.detach().square(), "OpaqueSquare", &[&x], move |g| {
                smallvec![Some(g * &(&xs * 2.0))]
            })
        };
        let x1 = std::slice::from_ref(&x);
        assert!(gradcheck(opaque, x1, 1e-6, 1e-6, 1e-4).is_ok());
        assert!(gradgradcheck(opaque, x1, 1e-6, 1e-6, 1e-4).is_err());
        assert!(gradgradcheck(|v| v[0].square(), x1, 1e-6, 1e-6, 1e-4).is_ok());
    }
}
