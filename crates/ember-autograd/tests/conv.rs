//! Convolution and pooling ops: PyTorch parity (`parity/conv.json`, values and input gradients),
//! `gradcheck` and `gradgradcheck` of every op at random shapes, strides, paddings, dilations and
//! groups (f64), with a test that every node they record was second-order checked, strided
//! (channels-last) inputs, results identical on 1 and 2 threads, and PyTorch's messages for bad
//! arguments.

use ember_autograd::gradcheck::{gradcheck, gradgradcheck};
use ember_autograd::{DType, Generator, IntOrPair, Padding, Tensor};
use ember_testkit::second_order::{assert_every_node_checked, note_nodes};
use ember_testkit::{assert_close, cases, input, reduction_tol, tensor};
use proptest::prelude::*;
use serde_json::Value;

// ----- parity -----

fn pair(v: &Value) -> IntOrPair {
    match v {
        Value::Array(a) => IntOrPair::Pair(
            a[0].as_u64().unwrap() as usize,
            a[1].as_u64().unwrap() as usize,
        ),
        n => IntOrPair::Int(n.as_u64().unwrap() as usize),
    }
}

fn arg(args: &Value, k: &str, default: usize) -> IntOrPair {
    args.get(k).map_or(IntOrPair::Int(default), pair)
}

fn int(args: &Value, k: &str, default: usize) -> usize {
    args.get(k)
        .and_then(|v| v.as_u64())
        .map_or(default, |v| v as usize)
}

fn flag(args: &Value, k: &str) -> bool {
    args.get(k).and_then(|v| v.as_bool()).unwrap_or(false)
}

fn padding(args: &Value) -> Padding {
    match args.get("padding") {
        Some(Value::String(s)) => Padding::from(s.as_str()),
        Some(v) => Padding::Explicit(pair(v)),
        None => Padding::from(0),
    }
}

/// Runs the op named in a `conv.json` case on its inputs; returns all outputs.
fn run(op: &str, a: &Value, x: &[Tensor]) -> Vec<Tensor> {
    let bias = x.get(2);
    match op {
        "conv2d" => vec![x[0].conv2d(
            &x[1],
            bias,
            arg(a, "stride", 1),
            padding(a),
            arg(a, "dilation", 1),
            int(a, "groups", 1),
        )],
        "conv1d" => {
            let pad = match padding(a) {
                Padding::Explicit(p) => Padding::from(p.get()[1]),
                other => other,
            };
            vec![x[0].conv1d(
                &x[1],
                bias,
                int(a, "stride", 1),
                pad,
                int(a, "dilation", 1),
                int(a, "groups", 1),
            )]
        }
        "conv_transpose2d" => vec![x[0].conv_transpose2d(
            &x[1],
            bias,
            arg(a, "stride", 1),
            arg(a, "padding", 0),
            arg(a, "output_padding", 0),
            int(a, "groups", 1),
            arg(a, "dilation", 1),
        )],
        "max_pool2d" => {
            let stride = a.get("stride").map(pair);
            let (v, i) = x[0].max_pool2d_with_indices(
                arg(a, "kernel_size", 1),
                stride,
                arg(a, "padding", 0),
                arg(a, "dilation", 1),
                flag(a, "ceil_mode"),
            );
            if flag(a, "return_indices") {
                vec![v, i]
            } else {
                vec![v]
            }
        }
        "max_pool1d" => vec![x[0].max_pool1d(
            int(a, "kernel_size", 1),
            a.get("stride").and_then(|s| s.as_u64()).map(|s| s as usize),
            int(a, "padding", 0),
            int(a, "dilation", 1),
            flag(a, "ceil_mode"),
        )],
        "avg_pool2d" => vec![x[0].avg_pool2d(
            arg(a, "kernel_size", 1),
            a.get("stride").map(pair),
            arg(a, "padding", 0),
            flag(a, "ceil_mode"),
            a.get("count_include_pad")
                .and_then(|v| v.as_bool())
                .unwrap_or(true),
            a.get("divisor_override")
                .and_then(|v| v.as_u64())
                .map(|v| v as usize),
        )],
        "adaptive_avg_pool2d" => {
            let o = pair(&a["output_size"]).get();
            vec![x[0].adaptive_avg_pool2d(o)]
        }
        other => panic!("conv parity: op {other} not mapped"),
    }
}

