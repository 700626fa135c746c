//! `manual_seed` makes initialisation and dropout reproducible (alone in its test binary, since
//! it reseeds the process-wide default generator).

use ember_autograd::{manual_seed, Tensor};
use ember_nn as nn;

#[test]
fn manual_seed_reproduces_models_and_dropout() {
    let lin = || {
        manual_seed(3);
        let l = nn::Linear::new(4, 3);
        let d = nn::functional::dropout(&Tensor::ones([16]), 0.5, true);
        (
            l.weight.to_vec::<f32>(),
            l.bias.as_ref().unwrap().to_vec::<f32>(),
            d.to_vec::<f32>(),
        )
    };
    assert_eq!(lin(), lin());
    manual_seed(4);
    assert_ne!(nn::Linear::new(4, 3).weight.to_vec::<f32>(), lin().0);
}
