//! Losses: PyTorch parity (`parity/loss.json`, forward and input gradients), gradient checks in
//! f64 for every loss, properties of the fused cross-entropy / NLL against a naive reference
//! (class indices with weight, ignore_index and label smoothing, probability targets, K-dim and
//! strided inputs, every reduction), and the panic messages.

use ember_autograd::gradcheck::{gradcheck, gradgradcheck};
use ember_autograd::{DType, Tensor};
use ember_nn::{
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
    Reduction, SmoothL1Loss,
};
use ember_testkit::second_order::{assert_every_node_checked, note_nodes};
use ember_testkit::{assert_close, cases, leaf_input, reduction_tol, tensor};
use proptest::prelude::*;
use serde_json::Value;

fn reduction(args: &Value) -> Reduction {
    args["reduction"]
        .as_str()
        .unwrap_or("mean")
        .parse()
        .unwrap()
}

/// Runs one `parity/loss.json` case's op on its inputs.
fn run(op: &str, args: &Value, x: &[Tensor]) -> Tensor {
    let r = reduction(args);
    match op {
        "cross_entropy" => {
            let mut l = CrossEntropyLoss::new().reduction(r);
            if let Some(i) = args["ignore_index"].as_i64() {
                l = l.ignore_index(i);
            }
            if let Some(s) = args["label_smoothing"].as_f64() {
                l = l.label_smoothing(s);
            }
            if x.len() > 2 {
                l = l.weight(&x[2]);
            }
            l.forward(&x[0], &x[1])
        }
        "nll_loss" => {
            let mut l = NLLLoss::new().reduction(r);
            if x.len() > 2 {
                l = l.weight(&x[2]);
            }
            l.forward(&x[0], &x[1])
        }
        "mse_loss" => MSELoss::new().reduction(r).forward(&x[0], &x[1]),
        "l1_loss" => L1Loss::new().reduction(r).forward(&x[0], &x[1]),
        "smooth_l1_loss" => SmoothL1Loss::new()
            .reduction(r)
            .beta(args["beta"].as_f64().unwrap())
            .forward(&x[0], &x[1]),
        "huber_loss" => HuberLoss::new()
            .reduction(r)
            .delta(args["delta"].as_f64().unwrap())
            .forward(&x[0], &x[1]),
        "binary_cross_entropy" => BCELoss::new().reduction(r).forward(&x[0], &x[1]),
        "binary_cross_entropy_with_logits" => {
            let mut l = BCEWithLogitsLoss::new().reduction(r);
            if x.len() > 2 {
                l = l.pos_weight(&x[2]);
            }
            l.forward(&x[0], &x[1])
        }
        "kl_div" => KLDivLoss::new()
            .reduction(r)
            .log_target(args["log_target"].as_bool().unwrap())
            .forward(&x[0], &x[1]),
        other => panic!("unknown loss {other}"),
    }
}

#[test]
fn parity_with_pytorch() {
    let all = cases("loss");
    assert!(all.len() >= 39);
    for c in &all {
        let name = c["name"].as_str().unwrap();
        let leaves: Vec<Tensor> = c["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(leaf_input)
            .collect();
        let out = run(c["op"].as_str().unwrap(), &c["args"], &leaves);
        let (atol, rtol) = reduction_tol(out.dtype());
        assert_close(name, &out, &c["output"], atol, rtol);
        out.backward_with(&tensor(&c["grad_seed"]));
        for (i, g) in c["grads"].as_array().unwrap().iter().enumerate() {
            if g.is_null() {
                continue;
            }
            let got = leaves[i]
                .grad()
                .unwrap_or_else(|| panic!("{name}: no gradient for input {i}"));
            assert_close(&format!("{name} grad {i}"), &got, g, atol, rtol);
        }
    }
}

fn leaf(v: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape).requires_grad_(true)
}

/// First and second derivatives against finite differences (every loss's backward must itself be
/// differentiable under `create_graph`).
fn check(name: &str, f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor]) {
    gradcheck(&f, inputs, 1e-6, 1e-7, 1e-5).unwrap_or_else(|e| panic!("{name}: {e}"));
    gradgradcheck(&f, inputs, 1e-5, 1e-5, 1e-4).unwrap_or_else(|e| panic!("{name}: {e}"));
    note_nodes(&f, inputs);
}

const REDUCTIONS: [Reduction; 3] = [Reduction::None, Reduction::Mean, Reduction::Sum];

