//! `cargo xtask bench distributed` (run by it as `mpirun -np 2` on this binary):
//!
//! * all-reduce bus bandwidth of Ember's `all_reduce` at 1, 16 and 64 MB of f32, interleaved
//!   with the `mpi` crate's plain `all_reduce_into` (Open MPI's `MPI_Allreduce`) on the same
//!   buffers: Ember's wrapper (header exchange, non-blocking call polled with a deadline,
//!   result swapped into the tensor) against the bare library call;
//! * one DistributedDataParallel step of the MNIST MLP at global batch 256 (128 per rank),
//!   split into compute, communication, and the part of the communication that backward hid.
//!
//! With `EMBER_TORCH_DDP_JSON` naming the output of `pytorch_ddp.py` (PyTorch's gloo backend,
//! measured just before by the xtask), PyTorch's figures are printed beside.

use ember_autograd::{manual_seed, Tensor};
use ember_distributed::{self as dist, Backend, DdpOptions, DistributedDataParallel, ReduceOp};
use ember_nn as nn;
use ember_optim::SGD;
use mpi::collective::SystemOperation;
use mpi::traits::*;
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// PyTorch's figure at `pointer` in the JSON of `pytorch_ddp.py`, when given.
fn torch(pointer: &str) -> Option<f64> {
    let path = std::env::var("EMBER_TORCH_DDP_JSON").ok()?;
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(text.lines().last()?).ok()?;
    v.pointer(pointer)?.as_f64()
}

fn main() {
    let pg = dist::init_process_group(Backend::Mpi).expect("run under mpirun");
    let world = mpi::topology::SimpleCommunicator::world();
    let (rank, n) = (pg.rank(), pg.world_size());
    let say = |s: String| {
        if rank == 0 {
            println!("{s}");
        }
    };
    say(format!(
        "ember-distributed: {n} ranks on this host, {} rayon thread(s) per rank",
        rayon_threads()
    ));

    // ----- all-reduce bandwidth -----
    say("all_reduce, f32, bus bandwidth (algbw x 2(n-1)/n), median of interleaved runs:".into());
    say(format!(
        "{:>8} {:>20} {:>20} {:>9} {:>24}",
        "size", "Ember GB/s (ms)", "MPI GB/s (ms)", "overhead", "PyTorch gloo GB/s (ms)"
    ));
    for mb in [1usize, 16, 64] {
        let elems = mb * (1 << 20) / 4;
        let t = Tensor::full([elems], 1.0);
        let send = vec![1.0f32; elems];
        let mut recv = vec![0.0f32; elems];
        let reps = if mb >= 64 {
            6
        } else if mb >= 16 {
            10
        } else {
            40
        };
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        // Warm-up of both paths (buffer pools, MPI's shared-memory segments).
        pg.all_reduce(&t, ReduceOp::Sum).unwrap();
        world.all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum());
        for _ in 0..reps {
            pg.barrier().unwrap();
            let s = Instant::now();
            pg.all_reduce(&t, ReduceOp::Sum).unwrap();
            ours.push(s.elapsed().as_secs_f64());
            pg.barrier().unwrap();
            let s = Instant::now();
            world.all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum());
            theirs.push(s.elapsed().as_secs_f64());
        }
        // Every rank's median, the slowest rank's counts (a collective ends for all at once).
        let slowest = |v: Vec<f64>| {
            let m = Tensor::from_slice(&[median(v)], [1]);
            pg.all_reduce(&m, ReduceOp::Max).unwrap();
            m.item()
        };
        let (a, b) = (slowest(ours), slowest(theirs));
        let bus = |secs: f64| (elems * 4) as f64 / secs / 1e9 * 2.0 * (n - 1) as f64 / n as f64;
        let t = torch(&format!("/all_reduce/{mb}/seconds")).map_or_else(
            || "-".to_string(),
            |t| format!("{:.2} ({:.2})", bus(t), t * 1e3),
        );
        say(format!(
            "{:>6}MB {:>12.2} ({:>5.2}) {:>12.2} ({:>5.2}) {:>+8.1}% {:>24}",
            mb,
            bus(a),
            a * 1e3,
            bus(b),
            b * 1e3,
            (a / b - 1.0) * 100.0,
            t
        ));
    }

    // ----- a DDP step -----
    let mut ember_step = 0.0;
    for (cap, label) in [(25.0, "default buckets"), (0.02, "bucket_cap_mb 0.02")] {
        let step = ddp_step(&pg, cap, label);
        if cap == 25.0 {
            ember_step = step;
        }
    }
    if let Some(t) = torch("/ddp_step_seconds") {
        say(format!(
            "PyTorch DDP (gloo), the same step with default buckets: {:.3} ms; Ember takes {:.2}x PyTorch's time",
            t * 1e3,
            ember_step / t
        ));
    }
    pg.barrier().unwrap();
    std::thread::sleep(Duration::from_millis(10));
}

