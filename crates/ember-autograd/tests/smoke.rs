use ember_autograd::{autograd, no_grad, Tensor};

#[test]
fn story2() {
    let x = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 3.0], [2, 2]).requires_grad_(true);
    let y = x.pow(2.0);
    assert_eq!(y.grad_fn_name(), Some("PowBackward0"));
    let z = y.mean();
    z.backward();
    assert!(x.grad().unwrap().allclose(&(&x / 2.0), 1e-6, 1e-6));
    {
        let _g = no_grad();
        assert!(!(&x * 2.0).requires_grad());
    }
}

#[test]
fn broadcast_backward_and_accumulate() {
    let a = Tensor::from_slice(&[1.0f64, 2.0, 3.0], [3, 1]).requires_grad_(true);
    let b = Tensor::from_slice(&[10.0f64, 20.0], [2]).requires_grad_(true);
    let c = (&a * &b).sum();
    c.backward();
    assert_eq!(a.grad().unwrap().to_vec::<f64>(), vec![30.0, 30.0, 30.0]);
    assert_eq!(b.grad().unwrap().to_vec::<f64>(), vec![6.0, 6.0]);
    (&a * &b).sum().backward();
    assert_eq!(b.grad().unwrap().to_vec::<f64>(), vec![12.0, 12.0]);
}

#[test]
fn second_derivative() {
    let x = Tensor::from_slice(&[2.0f64], [1]).requires_grad_(true);
    let y = x.pow(3.0);
    let dy = autograd::grad(&[y.sum()], std::slice::from_ref(&x), None, false, true);
    let d2 = autograd::grad(
        &[dy[0].clone().unwrap().sum()],
        std::slice::from_ref(&x),
        None,
        false,
        false,
    );
    assert_eq!(d2[0].as_ref().unwrap().item(), 12.0);
}

#[test]
#[should_panic(expected = "backward through the graph a second time")]
fn freed_graph() {
    let x = Tensor::from_slice(&[2.0f64], [1]).requires_grad_(true);
    let y = x.exp().sum();
    y.backward();
    y.backward();
}

#[test]
#[should_panic(expected = "modified by an inplace operation")]
fn version_counter() {
    let x = Tensor::from_slice(&[2.0f64], [1]).requires_grad_(true);
    let e = x.exp();
    let y = e.exp();
    e.add_(1.0);
    y.sum().backward();
}

/// `Linear` multiplies by `w.t()`: the weight's gradient must come back contiguous (computed as
/// `gᵀ @ x`, not transposed-copied), with the same values as the plain formula.
#[test]
fn transposed_weight_grad_is_contiguous() {
    for use_addmm in [false, true] {
        let x = Tensor::randn([5, 3]);
        let w = Tensor::randn([4, 3]).requires_grad_(true);
        let b = Tensor::randn([4]).requires_grad_(true);
        let y = if use_addmm {
            b.addmm(&x, &w.t(), 1.0, 1.0)
        } else {
            x.matmul(&w.t())
        };
        let seed = Tensor::randn([5, 4]);
        (&y * &seed).sum().backward();
        let gw = w.grad().unwrap();
        assert!(gw.is_contiguous(), "addmm={use_addmm}");
        assert!(gw.allclose(&seed.t().matmul(&x), 1e-5, 1e-6));
    }
}

#[test]
fn requires_grad_in_place_and_chained() {
    // PyTorch: `x.requires_grad_(True)` as a statement, and chained on a fresh tensor.
    let x = Tensor::zeros([2]);
    let y = x.requires_grad_(true);
    assert!(x.requires_grad() && y.requires_grad());
    x.requires_grad_(false);
    assert!(!y.requires_grad(), "the returned handle is the same tensor");
    assert!(Tensor::ones([3]).requires_grad_(true).requires_grad());
}
