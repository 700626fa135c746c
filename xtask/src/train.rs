//! `cargo xtask train-mnist`: the seeds' training loop, end to end.

use anyhow::{bail, Context, Result};
use ember::data::{DataLoader, Dataset, Mnist};
use ember::nn::{self, Module};
use ember::optim::lr_scheduler::{CosineAnnealingLR, LRScheduler, OneCycleLR, StepLR};
use ember::optim::{Adam, Optimizer, StateDict, SGD};
use ember::{no_grad, Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Options of `train-mnist`.
#[derive(clap::Args, Clone, Debug)]
pub struct TrainArgs {
    /// Number of epochs.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Samples per batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// `mlp` (784-128-64-10) or `cnn` (two 3×3 conv + max-pool stages, then 3136-128-10).
    #[arg(long, default_value = "mlp")]
    pub model: String,
    /// Learning rate (default: 0.01 for the MLP, 0.001 for the CNN, as PyTorch's scripts).
    #[arg(long)]
    pub lr: Option<f64>,
    /// `sgd` (momentum 0.9) or `adam` (default: sgd for the MLP, adam for the CNN).
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Seed for the initial weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// `cpu` or `cuda`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Folder with the four MNIST files.
    #[arg(long, default_value = "datasets/mnist")]
    pub data: PathBuf,
    /// Folder for the checkpoints (model and optimizer state, written after each epoch).
    #[arg(long, default_value = "runs/mnist")]
    pub out: PathBuf,
    /// Continue from the checkpoints in `--out`.
    #[arg(long)]
    pub resume: bool,
    /// Learning-rate schedule: `none`, `step` (×0.7 every epoch, as PyTorch's MNIST example),
    /// `cosine` (cosine annealing over `--epochs`) or `onecycle` (1cycle up to `--lr`, stepped per
    /// batch).
    #[arg(long, default_value = "none")]
    pub scheduler: String,
    /// Stop after this many epochs as if interrupted (the schedule still spans `--epochs`).
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
    /// Train on only the first N batches of each epoch (a quick run, like Lightning's
    /// `limit_train_batches`; the test set is still evaluated in full). With `--distributed`,
    /// N steps of the global batch.
    #[arg(long, value_name = "N")]
    pub limit_batches: Option<usize>,
    /// Append one JSON object per epoch to this file.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Draw the loss and accuracy curves into this PNG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Print nothing.
    #[arg(long, hide = true)]
    pub quiet: bool,
    /// Data-parallel over the ranks of `mpirun -np N` (see xtask/src/distributed.rs).
    #[arg(long)]
    pub distributed: bool,
}

/// One epoch's results.
#[derive(Clone, Debug)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Mean test loss.
    pub test_loss: f64,
    /// Fraction of test images classified correctly.
    pub test_accuracy: f64,
    /// Wall time of the training part of the epoch.
    pub epoch_seconds: f64,
    /// Training samples per second.
    pub samples_per_second: f64,
}

impl EpochStats {
    /// The epoch as the stable JSON object of `--metrics`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "test_loss": self.test_loss,
            "test_accuracy": self.test_accuracy,
            "epoch_seconds": self.epoch_seconds,
            "samples_per_second": self.samples_per_second,
        })
    }
}

/// The seeds' MLP: 784-128-64-10 with ReLU (logits out; CrossEntropyLoss applies log-softmax).
pub fn mlp() -> nn::Sequential {
    nn::Sequential::new()
        .add(nn::Linear::new(784, 128))
        .add(nn::ReLU)
        .add(nn::Linear::new(128, 64))
        .add(nn::ReLU)
        .add(nn::Linear::new(64, 10))
}

