//! Layers: PyTorch parity (`parity/layers.json`: outputs, input and parameter gradients, BatchNorm
//! running statistics), gradient checks in f64 for every layer, initialisation distributions,
//! dropout, normalisation and embedding behaviour.

use ember_autograd::gradcheck::{gradcheck, gradgradcheck};
use ember_autograd::{no_grad, DType, Generator, Tensor};
use ember_nn::{self as nn, functional as F, init, Module};
use ember_testkit::second_order::{assert_every_node_checked, note_nodes};
use ember_testkit::{assert_close, cases, leaf_input, reduction_tol, tensor};
use proptest::prelude::*;
use serde_json::Value;

/// Builds the module of a `layers.json` case.
fn build(op: &str, args: &Value) -> Box<dyn Module> {
    let u = |k: &str| args[k].as_u64().unwrap() as usize;
    match op {
        "Linear" => Box::new(
            nn::Linear::new(u("in_features"), u("out_features"))
                .bias(args["bias"].as_bool().unwrap_or(true)),
        ),
        "BatchNorm1d" => {
            let mut m = nn::BatchNorm1d::new(u("num_features"));
            if let Some(e) = args["eps"].as_f64() {
                m = m.eps(e);
            }
            if let Some(mo) = args["momentum"].as_f64() {
                m = m.momentum(Some(mo));
            }
            Box::new(m)
        }
        "LayerNorm" => {
            let shape: Vec<usize> = args["normalized_shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            Box::new(nn::LayerNorm::new(shape).eps(args["eps"].as_f64().unwrap_or(1e-5)))
        }
        "Sequential" => Box::new(
            nn::Sequential::new()
                .add(nn::Linear::new(8, 4))
                .add(nn::ReLU)
                .add(nn::Linear::new(4, 2)),
        ),
        "Embedding" => Box::new(nn::Embedding::new(u("num_embeddings"), u("embedding_dim"))),
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
    let all = cases("layers");
    assert!(all.len() >= 7);
    for c in &all {
        let name = c["name"].as_str().unwrap();
        let m = build(c["op"].as_str().unwrap(), &c["args"]);
        // Parameters (and buffers, when given) exactly as PyTorch had them.
        let mut state = named(&c["params"]);
        state.extend(named(&c["buffers_before"]));
        let strict = c["buffers_before"]
            .as_object()
            .is_some_and(|o| !o.is_empty())
            || m.named_buffers().is_empty();
        m.load_state_dict(&state, strict)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        m.set_training(c["train"].as_bool().unwrap());
        let inputs: Vec<Tensor> = c["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(leaf_input)
            .collect();
        let out = m.forward(&inputs[0]);
        let (atol, rtol) = reduction_tol(out.dtype());
        assert_close(name, &out, &c["output"], atol, rtol);
        out.backward_with(&tensor(&c["grad_seed"]));
        for (i, g) in c["grads"].as_array().unwrap().iter().enumerate() {
            if !g.is_null() {
                assert_close(
                    &format!("{name} input grad"),
                    &inputs[i].grad().unwrap(),
                    g,
                    atol,
                    rtol,
                );
            }
        }
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

fn leaf(shape: &[usize], seed: u64) -> Tensor {
    let g = Generator::new(seed);
    Tensor::normal_with(shape, 0.0, 1.0, DType::F64, Some(&g)).requires_grad_(true)
}

/// First and second derivatives against finite differences. The second-order check is of
/// `f(inputs)²`: the gradient reaching the layer's backward then depends on the inputs, so that
/// backward's own backward runs even for layers linear in an input (embedding, dropout).
fn check(name: &str, f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor]) {
    gradcheck(&f, inputs, 1e-6, 1e-7, 1e-5).unwrap_or_else(|e| panic!("{name}: {e}"));
    let squared = |v: &[Tensor]| f(v).square();
    gradgradcheck(squared, inputs, 1e-5, 1e-5, 1e-4).unwrap_or_else(|e| panic!("{name}: {e}"));
    note_nodes(squared, inputs);
}

/// `gradcheck` and `gradgradcheck` of every layer and functional op; at the end, every node the
/// sources record (but for the losses', checked in `tests/losses.rs`) must have been among
/// those checked.
#[test]
fn gradcheck_every_layer() {
    let (x, w, b) = (leaf(&[3, 4], 1), leaf(&[2, 4], 2), leaf(&[2], 3));
    check(
        "linear",
        |v| F::linear(&v[0], &v[1], Some(&v[2])),
        &[x.clone(), w.clone(), b.clone()],
    );
    check(
        "linear/nobias",
        |v| F::linear(&v[0], &v[1], None),
        &[x.clone(), w.clone()],
    );
    check(
        "linear/3d",
        |v| F::linear(&v[0], &v[1], Some(&v[2])),
        &[leaf(&[2, 3, 4], 4), w.clone(), b.clone()],
    );
    check(
        "linear/1d",
        |v| F::linear(&v[0], &v[1], Some(&v[2])),
        &[leaf(&[4], 5), w.clone(), b.clone()],
    );

    let (gamma, beta) = (leaf(&[4], 6), leaf(&[4], 7));
    check(
        "batch_norm/train",
        |v| F::batch_norm(&v[0], None, None, Some(&v[1]), Some(&v[2]), true, 0.1, 1e-5),
        &[x.clone(), gamma.clone(), beta.clone()],
    );
    check(
        "batch_norm/3d",
        |v| F::batch_norm(&v[0], None, None, Some(&v[1]), Some(&v[2]), true, 0.1, 1e-5),
        &[leaf(&[2, 4, 3], 8), gamma.clone(), beta.clone()],
    );
    let (rm, rv) = (
        Tensor::from_slice(&[0.1f64, -0.2, 0.3, 0.0], [4]),
        Tensor::from_slice(&[1.5f64, 0.5, 2.0, 1.0], [4]),
    );
    check(
        "batch_norm/eval",
        |v| {
            F::batch_norm(
                &v[0],
                Some(&rm),
                Some(&rv),
                Some(&v[1]),
                Some(&v[2]),
                false,
                0.1,
                1e-5,
            )
        },
        &[x.clone(), gamma.clone(), beta.clone()],
    );
    check(
        "layer_norm",
        |v| F::layer_norm(&v[0], &[4], Some(&v[1]), Some(&v[2]), 1e-5),
        &[x.clone(), gamma.clone(), beta.clone()],
    );
    check(
        "layer_norm/2d",
        |v| F::layer_norm(&v[0], &[2, 3], None, None, 1e-5),
        &[leaf(&[2, 2, 3], 9)],
    );
    let idx = Tensor::from_slice(&[1i64, 0, 1, 3, 3, 3], [2, 3]);
    check(
        "embedding",
        |v| F::embedding(&idx, &v[0]),
        &[leaf(&[4, 2], 10)],
    );
    // Dropout with a fixed mask: the generator is made, with its seed, inside the function, so
    // every evaluation draws the same mask. (`manual_seed` inside the function would do the same
    // through the default generator, but other tests of this binary draw from it concurrently.)
    check(
        "dropout",
        |v| F::dropout_with(&v[0], 0.4, true, Some(&Generator::new(5))),
        std::slice::from_ref(&x),
    );
    check(
        "dropout2d",
        |v| F::dropout2d_with(&v[0], 0.5, true, Some(&Generator::new(6))),
        &[leaf(&[2, 4, 3, 2], 11)],
    );
    // Activations, away from their kinks.
    let a = Tensor::from_slice(&[0.3f64, -1.2, 0.8, 2.0, -0.4, 0.1], [2, 3]).requires_grad_(true);
    let acts: Vec<(&str, Box<dyn Module>)> = vec![
        ("relu", Box::new(nn::ReLU)),
        ("leaky_relu", Box::new(nn::LeakyReLU::new(0.2))),
        ("elu", Box::new(nn::ELU::default())),
        ("gelu", Box::new(nn::GELU::new())),
        ("gelu/tanh", Box::new(nn::GELU::new().approximate("tanh"))),
        ("silu", Box::new(nn::SiLU)),
        ("sigmoid", Box::new(nn::Sigmoid)),
        ("tanh", Box::new(nn::Tanh)),
        ("softmax", Box::new(nn::Softmax::new(1))),
        ("log_softmax", Box::new(nn::LogSoftmax::new(0))),
        ("identity", Box::new(nn::Identity)),
        ("flatten", Box::new(nn::Flatten::new().start_dim(0))),
        ("unflatten", Box::new(nn::Unflatten::new(1, [3, 1]))),
    ];
    for (name, m) in acts {
        check(name, |v| m.forward(&v[0]), std::slice::from_ref(&a));
    }
    // A whole model through its parameters.
    let mut mlp = nn::Sequential::new()
        .add(nn::Linear::new(4, 3))
        .add(nn::Tanh)
        .add(nn::Linear::new(3, 2));
    mlp.double();
    let ps = mlp.parameters();
    let mut inputs = vec![x.clone()];
    inputs.extend(ps.iter().cloned());
    check(
        "mlp",
        |v| {
            let h = F::linear(&v[0], &v[1], Some(&v[2])).tanh();
            F::linear(&h, &v[3], Some(&v[4]))
        },
        &inputs,
    );
    check("mlp/module", |v| mlp.forward(&v[0]), &[x]);

    let src = |f: &'static str, text: &'static str| (f, text);
    assert_every_node_checked(
        &[
            src("activation.rs", include_str!("../src/activation.rs")),
            src("conv.rs", include_str!("../src/conv.rs")),
            src("embedding.rs", include_str!("../src/embedding.rs")),
            src("functional.rs", include_str!("../src/functional.rs")),
            src("init.rs", include_str!("../src/init.rs")),
            src("layers.rs", include_str!("../src/layers.rs")),
            src("module.rs", include_str!("../src/module.rs")),
            src("norm.rs", include_str!("../src/norm.rs")),
            src("pool.rs", include_str!("../src/pool.rs")),
            src("sequential.rs", include_str!("../src/sequential.rs")),
            src("state.rs", include_str!("../src/state.rs")),
        ],
        &[],
    );
}

#[test]
fn linear_init_matches_pytorch_distribution() {
    let fan_in = 256;
    let l = nn::Linear::new(fan_in, 512);
    let bound = 1.0 / (fan_in as f64).sqrt();
    let w = l.weight.to_vec::<f32>();
    let b = l.bias.as_ref().unwrap().to_vec::<f32>();
    assert!(w.iter().chain(&b).all(|&v| (v as f64).abs() <= bound));
    // U(-b, b): mean 0, variance b²/3.
    let n = w.len() as f64;
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    assert!(mean.abs() < 0.01 * bound);
    assert!(
        (var / (bound * bound / 3.0) - 1.0).abs() < 0.02,
        "var {var}"
    );
    // Both ends of the range are used.
    assert!(
        w.iter().any(|&v| v as f64 > 0.99 * bound) && w.iter().any(|&v| (v as f64) < -0.99 * bound)
    );
    assert!(l.weight.requires_grad() && l.weight.is_leaf());
    // Seeded: the same generator state gives the same layer.
    let a = nn::Linear::new_with(4, 3, &Generator::new(7));
    let c = nn::Linear::new_with(4, 3, &Generator::new(7));
    assert_eq!(a.weight.to_vec::<f32>(), c.weight.to_vec::<f32>());
}

fn stats(t: &Tensor) -> (f64, f64) {
    let v = t.to_vec::<f64>();
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (m, v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n)
}

#[test]
fn init_functions() {
    use init::{FanMode::*, Nonlinearity::*};
    assert_eq!(init::calculate_gain(Linear, None), 1.0);
    assert_eq!(init::calculate_gain(Tanh, None), 5.0 / 3.0);
    assert_eq!(init::calculate_gain(Relu, None), 2f64.sqrt());
    assert!((init::calculate_gain(LeakyRelu, None) - (2.0 / 1.0001f64).sqrt()).abs() < 1e-15);
    assert!(
        (init::calculate_gain(LeakyRelu, Some(5f64.sqrt())) - (1.0f64 / 3.0).sqrt()).abs() < 1e-15
    );
    assert_eq!(init::calculate_gain(Selu, None), 0.75);
    assert_eq!(
        init::calculate_fan_in_and_fan_out(&Tensor::zeros([8, 4, 3, 3])),
        (36, 72)
    );

    let g = Generator::new(11);
    let t = Tensor::zeros([200, 300]).double();
    init::xavier_uniform_with_(&t, 2.0, &g);
    let a = 2.0 * (6.0f64 / 500.0).sqrt();
    assert!(t.to_vec::<f64>().iter().all(|v| v.abs() <= a));
    let (m, v) = stats(&t);
    assert!(m.abs() < 0.01 && (v / (a * a / 3.0) - 1.0).abs() < 0.03);

    init::xavier_normal_with_(&t, 1.0, &g);
    let (m, v) = stats(&t);
    assert!(
        m.abs() < 0.01 && (v / (2.0 / 500.0) - 1.0).abs() < 0.03,
        "{v}"
    );

    init::kaiming_normal_with_(&t, 0.0, FanOut, Relu, &g);
    let (_, v) = stats(&t);
    assert!((v / (2.0 / 200.0) - 1.0).abs() < 0.03, "{v}");

    init::kaiming_uniform_with_(&t, 0.0, FanIn, Relu, &g);
    let bound = (6.0f64 / 300.0).sqrt();
    assert!(t.to_vec::<f64>().iter().all(|v| v.abs() <= bound));

    init::normal_with_(&t, 3.0, 0.5, &g);
    let (m, v) = stats(&t);
    assert!((m - 3.0).abs() < 0.01 && (v - 0.25).abs() < 0.01);
    init::uniform_(&t, -1.0, 2.0);
    assert!(t.to_vec::<f64>().iter().all(|v| (-1.0..2.0).contains(v)));
    init::constant_(&t, 0.25);
    assert!(t.to_vec::<f64>().iter().all(|&v| v == 0.25));
    init::ones_(&t);
    init::zeros_(&t);
    assert!(t.to_vec::<f64>().iter().all(|&v| v == 0.0));
    assert_eq!(t.dtype(), DType::F64);

    // In place on a parameter that requires grad, without recording a graph.
    let p = nn::Parameter::new(Tensor::zeros([3, 3]));
    init::xavier_uniform_(&p, 1.0);
    assert!(p.is_leaf() && p.requires_grad());
}

#[test]
#[should_panic(
    expected = "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
)]
fn fan_of_a_vector() {
    init::xavier_uniform_(&Tensor::zeros([5]), 1.0);
}

#[test]
fn dropout_behaviour() {
    let x = Tensor::ones([4000]).requires_grad_(true);
    let d = nn::Dropout::new(0.25).generator(Generator::new(42));
    let y = d.forward(&x);
    let v = y.to_vec::<f32>();
    let kept = v.iter().filter(|&&e| e != 0.0).count() as f64 / v.len() as f64;
    assert!((kept - 0.75).abs() < 0.03, "{kept}");
    assert!(v.iter().all(|&e| e == 0.0 || (e - 1.0 / 0.75).abs() < 1e-6));
    y.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f32>(), v);
    assert_eq!(y.grad_fn_name(), Some("NativeDropoutBackward0"));
    // Reproducible with the same seed, different with another.
    let a = F::dropout_with(&x, 0.5, true, Some(&Generator::new(1))).to_vec::<f32>();
    let b = F::dropout_with(&x, 0.5, true, Some(&Generator::new(1))).to_vec::<f32>();
    let c = F::dropout_with(&x, 0.5, true, Some(&Generator::new(2))).to_vec::<f32>();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(F::dropout(&x, 0.0, true).to_vec::<f32>(), x.to_vec::<f32>());
    assert!(F::dropout(&x, 1.0, true)
        .to_vec::<f32>()
        .iter()
        .all(|&e| e == 0.0));
    assert_eq!(
        F::dropout(&x, 0.9, false).to_vec::<f32>(),
        x.to_vec::<f32>()
    );
    d.eval();
    assert_eq!(d.forward(&x).to_vec::<f32>(), x.to_vec::<f32>());
}

#[test]
#[should_panic(expected = "dropout probability has to be between 0 and 1, but got 1.5")]
fn dropout_probability_range() {
    nn::Dropout::new(1.5);
}

#[test]
fn batchnorm_running_statistics() {
    let bn = nn::BatchNorm1d::new(2);
    let x = Tensor::from_slice(&[1.0f32, 10.0, 3.0, 20.0, 5.0, 60.0], [3, 2]);
    bn.forward(&x);
    // mean (3, 30), unbiased var (4, 700): running = 0.9 * init + 0.1 * batch.
    let rm = bn.running_mean.as_ref().unwrap().to_vec::<f32>();
    let rv = bn.running_var.as_ref().unwrap().to_vec::<f32>();
    assert!((rm[0] - 0.3).abs() < 1e-6 && (rm[1] - 3.0).abs() < 1e-5);
    assert!((rv[0] - (0.9 + 0.4)).abs() < 1e-5 && (rv[1] - (0.9 + 70.0)).abs() < 1e-3);
    assert_eq!(bn.num_batches_tracked.as_ref().unwrap().item(), 1.0);
    // Cumulative average (momentum None): after two batches, the plain mean of the batch means.
    let cum = nn::BatchNorm1d::new(2).momentum(None);
    cum.forward(&x);
    cum.forward(&(&x * 3.0));
    let rm = cum.running_mean.as_ref().unwrap().to_vec::<f32>();
    assert!((rm[0] - 6.0).abs() < 1e-5 && (rm[1] - 60.0).abs() < 1e-4);
    // Without running statistics, evaluation uses the batch.
    let free = nn::BatchNorm1d::new(2)
        .track_running_stats(false)
        .affine(false);
    free.eval();
    let y = free.forward(&x).to_vec::<f32>();
    assert!((y[0] + y[2] + y[4]).abs() < 1e-5);
    assert!(free.named_parameters().is_empty() && free.named_buffers().is_empty());
    assert_eq!(
        bn.state_dict()
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>(),
        [
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked"
        ]
    );
    // (N, C, L) inputs normalise over N and L.
    let x3 = Tensor::rand([2, 2, 5]);
    let y3 = nn::BatchNorm1d::new(2).forward(&x3);
    let m = y3.mean_dim([0isize, 2], false).to_vec::<f32>();
    assert!(m.iter().all(|v| v.abs() < 1e-5));
}

#[test]
#[should_panic(
    expected = "BatchNorm1d: expected a 2D or 3D input with 3 features in dim 1, got shape [4, 2]"
)]
fn batchnorm_feature_mismatch() {
    nn::BatchNorm1d::new(3).forward(&Tensor::zeros([4, 2]));
}

