//! Each op saves only what its derivative reads: after the forward of the MNIST MLP at batch 64
//! the tensors held for backward are exactly the input, the two ReLU outputs, the two weights the
//! input gradients need, and the logits of the loss. (Alone in its test binary: the counter sees
//! every thread's saved tensors.)

use ember::autograd::SavedTensorsCounter;
use ember::nn::{self, Module};
use ember::Tensor;

#[test]
fn the_mlp_forward_saves_only_what_backward_reads() {
    let model = nn::Sequential::new()
        .add(nn::Linear::new(784, 128))
        .add(nn::ReLU)
        .add(nn::Linear::new(128, 64))
        .add(nn::ReLU)
        .add(nn::Linear::new(64, 10));
    let (x, labels) = (Tensor::randn([64, 784]), Tensor::randint(0, 10, [64]));
    let counter = SavedTensorsCounter::new();
    let loss = nn::CrossEntropyLoss::new().forward(&model.forward(&x), &labels);
    const F32: usize = 4;
    let needed = [
        64 * 784, // the input, for the first weight's gradient (not the first weight: no input grad)
        64 * 128, // ReLU 1's output: its mask, and the input of layer 2 for w2's gradient
        128 * 64, // w2, for the gradient of ReLU 1's output
        64 * 64,  // ReLU 2's output
        64 * 10,  // w3
        64 * 10,  // the logits, for the fused cross-entropy backward
    ]
    .iter()
    .sum::<usize>()
        * F32;
    // Before this rule every unary op kept its input and output, and addmm both operands
    // (w1 included): 738,304 bytes.
    assert_eq!(counter.bytes(), needed, "bytes held by saved tensors");
    assert_eq!(needed, 287_744);
    loss.backward();
    drop(loss);
    assert_eq!(counter.bytes(), 0, "backward releases what was saved");
}
