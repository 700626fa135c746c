//! The graph is freed after each backward: 10,000 forward/backward steps of a small MLP-shaped graph
//! keep the number of live storages flat.

use ember_autograd::{live_storages, no_grad, Tensor};

#[test]
fn training_loop_keeps_live_storages_flat() {
    let w1 = Tensor::from_vec(
        (0..32)
            .map(|i| (i as f32 * 0.37).sin() * 0.3)
            .collect::<Vec<f32>>(),
        [8, 4],
    )
    .requires_grad_(true);
    let b1 = Tensor::zeros([4]).requires_grad_(true);
    let w2 = Tensor::from_vec(
        (0..8)
            .map(|i| (i as f32 * 0.71).cos() * 0.3)
            .collect::<Vec<f32>>(),
        [4, 2],
    )
    .requires_grad_(true);
    let x = Tensor::from_vec(
        (0..16).map(|i| i as f32 / 16.0).collect::<Vec<f32>>(),
        [2, 8],
    );
    let step = || {
        let h = b1.addmm(&x, &w1, 1.0, 1.0).relu();
        let loss = h.matmul(&w2).log_softmax(1).mean().neg();
        loss.backward();
        let _g = no_grad();
        for p in [&w1, &b1, &w2] {
            p.sub_(&(&p.grad().unwrap() * 0.01));
            p.zero_grad();
        }
    };
    for _ in 0..100 {
        step();
    }
    let before = live_storages();
    for _ in 0..10_000 {
        step();
    }
    assert_eq!(
        live_storages(),
        before,
        "storages leaked across 10,000 steps"
    );
}
