//! Elementwise CPU ops on `CpuStorage`: unary maps, broadcasting binary arithmetic, comparisons,
//! `where`, and their in-place and scalar forms. Operands arrive with equal shapes (broadcast
//! layouts) and, for arithmetic, already converted to the compute dtype.

use super::map::{map, map_inplace, zip, zip3, zip_inplace};
use super::num::{clamp, float_unary, relu, sigmoid, Float, Num};
use super::{Buffer, CpuElement, CpuStorage};
use crate::cpu_dispatch;
use crate::dtype::Scalar;
use crate::layout::Layout;
use crate::op::{BinaryOp, CmpOp, UnaryOp};

fn float_map<T: Float + CpuElement>(x: &[T], l: &Layout, op: UnaryOp) -> Buffer<T> {
    use UnaryOp::*;
    // The hot ops get their own loop so the op is not re-examined per element.
    match op {
        Relu => map(x, l, relu),
        Neg => map(x, l, |v: T| -v),
        Exp => map(x, l, T::exp),
        Log => map(x, l, T::ln),
        Tanh => map(x, l, T::tanh),
        Sigmoid => map(x, l, sigmoid),
        Square => map(x, l, |v: T| v * v),
        Sqrt => map(x, l, T::sqrt),
        _ => map(x, l, move |v: T| float_unary(op, v)),
    }
}

fn int_map<T: Num + CpuElement>(x: &[T], l: &Layout, op: UnaryOp) -> Buffer<T> {
    use UnaryOp::*;
    match op {
        Neg => map(x, l, T::neg),
        Abs => map(x, l, T::abs),
        Sign => map(x, l, T::sign),
        Relu => map(x, l, relu),
        Square => map(x, l, |v| T::mul(v, v)),
        Clamp(lo, hi) => map(x, l, move |v| clamp(v, lo, hi)),
        PowScalar(p) => {
            let p = T::from_f64(p);
            map(x, l, move |v| T::pow(v, p))
        }
        _ => unreachable!("{op:?} is float-only"),
    }
}

/// Expands to one `zip`/`map` call per binary op so each gets its own monomorphised loop.
macro_rules! per_binop {
    ($op:expr, $T:ty, |$f:ident| $call:expr) => {
        match $op {
            BinaryOp::Add => {
                let $f = <$T as Num>::add;
                $call
            }
            BinaryOp::Sub => {
                let $f = <$T as Num>::sub;
                $call
            }
            BinaryOp::Mul => {
                let $f = <$T as Num>::mul;
                $call
            }
            BinaryOp::Div => {
                let $f = <$T as Num>::div;
                $call
            }
            BinaryOp::Pow => {
                let $f = <$T as Num>::pow;
                $call
            }
            BinaryOp::Maximum => {
                let $f = <$T as Num>::max;
                $call
            }
            BinaryOp::Minimum => {
                let $f = <$T as Num>::min;
                $call
            }
        }
    };
}

/// Like `per_binop!` for comparisons: one monomorphised loop per `CmpOp`, so the comparison
/// inlines and vectorises (a `fn` pointer would be called per element).
macro_rules! per_cmp {
    ($op:expr, |$f:ident| $call:expr) => {
        match $op {
            CmpOp::Eq => {
                let $f = |x, y| x == y;
                $call
            }
            CmpOp::Ne => {
                let $f = |x, y| x != y;
                $call
            }
            CmpOp::Lt => {
                let $f = |x, y| x < y;
                $call
            }
            CmpOp::Le => {
                let $f = |x, y| x <= y;
                $call
            }
            CmpOp::Gt => {
                let $f = |x, y| x > y;
                $call
            }
            CmpOp::Ge => {
                let $f = |x, y| x >= y;
                $call
            }
        }
    };
}

impl CpuStorage {
    /// `op(x)` for each element selected by `layout`, into a new contiguous storage of
    /// `op.out_dtype(dtype)`.
    pub fn unary(&self, layout: &Layout, op: UnaryOp) -> CpuStorage {
        let out = op.out_dtype(self.dtype());
        if out != self.dtype() {
            return self
                .cast(layout, out)
                .unary(&Layout::contiguous(layout.shape()), op);
        }
        match self {
            CpuStorage::F32(x) => CpuStorage::F32(float_map(x, layout, op)),
            CpuStorage::F64(x) => CpuStorage::F64(float_map(x, layout, op)),
            CpuStorage::I64(x) => CpuStorage::I64(int_map(x, layout, op)),
            CpuStorage::U8(x) => CpuStorage::U8(int_map(x, layout, op)),
            CpuStorage::Bool(x) => match op {
                UnaryOp::Abs
                | UnaryOp::Relu
                | UnaryOp::Square
                | UnaryOp::Sign
                | UnaryOp::Clamp(..) => CpuStorage::Bool(map(x, layout, |v| v)),
                _ => panic!("{op:?}: not supported for bool tensors"),
            },
        }
    }

    /// Applies a same-dtype unary op in place to the elements selected by `layout`.
    pub fn unary_inplace(&mut self, layout: &Layout, op: UnaryOp) {
        fn go<T: Num + CpuElement>(
            d: &mut [T],
            l: &Layout,
            op: UnaryOp,
            f: impl Fn(T) -> T + Sync,
        ) {
            let _ = op;
            map_inplace(d, l, f)
        }
        match self {
            CpuStorage::F32(d) => go(d, layout, op, move |v| float_unary(op, v)),
            CpuStorage::F64(d) => go(d, layout, op, move |v| float_unary(op, v)),
            CpuStorage::I64(d) => go(d, layout, op, move |v| int_unary(op, v)),
            CpuStorage::U8(d) => go(d, layout, op, move |v| int_unary(op, v)),
            CpuStorage::Bool(_) => panic!("{op:?}_: not supported for bool tensors"),
        }
    }

