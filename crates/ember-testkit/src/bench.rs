//! Benchmark helpers: the same timing method as PyTorch's reference script (best-of-5 mean after
//! calibration), and PyTorch's figures for side-by-side ratios.
//!
//! PyTorch's figures come from the JSON that `pytorch_reference.py --json FILE` writes, named by
//! the `EMBER_TORCH_JSON` environment variable (`cargo xtask bench` runs the script first when a
//! PyTorch environment exists). Without it, the documented baseline figures for this machine kind
//! are used and the output says so.

use serde_json::Value;
use std::time::Instant;

/// Best-of-`reps` mean seconds per call of `f`, each rep running about `min_time / reps` seconds
/// (the method of `pytorch_reference.py`'s `bench`).
pub fn best_of(mut f: impl FnMut(), min_time: f64, reps: usize) -> f64 {
    for _ in 0..10 {
        f();
    }
    let mut n = 1usize;
    let dt = loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        let dt = t.elapsed().as_secs_f64();
        if dt > min_time / reps as f64 / 4.0 {
            break dt;
        }
        n *= 2;
    };
    let n = ((n as f64) * (min_time / reps as f64) / dt.max(1e-9)).max(1.0) as usize;
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_secs_f64() / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// PyTorch's figures: from `EMBER_TORCH_JSON` when set, else the documented baseline.
pub struct TorchFigures {
    json: Option<Value>,
}

impl TorchFigures {
    /// Loads the figures (see the module docs).
    pub fn load() -> TorchFigures {
        let json = std::env::var("EMBER_TORCH_JSON")
            .ok()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str(&t).ok());
        TorchFigures { json }
    }

    /// Where the figures come from, for the benchmark's header.
    pub fn source(&self) -> &'static str {
        if self.json.is_some() {
            "PyTorch measured in this session (EMBER_TORCH_JSON)"
        } else {
            "PyTorch baseline from docs/benchmarks.md (not this session: run `cargo xtask bench` for a same-session ratio)"
        }
    }

    /// A figure at a JSON pointer (e.g. `/ops/add8_us`), or `fallback` from the documented baseline.
    pub fn get(&self, pointer: &str, fallback: f64) -> f64 {
        self.json
            .as_ref()
            .and_then(|j| j.pointer(pointer))
            .and_then(|v| v.as_f64())
            .unwrap_or(fallback)
    }

    /// PyTorch's GFLOP/s (allocating result) for sgemm at (m, k, n) with row-major operands.
    pub fn gemm(&self, mkn: [usize; 3], fallback: f64) -> f64 {
        self.gemm_layout(mkn, "nn", fallback)
    }

    /// PyTorch's GFLOP/s for sgemm at (m, k, n) with the operand layout `layout` (`"nn"`,
    /// `"nt"`: b transposed, `"tn"`: a transposed), or `fallback` when not measured.
    pub fn gemm_layout(&self, mkn: [usize; 3], layout: &str, fallback: f64) -> f64 {
        let found = self
            .json
            .as_ref()
            .and_then(|j| j["gemm"].as_array())
            .and_then(|a| {
                a.iter()
                    .find(|g| {
                        g["layout"].as_str().unwrap_or("nn") == layout
                            && g["mkn"].as_array().is_some_and(|v| {
                                v.iter().map(|x| x.as_u64().unwrap_or(0) as usize).eq(mkn)
                            })
                    })
                    .and_then(|g| g["gflops"].as_f64())
            });
        found.unwrap_or(fallback)
    }
}
