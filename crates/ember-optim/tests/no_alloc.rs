//! After a parameter's first step, `step()` allocates nothing: state buffers are reused and the
//! update runs in place. Counted with a global allocator wrapper.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use ember_autograd::Tensor;
use ember_optim::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;
static ON: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator with the caller's arguments unchanged
// (only counting on the side), so `System`'s guarantees are this allocator's.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(l.size(), Ordering::Relaxed);
        }
        // SAFETY: the caller's layout, passed on unchanged (the caller upholds `alloc`'s contract).
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated by `System` with layout `l` (every allocation here is).
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(n, Ordering::Relaxed);
        }
        // SAFETY: `p`/`l` came from `System` as above; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// (allocations, bytes) made by `f`.
fn count(f: impl FnOnce()) -> (usize, usize) {
    COUNT.store(0, Ordering::SeqCst);
    BYTES.store(0, Ordering::SeqCst);
    ON.store(true, Ordering::SeqCst);
    f();
    ON.store(false, Ordering::SeqCst);
    (COUNT.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst))
}

fn params(n: usize) -> Vec<Tensor> {
    let p = Tensor::from_vec(
        (0..n).map(|i| (i % 13) as f32 * 0.1).collect::<Vec<_>>(),
        [n],
    )
    .requires_grad_(true);
    let q = Tensor::from_vec(vec![0.5f64; 7], [7]).requires_grad_(true);
    p.set_grad(Some(p.ones_like()));
    q.set_grad(Some(q.ones_like()));
    vec![p, q]
}

fn optimizers(ps: &[Tensor]) -> Vec<Box<dyn Optimizer>> {
    vec![
        Box::new(
            SGD::new(ps.to_vec(), 0.1)
                .momentum(0.9)
                .nesterov(true)
                .weight_decay(0.01),
        ),
        Box::new(SGD::new(ps.to_vec(), 0.1)),
        Box::new(Adam::new(ps.to_vec(), 0.01).amsgrad(true)),
        Box::new(AdamW::new(ps.to_vec(), 0.01)),
        Box::new(RMSprop::new(ps.to_vec(), 0.01).momentum(0.5).centered(true)),
        Box::new(Adagrad::new(ps.to_vec(), 0.01).lr_decay(0.1)),
    ]
}

#[test]
fn steps_after_the_first_do_not_allocate() {
    // Small tensors: single-threaded, so not even rayon's queues allocate.
    let ps = params(100);
    for mut opt in optimizers(&ps) {
        // The first step allocates the state buffers (and shows the counter works).
        let (first, _) = count(|| opt.step());
        if opt.name() != "SGD" || opt.hyper(0, "momentum") != Some(0.0) {
            assert!(
                first > 0,
                "{}: the first step should allocate state",
                opt.name()
            );
        }
        let (n, bytes) = count(|| {
            for _ in 0..5 {
                opt.step();
            }
        });
        assert_eq!(
            (n, bytes),
            (0, 0),
            "{} allocated on later steps",
            opt.name()
        );
    }
    // Large tensors take the parallel path: rayon may grow its job queues now and then, but no
    // tensor-sized buffer is ever allocated.
    let ps = params(1 << 18);
    for mut opt in optimizers(&ps) {
        opt.step();
        let (_, bytes) = count(|| {
            for _ in 0..5 {
                opt.step();
            }
        });
        assert!(
            bytes < 16 << 10,
            "{} allocated {bytes} bytes on later steps",
            opt.name()
        );
    }
}
