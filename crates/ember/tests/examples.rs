//! Runs every example of `crates/ember/examples/` at reduced size so they cannot rot: each
//! example file is compiled into this test as a module and its `run` entry point (the one its
//! `main` calls) is checked for a meaningful result.

use std::sync::{Mutex, MutexGuard};

#[allow(dead_code)]
#[path = "../examples/autograd_basics.rs"]
mod autograd_basics;
#[allow(dead_code)]
#[path = "../examples/binary_classifier.rs"]
mod binary_classifier;
#[allow(dead_code)]
#[path = "../examples/fizzbuzz.rs"]
mod fizzbuzz;
#[allow(dead_code)]
#[path = "../examples/manual_sgd.rs"]
mod manual_sgd;
#[allow(dead_code)]
#[path = "../examples/mnist_cnn.rs"]
mod mnist_cnn;
#[allow(dead_code)]
#[path = "../examples/regression.rs"]
mod regression;

/// The examples seed the process-wide generator with `manual_seed`; running them one at a time
/// keeps each run reproducible.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn autograd_basics_matches_story_2() {
    let _s = serial();
    let o = autograd_basics::run();
    assert_eq!(o.pow_grad_fn, Some("PowBackward0"));
    assert_eq!(o.mean_grad_fn, Some("MeanBackward0"));
    assert!(o.grad_is_half_x, "x.grad() != x / 2");
    assert!(o.grad_accumulates, "gradients did not accumulate");
    assert!(o.no_grad_detaches, "no_grad() still recorded the graph");
    assert!(o.set_grad_enabled_works, "set_grad_enabled did not switch");
    assert!(ember::is_grad_enabled(), "the example left grad mode off");
}

#[test]
fn binary_classifier_gives_sigmoid_of_linear() {
    let _s = serial();
    let (model, x, p) = binary_classifier::run();
    assert_eq!(p.shape(), &[4, 1]);
    let w = model[0].weight();
    let b = model[0].bias().unwrap();
    let expected = (x.matmul(&w.t()) + &b).sigmoid();
    assert!(p.allclose(&expected, 1e-5, 1e-6), "{p} != {expected}");
    assert!(p.to_vec::<f32>().iter().all(|&v| v > 0.0 && v < 1.0));
    assert!(!p.requires_grad(), "forward ran under no_grad");
}

#[test]
fn fizzbuzz_learns() {
    let _s = serial();
    let acc = fizzbuzz::run(true);
    assert!(
        acc >= QUICK_FIZZBUZZ,
        "accuracy on 1..=100 {acc} < {QUICK_FIZZBUZZ}"
    );
}

/// The reduced fizzbuzz run's bar: always predicting "number" scores 0.53.
const QUICK_FIZZBUZZ: f64 = 0.95;

#[test]
fn regression_converges() {
    let _s = serial();
    let o = regression::run(true);
    assert!(
        o.final_loss * 10.0 < o.initial_loss,
        "loss {} -> {}",
        o.initial_loss,
        o.final_loss
    );
    assert!(o.final_loss < 1e-3, "final loss {}", o.final_loss);
    for (w, t) in o.weight.iter().zip(regression::TRUE_W) {
        assert!(
            (w - t).abs() < 0.05,
            "weight {:?} vs {:?}",
            o.weight,
            regression::TRUE_W
        );
    }
    assert!(
        (o.bias - regression::TRUE_B).abs() < 0.05,
        "bias {}",
        o.bias
    );
}

#[test]
fn manual_sgd_trains() {
    let _s = serial();
    let o = manual_sgd::run(true);
    assert!(
        o.final_loss < o.initial_loss / 2.0,
        "loss {} -> {}",
        o.initial_loss,
        o.final_loss
    );
    assert!(o.accuracy >= 0.9, "accuracy {}", o.accuracy);
}

#[test]
fn mnist_cnn_learns_from_a_hundred_batches() {
    let _s = serial();
    let (model, accuracy) = mnist_cnn::run(Some(100), 1000);
    use ember::nn::Module;
    let names: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "conv1.weight",
            "conv1.bias",
            "conv2.weight",
            "conv2.bias",
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias"
        ]
    );
    assert!(
        accuracy > 0.85,
        "test accuracy {accuracy} after 100 batches"
    );
}