/// `gradcheck` and `gradgradcheck` of every loss with every reduction; at the end, every node
/// `loss.rs` records must have been among those checked.
#[test]
fn gradcheck_every_loss() {
    let x = vec![0.3, -1.2, 0.8, 2.0, -0.4, 0.1, 1.3, -0.9];
    let y = vec![0.5, -1.0, 0.0, 1.0, 0.4, 0.3, -2.0, -0.5];
    let probs = vec![0.2, 0.7, 0.45, 0.9, 0.05, 0.6, 0.33, 0.8];
    let targets01 = vec![0.0, 1.0, 0.3, 1.0, 0.0, 0.9, 0.5, 0.2];
    for r in REDUCTIONS {
        let t = Tensor::from_vec(y.clone(), [2, 4]);
        let a = leaf(x.clone(), &[2, 4]);
        check(
            "mse",
            |v| MSELoss::new().reduction(r).forward(&v[0], &t),
            std::slice::from_ref(&a),
        );
        check(
            "l1",
            |v| L1Loss::new().reduction(r).forward(&v[0], &t),
            std::slice::from_ref(&a),
        );
        check(
            "smooth_l1",
            |v| {
                SmoothL1Loss::new()
                    .beta(0.7)
                    .reduction(r)
                    .forward(&v[0], &t)
            },
            std::slice::from_ref(&a),
        );
        check(
            "huber",
            |v| HuberLoss::new().delta(0.6).reduction(r).forward(&v[0], &t),
            std::slice::from_ref(&a),
        );
        let p = leaf(probs.clone(), &[2, 4]);
        let tt = Tensor::from_vec(targets01.clone(), [2, 4]);
        let w = Tensor::from_slice(&[0.5f64, 1.0, 2.0, 1.5], [4]);
        check(
            "bce",
            |v| BCELoss::new().weight(&w).reduction(r).forward(&v[0], &tt),
            std::slice::from_ref(&p),
        );
        // The target's gradient too (PyTorch's binary_cross_entropy_target_backward).
        check(
            "bce/target",
            |v| BCELoss::new().reduction(r).forward(&v[0], &v[1]),
            &[p, leaf(targets01.clone(), &[2, 4])],
        );
        // BCE with logits: gradients to both the logits and the target.
        let tl = leaf(targets01.clone(), &[2, 4]);
        check(
            "bce_with_logits",
            |v| {
                BCEWithLogitsLoss::new()
                    .pos_weight(&w)
                    .weight(&w)
                    .reduction(r)
                    .forward(&v[0], &v[1])
            },
            &[a.clone(), tl.clone()],
        );
        check(
            "bce_with_logits/plain",
            |v| BCEWithLogitsLoss::new().reduction(r).forward(&v[0], &v[1]),
            &[a.clone(), tl],
        );
        let lp = leaf(probs.iter().map(|p| p.ln()).collect(), &[2, 4]);
        // (xlogy is not differentiable in the target at 0: keep targets positive.)
        let tp = leaf(probs.clone(), &[2, 4]);
        check(
            "kl_div",
            |v| KLDivLoss::new().reduction(r).forward(&v[0], &v[1]),
            &[lp.clone(), tp.clone()],
        );
        check(
            "kl_div/log_target",
            |v| {
                KLDivLoss::new()
                    .log_target(true)
                    .reduction(r)
                    .forward(&v[0], &v[1])
            },
            &[lp, leaf(y.clone(), &[2, 4])],
        );
        // Class losses: indices with weight / ignore_index / smoothing, and probabilities.
        let idx = Tensor::from_slice(&[3i64, -100], [2]);
        check(
            "cross_entropy",
            |v| {
                CrossEntropyLoss::new()
                    .weight(&w)
                    .label_smoothing(0.2)
                    .reduction(r)
                    .forward(&v[0], &idx)
            },
            std::slice::from_ref(&a),
        );
        let soft = Tensor::from_slice(&[0.1f64, 0.2, 0.3, 0.4, 0.25, 0.25, 0.5, 0.0], [2, 4]);
        check(
            "cross_entropy/probs",
            |v| {
                CrossEntropyLoss::new()
                    .weight(&w)
                    .label_smoothing(0.1)
                    .reduction(r)
                    .forward(&v[0], &v[1])
            },
            &[a.clone(), soft.requires_grad_(true)],
        );
        let idx2 = Tensor::from_slice(&[1u8, 2], [2]);
        check(
            "nll",
            |v| NLLLoss::new().weight(&w).reduction(r).forward(&v[0], &idx2),
            std::slice::from_ref(&a),
        );
    }
    // Every loss node `loss.rs` records went through gradgradcheck above.
    assert_every_node_checked(&[("loss.rs", include_str!("../src/loss.rs"))], &[]);
}