    /// `a op b` for operands of one dtype and one (broadcast) shape.
    pub fn binary(&self, la: &Layout, rhs: &CpuStorage, lb: &Layout, op: BinaryOp) -> CpuStorage {
        fn go<T: Num + CpuElement>(
            a: &[T],
            la: &Layout,
            rhs: &CpuStorage,
            lb: &Layout,
            op: BinaryOp,
        ) -> CpuStorage {
            let b = T::unwrap_ref(rhs).expect("binary: operand dtypes differ");
            T::wrap(per_binop!(op, T, |f| zip(a, la, b, lb, f)))
        }
        cpu_dispatch!(self, a => go(a, la, rhs, lb, op))
    }

    /// `a op s` (or `s op a` when `scalar_first`), the scalar converted to the storage dtype.
    pub fn binary_scalar(
        &self,
        la: &Layout,
        s: Scalar,
        op: BinaryOp,
        scalar_first: bool,
    ) -> CpuStorage {
        fn go<T: Num + CpuElement>(
            a: &[T],
            la: &Layout,
            s: Scalar,
            op: BinaryOp,
            first: bool,
        ) -> CpuStorage {
            let s: T = s.to_elem();
            T::wrap(per_binop!(op, T, |f| if first {
                map(a, la, move |x| f(s, x))
            } else {
                map(a, la, move |x| f(x, s))
            }))
        }
        cpu_dispatch!(self, a => go(a, la, s, op, scalar_first))
    }

    /// `a op= b` in place; `rhs` has `self`'s dtype and does not alias it.
    pub fn binary_inplace(&mut self, la: &Layout, rhs: &CpuStorage, lb: &Layout, op: BinaryOp) {
        fn go<T: Num + CpuElement>(
            a: &mut [T],
            la: &Layout,
            rhs: &CpuStorage,
            lb: &Layout,
            op: BinaryOp,
        ) {
            let b = T::unwrap_ref(rhs).expect("binary_: operand dtypes differ");
            per_binop!(op, T, |f| zip_inplace(a, la, b, lb, f))
        }
        cpu_dispatch!(self, a => go(a, la, rhs, lb, op))
    }

    /// `a op= s` in place.
    pub fn binary_scalar_inplace(&mut self, la: &Layout, s: Scalar, op: BinaryOp) {
        fn go<T: Num + CpuElement>(a: &mut [T], la: &Layout, s: Scalar, op: BinaryOp) {
            let s: T = s.to_elem();
            per_binop!(op, T, |f| map_inplace(a, la, move |x| f(x, s)))
        }
        cpu_dispatch!(self, a => go(a, la, s, op))
    }

    /// Elementwise comparison of two operands of one dtype and shape, giving bools.
    pub fn cmp(&self, la: &Layout, rhs: &CpuStorage, lb: &Layout, op: CmpOp) -> CpuStorage {
        fn go<T: CpuElement + PartialOrd>(
            a: &[T],
            la: &Layout,
            rhs: &CpuStorage,
            lb: &Layout,
            op: CmpOp,
        ) -> CpuStorage {
            let b = T::unwrap_ref(rhs).expect("cmp: operand dtypes differ");
            CpuStorage::Bool(per_cmp!(op, |f| zip(a, la, b, lb, move |x: T, y: T| f(
                x, y
            ))))
        }
        cpu_dispatch!(self, a => go(a, la, rhs, lb, op))
    }

    /// Elementwise comparison with a scalar (converted to the storage dtype).
    pub fn cmp_scalar(&self, la: &Layout, s: Scalar, op: CmpOp) -> CpuStorage {
        fn go<T: CpuElement>(a: &[T], la: &Layout, s: Scalar, op: CmpOp) -> CpuStorage {
            // Compare in f64 when the scalar would not survive conversion (x_int < 0.5).
            if !T::DTYPE.is_float() && matches!(s, Scalar::Float(_)) {
                let s = s.to_f64();
                return CpuStorage::Bool(per_cmp!(op, |f| map(a, la, move |x: T| f(
                    x.to_f64(),
                    s
                ))));
            }
            let s: T = s.to_elem();
            CpuStorage::Bool(per_cmp!(op, |f| map(a, la, move |x: T| f(x, s))))
        }
        cpu_dispatch!(self, a => go(a, la, s, op))
    }

    /// `cond ? a : b` elementwise; `a` and `b` share a dtype, all three a shape.
    pub fn where_cond(
        &self,
        lc: &Layout,
        a: &CpuStorage,
        la: &Layout,
        b: &CpuStorage,
        lb: &Layout,
    ) -> CpuStorage {
        let c = self.as_slice::<bool>();
        cpu_dispatch!(a, x => {
            let y = CpuElement::unwrap_ref(b).expect("where: operand dtypes differ");
            CpuElement::wrap(zip3((c, lc), (x, la), (y, lb), |c, x, y| if c { x } else { y }))
        })
    }
}

fn int_unary<T: Num>(op: UnaryOp, v: T) -> T {
    match op {
        UnaryOp::Neg => T::neg(v),
        UnaryOp::Abs => T::abs(v),
        UnaryOp::Sign => T::sign(v),
        UnaryOp::Relu => relu(v),
        UnaryOp::Square => T::mul(v, v),
        UnaryOp::Clamp(lo, hi) => clamp(v, lo, hi),
        UnaryOp::PowScalar(p) => T::pow(v, T::from_f64(p)),
        _ => panic!("{op:?}_: in-place float op on an integer tensor"),
    }
}
