//! Convolution, pooling and 2-D normalisation layers: PyTorch parity (`parity/conv_layers.json`:
//! outputs, input and parameter gradients, BatchNorm2d running statistics), PyTorch's printed
//! forms and state names, initialisation bounds, BatchNorm2d's running statistics and Dropout2d.

use ember_autograd::gradcheck::gradcheck;
use ember_autograd::{no_grad, DType, Generator, Tensor};
use ember_nn::{self as nn, functional as F, Module};
use ember_testkit::{assert_close, cases, leaf_input, reduction_tol, tensor};
use serde_json::Value;

fn build(op: &str, args: &Value) -> Box<dyn Module> {
    let u = |k: &str| args[k].as_u64().unwrap() as usize;
    match op {
        "Conv2d" => Box::new(
            nn::Conv2d::new(u("in_channels"), u("out_channels"), u("kernel_size"))
                .padding(args["padding"].as_u64().unwrap_or(0) as usize),
        ),
        "BatchNorm2d" => Box::new(nn::BatchNorm2d::new(u("num_features"))),
        // Conv2d(1,4,3,padding=1), ReLU, MaxPool2d(2), Conv2d(4,8,3), ReLU, AdaptiveAvgPool2d(1),
        // Flatten, Linear(8,10)
        "Sequential" => Box::new(
            nn::Sequential::new()
                .add(nn::Conv2d::new(1, 4, 3).padding(1))
                .add(nn::ReLU)
                .add(nn::MaxPool2d::new(2))
                .add(nn::Conv2d::new(4, 8, 3))
                .add(nn::ReLU)
                .add(nn::AdaptiveAvgPool2d::new(1))
                .add(nn::Flatten::new())
                .add(nn::Linear::new(8, 10)),
        ),
        other => panic!("unknown layer {other}"),
    }
}

fn named(v: &Value) -> Vec<(String, Tensor)> {
    v.as_object()
        .map(|o| o.iter().map(|(k, t)| (k.clone(), tensor(t))).collect())
        .unwrap_or_default()
}

#[test]
fn parity_with_pytorch() {
    let all = cases("conv_layers");
    assert_eq!(all.len(), 4);
    for c in &all {
        let name = c["name"].as_str().unwrap();
        let m = build(c["op"].as_str().unwrap(), &c["args"]);
        let mut state = named(&c["params"]);
        state.extend(named(&c["buffers_before"]));
        // Every state entry PyTorch has is set, and every name matches (strict loading).
        m.load_state_dict(&state, true)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        m.set_training(c["train"].as_bool().unwrap());
        let x = leaf_input(&c["inputs"][0]);
        let out = m.forward(&x);
        let (atol, rtol) = reduction_tol(out.dtype());
        assert_close(name, &out, &c["output"], atol, rtol);
        out.backward_with(&tensor(&c["grad_seed"]));
        assert_close(
            &format!("{name} input grad"),
            &x.grad().unwrap(),
            &c["grads"][0],
            atol,
            rtol,
        );
        let params = m.named_parameters();
        for (pname, g) in c["param_grads"].as_object().unwrap() {
            let p = &params.iter().find(|(n, _)| n == pname).unwrap().1;
            assert_close(
                &format!("{name} grad of {pname}"),
                &p.grad().unwrap(),
                g,
                atol,
                rtol,
            );
        }
        let bufs = m.named_buffers();
        for (bname, want) in c["buffers_after"].as_object().unwrap() {
            let b = &bufs.iter().find(|(n, _)| n == bname).unwrap().1;
            assert_close(&format!("{name} buffer {bname}"), b, want, atol, rtol);
        }
    }
}

