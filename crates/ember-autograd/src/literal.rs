//! `tensor!` literals: nested arrays of Rust numbers become tensors with PyTorch's default dtypes
//! (float literals → float32, integer literals → int64, bools → bool).

use crate::tensor::Tensor;
use ember_kernels::DType;

/// A (possibly nested) array literal that can become a tensor.
pub trait TensorLiteral {
    /// Appends this literal's shape (outermost first) to `shape`.
    fn shape_into(&self, shape: &mut Vec<usize>);
    /// Appends the elements in row-major order as f64, with the literal's dtype.
    fn values_into(&self, out: &mut Vec<f64>) -> DType;
}

impl TensorLiteral for f64 {
    fn shape_into(&self, _: &mut Vec<usize>) {}
    fn values_into(&self, out: &mut Vec<f64>) -> DType {
        out.push(*self);
        DType::F32
    }
}

impl TensorLiteral for i64 {
    fn shape_into(&self, _: &mut Vec<usize>) {}
    fn values_into(&self, out: &mut Vec<f64>) -> DType {
        out.push(*self as f64);
        DType::I64
    }
}

impl TensorLiteral for bool {
    fn shape_into(&self, _: &mut Vec<usize>) {}
    fn values_into(&self, out: &mut Vec<f64>) -> DType {
        out.push(*self as u8 as f64);
        DType::Bool
    }
}

impl<T: TensorLiteral, const N: usize> TensorLiteral for [T; N] {
    fn shape_into(&self, shape: &mut Vec<usize>) {
        shape.push(N);
        if let Some(first) = self.first() {
            first.shape_into(shape);
        }
    }
    fn values_into(&self, out: &mut Vec<f64>) -> DType {
        let mut d = DType::F32;
        for x in self {
            d = x.values_into(out);
        }
        d
    }
}

impl Tensor {
    /// A tensor from a nested array literal (see [`tensor!`](crate::tensor!)).
    pub fn from_literal(lit: impl TensorLiteral) -> Tensor {
        let mut shape = Vec::new();
        lit.shape_into(&mut shape);
        let mut values = Vec::new();
        let dtype = lit.values_into(&mut values);
        Tensor::from_vec(values, shape).to_dtype(dtype)
    }
}

/// Builds a tensor from a nested array literal, like `torch.tensor([[1., 2.], [3., 4.]])`:
/// float literals give float32, integer literals int64.
///
/// ```
/// use ember_autograd::{tensor, DType};
/// let x = tensor!([[1., 2.], [3., 4.]]);
/// assert_eq!((x.shape(), x.dtype()), (&[2usize, 2][..], DType::F32));
/// assert_eq!(tensor!([1, 0, 2]).dtype(), DType::I64);
/// assert_eq!(tensor!(0.5).dim(), 0);
/// ```
#[macro_export]
macro_rules! tensor {
    ($lit:expr) => {
        $crate::Tensor::from_literal($lit)
    };
}
