//! Property tests: every differentiable op passes `gradcheck` and `gradgradcheck` (f64, central
//! differences of the op and of its first derivative) at random shapes, including broadcast and
//! non-contiguous (transposed, stepped, expanded) inputs. `every_node_is_second_order_checked`
//! runs each property once on fixed inputs and demands that every node name the op sources
//! record went through `gradgradcheck` (convolutions and pooling: `tests/conv.rs`).

use ember_autograd::gradcheck::{gradcheck, gradgradcheck};
use ember_autograd::{DType, Generator, LossReduction, Tensor};
use ember_testkit::second_order::{assert_every_node_checked, note_nodes};
use proptest::prelude::*;

/// A named unary op under test.
type UnaryFn = Box<dyn Fn(&Tensor) -> Tensor>;

/// A property's body, on a shape and values for it.
type Case = fn(Vec<usize>, Vec<f64>) -> Result<(), TestCaseError>;

fn leaf(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape).requires_grad_(true)
}

/// A random shape of 1..=3 dims with sizes 1..=4 and values for it.
fn shaped() -> impl Strategy<Value = (Vec<usize>, Vec<f64>)> {
    prop::collection::vec(1usize..=4, 1..=3).prop_flat_map(|s| {
        let n: usize = s.iter().product();
        (Just(s), prop::collection::vec(-2.0f64..2.0, n))
    })
}

/// Values bounded away from zero (for log, sqrt, division, pow).
fn positive(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.3f64..2.0, n)
}

fn check(f: impl Fn(&[Tensor]) -> Tensor, inputs: Vec<Tensor>) -> Result<(), TestCaseError> {
    check_eps(f, inputs, 1e-6, 1e-5)
}

/// [`check`] with the finite-difference steps given (larger ones for ops that round to f32).
fn check_eps(
    f: impl Fn(&[Tensor]) -> Tensor,
    inputs: Vec<Tensor>,
    eps1: f64,
    eps2: f64,
) -> Result<(), TestCaseError> {
    gradcheck(&f, &inputs, eps1, 1e-5, 1e-3).map_err(TestCaseError::fail)?;
    gradgradcheck(&f, &inputs, eps2, 1e-4, 1e-3).map_err(TestCaseError::fail)?;
    note_nodes(&f, &inputs);
    Ok(())
}

/// Moves values off `kinks` (by 0.12) so a piecewise op is differentiable at every point.
fn off_kinks(v: &[f64], kinks: &[f64]) -> Vec<f64> {
    v.iter()
        .map(|x| {
            if kinks.iter().any(|k| (x - k).abs() < 0.05) {
                x + 0.12
            } else {
                *x
            }
        })
        .collect()
}

fn unary_ops(shape: Vec<usize>, v: Vec<f64>) -> Result<(), TestCaseError> {
    let x = leaf(&v, &shape);
    let ops: Vec<(&str, UnaryFn)> = vec![
        ("neg", Box::new(|t| t.neg())),
        ("exp", Box::new(|t| t.exp())),
        ("sin", Box::new(|t| t.sin())),
        ("cos", Box::new(|t| t.cos())),
        ("tanh", Box::new(|t| t.tanh())),
        ("sigmoid", Box::new(|t| t.sigmoid())),
        ("square", Box::new(|t| t.square())),
        ("gelu", Box::new(|t| t.gelu("none"))),
        ("gelu_tanh", Box::new(|t| t.gelu("tanh"))),
        ("silu", Box::new(|t| t.silu())),
        ("elu", Box::new(|t| t.elu(1.3))),
        ("pow3", Box::new(|t| t.pow(3.0))),
        ("mul_scalar", Box::new(|t| t * 2.5)),
        ("rsub", Box::new(|t| t.rsub(1.5))),
        ("softmax0", Box::new(|t| t.softmax(0))),
        ("log_softmax_last", Box::new(|t| t.log_softmax(-1))),
        ("logsumexp", Box::new(|t| t.logsumexp(0, false))),
        ("sum_dim", Box::new(|t| t.sum_dim(-1, true))),
        ("mean", Box::new(|t| t.mean())),
        // A copy of its own (PyTorch's clone) and a contiguous copy of a transposed view.
        ("copy", Box::new(|t| t.copy().square())),
        (
            "contiguous",
            Box::new(|t| t.transpose(0, -1).contiguous().sin()),
        ),
    ];
    for (name, op) in &ops {
        check(|a| op(&a[0]), vec![x.clone()])
            .map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
    }
    Ok(())
}

