//! Soundness of the engine and the storage locks: gradients are never silently dropped, a
//! backward that panics or re-enters leaves the graph usable, aliasing operands cannot deadlock,
//! and a panicking call never makes a tensor unusable.

use ember_autograd::{autograd, custom_op, no_grad, Tensor};
use smallvec::smallvec;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Runs `f` on another thread and fails if it has not finished within a few seconds (a deadlock
/// would otherwise hang the test run).
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: did not finish within 10 s (deadlock)")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked (see above)"),
    }
}

#[test]
fn a_node_whose_consumers_send_no_gradient_still_lets_its_inputs_run() {
    let x = Tensor::from_slice(&[1.0f64, 2.0], [2]).requires_grad_(true);
    let a = &x * 2.0;
    // A consumer of `a` that contributes no gradient to it.
    let b = custom_op(a.detach() * 0.0, "NoGradBackward", &[&a], |_| {
        smallvec![None]
    });
    (&a + &b).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![2.0, 2.0]);
}

#[test]
fn a_node_that_receives_no_gradient_releases_its_inputs() {
    let x = Tensor::from_slice(&[1.0f64, 2.0], [2]).requires_grad_(true);
    let y = Tensor::from_slice(&[3.0f64, 4.0], [2]).requires_grad_(true);
    // `dead` gets no gradient at all (its only consumer returns None), yet `x` also reaches the
    // loss through a path that waits on nothing but `dead`'s edge count.
    let shared = &x * 3.0;
    let dead = &shared * &y;
    let cut = custom_op(dead.detach(), "CutBackward", &[&dead], |_| smallvec![None]);
    (&cut + &shared).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![3.0, 3.0]);
    assert!(y.grad().is_none());
}

#[test]
#[should_panic(
    expected = "function ShortBackward returned an incorrect number of gradients (expected 2, got 1)"
)]
fn a_backward_returning_too_few_gradients_panics_naming_the_node() {
    let x = Tensor::from_slice(&[1.0f64], [1]).requires_grad_(true);
    let y = Tensor::from_slice(&[2.0f64], [1]).requires_grad_(true);
    let z = custom_op(&x.detach() + &y.detach(), "ShortBackward", &[&x, &y], |g| {
        smallvec![Some(g.clone())]
    });
    z.sum().backward();
}

#[test]
#[should_panic(
    expected = "function LongBackward returned an incorrect number of gradients (expected 1, got 3)"
)]
fn a_backward_returning_too_many_gradients_panics_naming_the_node() {
    let x = Tensor::from_slice(&[1.0f64], [1]).requires_grad_(true);
    // One input, three gradients: the extra two must not be dropped silently (nor sent along
    // edges that do not exist).
    let z = custom_op(&x.detach() * 2.0, "LongBackward", &[&x], |g| {
        smallvec![Some(g * 2.0), Some(g.clone()), None]
    });
    z.sum().backward();
}

#[test]
fn a_panicking_backward_leaves_the_graph_usable() {
    let x = Tensor::from_slice(&[1.0f64, 2.0], [2]).requires_grad_(true);
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = armed.clone();
    let y = custom_op(&x.detach() * 3.0, "FlakyBackward", &[&x], move |g| {
        if flag.swap(false, std::sync::atomic::Ordering::SeqCst) {
            panic!("user backward failed");
        }
        smallvec![Some(g * 3.0)]
    });
    let loss = y.sum();
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        loss.backward_opts(&Tensor::ones_like(&loss), true, false)
    }));
    assert!(first.is_err());
    // The node is not poisoned: the retained graph runs again.
    loss.backward_opts(&Tensor::ones_like(&loss), true, false);
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![3.0, 3.0]);
}

#[test]
fn a_backward_may_run_backward_through_its_own_node() {
    within_deadline("re-entrant backward", || {
        let x = Tensor::from_slice(&[1.0f64, 2.0], [2]).requires_grad_(true);
        let me: Arc<OnceLock<Tensor>> = Arc::new(OnceLock::new());
        let depth = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (me2, x2, d2) = (me.clone(), x.clone(), depth.clone());
        let y = custom_op(&x.detach() * 2.0, "ReentrantBackward", &[&x], move |g| {
            if d2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                // Differentiates a graph that goes through this very node again.
                let _mode = ember_autograd::grad_mode(true);
                let out = me2.get().unwrap().sum();
                let inner = autograd::grad(&[out], std::slice::from_ref(&x2), None, true, false);
                assert_eq!(inner[0].as_ref().unwrap().to_vec::<f64>(), vec![2.0, 2.0]);
            }
            smallvec![Some(g * 2.0)]
        });
        me.set(y.clone()).unwrap();
        let loss = y.sum();
        loss.backward_opts(&Tensor::ones_like(&loss), true, false);
        x.grad().unwrap().to_vec::<f64>()
    });
}

#[test]
fn aliasing_operands_do_not_deadlock_behind_a_queued_writer() {
    within_deadline("x * x with a writer queued", || {
        let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0], [3]);
        let reader = x.storage();
        // A writer queues behind the read guard held above...
        let writer = {
            let x = x.clone();
            std::thread::spawn(move || {
                let _g = no_grad();
                x.add_(1.0);
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        // ...and an op whose operands share that storage takes its read guard twice.
        let sq = (&x * &x).to_vec::<f32>();
        let mm = x.view([1, 3]).matmul(&x.view([3, 1])).item();
        drop(reader);
        writer.join().unwrap();
        assert_eq!(sq, vec![1.0, 4.0, 9.0]);
        assert_eq!(mm, 14.0);
    });
}

#[test]
fn a_failed_call_never_makes_a_tensor_unusable() {
    let p = Tensor::from_slice(&[1.0f32, 2.0], [2]);
    let bad_grad = Tensor::from_slice(&[1.0f64, 1.0], [2]);
    let h = ember_kernels::optim::SgdStep {
        lr: 0.1,
        momentum: 0.0,
        dampening: 0.0,
        weight_decay: 0.0,
        nesterov: false,
        maximize: false,
        first_step: true,
    };
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.sgd_step_(&bad_grad, None, &h)
    }));
    assert!(
        failed.is_err(),
        "a gradient of another dtype must be refused"
    );
    // Nothing was written, and the parameter works as before.
    assert_eq!(p.to_vec::<f32>(), vec![1.0, 2.0]);
    assert_eq!((&p + 1.0).to_vec::<f32>(), vec![2.0, 3.0]);
    let good = Tensor::from_slice(&[1.0f32, 1.0], [2]);
    p.sgd_step_(&good, None, &h);
    assert!(p.allclose(&Tensor::from_slice(&[0.9f32, 1.9], [2]), 1e-6, 1e-6));
}

#[test]
fn integer_pow_uses_the_whole_exponent() {
    let base = Tensor::from_slice(&[2i64, -1, 3, 1, 5, -1], [6]);
    let e = Tensor::from_slice(&[1i64 << 32, (1 << 32) + 1, 1 << 32, -7, -1, -3], [6]);
    // 3^(2^32) mod 2^64 by 32 squarings, independently of the kernel's square-and-multiply.
    let mut three = 3i64;
    for _ in 0..32 {
        three = three.wrapping_mul(three);
    }
    assert_eq!(base.pow(&e).to_vec::<i64>(), vec![0, -1, three, 1, 0, -1]);
}
