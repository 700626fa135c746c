//! The Module mechanism: derive, names, children, train/eval, zero_grad, apply, dtype moves,
//! Sequential indexing, and parameter handles shared with the model.

use ember_autograd::{no_grad, DType, Tensor};
use ember_nn::{self as nn, init, Buffer, Module, Parameter, TrainFlag};
use proptest::prelude::*;

#[derive(nn::Module)]
struct FizBuzNet {
    hidden: nn::Linear,
    out: nn::Linear,
}

impl nn::Module for FizBuzNet {
    fn forward(&self, batch: &Tensor) -> Tensor {
        self.out.forward(&self.hidden.forward(batch).sigmoid())
    }
}

fn fizbuz() -> FizBuzNet {
    FizBuzNet {
        hidden: nn::Linear::new(10, 100),
        out: nn::Linear::new(100, 4),
    }
}

fn names(v: Vec<(String, Tensor)>) -> Vec<String> {
    v.into_iter().map(|(n, _)| n).collect()
}

#[test]
fn derived_module_lists_parameters_with_dotted_names() {
    let net = fizbuz();
    assert_eq!(
        names(net.named_parameters()),
        ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    );
    assert_eq!(net.parameters().len(), 4);
    assert_eq!(net.num_parameters(), 10 * 100 + 100 + 100 * 4 + 4);
    let children: Vec<String> = net.named_children().into_iter().map(|(n, _)| n).collect();
    assert_eq!(children, ["hidden", "out"]);
    let all: Vec<String> = net.named_modules().into_iter().map(|(n, _)| n).collect();
    assert_eq!(all, ["", "hidden", "out"]);
    let y = net.forward(&Tensor::zeros([3, 10]));
    assert_eq!(y.shape(), &[3, 4]);
}

/// Every kind of member: nested modules, Option, Vec, raw parameters and buffers, plain data
/// and a skipped field.
#[derive(nn::Module)]
struct Everything {
    scale: Parameter,
    stats: Buffer,
    blocks: Vec<nn::Linear>,
    head: Option<nn::Sequential>,
    missing: Option<nn::Linear>,
    dyn_layer: Box<dyn Module>,
    width: usize,
    name: String,
    #[module(skip)]
    #[allow(dead_code)]
    cache: std::collections::HashMap<String, f64>,
    training: TrainFlag,
}

impl nn::Module for Everything {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut y = x * &*self.scale;
        for b in &self.blocks {
            y = b.forward(&y);
        }
        y
    }
}

#[derive(nn::Module)]
struct Tuple(nn::Linear, nn::ReLU);

impl nn::Module for Tuple {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.1.forward(&self.0.forward(x))
    }
}

#[test]
fn every_member_kind_is_found() {
    let m = Everything {
        scale: Parameter::new(Tensor::ones([2])),
        stats: Buffer::new(Tensor::zeros([2])),
        blocks: vec![nn::Linear::new(2, 2), nn::Linear::new(2, 2)],
        head: Some(
            nn::Sequential::new()
                .add(nn::ReLU)
                .add(nn::Linear::new(2, 1)),
        ),
        missing: None,
        dyn_layer: Box::new(nn::LayerNorm::new([2])),
        width: 2,
        name: "x".into(),
        cache: Default::default(),
        training: TrainFlag::new(),
    };
    assert_eq!(
        names(m.named_parameters()),
        [
            "scale",
            "blocks.0.weight",
            "blocks.0.bias",
            "blocks.1.weight",
            "blocks.1.bias",
            "head.1.weight",
            "head.1.bias",
            "dyn_layer.weight",
            "dyn_layer.bias"
        ]
    );
    assert_eq!(names(m.named_buffers()), ["stats"]);
    assert_eq!(
        names(m.state_dict())[..3],
        [
            "scale".to_string(),
            "stats".into(),
            "blocks.0.weight".into()
        ]
    );
    m.eval();
    assert!(!m.is_training());
    assert!(!m.training.get());
    assert!(!m.head.as_ref().unwrap().is_training());
    m.train();
    assert!(m.blocks[1].is_training());

    let t = Tuple(nn::Linear::new(3, 2), nn::ReLU);
    assert_eq!(names(t.named_parameters()), ["0.weight", "0.bias"]);
    assert_eq!(
        t.repr(),
        "Tuple(\n  (0): Linear(in_features=3, out_features=2, bias=True)\n  (1): ReLU()\n)"
    );
}

