//! `cargo xtask bench-mnist` and `cargo xtask bench`.

use crate::train::{evaluate, mlp, mnist_on, parse_device, ModelKind, MEAN, STD};
use anyhow::{bail, Context, Result};
use ember::data::{DataLoader, Mnist};
use ember::nn::{self, Module};
use ember::optim::SGD;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Options of `bench-mnist`.
#[derive(clap::Args, Debug)]
pub struct BenchMnistArgs {
    /// Folder with the four MNIST files.
    #[arg(long, default_value = "datasets/mnist")]
    data: PathBuf,
    /// Write one JSON object with the figures to this file.
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// `cpu` or `cuda` (a build with `--features cuda` on a machine with a GPU).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// PyTorch's seconds per epoch measured in this session, to print the ratio (otherwise read
    /// from EMBER_TORCH_JSON's `/train/median_epoch_s`, else the documented baseline).
    #[arg(long)]
    torch_epoch_s: Option<f64>,
}

/// Peak resident set size of this process in bytes (VmHWM), 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn torch_figure(pointer: &str) -> Option<f64> {
    let path = std::env::var("EMBER_TORCH_JSON").ok()?;
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v.pointer(pointer)?.as_f64()
}

/// One epoch of the default training (batch 64, shuffled, through DataLoader) and the test pass,
/// timed in-process after a warm-up epoch.
pub fn bench_mnist(args: BenchMnistArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    let train = mnist_on(device, Mnist::train(&args.data)?.normalize(MEAN, STD));
    let test = mnist_on(device, Mnist::test(&args.data)?.normalize(MEAN, STD));
    let loader = DataLoader::new(train, 64).shuffle(true).seed(0);
    let test_loader = DataLoader::new(test, 1000);
    ember::manual_seed(0);
    let mut model = mlp();
    model.to(device);
    let mut opt = SGD::new(model.parameters(), 0.01).momentum(0.9);
    let criterion = nn::CrossEntropyLoss::new();
    let mut epoch = || {
        let start = Instant::now();
        let mut n = 0;
        for (images, labels) in &loader {
            opt.zero_grad();
            let loss =
                criterion.forward(&model.forward(&images.view([images.size(0), -1])), &labels);
            loss.backward();
            opt.step();
            loss.item();
            n += labels.numel();
        }
        (start.elapsed().as_secs_f64(), n)
    };
    epoch(); // warm-up: first-touch allocations, buffer pools, optimizer state
    let (secs, n) = epoch();
    let t = Instant::now();
    let (_, acc) = evaluate(&model, ModelKind::Mlp, &test_loader);
    let test_secs = t.elapsed().as_secs_f64();
    let rss = peak_rss_bytes();
    let torch = args
        .torch_epoch_s
        .or_else(|| torch_figure("/train/median_epoch_s"));
    println!(
        "MNIST MLP 784-128-64-10, SGD(0.01, momentum 0.9), batch 64, {} rayon threads",
        rayon::current_num_threads()
    );
    println!(
        "epoch (60,000 samples, shuffled DataLoader): {secs:.3} s, {:.0} samples/s",
        n as f64 / secs
    );
    println!(
        "test pass (10,000 samples): {test_secs:.3} s, test accuracy {:.2}% after 2 epochs",
        acc * 100.0
    );
    println!(
        "peak RSS: {:.1} MiB (target <= 150 MiB)",
        rss as f64 / (1 << 20) as f64
    );
    match torch {
        Some(t) => println!("PyTorch epoch (same session): {t:.3} s -> Ember takes {:.2}x PyTorch's time (target <= 0.50x)", secs / t),
        None => println!("PyTorch epoch (documented baseline 1.11-1.19 s): Ember takes {:.2}x (target <= 0.50x; run `cargo xtask bench` for a same-session ratio)", secs / 1.15),
    }
    if let Some(p) = &args.metrics {
        let json = serde_json::json!({
            "epoch_seconds": secs,
            "samples_per_second": n as f64 / secs,
            "test_accuracy": acc,
            "peak_rss_bytes": rss,
        });
        ember::io::atomic_write(p, format!("{json}\n").as_bytes())?;
    }
    Ok(())
}

/// Options of `bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Python with torch installed (default: ~/torchref/bin/python when it exists).
    #[arg(long)]
    python: Option<PathBuf>,
    /// PyTorch's reference script (default: the repository's copy).
    #[arg(long, default_value = "xtask/bench/pytorch_reference.py")]
    script: PathBuf,
    /// Skip PyTorch and compare with the documented baseline figures.
    #[arg(long)]
    no_torch: bool,
    /// Only these benchmark groups (gemm, bandwidth, ops, autograd, optim, mnist, conv,
    /// distributed).
    groups: Vec<String>,
}

