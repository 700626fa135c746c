//! Timings of the MNIST data path: loading (sha256 + gunzip + parse), one batch's gather, and
//! one epoch with and without prefetching, (a) with no work per batch, (b) with 500 µs of
//! single-threaded busy work per batch, (c) with a real training step of the seeds' MLP
//! 784-128-64-10 (tensor ops, autograd, SGD). Each variant is the best of several epochs, the
//! prefetch settings interleaved so that a busy machine affects both alike.
//!
//! `cargo run --release -p ember-data --example data_bench [-- DIR]`

use ember_autograd::Tensor;
use ember_data::{DataLoader, Dataset, Mnist};
use std::time::{Duration, Instant};

/// What the caller does with each batch.
type Step<'a> = &'a dyn Fn(&Tensor, &Tensor);

fn best_of(n: usize, mut f: impl FnMut()) -> f64 {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "datasets/mnist".into());
    let bytes = std::fs::read(format!("{dir}/train-images-idx3-ubyte.gz")).unwrap();
    let gunzip = best_of(3, || {
        std::hint::black_box(ember_data::idx::parse_idx(&bytes, "x".as_ref()).unwrap());
    });
    drop(bytes);
    let mut train = None;
    let load = best_of(3, || {
        train = Some(Mnist::train(&dir).unwrap().normalize(0.5, 0.5))
    });
    let train = train.unwrap();
    println!(
        "Mnist::train: {:.0} ms (gunzip + parse of the images: {:.0} ms)",
        load * 1e3,
        gunzip * 1e3
    );

    let mut r = 0;
    let gather = best_of(5, || {
        for _ in 0..500 {
            let idx: Vec<usize> = (0..64).map(|i| (i * 7919 + r * 64) % 60000).collect();
            std::hint::black_box(train.get_batch(&idx));
            r += 1;
        }
    }) / 500.0;
    println!("get_batch(64 random images): {:.1} us", gather * 1e6);

    let params: Vec<Tensor> = [[784, 128], [128, 64], [64, 10]]
        .iter()
        .flat_map(|&[i, o]| {
            [
                (Tensor::randn([i, o]) * (1.0 / (i as f64).sqrt())).requires_grad_(true),
                Tensor::zeros([o]).requires_grad_(true),
            ]
        })
        .collect();
    let mlp_step = |x: &Tensor, y: &Tensor| {
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
        std::hint::black_box(loss.item());
    };
    let busy = |_: &Tensor, _: &Tensor| {
        let until = Instant::now() + Duration::from_micros(500);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    };
    let none = |_: &Tensor, _: &Tensor| {};
    let steps: [(&str, Step); 3] = [
        ("no work", &none),
        ("500 us busy work", &busy),
        ("MLP training step", &mlp_step),
    ];
    for (name, step) in steps {
        let mut best = [f64::MAX; 2];
        for round in 0..5 {
            for (k, prefetch) in [0usize, 2].into_iter().enumerate() {
                let loader = DataLoader::new(train.clone(), 64)
                    .shuffle(true)
                    .seed(round)
                    .prefetch(prefetch);
                let t = best_of(1, || {
                    for (x, y) in &loader {
                        step(&x, &y);
                    }
                });
                best[k] = best[k].min(t);
            }
        }
        println!(
            "epoch, {name:>18}: prefetch 0: {:7.1} ms, prefetch 2: {:7.1} ms ({:+.1} us/batch)",
            best[0] * 1e3,
            best[1] * 1e3,
            (best[1] - best[0]) / 938.0 * 1e6
        );
    }
}