fn story3_model() -> nn::Sequential {
    nn::Sequential::new()
        .add(nn::Linear::new(784, 128))
        .add(nn::ReLU)
        .add(nn::Linear::new(128, 64))
        .add(nn::ReLU)
        .add(nn::Linear::new(64, 10))
        .add(nn::LogSoftmax::new(1))
}

#[test]
fn story3_sequential() {
    let model = story3_model();
    assert_eq!(model.len(), 6);
    assert_eq!(model.iter().count(), 6);
    assert_eq!((&model).into_iter().count(), 6);
    assert_eq!(
        names(model.named_parameters()),
        ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    );
    assert!(model[0].weight().grad().is_none());
    let x = Tensor::rand([5, 784]);
    let labels = Tensor::from_slice(&[0i64, 3, 9, 1, 1], [5]);
    let loss = nn::NLLLoss::new().forward(&model.forward(&x), &labels);
    loss.backward();
    assert_eq!(model[0].weight().grad().unwrap().shape(), &[128, 784]);
    assert_eq!(model[4].bias().unwrap().grad().unwrap().shape(), &[10]);
    assert!(model[1].bias().is_none());
    assert_eq!(model.get::<nn::Linear>(2).unwrap().in_features, 128);
    assert!(model.get::<nn::Linear>(1).is_none());
    assert!(model[5].is::<nn::LogSoftmax>());
    assert_eq!(model[5].to_string(), "LogSoftmax(dim=1)");
    assert_eq!(model[5].downcast_ref::<nn::LogSoftmax>().unwrap().dim, 1);
    assert!(model.get_parameter("4.bias").is_some());
    model.train();
    assert!(model.is_training());
    model.eval();
    assert!(!model.is_training());
    assert!(!model[0].is_training());
    model.zero_grad();
    assert!(model.parameters().iter().all(|p| p.grad().is_none()));
    assert_eq!(
        model.repr(),
        "Sequential(\n  (0): Linear(in_features=784, out_features=128, bias=True)\n  (1): ReLU()\n  (2): Linear(in_features=128, out_features=64, bias=True)\n  (3): ReLU()\n  (4): Linear(in_features=64, out_features=10, bias=True)\n  (5): LogSoftmax(dim=1)\n)"
    );
}

#[test]
#[should_panic(expected = "ReLU has no parameter `weight`")]
fn weight_of_a_parameterless_module() {
    story3_model()[1].weight();
}

#[test]
#[should_panic(expected = "Sequential: index 6 is out of range for 6 modules")]
fn sequential_index_out_of_range() {
    let _ = &story3_model()[6];
}

#[test]
fn parameters_share_storage_with_the_model() {
    let model = nn::Sequential::new().add(nn::Linear::new(3, 2));
    let x = Tensor::ones([1, 3]);
    let before = model.forward(&x).to_vec::<f32>();
    let (y, _) = (model.forward(&x).sum(), ());
    y.backward();
    {
        // The manual SGD step of story 5.
        let _g = no_grad();
        for p in model.parameters() {
            p.sub_(&(&p.grad().unwrap() * 0.1));
        }
    }
    let after = model.forward(&x).to_vec::<f32>();
    assert_ne!(before, after);
    // d(sum y)/dW = x, d/db = 1: each output drops by 0.1 * (3 + 1).
    for (b, a) in before.iter().zip(&after) {
        assert!((b - a - 0.4).abs() < 1e-5);
    }
}