/// The strings PyTorch 2.15 prints for the same layers.
#[test]
fn printed_like_pytorch() {
    let cases: Vec<(Box<dyn Module>, &str)> = vec![
        (Box::new(nn::Conv2d::new(1, 32, 3).padding(1)), "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"),
        (Box::new(nn::Conv1d::new(3, 4, 3)), "Conv1d(3, 4, kernel_size=(3,), stride=(1,))"),
        (
            Box::new(nn::Conv2d::new(2, 4, (3, 5)).stride(2).padding(1).dilation(2).groups(2).bias(false)),
            "Conv2d(2, 4, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), dilation=(2, 2), groups=2, bias=False)",
        ),
        (Box::new(nn::Conv2d::new(2, 4, 3).padding("same")), "Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1), padding=same)"),
        (Box::new(nn::Conv2d::new(2, 4, 3).padding("valid")), "Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1), padding=valid)"),
        (
            Box::new(nn::ConvTranspose2d::new(4, 3, 3).stride(2).padding(1).output_padding(1)),
            "ConvTranspose2d(4, 3, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))",
        ),
        (Box::new(nn::MaxPool2d::new(2)), "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"),
        (
            Box::new(nn::MaxPool2d::new((2, 3)).stride(1).padding(1).ceil_mode(true)),
            "MaxPool2d(kernel_size=(2, 3), stride=1, padding=1, dilation=1, ceil_mode=True)",
        ),
        (Box::new(nn::MaxPool1d::new(3)), "MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False)"),
        (Box::new(nn::AvgPool2d::new(2)), "AvgPool2d(kernel_size=2, stride=2, padding=0)"),
        (Box::new(nn::AdaptiveAvgPool2d::new(1)), "AdaptiveAvgPool2d(output_size=1)"),
        (Box::new(nn::AdaptiveAvgPool2d::new((5, 7))), "AdaptiveAvgPool2d(output_size=(5, 7))"),
        (Box::new(nn::AdaptiveMaxPool2d::new((Some(5), None))), "AdaptiveMaxPool2d(output_size=(5, None))"),
        (
            Box::new(nn::BatchNorm2d::new(32)),
            "BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)",
        ),
        (
            Box::new(nn::BatchNorm2d::new(3).momentum(None).affine(false)),
            "BatchNorm2d(3, eps=1e-05, momentum=None, affine=False, bias=False, track_running_stats=True)",
        ),
        (Box::new(nn::Dropout2d::default()), "Dropout2d(p=0.5, inplace=False)"),
        (Box::new(nn::Dropout2d::new(0.2)), "Dropout2d(p=0.2, inplace=False)"),
    ];
    for (m, want) in cases {
        assert_eq!(m.to_string(), want);
    }
}

#[test]
fn state_names_and_shapes_are_pytorchs() {
    let conv = nn::Conv2d::new(4, 6, 3).groups(2);
    let names: Vec<(String, Vec<usize>)> = conv
        .state_dict()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec()))
        .collect();
    assert_eq!(
        names,
        [
            ("weight".to_string(), vec![6, 2, 3, 3]),
            ("bias".to_string(), vec![6])
        ]
    );
    let t = nn::ConvTranspose2d::new(4, 6, (2, 3)).groups(2);
    assert_eq!(t.weight.shape(), &[4, 3, 2, 3]);
    let bn: Vec<String> = nn::BatchNorm2d::new(3)
        .state_dict()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        bn,
        [
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked"
        ]
    );
}

#[test]
fn initialisation_bounds_follow_fan_in() {
    let g = Generator::new(3);
    let conv = nn::Conv2d::new_with(16, 8, 3, &g);
    let bound = 1.0 / ((16 * 9) as f64).sqrt();
    let (w, b) = (
        conv.weight.to_vec::<f32>(),
        conv.bias.as_ref().unwrap().to_vec::<f32>(),
    );
    assert!(w.iter().chain(&b).all(|&v| (v as f64).abs() <= bound));
    // Spread over the whole range, not clustered (a uniform's max is near the bound).
    assert!(w.iter().fold(0f32, |m, v| m.max(v.abs())) as f64 > 0.9 * bound);
    let t = nn::ConvTranspose2d::new_with(4, 6, 3, &g);
    // PyTorch computes the transposed weight's fan_in from its dim 1 (out_channels / groups).
    let tb = 1.0 / ((6 * 9) as f64).sqrt();
    assert!(t
        .weight
        .to_vec::<f32>()
        .iter()
        .all(|&v| (v as f64).abs() <= tb));
}

#[test]
#[should_panic(
    expected = "Conv2d: in_channels must be divisible by groups (in_channels=3, groups=2)"
)]
fn groups_must_divide_channels() {
    let _ = nn::Conv2d::new(3, 4, 3).groups(2);
}

