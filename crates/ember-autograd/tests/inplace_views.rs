//! In-place ops through views rewrite the base's history as PyTorch's `CopySlices` does, and every
//! other view of the base sees it. Expected numbers are PyTorch 2.15's.

use ember_autograd::gradcheck::{gradcheck, gradgradcheck};
use ember_autograd::Tensor;

fn x123() -> Tensor {
    Tensor::from_slice(&[1.0f64, 2.0, 3.0], [3]).requires_grad_(true)
}

#[test]
fn an_inplace_op_on_a_view_reaches_the_base() {
    let x = x123();
    let y = &x * 1.0;
    y.narrow(0, 0, 1).mul_(2.0);
    assert_eq!(y.grad_fn_name(), Some("CopySlices"));
    y.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![2.0, 1.0, 1.0]);
}

#[test]
fn other_views_of_the_base_see_the_new_history() {
    let x = x123();
    let y = &x * 1.0;
    let v1 = y.narrow(0, 0, 2);
    let v2 = y.narrow(0, 1, 2);
    v1.mul_(3.0);
    v2.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![0.0, 3.0, 1.0]);
}

#[test]
fn writing_a_tracked_value_into_a_plain_buffer_makes_it_require_grad() {
    let x = x123();
    let buf = Tensor::zeros([4]).to_dtype(ember_autograd::DType::F64);
    buf.narrow(0, 1, 3).copy_(&x);
    assert!(buf.requires_grad());
    assert_eq!(buf.grad_fn_name(), Some("CopySlices"));
    (&buf * &buf).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![2.0, 4.0, 6.0]);
}

#[test]
fn an_inplace_op_on_the_base_reaches_its_expanded_views() {
    let x = x123();
    let y = &x * 1.0;
    let v = y.unsqueeze(0).expand([2, 3]);
    y.mul_(2.0);
    v.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![4.0, 4.0, 4.0]);
}

#[test]
fn a_view_of_a_view_with_a_tracked_operand() {
    let x = x123();
    let y = &x * 1.0;
    let t = y.view([3, 1]).t();
    t.add_(x.view([1, 3]));
    y.pow(2.0).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![8.0, 16.0, 24.0]);
}

#[test]
#[should_panic(
    expected = "a view of a leaf Variable that requires grad is being used in an in-place operation."
)]
fn a_view_of_a_leaf_that_requires_grad_refuses_inplace_ops() {
    let x = x123();
    x.narrow(0, 0, 1).mul_(2.0);
}

#[test]
#[should_panic(
    expected = "more than one element of the written-to tensor refers to a single memory location"
)]
fn an_expanded_tensor_refuses_inplace_ops() {
    let z = Tensor::zeros([3]);
    z.expand([2, 3]).add_(1.0);
}

#[test]
fn copy_slices_is_differentiable_twice() {
    let f = |v: &[Tensor]| {
        let y = &v[0] * &v[0];
        y.narrow(0, 1, 2).mul_(&v[1]);
        y.select(0, 0).copy_(&v[1].sum());
        y.sin()
    };
    let x = x123();
    let w = Tensor::from_slice(&[0.5f64, -1.5], [2]).requires_grad_(true);
    gradcheck(f, &[x.clone(), w.clone()], 1e-6, 1e-6, 1e-4).unwrap();
    gradgradcheck(f, &[x, w], 1e-5, 1e-5, 1e-3).unwrap();
}
