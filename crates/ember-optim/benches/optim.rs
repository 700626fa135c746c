//! `cargo bench -p ember-optim`: one `step()` over a 1000×1000 f32 parameter, beside PyTorch's
//! figures (see `ember_testkit::bench` for where they come from) and the ratio.

use ember_autograd::Tensor;
use ember_optim::*;
use ember_testkit::bench::{best_of, TorchFigures};

fn row(name: &str, ours_us: f64, torch_us: Option<f64>, target: &str) {
    match torch_us {
        Some(t) => println!(
            "{name:<36} {ours_us:>9.1} µs   PyTorch {t:>8.1} µs   {:>5.2}x PyTorch's time   target {target}",
            ours_us / t
        ),
        None => println!("{name:<36} {ours_us:>9.1} µs"),
    }
}

fn main() {
    let torch = TorchFigures::load();
    println!(
        "ember-optim benchmarks ({} rayon threads); {}",
        rayon::current_num_threads(),
        torch.source()
    );
    let p = Tensor::randn([1000, 1000]).requires_grad_(true);
    // Small gradients keep the parameter finite however many steps the timing loop takes.
    p.set_grad(Some(&Tensor::randn([1000, 1000]) * 1e-3));
    let time = |opt: &mut dyn Optimizer| best_of(|| opt.step(), 1.0, 5) * 1e6;

    let adam = time(&mut Adam::new([p.clone()], 1e-3));
    row(
        "Adam(lr=1e-3).step() 1000x1000",
        adam,
        Some(torch.get("/optim/adam_1M_us", 2000.0)),
        "<= 1200 µs",
    );
    let sgd = time(&mut SGD::new([p.clone()], 1e-2).momentum(0.9));
    row(
        "SGD(lr=1e-2, momentum=0.9).step()",
        sgd,
        Some(torch.get("/optim/sgd_momentum_1M_us", 240.0)),
        "<= 200 µs",
    );
    row(
        "SGD(lr=1e-2).step()",
        time(&mut SGD::new([p.clone()], 1e-2)),
        None,
        "",
    );
    row(
        "AdamW(lr=1e-3).step()",
        time(&mut AdamW::new([p.clone()], 1e-3)),
        None,
        "",
    );
    row(
        "Adam(amsgrad=True).step()",
        time(&mut Adam::new([p.clone()], 1e-3).amsgrad(true)),
        None,
        "",
    );
    row(
        "RMSprop(lr=1e-2).step()",
        time(&mut RMSprop::new([p.clone()], 1e-2)),
        None,
        "",
    );
    row(
        "Adagrad(lr=1e-2).step()",
        time(&mut Adagrad::new([p.clone()], 1e-2)),
        None,
        "",
    );
    let params = [p.clone()];
    let clip = best_of(|| drop(clip::clip_grad_norm_(&params, 1e9, 2.0)), 1.0, 5) * 1e6;
    row("clip_grad_norm_(max_norm=1e9) 1M", clip, None, "");
}