fn kinked_unary_ops(shape: Vec<usize>, v: Vec<f64>) -> Result<(), TestCaseError> {
    // Kinks (relu, abs, sign, clamp at 0 …) are avoided by nudging values off them.
    let v = off_kinks(&v, &[0.0]);
    let x = leaf(&v, &shape);
    check(|a| a[0].relu(), vec![x.clone()])?;
    check(|a| a[0].abs(), vec![x.clone()])?;
    check(|a| a[0].leaky_relu(0.1), vec![x.clone()])?;
    // sign's gradient is zero; times x² it gives x|x|, whose derivatives are not.
    check(|a| &a[0].sign() * &a[0].square(), vec![x.clone()])?;
    let x2 = leaf(&off_kinks(&v, &[-0.5, 0.7]), &shape);
    check(|a| a[0].clamp(Some(-0.5), Some(0.7)), vec![x2.clone()])?;
    check(|a| a[0].clamp_min(-0.5).square(), vec![x2.clone()])?;
    check(|a| a[0].clamp_max(0.7).square(), vec![x2])?;
    Ok(())
}

fn positive_domain_ops(shape: Vec<usize>, v: Vec<f64>) -> Result<(), TestCaseError> {
    let x = leaf(&v, &shape);
    check(|a| a[0].log(), vec![x.clone()])?;
    check(|a| a[0].log1p(), vec![x.clone()])?;
    check(|a| a[0].sqrt(), vec![x.clone()])?;
    check(|a| a[0].rsqrt(), vec![x.clone()])?;
    check(|a| a[0].reciprocal(), vec![x.clone()])?;
    check(|a| a[0].pow(0.5), vec![x.clone()])?;
    check(|a| 2.0 / &a[0], vec![x.clone()])?;
    Ok(())
}

/// Dtype conversions (ToCopyBackward0): through f32 and back. The function is quadratic, whose
/// central differences are exact at any step, so a large step keeps f32 rounding out of them.
fn conversions(shape: Vec<usize>, v: Vec<f64>) -> Result<(), TestCaseError> {
    let x = leaf(&v, &shape);
    check_eps(
        |a| a[0].to_dtype(DType::F32).square().double(),
        vec![x.clone()],
        0.1,
        0.1,
    )?;
    check_eps(|a| (&a[0].float() * &a[0]).double(), vec![x], 0.1, 0.1)
}

/// `(m, n, k)`, an `[m, n, k]` tensor's values and an `[n]` one's.
type BinaryCase = ([usize; 3], Vec<f64>, Vec<f64>);

fn binary_case() -> impl Strategy<Value = BinaryCase> {
    (1usize..=3, 1usize..=3, 1usize..=3).prop_flat_map(|(m, n, k)| {
        (
            Just([m, n, k]),
            prop::collection::vec(0.3f64..2.0, m * n * k),
            prop::collection::vec(0.3f64..2.0, n),
        )
    })
}

fn broadcasting_binary_ops((s, a, b): BinaryCase) -> Result<(), TestCaseError> {
    let x = leaf(&a, &s);
    let y = leaf(&b, &[s[1], 1]);
    check(|t| &t[0] + &t[1], vec![x.clone(), y.clone()])?;
    check(|t| &t[0] - &t[1], vec![x.clone(), y.clone()])?;
    check(|t| &t[0] * &t[1], vec![x.clone(), y.clone()])?;
    check(|t| &t[0] / &t[1], vec![x.clone(), y.clone()])?;
    check(|t| t[0].pow(&t[1]), vec![x.clone(), y.clone()])?;
    // Non-contiguous operands: a transposed view and a stepped slice.
    check(
        |t| &t[0].transpose(0, 2) * &t[1],
        vec![x.clone(), y.clone()],
    )?;
    check(
        |t| t[0].slice(2, 0, 3, 2).mul(&t[1]),
        vec![x.clone(), y.clone()],
    )?;
    check(
        |t| Tensor::where_cond(&t[0].gt(1.0), &t[0], &t[1]),
        vec![x.clone(), y.clone()],
    )?;
    Ok(())
}