#[test]
fn apply_reaches_every_submodule_for_custom_init() {
    let model = story3_model();
    let mut linears = 0;
    let mut visited = Vec::new();
    model.apply(&mut |m| {
        visited.push(m.type_name());
        if let Some(l) = m.downcast_ref::<nn::Linear>() {
            init::constant_(&l.weight, 0.5);
            init::zeros_(l.bias.as_ref().unwrap());
            linears += 1;
        }
    });
    assert_eq!(linears, 3);
    assert_eq!(visited.last(), Some(&"Sequential"));
    assert!(model[0].weight().to_vec::<f32>().iter().all(|&v| v == 0.5));
    assert!(model.parameters()[0].requires_grad());
}

#[test]
fn to_dtype_converts_parameters_grads_and_float_buffers() {
    let mut model = nn::Sequential::new()
        .add(nn::Linear::new(3, 4))
        .add(nn::BatchNorm1d::new(4));
    let y = model.forward(&Tensor::rand([5, 3])).sum();
    y.backward();
    model.double();
    for (n, p) in model.named_parameters() {
        assert_eq!(p.dtype(), DType::F64, "{n}");
        assert!(p.requires_grad() && p.is_leaf());
        assert_eq!(p.grad().unwrap().dtype(), DType::F64);
    }
    let bufs = model.named_buffers();
    assert_eq!(bufs[0].1.dtype(), DType::F64);
    assert_eq!(bufs[2].0, "1.num_batches_tracked");
    assert_eq!(bufs[2].1.dtype(), DType::I64);
    let out = model.forward(&Tensor::rand([5, 3]).double());
    assert_eq!(out.dtype(), DType::F64);
    model.to(ember_autograd::Device::Cpu);
    model.float();
    assert_eq!(model.parameters()[0].dtype(), DType::F32);
}

