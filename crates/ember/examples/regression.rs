//! Linear regression the PyTorch way (story 5's last loader): synthetic data
//! `y = 2 x₁ - 3.4 x₂ + 4.2 + noise` in a `TensorDataset`, a shuffled, seeded `DataLoader` with
//! batches of 4, `nn::Linear(2, 1)`, `MSELoss` and `optim::SGD`. Prints the loss per epoch and the
//! learned weights next to the true ones.
//!
//! `cargo run --release --example regression` (set `EMBER_EXAMPLE_QUICK=1` for a short run).

use ember::data::{DataLoader, TensorDataset};
use ember::nn::{self, Module};
use ember::optim::SGD;
use ember::{no_grad, Tensor};

/// The weights the data was made with.
pub const TRUE_W: [f32; 2] = [2.0, -3.4];
/// The bias the data was made with.
pub const TRUE_B: f32 = 4.2;

/// What training achieved.
pub struct Outcome {
    /// MSE over the whole data set before training.
    pub initial_loss: f64,
    /// MSE over the whole data set after training.
    pub final_loss: f64,
    /// The learned weights.
    pub weight: Vec<f32>,
    /// The learned bias.
    pub bias: f32,
}

/// `n` samples of the synthetic data: features `(n, 2)` and targets `(n, 1)`.
pub fn synthetic(n: usize) -> (Tensor, Tensor) {
    let features = Tensor::randn([n, 2]);
    let w = Tensor::from_slice(&TRUE_W, [2, 1]);
    let noise = Tensor::randn([n, 1]) * 0.01;
    let target = features.matmul(&w) + f64::from(TRUE_B) + noise;
    (features, target)
}

/// Trains a seeded `Linear(2, 1)`; `quick` uses less data and fewer epochs (the test suite's run).
pub fn run(quick: bool) -> Outcome {
    ember::manual_seed(0);
    let (n, epochs) = if quick { (200, 3) } else { (1000, 5) };
    let (features, target) = synthetic(n);

    let model = nn::Linear::new(2, 1);
    let criterion = nn::MSELoss::new();
    let mut opt = SGD::new(model.parameters(), 0.03);
    let loader = DataLoader::new(TensorDataset::new((features.clone(), target.clone())), 4)
        .shuffle(true)
        .seed(0);
    let full_loss = |m: &nn::Linear| {
        let _g = no_grad();
        criterion.forward(&m.forward(&features), &target).item()
    };

    let initial_loss = full_loss(&model);
    println!(
        "{n} samples, {} batches of 4 per epoch; initial loss {initial_loss:.4}",
        loader.len()
    );
    for epoch in 1..=epochs {
        let mut running = 0.0;
        for (xb, yb) in &loader {
            opt.zero_grad();
            let loss = criterion.forward(&model.forward(&xb), &yb);
            loss.backward();
            opt.step();
            running += loss.item();
        }
        println!(
            "epoch {epoch}: training loss {:.6}",
            running / loader.len() as f64
        );
    }

    let final_loss = full_loss(&model);
    let weight = model.weight.to_vec::<f32>();
    let bias = model
        .bias
        .as_ref()
        .expect("Linear has a bias")
        .to_vec::<f32>()[0];
    println!("final loss {final_loss:.6}");
    println!("learned weight {weight:?}, bias {bias:.4}");
    println!("true    weight {TRUE_W:?}, bias {TRUE_B:.4}");
    Outcome {
        initial_loss,
        final_loss,
        weight,
        bias,
    }
}

fn main() {
    run(std::env::var_os("EMBER_EXAMPLE_QUICK").is_some());
}