fn views_and_reductions(shape: Vec<usize>, v: Vec<f64>) -> Result<(), TestCaseError> {
    let x = leaf(&v, &shape);
    let n = x.numel() as i64;
    check(
        |a| a[0].reshape([n]).unsqueeze(0).expand([2, n]),
        vec![x.clone()],
    )?;
    check(
        |a| a[0].flatten(0, -1).slice(0, 0, usize::MAX, 2),
        vec![x.clone()],
    )?;
    check(|a| a[0].sum(), vec![x.clone()])?;
    check(|a| a[0].mean_dim(0, false), vec![x.clone()])?;
    check(
        |a| {
            a[0].permute((0..a[0].dim()).rev().collect::<Vec<usize>>())
                .contiguous()
        },
        vec![x.clone()],
    )?;
    check(
        |a| a[0].unsqueeze(0).squeeze().reshape([n, 1]).t(),
        vec![x.clone()],
    )?;
    if x.numel() > 1 {
        check(|a| a[0].var_all(), vec![x.clone()])?;
        check(|a| a[0].std_all(), vec![x.clone()])?;
    }
    Ok(())
}

/// `(m, k, n)` and values for `[m, k]`, `[k, n]` and `[n]` operands.
type MatmulCase = ([usize; 3], Vec<f64>, Vec<f64>, Vec<f64>);

fn matmul_case() -> impl Strategy<Value = MatmulCase> {
    (1usize..=4, 1usize..=4, 1usize..=4).prop_flat_map(|(m, k, n)| {
        (
            Just([m, k, n]),
            prop::collection::vec(-1.0f64..1.0, m * k),
            prop::collection::vec(-1.0f64..1.0, k * n),
            prop::collection::vec(-1.0f64..1.0, n),
        )
    })
}

fn matmul_and_addmm(([m, k, n], a, b, c): MatmulCase) -> Result<(), TestCaseError> {
    let (x, w, bias) = (leaf(&a, &[m, k]), leaf(&b, &[k, n]), leaf(&c, &[n]));
    check(|t| t[0].matmul(&t[1]), vec![x.clone(), w.clone()])?;
    check(|t| t[1].t().matmul(&t[0].t()), vec![x.clone(), w.clone()])?;
    check(
        |t| t[2].addmm(&t[0], &t[1], 0.5, 2.0),
        vec![x.clone(), w.clone(), bias.clone()],
    )?;
    check(
        |t| t[0].unsqueeze(0).expand([2, m, k]).matmul(&t[1]),
        vec![x.clone(), w.clone()],
    )?;
    // A batch on both sides: the batched product.
    check(
        |t| {
            let b = t[1].unsqueeze(0).expand([2, k, n]);
            (&t[0].unsqueeze(0) * 1.5).expand([2, m, k]).matmul(&b)
        },
        vec![x.clone(), w.clone()],
    )?;
    Ok(())
}

fn indexing_ops(shape: Vec<usize>, v: Vec<f64>) -> Result<(), TestCaseError> {
    let x = leaf(&v, &shape);
    let d0 = shape[0];
    let idx = Tensor::from_vec(
        (0..d0 as i64).rev().chain(0..1).collect::<Vec<i64>>(),
        [d0 + 1],
    );
    check(|a| a[0].index_select(0, &idx), vec![x.clone()])?;
    check(
        |a| Tensor::cat(&[a[0].clone(), a[0].exp()], 0),
        vec![x.clone()],
    )?;
    check(
        |a| Tensor::stack(&[a[0].clone(), a[0].sin()], -1),
        vec![x.clone()],
    )?;
    let mask = x.detach().gt(0.0);
    check(|a| a[0].masked_fill(&mask, 0.5), vec![x.clone()])?;
    let g = Tensor::zeros_like(&x.detach()).long();
    check(|a| a[0].gather(0, &g), vec![x.clone()])?;
    check(
        |a| a[0].narrow(0, 0, 1).squeeze_dim(0).sum(),
        vec![x.clone()],
    )?;
    // scatter with distinct targets per column (source row r goes to row r + 1 mod d0), so the
    // result does not depend on the order of writes; the source has one row fewer than self
    // (when it can), so some of self survives and both get a gradient.
    let rows = d0.saturating_sub(1).max(1);
    let per_row: usize = shape[1..].iter().product();
    let mut src_shape = shape.clone();
    src_shape[0] = rows;
    let targets: Vec<i64> = (0..rows * per_row)
        .map(|k| ((k / per_row + 1) % d0) as i64)
        .collect();
    let at = Tensor::from_vec(targets, &src_shape[..]);
    let src = leaf(
        &(0..rows * per_row)
            .map(|k| 0.3 + 0.1 * k as f64)
            .collect::<Vec<f64>>(),
        &src_shape,
    );
    check(
        |a| a[0].scatter(0, &at, &a[1]).square(),
        vec![x.clone(), src.clone()],
    )?;
    check(
        |a| a[0].scatter_add(0, &at, &a[1].sin()).square(),
        vec![x.clone(), src],
    )?;
    Ok(())
}

