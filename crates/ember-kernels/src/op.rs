//! The operation vocabulary shared by all backends: what each op computes and which dtype it
//! produces. Backends implement these; nothing here knows about devices.

use crate::dtype::DType;

/// Elementwise ops of one tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `|x|`
    Abs,
    /// `sign(x)` (-1, 0, 1)
    Sign,
    /// `max(x, 0)`
    Relu,
    /// `x * x`
    Square,
    /// `clamp(x, min, max)`; either bound may be absent.
    Clamp(Option<f64>, Option<f64>),
    /// `e^x`
    Exp,
    /// natural log
    Log,
    /// `log(1 + x)`
    Log1p,
    /// square root
    Sqrt,
    /// `1 / sqrt(x)`
    Rsqrt,
    /// sine
    Sin,
    /// cosine
    Cos,
    /// hyperbolic tangent
    Tanh,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// `1 / x`
    Reciprocal,
    /// The error function.
    Erf,
    /// GELU with the exact erf form (`approximate='none'`).
    GeluErf,
    /// GELU with the tanh approximation (`approximate='tanh'`).
    GeluTanh,
    /// `x * sigmoid(x)`
    Silu,
    /// `x` if positive else `slope * x`.
    LeakyRelu(f64),
    /// `x` if positive else `alpha * (e^x - 1)`.
    Elu(f64),
    /// `x ^ p` for a scalar exponent.
    PowScalar(f64),
    /// `p ^ x` for a scalar base (`scalar ** tensor`).
    RPowScalar(f64),
}

impl UnaryOp {
    /// True for ops that only make sense in floating point: integer inputs are computed in f32.
    pub fn is_float_only(self) -> bool {
        use UnaryOp::*;
        match self {
            Neg | Abs | Sign | Relu | Square | Clamp(..) => false,
            PowScalar(p) => p.fract() != 0.0 || p < 0.0,
            _ => true,
        }
    }

    /// The dtype this op produces for an input of dtype `d`.
    pub fn out_dtype(self, d: DType) -> DType {
        if self.is_float_only() {
            d.to_float()
        } else {
            d
        }
    }
}

/// Elementwise arithmetic between two tensors (after broadcasting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b` (true division: integers give f32)
    Div,
    /// `a ^ b`
    Pow,
    /// `max(a, b)` (propagates NaN)
    Maximum,
    /// `min(a, b)` (propagates NaN)
    Minimum,
}

impl BinaryOp {
    /// The dtype both operands are converted to and the result has, for operand dtypes already
    /// promoted to `d`.
    pub fn compute_dtype(self, d: DType) -> DType {
        match self {
            BinaryOp::Div => d.to_float(),
            _ => d,
        }
    }

    /// PyTorch's name of the op, for messages.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        }
    }
}

/// Elementwise comparisons; the result is `bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// PyTorch's name of the op, for messages.
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }
}

/// Reductions over a set of dims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Σ
    Sum,
    /// Π
    Prod,
    /// largest value
    Max,
    /// smallest value
    Min,
}
