//! Autograd basics (story 2): a leaf that requires grad, `pow`, the recorded `grad_fn`, `mean`,
//! `backward`, the gradient `x / 2`, accumulation across `backward` calls, and turning recording
//! off with `no_grad()` and `set_grad_enabled`.
//!
//! `cargo run --release --example autograd_basics`

use ember::Tensor;

/// What the walk-through observed, for the test suite to check.
pub struct Outcome {
    /// `y = x.pow(2)`'s `grad_fn` name (PyTorch prints `PowBackward0`).
    pub pow_grad_fn: Option<&'static str>,
    /// `z = y.mean()`'s `grad_fn` name (`MeanBackward0`).
    pub mean_grad_fn: Option<&'static str>,
    /// `x.grad() == x / 2` after `z.backward()`.
    pub grad_is_half_x: bool,
    /// After a second backward the gradient has accumulated to `x`.
    pub grad_accumulates: bool,
    /// `x * 2` under `no_grad()` does not require grad.
    pub no_grad_detaches: bool,
    /// `x * 2` with `set_grad_enabled(false)` does not require grad, and does again once
    /// re-enabled.
    pub set_grad_enabled_works: bool,
}

/// Runs the walk-through, printing each step as PyTorch would show it.
pub fn run() -> Outcome {
    ember::manual_seed(0);

    // x = torch.randn(2, 2, requires_grad=True)
    let x = Tensor::randn([2, 2]).requires_grad_(true);
    println!("x = {x}");

    // y = x**2; y.grad_fn
    let y = x.pow(2.0);
    println!("y = x.pow(2) = {y}");
    println!("y.grad_fn = <{}>", y.grad_fn_name().unwrap_or("None"));

    // z = y.mean(); z.backward()
    let z = y.mean();
    println!("z = y.mean() = {z}");
    z.backward();
    let grad = x.grad().expect("x.grad() after backward");
    println!("x.grad = {grad}");
    let half_x = &x.detach() / 2.0;
    println!("x / 2  = {half_x}");
    let grad_is_half_x = grad.allclose(&half_x, 1e-6, 1e-6);
    println!("x.grad == x / 2: {grad_is_half_x}");

    // Gradients accumulate across backward calls until zeroed, as in PyTorch.
    x.pow(2.0).mean().backward();
    let twice = x.grad().unwrap();
    let grad_accumulates = twice.allclose(&x.detach(), 1e-6, 1e-6);
    println!("after a second backward, x.grad = {twice} (== x: {grad_accumulates})");
    x.zero_grad();
    println!(
        "after x.zero_grad(), x.grad is None: {}",
        x.grad().is_none()
    );

    // with torch.no_grad(): y = x * 2
    let no_grad_detaches = {
        let _g = ember::no_grad();
        let y = &x * 2.0;
        println!(
            "under no_grad(): x * 2 = {y} (requires_grad = {})",
            y.requires_grad()
        );
        !y.requires_grad()
    };
    println!(
        "after the guard: (x * 2).requires_grad() = {}",
        (&x * 2.0).requires_grad()
    );

    // torch.set_grad_enabled(False)
    ember::set_grad_enabled(false);
    let off = (&x * 2.0).requires_grad();
    println!(
        "set_grad_enabled(false): is_grad_enabled() = {}, (x * 2).requires_grad() = {off}",
        ember::is_grad_enabled()
    );
    ember::set_grad_enabled(true);
    let on = (&x * 2.0).requires_grad();
    println!(
        "set_grad_enabled(true):  is_grad_enabled() = {}, (x * 2).requires_grad() = {on}",
        ember::is_grad_enabled()
    );

    Outcome {
        pow_grad_fn: y.grad_fn_name(),
        mean_grad_fn: z.grad_fn_name(),
        grad_is_half_x,
        grad_accumulates,
        no_grad_detaches,
        set_grad_enabled_works: !off && on,
    }
}

fn main() {
    run();
}
