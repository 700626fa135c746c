//! `cargo bench -p ember --bench conv`: the convolution workloads of issue 16 beside PyTorch's
//! figures: forward + backward of `Conv2d(32, 64, 3, padding=1)` on (64, 32, 14, 14) and of
//! `Conv2d(1, 32, 3, padding=1)` on (64, 1, 28, 28), `MaxPool2d(2)` forward + backward on
//! (64, 32, 28, 28) (inputs requiring grad, gradients of ones, as the reference script), and one
//! epoch of the MNIST CNN (Adam 1e-3, batch 64, shuffled DataLoader) with the process's peak RSS.
//!
//! `cargo bench -p ember --bench conv -- layers` runs only the single layers, `-- cnn` only the
//! epoch.

use ember::data::{DataLoader, Mnist};
use ember::nn::{self, Module};
use ember::optim::Adam;
use ember::Tensor;
use ember_testkit::bench::{best_of, TorchFigures};
use std::time::Instant;

/// Peak resident set size of this process in MiB (VmHWM), 0 where unknown.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The CNN of `cargo xtask train-mnist --model cnn`.
fn cnn() -> nn::Sequential {
    nn::Sequential::new()
        .add(nn::Conv2d::new(1, 32, 3).padding(1))
        .add(nn::ReLU)
        .add(nn::MaxPool2d::new(2))
        .add(nn::Conv2d::new(32, 64, 3).padding(1))
        .add(nn::ReLU)
        .add(nn::MaxPool2d::new(2))
        .add(nn::Flatten::new())
        .add(nn::Linear::new(3136, 128))
        .add(nn::ReLU)
        .add(nn::Linear::new(128, 10))
}

/// A single-layer workload: printed name, layer, input shape, key of PyTorch's figure.
type Case = (&'static str, Box<dyn Module>, [usize; 4], &'static str);

// docs/benchmarks.md has no quiet-machine PyTorch figures for these workloads yet, so without a
// same-session PyTorch run the comparison prints NaN rather than an invented baseline.
fn layers(torch: &TorchFigures) {
    ember::manual_seed(0);
    let cases: [Case; 3] = [
        (
            "Conv2d(32,64,3,p=1) fwd+bwd, (64,32,14,14)",
            Box::new(nn::Conv2d::new(32, 64, 3).padding(1)),
            [64, 32, 14, 14],
            "/conv/conv32_64_3x3_b64_14x14_fwd_bwd_us",
        ),
        (
            "Conv2d(1,32,3,p=1) fwd+bwd, (64,1,28,28)  ",
            Box::new(nn::Conv2d::new(1, 32, 3).padding(1)),
            [64, 1, 28, 28],
            "/conv/conv1_32_3x3_b64_28x28_fwd_bwd_us",
        ),
        (
            "MaxPool2d(2) fwd+bwd, (64,32,28,28)       ",
            Box::new(nn::MaxPool2d::new(2)),
            [64, 32, 28, 28],
            "/conv/maxpool2_b64_32x28x28_fwd_bwd_us",
        ),
    ];
    for (name, layer, shape, key) in cases {
        let x = Tensor::randn(shape).requires_grad_(true);
        let t = best_of(
            || {
                let y = layer.forward(&x);
                y.backward_with(&y.ones_like());
            },
            2.0,
            5,
        );
        let (ours, theirs) = (t * 1e6, torch.get(key, f64::NAN));
        println!(
            "{name} {ours:>9.0} us   PyTorch {theirs:>9.0} us   {:.2}x PyTorch's time   target <= 1.0x",
            ours / theirs
        );
    }
}

fn epoch(torch: &TorchFigures) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/mnist");
    let train = Mnist::train(&root)
        .expect("MNIST in datasets/mnist")
        .normalize(0.1307, 0.3081);
    let loader = DataLoader::new(train, 64).shuffle(true).seed(0);
    ember::manual_seed(0);
    let model = cnn();
    let mut opt = Adam::new(model.parameters(), 1e-3);
    let criterion = nn::CrossEntropyLoss::new();
    let start = Instant::now();
    let mut loss = 0.0;
    for (images, labels) in &loader {
        opt.zero_grad();
        let l = criterion.forward(&model.forward(&images), &labels);
        l.backward();
        opt.step();
        loss = l.item();
    }
    let secs = start.elapsed().as_secs_f64();
    // The reference script's first epoch (its only one under --quick), like ours here.
    let theirs = torch.get("/conv/cnn_epoch_times/0", f64::NAN);
    println!(
        "MNIST CNN epoch (Adam 1e-3, batch 64)       {secs:>9.2} s    PyTorch {theirs:>9.2} s    {:.2}x PyTorch's time   target <= 0.8x   (last batch loss {loss:.3})",
        secs / theirs
    );
    println!(
        "peak RSS of this process                    {:>9.0} MiB  PyTorch {:>9.0} MiB                        target <= 300 MiB",
        peak_rss_mib(),
        torch.get("/conv/peak_rss_mib", f64::NAN)
    );
}

fn main() {
    let torch = TorchFigures::load();
    println!(
        "ember conv benchmark, {} rayon threads; {}",
        rayon::current_num_threads(),
        torch.source()
    );
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |g: &str| args.is_empty() || args.iter().any(|a| a == g || a == "conv");
    if want("layers") {
        layers(&torch);
    }
    if want("cnn") {
        epoch(&torch);
    }
}
