//! Properties of every optimizer on random small tensors: SGD without momentum is `p − lr·g`; a
//! zero learning rate leaves parameters unchanged; a saved and reloaded state_dict continues a run
//! bit-for-bit.

use ember_autograd::Tensor;
use ember_optim::*;
use proptest::prelude::*;

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..5, 1..3)
}

fn tensor(shape: &[usize], seed: u64, scale: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect();
    Tensor::from_vec(v, shape.to_vec())
}

/// One of every optimizer with varied options (index `k`).
fn make(k: usize, params: Vec<Tensor>, lr: f64) -> Box<dyn Optimizer> {
    match k {
        0 => Box::new(
            SGD::new(params, lr)
                .momentum(0.9)
                .dampening(0.1)
                .weight_decay(0.01),
        ),
        1 => Box::new(
            SGD::new(params, lr)
                .momentum(0.8)
                .nesterov(true)
                .maximize(true),
        ),
        2 => Box::new(Adam::new(params, lr).amsgrad(true).weight_decay(0.1)),
        3 => Box::new(AdamW::new(params, lr).betas(0.8, 0.99)),
        4 => Box::new(
            RMSprop::new(params, lr)
                .momentum(0.5)
                .centered(true)
                .weight_decay(0.01),
        ),
        5 => Box::new(RMSprop::new(params, lr)),
        _ => Box::new(
            Adagrad::new(params, lr)
                .lr_decay(0.01)
                .initial_accumulator_value(0.1),
        ),
    }
}
const KINDS: usize = 7;

fn bits(ps: &[Tensor]) -> Vec<u32> {
    ps.iter()
        .flat_map(|p| p.to_vec::<f32>())
        .map(f32::to_bits)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn sgd_without_momentum_is_p_minus_lr_g(shape in shape(), seed in 0u64..10_000, lr in 0.0f64..1.0) {
        let p = tensor(&shape, seed, 2.0).requires_grad_(true);
        let g = tensor(&shape, seed + 1, 1.0);
        let (p0, gv) = (p.to_vec::<f32>(), g.to_vec::<f32>());
        p.set_grad(Some(g));
        let mut opt = SGD::new([p.clone()], lr);
        opt.step();
        let want: Vec<f32> = p0.iter().zip(&gv).map(|(p, g)| p - lr as f32 * g).collect();
        let got = p.to_vec::<f32>();
        for (a, b) in got.iter().zip(&want) {
            prop_assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{} vs {}", a, b);
        }
    }

    #[test]
    fn zero_lr_leaves_parameters_unchanged(shape in shape(), seed in 0u64..10_000, k in 0usize..KINDS) {
        let ps = vec![tensor(&shape, seed, 2.0).requires_grad_(true), tensor(&[3], seed + 7, 1.0).requires_grad_(true)];
        let before = bits(&ps);
        let mut opt = make(k, ps.clone(), 0.0);
        for s in 0..3 {
            for (i, p) in ps.iter().enumerate() {
                p.set_grad(Some(tensor(p.shape(), seed + 100 * s + i as u64, 1.0)));
            }
            opt.step();
        }
        prop_assert_eq!(bits(&ps), before, "{}", opt.name());
    }

    #[test]
    fn loaded_state_dict_continues_bit_for_bit(shape in shape(), seed in 0u64..10_000, k in 0usize..KINDS,
                                               before in 1usize..4, after in 1usize..4) {
        let grads = |s: usize, p: &Tensor, i: usize| tensor(p.shape(), seed + 1000 * s as u64 + i as u64, 1.0);
        let ps = vec![tensor(&shape, seed, 2.0).requires_grad_(true), tensor(&[3], seed + 7, 1.0).requires_grad_(true)];
        let mut opt = make(k, ps.clone(), 0.05);
        for s in 0..before {
            for (i, p) in ps.iter().enumerate() {
                // The second parameter misses a step now and then: its state lags behind.
                p.set_grad((i == 0 || s % 2 == 0).then(|| grads(s, p, i)));
            }
            opt.step();
        }
        // Save, then restore into a fresh optimizer (other lr: the saved options win) over copies.
        let path = std::env::temp_dir().join(format!("ember-optim-prop-{}-{k}-{seed}.safetensors", std::process::id()));
        opt.save(&path).unwrap();
        let qs: Vec<Tensor> = ps.iter().map(|p| p.detach().copy().requires_grad_(true)).collect();
        let mut resumed = make(k, qs.clone(), 0.5);
        resumed.load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        for s in before..before + after {
            for (i, (p, q)) in ps.iter().zip(&qs).enumerate() {
                p.set_grad(Some(grads(s, p, i)));
                q.set_grad(Some(grads(s, q, i)));
            }
            opt.step();
            resumed.step();
            prop_assert_eq!(bits(&ps), bits(&qs), "{} step {}", opt.name(), s);
        }
    }
}