/// Runs PyTorch's reference script for the groups `only` and writes their figures, merged into one
/// JSON object, to `target/pytorch_reference.json`; returns its absolute path.
///
/// The script prints markdown instead of JSON when asked for all five of its groups at once, so
/// the groups are run in two passes whenever they would make up the full set.
fn run_pytorch_reference(python: &Path, script: &Path, only: &[&str]) -> Result<PathBuf> {
    let passes: Vec<Vec<&str>> = if only.len() == 5 {
        let (rest, optim): (Vec<&str>, Vec<&str>) = only.iter().partition(|g| **g != "optim");
        vec![rest, optim]
    } else {
        vec![only.to_vec()]
    };
    std::fs::create_dir_all("target")?;
    let mut merged = serde_json::Map::new();
    for pass in passes.iter().filter(|p| !p.is_empty()) {
        let part = PathBuf::from(format!("target/pytorch_reference.{}.json", pass.join("_")));
        println!(
            "== PyTorch reference ({}): --only {}",
            python.display(),
            pass.join(",")
        );
        let status = Command::new(python)
            .arg(script)
            .args(["--only", &pass.join(","), "--json"])
            .arg(&part)
            .args(["--mnist", "datasets/mnist", "--quick"])
            .status()
            .context("running PyTorch's reference script")?;
        if !status.success() {
            bail!("{} exited with {status}", script.display());
        }
        let text = std::fs::read_to_string(&part)
            .with_context(|| format!("reading {}", part.display()))?;
        let serde_json::Value::Object(figures) = serde_json::from_str(&text)? else {
            bail!("{} is not a JSON object", part.display());
        };
        merged.extend(figures);
    }
    let path = PathBuf::from("target/pytorch_reference.json");
    ember::io::atomic_write(
        &path,
        serde_json::Value::Object(merged).to_string().as_bytes(),
    )?;
    Ok(path.canonicalize()?)
}

fn default_python() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let p = Path::new(&home).join("torchref/bin/python");
    p.exists().then_some(p)
}

/// Runs PyTorch's reference script (when available), then each crate's benchmark with the
/// PyTorch figures in `EMBER_TORCH_JSON`, so every ratio printed is same-session.
pub fn bench(args: BenchArgs) -> Result<()> {
    let want = |g: &str| args.groups.is_empty() || args.groups.iter().any(|x| x == g);
    let python = args.python.clone().or_else(default_python);
    let mut env_json = None;
    // `bench distributed` runs its own PyTorch reference (crate ember-distributed's benches/).
    let only_distributed =
        !args.groups.is_empty() && args.groups.iter().all(|g| g == "distributed");
    if !args.no_torch && !only_distributed {
        match (&python, args.script.exists()) {
            (Some(py), true) => {
                let mut only: Vec<&str> = ["gemm", "bandwidth", "ops", "optim"]
                    .into_iter()
                    .filter(|g| want(g) || (*g == "ops" && want("autograd")))
                    .collect();
                if want("mnist") {
                    only.push("train");
                }
                if want("conv") {
                    only.push("conv");
                }
                match run_pytorch_reference(py, &args.script, &only) {
                    Ok(path) => env_json = Some(path),
                    Err(e) => println!(
                        "PyTorch reference failed ({e:#}); comparing with the documented baseline"
                    ),
                }
            }
            _ => println!("no PyTorch environment found (see docs/benchmarks.md); comparing with the documented baseline"),
        }
    }
    let mut benches: Vec<(&str, &str, &str)> = Vec::new();
    if want("gemm") || want("bandwidth") || want("ops") {
        benches.push(("ember-kernels", "kernels", ""));
    }
    if want("autograd") || want("ops") {
        benches.push(("ember-autograd", "autograd", ""));
    }
    if want("autograd") || want("ops") {
        benches.push(("ember", "train_step", ""));
    }
    if want("optim") {
        benches.push(("ember-optim", "optim", ""));
    }
    if want("conv") {
        benches.push(("ember", "conv", ""));
    }
    for (pkg, name, _) in benches {
        println!("== cargo bench -p {pkg} --bench {name}");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["bench", "-q", "-p", pkg, "--bench", name, "--"])
            .args(&args.groups);
        if let Some(j) = &env_json {
            cmd.env("EMBER_TORCH_JSON", j);
        }
        if !cmd.status()?.success() {
            bail!("benchmark {pkg}/{name} failed");
        }
    }
    if want("distributed") {
        crate::distributed::bench(python.as_deref().filter(|_| !args.no_torch))?;
    }
    if want("mnist") {
        println!("== bench-mnist");
        if let Some(j) = &env_json {
            std::env::set_var("EMBER_TORCH_JSON", j);
        }
        bench_mnist(BenchMnistArgs {
            data: "datasets/mnist".into(),
            metrics: None,
            device: "cpu".into(),
            torch_epoch_s: None,
        })?;
    }
    Ok(())
}
