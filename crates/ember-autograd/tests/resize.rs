//! `resize_` with PyTorch's semantics.

use ember_autograd::Tensor;

#[test]
fn shrinking_keeps_the_storage_and_its_elements() {
    let base = Tensor::from_slice(&[0f64, 1., 2., 3., 4., 5.], [6]);
    let mut x = base.clone();
    x.resize_([2, 2]);
    assert_eq!(x.shape(), &[2, 2]);
    assert!(x.is_contiguous());
    assert_eq!(x.to_vec::<f64>(), [0., 1., 2., 3.]);
    // Same storage: a write through the resized tensor shows in the other handle.
    x.fill_(7.0);
    assert_eq!(base.to_vec::<f64>(), [7., 7., 7., 7., 4., 5.]);
}

#[test]
fn growing_reallocates_preserving_elements_for_every_view() {
    let base = Tensor::from_slice(&[0f32, 1., 2., 3.], [2, 2]);
    let mut x = base.clone();
    let r = x.resize_([3, 3]);
    assert_eq!(r.shape(), &[3, 3]);
    assert_eq!(x.shape(), &[3, 3]);
    assert_eq!(&x.to_vec::<f32>()[..4], &[0., 1., 2., 3.]);
    assert_eq!(x.storage().len(), 9);
    // The other handle still reads its four elements, now from the grown buffer.
    assert_eq!(base.to_vec::<f32>(), [0., 1., 2., 3.]);
    x.fill_(1.0);
    assert_eq!(base.to_vec::<f32>(), [1., 1., 1., 1.]);
}

#[test]
fn a_view_resizes_from_its_storage_offset() {
    // PyTorch: x = arange(6.); v = x[1:]; v.resize_(2, 2) -> [[1, 2], [3, 4]], offset 1
    let x = Tensor::from_slice(&[0f64, 1., 2., 3., 4., 5.], [6]);
    let mut v = x.slice(0, 1, 6, 1);
    v.resize_([2, 2]);
    assert_eq!(v.to_vec::<f64>(), [1., 2., 3., 4.]);
    assert_eq!(v.layout().offset(), 1);
    assert_eq!(v.layout().strides(), &[2, 1]);
    // A non-contiguous tensor resized to its own shape is unchanged (PyTorch).
    let mut t = Tensor::from_slice(&[0f64, 1., 2., 3., 4., 5.], [2, 3]).t();
    t.resize_([3, 2]);
    assert_eq!(t.to_vec::<f64>(), [0., 3., 1., 4., 2., 5.]);
}

#[test]
#[should_panic(expected = "cannot resize variables that require grad")]
fn a_tensor_requiring_grad_refuses() {
    let mut x = Tensor::zeros([4]).requires_grad_(true);
    x.resize_([2, 2]);
}
