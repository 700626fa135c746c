//! Whether ops record the graph: a thread-local switch, like `torch.no_grad()` and
//! `torch.set_grad_enabled`.

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// True when ops on this thread record the graph for backward.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Turns graph recording on or off for this thread (`torch.set_grad_enabled`).
pub fn set_grad_enabled(enabled: bool) {
    GRAD_ENABLED.with(|g| g.set(enabled));
}

/// Restores the previous grad mode when dropped.
#[must_use = "grad mode is restored when the guard is dropped; bind it with `let _g = …`"]
pub struct GradModeGuard {
    prev: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        set_grad_enabled(self.prev);
    }
}

/// Disables graph recording until the guard is dropped (`with torch.no_grad():`).
///
/// ```
/// use ember_autograd::{no_grad, Tensor};
/// let x = Tensor::ones([2]).requires_grad_(true);
/// {
///     let _g = no_grad();
///     assert!(!(&x * 2.0).requires_grad());
/// }
/// assert!((&x * 2.0).requires_grad());
/// ```
pub fn no_grad() -> GradModeGuard {
    grad_mode(false)
}

/// Sets grad mode until the guard is dropped (`with torch.set_grad_enabled(b):`).
pub fn grad_mode(enabled: bool) -> GradModeGuard {
    let prev = is_grad_enabled();
    set_grad_enabled(enabled);
    GradModeGuard { prev }
}
