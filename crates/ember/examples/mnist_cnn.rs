//! A convolutional network on MNIST, written the way a PyTorch user writes one: a module struct
//! whose layers are fields (found by `#[derive(nn::Module)]`) and a `forward` that chains them,
//! then the usual loop of zero_grad / forward / loss / backward / step.
//!
//! ```python
//! class Net(nn.Module):
//!     def __init__(self):
//!         super().__init__()
//!         self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
//!         self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
//!         self.pool = nn.MaxPool2d(2)
//!         self.fc1 = nn.Linear(3136, 128)
//!         self.fc2 = nn.Linear(128, 10)
//!     def forward(self, x):
//!         x = self.pool(F.relu(self.conv1(x)))
//!         x = self.pool(F.relu(self.conv2(x)))
//!         return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))
//! ```
//!
//! `cargo run --release --example mnist_cnn` trains one epoch (about 99% test accuracy); set
//! `EMBER_EXAMPLE_QUICK=1` for a short run on part of the data.

use ember::data::{DataLoader, Mnist};
use ember::nn::{self, functional as F, Module};
use ember::optim::Adam;
use ember::{no_grad, Tensor};

/// The network: two convolution + max-pool stages, then two linear layers.
#[derive(nn::Module)]
pub struct Net {
    conv1: nn::Conv2d,
    conv2: nn::Conv2d,
    pool: nn::MaxPool2d,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Net {
    /// A freshly initialised network (PyTorch's default initialisation).
    pub fn new() -> Net {
        Net {
            conv1: nn::Conv2d::new(1, 32, 3).padding(1),
            conv2: nn::Conv2d::new(32, 64, 3).padding(1),
            pool: nn::MaxPool2d::new(2),
            fc1: nn::Linear::new(3136, 128),
            fc2: nn::Linear::new(128, 10),
        }
    }
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

impl nn::Module for Net {
    fn forward(&self, x: &Tensor) -> Tensor {
        let x = self.pool.forward(&F::relu(&self.conv1.forward(x)));
        let x = self.pool.forward(&F::relu(&self.conv2.forward(&x)));
        self.fc2
            .forward(&F::relu(&self.fc1.forward(&x.flatten(1, -1))))
    }
}

/// Trains a fresh `Net` for one epoch (the first `train_batches` batches of 64 when given) and
/// returns it with its accuracy on the first `test_images` test images.
pub fn run(train_batches: Option<usize>, test_images: usize) -> (Net, f64) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/mnist");
    let train = Mnist::train(&root)
        .expect("MNIST in datasets/mnist")
        .normalize(0.1307, 0.3081);
    let test = Mnist::test(&root)
        .expect("MNIST in datasets/mnist")
        .normalize(0.1307, 0.3081);
    ember::manual_seed(0);
    let model = Net::new();
    let mut optimizer = Adam::new(model.parameters(), 1e-3);
    let criterion = nn::CrossEntropyLoss::new();
    let loader = DataLoader::new(train, 64).shuffle(true).seed(0);
    model.train();
    for (step, (images, labels)) in loader.iter().enumerate() {
        if train_batches.is_some_and(|n| step >= n) {
            break;
        }
        optimizer.zero_grad();
        let loss = criterion.forward(&model.forward(&images), &labels);
        loss.backward();
        optimizer.step();
        if step % 200 == 0 {
            println!("step {step:>4}: loss {:.4}", loss.item());
        }
    }
    model.eval();
    let _g = no_grad();
    let (mut correct, mut seen) = (0usize, 0usize);
    for (images, labels) in &DataLoader::new(test, 500) {
        if seen >= test_images {
            break;
        }
        let predicted = model.forward(&images).argmax(Some(1), false);
        correct += predicted
            .eq(&labels)
            .to_dtype(ember::DType::I64)
            .sum()
            .item() as usize;
        seen += labels.numel();
    }
    (model, correct as f64 / seen as f64)
}

fn main() {
    let quick = std::env::var_os("EMBER_EXAMPLE_QUICK").is_some();
    let (model, accuracy) = if quick {
        run(Some(100), 1000)
    } else {
        run(None, 10_000)
    };
    println!("{} parameters", model.num_parameters());
    println!("test accuracy: {:.2}%", 100.0 * accuracy);
}
