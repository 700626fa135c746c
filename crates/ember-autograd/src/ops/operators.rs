//! `std::ops` operators on owned and borrowed tensors and on Rust scalars, all going through the
//! one binary path (`Tensor::binary` / `Tensor::binary_scalar`).

use crate::tensor::Tensor;
use ember_kernels::op::BinaryOp;
use ember_kernels::Scalar;
use std::ops::{Add, Div, Mul, Neg, Sub};

macro_rules! tensor_ops {
    ($($Trait:ident $method:ident $op:expr;)*) => {$(
        impl $Trait<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                self.binary(rhs, $op)
            }
        }
        impl $Trait<Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                self.binary(&rhs, $op)
            }
        }
        impl $Trait<&Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                self.binary(rhs, $op)
            }
        }
        impl $Trait<Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                self.binary(&rhs, $op)
            }
        }
        scalar_ops!($Trait $method $op; f64, i64);
    )*};
}

macro_rules! scalar_ops {
    ($Trait:ident $method:ident $op:expr; $($s:ty),*) => {$(
        impl $Trait<$s> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: $s) -> Tensor {
                self.binary_scalar(Scalar::from(rhs), $op, false)
            }
        }
        impl $Trait<$s> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: $s) -> Tensor {
                self.binary_scalar(Scalar::from(rhs), $op, false)
            }
        }
        impl $Trait<&Tensor> for $s {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                rhs.binary_scalar(Scalar::from(self), $op, true)
            }
        }
        impl $Trait<Tensor> for $s {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                rhs.binary_scalar(Scalar::from(self), $op, true)
            }
        }
    )*};
}

tensor_ops! {
    Add add BinaryOp::Add;
    Sub sub BinaryOp::Sub;
    Mul mul BinaryOp::Mul;
    Div div BinaryOp::Div;
}

impl Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}

impl Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}
