//! `cargo bench -p ember-optim`: one `step()` over a 1000×1000 f32 parameter, beside PyTorch's
//! figures (see `ember_testkit::bench` for where they come from) and the ratio.
//!
//! Each row also gives the process CPU time per step (all threads, from `/proc/self/stat`): on a
//! machine shared with other work the wall time is inflated by waiting for a core, while the CPU
//! time divided by the number of threads still estimates the wall time on an idle machine.

use ember_autograd::Tensor;
use ember_optim::*;
use ember_testkit::bench::{best_of, TorchFigures};
use std::time::Instant;

/// Process CPU time (user + system) in seconds, where `/proc` exists.
fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// (best-of-5 wall µs, CPU µs per call over about a second).
fn measure(mut f: impl FnMut()) -> (f64, Option<f64>) {
    let wall = best_of(&mut f, 1.0, 5) * 1e6;
    let c0 = cpu_seconds();
    let (t0, mut n) = (Instant::now(), 0u32);
    while t0.elapsed().as_secs_f64() < 1.0 {
        f();
        n += 1;
    }
    let cpu = c0.zip(cpu_seconds()).map(|(a, b)| (b - a) * 1e6 / n as f64);
    (wall, cpu)
}

fn row(name: &str, (wall, cpu): (f64, Option<f64>), torch_us: Option<f64>, target: &str) {
    let cpu = cpu.map_or("n/a".to_string(), |c| format!("{c:.0}"));
    let torch = torch_us.map_or(String::new(), |t| {
        format!(
            "PyTorch {t:>7.1} µs  {:>5.2}x PyTorch's time  target {target}",
            wall / t
        )
    });
    println!("{name:<36} {wall:>8.1} µs  (cpu {cpu:>6} µs)  {torch}");
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
    let time = |opt: &mut dyn Optimizer| measure(|| opt.step());

    let adam = time(&mut Adam::new([p.clone()], 1e-3));
    let adam_torch = torch.get("/optim/adam_1M_us", 2000.0);
    row(
        "Adam(lr=1e-3).step() 1000x1000",
        adam,
        Some(adam_torch),
        "<= 1200 µs",
    );
    let sgd = time(&mut SGD::new([p.clone()], 1e-2).momentum(0.9));
    let sgd_torch = torch.get("/optim/sgd_momentum_1M_us", 240.0);
    row(
        "SGD(lr=1e-2, momentum=0.9).step()",
        sgd,
        Some(sgd_torch),
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
    let ams = time(&mut Adam::new([p.clone()], 1e-3).amsgrad(true));
    row("Adam(amsgrad=True).step()", ams, None, "");
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
    let clip = measure(|| drop(clip::clip_grad_norm_(&params, 1e9, 2.0)));
    row("clip_grad_norm_(max_norm=1e9) 1M", clip, None, "");
}
