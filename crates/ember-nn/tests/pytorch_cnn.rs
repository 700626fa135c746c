//! A CNN trained and saved by PyTorch (`tests/data/cnn_pytorch.py`: Conv2d, BatchNorm2d with its
//! running statistics, MaxPool2d, a bias-free `padding="same"` Conv2d, AdaptiveAvgPool2d,
//! Linear) loads into the same Ember `Sequential` by PyTorch's `state_dict` names and gives
//! PyTorch's eval-mode output.

use ember_autograd::DType;
use ember_nn::{self as nn, Module};
use ember_testkit::{assert_close, elementwise_tol, tensor};
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The model of `cnn_pytorch.py`, written as a PyTorch user would.
fn cnn() -> nn::Sequential {
    nn::Sequential::new()
        .add(nn::Conv2d::new(1, 4, 3).padding(1))
        .add(nn::BatchNorm2d::new(4))
        .add(nn::ReLU)
        .add(nn::MaxPool2d::new(2))
        .add(nn::Conv2d::new(4, 6, 3).padding("same").bias(false))
        .add(nn::ReLU)
        .add(nn::AdaptiveAvgPool2d::new((2, 2)))
        .add(nn::Flatten::new())
        .add(nn::Linear::new(24, 3))
}

#[test]
fn a_cnn_pytorch_trained_and_saved_loads_and_matches_its_output() {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("cnn_pytorch.json")).unwrap()).unwrap();
    let model = cnn();
    let names: Vec<String> = model.state_dict().into_iter().map(|(n, _)| n).collect();
    let torch_names: Vec<&str> = v["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(names, torch_names, "state_dict names differ from PyTorch's");
    // Strict load: every name and shape must match.
    model
        .load_safetensors(data("cnn_pytorch.safetensors"))
        .unwrap();
    let state = model.state_dict();
    let tracked = state
        .iter()
        .find(|(n, _)| n == "1.num_batches_tracked")
        .map(|(_, t)| t.to_vec::<i64>())
        .unwrap();
    assert_eq!(
        tracked,
        [20],
        "BatchNorm2d's step count comes from PyTorch's 20 steps"
    );
    model.eval();
    let out = model.forward(&tensor(&v["input"]));
    let (atol, rtol) = elementwise_tol(DType::F32);
    assert_close("cnn_pytorch", &out, &v["output"], atol * 10.0, rtol * 10.0);
}
