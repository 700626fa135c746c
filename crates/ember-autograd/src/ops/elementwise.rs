//! Elementwise ops: one broadcasting binary path, one unary path, comparisons and `where`, each
//! recording its backward when an input requires grad.

use crate::graph::{needs_grad, record, Saved};
use crate::ops::operand::{Operand, OperandRef};
use crate::tensor::Tensor;
use ember_kernels::dtype::result_type;
use ember_kernels::op::{BinaryOp, CmpOp, UnaryOp};
use ember_kernels::shape::{broadcast_shapes, Dims};
use ember_kernels::{DType, Scalar};
use smallvec::smallvec;

/// The broadcast shape of `a` and `b`, panicking with a message naming the op and both shapes
/// at the user's line (`#[track_caller]` through to here; kernels' helpers report their own).
#[track_caller]
pub(crate) fn broadcast_or_panic(op: &str, a: &[usize], b: &[usize]) -> Dims {
    match broadcast_shapes(a, b) {
        Some(s) => s,
        None => panic!("{op}: shapes {a:?} and {b:?} cannot be broadcast together"),
    }
}

#[track_caller]
pub(crate) fn check_device(op: &str, a: &Tensor, b: &Tensor) {
    if a.device() != b.device() {
        panic!(
            "{op}: expected all tensors to be on the same device, but found at least two devices, {} and {}",
            a.device(),
            b.device()
        );
    }
}

/// What a unary op's derivative reads: its input, its output, or neither.
#[derive(Clone, Copy)]
enum Keep {
    Input,
    Output,
    Nothing,
}

impl Tensor {
    /// Applies a unary kernel, recording `backward(saved, grad, op)` under `name`, where `saved` is
    /// the one tensor the derivative reads (`keep`; `grad` itself when it reads neither).
    #[track_caller]
    fn unary_rec(
        &self,
        op: UnaryOp,
        name: &'static str,
        keep: Keep,
        backward: fn(&Tensor, &Tensor, UnaryOp) -> Tensor,
    ) -> Tensor {
        let out = Tensor::from_storage(self.storage().unary(self.layout(), op), self.shape());
        if !needs_grad(&[self]) {
            return out;
        }
        let saved = match keep {
            Keep::Input => Some(Saved::new(self)),
            Keep::Output => Some(Saved::output(&out)),
            Keep::Nothing => None,
        };
        record(out, name, &[self], move |g| {
            let s = saved.as_ref().map(Saved::value);
            smallvec![Some(backward(s.as_ref().unwrap_or(g), g, op))]
        })
    }

