//! PyTorch's CPU random numbers: every case of `parity/rng.json` (PyTorch's outputs after
//! `torch.manual_seed`) and of `tests/data/rng_extra.json` (more calls: strided and large fills,
//! float64, bernoulli, dropout, every `nn.init` variant, an explicit `Generator`; written by
//! `tests/data/rng_extra.py`), within `parity/README.md`'s tolerances. Its own test binary, one
//! test: the cases seed the process-wide generator.

use ember_autograd::{manual_seed, DType, Generator, Tensor};
use ember_nn::init::{self, FanMode, Nonlinearity};
use ember_nn::{functional as F, Conv2d, Dropout, Embedding, Linear, Module, ReLU, Sequential};
use ember_testkit::parity::{cases, tensor};
use serde_json::Value;

/// PyTorch's `linspace(start, end, steps)` in float64 (Ember's `Tensor::linspace` is float32).
fn linspace_f64(start: f64, end: f64, steps: usize) -> Tensor {
    let step = (end - start) / (steps - 1) as f64;
    let v: Vec<f64> = (0..steps)
        .map(|i| {
            if i < steps / 2 {
                start + step * i as f64
            } else {
                end - step * (steps - 1 - i) as f64
            }
        })
        .collect();
    Tensor::from_vec(v, [steps])
}

fn zeros(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape.to_vec())
}

fn f64s(shape: &[usize]) -> Tensor {
    zeros(shape).to_dtype(DType::F64)
}

/// What Ember returns for the case named `name` (without its `/seed`), after the caller seeded
/// the default generator. Every case runs: there is no skipping.
fn run(name: &str) -> Vec<Tensor> {
    let one = |t: Tensor| vec![t];
    let (fan_in, leaky) = (FanMode::FanIn, Nonlinearity::LeakyRelu);
    match name {
        // parity/rng.json
        "randn_5" => one(Tensor::randn([5])),
        "randn_2x2" => one(Tensor::randn([2, 2])),
        "randn_17" => one(Tensor::randn([17])),
        "randn_f64_6" => one(Tensor::normal_with([6], 0.0, 1.0, DType::F64, None)),
        "rand_7" => one(Tensor::rand([7])),
        "rand_f64_5" => one(Tensor::uniform_with([5], 0.0, 1.0, DType::F64, None)),
        "randint_0_10_8" => one(Tensor::randint(0, 10, [8])),
        "randperm_10" => one(Tensor::randperm(10)),
        "normal_inplace" => one(zeros(&[5]).normal_(1.0, 2.0).clone()),
        "uniform_inplace" => one(zeros(&[5]).uniform_(-3.0, 3.0).clone()),
        "two_calls" => vec![Tensor::rand([3]), Tensor::randn([3])],
        "nn_linear_4_3" => Linear::new(4, 3).parameters(),
        "nn_mlp_8_4_2" => Sequential::new()
            .add(Linear::new(8, 4))
            .add(ReLU)
            .add(Linear::new(4, 2))
            .parameters(),
        // The layer itself: PyTorch's Conv2d.reset_parameters (Kaiming-uniform weight with
        // a = √5, then the bias from U(±1/√fan_in)), drawn in that order.
        "nn_conv2d_2_3_3" => Conv2d::new(2, 3, 3).parameters(),
        "kaiming_normal_3x5" => {
            let w = zeros(&[3, 5]);
            init::kaiming_normal_(&w, 0.0, fan_in, leaky);
            one(w)
        }
        "xavier_uniform_4x6" => {
            let w = zeros(&[4, 6]);
            init::xavier_uniform_(&w, 1.0);
            one(w)
        }
        // tests/data/rng_extra.json
        "randn_70000_every_997th" => one(Tensor::randn([70000]).slice(0, 0, 70000, 997)),
        "randn_16" => one(Tensor::randn([16])),
        "randn_f64_1000_every_37th" => {
            one(Tensor::normal_with([1000], 0.0, 1.0, DType::F64, None).slice(0, 0, 1000, 37))
        }
        "randn_f64_32" => one(Tensor::normal_with([32], 0.0, 1.0, DType::F64, None)),
        "normal_f64_40" => one(f64s(&[40]).normal_(1.5, 0.7).clone()),
        "normal_fn" => one(Tensor::normal([20], 2.0, 3.0)),
        "normal_transposed" => one(zeros(&[6, 4]).t().normal_(0.0, 1.0).clone()),
        "normal_sliced" => one(zeros(&[4, 12]).slice(1, 0, 12, 3).normal_(2.0, 0.5).clone()),
        "uniform_transposed" => one(zeros(&[5, 4]).t().uniform_(-1.0, 2.0).clone()),
        "rand_70000_every_997th" => one(Tensor::rand([70000]).slice(0, 0, 70000, 997)),
        "uniform_f32_9" => one(zeros(&[9]).uniform_(-0.3, 1.7).clone()),
        "uniform_f64_9" => one(f64s(&[9]).uniform_(-0.3, 1.7).clone()),
        "randint_wide" => one(Tensor::randint(-5, 1 << 33, [10])),
        "randint_small" => one(Tensor::randint(3, 10, [20])),
        "randint_2_28" => one(Tensor::randint(0, 1 << 28, [5])),
        "randint_below_2_28" => one(Tensor::randint(0, (1 << 28) - 1, [5])),
        "randperm_1000" => one(Tensor::randperm(1000)),
        "bernoulli_scalar_f32" => one(zeros(&[200]).bernoulli_(0.3).clone()),
        "bernoulli_scalar_u8" => one(zeros(&[50]).to_dtype(DType::U8).bernoulli_(0.5).clone()),
        "bernoulli_probs_f32" => one(Tensor::linspace(0.0, 1.0, 200).bernoulli()),
        "bernoulli_probs_f64" => one(linspace_f64(0.0, 1.0, 200).bernoulli()),
        "bernoulli_probs_strided" => one(Tensor::linspace(0.0, 1.0, 12)
            .reshape([3, 4])
            .t()
            .bernoulli()),
        "dropout_f32" => one(F::dropout(&Tensor::ones([200]), 0.3, true)),
        "dropout_module" => {
            one(Dropout::new(0.5).forward(&Tensor::arange_step(0.0, 20.0, 1.0, DType::F32)))
        }
        "dropout_f64" => one(F::dropout(
            &Tensor::ones([50]).to_dtype(DType::F64),
            0.2,
            true,
        )),
        "sequence" => vec![
            Tensor::randn([5]),
            Tensor::randn([5]),
            Tensor::randn([20]),
            Tensor::normal_with([3], 0.0, 1.0, DType::F64, None),
            Tensor::rand([2]),
            Tensor::randn([1]),
        ],
        "kaiming_uniform_default" => {
            let w = zeros(&[7, 5]);
            init::kaiming_uniform_(&w, 0.0, fan_in, leaky);
            one(w)
        }
        "kaiming_uniform_sqrt5" => {
            let w = zeros(&[7, 5]);
            init::kaiming_uniform_(&w, 5f64.sqrt(), fan_in, leaky);
            one(w)
        }
        "kaiming_normal_fan_out_relu" => {
            let w = zeros(&[20, 5]);
            init::kaiming_normal_(&w, 0.0, FanMode::FanOut, Nonlinearity::Relu);
            one(w)
        }
        "xavier_normal" => {
            let w = zeros(&[7, 5]);
            init::xavier_normal_(&w, 1.0);
            one(w)
        }
        "xavier_uniform_3d_gain2" => {
            let w = zeros(&[3, 4, 5]);
            init::xavier_uniform_(&w, 2.0);
            one(w)
        }
        "init_normal" => {
            let w = zeros(&[30]);
            init::normal_(&w, 0.0, 0.02);
            one(w)
        }
        "init_uniform" => {
            let w = zeros(&[30]);
            init::uniform_(&w, -0.1, 0.1);
            one(w)
        }
        "embedding" => one(Embedding::new(10, 3).weight.detach()),
        "linear_no_bias_then_rand" => vec![
            Linear::with_options(5, 3, false, None).weight.detach(),
            Tensor::rand([2]),
        ],
        "generator_object" => {
            let g = Generator::new(123);
            vec![
                Tensor::normal_with([20], 0.0, 1.0, DType::F32, Some(&g)),
                Tensor::uniform_with([3], 0.0, 1.0, DType::F32, Some(&g)),
                Tensor::randperm_with(8, Some(&g)),
                Tensor::rand([2]),
            ]
        }
        "seed_above_2_32" => one(Tensor::rand([3])),
        other => panic!("rng parity: no Ember call for case {other:?}"),
    }
}