#[test]
fn kl_div_batchmean_and_zero_targets() {
    let lp = Tensor::from_slice(&[-1.0f64, -0.5, -2.0, -0.1], [2, 2]);
    let t = Tensor::from_slice(&[0.0f64, 1.0, 0.5, 0.5], [2, 2]);
    let sum = KLDivLoss::new()
        .reduction(Reduction::Sum)
        .forward(&lp, &t)
        .item();
    let want = 1.0 * (0.0 - -0.5) + 0.5 * (0.5f64.ln() + 2.0) + 0.5 * (0.5f64.ln() + 0.1);
    assert!((sum - want).abs() < 1e-12);
    let bm = KLDivLoss::new()
        .reduction(Reduction::BatchMean)
        .forward(&lp, &t)
        .item();
    assert!((bm - want / 2.0).abs() < 1e-12);
}

// ----- the fused cross-entropy against a naive reference -----

/// Per-row losses and the mean's divisor, computed the textbook way in f64.
#[allow(clippy::too_many_arguments)]
fn ce_reference(
    x: &[f64],
    n: usize,
    c: usize,
    inner: usize,
    target: &[i64],
    probs: Option<&[f64]>,
    weight: Option<&[f64]>,
    ignore: i64,
    eps: f64,
) -> (Vec<f64>, f64) {
    let w = |k: usize| weight.map_or(1.0, |w| w[k]);
    let mut rows = Vec::new();
    let mut div = 0.0;
    for i in 0..n {
        for s in 0..inner {
            let at = |k: usize| x[i * c * inner + k * inner + s];
            let m = (0..c).map(at).fold(f64::NEG_INFINITY, f64::max);
            let lse = m + (0..c).map(|k| (at(k) - m).exp()).sum::<f64>().ln();
            let logp = |k: usize| at(k) - lse;
            match probs {
                Some(p) => {
                    let tk =
                        |k: usize| (1.0 - eps) * p[i * c * inner + k * inner + s] + eps / c as f64;
                    rows.push(-(0..c).map(|k| w(k) * tk(k) * logp(k)).sum::<f64>());
                    div += 1.0;
                }
                None => {
                    let y = target[i * inner + s];
                    if y == ignore {
                        rows.push(0.0);
                        continue;
                    }
                    let y = y as usize;
                    let smooth = -(0..c).map(|k| w(k) * logp(k)).sum::<f64>();
                    rows.push((1.0 - eps) * -w(y) * logp(y) + eps / c as f64 * smooth);
                    div += w(y);
                }
            }
        }
    }
    (rows, div)
}

#[derive(Debug, Clone)]
struct CeCase {
    n: usize,
    c: usize,
    spatial: Vec<usize>,
    x: Vec<f64>,
    target: Vec<i64>,
    probs: Option<Vec<f64>>,
    weight: Option<Vec<f64>>,
    eps: f64,
    transposed: bool,
}

fn ce_case() -> impl Strategy<Value = CeCase> {
    (
        1usize..4,
        1usize..5,
        prop::collection::vec(1usize..3, 0..2),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(0.0), 0.0..1.0f64],
        any::<bool>(),
    )
        .prop_flat_map(|(n, c, spatial, soft, weighted, eps, transposed)| {
            let inner: usize = spatial.iter().product();
            let rows = n * inner;
            (
                prop::collection::vec(-6.0..6.0f64, n * c * inner),
                prop::collection::vec(prop_oneof![4 => 0..c as i64, 1 => Just(-100i64)], rows),
                prop::collection::vec(0.0..1.0f64, n * c * inner),
                prop::collection::vec(0.1..3.0f64, c),
            )
                .prop_map(move |(x, target, p, w)| CeCase {
                    n,
                    c,
                    spatial: spatial.clone(),
                    x,
                    target,
                    probs: soft.then_some(p),
                    weight: weighted.then_some(w),
                    eps,
                    transposed: transposed && spatial.is_empty(),
                })
        })
}