    /// `-x`
    #[track_caller]
    pub fn neg(&self) -> Tensor {
        self.unary_rec(UnaryOp::Neg, "NegBackward0", Keep::Nothing, |_, g, _| {
            g.neg()
        })
    }
    /// `|x|`
    #[track_caller]
    pub fn abs(&self) -> Tensor {
        self.unary_rec(UnaryOp::Abs, "AbsBackward0", Keep::Input, |x, g, _| {
            g * &x.sign()
        })
    }
    /// `e^x`
    #[track_caller]
    pub fn exp(&self) -> Tensor {
        self.unary_rec(UnaryOp::Exp, "ExpBackward0", Keep::Output, |o, g, _| g * o)
    }
    /// natural logarithm
    #[track_caller]
    pub fn log(&self) -> Tensor {
        self.unary_rec(UnaryOp::Log, "LogBackward0", Keep::Input, |x, g, _| g / x)
    }
    /// `log(1 + x)`
    #[track_caller]
    pub fn log1p(&self) -> Tensor {
        self.unary_rec(UnaryOp::Log1p, "Log1PBackward0", Keep::Input, |x, g, _| {
            g / &(x + 1.0)
        })
    }
    /// square root
    #[track_caller]
    pub fn sqrt(&self) -> Tensor {
        self.unary_rec(UnaryOp::Sqrt, "SqrtBackward0", Keep::Output, |o, g, _| {
            g / &(o * 2.0)
        })
    }
    /// `1 / sqrt(x)`
    #[track_caller]
    pub fn rsqrt(&self) -> Tensor {
        self.unary_rec(UnaryOp::Rsqrt, "RsqrtBackward0", Keep::Output, |o, g, _| {
            &(g * &o.pow(3.0)) * -0.5
        })
    }
    /// sine
    #[track_caller]
    pub fn sin(&self) -> Tensor {
        self.unary_rec(UnaryOp::Sin, "SinBackward0", Keep::Input, |x, g, _| {
            g * &x.cos()
        })
    }
    /// cosine
    #[track_caller]
    pub fn cos(&self) -> Tensor {
        self.unary_rec(UnaryOp::Cos, "CosBackward0", Keep::Input, |x, g, _| {
            -&(g * &x.sin())
        })
    }
    /// hyperbolic tangent
    #[track_caller]
    pub fn tanh(&self) -> Tensor {
        self.unary_rec(UnaryOp::Tanh, "TanhBackward0", Keep::Output, |o, g, _| {
            g * &(1.0 - &o.square())
        })
    }
    /// logistic sigmoid
    #[track_caller]
    pub fn sigmoid(&self) -> Tensor {
        self.unary_rec(
            UnaryOp::Sigmoid,
            "SigmoidBackward0",
            Keep::Output,
            |o, g, _| g * &(o * &(1.0 - o)),
        )
    }
    /// `max(x, 0)`
    #[track_caller]
    pub fn relu(&self) -> Tensor {
        self.unary_rec(UnaryOp::Relu, "ReluBackward0", Keep::Output, |o, g, _| {
            g.where_mask(&o.gt(0.0))
        })
    }
    /// `-1`, `0` or `1` (gradient zero)
    #[track_caller]
    pub fn sign(&self) -> Tensor {
        self.unary_rec(UnaryOp::Sign, "SignBackward0", Keep::Nothing, |_, g, _| {
            g.zeros_like()
        })
    }
    /// `1 / x`
    #[track_caller]
    pub fn reciprocal(&self) -> Tensor {
        self.unary_rec(
            UnaryOp::Reciprocal,
            "ReciprocalBackward0",
            Keep::Output,
            |o, g, _| -&(g * &o.square()),
        )
    }
    /// `x * x`
    #[track_caller]
    pub fn square(&self) -> Tensor {
        self.unary_rec(UnaryOp::Square, "PowBackward0", Keep::Input, |x, g, _| {
            g * &(x * 2.0)
        })
    }
    /// GELU; `approximate` is `"none"` (erf) or `"tanh"`.
    #[track_caller]
    pub fn gelu(&self, approximate: &str) -> Tensor {
        let op = match approximate {
            "none" => UnaryOp::GeluErf,
            "tanh" => UnaryOp::GeluTanh,
            other => panic!("gelu: approximate must be 'none' or 'tanh', got '{other}'"),
        };
        self.unary_rec(op, "GeluBackward0", Keep::Input, |x, g, op| {
            if op == UnaryOp::GeluErf {
                // Φ(x) + x φ(x)
                let cdf = &(&(x * std::f64::consts::FRAC_1_SQRT_2).erf() + 1.0) * 0.5;
                let pdf =
                    &(&x.square() * -0.5f64).exp() * (1.0 / (2.0 * std::f64::consts::PI).sqrt());
                g * &(&cdf + &(x * &pdf))
            } else {
                let k = (2.0 / std::f64::consts::PI).sqrt();
                let inner = &(x + &(&x.pow(3.0) * 0.044715)) * k;
                let t = inner.tanh();
                let dinner = &(&x.square() * (3.0 * 0.044715 * k)) + k;
                let d = &(&(&t + 1.0) * 0.5) + &(&(&(x * 0.5) * &(1.0 - &t.square())) * &dinner);
                g * &d
            }
        })
    }
    /// `erf(x)` (used by exact GELU's gradient).
    #[track_caller]
    pub fn erf(&self) -> Tensor {
        self.unary_rec(UnaryOp::Erf, "ErfBackward0", Keep::Input, |x, g, _| {
            g * &(&(&x.square() * -1.0f64).exp() * (2.0 / std::f64::consts::PI.sqrt()))
        })
    }
    /// `x * sigmoid(x)`
    #[track_caller]
    pub fn silu(&self) -> Tensor {
        self.unary_rec(UnaryOp::Silu, "SiluBackward0", Keep::Input, |x, g, _| {
            let s = x.sigmoid();
            g * &(&s * &(1.0 + &(x * &(1.0 - &s))))
        })
    }
    /// `x` where positive, `slope * x` elsewhere.
    #[track_caller]
    pub fn leaky_relu(&self, negative_slope: f64) -> Tensor {
        self.unary_rec(
            UnaryOp::LeakyRelu(negative_slope),
            "LeakyReluBackward0",
            Keep::Input,
            |x, g, op| {
                let UnaryOp::LeakyRelu(s) = op else {
                    unreachable!()
                };
                let scale = Tensor::where_cond(&x.gt(0.0), &x.ones_like(), &x.full_like(s));
                g * &scale
            },
        )
    }
    /// `x` where positive, `alpha * (e^x - 1)` elsewhere.
    #[track_caller]
    pub fn elu(&self, alpha: f64) -> Tensor {
        self.unary_rec(
            UnaryOp::Elu(alpha),
            "EluBackward0",
            Keep::Input,
            |x, g, op| {
                let UnaryOp::Elu(a) = op else { unreachable!() };
                g * &Tensor::where_cond(&x.gt(0.0), &x.ones_like(), &(&x.exp() * a))
            },
        )
    }
    /// `clamp(x, min, max)`; the gradient passes where `min <= x <= max`.
    #[track_caller]
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Tensor {
        self.unary_rec(
            UnaryOp::Clamp(min, max),
            "ClampBackward1",
            Keep::Input,
            |x, g, op| {
                let UnaryOp::Clamp(lo, hi) = op else {
                    unreachable!()
                };
                let mut mask = x.ones_like().to_dtype(DType::Bool);
                if let Some(l) = lo {
                    mask = mask.logical_and(&x.ge(l));
                }
                if let Some(h) = hi {
                    mask = mask.logical_and(&x.le(h));
                }
                g.where_mask(&mask)
            },
        )
    }
    /// `clamp(x, min=0)` style lower bound.
    #[track_caller]
    pub fn clamp_min(&self, min: f64) -> Tensor {
        self.clamp(Some(min), None)
    }
    /// `clamp(x, max=…)` style upper bound.
    #[track_caller]
    pub fn clamp_max(&self, max: f64) -> Tensor {
        self.clamp(None, Some(max))
    }
    /// `x ^ exponent`, elementwise: a number (`x.pow(2.0)`) or a tensor broadcast against `x`
    /// (`x.pow(&y)`), as `torch.pow`.
    #[track_caller]
    pub fn pow(&self, exponent: impl Operand) -> Tensor {
        match exponent.operand() {
            OperandRef::Tensor(t) => self.binary(t, BinaryOp::Pow),
            OperandRef::Scalar(p) => self.pow_scalar(p.to_f64()),
        }
    }

