//! The CPU backend: `CpuStorage` (one typed buffer per dtype) and its kernels.

pub mod buffer;
pub mod map;
pub mod num;
pub mod par;
pub mod strided;

pub mod conv;
pub mod creation;
mod elementwise;
mod gemm;
pub mod index;
pub mod loss;
pub mod matmul;
pub mod optim;
pub mod pool;
pub mod random;
pub mod reduce;
pub(crate) mod simd;
pub mod softmax;

pub use buffer::{Buffer, PoolElement};

use crate::dtype::{DType, Element};
use crate::layout::Layout;

/// Host memory holding the elements of one dtype.
#[derive(Clone, Debug)]
pub enum CpuStorage {
    /// `bool` elements
    Bool(Buffer<bool>),
    /// `uint8` elements
    U8(Buffer<u8>),
    /// `int64` elements
    I64(Buffer<i64>),
    /// `float32` elements
    F32(Buffer<f32>),
    /// `float64` elements
    F64(Buffer<f64>),
}

/// Runs `$body` with `$v` bound to the typed buffer of `$s`, whatever its dtype.
#[macro_export]
#[doc(hidden)]
macro_rules! cpu_dispatch {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            $crate::cpu::CpuStorage::Bool($v) => $body,
            $crate::cpu::CpuStorage::U8($v) => $body,
            $crate::cpu::CpuStorage::I64($v) => $body,
            $crate::cpu::CpuStorage::F32($v) => $body,
            $crate::cpu::CpuStorage::F64($v) => $body,
        }
    };
}

/// Runs `$body` with `$v` bound to the typed buffer of `$s` for numeric (non-bool) dtypes.
#[macro_export]
#[doc(hidden)]
macro_rules! cpu_dispatch_float {
    ($s:expr, $op:expr, $v:ident => $body:expr) => {
        match $s {
            $crate::cpu::CpuStorage::F32($v) => $body,
            $crate::cpu::CpuStorage::F64($v) => $body,
            other => panic!(
                "{}: expected a floating-point tensor, got {}",
                $op,
                other.dtype()
            ),
        }
    };
}

/// An element type with a `CpuStorage` variant.
pub trait CpuElement: PoolElement + num::Num {
    /// Wraps a buffer of this type.
    fn wrap(b: Buffer<Self>) -> CpuStorage;
    /// The typed buffer when `s` holds this type.
    fn unwrap_ref(s: &CpuStorage) -> Option<&Buffer<Self>>;
    /// The typed mutable buffer when `s` holds this type.
    fn unwrap_mut(s: &mut CpuStorage) -> Option<&mut Buffer<Self>>;
}

macro_rules! cpu_element {
    ($($t:ty => $v:ident),*) => {$(
        impl CpuElement for $t {
            fn wrap(b: Buffer<Self>) -> CpuStorage {
                CpuStorage::$v(b)
            }
            fn unwrap_ref(s: &CpuStorage) -> Option<&Buffer<Self>> {
                match s {
                    CpuStorage::$v(b) => Some(b),
                    _ => None,
                }
            }
            fn unwrap_mut(s: &mut CpuStorage) -> Option<&mut Buffer<Self>> {
                match s {
                    CpuStorage::$v(b) => Some(b),
                    _ => None,
                }
            }
        }
    )*};
}
cpu_element!(bool => Bool, u8 => U8, i64 => I64, f32 => F32, f64 => F64);

impl CpuStorage {
    /// Takes ownership of a vector.
    pub fn from_vec<T: CpuElement>(v: Vec<T>) -> Self {
        T::wrap(Buffer::from_vec(v))
    }

    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::Bool(_) => DType::Bool,
            CpuStorage::U8(_) => DType::U8,
            CpuStorage::I64(_) => DType::I64,
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
        }
    }

    /// Number of elements held.
    pub fn len(&self) -> usize {
        cpu_dispatch!(self, b => b.len())
    }

    /// True when no elements are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The typed slice, panicking with the op name if the dtype is not `T`.
    pub fn as_slice<T: CpuElement>(&self) -> &[T] {
        T::unwrap_ref(self).unwrap_or_else(|| {
            panic!(
                "expected dtype {}, storage holds {}",
                T::DTYPE,
                self.dtype()
            )
        })
    }

    /// The typed mutable slice, panicking if the dtype is not `T`.
    pub fn as_mut_slice<T: CpuElement>(&mut self) -> &mut [T] {
        let d = self.dtype();
        T::unwrap_mut(self)
            .unwrap_or_else(|| panic!("expected dtype {}, storage holds {d}", T::DTYPE))
    }

    /// `n` copies of `value` converted to `dtype`.
    pub fn full(n: usize, value: crate::dtype::Scalar, dtype: DType) -> Self {
        fn make<T: CpuElement>(n: usize, v: crate::dtype::Scalar) -> CpuStorage {
            T::wrap(Buffer::filled(n, v.to_elem::<T>()))
        }
        match dtype {
            DType::Bool => make::<bool>(n, value),
            DType::U8 => make::<u8>(n, value),
            DType::I64 => make::<i64>(n, value),
            DType::F32 => make::<f32>(n, value),
            DType::F64 => make::<f64>(n, value),
        }
    }

    /// The elements selected by `layout`, converted to `T`, in row-major order.
    pub fn to_vec<T: CpuElement>(&self, layout: &Layout) -> Vec<T> {
        cpu_dispatch!(self, b => map::map(b, layout, |x| x.cast::<T>()).into_vec())
    }

    /// A contiguous copy of the elements selected by `layout`, converted to `dtype`.
    pub fn cast(&self, layout: &Layout, dtype: DType) -> CpuStorage {
        fn go<S: CpuElement>(src: &[S], layout: &Layout, dtype: DType) -> CpuStorage {
            match dtype {
                DType::Bool => bool::wrap(map::map(src, layout, |x| x.cast())),
                DType::U8 => u8::wrap(map::map(src, layout, |x| x.cast())),
                DType::I64 => i64::wrap(map::map(src, layout, |x| x.cast())),
                DType::F32 => f32::wrap(map::map(src, layout, |x| x.cast())),
                DType::F64 => f64::wrap(map::map(src, layout, |x| x.cast())),
            }
        }
        cpu_dispatch!(self, b => go(b, layout, dtype))
    }

    /// A contiguous copy of the elements selected by `layout`.
    pub fn contiguous(&self, layout: &Layout) -> CpuStorage {
        cpu_dispatch!(self, b => CpuElement::wrap(map::map(b, layout, |x| x)))
    }

    /// Copies `src` (same shape, any dtype) into the elements of `self` selected by `dst`.
    pub fn copy_from(&mut self, dst: &Layout, src: &CpuStorage, src_layout: &Layout) {
        fn go<T: CpuElement>(d: &mut [T], dl: &Layout, src: &CpuStorage, sl: &Layout) {
            cpu_dispatch!(src, s => map::zip_inplace(d, dl, s, sl, |_, x| x.cast::<T>()))
        }
        cpu_dispatch!(self, d => go(d, dst, src, src_layout))
    }

    /// Sets every element selected by `layout` to `value`.
    pub fn fill(&mut self, layout: &Layout, value: crate::dtype::Scalar) {
        cpu_dispatch!(self, d => {
            let v = value.to_elem();
            map::map_inplace(d, layout, |_| v)
        })
    }
}
