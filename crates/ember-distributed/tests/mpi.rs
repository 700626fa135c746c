//! The multi-process tests. Run by `cargo test -p ember-distributed --features mpi`, this
//! binary launches itself under `mpirun --oversubscribe --allow-run-as-root -np N` for each
//! scenario below and checks what every rank reports; under `mpirun` (a scenario name as first
//! argument) it is one rank of that scenario.
//!
//! * `collectives` (2 and 3 ranks): every collective, dtypes f32/f64/i64 (and bool, u8),
//!   non-contiguous and partial views, empty tensors (f32/f64/i64, every collective and
//!   send/recv), the errors of mismatched or refused calls, and DistributedDataParallel's
//!   mechanics (buckets started during backward, averaging, `no_sync`, buffer broadcast).
//! * `equivalence` (2 ranks): 50 steps of the MNIST MLP at 2 × batch 32 end with the weights
//!   of 1 process × batch 64 on the same samples, bit-identical on both ranks.
//! * `fault` (3 ranks): rank 2 exits mid-training (`process::exit`); ranks 0 and 1 fail with
//!   an error naming rank 2 well within the timeout, then all ranks leave cleanly.
//! * `fault` with rank 2 killed (SIGKILL): under `mpirun --enable-recovery` (which keeps the
//!   others running) ranks 0 and 1 fail with an error naming rank 2, within the timeout; under
//!   plain `mpirun`, Open MPI aborts the whole job at once, naming rank 2.
//! * `timeout` (2 ranks): rank 1 is late for a barrier; rank 0, with a 1 s timeout, fails
//!   after 1 s with a timeout error.
//! * `nccl` (built with the `nccl` feature, one rank per GPU when a GPU is present; world size
//!   1 on one GPU): the collectives and DDP on CUDA tensors. `--only-nccl` runs just this
//!   scenario (the GPU check, `xtask/gpu/run.sh`, does).
//! * without `mpirun`: a clear error.

use ember_autograd::{manual_seed, no_grad, DType, Tensor};
use ember_distributed::{
    self as dist, Backend, DdpOptions, DistError, DistributedDataParallel, ProcessGroup, ReduceOp,
};
use ember_nn::{self as nn, Module};
use ember_optim::SGD;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Check = Result<(), String>;
/// One test of a scenario, run on every rank.
type RankTest = (&'static str, fn(&ProcessGroup) -> Check);

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        let ok: bool = $cond;
        if !ok {
            return Err(format!($($fmt)+));
        }
    };
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(s @ ("collectives" | "equivalence" | "fault" | "timeout" | "nccl")) => rank_main(s),
        // The GPU check (xtask/gpu/run.sh) launches only the NCCL scenario.
        Some("--only-nccl") => std::process::exit(nccl_launcher()),
        _ => std::process::exit(launcher()),
    }
}

// ----- the launcher -----

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    secs: f64,
}

fn mpirun(np: usize, extra: &[&str], scenario: &str) -> Outcome {
    let me = std::env::current_exe().unwrap();
    let mut cmd = Command::new("mpirun");
    cmd.args([
        "--oversubscribe",
        "--allow-run-as-root",
        "-np",
        &np.to_string(),
    ])
    .args(extra)
    .arg(&me)
    .arg(scenario)
    // Several ranks share 2 cores: one compute thread each.
    .env("RAYON_NUM_THREADS", "1")
    .stdin(Stdio::null());
    println!(
        "$ mpirun --oversubscribe --allow-run-as-root -np {np} {}{} {scenario}",
        extra.iter().map(|e| format!("{e} ")).collect::<String>(),
        me.display()
    );
    run(cmd)
}

fn run(mut cmd: Command) -> Outcome {
    let start = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is Open MPI's mpirun installed?)"));
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        secs: start.elapsed().as_secs_f64(),
    }
}

/// Counts the per-rank results of a scenario: every rank must report `N passed, 0 failed`.
fn rank_results(o: &Outcome, np: usize, name: &str, passed: &mut usize, failed: &mut usize) {
    let finals: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.contains(" passed, ") && l.starts_with("rank "))
        .collect();
    let ok =
        o.code == Some(0) && finals.len() == np && finals.iter().all(|l| l.ends_with(" 0 failed"));
    for l in o.stdout.lines().filter(|l| l.contains("FAILED")) {
        println!("  {l}");
    }
    report(ok, name, o, passed, failed);
}

fn report(ok: bool, name: &str, o: &Outcome, passed: &mut usize, failed: &mut usize) {
    if ok {
        *passed += 1;
        println!("scenario {name} ... ok ({:.1} s)", o.secs);
    } else {
        *failed += 1;
        println!(
            "scenario {name} ... FAILED (exit {:?}, {:.1} s)\n--- stdout\n{}\n--- stderr\n{}",
            o.code, o.secs, o.stdout, o.stderr
        );
    }
}