#[test]
fn parity_with_pytorch() {
    let cs = cases("conv");
    assert!(cs.len() >= 20);
    for c in &cs {
        let name = c["name"].as_str().unwrap();
        let (leaves, xs): (Vec<Tensor>, Vec<Tensor>) =
            c["inputs"].as_array().unwrap().iter().map(input).unzip();
        let outs = run(c["op"].as_str().unwrap(), &c["args"], &xs);
        let wants: Vec<Value> = match &c["output"] {
            Value::Array(a) => a.clone(),
            v => vec![v.clone()],
        };
        assert_eq!(outs.len(), wants.len(), "{name}: number of outputs");
        for (k, (o, w)) in outs.iter().zip(&wants).enumerate() {
            let (atol, rtol) = reduction_tol(o.dtype());
            assert_close(&format!("conv/{name} output {k}"), o, w, atol, rtol);
        }
        outs[0].backward_with(&tensor(&c["grad_seed"]));
        for (k, (leaf, want)) in leaves
            .iter()
            .zip(c["grads"].as_array().unwrap())
            .enumerate()
        {
            if want.is_null() {
                continue;
            }
            let g = leaf
                .grad()
                .unwrap_or_else(|| panic!("conv/{name}: input {k} got no gradient"));
            let (atol, rtol) = reduction_tol(g.dtype());
            assert_close(&format!("conv/{name} grad {k}"), &g, want, atol, rtol);
        }
    }
}

// ----- gradient checks -----

fn leaf(shape: &[usize], seed: u64) -> Tensor {
    let g = Generator::new(seed);
    Tensor::normal_with(shape, 0.0, 1.0, DType::F64, Some(&g)).requires_grad_(true)
}

fn check(
    what: &str,
    f: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
) -> Result<(), TestCaseError> {
    gradcheck(f, inputs, 1e-6, 1e-6, 1e-4).map_err(|e| TestCaseError::fail(format!("{what}: {e}")))
}

/// [`check`], then `gradgradcheck` of `f(inputs)²`: squared, the gradient reaching the op's
/// backward depends on the inputs, so the backward's own backward runs (for the piecewise-linear
/// poolings `f` alone would have a constant first derivative and check nothing).
fn check_twice(
    what: &str,
    f: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
) -> Result<(), TestCaseError> {
    check(what, &f, inputs)?;
    let squared = |v: &[Tensor]| f(v).square();
    gradgradcheck(squared, inputs, 1e-5, 1e-5, 1e-4)
        .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
    note_nodes(squared, inputs);
    Ok(())
}

/// A random convolution: (n, groups, c_in per group, c_out per group, [h, w], [kh, kw], stride,
/// padding, dilation).
type ConvCase = (
    usize,
    usize,
    usize,
    usize,
    [usize; 2],
    [usize; 2],
    [usize; 2],
    [usize; 2],
    [usize; 2],
);

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1usize..3, 1usize..3, 1usize..3, 1usize..3),
        (1usize..4, 1usize..4, 1usize..3, 1usize..3),
        (0usize..2, 0usize..2, 1usize..3, 1usize..3),
        (0usize..3, 0usize..3),
    )
        .prop_map(
            |((n, g, cg, og), (kh, kw, sh, sw), (ph, pw, dh, dw), (eh, ew))| {
                let k = [kh, kw];
                let (p, d) = ([ph, pw], [dh, dw]);
                let hw = [0, 1]
                    .map(|i| (d[i] * (k[i] - 1) + 1).saturating_sub(2 * p[i]).max(1) + [eh, ew][i]);
                (n, g, cg, og, hw, k, [sh, sw], p, d)
            },
        )
}

fn conv2d_case(c: ConvCase, bias: bool, seed: u64) -> Result<(), TestCaseError> {
    let (n, g, cg, og, hw, k, s, p, d) = c;
    let x = leaf(&[n, g * cg, hw[0], hw[1]], seed);
    let w = leaf(&[g * og, cg, k[0], k[1]], seed + 1);
    let b = leaf(&[g * og], seed + 2);
    let mut inputs = vec![x, w];
    if bias {
        inputs.push(b);
    }
    let f = move |v: &[Tensor]| v[0].conv2d(&v[1], v.get(2), s, p, d, g);
    check_twice("conv2d", f, &inputs)
}

