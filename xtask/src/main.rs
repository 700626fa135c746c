//! `cargo xtask <task>`: the project's tasks.
//!
//! - `train-mnist`: trains the MLP 784-128-64-10 (or, with `--model cnn`, a small CNN) on
//!   `datasets/mnist` (see `--help`); with `--distributed`, data-parallel under
//!   `mpirun -np N cargo xtask train-mnist …`.
//! - `bench-mnist`: times one training epoch and the test pass in-process.
//! - `bench`: runs the crates' benchmarks, beside PyTorch's figures measured in the same session
//!   when a PyTorch environment is available.

#![warn(missing_docs)]

mod bench;
mod distributed;
#[cfg(feature = "cuda")]
mod gpu_bench;
mod gpu_check;
mod plot;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Ember's project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Train the MNIST MLP (784-128-64-10, ReLU, CrossEntropy) or CNN (`--model cnn`) and report
    /// test accuracy.
    TrainMnist(train::TrainArgs),
    /// Time one epoch of the default MNIST training and the test pass (after a warm-up epoch).
    BenchMnist(bench::BenchMnistArgs),
    /// Run the crates' benchmarks beside PyTorch's figures (same session when PyTorch is set up).
    Bench(bench::BenchArgs),
    /// Build the CUDA test binaries and GPU benchmarks into target/gpu-check (`--build`) and print
    /// the one command that runs them on a GPU machine.
    GpuCheck(gpu_check::GpuCheckArgs),
    /// The GPU benchmarks (needs the `cuda` feature and a GPU; run by the GPU check).
    #[cfg(feature = "cuda")]
    #[command(hide = true)]
    GpuBench,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::TrainMnist(args) => train::run(args).map(|_| ()),
        Task::BenchMnist(args) => bench::bench_mnist(args),
        Task::Bench(args) => bench::bench(args),
        Task::GpuCheck(args) => gpu_check::run(args),
        #[cfg(feature = "cuda")]
        Task::GpuBench => gpu_bench::run(),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
