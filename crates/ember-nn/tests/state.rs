//! state_dict and safetensors: PyTorch's names, a file written by PyTorch loading into the same
//! Sequential, round trips, one error listing every mismatch, strict and non-strict loads, and
//! corrupt or truncated files giving errors, never panics.

use ember_autograd::{DType, Tensor};
use ember_nn::{self as nn, Module, NnError};
use ember_testkit::{assert_close, elementwise_tol, parity_dir, tensor};
use proptest::prelude::*;
use std::path::PathBuf;

fn mlp() -> nn::Sequential {
    nn::Sequential::new()
        .add(nn::Linear::new(8, 4))
        .add(nn::ReLU)
        .add(nn::Linear::new(4, 2))
}

/// A file in a folder of its own (tests run in parallel).
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ember-nn-state-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn loads_the_file_pytorch_saved() {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(parity_dir().join("mlp_8_4_2.json")).unwrap(),
    )
    .unwrap();
    let model = mlp();
    // Optimizer-style handles taken before loading see the loaded values (in-place copy).
    let handles = model.parameters();
    model
        .load_safetensors(parity_dir().join("mlp_8_4_2.safetensors"))
        .unwrap();
    let out = model.forward(&tensor(&v["input"]));
    let (atol, rtol) = elementwise_tol(DType::F32);
    assert_close("mlp_8_4_2", &out, &v["output"], atol * 10.0, rtol * 10.0);
    assert_eq!(
        handles[3].to_vec::<f32>(),
        model[2].bias().unwrap().to_vec::<f32>()
    );
    assert!(handles.iter().all(|p| p.requires_grad() && p.is_leaf()));
}

#[test]
fn save_and_load_round_trip() {
    let a = nn::Sequential::new()
        .add(nn::Linear::new(3, 5))
        .add(nn::BatchNorm1d::new(5))
        .add(nn::Linear::new(5, 2));
    a.forward(&Tensor::rand([4, 3])); // moves the running statistics
    let path = tmp("roundtrip.safetensors");
    a.save_safetensors(&path).unwrap();
    let b = nn::Sequential::new()
        .add(nn::Linear::new(3, 5))
        .add(nn::BatchNorm1d::new(5))
        .add(nn::Linear::new(5, 2));
    b.load_safetensors(&path).unwrap();
    for ((na, ta), (nb, tb)) in a.state_dict().iter().zip(b.state_dict().iter()) {
        assert_eq!(na, nb);
        assert_eq!(ta.dtype(), tb.dtype());
        assert_eq!(ta.to_vec::<f64>(), tb.to_vec::<f64>(), "{na}");
    }
    a.eval();
    b.eval();
    let x = Tensor::rand([2, 3]);
    assert_eq!(a.forward(&x).to_vec::<f32>(), b.forward(&x).to_vec::<f32>());
    // The write left no temporary file behind.
    let dir = path.parent().unwrap();
    assert!(std::fs::read_dir(dir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));
    let names: Vec<String> = b.state_dict().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "0.weight",
            "0.bias",
            "1.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "1.num_batches_tracked",
            "2.weight",
            "2.bias"
        ]
    );
}

