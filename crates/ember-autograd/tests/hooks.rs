//! `register_post_accumulate_grad_hook`: when it fires (once per backward, after the last
//! gradient reaches the leaf, while the rest of backward still runs), what it sees, removal,
//! and PyTorch's errors.

use ember_autograd::{autograd, custom_op, smallvec::smallvec, Tensor};
use proptest::prelude::*;
use std::sync::{Arc, Mutex};

/// What the recording hooks saw: (name, the leaf's gradient when called).
type Log = Arc<Mutex<Vec<(&'static str, Vec<f64>)>>>;

/// Registers a hook that records (name, the leaf's gradient when called).
fn record(t: &Tensor, name: &'static str, log: &Log) {
    let log = log.clone();
    t.register_post_accumulate_grad_hook(move |p| {
        log.lock()
            .unwrap()
            .push((name, p.grad().unwrap().to_vec::<f64>()));
    });
}

#[test]
fn fires_once_with_the_summed_gradient_of_every_use() {
    let w = Tensor::from_slice(&[1.0f64, -2.0], [2]).requires_grad_(true);
    let log = Arc::new(Mutex::new(Vec::new()));
    record(&w, "w", &log);
    // Three uses of w: d/dw (w*w + 3w) = 2w + 3.
    let y = (&w * &w + &w * 3.0).sum();
    y.backward();
    assert_eq!(*log.lock().unwrap(), vec![("w", vec![5.0, -1.0])]);
}

#[test]
fn sees_gradient_accumulated_over_backward_calls() {
    let w = Tensor::from_slice(&[1.0f32], [1]).requires_grad_(true);
    let log = Arc::new(Mutex::new(Vec::new()));
    record(&w, "w", &log);
    (&w * 2.0).sum().backward();
    (&w * 5.0).sum().backward();
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[1].1,
        vec![7.0],
        "the hook sees .grad after accumulation"
    );
}

#[test]
fn later_layers_fire_first_while_backward_still_runs() {
    // x -> w1 -> relu -> w2 -> sum: w2's gradient is final before w1's is even computed.
    let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0], [2, 2]);
    let w1 = Tensor::from_slice(&[0.5f32, -0.5, 1.0, 2.0], [2, 2]).requires_grad_(true);
    let w2 = Tensor::from_slice(&[1.0f32, -1.0], [2, 1]).requires_grad_(true);
    let order = Arc::new(Mutex::new(Vec::new()));
    for (t, name) in [(&w1, "w1"), (&w2, "w2")] {
        let (o, w1c) = (order.clone(), w1.clone());
        t.register_post_accumulate_grad_hook(move |_| {
            o.lock().unwrap().push((name, w1c.grad().is_some()));
        });
    }
    x.matmul(&w1).relu().matmul(&w2).sum().backward();
    assert_eq!(
        *order.lock().unwrap(),
        vec![("w2", false), ("w1", true)],
        "w2's hook must run before w1's gradient exists"
    );
}

#[test]
fn hooks_run_in_registration_order_and_remove() {
    let w = Tensor::from_slice(&[1.0f64], [1]).requires_grad_(true);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (a, b) = (log.clone(), log.clone());
    let ha = w.register_post_accumulate_grad_hook(move |_| a.lock().unwrap().push("a"));
    let _hb = w.register_post_accumulate_grad_hook(move |_| b.lock().unwrap().push("b"));
    (&w * 1.0).sum().backward();
    ha.remove();
    ha.remove(); // a second remove does nothing
    (&w * 1.0).sum().backward();
    assert_eq!(*log.lock().unwrap(), vec!["a", "b", "b"]);
}

#[test]
fn a_use_without_gradient_still_fires_at_the_end() {
    // One use of w goes through an op that returns no gradient for it.
    let w = Tensor::from_slice(&[3.0f64], [1]).requires_grad_(true);
    let log = Arc::new(Mutex::new(Vec::new()));
    record(&w, "w", &log);
    let blocked = custom_op(w.detach() * 10.0, "NoGrad", &[&w], |_| smallvec![None]);
    (&blocked + &(&w * 2.0)).sum().backward();
    assert_eq!(*log.lock().unwrap(), vec![("w", vec![2.0])]);
}

#[test]
fn backward_on_the_leaf_itself_fires() {
    let w = Tensor::from_slice(&[1.0f64, 1.0], [2]).requires_grad_(true);
    let log = Arc::new(Mutex::new(Vec::new()));
    record(&w, "w", &log);
    w.backward_with(&Tensor::from_slice(&[4.0f64, 5.0], [2]));
    assert_eq!(*log.lock().unwrap(), vec![("w", vec![4.0, 5.0])]);
}

#[test]
fn autograd_grad_accumulates_nothing_and_fires_nothing() {
    let w = Tensor::from_slice(&[2.0f64], [1]).requires_grad_(true);
    let log = Arc::new(Mutex::new(Vec::new()));
    record(&w, "w", &log);
    let g = autograd::grad(
        &[w.pow(2.0).sum()],
        std::slice::from_ref(&w),
        None,
        false,
        false,
    );
    assert_eq!(g[0].as_ref().unwrap().to_vec::<f64>(), vec![4.0]);
    assert!(log.lock().unwrap().is_empty());
    assert!(w.grad().is_none());
}

#[test]
fn a_hook_may_register_another_hook() {
    let w = Tensor::from_slice(&[1.0f64], [1]).requires_grad_(true);
    let count = Arc::new(Mutex::new(0));
    let c = count.clone();
    w.register_post_accumulate_grad_hook(move |p| {
        let c2 = c.clone();
        p.register_post_accumulate_grad_hook(move |_| *c2.lock().unwrap() += 1);
    });
    (&w * 1.0).sum().backward(); // registers one more hook, not run in this pass
    (&w * 1.0).sum().backward(); // runs it once, registers another
    assert_eq!(*count.lock().unwrap(), 1);
}

#[test]
#[should_panic(expected = "post accumulate grad hooks cannot be registered on non-leaf tensors")]
fn non_leaf_is_refused() {
    let w = Tensor::from_slice(&[1.0f64], [1]).requires_grad_(true);
    (&w * 2.0).register_post_accumulate_grad_hook(|_| {});
}

#[test]
#[should_panic(expected = "cannot register a hook on a tensor that doesn't require gradient")]
fn tensor_without_grad_is_refused() {
    Tensor::from_slice(&[1.0f64], [1]).register_post_accumulate_grad_hook(|_| {});
}

proptest! {
    /// A leaf used `coefs.len()` times (each use scaled by a coefficient, some through a shared
    /// intermediate) fires exactly once per backward, seeing the final gradient, which is the
    /// naive sum of the coefficients.
    #[test]
    fn fires_exactly_once_with_the_final_gradient(
        coefs in proptest::collection::vec(-4i32..5, 1..7),
        through_shared in any::<bool>(),
    ) {
        let w = Tensor::from_slice(&[0.5f64, -1.5], [2]).requires_grad_(true);
        let log = Arc::new(Mutex::new(Vec::new()));
        record(&w, "w", &log);
        let base = if through_shared { &w * 1.0 } else { w.clone() };
        let mut y = &w * 0.0;
        for &c in &coefs {
            y = &y + &(&base * c as f64);
        }
        y.sum().backward();
        let expected = coefs.iter().sum::<i32>() as f64;
        let log = log.lock().unwrap();
        prop_assert_eq!(log.len(), 1);
        prop_assert_eq!(&log[0].1, &vec![expected, expected]);
        prop_assert_eq!(w.grad().unwrap().to_vec::<f64>(), vec![expected, expected]);
    }
}