impl CeCase {
    fn input(&self) -> Tensor {
        let mut shape = vec![self.n, self.c];
        shape.extend(&self.spatial);
        if self.transposed {
            // The same values seen through a transposed (non-contiguous) layout.
            let mut tv = vec![0.0; self.x.len()];
            for i in 0..self.n {
                for k in 0..self.c {
                    tv[k * self.n + i] = self.x[i * self.c + k];
                }
            }
            Tensor::from_vec(tv, [self.c, self.n]).requires_grad_(true)
        } else {
            Tensor::from_vec(self.x.clone(), shape).requires_grad_(true)
        }
    }
    fn view(&self, leaf: &Tensor) -> Tensor {
        if self.transposed {
            leaf.t()
        } else {
            leaf.clone()
        }
    }
    fn target(&self) -> Tensor {
        match &self.probs {
            Some(p) => {
                let mut shape = vec![self.n, self.c];
                shape.extend(&self.spatial);
                Tensor::from_vec(p.clone(), shape)
            }
            None => {
                let mut shape = vec![self.n];
                shape.extend(&self.spatial);
                Tensor::from_vec(self.target.clone(), shape)
            }
        }
    }
    fn loss(&self, r: Reduction) -> CrossEntropyLoss {
        let mut l = CrossEntropyLoss::new()
            .reduction(r)
            .label_smoothing(self.eps);
        if let Some(w) = &self.weight {
            l = l.weight(&Tensor::from_vec(w.clone(), [self.c]));
        }
        l
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn cross_entropy_matches_reference(case in ce_case()) {
        let inner: usize = case.spatial.iter().product();
        let (rows, div) = ce_reference(
            &case.x, case.n, case.c, inner, &case.target, case.probs.as_deref(),
            case.weight.as_deref(), -100, case.eps,
        );
        for r in REDUCTIONS {
            let leaf = case.input();
            let out = case.loss(r).forward(&case.view(&leaf), &case.target());
            let got = out.to_vec::<f64>();
            let want = match r {
                Reduction::None => rows.clone(),
                Reduction::Sum => vec![rows.iter().sum()],
                _ => vec![rows.iter().sum::<f64>() / div],
            };
            prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                prop_assert!((g - w).abs() <= 1e-9 * (1.0 + w.abs()) || (g.is_nan() && w.is_nan()),
                    "{:?}: got {} want {}", r, g, w);
            }
        }
    }

    #[test]
    fn cross_entropy_gradients(case in ce_case()) {
        let inner: usize = case.spatial.iter().product();
        let rows = case.n * inner;
        let counted = case.probs.is_some() || case.target.iter().any(|&t| t != -100);
        prop_assume!(counted && rows * case.c <= 24);
        for r in REDUCTIONS {
            let leaf = case.input();
            let t = case.target();
            let loss = case.loss(r);
            let transposed = case.transposed;
            let res = gradcheck(
                |v| loss.forward(&if transposed { v[0].t() } else { v[0].clone() }, &t),
                &[leaf],
                1e-6,
                1e-7,
                1e-5,
            );
            prop_assert!(res.is_ok(), "{:?}: {:?}", r, res);
        }
    }

    #[test]
    fn nll_matches_gather(
        n in 1usize..5, c in 1usize..5, seed in any::<u64>(), weighted in any::<bool>()
    ) {
        let mut s = seed;
        let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (s >> 33) as f64 / (1u64 << 31) as f64 };
        let x: Vec<f64> = (0..n * c).map(|_| next() * 4.0 - 2.0).collect();
        let t: Vec<i64> = (0..n).map(|_| if next() < 0.2 { -100 } else { (next() * c as f64) as i64 % c as i64 }).collect();
        let w: Vec<f64> = (0..c).map(|_| 0.5 + next()).collect();
        let wt = |k: usize| if weighted { w[k] } else { 1.0 };
        let mut total = 0.0;
        let mut div = 0.0;
        let mut rows = Vec::new();
        for i in 0..n {
            if t[i] == -100 { rows.push(0.0); continue; }
            let y = t[i] as usize;
            rows.push(-wt(y) * x[i * c + y]);
            total += -wt(y) * x[i * c + y];
            div += wt(y);
        }
        let mk = |r| {
            let mut l = NLLLoss::new().reduction(r);
            if weighted { l = l.weight(&Tensor::from_vec(w.clone(), [c])); }
            l
        };
        let xt = Tensor::from_vec(x.clone(), [n, c]);
        let tt = Tensor::from_vec(t.clone(), [n]);
        prop_assert_eq!(mk(Reduction::None).forward(&xt, &tt).to_vec::<f64>(), rows);
        prop_assert!((mk(Reduction::Sum).forward(&xt, &tt).item() - total).abs() < 1e-12);
        let mean = mk(Reduction::Mean).forward(&xt, &tt).item();
        prop_assert!((mean - total / div).abs() < 1e-12 || (mean.is_nan() && div == 0.0));
    }
}