    #[track_caller]
    fn pow_scalar(&self, exponent: f64) -> Tensor {
        self.unary_rec(
            UnaryOp::PowScalar(exponent),
            "PowBackward0",
            Keep::Input,
            |x, g, op| {
                let UnaryOp::PowScalar(p) = op else {
                    unreachable!()
                };
                if p == 0.0 {
                    return g.zeros_like();
                }
                g * &(&x.pow_scalar(p - 1.0) * p)
            },
        )
    }

    /// `x * mask` where mask is bool: keeps the gradient where true (differentiable in `self`).
    #[track_caller]
    pub(crate) fn where_mask(&self, mask: &Tensor) -> Tensor {
        // A 0-dim zero broadcasts (stride 0): no zero-filled tensor is built.
        let zero = Tensor::full_on(&[], 0.0, self.dtype(), self.device());
        Tensor::where_cond(mask, self, &zero)
    }

    // ----- binary -----

    /// The one broadcasting binary path: promotes dtypes, broadcasts layouts (no copies), runs the
    /// kernel and records the backward, which un-broadcasts gradients with `sum_to`.
    #[track_caller]
    pub(crate) fn binary(&self, rhs: &Tensor, op: BinaryOp) -> Tensor {
        check_device(op.name(), self, rhs);
        let shape = broadcast_or_panic(op.name(), self.shape(), rhs.shape());
        let dtype = op.compute_dtype(result_type(
            self.dtype(),
            self.dim(),
            rhs.dtype(),
            rhs.dim(),
        ));
        if dtype == DType::Bool && matches!(op, BinaryOp::Sub | BinaryOp::Div | BinaryOp::Pow) {
            panic!(
                "{}: operation on two bool tensors is not supported",
                op.name()
            );
        }
        let (la, lb) = (self.layout().expand(&shape), rhs.layout().expand(&shape));
        let storage = {
            let (sa, sb) = (self.storage(), rhs.storage());
            sa.binary(&la, &sb, &lb, op, dtype)
        };
        let out = Tensor::from_storage(storage, &shape);
        if !needs_grad(&[self, rhs]) {
            return out;
        }
        let (a_shape, b_shape) = (self.shape().to_vec(), rhs.shape().to_vec());
        let (need_a, need_b) = (self.requires_grad(), rhs.requires_grad());
        // Each operand is saved only when a wanted derivative reads it.
        let (keep_a, keep_b) = binary_keeps(op, need_a, need_b);
        let a = keep_a.then(|| Saved::new(self));
        let b = keep_b.then(|| Saved::new(rhs));
        let name = match op {
            BinaryOp::Add => "AddBackward0",
            BinaryOp::Sub => "SubBackward0",
            BinaryOp::Mul => "MulBackward0",
            BinaryOp::Div => "DivBackward0",
            BinaryOp::Pow => "PowBackward1",
            BinaryOp::Maximum => "MaximumBackward0",
            BinaryOp::Minimum => "MinimumBackward0",
        };
        record(out, name, &[self, rhs], move |g| {
            let (a, b) = (a.as_ref().map(Saved::get), b.as_ref().map(Saved::get));
            let (ga, gb) = binary_grads(op, a, b, g, need_a, need_b);
            smallvec![
                ga.map(|t| t.sum_to(&a_shape)),
                gb.map(|t| t.sum_to(&b_shape))
            ]
        })
    }

