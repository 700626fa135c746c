//! `Tensor::from` nested `Vec`s (`torch.tensor(features)`) and ragged-input errors.

use ember_autograd::{DType, RaggedError, Tensor};

#[test]
fn two_and_three_dim_vecs_of_each_dtype() {
    let x = Tensor::from(vec![vec![1.0f32, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
    assert_eq!((x.shape(), x.dtype()), (&[2usize, 3][..], DType::F32));
    assert_eq!(x.to_vec::<f32>(), [1., 2., 3., 4., 5., 6.]);
    assert_eq!(
        x.to_string(),
        "tensor([[1., 2., 3.],\n        [4., 5., 6.]])"
    );

    let y = Tensor::from(vec![vec![vec![1.0f64, 2.0]], vec![vec![3.0, 4.0]]]);
    assert_eq!((y.shape(), y.dtype()), (&[2usize, 1, 2][..], DType::F64));
    assert_eq!(y.to_vec::<f64>(), [1., 2., 3., 4.]);

    let z = Tensor::from(vec![vec![7i64], vec![8], vec![9]]);
    assert_eq!((z.shape(), z.dtype()), (&[3usize, 1][..], DType::I64));
    assert_eq!(z.to_vec::<i64>(), [7, 8, 9]);

    let v = Tensor::from(vec![0.5f32, 1.5]);
    assert_eq!(v.shape(), &[2]);
    // Any depth through the Result form.
    let deep = vec![vec![vec![vec![1i64, 2], vec![3, 4]]]];
    assert_eq!(
        Tensor::try_from_nested(&deep).unwrap().shape(),
        &[1, 1, 2, 2]
    );
}

#[test]
fn empty_data_has_pytorchs_shapes() {
    // torch.tensor([]) -> [0]; torch.tensor([[], []]) -> [2, 0]
    assert_eq!(Tensor::from(Vec::<Vec<f32>>::new()).shape(), &[0]);
    assert_eq!(
        Tensor::from(vec![Vec::<f32>::new(), vec![]]).shape(),
        &[2, 0]
    );
}

#[test]
fn ragged_data_is_an_error_naming_the_sequence_and_both_lengths() {
    let e = Tensor::try_from_nested(&vec![vec![1.0f32, 2.0, 3.0], vec![4.0, 5.0]]).unwrap_err();
    assert_eq!(
        e,
        RaggedError {
            expected: 3,
            got: 2,
            dim: 1,
            index: vec![1]
        }
    );
    // PyTorch: "expected sequence of length 2 at dim 2 (got 1)"
    let e = Tensor::try_from_nested(&vec![
        vec![vec![1.0f64, 2.0], vec![3.0, 4.0]],
        vec![vec![1.0, 2.0], vec![3.0]],
    ])
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "expected sequence of length 2 at dim 2 (got 1): data[1][1] has 1 elements where data[0][0] has 2"
    );
    // PyTorch: "expected sequence of length 2 at dim 1 (got 1)"
    let e = Tensor::try_from_nested(&vec![
        vec![vec![1.0f64, 2.0], vec![3.0, 4.0]],
        vec![vec![1.0, 2.0]],
    ])
    .unwrap_err();
    assert!(e
        .to_string()
        .starts_with("expected sequence of length 2 at dim 1 (got 1): data[1]"));
}

#[test]
#[should_panic(expected = "expected sequence of length 3 at dim 1 (got 2): data[1] has 2 elements")]
fn ragged_from_panics_with_pytorchs_message() {
    let _ = Tensor::from(vec![vec![1i64, 2, 3], vec![4, 5]]);
}