#[test]
#[should_panic(
    expected = "expected more than 1 value per channel when training, got input size [1, 3]"
)]
fn batchnorm_single_sample_in_training() {
    nn::BatchNorm1d::new(3).forward(&Tensor::zeros([1, 3]));
}

#[test]
#[should_panic(expected = "layer_norm: expected an input with shape [*, 5], got [3, 4]")]
fn layernorm_shape_mismatch() {
    nn::LayerNorm::new([5]).forward(&Tensor::zeros([3, 4]));
}

#[test]
fn embedding_lookup_and_padding() {
    let w = Tensor::from_slice(&[0.0f32, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0], [4, 2]);
    let emb = nn::Embedding::from_pretrained(w, false).padding_idx(0);
    let ids = Tensor::from_slice(&[3u8, 0, 3, 2], [2, 2]);
    let y = emb.forward(&ids);
    assert_eq!(y.shape(), &[2, 2, 2]);
    assert_eq!(
        y.to_vec::<f32>(),
        vec![3.0, 3.0, 0.0, 0.0, 3.0, 3.0, 2.0, 2.0]
    );
    y.sum().backward();
    assert_eq!(
        emb.weight.grad().unwrap().to_vec::<f32>(),
        vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
    );
    let fresh = nn::Embedding::new(5, 3).padding_idx(-1);
    assert_eq!(fresh.padding_idx, Some(4));
    assert_eq!(fresh.weight.select(0, 4).to_vec::<f32>(), vec![0.0; 3]);
    let frozen = nn::Embedding::from_pretrained(Tensor::ones([2, 2]), true);
    assert!(!frozen.weight.requires_grad());
}