/// The CNN of issue 16 (PyTorch's classic MNIST CNN): two `Conv2d(3×3, padding 1) → ReLU →
/// MaxPool2d(2)` stages (32 and 64 channels), then `Flatten → Linear(3136, 128) → ReLU →
/// Linear(128, 10)`.
pub fn cnn() -> nn::Sequential {
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

/// The model named by `--model`, with its defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// [`mlp`]: flattened images, SGD with momentum at 0.01 by default.
    Mlp,
    /// [`cnn`]: `(N, 1, 28, 28)` images, Adam at 0.001 by default.
    Cnn,
}

impl ModelKind {
    /// Parses `--model`.
    pub fn parse(name: &str) -> Result<ModelKind> {
        match name {
            "mlp" => Ok(ModelKind::Mlp),
            "cnn" => Ok(ModelKind::Cnn),
            other => bail!("--model must be mlp or cnn, got '{other}'"),
        }
    }

    /// The name used on the command line and in checkpoints.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Cnn => "cnn",
        }
    }

    /// A freshly initialised model (from the default generator).
    pub fn build(self) -> nn::Sequential {
        match self {
            ModelKind::Mlp => mlp(),
            ModelKind::Cnn => cnn(),
        }
    }

    /// The batch of images `(N, 1, 28, 28)` as the model takes it.
    pub fn input(self, images: &Tensor) -> Tensor {
        match self {
            ModelKind::Mlp => images.view([images.size(0), -1]),
            ModelKind::Cnn => images.clone(),
        }
    }

    /// The default learning rate and optimizer of PyTorch's reference scripts.
    pub fn defaults(self) -> (f64, &'static str) {
        match self {
            ModelKind::Mlp => (0.01, "sgd"),
            ModelKind::Cnn => (1e-3, "adam"),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ModelKind::Mlp => "MLP 784-128-64-10",
            ModelKind::Cnn => "CNN conv3x3(32)-pool-conv3x3(64)-pool-3136-128-10",
        }
    }
}

/// The optimizer named on the command line.
pub enum AnyOptimizer {
    /// SGD with momentum 0.9
    Sgd(SGD),
    /// Adam
    Adam(Adam),
}

impl AnyOptimizer {
    fn new(name: &str, params: Vec<Tensor>, lr: f64) -> Result<AnyOptimizer> {
        Ok(match name {
            "sgd" => AnyOptimizer::Sgd(SGD::new(params, lr).momentum(0.9)),
            "adam" => AnyOptimizer::Adam(Adam::new(params, lr)),
            other => bail!("--optimizer must be sgd or adam, got '{other}'"),
        })
    }

    fn opt(&mut self) -> &mut dyn Optimizer {
        match self {
            AnyOptimizer::Sgd(o) => o,
            AnyOptimizer::Adam(o) => o,
        }
    }
}

/// The learning-rate schedule named on the command line, and whether it steps per batch.
struct Schedule {
    scheduler: Box<dyn LRScheduler>,
    per_batch: bool,
}

impl Schedule {
    fn new(
        name: &str,
        opt: &mut dyn Optimizer,
        epochs: usize,
        batches: usize,
        lr: f64,
    ) -> Result<Option<Schedule>> {
        let (scheduler, per_batch): (Box<dyn LRScheduler>, bool) = match name {
            "none" => return Ok(None),
            "step" => (Box::new(StepLR::new(opt, 1, 0.7)), false),
            "cosine" => (
                Box::new(CosineAnnealingLR::new(opt, epochs.max(1), 0.0)),
                false,
            ),
            "onecycle" => (
                Box::new(OneCycleLR::new(opt, lr, (epochs * batches).max(1))),
                true,
            ),
            other => bail!("--scheduler must be none, step, cosine or onecycle, got '{other}'"),
        };
        Ok(Some(Schedule {
            scheduler,
            per_batch,
        }))
    }
}

/// `--device cpu|cuda`; CUDA only where a device can be used (the reason otherwise).
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => match ember::cuda::unavailable_reason() {
            None => Ok(Device::Cuda(0)),
            Some(why) => bail!(
                "--device cuda: no CUDA device is available ({why}; build xtask with `--features cuda`, or use --device cpu)"
            ),
        },
        other => bail!("--device must be cpu or cuda, got '{other}'"),
    }
}