/// Times a DDP step of the MNIST MLP at global batch 256 with `bucket_cap_mb`, prints its
/// split, returns the median step in seconds. From each step's `ReductionStats`: the
/// communication is the span from the first bucket's start to the last one's completion; the
/// part of it before the last gradient was final ran during backward (overlapped); what
/// follows the last gradient is exposed; compute is the step minus the exposed part.
fn ddp_step(pg: &dist::ProcessGroup, cap_mb: f64, label: &str) -> f64 {
    let n = pg.world_size();
    let global = 256;
    let per_rank = global / n;
    manual_seed(0);
    let model = nn::Sequential::new()
        .add(nn::Linear::new(784, 128))
        .add(nn::ReLU)
        .add(nn::Linear::new(128, 64))
        .add(nn::ReLU)
        .add(nn::Linear::new(64, 10));
    let options = DdpOptions {
        bucket_cap_mb: cap_mb,
        ..DdpOptions::default()
    };
    let ddp = DistributedDataParallel::with_options(model, options).unwrap();
    let mut opt = SGD::new(ddp.parameters(), 0.01).momentum(0.9);
    let criterion = nn::CrossEntropyLoss::new();
    manual_seed(1 + pg.rank() as u64);
    let x = Tensor::randn([per_rank, 784]);
    let y = Tensor::randint(0, 10, [per_rank]);
    let (mut step, mut comm, mut overlapped, mut exposed) = (vec![], vec![], vec![], vec![]);
    for i in 0..60 {
        pg.barrier().unwrap();
        let s = Instant::now();
        opt.zero_grad();
        let loss = criterion.forward(&ddp.forward(&x).unwrap(), &y);
        ddp.backward(&loss).unwrap();
        opt.step();
        let secs = s.elapsed().as_secs_f64();
        if i >= 10 {
            let st = ddp.last_reduction();
            let ready = st.all_ready.unwrap();
            let first = st.launched[0];
            let last = st.completed.iter().map(|c| c.unwrap()).max().unwrap();
            let hidden: f64 = st
                .launched
                .iter()
                .zip(&st.completed)
                .map(|(&l, c)| {
                    c.unwrap()
                        .min(ready)
                        .saturating_duration_since(l)
                        .as_secs_f64()
                })
                .sum();
            step.push(secs);
            comm.push((last - first).as_secs_f64());
            overlapped.push(hidden);
            exposed.push((st.finished.unwrap() - ready).as_secs_f64());
        }
    }
    let (step, comm, overlapped, exposed) = (
        median(step),
        median(comm),
        median(overlapped),
        median(exposed),
    );
    if pg.rank() == 0 {
        println!(
            "DDP step, MNIST MLP 784-128-64-10, global batch {global} ({n} x {per_rank}), SGD \
             momentum, {label} ({} bucket(s)), median of 50 steps:",
            ddp.num_buckets()
        );
        println!(
            "  step {:.3} ms = compute {:.3} ms + exposed communication {:.3} ms; communication \
             {:.3} ms, of which {:.3} ms ({:.0}%) overlapped with backward",
            step * 1e3,
            (step - exposed) * 1e3,
            exposed * 1e3,
            comm * 1e3,
            overlapped * 1e3,
            100.0 * overlapped / comm.max(1e-12)
        );
    }
    step
}

fn rayon_threads() -> String {
    std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into())
}
