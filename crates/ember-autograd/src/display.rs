//! Temporary printing until the PyTorch-style formatter lands.
use crate::tensor::Tensor;
impl std::fmt::Display for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tensor({:?})", self.to_vec::<f64>())
    }
}
