//! Property tests: every differentiable op passes `gradcheck` and `gradgradcheck` (f64, central
//! differences of the op and of its first derivative) at random shapes, including broadcast and
//! non-contiguous (transposed, stepped, expanded) inputs.

use ember_autograd::gradcheck::{gradcheck, gradgradcheck};
use ember_autograd::Tensor;
use proptest::prelude::*;

/// A named unary op under test.
type UnaryFn = Box<dyn Fn(&Tensor) -> Tensor>;

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
    gradcheck(&f, &inputs, 1e-6, 1e-5, 1e-3).map_err(TestCaseError::fail)?;
    gradgradcheck(&f, &inputs, 1e-5, 1e-4, 1e-3).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn unary_ops((shape, v) in shaped()) {
        let x = leaf(&v, &shape);
        // Kinks (relu, abs, clamp at 0 …) are avoided by nudging values off them.
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
        ];
        for (name, op) in &ops {
            check(|a| op(&a[0]), vec![x.clone()]).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
        }
    }

    #[test]
    fn kinked_unary_ops((shape, v) in shaped()) {
        let v: Vec<f64> = v.iter().map(|x| if x.abs() < 0.05 { x + 0.2 } else { *x }).collect();
        let x = leaf(&v, &shape);
        check(|a| a[0].relu(), vec![x.clone()])?;
        check(|a| a[0].abs(), vec![x.clone()])?;
        check(|a| a[0].leaky_relu(0.1), vec![x.clone()])?;
        let v2: Vec<f64> = v.iter().map(|x| if (x - 0.7).abs() < 0.05 || (x + 0.5).abs() < 0.05 { x + 0.12 } else { *x }).collect();
        check(|a| a[0].clamp(Some(-0.5), Some(0.7)), vec![leaf(&v2, &shape)])?;
    }

    #[test]
    fn positive_domain_ops((shape, v) in shaped().prop_flat_map(|(s, _)| { let n: usize = s.iter().product(); (Just(s), positive(n)) })) {
        let x = leaf(&v, &shape);
        check(|a| a[0].log(), vec![x.clone()])?;
        check(|a| a[0].log1p(), vec![x.clone()])?;
        check(|a| a[0].sqrt(), vec![x.clone()])?;
        check(|a| a[0].rsqrt(), vec![x.clone()])?;
        check(|a| a[0].reciprocal(), vec![x.clone()])?;
        check(|a| a[0].pow(0.5), vec![x.clone()])?;
        check(|a| 2.0 / &a[0], vec![x.clone()])?;
    }

    #[test]
    fn broadcasting_binary_ops(
        (s, a, b) in (1usize..=3, 1usize..=3, 1usize..=3).prop_flat_map(|(m, n, k)| {
            (Just(vec![m, n, k]), prop::collection::vec(0.3f64..2.0, m * n * k), prop::collection::vec(0.3f64..2.0, n))
        })
    ) {
        let x = leaf(&a, &s);
        let y = leaf(&b, &[s[1], 1]);
        check(|t| &t[0] + &t[1], vec![x.clone(), y.clone()])?;
        check(|t| &t[0] - &t[1], vec![x.clone(), y.clone()])?;
        check(|t| &t[0] * &t[1], vec![x.clone(), y.clone()])?;
        check(|t| &t[0] / &t[1], vec![x.clone(), y.clone()])?;
        check(|t| t[0].pow(&t[1]), vec![x.clone(), y.clone()])?;
        // Non-contiguous operands: a transposed view and a stepped slice.
        check(|t| &t[0].transpose(0, 2) * &t[1], vec![x.clone(), y.clone()])?;
        check(|t| t[0].slice(2, 0, 3, 2).mul(&t[1]), vec![x.clone(), y.clone()])?;
        check(|t| Tensor::where_cond(&t[0].gt(1.0), &t[0], &t[1]), vec![x.clone(), y.clone()])?;
    }

    #[test]
    fn views_and_reductions((shape, v) in shaped()) {
        let x = leaf(&v, &shape);
        let n = x.numel() as i64;
        check(|a| a[0].reshape([n]).unsqueeze(0).expand([2, n]), vec![x.clone()])?;
        check(|a| a[0].flatten(0, -1).slice(0, 0, usize::MAX, 2), vec![x.clone()])?;
        check(|a| a[0].sum(), vec![x.clone()])?;
        check(|a| a[0].mean_dim(0, false), vec![x.clone()])?;
        check(|a| a[0].permute((0..a[0].dim()).rev().collect::<Vec<usize>>()).contiguous(), vec![x.clone()])?;
        if x.numel() > 1 {
            check(|a| a[0].var_all(), vec![x.clone()])?;
            check(|a| a[0].std_all(), vec![x.clone()])?;
        }
    }

    #[test]
    fn matmul_and_addmm(
        (m, k, n, a, b, c) in (1usize..=4, 1usize..=4, 1usize..=4).prop_flat_map(|(m, k, n)| {
            (Just(m), Just(k), Just(n),
             prop::collection::vec(-1.0f64..1.0, m * k),
             prop::collection::vec(-1.0f64..1.0, k * n),
             prop::collection::vec(-1.0f64..1.0, n))
        })
    ) {
        let (x, w, bias) = (leaf(&a, &[m, k]), leaf(&b, &[k, n]), leaf(&c, &[n]));
        check(|t| t[0].matmul(&t[1]), vec![x.clone(), w.clone()])?;
        check(|t| t[1].t().matmul(&t[0].t()), vec![x.clone(), w.clone()])?;
        check(|t| t[2].addmm(&t[0], &t[1], 0.5, 2.0), vec![x.clone(), w.clone(), bias.clone()])?;
        check(|t| t[0].unsqueeze(0).expand([2, m, k]).matmul(&t[1]), vec![x.clone(), w.clone()])?;
    }

    #[test]
    fn indexing_ops((shape, v) in shaped()) {
        let x = leaf(&v, &shape);
        let d0 = shape[0];
        let idx = Tensor::from_vec((0..d0 as i64).rev().chain(0..1).collect::<Vec<i64>>(), [d0 + 1]);
        check(|a| a[0].index_select(0, &idx), vec![x.clone()])?;
        check(|a| Tensor::cat(&[a[0].clone(), a[0].exp()], 0), vec![x.clone()])?;
        check(|a| Tensor::stack(&[a[0].clone(), a[0].sin()], -1), vec![x.clone()])?;
        let mask = x.detach().gt(0.0);
        check(|a| a[0].masked_fill(&mask, 0.5), vec![x.clone()])?;
        let g = Tensor::zeros_like(&x.detach()).long();
        check(|a| a[0].gather(0, &g), vec![x.clone()])?;
        check(|a| a[0].narrow(0, 0, 1).squeeze_dim(0).sum(), vec![x.clone()])?;
    }

    /// Reductions with ties avoided (distinct values), elementwise extremes, erf, products.
    #[test]
    fn extremes_products_and_special_functions(
        (shape, v) in shaped().prop_map(|(s, v)| {
            // Distinct values away from zero: no ties for max/min, no zero factors for prod.
            let v: Vec<f64> = v.iter().enumerate().map(|(i, x)| {
                let y = x + 0.013 * i as f64;
                if y.abs() < 0.2 { y + 0.4 } else { y }
            }).collect();
            (s, v)
        })
    ) {
        let x = leaf(&v, &shape);
        let y = leaf(&v.iter().rev().map(|a| a * 0.7 + 0.05).collect::<Vec<f64>>(), &shape);
        check(|a| a[0].erf(), vec![x.clone()])?;
        check(|a| a[0].prod(), vec![x.clone()])?;
        check(|a| a[0].prod_dim(0, false), vec![x.clone()])?;
        check(|a| a[0].amax(-1, true), vec![x.clone()])?;
        check(|a| a[0].min(), vec![x.clone()])?;
        check(|a| a[0].max_dim(0, false).0, vec![x.clone()])?;
        check(|a| a[0].maximum(&a[1]), vec![x.clone(), y.clone()])?;
        check(|a| a[0].minimum(&a[1]), vec![x.clone(), y.clone()])?;
        check(|a| a[0].logsumexp(-1, true), vec![x.clone()])?;
        check(|a| a[0].var(0, false, true), vec![x.clone()])?;
        check(|a| 1.5 / &a[0], vec![x.clone()])?;
        check(|a| a[0].pow(2.5).rsub(0.0).exp(), vec![x.abs().detach().requires_grad_(true)])?;
        let idx = Tensor::zeros_like(&x.detach()).long();
        check(|a| a[0].scatter_add(0, &idx, &a[1]), vec![x.clone(), y.clone()])?;
    }

    /// In-place ops on views (CopySlices) inside a differentiated function.
    #[test]
    fn inplace_ops_through_views((shape, v) in shaped()) {
        let x = leaf(&v, &shape);
        check(|a| {
            let y = &a[0] * 2.0;
            y.narrow(0, 0, 1).mul_(a[0].narrow(0, 0, 1).sin());
            y.select(0, 0).add_(1.0);
            y.exp()
        }, vec![x.clone()])?;
    }
}