/// Reductions with ties avoided (distinct values), elementwise extremes, erf, products.
fn extremes_products_and_special_functions(
    shape: Vec<usize>,
    v: Vec<f64>,
) -> Result<(), TestCaseError> {
    // Distinct values away from zero: no ties for max/min, no zero factors for prod.
    let v: Vec<f64> = v
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let y = x + 0.013 * i as f64;
            if y.abs() < 0.2 {
                y + 0.4
            } else {
                y
            }
        })
        .collect();
    let x = leaf(&v, &shape);
    let y = leaf(
        &v.iter().rev().map(|a| a * 0.7 + 0.05).collect::<Vec<f64>>(),
        &shape,
    );
    check(|a| a[0].erf(), vec![x.clone()])?;
    check(|a| a[0].prod(), vec![x.clone()])?;
    check(|a| a[0].prod_dim(0, false), vec![x.clone()])?;
    check(|a| a[0].amax(-1, true), vec![x.clone()])?;
    check(|a| a[0].amin(0, false).square(), vec![x.clone()])?;
    check(|a| a[0].min(), vec![x.clone()])?;
    check(|a| a[0].max().square(), vec![x.clone()])?;
    check(|a| a[0].max_dim(0, false).0, vec![x.clone()])?;
    check(|a| a[0].min_dim(-1, true).0.square(), vec![x.clone()])?;
    check(|a| a[0].maximum(&a[1]), vec![x.clone(), y.clone()])?;
    check(|a| a[0].minimum(&a[1]), vec![x.clone(), y.clone()])?;
    check(|a| a[0].logsumexp(-1, true), vec![x.clone()])?;
    check(|a| a[0].var(0, false, true), vec![x.clone()])?;
    check(|a| 1.5 / &a[0], vec![x.clone()])?;
    check(
        |a| a[0].pow(2.5).rsub(0.0).exp(),
        vec![x.abs().detach().requires_grad_(true)],
    )?;
    let idx = Tensor::zeros_like(&x.detach()).long();
    check(
        |a| a[0].scatter_add(0, &idx, &a[1]),
        vec![x.clone(), y.clone()],
    )?;
    Ok(())
}

