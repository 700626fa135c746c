//! One method name whatever the right-hand side: `x.mul_(2.0)` and `x.mul_(&y)`, `x.pow(2.0)`
//! and `x.pow(&y)`, `x.eq(0.0)` and `x.eq(&y)`, as PyTorch's methods accept a tensor or a number.

use crate::tensor::Tensor;
use ember_kernels::Scalar;

/// The right-hand side of a binary op, seen through [`Operand`]: a tensor or a Rust number.
pub enum OperandRef<'a> {
    /// A tensor operand (broadcast against `self`).
    Tensor(&'a Tensor),
    /// A number (PyTorch's "wrapped scalar": it never widens a tensor of the same category).
    Scalar(Scalar),
}

/// What a binary op accepts on its right: `&Tensor`, `Tensor`, or a Rust number (`f64`, `f32`,
/// `i64`, `i32`, `usize`, `u8`, `bool`).
///
/// ```
/// use ember_autograd::Tensor;
/// let x = Tensor::from_slice(&[1f32, 2., 3.], [3]);
/// let y = Tensor::from_slice(&[2f32, 2., 2.], [3]);
/// assert_eq!(x.pow(2.0).to_vec::<f32>(), x.pow(&y).to_vec::<f32>());
/// assert_eq!(x.eq(2.0).to_vec::<bool>(), x.eq(&y).to_vec::<bool>());
/// x.mul_(2.0).mul_(&y);
/// assert_eq!(x.to_vec::<f32>(), [4., 8., 12.]);
/// ```
pub trait Operand {
    /// This operand as a tensor or a scalar.
    fn operand(&self) -> OperandRef<'_>;
}

impl Operand for Tensor {
    fn operand(&self) -> OperandRef<'_> {
        OperandRef::Tensor(self)
    }
}

impl Operand for &Tensor {
    fn operand(&self) -> OperandRef<'_> {
        OperandRef::Tensor(self)
    }
}

macro_rules! scalar_operand {
    ($($t:ty),*) => {$(
        impl Operand for $t {
            fn operand(&self) -> OperandRef<'_> {
                OperandRef::Scalar(Scalar::from(*self))
            }
        }
    )*};
}
scalar_operand!(f64, f32, i64, i32, usize, u8);

impl Operand for bool {
    fn operand(&self) -> OperandRef<'_> {
        OperandRef::Scalar(Scalar::Bool(*self))
    }
}

impl Operand for Scalar {
    fn operand(&self) -> OperandRef<'_> {
        OperandRef::Scalar(*self)
    }
}