#[test]
fn class_index_targets_of_every_integer_dtype() {
    let x = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.1, 0.2, 0.3], [2, 3]);
    let a = CrossEntropyLoss::new().forward(&x, &Tensor::from_slice(&[2i64, 0], [2]));
    let b = CrossEntropyLoss::new().forward(&x, &Tensor::from_slice(&[2u8, 0], [2]));
    assert_eq!(a.to_vec::<f32>(), b.to_vec::<f32>());
}

#[test]
fn cross_entropy_is_stable_for_huge_logits() {
    let x = Tensor::from_slice(&[1000.0f32, -1000.0, 0.0], [1, 3]);
    let l = CrossEntropyLoss::new().forward(&x, &Tensor::from_slice(&[1i64], [1]));
    assert_eq!(l.item(), 2000.0);
    let l = CrossEntropyLoss::new().forward(&x, &Tensor::from_slice(&[0i64], [1]));
    assert_eq!(l.item(), 0.0);
}

#[test]
fn one_dim_input_and_scalar_target() {
    let x = Tensor::from_slice(&[0.1f64, 6.0, -2.0, 3.2], [4]);
    let l = CrossEntropyLoss::new().forward(&x, &Tensor::scalar(2i64));
    assert_eq!(l.shape(), &[] as &[usize]);
    assert!((l.item() - 8.0619).abs() < 1e-4);
    let none = CrossEntropyLoss::new()
        .reduction(Reduction::None)
        .forward(&x, &Tensor::scalar(2i64));
    assert_eq!(none.shape(), &[] as &[usize]);
}

#[test]
fn fused_backward_node_name() {
    let x = Tensor::from_slice(&[0.5f32, -1.0, 2.0], [1, 3]).requires_grad_(true);
    let l = CrossEntropyLoss::new().forward(&x, &Tensor::from_slice(&[2i64], [1]));
    // One node for the whole loss: the fused op, not log_softmax + gather + mean.
    assert_eq!(l.grad_fn_name(), Some("NllLossBackward0"));
    l.backward();
    let g = x.grad().unwrap().to_vec::<f32>();
    assert!((g.iter().sum::<f32>()).abs() < 1e-6);
    assert!(g[2] < 0.0 && g[0] > 0.0 && g[1] > 0.0);
}

#[test]
fn all_ignored_mean_is_nan_like_pytorch() {
    let x = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.0], [2, 2]);
    let l = CrossEntropyLoss::new().forward(&x, &Tensor::from_slice(&[-100i64, -100], [2]));
    assert!(l.item().is_nan());
}

#[test]
#[should_panic(expected = "cross_entropy: target 7 is out of bounds")]
fn class_out_of_range_names_the_value() {
    let x = Tensor::zeros([2, 4]);
    CrossEntropyLoss::new().forward(&x, &Tensor::from_slice(&[1i64, 7], [2]));
}

#[test]
#[should_panic(expected = "nll_loss: target -3 is out of bounds")]
fn nll_negative_class() {
    let x = Tensor::zeros([2, 4]);
    NLLLoss::new().forward(&x, &Tensor::from_slice(&[1i64, -3], [2]));
}

#[test]
#[should_panic(
    expected = "cross_entropy: expected a target of shape [2] (class indices) or [2, 4] (class probabilities, floating point) for an input of shape [2, 4], got a target of shape [3]"
)]
fn wrong_target_shape_names_the_shapes() {
    CrossEntropyLoss::new().forward(
        &Tensor::zeros([2, 4]),
        &Tensor::from_slice(&[1i64, 0, 2], [3]),
    );
}

#[test]
#[should_panic(expected = "cross_entropy: expected class-index targets of an integer dtype")]
fn float_class_targets_name_the_dtype() {
    CrossEntropyLoss::new().forward(
        &Tensor::zeros([2, 4]),
        &Tensor::from_slice(&[1.0f32, 0.0], [2]),
    );
}

