//! `Tensor::set_data` on a tensor saved for backward: the saved-tensor counter forgets the old
//! storage once the graph is dropped. Alone in its test binary: the counter sees every thread's
//! saved tensors, so tests running beside it would be counted too.

use ember_autograd::autograd::SavedTensorsCounter;
use ember_autograd::{DType, Tensor};

#[test]
fn the_saved_tensor_counter_forgets_a_swapped_storage() {
    let counter = SavedTensorsCounter::new();
    let p = Tensor::ones([100]).requires_grad_(true);
    let y = p.exp(); // saves its output, not p
    let z = &p * &y; // saves p and y
    assert!(counter.bytes() > 0);
    p.set_data(&Tensor::ones([100]).to_dtype(DType::F64));
    drop((y, z));
    assert_eq!(counter.bytes(), 0);
}