    /// The one scalar path: `self op s` (or `s op self`), never materialising the scalar.
    #[track_caller]
    pub(crate) fn binary_scalar(&self, s: Scalar, op: BinaryOp, scalar_first: bool) -> Tensor {
        let dtype = op.compute_dtype(s.result_dtype(self.dtype()));
        let out = Tensor::from_storage(
            self.storage()
                .binary_scalar(self.layout(), s, op, scalar_first, dtype),
            self.shape(),
        );
        if !needs_grad(&[self]) {
            return out;
        }
        let c = s.to_f64();
        // Only the ops whose derivative depends on the input keep it (`c / x` and `c ^ x` read
        // the output instead).
        let keep_x = match op {
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul => false,
            BinaryOp::Div => scalar_first,
            BinaryOp::Pow => !scalar_first,
            BinaryOp::Maximum | BinaryOp::Minimum => true,
        };
        let x = keep_x.then(|| Saved::new(self));
        let o = (op == BinaryOp::Pow && scalar_first).then(|| Saved::output(&out));
        // PyTorch records a Python scalar as a wrapped 0-dim tensor, so the names are those of the
        // tensor-tensor ops (`x * 2` shows MulBackward0), except reversed sub and pow.
        let name = match op {
            BinaryOp::Add => "AddBackward0",
            BinaryOp::Sub if scalar_first => "RsubBackward1",
            BinaryOp::Sub => "SubBackward0",
            BinaryOp::Mul => "MulBackward0",
            BinaryOp::Div => "DivBackward0",
            BinaryOp::Pow if scalar_first => "PowBackward1",
            BinaryOp::Pow => "PowBackward0",
            BinaryOp::Maximum => "ClampMinBackward0",
            BinaryOp::Minimum => "ClampMaxBackward0",
        };
        record(out, name, &[self], move |g| {
            let x = || x.as_ref().expect("input kept for backward").get();
            let gx = match (op, scalar_first) {
                (BinaryOp::Add, _) => g.clone(),
                (BinaryOp::Sub, false) => g.clone(),
                (BinaryOp::Sub, true) => g.neg(),
                (BinaryOp::Mul, _) => g * c,
                (BinaryOp::Div, false) => g / c,
                // d(c/x)/dx = -c / x²
                (BinaryOp::Div, true) => &(g * -c) / &x().square(),
                (BinaryOp::Pow, false) => {
                    let x = x();
                    if c == 0.0 {
                        g.zeros_like()
                    } else {
                        g * &(&x.pow(c - 1.0) * c)
                    }
                }
                (BinaryOp::Pow, true) => g * &(&o.as_ref().expect("output kept").value() * c.ln()),
                (BinaryOp::Maximum, _) => g.where_mask(&x().gt(c)).add_half_where(g, &x().eq(c)),
                (BinaryOp::Minimum, _) => g.where_mask(&x().lt(c)).add_half_where(g, &x().eq(c)),
            };
            smallvec![Some(gx)]
        })
    }

