//! Scalar arithmetic per element type, used by the generic CPU kernels. Integer arithmetic wraps
//! (as PyTorch's does); bool arithmetic is logical (`+` is or, `*` is and).

use super::buffer::PoolElement;

/// Arithmetic every dtype supports.
pub trait Num: PoolElement {
    /// additive identity
    const ZERO: Self;
    /// multiplicative identity
    const ONE: Self;
    /// `a + b`
    fn add(a: Self, b: Self) -> Self;
    /// `a - b`
    fn sub(a: Self, b: Self) -> Self;
    /// `a * b`
    fn mul(a: Self, b: Self) -> Self;
    /// `a / b` (integer division for integers; callers promote true division to float first)
    fn div(a: Self, b: Self) -> Self;
    /// `a ^ b`
    fn pow(a: Self, b: Self) -> Self;
    /// `-a`
    fn neg(a: Self) -> Self;
    /// `|a|`
    fn abs(a: Self) -> Self;
    /// -1, 0 or 1
    fn sign(a: Self) -> Self;
    /// larger of two, NaN-propagating for floats
    fn max(a: Self, b: Self) -> Self;
    /// smaller of two, NaN-propagating for floats
    fn min(a: Self, b: Self) -> Self;
    /// The lowest value (for max reductions).
    const LOWEST: Self;
    /// The highest value (for min reductions).
    const HIGHEST: Self;
    /// True for NaN.
    fn is_nan(a: Self) -> bool;
}

macro_rules! int_num {
    ($t:ty, $signed:expr) => {
        impl Num for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            #[inline(always)]
            fn add(a: Self, b: Self) -> Self {
                a.wrapping_add(b)
            }
            #[inline(always)]
            fn sub(a: Self, b: Self) -> Self {
                a.wrapping_sub(b)
            }
            #[inline(always)]
            fn mul(a: Self, b: Self) -> Self {
                a.wrapping_mul(b)
            }
            #[inline(always)]
            fn div(a: Self, b: Self) -> Self {
                if b == 0 {
                    panic!("ZeroDivisionError: integer division by zero")
                }
                a.wrapping_div(b)
            }
            #[inline(always)]
            fn pow(a: Self, b: Self) -> Self {
                if $signed && (b as i64) < 0 {
                    // Only ±1 have integer reciprocals; PyTorch errors, we follow integer semantics.
                    return if a == 1 {
                        1
                    } else if (a as i64) == -1 {
                        if (b as i64) % 2 == 0 {
                            1
                        } else {
                            a
                        }
                    } else {
                        0
                    };
                }
                // Square-and-multiply over every bit of the exponent (wrapping, as PyTorch's
                // `powi`): a `u32` exponent would truncate exponents of 2³² or more.
                let (mut base, mut e, mut acc) = (a, b as u64, 1 as $t);
                while e != 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                acc
            }
            #[inline(always)]
            fn neg(a: Self) -> Self {
                a.wrapping_neg()
            }
            #[inline(always)]
            fn abs(a: Self) -> Self {
                if $signed && (a as i64) < 0 {
                    a.wrapping_neg()
                } else {
                    a
                }
            }
            #[inline(always)]
            fn sign(a: Self) -> Self {
                if a == 0 {
                    0
                } else if $signed && (a as i64) < 0 {
                    (0 as $t).wrapping_sub(1)
                } else {
                    1
                }
            }
            #[inline(always)]
            fn max(a: Self, b: Self) -> Self {
                if a >= b {
                    a
                } else {
                    b
                }
            }
            #[inline(always)]
            fn min(a: Self, b: Self) -> Self {
                if a <= b {
                    a
                } else {
                    b
                }
            }
            #[inline(always)]
            fn is_nan(_: Self) -> bool {
                false
            }
        }
    };
}
int_num!(u8, false);
int_num!(i64, true);

impl Num for bool {
    const ZERO: Self = false;
    const ONE: Self = true;
    const LOWEST: Self = false;
    const HIGHEST: Self = true;
    fn add(a: Self, b: Self) -> Self {
        a | b
    }
    fn sub(a: Self, b: Self) -> Self {
        a ^ b
    }
    fn mul(a: Self, b: Self) -> Self {
        a & b
    }
    fn div(a: Self, _: Self) -> Self {
        a
    }
    fn pow(a: Self, b: Self) -> Self {
        a | !b
    }
    fn neg(a: Self) -> Self {
        a
    }
    fn abs(a: Self) -> Self {
        a
    }
    fn sign(a: Self) -> Self {
        a
    }
    fn max(a: Self, b: Self) -> Self {
        a | b
    }
    fn min(a: Self, b: Self) -> Self {
        a & b
    }
    fn is_nan(_: Self) -> bool {
        false
    }
}

/// Transcendental functions of f32 and f64.
pub trait Float:
    Num
    + Into<f64>
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
{
    /// From f64 (rounding).
    fn of(v: f64) -> Self;
    /// e^x
    fn exp(self) -> Self;
    /// ln x
    fn ln(self) -> Self;
    /// ln(1+x)
    fn ln_1p(self) -> Self;
    /// √x
    fn sqrt(self) -> Self;
    /// sin x
    fn sin(self) -> Self;
    /// cos x
    fn cos(self) -> Self;
    /// tanh x
    fn tanh(self) -> Self;
    /// erf x
    fn erf(self) -> Self;
    /// x^p
    fn powf(self, p: Self) -> Self;
    /// e^x - 1
    fn exp_m1(self) -> Self;
    /// `if take { a } else { b }` without a branch, so a loop choosing per element (max
    /// pooling's running maximum) can vectorise.
    fn select(take: bool, a: Self, b: Self) -> Self;
}

