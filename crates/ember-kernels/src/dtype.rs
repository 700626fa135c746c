//! Element types: the `DType` tag, the `Element` trait implemented by the Rust types that back each
//! dtype, PyTorch's conversion rules between them and its type-promotion rules.

use std::fmt;

/// The element type of a tensor. Names and promotion follow PyTorch (`torch.float32`, …).
/// f16/bf16 would slot in as further variants with their own `Element` impls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// `torch.bool`
    Bool,
    /// `torch.uint8`
    U8,
    /// `torch.int64` (`long`)
    I64,
    /// `torch.float32` (`float`), the default dtype.
    F32,
    /// `torch.float64` (`double`)
    F64,
}

/// Coarse kind used by type promotion: bool < integer < floating point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// `bool`
    Bool,
    /// `uint8`, `int64`
    Integer,
    /// `float32`, `float64`
    Float,
}

impl DType {
    /// Every dtype, in promotion order.
    pub const ALL: [DType; 5] = [DType::Bool, DType::U8, DType::I64, DType::F32, DType::F64];

    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::Bool | DType::U8 => 1,
            DType::I64 | DType::F64 => 8,
            DType::F32 => 4,
        }
    }

    /// The promotion category of this dtype.
    pub fn category(self) -> Category {
        match self {
            DType::Bool => Category::Bool,
            DType::U8 | DType::I64 => Category::Integer,
            DType::F32 | DType::F64 => Category::Float,
        }
    }

    /// True for floating-point dtypes.
    pub fn is_float(self) -> bool {
        self.category() == Category::Float
    }

    /// True for integer dtypes (not bool).
    pub fn is_int(self) -> bool {
        self.category() == Category::Integer
    }

    /// PyTorch's name without the `torch.` prefix (`float32`, `int64`, …).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::I64 => "int64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// Parses PyTorch's names (`float32`, `float`, `double`, `long`, …).
    pub fn from_name(name: &str) -> Option<DType> {
        Some(match name.trim_start_matches("torch.") {
            "bool" => DType::Bool,
            "uint8" => DType::U8,
            "int64" | "long" => DType::I64,
            "float32" | "float" => DType::F32,
            "float64" | "double" => DType::F64,
            _ => return None,
        })
    }

    /// `torch.promote_types`: the smallest dtype both operands convert to without losing category.
    /// u8 and i64 promote to i64; any integer with a float gives that float.
    pub fn promote(a: DType, b: DType) -> DType {
        a.max(b)
    }

    /// The dtype a floating-point-only op (exp, sqrt, true division…) computes in: floats keep
    /// their dtype, bools and integers become the default float dtype (f32), as in PyTorch.
    pub fn to_float(self) -> DType {
        if self.is_float() {
            self
        } else {
            DType::F32
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "torch.{}", self.name())
    }
}

/// A Rust type that backs a dtype. Conversions follow PyTorch: float → int truncates toward zero,
/// anything → bool is `!= 0`, bool → number is 0/1, out-of-range integers wrap.
pub trait Element:
    Copy + Send + Sync + PartialOrd + PartialEq + Default + fmt::Debug + 'static
{
    /// The dtype tag of this type.
    const DTYPE: DType;
    /// Exact (or nearest) value as f64.
    fn to_f64(self) -> f64;
    /// Value as i64 (floats truncate toward zero).
    fn to_i64(self) -> i64;
    /// From an f64 (the target decides rounding: truncation for integers).
    fn from_f64(v: f64) -> Self;
    /// From an i64 (integers wrap, floats round to nearest).
    fn from_i64(v: i64) -> Self;
    /// True where the value is non-zero.
    fn is_nonzero(self) -> bool;
    /// From a bool (0 or 1).
    fn from_bool(b: bool) -> Self;

    /// Converts to another element type with PyTorch's rules.
    #[inline(always)]
    fn cast<D: Element>(self) -> D {
        match D::DTYPE.category() {
            Category::Float => D::from_f64(self.to_f64()),
            Category::Integer => D::from_i64(self.to_i64()),
            Category::Bool => D::from_bool(self.is_nonzero()),
        }
    }
}

macro_rules! int_element {
    ($t:ty, $d:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn to_i64(self) -> i64 {
                self as i64
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                // Truncate toward zero, then wrap into range (what PyTorch does on x86 for u8).
                (v as i64) as $t
            }
            #[inline(always)]
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn is_nonzero(self) -> bool {
                self != 0
            }
            #[inline(always)]
            fn from_bool(b: bool) -> Self {
                b as $t
            }
        }
    };
}
int_element!(u8, DType::U8);
int_element!(i64, DType::I64);