#[test]
fn every_mismatch_is_reported_at_once() {
    let model = mlp();
    let before = model.state_dict();
    let before: Vec<Vec<f32>> = before.iter().map(|(_, t)| t.to_vec::<f32>()).collect();
    let state = vec![
        ("0.weight".to_string(), Tensor::zeros([4, 7])),
        ("0.bias".to_string(), Tensor::zeros([4]).double()),
        ("2.weight".to_string(), Tensor::zeros([2, 4])),
        ("extra.weight".to_string(), Tensor::zeros([1])),
    ];
    let err = model.load_state_dict(&state, true).unwrap_err();
    assert_eq!(err.missing_keys, ["2.bias"]);
    assert_eq!(err.unexpected_keys, ["extra.weight"]);
    assert_eq!(
        err.shape_mismatches,
        [("0.weight".to_string(), vec![4, 7], vec![4, 8])]
    );
    assert_eq!(err.dtype_mismatches.len(), 1);
    let msg = err.to_string();
    for part in [
        "Missing key(s) in state_dict: \"2.bias\"",
        "Unexpected key(s) in state_dict: \"extra.weight\"",
        "size mismatch for 0.weight: copying a param with shape [4, 7] from checkpoint, the shape in current model is [4, 8]",
        "dtype mismatch for 0.bias: the checkpoint holds float64, the current model holds float32",
    ] {
        assert!(msg.contains(part), "{msg}");
    }
    // Nothing was copied.
    let after: Vec<Vec<f32>> = model
        .state_dict()
        .iter()
        .map(|(_, t)| t.to_vec::<f32>())
        .collect();
    assert_eq!(before, after);

    // Non-strict: names may be missing or unexpected, shapes must still fit.
    let keys = model
        .load_state_dict(
            &[
                ("2.weight".to_string(), Tensor::ones([2, 4])),
                ("other".to_string(), Tensor::ones([3])),
            ],
            false,
        )
        .unwrap();
    assert_eq!(keys.missing_keys, ["0.weight", "0.bias", "2.bias"]);
    assert_eq!(keys.unexpected_keys, ["other"]);
    assert!(model[2].weight().to_vec::<f32>().iter().all(|&v| v == 1.0));
    let err = model
        .load_state_dict(&[("2.weight".to_string(), Tensor::ones([3, 4]))], false)
        .unwrap_err();
    assert_eq!(err.shape_mismatches.len(), 1);
}

#[test]
fn file_errors_are_errors() {
    let model = mlp();
    match model.load_safetensors(tmp("does-not-exist.safetensors")) {
        Err(NnError::Io(e)) => assert!(e.to_string().contains("does-not-exist")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    let path = tmp("other-arch.safetensors");
    nn::Sequential::new()
        .add(nn::Linear::new(8, 3))
        .save_safetensors(&path)
        .unwrap();
    match model.load_safetensors(&path) {
        Err(NnError::Load(e)) => {
            assert_eq!(e.missing_keys, ["2.weight", "2.bias"]);
            assert_eq!(e.shape_mismatches.len(), 2);
        }
        other => panic!("expected a load error, got {other:?}"),
    }
    let keys = nn::Sequential::new()
        .add(nn::Linear::new(8, 3))
        .add(nn::ReLU)
        .add(nn::Linear::new(4, 2))
        .load_safetensors_with(&path, false)
        .unwrap();
    assert_eq!(keys.missing_keys, ["2.weight", "2.bias"]);
}

/// The safetensors bytes of an MLP's state (made once).
fn valid_bytes() -> Vec<u8> {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES
        .get_or_init(|| ember_autograd::io::serialize(&mlp().state_dict(), None).unwrap())
        .clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn truncated_files_are_errors(cut in 0usize..10_000) {
        let bytes = valid_bytes();
        let cut = cut % bytes.len();
        let model = mlp();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            nn::load_safetensors_bytes(&model, "truncated", &bytes[..cut], true)
        }));
        prop_assert!(r.is_ok(), "panicked on {} of {} bytes", cut, bytes.len());
        prop_assert!(r.unwrap().is_err());
    }

    #[test]
    fn corrupted_files_never_panic(
        flips in prop::collection::vec((0usize..10_000, any::<u8>()), 1..8),
        extra in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = valid_bytes();
        let n = bytes.len();
        for (at, v) in flips {
            bytes[at % n] = v;
        }
        bytes.extend(extra);
        let model = mlp();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            nn::load_safetensors_bytes(&model, "corrupt", &bytes, true).map(|_| ())
        }));
        prop_assert!(r.is_ok(), "panicked on corrupted bytes");
    }
}