#[test]
fn dropout_and_batchnorm_follow_the_mode_of_the_tree() {
    let model = nn::Sequential::new()
        .add(nn::BatchNorm1d::new(3))
        .add(nn::Dropout::new(0.5).generator(ember_autograd::Generator::new(1)));
    let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 3.0, 2.0, 5.0], [2, 3]);
    model.eval();
    // Eval: running stats (0, 1) and no dropout: y = x / sqrt(1 + eps).
    let y = model.forward(&x).to_vec::<f32>();
    for (a, b) in y.iter().zip(x.to_vec::<f32>()) {
        assert!((a - b / (1.0f32 + 1e-5).sqrt()).abs() < 1e-6);
    }
    model.train();
    let y = model.forward(&x).to_vec::<f32>();
    // Train: batch-normalised values are ±1, then dropped (0) or doubled (±2).
    assert!(y
        .iter()
        .all(|v| [0.0, 2.0, -2.0].iter().any(|w| (v - w).abs() < 1e-3)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn mlp_names_follow_layer_positions(widths in prop::collection::vec(1usize..5, 2..6)) {
        let mut m = nn::Sequential::new();
        let mut want = Vec::new();
        for (i, w) in widths.windows(2).enumerate() {
            m.push(nn::Linear::new(w[0], w[1]));
            m.push(nn::Tanh);
            want.push(format!("{}.weight", 2 * i));
            want.push(format!("{}.bias", 2 * i));
        }
        prop_assert_eq!(names(m.named_parameters()), want);
        let n: usize = widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
        prop_assert_eq!(m.num_parameters(), n);
        let y = m.forward(&Tensor::zeros([2, widths[0]]));
        prop_assert_eq!(y.shape(), &[2, *widths.last().unwrap()]);
    }
}

/// The lesson's `nn.Sequential(OrderedDict([('fc1', ...), ('relu1', ...), ...]))`.
fn named_model() -> nn::Sequential {
    nn::Sequential::new()
        .add_named("fc1", nn::Linear::new(4, 3))
        .add_named("relu1", nn::ReLU)
        .add_named("fc2", nn::Linear::new(3, 2))
        .add_named("output", nn::LogSoftmax::new(1))
}

#[test]
fn named_sequential_names_indexing_state_dict_and_repr() {
    let mut model = named_model();
    assert_eq!(
        model.names().collect::<Vec<_>>(),
        ["fc1", "relu1", "fc2", "output"]
    );
    let keys: Vec<String> = model.state_dict().into_iter().map(|(n, _)| n).collect();
    assert_eq!(keys, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
    // By name and by position reach the same module.
    assert_eq!(model["fc2"].weight().shape(), &[2, 3]);
    assert!(model["fc2"].weight().allclose(&model[2].weight(), 0.0, 0.0));
    assert_eq!(model.get::<nn::Linear>("fc1").unwrap().out_features, 3);
    assert_eq!(model.get::<nn::Linear>(0).unwrap().out_features, 3);
    assert!(model.get::<nn::Linear>("relu1").is_none());
    assert!(model.get::<nn::Linear>("nope").is_none());
    {
        let _g = no_grad();
        model.get_mut::<nn::Linear>("fc1").unwrap().weight.zero_();
    }
    assert_eq!(model["fc1"].weight().abs().sum().item(), 0.0);
    model["fc1"].eval();
    assert!(!model["fc1"].is_training());
    // PyTorch: print(model)
    assert_eq!(
        format!("{model}"),
        "Sequential(\n  (fc1): Linear(in_features=4, out_features=3, bias=True)\n  (relu1): ReLU()\n  (fc2): Linear(in_features=3, out_features=2, bias=True)\n  (output): LogSoftmax(dim=1)\n)"
    );
    assert_eq!(model.forward(&Tensor::zeros([5, 4])).shape(), &[5, 2]);
    // Unnamed modules appended after named ones are named by position (PyTorch's `append`).
    let model = model.add(nn::ReLU);
    assert_eq!(model.names().last(), Some("4"));
    assert!(model["4"].is::<nn::ReLU>());
}

#[test]
fn named_sequential_from_pairs_and_replacing_a_name() {
    let model = nn::Sequential::from_named([
        ("fc1", Box::new(nn::Linear::new(4, 3)) as Box<dyn Module>),
        ("act", Box::new(nn::ReLU)),
    ]);
    assert_eq!(names(model.named_parameters()), ["fc1.weight", "fc1.bias"]);
    // PyTorch's add_module with a taken name replaces the module in its place.
    let model = model.add_named("fc1", nn::Tanh);
    assert_eq!(model.names().collect::<Vec<_>>(), ["fc1", "act"]);
    assert!(model["fc1"].is::<nn::Tanh>());
    assert!(model.parameters().is_empty());
}

#[test]
#[should_panic(
    expected = "'Sequential' object has no attribute 'fc3' (its modules are named [\"fc1\", \"relu1\", \"fc2\", \"output\"])"
)]
fn named_sequential_unknown_name() {
    let _ = &named_model()["fc3"];
}

#[test]
#[should_panic(expected = "module name can't contain \".\", got: fc.1")]
fn named_sequential_refuses_a_dotted_name() {
    let _ = nn::Sequential::new().add_named("fc.1", nn::ReLU);
}

#[test]
#[should_panic(expected = "module name can't be empty string \"\"")]
fn named_sequential_refuses_an_empty_name() {
    let _ = nn::Sequential::new().add_named("", nn::ReLU);
}

#[test]
fn every_module_prints_as_pytorch_with_display() {
    // `println!("{m}")` for concrete layers and derived structs, as `print(m)` in PyTorch.
    assert_eq!(
        format!("{}", nn::Linear::new(784, 128)),
        "Linear(in_features=784, out_features=128, bias=True)"
    );
    assert_eq!(nn::ReLU.to_string(), "ReLU()");
    assert_eq!(nn::LogSoftmax::new(1).to_string(), "LogSoftmax(dim=1)");
    assert_eq!(
        fizbuz().to_string(),
        "FizBuzNet(\n  (hidden): Linear(in_features=10, out_features=100, bias=True)\n  (out): Linear(in_features=100, out_features=4, bias=True)\n)"
    );
    assert_eq!(story3_model().to_string(), story3_model().repr());
}
