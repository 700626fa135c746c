//! `std::ops` operators on owned and borrowed tensors and on Rust scalars, all going through the
//! one binary path (`Tensor::binary` / `Tensor::binary_scalar`), and the compound assignments
//! (`+=`, `-=`, `*=`, `/=`), which are the in-place ops (`add_`, …) and follow their autograd
//! rules (PyTorch's `p -= p.grad * lr` under `no_grad`).

use crate::tensor::Tensor;
use ember_kernels::op::BinaryOp;
use ember_kernels::Scalar;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

macro_rules! tensor_ops {
    ($($Trait:ident $method:ident $op:expr;)*) => {$(
        impl $Trait<&Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                self.binary(rhs, $op)
            }
        }
        impl $Trait<Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                self.binary(&rhs, $op)
            }
        }
        impl $Trait<&Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                self.binary(rhs, $op)
            }
        }
        impl $Trait<Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
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
            #[track_caller]
            fn $method(self, rhs: $s) -> Tensor {
                self.binary_scalar(Scalar::from(rhs), $op, false)
            }
        }
        impl $Trait<$s> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: $s) -> Tensor {
                self.binary_scalar(Scalar::from(rhs), $op, false)
            }
        }
        impl $Trait<&Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                rhs.binary_scalar(Scalar::from(self), $op, true)
            }
        }
        impl $Trait<Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
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

// `x += &y`, `x -= 1.0`, …: the in-place op on the tensor the handle points to (every handle
// and view sharing its storage sees the write; autograd's in-place rules apply, so a leaf
// requiring grad is updated under `no_grad`, as in PyTorch).
macro_rules! assign_ops {
    ($($Trait:ident $method:ident $inplace:ident;)*) => {$(
        impl $Trait<&Tensor> for Tensor {
            #[track_caller]
            fn $method(&mut self, rhs: &Tensor) {
                self.$inplace(rhs);
            }
        }
        impl $Trait<Tensor> for Tensor {
            #[track_caller]
            fn $method(&mut self, rhs: Tensor) {
                self.$inplace(&rhs);
            }
        }
        assign_scalar_ops!($Trait $method $inplace; f64, f32, i64, i32);
    )*};
}

macro_rules! assign_scalar_ops {
    ($Trait:ident $method:ident $inplace:ident; $($s:ty),*) => {$(
        impl $Trait<$s> for Tensor {
            #[track_caller]
            fn $method(&mut self, rhs: $s) {
                self.$inplace(rhs);
            }
        }
    )*};
}

assign_ops! {
    AddAssign add_assign add_;
    SubAssign sub_assign sub_;
    MulAssign mul_assign mul_;
    DivAssign div_assign div_;
}

impl Neg for &Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}

impl Neg for Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}