/// MNIST as the training loop reads it: on the CPU the host dataset (its batches converted
/// straight into the batch buffer), on a GPU the images uploaded once and every batch gathered
/// and normalised there.
pub type MnistSet = Arc<dyn Dataset<Sample = (Tensor, Tensor)>>;

/// `mnist` for a loop running on `device`.
pub fn mnist_on(device: Device, mnist: Mnist) -> MnistSet {
    match device {
        Device::Cpu => Arc::new(mnist),
        _ => Arc::new(mnist.to_device(device)),
    }
}

/// The MNIST normalisation used by the seeds' programs and PyTorch's reference run.
pub const MEAN: f32 = 0.1307;
/// See [`MEAN`].
pub const STD: f32 = 0.3081;

/// Mean loss and accuracy of `model` on `loader`'s batches, without recording a graph.
pub fn evaluate(
    model: &nn::Sequential,
    kind: ModelKind,
    loader: &DataLoader<MnistSet>,
) -> (f64, f64) {
    let _g = no_grad();
    let criterion = nn::CrossEntropyLoss::new().reduction(nn::Reduction::Sum);
    let (mut loss, mut correct, mut n) = (0.0, 0usize, 0usize);
    for (images, labels) in loader {
        let logits = model.forward(&kind.input(&images));
        loss += criterion.forward(&logits, &labels).item();
        correct += logits
            .argmax(Some(1), false)
            .eq(&labels)
            .to_dtype(ember::DType::I64)
            .sum()
            .item() as usize;
        n += labels.numel();
    }
    (loss / n as f64, correct as f64 / n as f64)
}

fn checkpoint_paths(out: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        out.join("model.safetensors"),
        out.join("optimizer.safetensors"),
        out.join("progress.json"),
    )
}

