//! Loads the vectors PyTorch computed (`parity/*.json`, format in `parity/README.md`) as Ember
//! tensors and compares results with the README's tolerances.

use ember_autograd::{DType, Tensor};
use serde_json::Value;
use std::path::PathBuf;

/// The repository's `parity/` folder.
pub fn parity_dir() -> PathBuf {
    // `EMBER_PARITY_DIR` lets prebuilt test binaries run from another checkout (the GPU check).
    if let Some(d) = std::env::var_os("EMBER_PARITY_DIR") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../parity")
}

/// The `cases` of `parity/<name>.json`.
pub fn cases(name: &str) -> Vec<Value> {
    let path = parity_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::Bool(b) => *b as u8 as f64,
        Value::String(s) => match s.as_str() {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            other => panic!("unexpected value {other}"),
        },
        other => panic!("unexpected value {other}"),
    }
}

/// A tensor from `{"dtype", "shape", "data"}` (no view steps applied, no requires_grad).
pub fn tensor(v: &Value) -> Tensor {
    let dtype = DType::from_name(v["dtype"].as_str().unwrap()).unwrap();
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap() as usize)
        .collect();
    let data = v["data"].as_array().unwrap();
    match dtype {
        DType::I64 => Tensor::from_vec(
            data.iter()
                .map(|x| x.as_i64().unwrap())
                .collect::<Vec<i64>>(),
            shape,
        ),
        DType::F64 => Tensor::from_vec(data.iter().map(num).collect::<Vec<f64>>(), shape),
        _ => Tensor::from_vec(data.iter().map(num).collect::<Vec<f64>>(), shape).to_dtype(dtype),
    }
}

/// [`tensor`] with `requires_grad` set when the case records it.
pub fn leaf_input(v: &Value) -> Tensor {
    let t = tensor(v);
    if v["requires_grad"].as_bool().unwrap_or(false) {
        t.requires_grad_(true)
    } else {
        t
    }
}

/// An op input: the tensor, its `view` steps applied (strided input), and `requires_grad` set on
/// the leaf. Returns (leaf, viewed input).
pub fn input(v: &Value) -> (Tensor, Tensor) {
    let leaf = leaf_input(v);
    let mut x = leaf.clone();
    if let Some(steps) = v.get("view").and_then(|s| s.as_array()) {
        for step in steps {
            let s = step.as_array().unwrap();
            let i = |k: usize| s[k].as_i64().unwrap() as isize;
            x = match s[0].as_str().unwrap() {
                "transpose" => x.transpose(i(1), i(2)),
                "permute" => x.permute(
                    s[1].as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_i64().unwrap())
                        .collect::<Vec<i64>>(),
                ),
                "narrow" => x.narrow(i(1), i(2) as usize, i(3) as usize),
                "slice" => {
                    let stop = if s[3].is_null() {
                        usize::MAX
                    } else {
                        i(3) as usize
                    };
                    x.slice(i(1), i(2) as usize, stop, i(4) as usize)
                }
                "expand" => x.expand(
                    s[1].as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_i64().unwrap())
                        .collect::<Vec<i64>>(),
                ),
                other => panic!("unknown view step {other}"),
            };
        }
    }
    (leaf, x)
}

/// Asserts `got` matches PyTorch's `want` (shape, dtype, values within the README's tolerance:
/// `atol + rtol * |want|`; integers and bools exactly; NaN matches NaN).
pub fn assert_close(what: &str, got: &Tensor, want: &Value, atol: f64, rtol: f64) {
    let w = tensor(want);
    assert_eq!(got.shape(), w.shape(), "{what}: shape");
    assert_eq!(got.dtype(), w.dtype(), "{what}: dtype");
    let (g, e) = (got.to_vec::<f64>(), w.to_vec::<f64>());
    let exact = !w.dtype().is_float();
    for (i, (a, b)) in g.iter().zip(&e).enumerate() {
        let ok = if exact {
            a == b
        } else {
            (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= atol + rtol * b.abs()
        };
        assert!(ok, "{what}: element {i}: got {a}, PyTorch {b}");
    }
}

/// Tolerances of `parity/README.md` for a result of `dtype`: (atol, rtol) for elementwise ops.
pub fn elementwise_tol(dtype: DType) -> (f64, f64) {
    if dtype == DType::F64 {
        (1e-12, 1e-10)
    } else {
        (1e-5, 1e-4)
    }
}

/// Tolerances after reductions over many terms or long trajectories.
pub fn reduction_tol(dtype: DType) -> (f64, f64) {
    if dtype == DType::F64 {
        (1e-12, 1e-10)
    } else {
        (1e-4, 1e-3)
    }
}