    #[track_caller]
    fn add_half_where(self, g: &Tensor, tie: &Tensor) -> Tensor {
        &self + &(&g.where_mask(tie) * 0.5)
    }

    /// Applies `op` with `other` on the right, a tensor or a number.
    #[track_caller]
    fn binary_operand(&self, other: impl Operand, op: BinaryOp) -> Tensor {
        match other.operand() {
            OperandRef::Tensor(t) => self.binary(t, op),
            OperandRef::Scalar(s) => self.binary_scalar(s, op, false),
        }
    }

    /// `self + other` (a tensor, broadcasting, or a number).
    #[track_caller]
    pub fn add(&self, other: impl Operand) -> Tensor {
        self.binary_operand(other, BinaryOp::Add)
    }
    /// `self - other` (a tensor, broadcasting, or a number).
    #[track_caller]
    pub fn sub(&self, other: impl Operand) -> Tensor {
        self.binary_operand(other, BinaryOp::Sub)
    }
    /// `self * other` (a tensor, broadcasting, or a number).
    #[track_caller]
    pub fn mul(&self, other: impl Operand) -> Tensor {
        self.binary_operand(other, BinaryOp::Mul)
    }
    /// `self / other` (true division; a tensor, broadcasting, or a number).
    #[track_caller]
    pub fn div(&self, other: impl Operand) -> Tensor {
        self.binary_operand(other, BinaryOp::Div)
    }
    /// Elementwise maximum (broadcasting, NaN-propagating).
    #[track_caller]
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        self.binary(other, BinaryOp::Maximum)
    }
    /// Elementwise minimum (broadcasting, NaN-propagating).
    #[track_caller]
    pub fn minimum(&self, other: &Tensor) -> Tensor {
        self.binary(other, BinaryOp::Minimum)
    }
    /// `scalar - self` (PyTorch's `rsub`).
    #[track_caller]
    pub fn rsub(&self, scalar: impl Into<Scalar>) -> Tensor {
        self.binary_scalar(scalar.into(), BinaryOp::Sub, true)
    }

    // ----- comparisons and where -----

    #[track_caller]
    fn cmp(&self, other: &Tensor, op: CmpOp) -> Tensor {
        check_device(op.name(), self, other);
        let shape = broadcast_or_panic(op.name(), self.shape(), other.shape());
        let dtype = result_type(self.dtype(), self.dim(), other.dtype(), other.dim());
        let (la, lb) = (self.layout().expand(&shape), other.layout().expand(&shape));
        let s = self.storage().cmp(&la, &other.storage(), &lb, op, dtype);
        Tensor::from_storage(s, &shape)
    }

    #[track_caller]
    fn cmp_scalar(&self, s: Scalar, op: CmpOp) -> Tensor {
        Tensor::from_storage(
            self.storage().cmp_scalar(self.layout(), s, op),
            self.shape(),
        )
    }

    #[track_caller]
    fn cmp_operand(&self, other: impl Operand, op: CmpOp) -> Tensor {
        match other.operand() {
            OperandRef::Tensor(t) => self.cmp(t, op),
            OperandRef::Scalar(s) => self.cmp_scalar(s, op),
        }
    }

    /// `self == other` elementwise (bool): `other` is a tensor (broadcasting) or a number.
    #[track_caller]
    pub fn eq(&self, other: impl Operand) -> Tensor {
        self.cmp_operand(other, CmpOp::Eq)
    }
    /// `self != other` elementwise (bool): `other` is a tensor (broadcasting) or a number.
    #[track_caller]
    pub fn ne(&self, other: impl Operand) -> Tensor {
        self.cmp_operand(other, CmpOp::Ne)
    }
    /// `self < other` elementwise (bool): `other` is a tensor (broadcasting) or a number.
    #[track_caller]
    pub fn lt(&self, other: impl Operand) -> Tensor {
        self.cmp_operand(other, CmpOp::Lt)
    }
    /// `self <= other` elementwise (bool): `other` is a tensor (broadcasting) or a number.
    #[track_caller]
    pub fn le(&self, other: impl Operand) -> Tensor {
        self.cmp_operand(other, CmpOp::Le)
    }
    /// `self > other` elementwise (bool): `other` is a tensor (broadcasting) or a number.
    #[track_caller]
    pub fn gt(&self, other: impl Operand) -> Tensor {
        self.cmp_operand(other, CmpOp::Gt)
    }
    /// `self >= other` elementwise (bool): `other` is a tensor (broadcasting) or a number.
    #[track_caller]
    pub fn ge(&self, other: impl Operand) -> Tensor {
        self.cmp_operand(other, CmpOp::Ge)
    }

    /// Elementwise logical and of two bool tensors.
    #[track_caller]
    pub fn logical_and(&self, other: &Tensor) -> Tensor {
        let (a, b) = (self.to_dtype(DType::Bool), other.to_dtype(DType::Bool));
        a.binary(&b, BinaryOp::Mul)
    }

    /// `torch.where(cond, a, b)`: `a` where `cond` is true, else `b` (all three broadcast).
    #[track_caller]
    pub fn where_cond(cond: &Tensor, a: &Tensor, b: &Tensor) -> Tensor {
        check_device("where", cond, a);
        check_device("where", a, b);
        if cond.dtype() != DType::Bool {
            panic!(
                "where: expected condition to be a bool tensor, got {}",
                cond.dtype()
            );
        }
        let shape = broadcast_or_panic(
            "where",
            &broadcast_or_panic("where", cond.shape(), a.shape()),
            b.shape(),
        );
        let dtype = result_type(a.dtype(), a.dim(), b.dtype(), b.dim());
        let (lc, la, lb) = (
            cond.layout().expand(&shape),
            a.layout().expand(&shape),
            b.layout().expand(&shape),
        );
        let s = cond
            .storage()
            .where_cond(&lc, &a.storage(), &la, &b.storage(), &lb, dtype);
        let out = Tensor::from_storage(s, &shape);
        if !needs_grad(&[a, b]) {
            return out;
        }
        let c = cond.clone();
        let (a_shape, b_shape) = (a.shape().to_vec(), b.shape().to_vec());
        let (need_a, need_b) = (a.requires_grad(), b.requires_grad());
        record(out, "WhereBackward0", &[a, b], move |g| {
            let z = g.zeros_like();
            let ga = need_a.then(|| Tensor::where_cond(&c, g, &z).sum_to(&a_shape));
            let gb = need_b.then(|| Tensor::where_cond(&c, &z, g).sum_to(&b_shape));
            smallvec![ga, gb]
        })
    }
}