fn conv_transpose2d_case(c: ConvCase, op: usize, seed: u64) -> Result<(), TestCaseError> {
    let (n, g, cg, og, hw, k, s, p, d) = c;
    let out_pad = [0, 1].map(|i| op.min(s[i].max(d[i]) - 1));
    let x = leaf(&[n, g * cg, hw[0], hw[1]], seed);
    let w = leaf(&[g * cg, og, k[0], k[1]], seed + 1);
    let b = leaf(&[g * og], seed + 2);
    // Padding may not exceed the full output; clip it for small inputs.
    let full = [0, 1].map(|i| (hw[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 + out_pad[i]);
    let p = [0, 1].map(|i| p[i].min((full[i] - 1) / 2));
    let f = move |v: &[Tensor]| v[0].conv_transpose2d(&v[1], Some(&v[2]), s, p, out_pad, g, d);
    check_twice("conv_transpose2d", f, &[x, w, b])
}

/// `[n, c_in, c_out, kernel, extra length, stride]`, `"same"` padding or not, a seed.
fn conv1d_case(
    [n, c, o, k, l, stride]: [usize; 6],
    same: bool,
    seed: u64,
) -> Result<(), TestCaseError> {
    let x = leaf(&[n, c, k + l], seed);
    let w = leaf(&[o, c, k], seed + 1);
    let b = leaf(&[o], seed + 2);
    let (stride, pad) = if same {
        (1, Padding::Same)
    } else {
        (stride, Padding::from(k / 2))
    };
    let f = move |v: &[Tensor]| v[0].conv1d(&v[1], Some(&v[2]), stride, pad, 1, 1);
    check_twice("conv1d", f, &[x, w.clone(), b.clone()])?;
    // Unbatched input.
    check_twice("conv1d unbatched", f, &[leaf(&[c, k + l], seed + 3), w, b])
}

/// `[n, c, h, w, kernel, stride, padding, dilation]`, `ceil_mode`, a seed.
fn pooling_case(
    [n, c, h, w, k, s, pad, dil]: [usize; 8],
    ceil: bool,
    seed: u64,
) -> Result<(), TestCaseError> {
    let k = k.min(h).min(w).max(1);
    let pad = pad.min(k / 2);
    // Distinct values keep every window's maximum unique, so the max is differentiable.
    let x = {
        let g = Generator::new(seed);
        let perm = Tensor::randperm_with(n * c * h * w, Some(&g)).to_dtype(DType::F64);
        (perm * 0.1)
            .reshape([n, c, h, w])
            .detach()
            .requires_grad_(true)
    };
    let x = std::slice::from_ref(&x);
    let dil = if (k - 1) * dil + 1 > h.min(w) + 2 * pad {
        1
    } else {
        dil
    };
    let mp = move |v: &[Tensor]| v[0].max_pool2d(k, Some(s.into()), pad, dil, ceil);
    check_twice("max_pool2d", mp, x)?;
    let ap = move |v: &[Tensor]| v[0].avg_pool2d(k, Some(s.into()), pad, ceil, !ceil, None);
    check_twice("avg_pool2d", ap, x)?;
    let ap_div = move |v: &[Tensor]| v[0].avg_pool2d(k, None, pad, ceil, ceil, Some(3));
    check_twice("avg_pool2d divisor_override", ap_div, x)?;
    let (oh, ow) = (1 + h % 3, 1 + w % 4);
    let aap = move |v: &[Tensor]| v[0].adaptive_avg_pool2d((oh, ow));
    check_twice("adaptive_avg_pool2d", aap, x)?;
    let amp = move |v: &[Tensor]| v[0].adaptive_max_pool2d((oh, ow));
    check_twice("adaptive_max_pool2d", amp, x)?;
    let x1 = x[0].detach().reshape([n, c * h, w]).requires_grad_(true);
    let mp1 = move |v: &[Tensor]| v[0].max_pool1d(k, Some(s), pad, 1, ceil);
    check_twice("max_pool1d", mp1, &[x1])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_gradcheck(c in conv_case(), bias in any::<bool>(), seed in 0u64..1000) {
        conv2d_case(c, bias, seed)?;
    }

    #[test]
    fn conv_transpose2d_gradcheck(c in conv_case(), op in 0usize..2, seed in 0u64..1000) {
        conv_transpose2d_case(c, op, seed)?;
    }

    #[test]
    fn conv1d_gradcheck(n in 1usize..3, c in 1usize..4, o in 1usize..3, k in 1usize..4, l in 0usize..5,
                        stride in 1usize..3, same in any::<bool>(), seed in 0u64..1000) {
        conv1d_case([n, c, o, k, l, stride], same, seed)?;
    }

    #[test]
    fn pooling_gradcheck(n in 1usize..3, c in 1usize..3, h in 2usize..7, w in 2usize..7,
                         k in 1usize..4, s in 1usize..3, pad in 0usize..2, dil in 1usize..3,
                         ceil in any::<bool>(), seed in 0u64..1000) {
        pooling_case([n, c, h, w, k, s, pad, dil], ceil, seed)?;
    }
}

/// Every node `src/ops/conv.rs` and `src/ops/pool.rs` record goes through `gradgradcheck`:
/// the properties above, once each on fixed arguments, note the nodes they checked.
#[test]
fn every_conv_and_pool_node_is_second_order_checked() {
    let conv = (2, 2, 2, 1, [4, 5], [2, 3], [2, 1], [1, 0], [1, 2]);
    conv2d_case(conv, true, 1).unwrap();
    conv_transpose2d_case(conv, 1, 2).unwrap();
    conv1d_case([2, 2, 2, 3, 2, 2], false, 3).unwrap();
    conv1d_case([1, 2, 1, 2, 1, 1], true, 4).unwrap();
    pooling_case([2, 2, 5, 6, 3, 2, 1, 1], true, 5).unwrap();
    pooling_case([1, 2, 4, 4, 2, 1, 0, 2], false, 6).unwrap();
    assert_every_node_checked(
        &[
            ("conv.rs", include_str!("../src/ops/conv.rs")),
            ("pool.rs", include_str!("../src/ops/pool.rs")),
        ],
        &[],
    );
}

/// A 1×1 transposed convolution whose output padding (allowed by the dilation) makes the output
/// larger than the input: the extra row and column hold only the bias, forward and backward.
/// Found by `conv_transpose2d_gradcheck`; the kernel once read such an input as pointwise.
#[test]
fn pointwise_transposed_convolution_with_output_padding() {
    let x = Tensor::from_slice(&[2.0f64, 3.0, 4.0, 5.0], [1, 1, 2, 2]).requires_grad_(true);
    let w = Tensor::from_slice(&[1.5f64], [1, 1, 1, 1]).requires_grad_(true);
    let b = Tensor::from_slice(&[0.25f64], [1]).requires_grad_(true);
    let y = x.conv_transpose2d(&w, Some(&b), 1, 0, 1, 1, 2);
    assert_eq!(y.shape(), &[1, 1, 3, 3]);
    #[rustfmt::skip]
    let want = [3.25, 4.75, 0.25, 6.25, 7.75, 0.25, 0.25, 0.25, 0.25];
    assert_eq!(y.to_vec::<f64>(), want);
    let f = |v: &[Tensor]| v[0].conv_transpose2d(&v[1], Some(&v[2]), 1, 0, 1, 1, 2);
    check_twice("conv_transpose2d pointwise", f, &[x, w, b]).unwrap();
}

// ----- strides, threads -----

/// A channels-last input (a permuted view) gives the same values and gradients as its contiguous
/// copy, without the caller copying.
#[test]
fn channels_last_inputs_need_no_copy() {
    let g = Generator::new(5);
    let nhwc = Tensor::normal_with([2, 6, 5, 4], 0.0, 1.0, DType::F32, Some(&g));
    let x = nhwc.permute([0, 3, 1, 2]).requires_grad_(false);
    assert!(!x.is_contiguous());
    let xc = x.contiguous();
    let w = Tensor::normal_with([6, 2, 3, 3], 0.0, 1.0, DType::F32, Some(&g)).requires_grad_(true);
    let run = |x: &Tensor| {
        let x = x.detach().requires_grad_(true);
        let y = x
            .conv2d(&w, None, 1, 1, 1, 2)
            .max_pool2d(2, None, 0, 1, true)
            .relu();
        let z = y
            .avg_pool2d(2, Some(1.into()), 1, false, false, None)
            .adaptive_avg_pool2d(1);
        z.sum().backward();
        (z.to_vec::<f32>(), x.grad().unwrap().to_vec::<f32>())
    };
    let (a, b) = (run(&x), run(&xc));
    for (u, v) in a.0.iter().zip(&b.0).chain(a.1.iter().zip(&b.1)) {
        assert!((u - v).abs() <= 1e-5 * (1.0 + v.abs()), "{u} vs {v}");
    }
}

/// The layer sizes of the MNIST CNN, forward and backward, give bit-identical results on one
/// and two threads (the weight gradient sums fixed batch chunks in order).
#[test]
fn one_and_two_threads_agree_exactly() {
    let run = || {
        let g = Generator::new(9);
        let x = Tensor::normal_with([16, 8, 14, 14], 0.0, 1.0, DType::F32, Some(&g))
            .requires_grad_(true);
        let w =
            Tensor::normal_with([16, 8, 3, 3], 0.0, 1.0, DType::F32, Some(&g)).requires_grad_(true);
        let b = Tensor::normal_with([16], 0.0, 1.0, DType::F32, Some(&g)).requires_grad_(true);
        let y = x
            .conv2d(&w, Some(&b), 1, 1, 1, 1)
            .relu()
            .max_pool2d(2, None, 0, 1, false);
        let t = x.conv_transpose2d(&w.transpose(0, 1), None, 2, 1, 1, 1, 1);
        (y.sum() + t.square().sum()).backward();
        [
            y,
            t,
            x.grad().unwrap(),
            w.grad().unwrap(),
            b.grad().unwrap(),
        ]
        .map(|t| t.to_vec::<f32>())
    };
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    assert_eq!(pool(1).install(run), pool(2).install(run));
}

// ----- bad arguments -----

fn x4() -> Tensor {
    Tensor::zeros([2, 3, 5, 5])
}

#[test]
#[should_panic(
    expected = "conv2d: Given groups=2, weight of size [4, 2, 3, 3], expected input[2, 3, 5, 5] to have 4 channels, but got 3 channels instead"
)]
fn channels_not_divisible_by_groups() {
    x4().conv2d(&Tensor::zeros([4, 2, 3, 3]), None, 1, 0, 1, 2);
}

