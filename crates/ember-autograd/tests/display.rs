//! Printing matches PyTorch's repr, including autograd suffixes (story 1).

use ember_autograd::{tensor, Tensor};

#[test]
fn story1_prints() {
    let x = Tensor::from_slice(&[3f32, 4., 6., 2., 3., 6., 8., 9.], [1, 8]);
    assert_eq!(x.to_string(), "tensor([[3., 4., 6., 2., 3., 6., 8., 9.]])");
    assert_eq!(
        x.double().to_string(),
        "tensor([[3., 4., 6., 2., 3., 6., 8., 9.]], dtype=torch.float64)"
    );
    assert_eq!(
        Tensor::arange(6).view([2, 3]).to_string(),
        "tensor([[0, 1, 2],\n        [3, 4, 5]])"
    );
    assert_eq!(
        tensor!(0.8131).double().to_string(),
        "tensor(0.8131, dtype=torch.float64)"
    );
}

#[test]
fn autograd_suffixes() {
    let x = tensor!([1., 2.]).requires_grad_(true);
    assert_eq!(x.to_string(), "tensor([1., 2.], requires_grad=True)");
    assert_eq!(
        (&x * 2.0).to_string(),
        "tensor([2., 4.], grad_fn=<MulBackward0>)"
    );
    assert_eq!(
        x.pow(2.0).to_string(),
        "tensor([1., 4.], grad_fn=<PowBackward0>)"
    );
}
