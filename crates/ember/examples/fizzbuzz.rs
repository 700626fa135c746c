//! FizzBuzz as a classifier (story 3): `FizBuzNet`, a user-defined module whose parameters are
//! found by `#[derive(nn::Module)]`, learns from the 10-bit binary encoding of `n` whether to say
//! the number, "fizz", "buzz" or "fizzbuzz". Like the classic tutorial it trains on 101..=1023
//! and is scored on 1..=100, numbers it has never seen.
//!
//! `cargo run --release --example fizzbuzz` (set `EMBER_EXAMPLE_QUICK=1` for a short run).

use ember::data::{DataLoader, TensorDataset};
use ember::nn::{self, Module};
use ember::optim::Adam;
use ember::{no_grad, Tensor};

/// Bits of the input encoding: enough for every number up to 1023.
const BITS: usize = 10;

/// The network of story 3: one sigmoid hidden layer, four class scores.
#[derive(nn::Module)]
pub struct FizBuzNet {
    hidden: nn::Linear,
    out: nn::Linear,
}

impl FizBuzNet {
    /// A net with `input` inputs, `hidden` hidden units and `output` classes.
    pub fn new(input: usize, hidden: usize, output: usize) -> FizBuzNet {
        FizBuzNet {
            hidden: nn::Linear::new(input, hidden),
            out: nn::Linear::new(hidden, output),
        }
    }
}

impl nn::Module for FizBuzNet {
    fn forward(&self, batch: &Tensor) -> Tensor {
        self.out.forward(&self.hidden.forward(batch).sigmoid())
    }
}

/// The class of `n`: 0 = the number itself, 1 = fizz, 2 = buzz, 3 = fizzbuzz.
pub fn label(n: u32) -> i64 {
    match (n % 3, n % 5) {
        (0, 0) => 3,
        (_, 0) => 2,
        (0, _) => 1,
        _ => 0,
    }
}

/// What FizzBuzz says for `n` given class `class`.
pub fn say(n: u32, class: i64) -> String {
    match class {
        1 => "fizz".into(),
        2 => "buzz".into(),
        3 => "fizzbuzz".into(),
        _ => n.to_string(),
    }
}

/// The inputs `(N, BITS)` (binary digits of each number, least significant first, as f32) and
/// class-index targets `(N)` for `numbers`.
pub fn encode(numbers: &[u32]) -> (Tensor, Tensor) {
    let bits: Vec<f32> = numbers
        .iter()
        .flat_map(|&n| (0..BITS).map(move |b| ((n >> b) & 1) as f32))
        .collect();
    let labels: Vec<i64> = numbers.iter().map(|&n| label(n)).collect();
    (
        Tensor::from_vec(bits, [numbers.len(), BITS]),
        Tensor::from_vec(labels, [numbers.len()]),
    )
}

/// The share of `labels` that `model` classifies right on `x`.
pub fn accuracy(model: &FizBuzNet, x: &Tensor, labels: &Tensor) -> f64 {
    let _g = no_grad();
    let predicted = model.forward(x).argmax(Some(1), false);
    predicted.eq(labels).float().mean().item()
}

/// Trains a fresh, seeded `FizBuzNet` on 101..=1023 and returns its accuracy on 1..=100.
/// `quick` trains for half the epochs (the test suite's run; it reaches 94-95%).
pub fn run(quick: bool) -> f64 {
    ember::manual_seed(0);
    let epochs = if quick { 300 } else { 600 };
    let (hidden, lr, batch) = (100, 0.03, 128);

    let train: Vec<u32> = (101..=1023).collect();
    let test: Vec<u32> = (1..=100).collect();
    let (x_train, y_train) = encode(&train);
    let (x_test, y_test) = encode(&test);

    let model = FizBuzNet::new(BITS, hidden, 4);
    println!("{}", &model as &dyn Module);
    println!(
        "{} parameters; Adam lr {lr}, batches of {batch}, {epochs} epochs on 101..=1023",
        model.num_parameters()
    );
    let criterion = nn::CrossEntropyLoss::new();
    let mut opt = Adam::new(model.parameters(), lr);
    let loader = DataLoader::new(TensorDataset::new((x_train, y_train)), batch)
        .shuffle(true)
        .seed(0);
    let report_every = (epochs / 10).max(1);
    for epoch in 1..=epochs {
        let mut running = 0.0;
        for (xb, yb) in &loader {
            opt.zero_grad();
            let loss = criterion.forward(&model.forward(&xb), &yb);
            loss.backward();
            opt.step();
            running += loss.item();
        }
        if epoch % report_every == 0 || epoch == epochs {
            println!(
                "epoch {epoch:>5}: train loss {:.4}, test accuracy {:.1}%",
                running / loader.len() as f64,
                100.0 * accuracy(&model, &x_test, &y_test)
            );
        }
    }

    let acc = accuracy(&model, &x_test, &y_test);
    let predicted = {
        let _g = no_grad();
        model
            .forward(&x_test)
            .argmax(Some(1), false)
            .to_vec::<i64>()
    };
    let said: Vec<String> = test
        .iter()
        .zip(&predicted)
        .map(|(&n, &c)| say(n, c))
        .collect();
    println!("{}", said.join(" "));
    let wrong: Vec<String> = test
        .iter()
        .zip(&predicted)
        .filter(|(&n, &c)| c != label(n))
        .map(|(&n, &c)| format!("{n} (said {}, not {})", say(n, c), say(n, label(n))))
        .collect();
    if !wrong.is_empty() {
        println!("mistakes: {}", wrong.join(", "));
    }
    println!("accuracy on 1..=100: {:.1}%", 100.0 * acc);
    acc
}

fn main() {
    run(std::env::var_os("EMBER_EXAMPLE_QUICK").is_some());
}
