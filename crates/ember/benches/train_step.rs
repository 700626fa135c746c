//! `cargo bench -p ember --bench train_step`: one MLP training step (zero_grad, forward, loss,
//! backward, SGD step, item) at batch 1 and 64 on real MNIST rows, beside PyTorch's figures.

use ember::data::{DataLoader, Mnist};
use ember::nn::{self, Module};
use ember::optim::SGD;
use ember_testkit::bench::{best_of, TorchFigures};

fn main() {
    let torch = TorchFigures::load();
    println!("ember train-step benchmark; {}", torch.source());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/mnist");
    let train = Mnist::train(&root)
        .expect("MNIST")
        .normalize(0.1307, 0.3081);
    let (x, y) = DataLoader::new(train, 6400).iter().next().expect("a batch");
    let x = x.view([x.size(0), -1]);
    // `cargo bench -p ember --bench train_step -- 1` runs only batch 1 (for profiling).
    let only: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    for (bs, fallback, target) in [(1usize, 566.0, "<= 0.33x"), (64, 852.0, "-")] {
        if !only.is_empty() && !only.contains(&bs) {
            continue;
        }
        ember::manual_seed(0);
        let model = nn::Sequential::new()
            .add(nn::Linear::new(784, 128))
            .add(nn::ReLU)
            .add(nn::Linear::new(128, 64))
            .add(nn::ReLU)
            .add(nn::Linear::new(64, 10));
        let mut opt = SGD::new(model.parameters(), 0.01).momentum(0.9);
        let criterion = nn::CrossEntropyLoss::new();
        let mut pos = 0;
        let t = best_of(
            || {
                if pos + bs > x.size(0) as usize {
                    pos = 0;
                }
                let (xb, yb) = (x.narrow(0, pos, bs), y.narrow(0, pos, bs));
                opt.zero_grad();
                let loss = criterion.forward(&model.forward(&xb), &yb);
                loss.backward();
                opt.step();
                loss.item();
                pos += bs;
            },
            2.0,
            5,
        );
        let ours = t * 1e6;
        let theirs = torch.get(&format!("/ops/train_step_bs{bs}_us"), fallback);
        println!("MLP 784-128-64-10 train step, batch {bs:<3} {ours:>9.1} us   PyTorch {theirs:>9.1} us   {:.3}x PyTorch's time   target {target}", ours / theirs);
    }
}