/// In-place ops inside a differentiated function: on a plain tensor (the op's own node) and on
/// a view (CopySlices), with tensor and scalar operands.
fn inplace_ops(shape: Vec<usize>, v: Vec<f64>) -> Result<(), TestCaseError> {
    let x = leaf(&v, &shape);
    let y = leaf(
        &v.iter().map(|a| a.abs() + 0.5).collect::<Vec<f64>>(),
        &shape,
    );
    check(
        |a| {
            let z = &a[0] * 2.0;
            z.narrow(0, 0, 1).mul_(a[0].narrow(0, 0, 1).sin());
            z.select(0, 0).add_(1.0);
            z.exp()
        },
        vec![x.clone()],
    )?;
    // Arithmetic in place on a plain tensor, tensor and scalar operands.
    check(
        |a| {
            let z = &a[0] * 1.0;
            z.add_(a[1].square());
            z.sub_(a[1].sin());
            z.mul_(1.5);
            z.div_(&a[1]);
            z.sub_(0.25);
            z.div_(2.0);
            z.add_(0.5);
            z.square()
        },
        vec![x.clone(), y.clone()],
    )?;
    // The same through a view of the first row.
    check(
        |a| {
            let z = &a[0] * 1.0;
            let r = z.narrow(0, 0, 1);
            r.sub_(a[1].narrow(0, 0, 1).square());
            r.div_(a[1].narrow(0, 0, 1));
            r.sub_(0.5);
            r.div_(3.0);
            z.square()
        },
        vec![x.clone(), y.clone()],
    )?;
    // Overwriting ops (zero gradient to the old value): fill_, copy_, random fills; on the
    // whole tensor and on a view. The random values come from a generator made in the closure,
    // so every evaluation draws the same numbers.
    check(
        |a| {
            let z = &a[0] * 1.0;
            z.fill_(0.5);
            let w = &a[0] * 1.0;
            w.narrow(0, 0, 1).fill_(-0.25);
            &(&z * &a[0]) + &w.square()
        },
        vec![x.clone()],
    )?;
    check(
        |a| {
            let z = &a[0] * 1.0;
            z.copy_(&a[1].sin());
            let w = &a[0] * 1.0;
            w.narrow(0, 0, 1).copy_(&a[1].narrow(0, 0, 1).square());
            &(&z * &a[0]) + &w.square()
        },
        vec![x.clone(), y.clone()],
    )?;
    check(
        |a| {
            let g = Generator::new(7);
            let (z, u, b) = (&a[0] * 1.0, &a[0] * 1.0, &a[0] * 1.0);
            z.normal_with_(0.0, 1.0, Some(&g));
            u.uniform_with_(-1.0, 1.0, Some(&g));
            b.bernoulli_with_(0.5, Some(&g));
            let w = &a[0] * 1.0;
            w.narrow(0, 0, 1).normal_with_(0.0, 1.0, Some(&g));
            &(&(&z + &u) + &b) * &a[0].square() + w.square()
        },
        vec![x.clone()],
    )?;
    // clamp_ in place, values off its bounds.
    let x2 = leaf(&off_kinks(&v, &[-0.5, 0.7]), &shape);
    check(
        |a| {
            let z = &a[0] * 1.0;
            z.clamp_(Some(-0.5), Some(0.7));
            let w = &a[0] * 1.0;
            w.narrow(0, 0, 1).clamp_(None, Some(0.7));
            &z.square() + &w.square()
        },
        vec![x2],
    )?;
    Ok(())
}