fn launcher() -> i32 {
    let (mut passed, mut failed) = (0, 0);
    for np in [2, 3] {
        let o = mpirun(np, &[], "collectives");
        rank_results(
            &o,
            np,
            &format!("collectives -np {np}"),
            &mut passed,
            &mut failed,
        );
    }
    let o = mpirun(2, &[], "equivalence");
    rank_results(&o, 2, "equivalence -np 2", &mut passed, &mut failed);

    // Rank 2 leaves mid-training: the others' errors name it, long before the 30 s timeout.
    let survivors_report = |o: &Outcome| {
        let ok = |r: usize| {
            let prefix = format!("rank {r}: fault ... ok");
            o.stdout.lines().any(|l| l.starts_with(&prefix))
        };
        ok(0) && ok(1) && o.secs < 25.0
    };
    for extra in [&[][..], &["--enable-recovery"][..]] {
        let o = mpirun(3, extra, "fault");
        let name = format!("fault -np 3 {} (rank 2 exits)", extra.join(" "));
        // Everyone leaves together: nobody is left hanging in MPI_Finalize.
        let clean = !o.stderr.contains("without MPI_Finalize");
        report(
            survivors_report(&o) && clean,
            &name,
            &o,
            &mut passed,
            &mut failed,
        );
    }
    let kill = ["-x", "EMBER_TEST_FAULT=kill"];
    let o = mpirun(3, &["--enable-recovery", kill[0], kill[1]], "fault");
    report(
        survivors_report(&o),
        "fault -np 3 --enable-recovery (rank 2 is killed)",
        &o,
        &mut passed,
        &mut failed,
    );
    // Under plain mpirun a killed rank makes Open MPI abort the whole job, naming the rank.
    let o = mpirun(3, &kill, "fault");
    let all = format!("{}{}", o.stdout, o.stderr);
    report(
        o.code != Some(0) && all.contains("rank 2 with PID") && o.secs < 25.0,
        "fault -np 3 (rank 2 is killed; mpirun aborts the job, naming it)",
        &o,
        &mut passed,
        &mut failed,
    );

    // A peer that is alive but never makes the call: the timeout, with what was waited for.
    let o = mpirun(2, &[], "timeout");
    rank_results(&o, 2, "timeout -np 2", &mut passed, &mut failed);

    #[cfg(feature = "nccl")]
    launch_nccl(&mut passed, &mut failed);

    // Without mpirun: a clear error, not a silent one-process job.
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("collectives");
    for v in ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"] {
        cmd.env_remove(v);
    }
    let o = run(cmd);
    report(
        o.code == Some(2) && o.stderr.contains("was not started by mpirun"),
        "without mpirun (a clear error)",
        &o,
        &mut passed,
        &mut failed,
    );

    println!("{passed} passed, {failed} failed");
    i32::from(failed > 0)
}

/// NCCL, when built with it and a GPU is at hand: one rank per GPU. With one GPU the world
/// size is 1, which still runs every NCCL code path (the communicator bootstrapped over MPI,
/// each collective, DDP on CUDA tensors) though no data crosses devices; the output says so.
#[cfg(feature = "nccl")]
fn launch_nccl(passed: &mut usize, failed: &mut usize) {
    let gpus = Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).matches("GPU ").count())
        .unwrap_or(0);
    if gpus == 0 {
        println!("scenario nccl: not run, no GPU on this machine (nvidia-smi -L lists none)");
        return;
    }
    if gpus == 1 {
        println!(
            "scenario nccl: one GPU, so world size 1: every NCCL code path runs (communicator \
             over MPI, each collective, DDP), but no data crosses devices"
        );
    }
    let o = mpirun(gpus, &[], "nccl");
    rank_results(&o, gpus, &format!("nccl -np {gpus}"), passed, failed);
}

/// `--only-nccl`: the NCCL scenario alone, for the GPU check.
fn nccl_launcher() -> i32 {
    #[cfg(feature = "nccl")]
    {
        let (mut passed, mut failed) = (0, 0);
        launch_nccl(&mut passed, &mut failed);
        println!("{passed} passed, {failed} failed");
        i32::from(failed > 0)
    }
    #[cfg(not(feature = "nccl"))]
    {
        println!("--only-nccl: this test binary was built without the nccl feature");
        1
    }
}

// ----- one rank -----