#[test]
fn batch_norm_2d_running_statistics() {
    let x = Tensor::from_vec(
        (0..2 * 2 * 2 * 2).map(|v| v as f32).collect::<Vec<_>>(),
        [2, 2, 2, 2],
    );
    let bn = nn::BatchNorm2d::new(2).momentum(None);
    bn.forward(&x);
    bn.forward(&(&x * 2.0));
    // Channel 0 holds 0,1,2,3,8,9,10,11 (mean 5.5); the cumulative average of two batches is
    // (5.5 + 11) / 2.
    let rm = bn.running_mean.as_ref().unwrap().to_vec::<f32>();
    assert!((rm[0] - 8.25).abs() < 1e-5, "{rm:?}");
    assert_eq!(bn.num_batches_tracked.as_ref().unwrap().item(), 2.0);
    bn.eval();
    let y = bn.forward(&x);
    let (m, v) = (
        rm[0] as f64,
        bn.running_var.as_ref().unwrap().to_vec::<f32>()[0] as f64,
    );
    let want = (0.0 - m) / (v + 1e-5).sqrt();
    assert!((y.to_vec::<f32>()[0] as f64 - want).abs() < 1e-4);
    assert_eq!(
        bn.num_batches_tracked.as_ref().unwrap().item(),
        2.0,
        "eval must not count batches"
    );
}

#[test]
#[should_panic(
    expected = "BatchNorm2d: expected a 4D input with 3 features in dim 1, got shape [2, 3, 4]"
)]
fn batch_norm_2d_wants_4d() {
    nn::BatchNorm2d::new(3).forward(&Tensor::zeros([2, 3, 4]));
}

#[test]
fn batch_norm_2d_gradcheck() {
    let g = Generator::new(1);
    let x = Tensor::normal_with([3, 2, 3, 2], 0.0, 1.0, DType::F64, Some(&g)).requires_grad_(true);
    let w = Tensor::normal_with([2], 1.0, 0.5, DType::F64, Some(&g)).requires_grad_(true);
    let b = Tensor::normal_with([2], 0.0, 0.5, DType::F64, Some(&g)).requires_grad_(true);
    let f =
        |v: &[Tensor]| F::batch_norm(&v[0], None, None, Some(&v[1]), Some(&v[2]), true, 0.1, 1e-5);
    gradcheck(f, &[x, w, b], 1e-6, 1e-7, 1e-5).unwrap();
}

#[test]
fn dropout_2d_drops_whole_channels() {
    let d = nn::Dropout2d::new(0.3).generator(Generator::new(4));
    let x = Tensor::ones([16, 32, 4, 4]).requires_grad_(true);
    let y = d.forward(&x);
    let v = y.to_vec::<f32>();
    let kept = 1.0 / 0.7;
    let mut dropped = 0;
    for plane in v.chunks(16) {
        assert!(
            plane.iter().all(|&e| e == plane[0]),
            "a channel was partly dropped"
        );
        assert!(plane[0] == 0.0 || (plane[0] - kept).abs() < 1e-6);
        dropped += usize::from(plane[0] == 0.0);
    }
    assert!(
        (100..=210).contains(&dropped),
        "{dropped} of 512 channels dropped"
    );
    y.sum().backward();
    assert_eq!(
        x.grad().unwrap().to_vec::<f32>(),
        v,
        "the gradient is the mask"
    );
    d.eval();
    assert_eq!(d.forward(&x).to_vec::<f32>(), x.to_vec::<f32>());
    let _g = no_grad();
    assert_eq!(
        F::dropout2d(&x, 1.0, true).to_vec::<f32>(),
        vec![0.0; 16 * 32 * 16]
    );
}

#[test]
fn conv_layers_accept_unbatched_and_one_d_inputs() {
    let conv = nn::Conv2d::new(3, 5, 3).padding("same");
    assert_eq!(conv.forward(&Tensor::zeros([3, 7, 6])).shape(), &[5, 7, 6]);
    let c1 = nn::Conv1d::new(3, 5, 4).padding("same").dilation(2);
    assert_eq!(c1.forward(&Tensor::zeros([2, 3, 9])).shape(), &[2, 5, 9]);
    let t = nn::ConvTranspose2d::new(3, 2, 3).stride(2);
    assert_eq!(t.forward(&Tensor::zeros([3, 4, 4])).shape(), &[2, 9, 9]);
    let p = nn::MaxPool1d::new(2).stride(1);
    assert_eq!(p.forward(&Tensor::zeros([3, 5])).shape(), &[3, 4]);
}