#[test]
#[should_panic(
    expected = "nll_loss: expected a target of shape [2] (class indices) for an input of shape [2, 4], got a target of shape [2, 4]"
)]
fn nll_rejects_probabilities() {
    NLLLoss::new().forward(&Tensor::zeros([2, 4]), &Tensor::zeros([2, 4]));
}

#[test]
#[should_panic(expected = "cross_entropy: weight must be a 1-D tensor of 4 elements")]
fn wrong_weight_shape() {
    CrossEntropyLoss::new()
        .weight(&Tensor::ones([3]))
        .forward(&Tensor::zeros([2, 4]), &Tensor::from_slice(&[1i64, 0], [2]));
}

#[test]
#[should_panic(expected = "mse_loss: target shape [3] does not match input shape [3, 1]")]
fn mse_shape_mismatch() {
    MSELoss::new().forward(&Tensor::zeros([3, 1]), &Tensor::zeros([3]));
}

#[test]
#[should_panic(expected = "mse_loss: expected a floating-point target, got int64")]
fn mse_integer_target() {
    MSELoss::new().forward(&Tensor::zeros([3]), &Tensor::from_slice(&[1i64, 2, 3], [3]));
}

#[test]
#[should_panic(expected = "binary_cross_entropy: all elements of input should be between 0 and 1")]
fn bce_checks_its_input_range() {
    BCELoss::new().forward(&Tensor::full([2], 1.5), &Tensor::zeros([2]));
}

#[test]
#[should_panic(expected = "mse_loss: reduction 'batchmean' is only supported by kl_div")]
fn batchmean_only_for_kl() {
    MSELoss::new()
        .reduction(Reduction::BatchMean)
        .forward(&Tensor::zeros([2]), &Tensor::zeros([2]));
}

#[test]
fn reductions_parse_like_pytorch() {
    assert_eq!("sum".parse::<Reduction>(), Ok(Reduction::Sum));
    assert!("avg".parse::<Reduction>().is_err());
    assert_eq!(Reduction::default(), Reduction::Mean);
    let l = MSELoss::new()
        .reduction(Reduction::None)
        .forward(&Tensor::zeros([2, 3]), &Tensor::ones([2, 3]));
    assert_eq!(l.shape(), &[2, 3]);
    assert_eq!(l.dtype(), DType::F32);
}

/// The gradient of a loss with `create_graph`, as a function that gradcheck can differentiate
/// again (its numeric passes run under no_grad, so grad mode is switched back on inside).
fn grad_of(loss: impl Fn(&Tensor) -> Tensor) -> impl Fn(&[Tensor]) -> Tensor {
    move |v: &[Tensor]| {
        let _g = ember_autograd::grad_mode(true);
        let x = if v[0].requires_grad() {
            v[0].clone()
        } else {
            v[0].detach().requires_grad_(true)
        };
        let l = loss(&x);
        let w = Tensor::from_vec(
            (0..l.numel())
                .map(|i| 1.0 + i as f64 * 0.5)
                .collect::<Vec<f64>>(),
            l.shape(),
        );
        ember_autograd::autograd::grad(&[(&l * &w).sum()], &[x], None, true, true)[0]
            .clone()
            .unwrap()
    }
}

