//! Property tests against naive elementwise references: every pointwise loss with every
//! reduction, the activation modules, BatchNorm1d in training, Embedding lookups and Dropout
//! masks, on random shapes.

use ember_autograd::{DType, Generator, Tensor};
use ember_nn::{self as nn, Module, Reduction};
use proptest::prelude::*;

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..4, 0..3)
}

/// Values drawn for `shape` from `gen` in `[lo, hi)`.
fn values(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Vec<f64> {
    let g = Generator::new(seed);
    Tensor::uniform_with(shape, lo, hi, DType::F64, Some(&g)).to_vec::<f64>()
}

fn reduce(v: &[f64], r: Reduction) -> Vec<f64> {
    match r {
        Reduction::None => v.to_vec(),
        Reduction::Sum => vec![v.iter().sum()],
        _ => vec![v.iter().sum::<f64>() / v.len() as f64],
    }
}

fn assert_all_close(got: &[f64], want: &[f64]) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(want) {
        prop_assert!((a - b).abs() <= 1e-10 * (1.0 + b.abs()), "{} vs {}", a, b);
    }
    Ok(())
}

fn reduction() -> impl Strategy<Value = Reduction> {
    prop_oneof![
        Just(Reduction::None),
        Just(Reduction::Mean),
        Just(Reduction::Sum)
    ]
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn pointwise_losses_match_their_formulas(s in shape(), r in reduction(), seed in any::<u64>(),
                                             beta in 0.1..2.0f64) {
        let x = values(&s, -3.0, 3.0, seed);
        let y = values(&s, -3.0, 3.0, seed ^ 1);
        let p = values(&s, 0.01, 0.99, seed ^ 2);
        let t = values(&s, 0.0, 1.0, seed ^ 3);
        let tx = |v: &[f64]| Tensor::from_vec(v.to_vec(), &s[..]);
        let got = |l: Tensor| l.to_vec::<f64>();
        let map2 = |a: &[f64], b: &[f64], f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
            a.iter().zip(b).map(|(&u, &v)| f(u, v)).collect()
        };

        let mse = map2(&x, &y, &|a, b| (a - b) * (a - b));
        assert_all_close(&got(nn::MSELoss::new().reduction(r).forward(&tx(&x), &tx(&y))), &reduce(&mse, r))?;
        let l1 = map2(&x, &y, &|a, b| (a - b).abs());
        assert_all_close(&got(nn::L1Loss::new().reduction(r).forward(&tx(&x), &tx(&y))), &reduce(&l1, r))?;
        let sl1 = map2(&x, &y, &|a, b| {
            let d = (a - b).abs();
            if d < beta { 0.5 * d * d / beta } else { d - 0.5 * beta }
        });
        assert_all_close(&got(nn::SmoothL1Loss::new().beta(beta).reduction(r).forward(&tx(&x), &tx(&y))), &reduce(&sl1, r))?;
        let hub = map2(&x, &y, &|a, b| {
            let d = (a - b).abs();
            if d < beta { 0.5 * d * d } else { beta * (d - 0.5 * beta) }
        });
        assert_all_close(&got(nn::HuberLoss::new().delta(beta).reduction(r).forward(&tx(&x), &tx(&y))), &reduce(&hub, r))?;
        let bce = map2(&p, &t, &|a, b| -(b * a.ln() + (1.0 - b) * (1.0 - a).ln()));
        assert_all_close(&got(nn::BCELoss::new().reduction(r).forward(&tx(&p), &tx(&t))), &reduce(&bce, r))?;
        let bcel = map2(&x, &t, &|a, b| (1.0 - b) * a + (1.0 + (beta - 1.0) * b) * softplus(-a));
        let pw = Tensor::full_on(&[], beta, DType::F64, ember_autograd::Device::Cpu);
        assert_all_close(&got(nn::BCEWithLogitsLoss::new().pos_weight(&pw).reduction(r).forward(&tx(&x), &tx(&t))), &reduce(&bcel, r))?;
        let lp: Vec<f64> = p.iter().map(|v| v.ln()).collect();
        let kl = map2(&lp, &t, &|a, b| if b > 0.0 { b * (b.ln() - a) } else { 0.0 });
        assert_all_close(&got(nn::KLDivLoss::new().reduction(r).forward(&tx(&lp), &tx(&t))), &reduce(&kl, r))?;
        let klt = map2(&lp, &y, &|a, b| b.exp() * (b - a));
        assert_all_close(&got(nn::KLDivLoss::new().log_target(true).reduction(r).forward(&tx(&lp), &tx(&y))), &reduce(&klt, r))?;
    }

    #[test]
    fn activations_match_their_formulas(s in shape(), seed in any::<u64>(), slope in 0.0..0.5f64) {
        let x = values(&s, -4.0, 4.0, seed);
        let xt = Tensor::from_vec(x.clone(), &s[..]);
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        type Case = (Box<dyn Module>, Box<dyn Fn(f64) -> f64>);
        let cases: Vec<Case> = vec![
            (Box::new(nn::ReLU), Box::new(|v: f64| v.max(0.0))),
            (Box::new(nn::LeakyReLU::new(slope)), Box::new(move |v: f64| if v > 0.0 { v } else { slope * v })),
            (Box::new(nn::ELU::new(1.0 + slope)), Box::new(move |v: f64| if v > 0.0 { v } else { (1.0 + slope) * v.exp_m1() })),
            (Box::new(nn::SiLU), Box::new(move |v: f64| v * sig(v))),
            (Box::new(nn::Sigmoid), Box::new(sig)),
            (Box::new(nn::Tanh), Box::new(|v: f64| v.tanh())),
            (Box::new(nn::GELU::new().approximate("tanh")), Box::new(|v: f64| {
                0.5 * v * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3))).tanh())
            })),
            (Box::new(nn::Identity), Box::new(|v: f64| v)),
        ];
        for (m, f) in cases {
            let want: Vec<f64> = x.iter().map(|&v| f(v)).collect();
            let got = m.forward(&xt);
            prop_assert_eq!(got.shape(), &s[..]);
            for (a, b) in got.to_vec::<f64>().iter().zip(&want) {
                prop_assert!((a - b).abs() < 1e-9, "{}: {} vs {}", m.type_name(), a, b);
            }
        }
        if !s.is_empty() {
            let sm = nn::Softmax::new(-1).forward(&xt).to_vec::<f64>();
            let lsm = nn::LogSoftmax::new(-1).forward(&xt).to_vec::<f64>();
            let last = *s.last().unwrap();
            for (row, (a, b)) in sm.chunks(last).zip(lsm.chunks(last)).enumerate() {
                prop_assert!((a.iter().sum::<f64>() - 1.0).abs() < 1e-12, "row {}", row);
                for (p, lp) in a.iter().zip(b) {
                    prop_assert!((p.ln() - lp).abs() < 1e-9);
                }
            }
        }
    }

    #[test]
    fn batchnorm_training_normalises_and_tracks(n in 2usize..6, c in 1usize..4, l in 0usize..3,
                                                seed in any::<u64>(), m in 0.0..1.0f64) {
        let mut shape = vec![n, c];
        if l > 0 {
            shape.push(l);
        }
        let x = Tensor::from_vec(values(&shape, -5.0, 5.0, seed), &shape[..]);
        let mut bn = nn::BatchNorm1d::new(c).momentum(Some(m));
        bn.double();
        let y = bn.forward(&x);
        let dims: Vec<isize> = if l > 0 { vec![0, 2] } else { vec![0] };
        let count = (n * l.max(1)) as f64;
        let mean = x.mean_dim(&dims[..], false).to_vec::<f64>();
        let var = (&x - &x.mean_dim(&dims[..], true))
            .square()
            .mean_dim(&dims[..], false)
            .to_vec::<f64>();
        let ym = y.mean_dim(&dims[..], false).to_vec::<f64>();
        let yv = y.square().mean_dim(&dims[..], false).to_vec::<f64>();
        let rm = bn.running_mean.as_ref().unwrap().to_vec::<f64>();
        let rv = bn.running_var.as_ref().unwrap().to_vec::<f64>();
        for k in 0..c {
            prop_assert!(ym[k].abs() < 1e-9);
            prop_assert!((yv[k] - var[k] / (var[k] + 1e-5)).abs() < 1e-9);
            prop_assert!((rm[k] - m * mean[k]).abs() < 1e-9);
            prop_assert!((rv[k] - ((1.0 - m) + m * var[k] * count / (count - 1.0))).abs() < 1e-9);
        }
    }

    #[test]
    fn embedding_rows_and_dropout_masks(num in 1usize..6, dim in 1usize..4, ids in prop::collection::vec(0usize..6, 1..8),
                                        p in 0.05..0.95f64, seed in any::<u64>()) {
        let ids: Vec<i64> = ids.into_iter().map(|i| (i % num) as i64).collect();
        let emb = nn::Embedding::new(num, dim);
        let w = emb.weight.to_vec::<f32>();
        let out = emb.forward(&Tensor::from_vec(ids.clone(), [ids.len()])).to_vec::<f32>();
        for (k, &i) in ids.iter().enumerate() {
            prop_assert_eq!(&out[k * dim..(k + 1) * dim], &w[i as usize * dim..(i as usize + 1) * dim]);
        }
        let x = Tensor::from_vec(values(&[64], 0.5, 2.0, seed), [64]);
        let d = nn::Dropout::new(p).generator(Generator::new(seed));
        let y = d.forward(&x).to_vec::<f64>();
        for (a, b) in y.iter().zip(x.to_vec::<f64>()) {
            prop_assert!(*a == 0.0 || (a - b / (1.0 - p)).abs() < 1e-12);
        }
    }
}
