//! The random ops through `Tensor`: in-place fills (`normal_`, `uniform_`, `bernoulli_`) walk a
//! view in memory order and take PyTorch's path for its contiguity, refuse leaves that require
//! grad, and pass a zero gradient; `get_rng_state`/`set_rng_state` replay the default stream.
//! Only `rng_state_round_trip` touches the default generator (tests run concurrently).

use ember_autograd::{get_rng_state, manual_seed, set_rng_state, DType, Generator, Tensor};
use proptest::prelude::*;

#[test]
fn rng_state_round_trip() {
    manual_seed(5);
    let _ = Tensor::randn([3]); // leaves a cached Box–Muller value
    let state = get_rng_state();
    assert_eq!((state.dtype(), state.shape()), (DType::U8, &[5056][..]));
    let a = (Tensor::randn([3]), Tensor::rand([20]), Tensor::randperm(9));
    set_rng_state(&state);
    let b = (Tensor::randn([3]), Tensor::rand([20]), Tensor::randperm(9));
    assert_eq!(a.0.to_vec::<f32>(), b.0.to_vec::<f32>());
    assert_eq!(a.1.to_vec::<f32>(), b.1.to_vec::<f32>());
    assert_eq!(a.2.to_vec::<i64>(), b.2.to_vec::<i64>());
}

#[test]
#[should_panic(expected = "set_rng_state: expected a torch.uint8 tensor, got float32")]
fn rng_state_must_be_bytes() {
    set_rng_state(&Tensor::zeros([5056]));
}

#[test]
fn inplace_fill_returns_self_and_bumps_the_version() {
    let g = Generator::new(1);
    let x = Tensor::zeros([4, 5]);
    let v = x.version();
    assert!(std::ptr::eq(x.normal_with_(0.0, 1.0, Some(&g)), &x));
    assert_eq!(x.version(), v + 1);
    x.uniform_with_(2.0, 3.0, Some(&g));
    assert!(x.to_vec::<f32>().iter().all(|v| (2.0..=3.0).contains(v)));
    x.bernoulli_with_(0.5, Some(&g));
    assert!(x.to_vec::<f32>().iter().all(|&v| v == 0.0 || v == 1.0));
    assert_eq!(x.version(), v + 3);
}

#[test]
#[should_panic(
    expected = "normal_: a leaf Variable that requires grad is being used in an in-place operation."
)]
fn inplace_fill_refuses_a_leaf_requiring_grad() {
    Tensor::zeros([3]).requires_grad_(true).normal_(0.0, 1.0);
}

#[test]
fn inplace_fill_passes_a_zero_gradient() {
    let g = Generator::new(2);
    let x = Tensor::ones([5]).requires_grad_(true);
    let y = &x * 3.0;
    y.uniform_with_(-1.0, 1.0, Some(&g));
    assert_eq!(y.grad_fn_name(), Some("UniformBackward0"));
    (&y * &x).sum().backward();
    // d/dx of sum(U * x) with U independent of x: U, and nothing through the overwritten 3x.
    assert_eq!(x.grad().unwrap().to_vec::<f32>(), y.to_vec::<f32>());
    let z = &x * 2.0;
    z.normal_with_(0.0, 1.0, Some(&g));
    assert_eq!(z.grad_fn_name(), Some("NormalBackward0"));
    let w = &x * 2.0;
    w.bernoulli_with_(0.5, Some(&g));
    assert_eq!(w.grad_fn_name(), Some("BernoulliBackward0"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A fill of any view draws as a fill of that many values would, laid out in the view's
    /// memory order: a contiguous view takes the creation op's path, any other view the
    /// sequential normal sampler (PyTorch's choice by contiguity).
    #[test]
    fn inplace_fills_walk_memory_order(rows in 1usize..9, cols in 1usize..9, kind in 0usize..3, seed in any::<u64>(), f64_dtype in any::<bool>()) {
        let dtype = if f64_dtype { DType::F64 } else { DType::F32 };
        let base = Tensor::zeros([rows, cols]).to_dtype(dtype);
        let view = match kind {
            0 => base.clone(),
            1 => base.t(),
            _ => base.slice(1, 0, cols, 2),
        };
        let n = view.numel();
        let (g, r) = (Generator::new(seed), Generator::new(seed));
        view.normal_with_(0.5, 2.0, Some(&g));
        let contiguous = view.is_contiguous();
        let want = if contiguous {
            Tensor::normal_with([n], 0.5, 2.0, dtype, Some(&r)).to_vec::<f64>()
        } else {
            (0..n).map(|_| {
                let z = r.lock().normal_f64(0.5, 2.0);
                if f64_dtype { z } else { z as f32 as f64 }
            }).collect()
        };
        // Memory order of these views: the base's row-major order restricted to the view.
        let got: Vec<f64> = match kind {
            0 | 1 => base.to_vec::<f64>(),
            _ => base.slice(1, 0, cols, 2).to_vec::<f64>(),
        };
        prop_assert_eq!(got, want);
        prop_assert_eq!(g.get_state(), r.get_state());
        let u = Tensor::zeros([rows, cols]).to_dtype(dtype);
        u.t().uniform_with_(-1.0, 1.0, Some(&g));
        let want = Tensor::uniform_with([rows * cols], -1.0, 1.0, dtype, Some(&r));
        prop_assert_eq!(u.to_vec::<f64>(), want.to_vec::<f64>());
    }
}
