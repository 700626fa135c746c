//! Compound assignment (`+=`, `-=`, `*=`, `/=`) in place, and one method name for tensor and
//! scalar right-hand sides (`mul_(2.0)` / `mul_(&y)`, `pow`, `eq`, …).

use ember_autograd::{no_grad, DType, Tensor};

#[test]
fn compound_assignment_is_in_place_for_every_handle() {
    let mut x = Tensor::from_slice(&[1.0f64, 2.0, 3.0], [3]);
    let alias = x.clone();
    let y = Tensor::from_slice(&[10.0f64, 20.0, 30.0], [3]);
    x += &y;
    assert_eq!(alias.to_vec::<f64>(), [11., 22., 33.]);
    x -= 1.0;
    assert_eq!(alias.to_vec::<f64>(), [10., 21., 32.]);
    x *= 2.0;
    assert_eq!(alias.to_vec::<f64>(), [20., 42., 64.]);
    x /= &Tensor::scalar(2.0f64);
    assert_eq!(alias.to_vec::<f64>(), [10., 21., 32.]);
    x *= y.clone();
    assert_eq!(alias.to_vec::<f64>(), [100., 420., 960.]);
    x -= 100i64;
    assert_eq!(x.to_vec::<f64>(), [0., 320., 860.]);
    // Integer tensors keep their dtype; the view writes through to its base.
    let mut i = Tensor::from_slice(&[1i64, 2], [2]);
    i += 1;
    assert_eq!((i.dtype(), i.to_vec::<i64>()), (DType::I64, vec![2, 3]));
    let base = Tensor::zeros([2, 2]);
    let mut row = base.select(0, 1);
    row += 5.0;
    assert_eq!(base.to_vec::<f32>(), [0., 0., 5., 5.]);
}

#[test]
fn the_lessons_manual_sgd_step() {
    // PyTorch: with torch.no_grad(): p -= p.grad * lr
    let mut p = Tensor::from_slice(&[1.0f64, 2.0], [2]).requires_grad_(true);
    (&p * &p).sum().backward();
    let lr = 0.1;
    {
        let _g = no_grad();
        p -= &(&p.grad().unwrap() * lr);
    }
    assert!(p.allclose(&Tensor::from_slice(&[0.8f64, 1.6], [2]), 1e-12, 1e-12));
    assert!(p.is_leaf() && p.requires_grad());
}

#[test]
#[should_panic(
    expected = "a leaf Variable that requires grad is being used in an in-place operation."
)]
fn compound_assignment_on_a_leaf_requiring_grad_follows_autograd_rules() {
    let mut p = Tensor::zeros([2]).requires_grad_(true);
    p += 1.0;
}

#[test]
fn compound_assignment_records_on_non_leaves() {
    let x = Tensor::from_slice(&[1.0f64, 2.0], [2]).requires_grad_(true);
    let mut y = &x * 3.0;
    y *= &x; // y = 3 x²
    assert_eq!(y.grad_fn_name(), Some("MulBackward0"));
    y += 1.0;
    assert_eq!(y.grad_fn_name(), Some("AddBackward1"));
    y.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), [6., 12.]);
}

#[test]
fn one_name_for_tensor_and_scalar_operands() {
    let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0], [3]);
    let two = Tensor::full([3], 2.0);
    assert_eq!(x.pow(2.0).to_vec::<f32>(), [1., 4., 9.]);
    assert_eq!(x.pow(&two).to_vec::<f32>(), [1., 4., 9.]);
    assert_eq!(x.pow(2).to_vec::<f32>(), [1., 4., 9.]);
    assert_eq!(x.eq(2.0).to_vec::<bool>(), [false, true, false]);
    assert_eq!(x.eq(&two).to_vec::<bool>(), [false, true, false]);
    assert_eq!(x.gt(&two).to_vec::<bool>(), x.gt(2.0).to_vec::<bool>());
    assert_eq!(x.le(&two).to_vec::<bool>(), x.le(2).to_vec::<bool>());
    assert_eq!(x.ne(&two).to_vec::<bool>(), x.ne(2.0).to_vec::<bool>());
    assert_eq!(x.lt(&two).to_vec::<bool>(), x.lt(2.0).to_vec::<bool>());
    assert_eq!(x.ge(&two).to_vec::<bool>(), x.ge(2.0).to_vec::<bool>());
    assert_eq!(x.mul(2.0).to_vec::<f32>(), x.mul(&two).to_vec::<f32>());
    assert_eq!(x.add(1).to_vec::<f32>(), [2., 3., 4.]);
    assert_eq!(x.sub(&two).to_vec::<f32>(), [-1., 0., 1.]);
    assert_eq!(x.div(2.0).to_vec::<f32>(), [0.5, 1., 1.5]);
    // A float number never widens a float32 tensor (PyTorch's wrapped scalars).
    assert_eq!(x.mul(2.0f64).dtype(), DType::F32);
    let y = x.copy();
    y.mul_(2.0).mul_(&two).add_(1).sub_(&two).div_(3.0);
    assert_eq!(y.to_vec::<f32>(), [1., 7. / 3., 11. / 3.]);
}

#[test]
fn scalar_and_tensor_in_place_forms_record_pytorchs_nodes() {
    let x = Tensor::from_slice(&[1.0f64, 2.0], [2]).requires_grad_(true);
    let y = &x * 1.0;
    y.mul_(2.0);
    assert_eq!(y.grad_fn_name(), Some("MulBackward1"));
    y.mul_(&x);
    assert_eq!(y.grad_fn_name(), Some("MulBackward0"));
    let p = x.pow(2.0);
    assert_eq!(p.grad_fn_name(), Some("PowBackward0"));
    let q = x.pow(Tensor::full([2], 2.0f64));
    assert_eq!(q.grad_fn_name(), Some("PowBackward1"));
}