#[test]
#[should_panic(
    expected = "conv2d: Calculated padded input size per channel: (5 x 5). Kernel size: (7 x 7). Kernel size can't be greater than actual input size"
)]
fn kernel_larger_than_padded_input() {
    x4().conv2d(&Tensor::zeros([4, 3, 7, 7]), None, 1, 0, 1, 1);
}

#[test]
#[should_panic(
    expected = "conv2d: Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [1, 2, 3, 5, 5]"
)]
fn wrong_input_rank() {
    Tensor::zeros([1, 2, 3, 5, 5]).conv2d(&Tensor::zeros([4, 3, 3, 3]), None, 1, 0, 1, 1);
}

#[test]
#[should_panic(
    expected = "conv2d: Given weight of size [4, 3, 3, 3], expected bias to be 1-dimensional with 4 elements, but got bias of size [3] instead"
)]
fn wrong_bias() {
    x4().conv2d(
        &Tensor::zeros([4, 3, 3, 3]),
        Some(&Tensor::zeros([3])),
        1,
        0,
        1,
        1,
    );
}

#[test]
#[should_panic(
    expected = "conv2d: Input type (float64) and weight type (float32) should be the same"
)]
fn mixed_dtypes() {
    x4().double()
        .conv2d(&Tensor::zeros([4, 3, 3, 3]), None, 1, 0, 1, 1);
}