macro_rules! float_num {
    ($t:ty, $bits:ty, $erf:path) => {
        impl Num for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            const HIGHEST: Self = <$t>::INFINITY;
            #[inline(always)]
            fn add(a: Self, b: Self) -> Self {
                a + b
            }
            #[inline(always)]
            fn sub(a: Self, b: Self) -> Self {
                a - b
            }
            #[inline(always)]
            fn mul(a: Self, b: Self) -> Self {
                a * b
            }
            #[inline(always)]
            fn div(a: Self, b: Self) -> Self {
                a / b
            }
            #[inline(always)]
            fn pow(a: Self, b: Self) -> Self {
                a.powf(b)
            }
            #[inline(always)]
            fn neg(a: Self) -> Self {
                -a
            }
            #[inline(always)]
            fn abs(a: Self) -> Self {
                a.abs()
            }
            #[inline(always)]
            fn sign(a: Self) -> Self {
                if a > 0.0 {
                    1.0
                } else if a < 0.0 {
                    -1.0
                } else {
                    a * 0.0
                }
            }
            #[inline(always)]
            fn max(a: Self, b: Self) -> Self {
                if a.is_nan() || a > b {
                    a
                } else if b.is_nan() {
                    b
                } else {
                    b.max(a)
                }
            }
            #[inline(always)]
            fn min(a: Self, b: Self) -> Self {
                if a.is_nan() || a < b {
                    a
                } else if b.is_nan() {
                    b
                } else {
                    b.min(a)
                }
            }
            #[inline(always)]
            fn is_nan(a: Self) -> bool {
                a.is_nan()
            }
        }
        impl Float for $t {
            #[inline(always)]
            fn of(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn powf(self, p: Self) -> Self {
                <$t>::powf(self, p)
            }
            #[inline(always)]
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            #[inline(always)]
            fn select(take: bool, a: Self, b: Self) -> Self {
                let m = (take as $bits).wrapping_neg();
                <$t>::from_bits((a.to_bits() & m) | (b.to_bits() & !m))
            }
        }
    };
}
float_num!(f32, u32, libm::erff);
float_num!(f64, u64, libm::erf);

/// The scalar function of a float-only unary op.
#[inline(always)]
pub fn float_unary<T: Float>(op: crate::op::UnaryOp, x: T) -> T {
    use crate::op::UnaryOp::*;
    let c = T::of;
    match op {
        Exp => x.exp(),
        Log => x.ln(),
        Log1p => x.ln_1p(),
        Sqrt => x.sqrt(),
        Rsqrt => T::ONE.div_by(x.sqrt()),
        Sin => x.sin(),
        Cos => x.cos(),
        Tanh => x.tanh(),
        Sigmoid => sigmoid(x),
        Reciprocal => T::ONE.div_by(x),
        Erf => x.erf(),
        GeluErf => c(0.5) * x * (T::ONE + (x * c(std::f64::consts::FRAC_1_SQRT_2)).erf()),
        GeluTanh => {
            let k = c((2.0 / std::f64::consts::PI).sqrt());
            c(0.5) * x * (T::ONE + (k * (x + c(0.044715) * x * x * x)).tanh())
        }
        Silu => x * sigmoid(x),
        LeakyRelu(s) => {
            if x > T::ZERO {
                x
            } else {
                x * c(s)
            }
        }
        Elu(a) => {
            if x > T::ZERO {
                x
            } else {
                c(a) * x.exp_m1()
            }
        }
        PowScalar(p) => pow_scalar(x, p),
        RPowScalar(b) => c(b).powf(x),
        Neg => -x,
        Abs => T::abs(x),
        Sign => T::sign(x),
        Relu => relu(x),
        Square => x * x,
        Clamp(lo, hi) => clamp(x, lo, hi),
    }
}

/// `1 / (1 + e^-x)`, computed without overflow for large |x|.
#[inline(always)]
pub fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE.div_by(T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e.div_by(T::ONE + e)
    }
}

/// `max(x, 0)` keeping NaN.
#[inline(always)]
pub fn relu<T: Num>(x: T) -> T {
    if x < T::ZERO {
        T::ZERO
    } else {
        x
    }
}

/// `clamp` with optional bounds, NaN-propagating like PyTorch.
#[inline(always)]
pub fn clamp<T: Num>(x: T, lo: Option<f64>, hi: Option<f64>) -> T {
    let mut y = x;
    if let Some(l) = lo {
        let l: T = crate::dtype::Element::from_f64(l);
        if y < l {
            y = l;
        }
    }
    if let Some(h) = hi {
        let h: T = crate::dtype::Element::from_f64(h);
        if y > h {
            y = h;
        }
    }
    y
}

/// `x^p` with the cheap exact cases PyTorch also special-cases.
#[inline(always)]
pub fn pow_scalar<T: Float>(x: T, p: f64) -> T {
    if p == 2.0 {
        x * x
    } else if p == 1.0 {
        x
    } else if p == 0.5 {
        x.sqrt()
    } else if p == 3.0 {
        x * x * x
    } else {
        x.powf(T::of(p))
    }
}

/// Division helper so generic code reads left to right.
pub trait DivBy {
    /// `self / d`
    fn div_by(self, d: Self) -> Self;
}
impl<T: Num> DivBy for T {
    #[inline(always)]
    fn div_by(self, d: Self) -> Self {
        T::div(self, d)
    }
}
