//! Gradient descent by hand (story 5's last line): no optimizer object, just
//! `p -= lr * p.grad` for every parameter under `no_grad()`, then the gradients are zeroed.
//! A small MLP learns which points of the square `[-1, 1]²` lie inside the circle of radius 0.7.
//!
//! `cargo run --release --example manual_sgd` (set `EMBER_EXAMPLE_QUICK=1` for a short run).

use ember::nn::{self, Module};
use ember::{no_grad, Tensor};

/// What training achieved.
pub struct Outcome {
    /// Cross-entropy of the untrained model.
    pub initial_loss: f64,
    /// Cross-entropy after the last step.
    pub final_loss: f64,
    /// Share of the points classified right after training.
    pub accuracy: f64,
}

/// `n` points uniform in `[-1, 1]²` `(n, 2)` and their labels `(n)`: 1 inside the circle of
/// radius 0.7, else 0 (about half of each).
pub fn points(n: usize) -> (Tensor, Tensor) {
    let x = Tensor::uniform([n, 2], -1.0, 1.0);
    let inside = x.pow(2.0).sum_dim(1, false).lt(0.49).long();
    (x, inside)
}

/// The share of `labels` that `model` classifies right on `x`.
pub fn accuracy(model: &dyn Module, x: &Tensor, labels: &Tensor) -> f64 {
    let _g = no_grad();
    let predicted = model.forward(x).argmax(Some(1), false);
    predicted.eq(labels).float().mean().item()
}

/// Trains a seeded MLP with full-batch manual gradient descent; `quick` takes fewer steps (the
/// test suite's run).
pub fn run(quick: bool) -> Outcome {
    ember::manual_seed(0);
    let (n, steps) = if quick { (256, 300) } else { (1024, 1000) };
    let lr = 0.5;
    let (x, labels) = points(n);

    let model = nn::Sequential::new()
        .add(nn::Linear::new(2, 32))
        .add(nn::Tanh)
        .add(nn::Linear::new(32, 2));
    let criterion = nn::CrossEntropyLoss::new();
    println!("{}", &model as &dyn Module);

    let mut initial_loss = f64::NAN;
    let mut final_loss = f64::NAN;
    let report_every = (steps / 10).max(1);
    for step in 0..steps {
        let loss = criterion.forward(&model.forward(&x), &labels);
        loss.backward();
        // The update PyTorch users write by hand: p -= lr * p.grad, outside the graph.
        {
            let _g = no_grad();
            for p in model.parameters() {
                p.sub_(&(p.grad().unwrap() * lr));
                p.zero_grad();
            }
        }
        final_loss = loss.item();
        if step == 0 {
            initial_loss = final_loss;
        }
        if step % report_every == 0 || step + 1 == steps {
            println!(
                "step {step:>5}: loss {final_loss:.4}, accuracy {:.1}%",
                100.0 * accuracy(&model, &x, &labels)
            );
        }
    }
    let accuracy = accuracy(&model, &x, &labels);
    println!(
        "final loss {final_loss:.4} (from {initial_loss:.4}), accuracy {:.1}%",
        100.0 * accuracy
    );
    Outcome {
        initial_loss,
        final_loss,
        accuracy,
    }
}

fn main() {
    run(std::env::var_os("EMBER_EXAMPLE_QUICK").is_some());
}
