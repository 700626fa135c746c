//! `cargo bench -p ember-autograd`: the per-op and graph overheads of the autograd issue, beside
//! PyTorch's figures (see `ember_testkit::bench`): a chain of 10 tiny ops with `sum` and
//! `backward`, the same forward only, and the fixed cost of one `backward`.

use ember_autograd::Tensor;
use ember_testkit::bench::{best_of, TorchFigures};
use std::hint::black_box;

fn row(name: &str, ours_us: f64, torch_us: f64, target: &str) {
    println!("{name:<58} {ours_us:>8.2} us   PyTorch {torch_us:>8.2} us   {:.3}x PyTorch's time   target {target}", ours_us / torch_us);
}

fn main() {
    let torch = TorchFigures::load();
    println!("ember-autograd benchmarks; {}", torch.source());
    let a = Tensor::randn([8]).requires_grad_(true);
    let b = Tensor::randn([8]).requires_grad_(true);
    // add, then mul/add/relu three times: the chain of PyTorch's reference script.
    let chain = || {
        let mut x = &a + &b;
        for i in 0..9 {
            x = match i % 3 {
                0 => &x * &b,
                1 => &x + &a,
                _ => x.relu(),
            };
        }
        x.sum()
    };
    let t = best_of(
        || {
            chain().backward();
            a.zero_grad();
            b.zero_grad();
        },
        1.0,
        5,
    );
    row(
        "10 chained ops on 8-element tensors + sum + backward",
        t * 1e6,
        torch.get("/ops/chain10_backward_us", 161.0),
        "<= 0.125x (20 us)",
    );
    let t = best_of(|| drop(black_box(chain())), 1.0, 5);
    row(
        "the same, forward only (graph recorded)",
        t * 1e6,
        torch.get("/ops/chain10_fwd_only_grad_us", 29.0),
        "-",
    );
    let t = best_of(
        || {
            (&a * 2.0).sum().backward();
            a.zero_grad();
        },
        1.0,
        5,
    );
    row(
        "(x * 2).sum().backward(): fixed cost of one backward",
        t * 1e6,
        torch.get("/ops/mul_sum_backward_us", 86.0),
        "-",
    );
}
