//! The loss numbers of user story 4, to 4 decimals as PyTorch prints them.

use ember_autograd::{DType, Tensor};
use ember_nn::{self as nn, functional as F};

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

#[test]
fn one_hot_probability_targets_two_classes() {
    // CrossEntropyLoss()(torch.tensor([[-0.122, 0.105]]).double(), torch.Tensor([[1, 0]]).double())
    let x = Tensor::from_slice(&[-0.122f64, 0.105], [1, 2]);
    let t = Tensor::from_slice(&[1.0f32, 0.0], [1, 2]).double();
    let l = nn::CrossEntropyLoss::new().forward(&x, &t);
    assert_eq!(l.dtype(), DType::F64);
    assert_eq!(l.shape(), &[] as &[usize]);
    assert_eq!(round4(l.item()), 0.8131);
}

#[test]
fn one_hot_from_f_one_hot() {
    // CrossEntropyLoss()(scores.double(), F.one_hot(torch.tensor(y), 4).double()) with y = [2]
    let scores = Tensor::from_slice(&[0.1f32, 6.0, -2.0, 3.2], [1, 4]);
    let y = Tensor::from_slice(&[2i64], [1]);
    let target = F::one_hot(&y, Some(4)).double();
    let l = nn::CrossEntropyLoss::new().forward(&scores.double(), &target);
    assert_eq!(round4(l.item()), 8.0619);
    // The same with the class index directly.
    let l2 = nn::CrossEntropyLoss::new().forward(&scores.double(), &y);
    assert_eq!(round4(l2.item()), 8.0619);
}

#[test]
fn nll_of_log_softmax_equals_cross_entropy() {
    let logits = Tensor::from_slice(&[0.2f32, -1.0, 0.5, 1.5, 0.0, -0.3], [2, 3]);
    let labels = Tensor::from_slice(&[2i64, 0], [2]);
    let ce = nn::CrossEntropyLoss::new().forward(&logits, &labels);
    let nll = nn::NLLLoss::new().forward(&logits.log_softmax(1), &labels);
    assert!((ce.item() - nll.item()).abs() < 1e-6);
}

#[test]
fn mse_of_scalars() {
    // MSELoss()(torch.tensor(10.).float(), torch.tensor(1.).float()) -> tensor(81.)
    let l = nn::MSELoss::new().forward(&Tensor::scalar(10f32), &Tensor::scalar(1f32));
    assert_eq!(l.dtype(), DType::F32);
    assert_eq!(l.item(), 81.0);
}

#[test]
fn one_hot_scalar() {
    // F.one_hot(torch.tensor(0), num_classes=3) -> tensor([1, 0, 0])
    let t = F::one_hot(&Tensor::scalar(0i64), Some(3));
    assert_eq!(t.shape(), &[3]);
    assert_eq!(t.to_vec::<i64>(), vec![1, 0, 0]);
}
