//! `cargo xtask gpu-check --build`: builds, here, the CUDA test binaries, the NCCL collectives
//! test (ember-distributed's `tests/mpi.rs` with `--features nccl`, when Open MPI is installed
//! here) and the GPU benchmark in release mode into `target/gpu-check/` (stripped, git-ignored)
//! beside the script that runs them on a GPU machine, and prints the one command to run there.
//! That machine needs no Rust toolchain: its CUDA 13 libraries (NCCL's too) are found in its
//! Python environment's `nvidia/*/lib`; the NCCL test also needs its `mpirun` (the script says
//! that it skipped NCCL, and why, when it is missing).

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Arguments of `cargo xtask gpu-check`.
#[derive(Args, Debug)]
pub struct GpuCheckArgs {
    /// Build the binaries and the run script (on this machine, no GPU needed).
    #[arg(long)]
    pub build: bool,
}

/// The test targets that run on the GPU: (package, test target).
const TESTS: [(&str, &str); 4] = [
    ("ember-kernels", "cuda_ops"),
    ("ember-autograd", "parity_ops"),
    ("ember", "devices"),
    // `model.to(Cuda(0))` after the optimizer was built: it keeps training the moved model.
    ("ember-optim", "module_move"),
];

/// The NCCL collectives test: (package, test target, features). It launches itself under
/// `mpirun` (`--only-nccl`), so it is installed apart from the `test-*` binaries, as `nccl-mpi`.
const NCCL_TEST: (&str, &str, &str) = ("ember-distributed", "mpi", "nccl");

/// Where the bundle goes (relative to the repository root).
const BUNDLE: &str = "target/gpu-check";

/// Runs the task.
pub fn run(args: GpuCheckArgs) -> Result<()> {
    if !args.build {
        bail!("cargo xtask gpu-check --build builds the GPU bundle; run the command it prints on a GPU machine");
    }
    let root = repo_root()?;
    let bin = root.join(BUNDLE).join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    for (pkg, test) in TESTS {
        let exe = build_test(&root, pkg, test, "cuda")?;
        install(&exe, &bin.join(format!("test-{test}")))?;
    }
    let nccl = bin.join("nccl-mpi");
    std::fs::remove_file(&nccl).ok();
    if Command::new("mpirun").arg("--version").output().is_ok() {
        let (pkg, test, features) = NCCL_TEST;
        let exe = build_test(&root, pkg, test, features)?;
        install(&exe, &nccl)?;
    } else {
        // rsmpi builds against Open MPI: without it the bundle has no NCCL test, and run.sh
        // says so.
        println!(
            "note: Open MPI is not installed here, so the bundle has no NCCL test (apt-get \
             install libopenmpi-dev openmpi-bin libclang-dev, then build again)"
        );
    }
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["build", "--release", "-p", "xtask", "--features", "cuda"])
        .status()
        .context("running cargo build for xtask")?;
    if !status.success() {
        bail!("building xtask with --features cuda failed");
    }
    install(&root.join("target/release/xtask"), &bin.join("xtask"))?;
    for f in ["run.sh", "pytorch_gpu.py"] {
        let src = root.join("xtask/gpu").join(f);
        std::fs::copy(&src, root.join(BUNDLE).join(f))
            .with_context(|| format!("copying {}", src.display()))?;
    }
    let size: u64 = std::fs::read_dir(&bin)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "GPU bundle in {BUNDLE} ({:.1} MiB). On the GPU machine, from the repository root (with {BUNDLE} carried):\n\n    bash {BUNDLE}/run.sh\n\nIt writes its report to $OUT/gpu-report.txt (or {BUNDLE}/out/ without $OUT).",
        size as f64 / (1 << 20) as f64
    );
    Ok(())
}

fn repo_root() -> Result<PathBuf> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(here
        .parent()
        .context("xtask has no parent folder")?
        .to_path_buf())
}

/// Builds one test target in release mode with `features`; returns its executable.
fn build_test(root: &Path, pkg: &str, test: &str, features: &str) -> Result<PathBuf> {
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "test",
            "--release",
            "--no-run",
            "--message-format=json",
            "--features",
            features,
        ])
        .args(["-p", pkg, "--test", test])
        .output()
        .context("running cargo test --no-run")?;
    if !out.status.success() {
        bail!(
            "building {pkg} --test {test} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] == "compiler-artifact" && v["target"]["name"] == test {
            if let Some(exe) = v["executable"].as_str() {
                return Ok(PathBuf::from(exe));
            }
        }
    }
    bail!("cargo built {pkg} --test {test} but reported no executable")
}

/// Copies `exe` to `dst` and strips it (symbols are not needed to run; the bundle must stay small).
fn install(exe: &Path, dst: &Path) -> Result<()> {
    std::fs::copy(exe, dst).with_context(|| format!("copying {}", exe.display()))?;
    match Command::new("strip").arg(dst).status() {
        Ok(s) if s.success() => {}
        _ => eprintln!("note: could not strip {} (kept as is)", dst.display()),
    }
    Ok(())
}
