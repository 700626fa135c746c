//! Shape and dtype panics report the user's line, not a line inside Ember: `#[track_caller]`
//! runs from the public ops, operators and module `forward`s to the check that panics.
//!
//! One test in its own binary: the panic hook is process-wide.

use ember_autograd::{DType, IndexOp, Tensor};
use ember_nn::{self as nn, Loss, Module};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

static LOCATION: Mutex<Option<(String, u32)>> = Mutex::new(None);

/// Runs `f`, which must panic, and returns the file and line the panic reported.
fn panic_location(f: impl FnOnce()) -> (String, u32) {
    *LOCATION.lock().unwrap() = None;
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    assert!(r.is_err(), "expected a panic");
    LOCATION
        .lock()
        .unwrap()
        .take()
        .expect("the hook saw the panic")
}

/// Asserts that evaluating the expression panics at this very line of this file.
macro_rules! panics_here {
    ($e:expr) => {{
        let line = line!();
        let (file, at) = panic_location(|| {
            let _ = $e;
        });
        if (file.as_str(), at) != (file!(), line) {
            // Restore the default hook so that the failure is printed.
            let _ = panic::take_hook();
            panic!(
                "{} panicked at {file}:{at}, not at {}:{line}",
                stringify!($e),
                file!()
            );
        }
    }};
}

#[derive(nn::Module)]
struct Net {
    fc: nn::Linear,
}

impl nn::Module for Net {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.fc.forward(x).relu()
    }
}

#[test]
fn panics_point_at_the_callers_line() {
    panic::set_hook(Box::new(|info| {
        if let Some(l) = info.location() {
            *LOCATION.lock().unwrap() = Some((l.file().to_string(), l.line()));
        }
    }));
    let (a, b) = (Tensor::ones([2, 3]), Tensor::ones([4, 5]));
    let d = Tensor::ones([3, 2]).to_dtype(DType::F64);
    // Operators, methods and the tensor/scalar forms
    panics_here!(&a + &b);
    panics_here!(&a * &b);
    panics_here!(a.add(&b));
    panics_here!(a.eq(&b));
    panics_here!(a.pow(&b));
    panics_here!(a.copy().mul_(&b));
    let mut c = a.copy();
    panics_here!(c += &b);
    // Products, views, reductions, conversions, resize_, nested data
    panics_here!(a.matmul(&b));
    panics_here!(a.mm(&d));
    panics_here!(a.t().view([6]));
    // Checks inside ember-kernels' shape helpers: a dim out of range, a bad view size
    panics_here!(a.sum_dim([5isize], false));
    panics_here!(a.transpose(0, 2));
    panics_here!(a.view([4, -1]));
    panics_here!(a.reshape([7]));
    // Indexing
    panics_here!(a.i((0, 3)));
    panics_here!(a.i((0, 0, 0)));
    panics_here!(a.requires_grad_(true).copy().resize_([1]));
    panics_here!(Tensor::from(vec![vec![1.0f32, 2.0], vec![3.0]]));
    panics_here!(Tensor::ones([2]).to_dtype(DType::I64).requires_grad_(true));
    // Modules: layers, Sequential through `dyn Module`, derived structs, losses
    let lin = nn::Linear::new(4, 2);
    panics_here!(lin.forward(&a));
    panics_here!(lin.forward(&d));
    let seq = nn::Sequential::new().add_named("fc1", nn::Linear::new(4, 2));
    panics_here!(seq.forward(&a));
    panics_here!(&seq["fc2"]);
    panics_here!(&seq[3]);
    let net = Net {
        fc: nn::Linear::new(5, 1),
    };
    panics_here!(net.forward(&a));
    panics_here!(nn::MSELoss::new().forward(&a, &b));
    panics_here!(Loss::forward(&nn::CrossEntropyLoss::new(), &a, &b));
    panics_here!(nn::functional::linear(&a, &b, None));
    let _ = panic::take_hook();
}
