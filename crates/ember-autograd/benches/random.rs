//! `cargo bench -p ember-autograd --bench random`: the random fills' times (best-of-5 mean after
//! calibration, `ember_testkit::bench::best_of`). `random_torch.py` beside this file times the
//! same PyTorch calls the same way; run the two alternately for ratios (the draws are sequential
//! in both, so they are bound by the mt19937 stream).

use ember_autograd::{manual_seed, DType, Tensor};
use ember_testkit::bench::best_of;
use std::hint::black_box;

/// A timed call.
type Bench<'a> = Box<dyn Fn() + 'a>;

fn main() {
    manual_seed(0);
    let n = 1 << 20;
    let cases: [(&str, Bench<'_>); 7] = [
        (
            "rand 1M f32",
            Box::new(|| drop(black_box(Tensor::rand([n])))),
        ),
        (
            "randn 1M f32",
            Box::new(|| drop(black_box(Tensor::randn([n])))),
        ),
        (
            "randn 1M f64",
            Box::new(|| {
                drop(black_box(Tensor::normal_with(
                    [n],
                    0.0,
                    1.0,
                    DType::F64,
                    None,
                )))
            }),
        ),
        (
            "randint 1M",
            Box::new(|| drop(black_box(Tensor::randint(0, 10, [n])))),
        ),
        (
            "randperm 100K",
            Box::new(|| drop(black_box(Tensor::randperm(100_000)))),
        ),
        (
            "bernoulli_(0.5) 1M f32",
            Box::new(|| drop(black_box(Tensor::zeros([n]).bernoulli_(0.5).clone()))),
        ),
        (
            "randn 100 f32",
            Box::new(|| drop(black_box(Tensor::randn([100])))),
        ),
    ];
    for (name, f) in &cases {
        let t = best_of(f, 1.0, 5);
        println!("{name:<24} {:>10.1} us", t * 1e6);
    }
}