#[test]
fn second_derivatives_through_the_fused_losses() {
    let x = Tensor::from_slice(
        &[
            0.3f64, -1.2, 0.8, 2.0, -0.4, 0.1, 1.3, -0.9, 0.5, 0.0, -0.3, 0.7,
        ],
        [2, 3, 2],
    )
    .requires_grad_(true);
    let w = Tensor::from_slice(&[0.5f64, 2.0, 1.5], [3]);
    let idx = Tensor::from_slice(&[2i64, -100, 0, 1], [2, 2]);
    let soft = Tensor::from_slice(
        &[
            0.1f64, 0.2, 0.3, 0.4, 0.6, 0.4, 0.25, 0.25, 0.5, 0.0, 0.25, 0.5,
        ],
        [2, 3, 2],
    );
    for r in REDUCTIONS {
        // The differentiable (create_graph) gradient equals the fused one.
        type LossFn<'a> = Box<dyn Fn(&Tensor) -> Tensor + 'a>;
        let losses: Vec<LossFn> = vec![
            Box::new(|x: &Tensor| {
                CrossEntropyLoss::new()
                    .weight(&w)
                    .label_smoothing(0.3)
                    .reduction(r)
                    .forward(x, &idx)
            }),
            Box::new(|x: &Tensor| {
                CrossEntropyLoss::new()
                    .weight(&w)
                    .label_smoothing(0.1)
                    .reduction(r)
                    .forward(x, &soft)
            }),
            Box::new(|x: &Tensor| NLLLoss::new().weight(&w).reduction(r).forward(x, &idx)),
        ];
        for f in &losses {
            let l = f(&x);
            let seed = Tensor::from_vec(
                (0..l.numel()).map(|i| 1.0 + i as f64).collect::<Vec<f64>>(),
                l.shape(),
            );
            let (ls, xs, ss) = (
                std::slice::from_ref(&l),
                std::slice::from_ref(&x),
                std::slice::from_ref(&seed),
            );
            let fused = ember_autograd::autograd::grad(ls, xs, Some(ss), true, false);
            let composed = ember_autograd::autograd::grad(ls, xs, Some(ss), false, true);
            let (a, b) = (fused[0].as_ref().unwrap(), composed[0].as_ref().unwrap());
            assert!(
                a.allclose(b, 1e-12, 1e-12),
                "{r:?}: {:?} vs {:?}",
                a.to_vec::<f64>(),
                b.to_vec::<f64>()
            );
        }
        check(
            "cross_entropy''",
            grad_of(|x| {
                CrossEntropyLoss::new()
                    .weight(&w)
                    .label_smoothing(0.3)
                    .reduction(r)
                    .forward(x, &idx)
            }),
            std::slice::from_ref(&x),
        );
        check(
            "cross_entropy'' probs",
            grad_of(|x| {
                CrossEntropyLoss::new()
                    .weight(&w)
                    .label_smoothing(0.1)
                    .reduction(r)
                    .forward(x, &soft)
            }),
            std::slice::from_ref(&x),
        );
        // NLL is linear in its input: the first derivative must still come out right.
        check(
            "nll'",
            grad_of(|x| {
                &NLLLoss::new().weight(&w).reduction(r).forward(x, &idx) * &(x.sum() * 0.5)
            }),
            std::slice::from_ref(&x),
        );
    }
}

#[test]
fn pointwise_targets_broadcast_only_to_the_input_shape() {
    let x = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2]).requires_grad_(true);
    // A [1, C] target is one row for every sample; a [1] target one value for every element.
    let row = Tensor::from_slice(&[0.5f64, 1.0], [1, 2]).requires_grad_(true);
    let l = MSELoss::new().forward(&x, &row);
    let want = MSELoss::new().forward(&x, &row.expand([3, 2]).contiguous());
    assert!((l.item() - want.item()).abs() < 1e-12);
    l.backward();
    // The target's gradient is summed back over the broadcast rows.
    let gx: Vec<f64> = x.grad().unwrap().to_vec();
    let grow: Vec<f64> = row.grad().unwrap().to_vec();
    assert_eq!(grow.len(), 2);
    assert!((grow[0] + (gx[0] + gx[2] + gx[4])).abs() < 1e-12);
    let one = Tensor::from_slice(&[2.0f64], [1]);
    for loss in [
        L1Loss::new().forward(&x, &one),
        SmoothL1Loss::new().forward(&x, &one),
        HuberLoss::new().forward(&x, &one),
    ] {
        assert_eq!(loss.shape(), &[] as &[usize]);
    }
}

#[test]
#[should_panic(
    expected = "mse_loss: target shape [3] does not match input shape [3, 1] (broadcasting them would give shape [3, 3], not the input's); reshape the target to the input's shape, e.g. target.unsqueeze(1) or target.view_as(&input)"
)]
fn a_target_that_would_widen_the_input_panics_with_the_fix() {
    let pred = Tensor::zeros([3, 1]);
    MSELoss::new().forward(&pred, &Tensor::ones([3]));
}

#[test]
#[should_panic(expected = "binary_cross_entropy: all elements of input should be between 0 and 1")]
fn bce_refuses_inputs_outside_the_unit_interval() {
    let x = Tensor::from_slice(&[0.5f32, f32::NAN], [2]);
    BCELoss::new().forward(&x, &Tensor::zeros([2]));
}