/// Which operands of `a op b` the wanted derivatives read: `(a, b)`.
#[track_caller]
fn binary_keeps(op: BinaryOp, need_a: bool, need_b: bool) -> (bool, bool) {
    match op {
        BinaryOp::Add | BinaryOp::Sub => (false, false),
        // d(ab)/da = b, d(ab)/db = a
        BinaryOp::Mul => (need_b, need_a),
        // d(a/b)/da = 1/b, d(a/b)/db = -a/b²
        BinaryOp::Div => (need_b, true),
        BinaryOp::Pow | BinaryOp::Maximum | BinaryOp::Minimum => (true, true),
    }
}

/// Gradients of `a op b` before un-broadcasting; `a` and `b` are present where
/// [`binary_keeps`] kept them.
#[track_caller]
fn binary_grads(
    op: BinaryOp,
    a: Option<&Tensor>,
    b: Option<&Tensor>,
    g: &Tensor,
    need_a: bool,
    need_b: bool,
) -> (Option<Tensor>, Option<Tensor>) {
    let a = || a.expect("operand kept for backward");
    let b = || b.expect("operand kept for backward");
    let (ga, gb) = match op {
        BinaryOp::Add => (need_a.then(|| g.clone()), need_b.then(|| g.clone())),
        BinaryOp::Sub => (need_a.then(|| g.clone()), need_b.then(|| g.neg())),
        BinaryOp::Mul => (need_a.then(|| g * b()), need_b.then(|| g * a())),
        BinaryOp::Div => (
            need_a.then(|| g / b()),
            need_b.then(|| -&(&(g * a()) / &b().square())),
        ),
        BinaryOp::Pow => {
            let (a, b) = (a(), b());
            let ga = need_a.then(|| {
                let d = b * &a.pow(&(b - 1.0));
                // d/da a^b is 0 where b == 0 (PyTorch masks the 0 * inf case)
                g * &Tensor::where_cond(&b.eq(0.0), &d.zeros_like(), &d)
            });
            let gb = need_b.then(|| {
                let d = &a.pow(b) * &a.log();
                // d/db a^b = a^b ln a, taken as 0 where a == 0 and b >= 0
                g * &Tensor::where_cond(&a.eq(0.0).logical_and(&b.ge(0.0)), &d.zeros_like(), &d)
            });
            (ga, gb)
        }
        BinaryOp::Maximum | BinaryOp::Minimum => {
            let (a, b) = (a(), b());
            // The gradient goes to the larger (smaller) input, split evenly on ties.
            let (win, tie) = if op == BinaryOp::Maximum {
                (a.gt(b), a.eq(b))
            } else {
                (a.lt(b), a.eq(b))
            };
            let half = &g.where_mask(&tie) * 0.5;
            let ga = need_a.then(|| &g.where_mask(&win) + &half);
            let lose = win.logical_not().logical_and(&tie.logical_not());
            let gb = need_b.then(|| &g.where_mask(&lose) + &half);
            (ga, gb)
        }
    };
    (ga, gb)
}

impl Tensor {
    /// Elementwise logical not of a bool tensor.
    #[track_caller]
    pub fn logical_not(&self) -> Tensor {
        self.to_dtype(DType::Bool).eq(false)
    }
}