/// Runs the training described by `args`; returns every epoch's statistics and the model.
pub fn run(args: TrainArgs) -> Result<(Vec<EpochStats>, nn::Sequential)> {
    let dist = crate::distributed::Dist::init(args.distributed)?;
    if let Some(t) = args.threads.or(dist.threads()) {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .ok();
    }
    let device = parse_device(&args.device)?;
    let kind = ModelKind::parse(&args.model)?;
    let (default_lr, default_opt) = kind.defaults();
    let lr = args.lr.unwrap_or(default_lr);
    let opt_name = args
        .optimizer
        .clone()
        .unwrap_or_else(|| default_opt.to_string());
    let say = |s: String| {
        if !args.quiet && dist.is_main() {
            println!("{s}");
        }
    };
    let train = mnist_on(device, Mnist::train(&args.data)?.normalize(MEAN, STD));
    let test = mnist_on(device, Mnist::test(&args.data)?.normalize(MEAN, STD));
    let loader = dist.loader(train, args.batch_size, args.seed)?;
    let test_loader = DataLoader::new(test, 1000);
    let batches_per_epoch = args
        .limit_batches
        .map_or(loader.len(), |n| n.min(loader.len()));

    ember::manual_seed(args.seed);
    let mut model = kind.build();
    model.to(device);
    let mut optimizer = AnyOptimizer::new(&opt_name, model.parameters(), lr)?;
    let mut schedule = Schedule::new(
        &args.scheduler,
        optimizer.opt(),
        args.epochs,
        batches_per_epoch,
        lr,
    )?;
    let criterion = nn::CrossEntropyLoss::new();

    let (model_path, opt_path, progress_path) = checkpoint_paths(&args.out);
    let mut first_epoch = 0;
    if args.resume {
        let progress: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&progress_path)
                .with_context(|| format!("--resume: no checkpoint in {}", args.out.display()))?,
        )?;
        first_epoch = progress["epochs_done"]
            .as_u64()
            .context("progress.json: missing epochs_done")? as usize;
        // Checkpoints written before `--model` existed hold the MLP.
        let saved = progress["model"].as_str().unwrap_or("mlp");
        if saved != kind.name() {
            bail!(
                "--resume: the checkpoint in {} holds the {saved} model, not --model {}",
                args.out.display(),
                kind.name()
            );
        }
        model.load_safetensors(&model_path)?;
        optimizer
            .opt()
            .load_state_dict(&StateDict::load(&opt_path)?)?;
        // The optimizer's state holds the learning rate the schedule had set; the scheduler's
        // state (saved beside the progress marker) continues the schedule from there.
        if let Some(s) = schedule.as_mut() {
            let state = progress.get("scheduler").with_context(|| {
                format!(
                    "--resume --scheduler {}: the checkpoint in {} was written without a scheduler",
                    args.scheduler,
                    args.out.display()
                )
            })?;
            s.scheduler.load_state_dict(state)?;
        }
        say(format!(
            "resuming after epoch {first_epoch} from {}",
            args.out.display()
        ));
    }
    let model = dist.wrap(model)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    say(format!(
        "training {} ({} parameters) on {} MNIST images, batch {}, {} lr {}, {} rayon threads",
        kind.describe(),
        model.num_parameters(),
        loader.dataset().len(),
        args.batch_size,
        opt_name,
        lr,
        rayon::current_num_threads()
    ));
    let interactive = std::io::stdout().is_terminal() && !args.quiet && dist.is_main();
    let mut history = Vec::new();
    let mut metrics = match &args.metrics {
        Some(p) if dist.is_main() => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ),
        _ => None,
    };
    let last_epoch = args.stop_after.unwrap_or(args.epochs).min(args.epochs);
    for epoch in first_epoch..last_epoch {
        loader.set_epoch(epoch as u64);
        model.train();
        let bar = interactive.then(|| {
            let b = ProgressBar::new(batches_per_epoch as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} loss {msg} {per_sec} ETA {eta}",
                )
                .unwrap()
                .progress_chars("=> "),
            );
            b.set_prefix(format!("{}/{}", epoch + 1, args.epochs));
            b
        });
        let start = Instant::now();
        let (mut running, mut batches, mut samples) = (0.0, 0usize, 0usize);
        for (images, labels) in loader.iter().take(batches_per_epoch) {
            let images = kind.input(&images);
            optimizer.opt().zero_grad();
            let loss = criterion.forward(&model.forward_train(&images)?, &labels);
            model.backward(&loss)?;
            optimizer.opt().step();
            if let Some(s) = schedule.as_mut().filter(|s| s.per_batch) {
                s.scheduler.step(optimizer.opt());
            }
            let l = loss.item();
            running += l;
            batches += 1;
            samples += labels.numel();
            if let Some(b) = &bar {
                b.inc(1);
                if batches % 20 == 0 {
                    b.set_message(format!("{:.4}", running / batches as f64));
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        if let Some(s) = schedule.as_mut().filter(|s| !s.per_batch) {
            s.scheduler.step(optimizer.opt());
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        model.eval();
        let (test_loss, acc) = evaluate(&model, kind, &test_loader);
        let stats = EpochStats {
            epoch: epoch + 1,
            train_loss: dist.mean(running / batches.max(1) as f64)?,
            test_loss,
            test_accuracy: acc,
            epoch_seconds: secs,
            samples_per_second: (samples * dist.world_size()) as f64 / secs,
        };
        say(format!(
            "epoch {}/{}: train loss {:.4}, test loss {:.4}, test accuracy {:.2}%, {:.2} s ({:.0} samples/s)",
            stats.epoch,
            args.epochs,
            stats.train_loss,
            stats.test_loss,
            100.0 * stats.test_accuracy,
            stats.epoch_seconds,
            stats.samples_per_second
        ));
        if let Some(f) = metrics.as_mut() {
            writeln!(f, "{}", stats.to_json())?;
        }
        // Checkpoint atomically: model, optimizer, then the progress marker that names them
        // (and carries the scheduler's state, so the two cannot disagree). Only rank 0 writes.
        if dist.is_main() {
            model.save_safetensors(&model_path)?;
            optimizer.opt().state_dict().save(&opt_path)?;
            let mut progress = serde_json::json!({
                "epochs_done": epoch + 1,
                "seed": args.seed,
                "model": kind.name(),
            });
            if let Some(s) = &schedule {
                progress["scheduler"] = s.scheduler.state_dict();
            }
            ember::io::atomic_write(&progress_path, progress.to_string().as_bytes())?;
        }
        history.push(stats);
        if let Some(p) = args.plot.as_ref().filter(|_| dist.is_main()) {
            crate::plot::loss_curves(p, &history)?;
        }
    }
    if let Some(p) = &args.plot {
        say(format!("plot written to {}", p.display()));
    }
    Ok((history, model.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `run` seeds the process-wide generator before building the model, so tests that train
    /// must not overlap.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn args(out: &Path, epochs: usize, resume: bool) -> TrainArgs {
        TrainArgs {
            epochs,
            batch_size: 500,
            model: "mlp".into(),
            lr: Some(0.05),
            optimizer: Some("sgd".into()),
            seed: 7,
            threads: None,
            device: "cpu".into(),
            data: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../datasets/mnist"),
            out: out.to_path_buf(),
            resume,
            scheduler: "none".into(),
            stop_after: None,
            limit_batches: None,
            metrics: None,
            plot: None,
            quiet: true,
            distributed: false,
        }
    }

    fn weights(m: &nn::Sequential) -> Vec<Vec<f32>> {
        m.parameters().iter().map(|p| p.to_vec::<f32>()).collect()
    }

    #[test]
    fn resume_gives_the_same_weights_as_an_uninterrupted_run() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        for scheduler in ["none", "step", "cosine", "onecycle"] {
            let dir = std::env::temp_dir()
                .join(format!("ember-resume-{scheduler}-{}", std::process::id()));
            let (a, b) = (dir.join("straight"), dir.join("resumed"));
            let with = |out: &Path, resume: bool, stop_after: Option<usize>| TrainArgs {
                scheduler: scheduler.into(),
                stop_after,
                ..args(out, 2, resume)
            };
            let (hist, straight) = run(with(&a, false, None)).unwrap();
            assert_eq!(hist.len(), 2);
            assert!(
                hist[1].test_accuracy > 0.85,
                "a short run should already learn ({scheduler}): {:?}",
                hist[1]
            );
            // Interrupted after one epoch, then resumed: the schedule continues where it stopped.
            run(with(&b, false, Some(1))).unwrap();
            let (hist_b, resumed) = run(with(&b, true, None)).unwrap();
            assert_eq!(
                hist_b.len(),
                1,
                "the resumed run does only the remaining epoch"
            );
            assert_eq!(
                weights(&straight),
                weights(&resumed),
                "resumed weights differ from the uninterrupted run with --scheduler {scheduler}"
            );
            std::fs::remove_dir_all(&dir).ok();
        }
    }

    #[test]
    fn limit_batches_is_in_the_help() {
        use clap::Args;
        let help = TrainArgs::augment_args(clap::Command::new("train-mnist"))
            .render_long_help()
            .to_string();
        assert!(help.contains("--limit-batches <N>"), "{help}");
    }

    #[test]
    fn limit_batches_trains_only_that_many_batches() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = std::env::temp_dir().join(format!("ember-limit-{}", std::process::id()));
        // Two batches of 500 at a high learning rate cannot reach what a whole epoch does.
        let (hist, _) = run(TrainArgs {
            limit_batches: Some(2),
            ..args(&dir, 1, false)
        })
        .unwrap();
        assert!(hist[0].test_accuracy < 0.8, "{:?}", hist[0]);
        // samples/s is computed from the samples actually trained on.
        let samples = hist[0].samples_per_second * hist[0].epoch_seconds;
        assert!((samples - 1000.0).abs() < 1.0, "{samples} samples");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// `--model cnn` end to end, shortened by `--limit-batches`: it learns, writes the same
    /// metrics and plot as the MLP, refuses to resume into the other model, and resumes to the
    /// weights of an uninterrupted run.
    #[test]
    fn cnn_trains_writes_its_metrics_and_resumes_exactly() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = std::env::temp_dir().join(format!("ember-cnn-{}", std::process::id()));
        let (a, b) = (dir.join("straight"), dir.join("resumed"));
        let cnn = |out: &Path, resume: bool, stop_after: Option<usize>| TrainArgs {
            model: "cnn".into(),
            batch_size: 64,
            // The CNN's own defaults: Adam at 1e-3.
            lr: None,
            optimizer: None,
            limit_batches: Some(40),
            stop_after,
            metrics: Some(out.join("metrics.jsonl")),
            plot: Some(out.join("curves.png")),
            ..args(out, 2, resume)
        };
        let (hist, straight) = run(cnn(&a, false, None)).unwrap();
        assert_eq!(hist.len(), 2);
        // 80 Adam steps of 64 images: far past chance (10%), well short of a whole epoch.
        assert!(hist[1].test_accuracy > 0.8, "{:?}", hist[1]);
        assert!(hist[1].train_loss < hist[0].train_loss, "{hist:?}");
        let metrics = std::fs::read_to_string(a.join("metrics.jsonl")).unwrap();
        assert_eq!(metrics.lines().count(), 2, "{metrics}");
        for line in metrics.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["test_accuracy"].as_f64().is_some(), "{line}");
        }
        let png = std::fs::read(a.join("curves.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // The CNN's checkpoint does not resume the MLP.
        let err = run(args(&a, 3, true)).err().unwrap().to_string();
        assert!(err.contains("holds the cnn model"), "{err}");
        // Interrupted after one epoch, then resumed: Adam's moments come back with the weights.
        run(cnn(&b, false, Some(1))).unwrap();
        let (hist_b, resumed) = run(cnn(&b, true, None)).unwrap();
        assert_eq!(hist_b.len(), 1);
        assert_eq!(weights(&straight), weights(&resumed));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn resuming_with_a_scheduler_needs_its_state() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = std::env::temp_dir().join(format!("ember-nosched-{}", std::process::id()));
        run(TrainArgs {
            stop_after: Some(1),
            ..args(&dir, 2, false)
        })
        .unwrap();
        let err = run(TrainArgs {
            scheduler: "cosine".into(),
            ..args(&dir, 2, true)
        })
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("was written without a scheduler"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn resume_without_checkpoint_is_a_clear_error() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = std::env::temp_dir().join(format!("ember-noresume-{}", std::process::id()));
        let err = run(args(&dir, 1, true)).err().unwrap().to_string();
        assert!(err.contains("--resume: no checkpoint in"), "{err}");
    }

    #[test]
    fn cuda_device_errors_clearly() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut a = args(Path::new("/nonexistent"), 1, false);
        a.device = "cuda".into();
        let err = run(a).err().unwrap().to_string();
        assert!(err.contains("no CUDA device is available"), "{err}");
    }

    #[test]
    fn metrics_json_has_stable_fields() {
        let s = EpochStats {
            epoch: 1,
            train_loss: 0.5,
            test_loss: 0.4,
            test_accuracy: 0.9,
            epoch_seconds: 1.0,
            samples_per_second: 100.0,
        };
        let j = s.to_json();
        for k in [
            "epoch",
            "train_loss",
            "test_loss",
            "test_accuracy",
            "epoch_seconds",
            "samples_per_second",
        ] {
            assert!(j.get(k).is_some(), "missing {k}");
        }
    }
}