#[test]
#[should_panic(expected = "Embedding: index 6 is out of range for 4 embeddings")]
fn embedding_index_out_of_range() {
    nn::Embedding::new(4, 2).forward(&Tensor::from_slice(&[1i64, 6], [2]));
}

#[test]
fn flatten_and_unflatten() {
    let x = Tensor::zeros([2, 3, 4, 5]);
    assert_eq!(nn::Flatten::new().forward(&x).shape(), &[2, 60]);
    assert_eq!(
        nn::Flatten::new()
            .start_dim(1)
            .end_dim(2)
            .forward(&x)
            .shape(),
        &[2, 12, 5]
    );
    assert_eq!(
        nn::Unflatten::new(1, [3, -1])
            .forward(&Tensor::zeros([2, 12]))
            .shape(),
        &[2, 3, 4]
    );
    assert_eq!(nn::Identity.forward(&x).shape(), x.shape());
}

#[test]
#[should_panic(expected = "Unflatten: sizes [5, -1] do not multiply to the size 12")]
fn unflatten_bad_sizes() {
    nn::Unflatten::new(1, [5, -1]).forward(&Tensor::zeros([2, 12]));
}

#[test]
#[should_panic(expected = "linear: input of shape [2, 5] does not end in in_features = 4")]
fn linear_feature_mismatch() {
    nn::Linear::new(4, 3).forward(&Tensor::zeros([2, 5]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn linear_matches_naive_product(
        batch in prop::collection::vec(1usize..4, 0..3), i in 1usize..6, o in 1usize..5,
        bias in any::<bool>(), seed in any::<u64>(),
    ) {
        let g = Generator::new(seed);
        let l = nn::Linear::new_with(i, o, &g).bias(bias);
        let mut shape = batch.clone();
        shape.push(i);
        let x = Tensor::normal_with(&shape[..], 0.0, 1.0, DType::F32, Some(&g));
        let y = l.forward(&x);
        let mut want_shape = batch.clone();
        want_shape.push(o);
        prop_assert_eq!(y.shape(), &want_shape[..]);
        let (xv, wv, yv) = (x.to_vec::<f64>(), l.weight.to_vec::<f64>(), y.to_vec::<f64>());
        let bv = l.bias.as_ref().map(|b| b.to_vec::<f64>());
        for r in 0..xv.len() / i {
            for k in 0..o {
                let mut s = bv.as_ref().map_or(0.0, |b| b[k]);
                for j in 0..i {
                    s += xv[r * i + j] * wv[k * i + j];
                }
                prop_assert!((yv[r * o + k] - s).abs() < 1e-4, "{} vs {}", yv[r * o + k], s);
            }
        }
    }

    #[test]
    fn layer_norm_normalises_each_sample(rows in 1usize..5, cols in 2usize..7, seed in any::<u64>()) {
        let g = Generator::new(seed);
        let x = Tensor::normal_with([rows, cols], 2.0, 3.0, DType::F64, Some(&g));
        let y = nn::LayerNorm::new([cols]).forward(&x);
        let _g = no_grad();
        let moments = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / cols as f64;
            (m, v.iter().map(|e| (e - m).powi(2)).sum::<f64>() / cols as f64)
        };
        for r in 0..rows {
            let (m, var) = moments(&y.select(0, r).to_vec::<f64>());
            let (_, raw) = moments(&x.select(0, r).to_vec::<f64>());
            prop_assert!(m.abs() < 1e-9);
            // (x - mean) / sqrt(var + eps) has variance var / (var + eps).
            prop_assert!((var - raw / (raw + 1e-5)).abs() < 1e-9, "{} vs {}", var, raw);
        }
    }
}

fn panic_message(f: impl FnOnce() -> Tensor) -> String {
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("should panic");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

#[test]
fn linear_refuses_mixed_dtypes_with_pytorchs_messages() {
    let x = Tensor::ones([2, 3]).to_dtype(DType::F64);
    // nn.Linear(3, 4)(double input): the fused addmm's message
    assert_eq!(
        panic_message(|| nn::Linear::new(3, 4).forward(&x)),
        "mat1 and mat2 must have the same dtype, but got Double and Float"
    );
    // F.linear without bias: matmul's message
    let w = Tensor::ones([4, 3]);
    assert_eq!(
        panic_message(|| nn::functional::linear(&x, &w, None)),
        "expected m1 and m2 to have the same dtype, but got: double != float"
    );
    // F.linear(double, double weight, float bias)
    let wd = w.to_dtype(DType::F64);
    assert_eq!(
        panic_message(|| nn::functional::linear(&x, &wd, Some(&Tensor::ones([4])))),
        "self and mat2 must have the same dtype, but got Float and Double"
    );
    // After model.double() the same input works.
    let mut lin = nn::Linear::new(3, 4);
    lin.double();
    assert_eq!(lin.forward(&x).dtype(), DType::F64);
}
