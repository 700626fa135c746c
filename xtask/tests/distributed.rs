//! `cargo xtask train-mnist --distributed` end to end (needs the `mpi` feature and Open MPI's
//! `mpirun`; `.ci/run` runs it): a short run on 2 ranks against the same run in one process.
//! Each rank gets its own `--out` and `--metrics` (mpirun's MPMD form, `-np 1 … : -np 1 …`), so
//! the test can see that rank 1 writes nothing, and `--tag-output` marks every line with the
//! rank that printed it.

use ember::Tensor;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");
/// Steps of the global batch 64: enough for the two runs to drift apart if their samples or
/// gradients differed, short enough for CI.
const STEPS: &str = "40";

fn train_args(out: &Path, metrics: &Path) -> Vec<String> {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../datasets/mnist");
    let mut a: Vec<String> = [
        "train-mnist",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--seed",
        "3",
    ]
    .map(String::from)
    .into();
    a.extend(["--limit-batches".into(), STEPS.into()]);
    for (flag, path) in [("--data", &data), ("--out", &out.to_path_buf())] {
        a.extend([flag.to_string(), path.display().to_string()]);
    }
    a.extend(["--metrics".into(), metrics.display().to_string()]);
    a
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The one JSON line of a one-epoch metrics file.
fn metrics(path: &Path) -> serde_json::Value {
    let s = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{}: one epoch, one writer: {s}",
        path.display()
    );
    serde_json::from_str(lines[0]).unwrap()
}

fn weights(dir: &Path) -> Vec<(String, Tensor)> {
    let (mut named, _) = ember::io::load(dir.join("model.safetensors")).unwrap();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

#[test]
fn two_ranks_train_like_one_process_and_only_rank_0_reports_and_writes() {
    let dir = std::env::temp_dir().join(format!("ember-xtask-distributed-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    let out = |name: &str| dir.join(name);
    let log = |name: &str| dir.join(format!("{name}.jsonl"));

    let single = Command::new(XTASK)
        .args(train_args(&out("single"), &log("single")))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&single);
    assert!(
        single.status.success(),
        "single process failed:\n{stdout}\n{stderr}"
    );

    let mut cmd = Command::new("mpirun");
    cmd.args(["--oversubscribe", "--allow-run-as-root", "--tag-output"])
        // Two ranks on a shared machine: one compute thread each.
        .args(["-x", "RAYON_NUM_THREADS=1"]);
    for rank in 0..2 {
        if rank > 0 {
            cmd.arg(":");
        }
        let name = format!("rank{rank}");
        cmd.args(["-np", "1", XTASK])
            .args(train_args(&out(&name), &log(&name)))
            .arg("--distributed");
    }
    println!("$ {cmd:?}");
    let dist = cmd
        .output()
        .expect("mpirun: the mpi feature builds against Open MPI, whose mpirun must be installed");
    let (stdout, stderr) = text(&dist);
    assert!(dist.status.success(), "mpirun failed:\n{stdout}\n{stderr}");

    // Only rank 0 prints: every line is tagged `[job,rank]<stream>:`.
    let all = format!("{stdout}{stderr}");
    let from = |rank: usize| -> Vec<&str> {
        all.lines()
            .filter(|l| l.contains(&format!(",{rank}]<std")))
            .collect()
    };
    assert!(from(1).is_empty(), "rank 1 printed: {:?}", from(1));
    let rank0 = from(0);
    let count = |needle: &str| rank0.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(
        count("distributed: 2 ranks x batch 32 (global batch 64)"),
        1,
        "{all}"
    );
    assert_eq!(count("training MLP"), 1, "{all}");
    assert_eq!(count("epoch 1/1: train loss"), 1, "{all}");

    // Only rank 0 writes the checkpoint and the metrics.
    for f in [
        "model.safetensors",
        "optimizer.safetensors",
        "progress.json",
    ] {
        assert!(out("rank0").join(f).is_file(), "rank 0 wrote no {f}");
    }
    let rank1_files: Vec<_> = std::fs::read_dir(out("rank1"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(rank1_files.is_empty(), "rank 1 wrote {rank1_files:?}");
    assert!(!log("rank1").exists(), "rank 1 wrote metrics");

    // The same training as one process: the ranks' batches are the single process's, so the
    // weights and metrics agree up to the summation order of the averaged gradients.
    let (a, b) = (weights(&out("single")), weights(&out("rank0")));
    assert_eq!(a.len(), b.len());
    let mut largest = 0f64;
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        let worst = (ta - tb).abs().max().item();
        largest = largest.max(worst);
        assert!(
            ta.allclose(tb, 1e-5, 1e-6),
            "{na}: differs by up to {worst:e}"
        );
    }
    println!("largest weight difference from the one-process run: {largest:e}");
    let (ma, mb) = (metrics(&log("single")), metrics(&log("rank0")));
    for (key, tol) in [
        ("train_loss", 1e-4),
        ("test_loss", 1e-4),
        ("test_accuracy", 2e-4),
    ] {
        let (x, y) = (ma[key].as_f64().unwrap(), mb[key].as_f64().unwrap());
        assert!(
            (x - y).abs() <= tol,
            "{key}: one process {x}, two ranks {y}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
