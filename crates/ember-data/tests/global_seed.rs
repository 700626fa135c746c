//! An unseeded loader draws each shuffled epoch's seed from the global generator, so
//! `manual_seed` makes it reproducible (its own test binary: nothing else touches the global
//! generator here).

use ember_autograd::{manual_seed, Tensor};
use ember_data::{DataLoader, TensorDataset};

#[test]
fn manual_seed_makes_unseeded_shuffling_reproducible() {
    let loader = DataLoader::new(TensorDataset::new(Tensor::arange(50)), 50).shuffle(true);
    manual_seed(3);
    let a = (loader.epoch_indices(), loader.epoch_indices());
    manual_seed(3);
    let b = (loader.epoch_indices(), loader.epoch_indices());
    assert_eq!(a, b);
    assert_ne!(a.0, a.1);
    // A sequential loader leaves the global generator alone.
    manual_seed(3);
    let before = Tensor::rand([4]).to_vec::<f32>();
    manual_seed(3);
    let seq = DataLoader::new(TensorDataset::new(Tensor::arange(5)), 2);
    assert_eq!(seq.iter().count(), 3);
    assert_eq!(Tensor::rand([4]).to_vec::<f32>(), before);
}