/// The fused class losses as Tensor ops (`nn`'s losses are checked in ember-nn's tests).
fn class_losses(shape: Vec<usize>, v: Vec<f64>) -> Result<(), TestCaseError> {
    // Rows of classes: (N, C) with N the first dim, C the rest.
    let n = shape[0];
    let c = v.len() / n;
    let x = leaf(&v, &[n, c]);
    let idx = Tensor::from_vec((0..n as i64).map(|i| i % c as i64).collect::<Vec<_>>(), [n]);
    let w = Tensor::from_vec((0..c).map(|k| 0.5 + k as f64).collect::<Vec<_>>(), [c]);
    for r in [LossReduction::None, LossReduction::Mean, LossReduction::Sum] {
        check(
            |a| a[0].cross_entropy(&idx, Some(&w), -100, 0.1, r),
            vec![x.clone()],
        )?;
        check(
            |a| a[0].log_softmax(1).nll_loss(&idx, Some(&w), -100, r),
            vec![x.clone()],
        )?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn unary_ops_pass((shape, v) in shaped()) {
        unary_ops(shape, v)?;
    }

    #[test]
    fn kinked_unary_ops_pass((shape, v) in shaped()) {
        kinked_unary_ops(shape, v)?;
    }

    #[test]
    fn positive_domain_ops_pass((shape, v) in shaped().prop_flat_map(|(s, _)| { let n: usize = s.iter().product(); (Just(s), positive(n)) })) {
        positive_domain_ops(shape, v)?;
    }

    #[test]
    fn conversions_pass((shape, v) in shaped()) {
        conversions(shape, v)?;
    }

    #[test]
    fn broadcasting_binary_ops_pass(case in binary_case()) {
        broadcasting_binary_ops(case)?;
    }

    #[test]
    fn views_and_reductions_pass((shape, v) in shaped()) {
        views_and_reductions(shape, v)?;
    }

    #[test]
    fn matmul_and_addmm_pass(case in matmul_case()) {
        matmul_and_addmm(case)?;
    }

    #[test]
    fn indexing_ops_pass((shape, v) in shaped()) {
        indexing_ops(shape, v)?;
    }

    #[test]
    fn extremes_products_and_special_functions_pass((shape, v) in shaped()) {
        extremes_products_and_special_functions(shape, v)?;
    }
}

proptest! {
    // Each case runs a dozen in-place pipelines: fewer cases keep the suite fast.
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn inplace_ops_pass((shape, v) in shaped()) {
        inplace_ops(shape, v)?;
    }

    #[test]
    fn class_losses_pass((shape, v) in shaped()) {
        class_losses(shape, v)?;
    }
}

/// Every node that `src/ops` (but for the convolutions and pooling, see `tests/conv.rs`),
/// `tensor.rs` and `graph.rs` record is gone through by one of the properties above: each runs
/// once here on fixed inputs and notes the nodes of its functions and of their first
/// derivatives. A new op without a second-order property fails this test.
#[test]
fn every_node_is_second_order_checked() {
    let shape = vec![3, 2];
    let v: Vec<f64> = (0..6)
        .map(|k| (0.35 + 0.17 * k as f64) * if k % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let pos: Vec<f64> = v.iter().map(|x| x.abs()).collect();
    let cases: [(&str, Case, &[f64]); 9] = [
        ("unary_ops", unary_ops, &v),
        ("kinked_unary_ops", kinked_unary_ops, &v),
        ("positive_domain_ops", positive_domain_ops, &pos),
        ("conversions", conversions, &v),
        ("views_and_reductions", views_and_reductions, &v),
        ("indexing_ops", indexing_ops, &v),
        ("extremes", extremes_products_and_special_functions, &v),
        ("inplace_ops", inplace_ops, &v),
        ("class_losses", class_losses, &v),
    ];
    for (name, case, values) in cases {
        case(shape.clone(), values.to_vec()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    broadcasting_binary_ops((
        [2, 3, 2],
        pos.iter().chain(&pos).copied().collect(),
        pos[..3].to_vec(),
    ))
    .unwrap();
    matmul_and_addmm(([2, 3, 2], v.clone(), v.clone(), v[..2].to_vec())).unwrap();

    let src = |f: &'static str, text: &'static str| (f, text);
    assert_every_node_checked(
        &[
            src("convert.rs", include_str!("../src/ops/convert.rs")),
            src("create.rs", include_str!("../src/ops/create.rs")),
            src("elementwise.rs", include_str!("../src/ops/elementwise.rs")),
            src("fused_optim.rs", include_str!("../src/ops/fused_optim.rs")),
            src("index.rs", include_str!("../src/ops/index.rs")),
            src("indexer.rs", include_str!("../src/ops/indexer.rs")),
            src("inplace.rs", include_str!("../src/ops/inplace.rs")),
            src("loss.rs", include_str!("../src/ops/loss.rs")),
            src("matmul.rs", include_str!("../src/ops/matmul.rs")),
            src("mod.rs", include_str!("../src/ops/mod.rs")),
            src("operand.rs", include_str!("../src/ops/operand.rs")),
            src("operators.rs", include_str!("../src/ops/operators.rs")),
            src("random.rs", include_str!("../src/ops/random.rs")),
            src("reduce.rs", include_str!("../src/ops/reduce.rs")),
            src("resize.rs", include_str!("../src/ops/resize.rs")),
            src("view.rs", include_str!("../src/ops/view.rs")),
            src("tensor.rs", include_str!("../src/tensor.rs")),
            src("graph.rs", include_str!("../src/graph.rs")),
        ],
        &[
            ("TripleBackward", "an op of graph.rs's own unit tests"),
            (
                "ClampMinBackward0",
                "binary_scalar's Maximum arm: no public op takes a scalar maximum",
            ),
            (
                "ClampMaxBackward0",
                "binary_scalar's Minimum arm: no public op takes a scalar minimum",
            ),
        ],
    );
}
