//! `Tensor::set_data` (PyTorch's `t.data = other`): replacing a leaf's data in place, so every
//! handle to it follows while views taken before keep the old data.

use ember_autograd::{no_grad, DType, Tensor};

#[test]
fn every_handle_sees_the_new_data_dtype_and_flags_stay() {
    let p = Tensor::from_slice(&[1f32, 2., 3.], [3]).requires_grad_(true);
    let held = p.clone();
    let new = Tensor::from_slice(&[4f64, 5., 6.], [3]);
    p.set_data(&new);
    assert_eq!(held.dtype(), DType::F64);
    assert_eq!(held.to_vec::<f64>(), [4., 5., 6.]);
    assert!(held.requires_grad() && held.is_leaf());
    // Same layout: the storage is shared with `new`, as PyTorch's `.data =` does.
    assert!(p.shares_storage(&new));
    // Gradients flow into the same tensor, in the new dtype.
    (&held * &held).sum().backward();
    let g = p.grad().expect("a gradient");
    assert_eq!(g.dtype(), DType::F64);
    assert_eq!(g.to_vec::<f64>(), [8., 10., 12.]);
}

#[test]
fn the_gradient_and_its_dtype_are_left_alone() {
    let p = Tensor::from_slice(&[1f32, 2.], [2]).requires_grad_(true);
    p.set_grad(Some(Tensor::from_slice(&[0.5f32, 0.5], [2])));
    p.set_data(&Tensor::from_slice(&[1f64, 1.], [2]));
    assert_eq!(p.grad().unwrap().dtype(), DType::F32);
}

#[test]
#[should_panic(
    expected = "set_data: the new data has shape [2, 3] but the tensor has shape [3, 2]; the shapes must match"
)]
fn another_shape_panics_naming_both() {
    let p = Tensor::zeros([3, 2]).requires_grad_(true);
    p.set_data(&Tensor::zeros([2, 3]));
}

#[test]
fn a_view_taken_before_keeps_the_old_data() {
    let x = Tensor::from_slice(&[1f32, 2., 3., 4.], [2, 2]);
    let v = x.t(); // a tracked view
    let d = x.detach(); // another handle on the storage
    let row = x.select(0, 1);
    x.set_data(&Tensor::from_slice(&[10f64, 20., 30., 40.], [2, 2]));
    assert_eq!(x.to_vec::<f64>(), [10., 20., 30., 40.]);
    assert_eq!(v.dtype(), DType::F32);
    assert_eq!(v.to_vec::<f32>(), [1., 3., 2., 4.]);
    assert_eq!(d.to_vec::<f32>(), [1., 2., 3., 4.]);
    assert_eq!(row.to_vec::<f32>(), [3., 4.]);
    assert!(!v.shares_storage(&x));
    // A write through the old view does not reach the tensor.
    v.fill_(0.0);
    assert_eq!(x.to_vec::<f64>(), [10., 20., 30., 40.]);
}

#[test]
fn a_storage_guard_held_across_the_swap_stays_valid() {
    let x = Tensor::from_slice(&[1f32, 2.], [2]);
    let guard = x.storage();
    x.set_data(&Tensor::from_slice(&[7i64, 8], [2]));
    assert_eq!(guard.to_vec::<f32>(x.layout()), [1., 2.]);
    drop(guard);
    assert_eq!(x.to_vec::<i64>(), [7, 8]);
}

#[test]
fn the_layout_is_kept_and_the_elements_copied_into_it() {
    let base = Tensor::from_slice(&[1f32, 2., 3., 4., 5., 6.], [2, 3]);
    let x = base.t().detach(); // shape [3, 2], strides [1, 3]
    let new = Tensor::from_slice(&[1f64, 2., 3., 4., 5., 6.], [3, 2]);
    x.set_data(&new);
    assert_eq!(x.stride(), &[1, 3]);
    assert_eq!(x.dtype(), DType::F64);
    assert_eq!(x.to_vec::<f64>(), [1., 2., 3., 4., 5., 6.]);
    assert!(!x.shares_storage(&new));
    // A contiguous tensor taking non-contiguous data copies it contiguously.
    let c = Tensor::zeros([2, 3]);
    let src = Tensor::from_slice(&[1f64, 2., 3., 4., 5., 6.], [3, 2]).t();
    c.set_data(&src);
    assert_eq!(c.stride(), &[3, 1]);
    assert_eq!(c.to_vec::<f64>(), [1., 3., 5., 2., 4., 6.]);
}

#[test]
fn the_version_moves_on_so_a_saved_tensor_fails_loudly() {
    let p = Tensor::from_slice(&[1f32, 2.], [2]).requires_grad_(true);
    let x = Tensor::from_slice(&[3f32, 4.], [2]).requires_grad_(true);
    let before = p.version();
    let y = (&p * &x).sum(); // saves p for x's gradient
    p.set_data(&Tensor::from_slice(&[5f32, 6.], [2]));
    assert!(p.version() > before);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.backward()))
        .expect_err("backward must see the replaced data");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("modified by an inplace operation"),
        "unexpected message: {msg}"
    );
}

#[test]
fn setting_a_tensor_to_its_own_data_changes_nothing() {
    let p = Tensor::from_slice(&[1f32, 2.], [2]);
    let v = p.version();
    p.set_data(&p.detach());
    assert_eq!(p.version(), v);
    assert_eq!(p.to_vec::<f32>(), [1., 2.]);
}

#[test]
#[should_panic(expected = "set_data: only a leaf tensor can have its data replaced")]
fn a_non_leaf_panics() {
    let p = Tensor::zeros([2]).requires_grad_(true);
    let y = &p * 2.0;
    y.set_data(&Tensor::zeros([2]));
}

#[test]
#[should_panic(expected = "set_data: the tensor is a view of another tensor")]
fn a_view_panics() {
    let x = Tensor::zeros([2, 2]);
    x.t().set_data(&Tensor::zeros([2, 2]));
}

#[test]
#[should_panic(expected = "set_data: a tensor that requires grad needs floating-point data")]
fn integer_data_for_a_tensor_requiring_grad_panics() {
    let p = Tensor::zeros([2]).requires_grad_(true);
    p.set_data(&Tensor::from_slice(&[1i64, 2], [2]));
}

#[test]
#[should_panic(expected = "more than one element of the tensor refers to a single memory location")]
fn an_expanded_tensor_panics() {
    let x = Tensor::zeros([1, 3]).expand([2, 3]).detach();
    x.set_data(&Tensor::ones([2, 3]));
}

#[test]
fn works_under_no_grad_too() {
    let p = Tensor::zeros([2]).requires_grad_(true);
    let _g = no_grad();
    p.set_data(&Tensor::ones([2]).to_dtype(DType::F64));
    assert!(p.requires_grad());
    assert_eq!(p.to_vec::<f64>(), [1., 1.]);
}
