//! Timings of the MNIST path: loading (sha256 + gunzip + parse), one batch's gather, and an
//! epoch with and without prefetching while the caller does `work_us` of work per batch.
//!
//! `cargo run --release -p ember-data --example data_bench [-- DIR]`

use ember_autograd::Tensor;
use ember_data::{DataLoader, Dataset, Mnist};
use std::time::Instant;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "datasets/mnist".into());
    let t = Instant::now();
    let bytes = std::fs::read(format!("{dir}/train-images-idx3-ubyte.gz")).unwrap();
    let read = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let a = ember_data::idx::parse_idx(&bytes, "x".as_ref()).unwrap();
    let gunzip = t.elapsed().as_secs_f64();
    drop(a);
    let t = Instant::now();
    let train = Mnist::train(&dir).unwrap().normalize(0.5, 0.5);
    let load = t.elapsed().as_secs_f64();
    println!(
        "train set: read {:.1} ms, gunzip+parse {:.1} ms, Mnist::train total {:.1} ms",
        read * 1e3,
        gunzip * 1e3,
        load * 1e3
    );

    let idx: Vec<usize> = (0..64).map(|i| (i * 7919) % 60000).collect();
    let reps = 2000;
    let t = Instant::now();
    for r in 0..reps {
        let shifted: Vec<usize> = idx.iter().map(|i| (i + r * 64) % 60000).collect();
        std::hint::black_box(train.get_batch(&shifted));
    }
    println!(
        "get_batch(64): {:.1} us",
        t.elapsed().as_secs_f64() / reps as f64 * 1e6
    );

    // A real training step: the seeds' MLP 784-128-64-10 with SGD, written with tensor ops.
    let params: Vec<Tensor> = [[784, 128], [128, 64], [64, 10]]
        .iter()
        .flat_map(|&[i, o]| {
            [
                (Tensor::randn([i, o]) * (1.0 / (i as f64).sqrt())).requires_grad_(true),
                Tensor::zeros([o]).requires_grad_(true),
            ]
        })
        .collect();
    let step = |x: &Tensor, y: &Tensor| {
        let b = x.shape()[0] as i64;
        let mut h = x.view([b, 784]);
        for (k, p) in params.chunks(2).enumerate() {
            h = h.matmul(&p[0]).add(&p[1]);
            if k < 2 {
                h = h.relu();
            }
        }
        let loss = h.log_softmax(1).gather(1, &y.view([b, 1])).mean().neg();
        loss.backward();
        let _g = ember_autograd::no_grad();
        for p in &params {
            p.sub_(&(&p.grad().unwrap() * 0.01));
            p.zero_grad();
        }
        loss.item()
    };
    let mut best = [f64::MAX; 2];
    for round in 0..6 {
        for (k, prefetch) in [0usize, 2].into_iter().enumerate() {
            let loader = DataLoader::new(train.clone(), 64)
                .shuffle(true)
                .seed(round)
                .prefetch(prefetch);
            let t = Instant::now();
            let mut total = 0.0;
            for (x, y) in &loader {
                total += step(&x, &y);
            }
            std::hint::black_box(total);
            best[k] = best[k].min(t.elapsed().as_secs_f64());
        }
    }
    println!(
        "MLP epoch (best of 6): prefetch 0: {:.1} ms, prefetch 2: {:.1} ms",
        best[0] * 1e3,
        best[1] * 1e3
    );

    for work_us in [0u64, 500] {
        for prefetch in [0usize, 2] {
            let loader = DataLoader::new(train.clone(), 64)
                .shuffle(true)
                .seed(0)
                .prefetch(prefetch);
            let mut best = f64::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                for (x, y) in &loader {
                    std::hint::black_box((&x, &y));
                    // Stand-in for the training step: busy work on this thread.
                    let until = Instant::now() + std::time::Duration::from_micros(work_us);
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            let batches = loader.len() as f64;
            println!(
                "work {work_us:>3} us/batch, prefetch {prefetch}: epoch {:.1} ms, data overhead {:.1} us/batch",
                best * 1e3,
                (best / batches - work_us as f64 * 1e-6) * 1e6
            );
        }
    }
}
