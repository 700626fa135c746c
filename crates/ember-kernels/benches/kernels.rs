//! `cargo bench -p ember-kernels`: the kernel figures of the foundation issue, each beside
//! PyTorch's and the ratio (see `ember_testkit::bench` for where PyTorch's figures come from).

use ember_autograd::Tensor;
use ember_testkit::bench::{best_of, TorchFigures};
use std::hint::black_box;

fn row(name: &str, ours: f64, torch: f64, unit: &str, higher_is_better: bool, target: &str) {
    let ratio = ours / torch;
    let verdict = if higher_is_better {
        format!("{:.2}x PyTorch's rate", ratio)
    } else {
        format!("{:.2}x PyTorch's time", ratio)
    };
    println!("{name:<34} {ours:>10.2} {unit:<7} PyTorch {torch:>10.2} {unit:<7} {verdict:<22} target {target}");
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects groups by substring.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let on = |g: &str| filter.is_empty() || filter.iter().any(|f| g.contains(f.as_str()));
    let torch = TorchFigures::load();
    println!(
        "ember-kernels benchmarks ({} rayon threads); {}",
        rayon::current_num_threads(),
        torch.source()
    );

    if on("gemm") {
        // The shapes with row-major operands, then the MNIST MLP's training products
        // with the layouts it uses ("nt": x @ w.t(), "tn": g.t() @ x), as the reference script
        // times them.
        let cases = [
            ([64, 784, 128], "nn", 145.0, "1.00x"),
            ([784, 64, 128], "nn", 150.0, "1.00x"),
            ([64, 128, 64], "nn", 100.0, "1.00x"),
            ([128, 64, 64], "nn", 100.0, "1.00x"),
            ([512, 512, 512], "nn", 180.0, "0.95x"),
            ([1024, 1024, 1024], "nn", 179.0, "0.95x"),
            ([64, 784, 128], "nt", f64::NAN, "1.00x"),
            ([64, 128, 784], "nn", f64::NAN, "1.00x"),
            ([128, 64, 784], "tn", f64::NAN, "1.00x"),
            ([64, 128, 64], "nt", f64::NAN, "1.00x"),
            ([64, 64, 128], "nn", f64::NAN, "1.00x"),
            ([64, 64, 128], "tn", f64::NAN, "1.00x"),
            ([784, 64, 128], "tn", f64::NAN, "1.00x"),
        ];
        for (mkn, layout, fallback, target) in cases {
            let [m, k, n] = mkn;
            let a = if layout.starts_with('t') {
                Tensor::randn([k, m]).t()
            } else {
                Tensor::randn([m, k])
            };
            let b = if layout.ends_with('t') {
                Tensor::randn([n, k]).t()
            } else {
                Tensor::randn([k, n])
            };
            let t = best_of(
                || drop(black_box(a.matmul(&b))),
                if m * k * n >= 1 << 30 { 3.0 } else { 1.0 },
                5,
            );
            let gflops = 2.0 * (m * k * n) as f64 / t / 1e9;
            row(
                &format!("sgemm {m}x{k}x{n} {layout}"),
                gflops,
                torch.gemm_layout(mkn, layout, fallback),
                "GFLOP/s",
                true,
                target,
            );
        }
    }
    if on("bandwidth") {
        let n = 16 << 20;
        let a = Tensor::randn([n]);
        let b = Tensor::randn([n]);
        let t = best_of(|| drop(black_box(&a + &b)), 2.0, 5);
        row(
            "add 16M f32 (new result)",
            12.0 * n as f64 / t / 1e9,
            torch.get("/bandwidth/add16M/gbs", 7.3),
            "GB/s",
            true,
            "2.00x",
        );
        let t = best_of(|| drop(black_box(a.relu())), 2.0, 5);
        row(
            "relu 16M f32 (new result)",
            8.0 * n as f64 / t / 1e9,
            torch.get("/bandwidth/relu16M/gbs", 5.3),
            "GB/s",
            true,
            "-",
        );
        let t = best_of(|| drop(black_box(a.sum())), 2.0, 5);
        row(
            "sum 16M f32",
            4.0 * n as f64 / t / 1e9,
            torch.get("/bandwidth/sum16M/gbs", 38.0),
            "GB/s",
            true,
            "0.90x",
        );
        let x = Tensor::randn([4096, 1000]);
        let t = best_of(|| drop(black_box(x.softmax(1))), 1.0, 5);
        row(
            "softmax (4096,1000)",
            t * 1e3,
            torch.get("/bandwidth/softmax4096x1000/us", 2800.0) / 1e3,
            "ms",
            false,
            "<= 1.00x",
        );
    }
    if on("ops") {
        let a = Tensor::randn([8]);
        let b = Tensor::randn([8]);
        let t = best_of(|| drop(black_box(&a + &b)), 1.0, 5);
        row(
            "tiny op: a + b, 8 f32 (Tensor API)",
            t * 1e6,
            torch.get("/ops/add8_us", 1.46),
            "us",
            false,
            "<= 0.25x",
        );
    }
}