fn rank_main(scenario: &str) {
    let backend = if scenario == "nccl" {
        Backend::Nccl
    } else {
        Backend::Mpi
    };
    let pg = match dist::init_process_group(backend) {
        Ok(pg) => pg,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let tests: Vec<RankTest> = match scenario {
        "collectives" => vec![
            ("basics", basics),
            ("all_reduce", all_reduce),
            ("all_reduce_views", all_reduce_views),
            ("broadcast", broadcast),
            ("all_gather", all_gather),
            ("reduce_scatter", reduce_scatter),
            ("send_recv", send_recv),
            ("bool_and_u8", bool_and_u8),
            ("empty_tensors", empty_tensors),
            ("mismatch_errors", mismatch_errors),
            ("ddp_buckets_during_backward", ddp_buckets_during_backward),
            ("ddp_no_sync", ddp_no_sync),
            ("ddp_buffers", ddp_buffers),
            ("ddp_model_check", ddp_model_check),
        ],
        "equivalence" => vec![("mnist_equivalence", mnist_equivalence)],
        "fault" => vec![("fault", fault)],
        "timeout" => vec![("timeout", timeout)],
        #[cfg(feature = "nccl")]
        "nccl" => vec![
            ("nccl_collectives", nccl::collectives),
            ("nccl_ddp", nccl::ddp),
        ],
        _ => unreachable!(),
    };
    let (mut passed, mut failed) = (0, 0);
    let r = pg.rank();
    for (name, f) in tests {
        match catch_unwind(AssertUnwindSafe(|| f(&pg))) {
            Ok(Ok(())) => {
                passed += 1;
                println!("rank {r}: {name} ... ok");
            }
            Ok(Err(m)) => {
                failed += 1;
                println!("rank {r}: {name} ... FAILED: {m}");
            }
            Err(p) => {
                failed += 1;
                let m = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                println!("rank {r}: {name} ... FAILED (panic): {m}");
            }
        }
    }
    println!("rank {r}: {passed} passed, {failed} failed");
    dist::destroy_process_group();
    drop(pg);
    std::process::exit(i32::from(failed > 0));
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_vec::<f64>()
}

fn dist_err<T>(r: Result<T, DistError>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// A tensor whose values depend on the rank: `rank * 10 + i` (plus 1, so products are not 0).
fn ranked(rank: usize, n: usize, dtype: DType) -> Tensor {
    let v: Vec<f64> = (0..n).map(|i| (rank * 10 + i + 1) as f64).collect();
    Tensor::from_slice(&v, [n]).to_dtype(dtype)
}

fn basics(pg: &ProcessGroup) -> Check {
    ensure!(dist::get_rank() == Ok(pg.rank()), "get_rank");
    ensure!(
        dist::get_world_size() == Ok(pg.world_size()),
        "get_world_size"
    );
    ensure!(dist::is_initialized(), "is_initialized");
    ensure!(pg.timeout() == dist::DEFAULT_TIMEOUT, "default timeout");
    ensure!(
        matches!(
            dist::init_process_group(Backend::Mpi),
            Err(DistError::AlreadyInitialized { .. })
        ),
        "a second init must fail"
    );
    dist_err(pg.barrier())
}

fn all_reduce(pg: &ProcessGroup) -> Check {
    let (r, n) = (pg.rank(), pg.world_size());
    for dtype in [DType::F32, DType::F64, DType::I64] {
        for op in [
            ReduceOp::Sum,
            ReduceOp::Max,
            ReduceOp::Min,
            ReduceOp::Product,
            ReduceOp::Avg,
        ] {
            if op == ReduceOp::Avg && dtype == DType::I64 {
                continue;
            }
            let t = ranked(r, 5, dtype);
            dist_err(dist::all_reduce(&t, op))?;
            let want: Vec<f64> = (0..5)
                .map(|i| {
                    let vals = (0..n).map(|q| (q * 10 + i + 1) as f64);
                    match op {
                        ReduceOp::Sum => vals.sum(),
                        ReduceOp::Avg => vals.sum::<f64>() / n as f64,
                        ReduceOp::Max => vals.fold(f64::MIN, f64::max),
                        ReduceOp::Min => vals.fold(f64::MAX, f64::min),
                        ReduceOp::Product => vals.product(),
                    }
                })
                .collect();
            ensure!(t.dtype() == dtype, "dtype changed");
            let got = f64s(&t);
            let close = got
                .iter()
                .zip(&want)
                .all(|(a, b)| (a - b).abs() <= 1e-4 * b.abs());
            ensure!(close, "{dtype} {op:?}: got {got:?}, want {want:?}");
        }
    }
    // Avg of an integer tensor is refused on every rank, naming the dtype.
    let e = pg
        .all_reduce(&ranked(r, 2, DType::I64), ReduceOp::Avg)
        .unwrap_err();
    ensure!(
        e.to_string()
            .contains("ReduceOp.AVG takes floating-point tensors, got a torch.int64"),
        "{e}"
    );
    Ok(())
}

fn all_reduce_views(pg: &ProcessGroup) -> Check {
    let (r, n) = (pg.rank(), pg.world_size());
    let total = |v: f64| v * n as f64 + (0..n).map(|q| q as f64).sum::<f64>() * 100.0;
    for dtype in [DType::F32, DType::F64, DType::I64] {
        // A transposed (non-contiguous) view: the result lands in the base's elements.
        let base = (Tensor::arange(6).view([2, 3]) + (r * 100) as f64).to_dtype(dtype);
        let view = base.t();
        ensure!(!view.is_contiguous(), "the view should be strided");
        dist_err(pg.all_reduce(&view, ReduceOp::Sum))?;
        let want: Vec<f64> = (0..6).map(|i| total(i as f64)).collect();
        ensure!(
            f64s(&base) == want,
            "{dtype} transposed: {:?} != {want:?}",
            f64s(&base)
        );
        // A narrow of a larger storage: the elements outside the view are untouched.
        let big = (Tensor::arange(8) + (r * 100) as f64).to_dtype(dtype);
        let part = big.narrow(0, 2, 4);
        dist_err(pg.all_reduce(&part, ReduceOp::Sum))?;
        let got = f64s(&big);
        let mut want: Vec<f64> = (0..8).map(|i| (i + r * 100) as f64).collect();
        for (i, w) in want.iter_mut().enumerate().take(6).skip(2) {
            *w = total(i as f64);
        }
        ensure!(got == want, "{dtype} narrow: {got:?} != {want:?}");
    }
    Ok(())
}

fn broadcast(pg: &ProcessGroup) -> Check {
    let r = pg.rank();
    for src in 0..pg.world_size() {
        for dtype in [DType::F32, DType::F64, DType::I64] {
            let base = ranked(r, 6, dtype).view([3, 2]);
            let view = base.t(); // non-contiguous
            dist_err(pg.broadcast(&view, src))?;
            let want = f64s(&ranked(src, 6, dtype));
            ensure!(f64s(&base) == want, "src {src} {dtype}: {:?}", f64s(&base));
        }
    }
    let e = pg.broadcast(&Tensor::zeros([1]), 7).unwrap_err();
    ensure!(e.to_string().contains("Invalid src rank 7"), "{e}");
    Ok(())
}

fn all_gather(pg: &ProcessGroup) -> Check {
    let (r, n) = (pg.rank(), pg.world_size());
    for dtype in [DType::F32, DType::F64, DType::I64] {
        let input = ranked(r, 6, dtype).view([2, 3]).t(); // [3, 2], strided
        let outs: Vec<Tensor> = (0..n)
            .map(|_| Tensor::full_on(&[3, 2], -1.0, dtype, ember_autograd::Device::Cpu))
            .collect();
        dist_err(pg.all_gather(&outs, &input))?;
        for (q, o) in outs.iter().enumerate() {
            let want = f64s(&ranked(q, 6, dtype).view([2, 3]).t());
            ensure!(
                f64s(o) == want,
                "{dtype} from rank {q}: {:?} != {want:?}",
                f64s(o)
            );
        }
    }
    let e = pg
        .all_gather(&[Tensor::zeros([2])], &Tensor::zeros([2]))
        .unwrap_err();
    ensure!(
        e.to_string().contains("the output list holds 1 tensors"),
        "{e}"
    );
    Ok(())
}

fn reduce_scatter(pg: &ProcessGroup) -> Check {
    let (r, n) = (pg.rank(), pg.world_size());
    for dtype in [DType::F32, DType::F64, DType::I64] {
        for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Avg] {
            if op == ReduceOp::Avg && dtype == DType::I64 {
                continue;
            }
            // inputs[q] on rank r holds r * 10 + q * 100 + i.
            let inputs: Vec<Tensor> = (0..n)
                .map(|q| (Tensor::arange(4) + (r * 10 + q * 100) as f64).to_dtype(dtype))
                .collect();
            let out = Tensor::full_on(&[4], 0.0, dtype, ember_autograd::Device::Cpu);
            dist_err(pg.reduce_scatter(&out, &inputs, op))?;
            let want: Vec<f64> = (0..4)
                .map(|i| {
                    let vals = (0..n).map(|s| (s * 10 + r * 100 + i) as f64);
                    match op {
                        ReduceOp::Sum => vals.sum(),
                        ReduceOp::Max => vals.fold(f64::MIN, f64::max),
                        _ => vals.sum::<f64>() / n as f64,
                    }
                })
                .collect();
            ensure!(
                f64s(&out) == want,
                "{dtype} {op:?}: {:?} != {want:?}",
                f64s(&out)
            );
        }
    }
    Ok(())
}

fn send_recv(pg: &ProcessGroup) -> Check {
    let (r, n) = (pg.rank(), pg.world_size());
    let (next, prev) = ((r + 1) % n, (r + n - 1) % n);
    for dtype in [DType::F32, DType::F64, DType::I64] {
        // A ring; rank 0 sends first so that the blocking calls cannot all wait on each other.
        let mine = ranked(r, 4, dtype).view([2, 2]).t();
        let got = Tensor::full_on(&[2, 2], 0.0, dtype, ember_autograd::Device::Cpu);
        if r == 0 {
            dist_err(pg.send(&mine, next))?;
            ensure!(
                dist_err(pg.recv(&got, prev))? == prev,
                "recv returns the source"
            );
        } else {
            dist_err(pg.recv(&got, prev))?;
            dist_err(pg.send(&mine, next))?;
        }
        let want = f64s(&ranked(prev, 4, dtype).view([2, 2]).t());
        ensure!(f64s(&got) == want, "{dtype}: {:?} != {want:?}", f64s(&got));
    }
    // A receiving tensor of another shape: the receiver's error names both; the sender is fine.
    if r == 0 {
        dist_err(pg.send(&Tensor::zeros([4]), 1))?;
    } else if r == 1 {
        let e = pg.recv(&Tensor::zeros([5]), 0).unwrap_err();
        ensure!(
            e.to_string().contains(
                "rank 0 sent a float32 tensor of shape [4], but this rank receives into a float32 tensor of shape [5]"
            ),
            "{e}"
        );
    }
    let e = pg.send(&Tensor::zeros([1]), r).unwrap_err();
    ensure!(
        e.to_string().contains("should not be the same as the rank"),
        "{e}"
    );
    dist_err(pg.barrier())
}

fn bool_and_u8(pg: &ProcessGroup) -> Check {
    let r = pg.rank();
    // Rank 0 holds [true, false, true], the others [false, false, true].
    let mine = || Tensor::from_slice(&[r == 0, false, true], [3]);
    let any = mine();
    dist_err(pg.all_reduce(&any, ReduceOp::Sum))?;
    ensure!(
        any.to_vec::<bool>() == [true, false, true],
        "or: {:?}",
        any.to_vec::<bool>()
    );
    let all = mine();
    dist_err(pg.all_reduce(&all, ReduceOp::Min))?;
    ensure!(
        all.to_vec::<bool>() == [false, false, true],
        "and: {:?}",
        all.to_vec::<bool>()
    );
    let bytes = Tensor::from_slice(&[r as u8, 7, 255], [3]);
    dist_err(pg.broadcast(&bytes, 0))?;
    ensure!(
        bytes.to_vec::<u8>() == [0, 7, 255],
        "u8: {:?}",
        bytes.to_vec::<u8>()
    );
    Ok(())
}

fn empty_tensors(pg: &ProcessGroup) -> Check {
    let (r, n) = (pg.rank(), pg.world_size());
    let (next, prev) = ((r + 1) % n, (r + n - 1) % n);
    for dtype in [DType::F32, DType::F64, DType::I64] {
        for shape in [vec![0], vec![2, 0]] {
            let t = Tensor::full_on(&shape, 1.0, dtype, ember_autograd::Device::Cpu);
            let what = format!("{dtype} {shape:?}");
            dist_err(pg.all_reduce(&t, ReduceOp::Sum))?;
            if dtype.is_float() {
                // (Avg of an integer tensor is refused, empty or not: see `all_reduce`.)
                dist_err(pg.all_reduce(&t, ReduceOp::Avg))?;
            }
            dist_err(pg.broadcast(&t, 0))?;
            let outs: Vec<Tensor> = (0..n).map(|_| t.zeros_like()).collect();
            dist_err(pg.all_gather(&outs, &t))?;
            dist_err(pg.reduce_scatter(&t, &outs, ReduceOp::Sum))?;
            // A ring of empty messages; rank 0 sends first, as in `send_recv`.
            let got = t.zeros_like();
            if r == 0 {
                dist_err(pg.send(&t, next))?;
                ensure!(
                    dist_err(pg.recv(&got, prev))? == prev,
                    "{what}: recv returns the source"
                );
            } else {
                dist_err(pg.recv(&got, prev))?;
                dist_err(pg.send(&t, next))?;
            }
            for (name, x) in [("tensor", &t), ("received", &got)]
                .into_iter()
                .chain(outs.iter().map(|o| ("gathered", o)))
            {
                ensure!(
                    x.shape() == shape.as_slice() && x.dtype() == dtype,
                    "{what}: {name} became {} {:?}",
                    x.dtype(),
                    x.shape()
                );
            }
        }
    }
    // An empty message is still checked against the receiver's tensor.
    if r == 0 {
        dist_err(pg.send(&Tensor::zeros([0]), 1))?;
    } else if r == 1 {
        let e = pg.recv(&Tensor::zeros([2, 0]), 0).unwrap_err();
        ensure!(
            e.to_string().contains("rank 0 sent a float32 tensor of shape [0], but this rank receives into a float32 tensor of shape [2, 0]"),
            "{e}"
        );
    }
    dist_err(pg.barrier())
}

fn mismatch_errors(pg: &ProcessGroup) -> Check {
    let r = pg.rank();
    // Different shapes: every rank fails, naming rank 1 and its tensor; nothing hangs.
    let t = if r == 1 {
        Tensor::zeros([3, 3])
    } else {
        Tensor::zeros([2, 3])
    };
    let e = pg.all_reduce(&t, ReduceOp::Sum).unwrap_err().to_string();
    if r == 1 {
        ensure!(
            e.contains("rank 0 called all_reduce(SUM) of a float32 tensor of shape [2, 3]"),
            "{e}"
        );
    } else {
        ensure!(
            e.contains("rank 1 called all_reduce(SUM) of a float32 tensor of shape [3, 3]"),
            "{e}"
        );
    }
    // Different operations.
    let t = Tensor::zeros([2]);
    let e = if r == 0 {
        pg.broadcast(&t, 0)
    } else {
        pg.all_reduce(&t, ReduceOp::Max)
    };
    let e = e.unwrap_err().to_string();
    ensure!(e.contains("the ranks disagree"), "{e}");
    // A rank whose arguments are refused: it gets its own error, the others learn of it.
    let src = if r == 1 { 9 } else { 0 };
    let e = pg.broadcast(&t, src).unwrap_err().to_string();
    if r == 1 {
        ensure!(e.contains("Invalid src rank 9"), "{e}");
    } else {
        ensure!(
            e.contains("rank 1 called broadcast(src=9) with arguments it refused"),
            "{e}"
        );
    }
    // The group is still usable after argument errors.
    let t = Tensor::ones([2]);
    dist_err(pg.all_reduce(&t, ReduceOp::Sum))?;
    ensure!(f64s(&t) == vec![pg.world_size() as f64; 2], "after errors");
    Ok(())
}

fn mlp(sizes: &[usize]) -> nn::Sequential {
    let mut m = nn::Sequential::new();
    for (i, w) in sizes.windows(2).enumerate() {
        if i > 0 {
            m = m.add(nn::ReLU);
        }
        m = m.add(nn::Linear::new(w[0], w[1]));
    }
    m
}

fn copy_weights(dst: &dyn Module, src: &dyn Module) {
    let _g = no_grad();
    for (d, s) in dst.parameters().iter().zip(src.parameters()) {
        d.copy_(&s);
    }
}

fn ddp_buckets_during_backward(pg: &ProcessGroup) -> Check {
    let (r, n) = (pg.rank(), pg.world_size());
    // Different initial weights on each rank: construction must broadcast rank 0's.
    manual_seed(100 + r as u64);
    let model = mlp(&[20, 64, 64, 64, 4]);
    let ddp = dist_err(DistributedDataParallel::with_options(
        model,
        DdpOptions {
            bucket_cap_mb: 0.001, // ~1 KB: four buckets, each 64x64 weight one of its own
            ..DdpOptions::default()
        },
    ))?;
    for p in ddp.parameters() {
        let all: Vec<Tensor> = (0..n).map(|_| p.zeros_like()).collect();
        dist_err(pg.all_gather(&all, &p))?;
        ensure!(
            all.iter().all(|a| f64s(a) == f64s(&all[0])),
            "weights differ after construction"
        );
    }
    let buckets = ddp.num_buckets();
    ensure!(buckets >= 4, "expected several buckets, got {buckets}");
    // Each rank its own data.
    manual_seed(7 + r as u64);
    let x = Tensor::randn([8, 20]);
    let loss = dist_err(ddp.forward(&x))?.pow(2.0).mean();
    dist_err(ddp.backward(&loss))?;
    let returned = Instant::now();
    let s = ddp.last_reduction();
    let params = ddp.parameters().len();
    ensure!(s.buckets == buckets && s.launched.len() == buckets, "{s:?}");
    let before = s.launched.iter().filter(|&&t| t < returned).count();
    ensure!(
        before == buckets,
        "{before} of {buckets} buckets started before backward returned"
    );
    ensure!(
        s.ready_at_launch[0] < params && s.ready_at_launch[buckets - 2] < params,
        "the first buckets must start while gradients of earlier layers are still pending: {:?}",
        s.ready_at_launch
    );
    // The averaged gradient is the mean of every rank's own gradient.
    let plain = mlp(&[20, 64, 64, 64, 4]);
    copy_weights(&plain, ddp.module());
    plain.forward(&x).pow(2.0).mean().backward();
    for (p, q) in ddp.parameters().iter().zip(plain.parameters()) {
        let own = q.grad().unwrap();
        dist_err(pg.all_reduce(&own, ReduceOp::Avg))?;
        let got = p.grad().unwrap();
        ensure!(got.allclose(&own, 1e-5, 1e-7), "averaged gradient differs");
    }
    Ok(())
}

fn ddp_no_sync(pg: &ProcessGroup) -> Check {
    let r = pg.rank();
    manual_seed(3);
    let ddp = dist_err(DistributedDataParallel::new(mlp(&[6, 8, 3])))?;
    manual_seed(50 + r as u64);
    let (x1, x2) = (Tensor::randn([4, 6]), Tensor::randn([4, 6]));
    {
        let _g = ddp.no_sync();
        dist_err(ddp.forward(&x1))?.sum().backward();
    }
    dist_err(ddp.forward(&x2))?.sum().backward();
    let plain = mlp(&[6, 8, 3]);
    copy_weights(&plain, ddp.module());
    plain.forward(&x1).sum().backward();
    plain.forward(&x2).sum().backward();
    for (p, q) in ddp.parameters().iter().zip(plain.parameters()) {
        let own = q.grad().unwrap();
        dist_err(pg.all_reduce(&own, ReduceOp::Avg))?;
        ensure!(
            p.grad().unwrap().allclose(&own, 1e-5, 1e-6),
            "no_sync sum differs"
        );
    }
    Ok(())
}

fn ddp_buffers(pg: &ProcessGroup) -> Check {
    let r = pg.rank();
    let model = nn::Sequential::new()
        .add(nn::Linear::new(4, 3))
        .add(nn::BatchNorm1d::new(3));
    let ddp = dist_err(DistributedDataParallel::new(model))?;
    // Each rank drifts its running statistics on its own data...
    manual_seed(90 + r as u64);
    {
        let _g = no_grad();
        ddp.module().forward(&Tensor::randn([5, 4]));
    }
    // ...and the next DDP forward starts from rank 0's (then updates them on the same input).
    manual_seed(1);
    let x = Tensor::randn([5, 4]);
    dist_err(ddp.forward(&x))?.sum().backward();
    for b in ddp.module().buffers() {
        let b = b.to_dtype(DType::F64);
        let all: Vec<Tensor> = (0..pg.world_size()).map(|_| b.zeros_like()).collect();
        dist_err(pg.all_gather(&all, &b))?;
        ensure!(
            all.iter().all(|a| f64s(a) == f64s(&all[0])),
            "buffers differ across ranks"
        );
    }
    Ok(())
}

fn ddp_model_check(pg: &ProcessGroup) -> Check {
    let r = pg.rank();
    let sizes: &[usize] = if r == 1 { &[5, 7, 2] } else { &[5, 6, 2] };
    let e = DistributedDataParallel::new(mlp(sizes))
        .err()
        .map(|e| e.to_string());
    let e = e.ok_or("a different model on rank 1 must be refused")?;
    ensure!(e.contains("DDP expects same model across all ranks"), "{e}");
    Ok(())
}

/// The seeds' MNIST MLP, 784-128-64-10.
fn mnist_mlp() -> nn::Sequential {
    mlp(&[784, 128, 64, 10])
}

fn mnist_equivalence(pg: &ProcessGroup) -> Check {
    use ember_data::{DataLoader, DistributedSampler, Mnist};
    let (r, n) = (pg.rank(), pg.world_size());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../datasets/mnist");
    let train = || Mnist::train(dir).map(|m| m.normalize(0.1307, 0.3081));
    let data = train().map_err(|e| e.to_string())?;
    manual_seed(0);
    let ddp = dist_err(DistributedDataParallel::new(mnist_mlp()))?;
    let reference = mnist_mlp();
    copy_weights(&reference, ddp.module());
    let criterion = nn::CrossEntropyLoss::new();
    let steps = 50;

    let loader = DataLoader::new(data, 64 / n).sampler(DistributedSampler::new(n, r).seed(0));
    let mut opt = SGD::new(ddp.parameters(), 0.01).momentum(0.9);
    for (images, labels) in loader.iter().take(steps) {
        opt.zero_grad();
        let logits = dist_err(ddp.forward(&images.view([images.size(0), -1])))?;
        dist_err(ddp.backward(&criterion.forward(&logits, &labels)))?;
        opt.step();
    }

    // One process, batch 64, the same samples in the same batches.
    let data = train().map_err(|e| e.to_string())?;
    let loader = DataLoader::new(data, 64).sampler(DistributedSampler::new(1, 0).seed(0));
    let mut opt = SGD::new(reference.parameters(), 0.01).momentum(0.9);
    for (images, labels) in loader.iter().take(steps) {
        opt.zero_grad();
        let logits = reference.forward(&images.view([images.size(0), -1]));
        criterion.forward(&logits, &labels).backward();
        opt.step();
    }

    let mut worst = 0f64;
    for (p, q) in ddp.parameters().iter().zip(reference.parameters()) {
        for (a, b) in f64s(p).iter().zip(f64s(&q)) {
            worst = worst.max((a - b).abs());
        }
        ensure!(
            p.allclose(&q, 1e-5, 1e-6),
            "weights differ from the single-process run beyond summation-order noise"
        );
        // Bit-identical across ranks.
        let all: Vec<Tensor> = (0..n).map(|_| p.zeros_like()).collect();
        dist_err(pg.all_gather(&all, p))?;
        let bits = |t: &Tensor| {
            t.to_vec::<f32>()
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        };
        ensure!(
            all.iter().all(|a| bits(a) == bits(&all[0])),
            "weights differ across ranks"
        );
    }
    println!("rank {r}: largest difference from the single-process weights: {worst:.2e}");
    Ok(())
}

fn fault(pg: &ProcessGroup) -> Check {
    let r = pg.rank();
    pg.set_timeout(Duration::from_secs(30));
    manual_seed(0);
    let ddp = dist_err(DistributedDataParallel::new(mlp(&[32, 64, 8])))?;
    let mut opt = SGD::new(ddp.parameters(), 0.01);
    for step in 0..1000 {
        if r == 2 && step == 5 {
            if std::env::var("EMBER_TEST_FAULT").as_deref() == Ok("kill") {
                // Killed, as by the OOM killer: no exit handler runs.
                let _ = Command::new("kill")
                    .args(["-9", &std::process::id().to_string()])
                    .status();
                std::thread::sleep(Duration::from_secs(60));
            }
            // Exits in the middle of training (its exit handler tells the others).
            std::process::exit(3);
        }
        let start = Instant::now();
        opt.zero_grad();
        let x = Tensor::randn([16, 32]);
        let outcome = ddp
            .forward(&x)
            .and_then(|y| ddp.backward(&y.pow(2.0).mean()));
        if let Err(e) = outcome {
            let secs = start.elapsed().as_secs_f64();
            println!("rank {r}: fault detected: {e} (after {secs:.2} s, at step {step})");
            ensure!(
                matches!(e, DistError::PeerDied { peer: 2, .. })
                    && e.to_string().contains("rank 2 exited"),
                "expected rank 2's departure"
            );
            ensure!(secs < 10.0, "took {secs} s, the timeout is 30 s");
            ensure!(
                ddp.parameters().iter().all(|p| p.grad().is_none()),
                "grads cleared"
            );
            // Every later call fails at once.
            let again = pg.barrier().unwrap_err();
            ensure!(matches!(again, DistError::Broken { .. }), "{again}");
            return Ok(());
        }
        opt.step();
    }
    Err("no failure seen".into())
}

fn timeout(pg: &ProcessGroup) -> Check {
    if pg.rank() == 0 {
        pg.set_timeout(Duration::from_secs(1));
        let start = Instant::now();
        let e = pg.barrier().unwrap_err();
        let secs = start.elapsed().as_secs_f64();
        ensure!(matches!(e, DistError::Timeout { .. }), "{e}");
        ensure!((1.0..5.0).contains(&secs), "gave up after {secs} s");
        ensure!(
            e.to_string()
                .contains("rank 0: barrier timed out after 1.0 s"),
            "{e}"
        );
    } else {
        // Late, but alive: rank 0's timeout fires first. The barrier itself may then complete
        // (rank 0's abandoned request still matches) or report rank 0's exit: both are fine.
        std::thread::sleep(Duration::from_secs(3));
        let _ = pg.barrier();
    }
    Ok(())
}

/// The NCCL scenario: the same operations on CUDA tensors, checked against the CPU.
#[cfg(feature = "nccl")]
mod nccl {
    use super::*;
    use ember_autograd::Device;

    fn gpu() -> Device {
        Device::Cuda(0)
    }

    pub fn collectives(pg: &ProcessGroup) -> Check {
        let (r, n) = (pg.rank(), pg.world_size());
        for dtype in [DType::F32, DType::F64, DType::I64] {
            let t = ranked(r, 6, dtype).to_device(gpu());
            dist_err(pg.all_reduce(&t, ReduceOp::Sum))?;
            let want: Vec<f64> = (0..6)
                .map(|i| (0..n).map(|q| (q * 10 + i + 1) as f64).sum())
                .collect();
            ensure!(
                f64s(&t.to_device(Device::Cpu)) == want,
                "{dtype} all_reduce"
            );
            let b = ranked(r, 6, dtype).view([2, 3]).to_device(gpu()).t();
            dist_err(pg.broadcast(&b, 0))?;
            let want = f64s(&ranked(0, 6, dtype).view([2, 3]).t());
            ensure!(f64s(&b.to_device(Device::Cpu)) == want, "{dtype} broadcast");
            let input = ranked(r, 4, dtype).to_device(gpu());
            let outs: Vec<Tensor> = (0..n).map(|_| input.zeros_like()).collect();
            dist_err(pg.all_gather(&outs, &input))?;
            for (q, o) in outs.iter().enumerate() {
                ensure!(
                    f64s(&o.to_device(Device::Cpu)) == f64s(&ranked(q, 4, dtype)),
                    "all_gather"
                );
            }
        }
        ensure!(
            pg.all_reduce(&Tensor::zeros([2]), ReduceOp::Sum).is_err(),
            "a CPU tensor must be refused by the NCCL group"
        );
        Ok(())
    }

    pub fn ddp(pg: &ProcessGroup) -> Check {
        manual_seed(0);
        let mut model = mlp(&[8, 16, 4]);
        model.to(gpu());
        let ddp = dist_err(DistributedDataParallel::new(model))?;
        manual_seed(5 + pg.rank() as u64);
        let x = Tensor::randn([4, 8]).to_device(gpu());
        dist_err(ddp.backward(&dist_err(ddp.forward(&x))?.pow(2.0).mean()))?;
        let mut plain = mlp(&[8, 16, 4]);
        plain.to(gpu());
        copy_weights(&plain, ddp.module());
        plain.forward(&x).pow(2.0).mean().backward();
        for (p, q) in ddp.parameters().iter().zip(plain.parameters()) {
            let own = q.grad().unwrap();
            dist_err(pg.all_reduce(&own, ReduceOp::Avg))?;
            let (a, b) = (
                p.grad().unwrap().to_device(Device::Cpu),
                own.to_device(Device::Cpu),
            );
            ensure!(
                a.allclose(&b, 1e-5, 1e-6),
                "DDP gradient on the GPU differs"
            );
        }
        Ok(())
    }
}