macro_rules! float_element {
    ($t:ty, $d:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn to_i64(self) -> i64 {
                self as i64
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn is_nonzero(self) -> bool {
                self != 0.0
            }
            #[inline(always)]
            fn from_bool(b: bool) -> Self {
                if b {
                    1.0
                } else {
                    0.0
                }
            }
        }
    };
}
float_element!(f32, DType::F32);
float_element!(f64, DType::F64);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    #[inline(always)]
    fn is_nonzero(self) -> bool {
        self
    }
    #[inline(always)]
    fn from_bool(b: bool) -> Self {
        b
    }
}

/// A Rust number used with a tensor (`&x * 2.0`). Scalars take part in type promotion the PyTorch
/// way: they never widen a tensor of the same category (f32 tensor * 2.0 stays f32), but a float
/// scalar makes an integer tensor's result f32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    /// A Python-bool-like scalar.
    Bool(bool),
    /// An integer scalar.
    Int(i64),
    /// A floating-point scalar.
    Float(f64),
}

impl Scalar {
    /// The scalar's promotion category.
    pub fn category(self) -> Category {
        match self {
            Scalar::Bool(_) => Category::Bool,
            Scalar::Int(_) => Category::Integer,
            Scalar::Float(_) => Category::Float,
        }
    }

    /// The scalar as f64.
    pub fn to_f64(self) -> f64 {
        match self {
            Scalar::Bool(b) => b as u8 as f64,
            Scalar::Int(i) => i as f64,
            Scalar::Float(f) => f,
        }
    }

    /// The scalar converted to element type `T` with PyTorch's rules.
    pub fn to_elem<T: Element>(self) -> T {
        match self {
            Scalar::Bool(b) => T::from_bool(b),
            Scalar::Int(i) => T::from_i64(i),
            Scalar::Float(f) => f.cast(),
        }
    }

    /// The dtype of `tensor op scalar` for a tensor of dtype `t`.
    pub fn result_dtype(self, t: DType) -> DType {
        if self.category() <= t.category() {
            t
        } else {
            match self {
                Scalar::Float(_) => DType::F32,
                Scalar::Int(_) => DType::I64,
                Scalar::Bool(_) => t,
            }
        }
    }
}

macro_rules! scalar_from {
    ($($t:ty => $v:ident as $c:ty),*) => {$(
        impl From<$t> for Scalar {
            fn from(v: $t) -> Self {
                Scalar::$v(v as $c)
            }
        }
    )*};
}
scalar_from!(f64 => Float as f64, f32 => Float as f64, i64 => Int as i64, i32 => Int as i64,
    usize => Int as i64, u8 => Int as i64);

impl From<bool> for Scalar {
    fn from(v: bool) -> Self {
        Scalar::Bool(v)
    }
}

/// The dtype an elementwise op between two operands computes in (PyTorch's `result_type`, where
/// a 0-dim operand does not widen a dimensioned one of the same category).
pub fn result_type(a: DType, a_dims: usize, b: DType, b_dims: usize) -> DType {
    match (a_dims == 0, b_dims == 0) {
        (true, false) if a.category() <= b.category() => b,
        (false, true) if b.category() <= a.category() => a,
        _ => DType::promote(a, b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_follow_pytorch() {
        assert_eq!((-2.7f64).cast::<i64>(), -2);
        assert_eq!(2.7f32.cast::<u8>(), 2);
        assert_eq!((-1.0f32).cast::<u8>(), 255);
        assert_eq!(300i64.cast::<u8>(), 44);
        assert!(0.5f32.cast::<bool>());
        assert!(!0.0f64.cast::<bool>());
        assert_eq!(true.cast::<f32>(), 1.0);
        assert_eq!(true.cast::<i64>(), 1);
        assert_eq!(7u8.cast::<f64>(), 7.0);
    }

    #[test]
    fn promotion() {
        assert_eq!(DType::promote(DType::I64, DType::F32), DType::F32);
        assert_eq!(DType::promote(DType::F32, DType::F64), DType::F64);
        assert_eq!(DType::promote(DType::U8, DType::I64), DType::I64);
        assert_eq!(DType::promote(DType::Bool, DType::U8), DType::U8);
        assert_eq!(Scalar::Float(2.0).result_dtype(DType::F32), DType::F32);
        assert_eq!(Scalar::Float(2.0).result_dtype(DType::F64), DType::F64);
        assert_eq!(Scalar::Float(2.0).result_dtype(DType::I64), DType::F32);
        assert_eq!(Scalar::Int(2).result_dtype(DType::U8), DType::U8);
        assert_eq!(Scalar::Int(2).result_dtype(DType::Bool), DType::I64);
    }

    #[test]
    fn names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        assert_eq!(DType::F64.to_string(), "torch.float64");
    }
}