#[test]
#[should_panic(expected = "padding='same' is not supported for strided convolutions")]
fn same_padding_with_stride() {
    x4().conv2d(&Tensor::zeros([4, 3, 3, 3]), None, 2, "same", 1, 1);
}

#[test]
#[should_panic(
    expected = "conv_transpose2d: output padding must be smaller than either stride or dilation, but got output_padding_height: 2 output_padding_width: 2 stride_height: 2 stride_width: 2 dilation_height: 1 dilation_width: 1"
)]
fn output_padding_too_large() {
    x4().conv_transpose2d(&Tensor::zeros([3, 4, 3, 3]), None, 2, 0, 2, 1, 1);
}

#[test]
#[should_panic(
    expected = "max_pool2d: pad should be at most half of effective kernel size, but got pad=2, kernel_size=3 and dilation=1"
)]
fn pool_padding_too_large() {
    x4().max_pool2d(3, None, 2, 1, false);
}

#[test]
#[should_panic(
    expected = "max_pool2d: Given input size: (3x5x5). Calculated output size: (3x0x0). Output size is too small"
)]
fn pool_window_larger_than_input() {
    x4().max_pool2d(7, None, 0, 1, false);
}

#[test]
#[should_panic(
    expected = "conv1d: Calculated padded input size per channel: (2). Kernel size: (3). Kernel size can't be greater than actual input size"
)]
fn conv1d_kernel_larger_than_input() {
    Tensor::zeros([2, 3, 2]).conv1d(&Tensor::zeros([4, 3, 3]), None, 1, 0, 1, 1);
}