/// Largest deviation of `got` from `want` (the README's rule: integers exact, float32 within
/// 1e-6 and float64 within 1e-12 absolute), panicking beyond it.
fn compare(case: &str, got: &Tensor, want: &Value) -> f64 {
    let want = tensor(want);
    assert_eq!(got.dtype(), want.dtype(), "{case}: dtype");
    assert_eq!(got.shape(), want.shape(), "{case}: shape");
    let tol = match want.dtype() {
        DType::F32 => 1e-6,
        DType::F64 => 1e-12,
        _ => 0.0,
    };
    let (g, w) = (got.contiguous().to_vec::<f64>(), want.to_vec::<f64>());
    let mut worst = 0f64;
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let d = (a - b).abs();
        assert!(d <= tol, "{case}: element {i} is {a}, PyTorch's {b}");
        worst = worst.max(d);
    }
    worst
}

fn check_file(path: &str, cases: Vec<Value>) -> usize {
    let mut checked = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let seed = case["seed"].as_u64().unwrap();
        manual_seed(seed);
        let got = run(name.split('/').next().unwrap());
        let want: Vec<&Value> = match &case["output"] {
            Value::Array(list) => list.iter().collect(),
            one => vec![one],
        };
        assert_eq!(got.len(), want.len(), "{name}: number of outputs");
        let worst = got
            .iter()
            .zip(want)
            .map(|(g, w)| compare(name, g, w))
            .fold(0.0, f64::max);
        println!("{path}: {name}: max deviation {worst:e}");
        checked += 1;
    }
    checked
}

#[test]
fn pytorch_random_numbers() {
    let extra: Value = serde_json::from_str(include_str!("data/rng_extra.json")).unwrap();
    let extra = extra["cases"].as_array().unwrap().clone();
    let n = check_file("parity/rng.json", cases("rng"))
        + check_file("tests/data/rng_extra.json", extra);
    // Every case of both files ran (they hold 32 and 73).
    assert_eq!(n, 32 + 73, "cases checked");
}