#[test]
fn loss_nodes_carry_pytorchs_grad_fn_names_for_every_reduction() {
    // PyTorch 2.x: print(F.<loss>(x, y, reduction=r).grad_fn) for r in mean, sum, none.
    let x = Tensor::from_slice(&[0.3f64, -1.2, 0.8, 2.0, -0.4, 0.1], [2, 3]).requires_grad_(true);
    let y = Tensor::from_slice(&[0.1f64, -1.0, 2.0, 1.0, 0.0, 0.1], [2, 3]);
    let p = Tensor::from_slice(&[0.3f64, 0.2, 0.8, 0.9, 0.4, 0.1], [2, 3]).requires_grad_(true);
    let q = Tensor::from_slice(&[0.0f64, 1.0, 1.0, 0.5, 0.0, 0.2], [2, 3]);
    let c = Tensor::from_slice(&[0i64, 2], [2]);
    for r in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        let name = |l: Tensor| l.grad_fn_name().unwrap();
        assert_eq!(
            name(MSELoss::new().reduction(r).forward(&x, &y)),
            "MseLossBackward0"
        );
        assert_eq!(
            name(SmoothL1Loss::new().reduction(r).forward(&x, &y)),
            "SmoothL1LossBackward0"
        );
        assert_eq!(
            name(SmoothL1Loss::new().beta(0.0).reduction(r).forward(&x, &y)),
            "SmoothL1LossBackward0"
        );
        assert_eq!(
            name(HuberLoss::new().reduction(r).forward(&x, &y)),
            "HuberLossBackward0"
        );
        assert_eq!(
            name(BCELoss::new().reduction(r).forward(&p, &q)),
            "BinaryCrossEntropyBackward0"
        );
        assert_eq!(
            name(BCEWithLogitsLoss::new().reduction(r).forward(&x, &q)),
            "BinaryCrossEntropyWithLogitsBackward0"
        );
        assert_eq!(
            name(NLLLoss::new().reduction(r).forward(&x, &c)),
            "NllLossBackward0"
        );
        assert_eq!(
            name(CrossEntropyLoss::new().reduction(r).forward(&x, &c)),
            "NllLossBackward0"
        );
    }
    // L1Loss and KLDivLoss are composed in PyTorch 2.x: the reduction's node comes last.
    assert_eq!(
        L1Loss::new().forward(&x, &y).grad_fn_name(),
        Some("MeanBackward0")
    );
    assert_eq!(
        L1Loss::new()
            .reduction(Reduction::Sum)
            .forward(&x, &y)
            .grad_fn_name(),
        Some("SumBackward0")
    );
    assert_eq!(
        L1Loss::new()
            .reduction(Reduction::None)
            .forward(&x, &y)
            .grad_fn_name(),
        Some("AbsBackward0")
    );
}

/// A loss as a function of input and target.
type LossFn = dyn Fn(&Tensor, &Tensor) -> Tensor;

#[test]
fn fused_pointwise_losses_differentiate_input_and_broadcast_target_twice() {
    let x = Tensor::from_slice(&[0.3f64, -1.2, 0.8, 2.0, -0.4, 0.1], [2, 3]).requires_grad_(true);
    // A target that broadcasts to the input, requiring grad: its gradient is summed back.
    let row = Tensor::from_slice(&[0.1f64, -1.0, 0.35], [1, 3]).requires_grad_(true);
    for r in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        let losses: [Box<LossFn>; 4] = [
            Box::new(move |a, b| MSELoss::new().reduction(r).forward(a, b)),
            Box::new(move |a, b| SmoothL1Loss::new().beta(0.5).reduction(r).forward(a, b)),
            Box::new(move |a, b| SmoothL1Loss::new().beta(0.0).reduction(r).forward(a, b)),
            Box::new(move |a, b| HuberLoss::new().delta(0.7).reduction(r).forward(a, b)),
        ];
        for f in &losses {
            let l = f(&x, &row);
            assert_eq!(
                l.grad_fn_name().map(|n| n.ends_with("LossBackward0")),
                Some(true)
            );
            gradcheck(
                |v| f(&v[0], &v[1]),
                &[x.clone(), row.clone()],
                1e-6,
                1e-5,
                1e-4,
            )
            .unwrap();
            gradgradcheck(
                |v| f(&v[0], &v[1]),
                &[x.clone(), row.clone()],
                1e-6,
                1e-5,
                1e-4,
            )
            .unwrap();
        }
    }
}
