//! A binary classifier's forward pass: `Linear(8, 1)` followed by `Sigmoid`, applied to a batch
//! of 8-feature rows (the seeds' first model), printing the model and the probabilities.
//!
//! `cargo run --release --example binary_classifier`

use ember::nn::{self, Module};
use ember::{no_grad, tensor, Tensor};

/// Builds the seeded model, runs it on a batch and returns `(model, batch, probabilities)`; the
/// probabilities have shape `(batch, 1)`.
pub fn run() -> (nn::Sequential, Tensor, Tensor) {
    ember::manual_seed(0);
    let model = nn::Sequential::new()
        .add(nn::Linear::new(8, 1))
        .add(nn::Sigmoid);
    println!("{}", &model as &dyn Module);
    println!("{} parameters", model.num_parameters());

    // Story 1's row, plus three more.
    let x = tensor!([
        [3., 4., 6., 2., 3., 6., 8., 9.],
        [0., 0., 0., 0., 0., 0., 0., 0.],
        [-1., 2., -3., 4., -5., 6., -7., 8.],
        [0.5, 0.25, 0.125, 1., 2., 4., 8., 16.]
    ]);
    println!("input {:?}:\n{x}", x.shape());

    let probabilities = {
        let _g = no_grad();
        model.forward(&x)
    };
    println!(
        "probabilities {:?}:\n{probabilities}",
        probabilities.shape()
    );
    for (i, p) in probabilities.to_vec::<f32>().iter().enumerate() {
        let class = if *p >= 0.5 { 1 } else { 0 };
        println!("  sample {i}: p(class 1) = {p:.4} -> class {class}");
    }
    (model, x, probabilities)
}

fn main() {
    run();
}
