//! Elementwise ops on `CudaStorage` (`elementwise.cu`): unary maps, broadcasting binary
//! arithmetic, comparisons, `where`, and their in-place and scalar forms — the methods of
//! `cpu/elementwise.rs`, with the same dtype rules and messages.

use super::kernels::{binary_code, cmp_code, unary_code, Family};
use super::params::UnaryP;
use super::storage::{
    check_extent, f64_bits, for_each_launch, same_device, scalar_bits, CudaStorage, Operand,
};
use crate::dtype::{DType, Scalar};
use crate::layout::Layout;
use crate::op::{BinaryOp, CmpOp, UnaryOp};
use crate::{cuda_args, kname};
use smallvec::{smallvec, SmallVec};

/// The kernel parameters of `op` on dtype `d` (which must support it).
pub fn unary_params(op: UnaryOp, d: DType) -> UnaryP {
    use UnaryOp::*;
    let p = |name: &str| UnaryP {
        op: unary_code(name),
        ..Default::default()
    };
    let with = |name: &str, a: f64| UnaryP {
        a: f64_bits(a, d),
        ..p(name)
    };
    if d == DType::Bool {
        // The CPU backend copies bools through these ops unchanged (clamp included).
        return match op {
            Abs | Relu | Square | Sign | Clamp(..) => p("IDENTITY"),
            _ => panic!("{op:?}: not supported for bool tensors"),
        };
    }
    let int = !d.is_float();
    match op {
        Neg => p("NEG"),
        Abs => p("ABS"),
        Sign => p("SIGN"),
        Relu => p("RELU"),
        Square => p("SQUARE"),
        Clamp(lo, hi) => UnaryP {
            op: unary_code("CLAMP"),
            flags: u32::from(lo.is_some()) | u32::from(hi.is_some()) << 1,
            a: lo.map_or(0, |v| f64_bits(v, d)),
            b: hi.map_or(0, |v| f64_bits(v, d)),
        },
        PowScalar(e) if int => with("INT_POW", e),
        _ if int => panic!("{op:?}: a float-only op reached an integer kernel"),
        Exp => p("EXP"),
        Log => p("LOG"),
        Log1p => p("LOG1P"),
        Sqrt => p("SQRT"),
        Rsqrt => p("RSQRT"),
        Sin => p("SIN"),
        Cos => p("COS"),
        Tanh => p("TANH"),
        Sigmoid => p("SIGMOID"),
        Reciprocal => p("RECIPROCAL"),
        Erf => p("ERF"),
        GeluErf => with("GELU_ERF", std::f64::consts::FRAC_1_SQRT_2),
        GeluTanh => UnaryP {
            b: f64_bits(0.044715, d),
            ..with("GELU_TANH", (2.0 / std::f64::consts::PI).sqrt())
        },
        Silu => p("SILU"),
        LeakyRelu(s) => with("LEAKY_RELU", s),
        Elu(a) => with("ELU", a),
        PowScalar(2.0) => p("POW2"),
        PowScalar(1.0) => p("POW1"),
        PowScalar(0.5) => p("POW_HALF"),
        PowScalar(3.0) => p("POW3"),
        PowScalar(e) => with("POW", e),
        RPowScalar(b) => with("RPOW", b),
    }
}

impl CudaStorage {
    /// Runs `unary_T` with `params` from `(x, lx)` into `(out, lo)` (same shape, same dtype).
    fn unary_into(
        out: &mut CudaStorage,
        lo: &Layout,
        x: &CudaStorage,
        lx: &Layout,
        params: UnaryP,
    ) {
        if lo.numel() == 0 {
            return;
        }
        check_extent("unary", lo, out.len());
        check_extent("unary", lx, x.len());
        let dev = x.device_arc().clone();
        let f = dev.function(Family::Elementwise, x.dtype(), kname!("unary", x.dtype()));
        let ops = [out.operand(lo), x.operand(lx)];
        for_each_launch(lo.shape(), &ops, |p, g, contig, grid, block| {
            let (o, x, g) = (p[0], p[1], *g);
            let mut args = cuda_args![o, x, g, contig, params];
            // SAFETY: `unary_T(T*, const T*, ElemGeom, u32, UnaryP)`; layouts checked above.
            unsafe { dev.launch(f, (grid, 1, 1), block, 0, &mut args) };
        });
    }

    /// `op(x)` for each element selected by `layout`, into a new contiguous storage of
    /// `op.out_dtype(dtype)` (integers are converted to f32 first for float-only ops).
    pub fn unary(&self, layout: &Layout, op: UnaryOp) -> CudaStorage {
        let out_dtype = op.out_dtype(self.dtype());
        if out_dtype != self.dtype() {
            return self
                .cast(layout, out_dtype)
                .unary(&Layout::contiguous(layout.shape()), op);
        }
        let params = unary_params(op, self.dtype());
        let mut out = CudaStorage::uninit(self.device_arc(), layout.numel(), out_dtype);
        let lo = Layout::contiguous(layout.shape());
        CudaStorage::unary_into(&mut out, &lo, self, layout, params);
        out
    }

    /// Applies a same-dtype unary op in place to the elements selected by `layout`.
    pub fn unary_inplace(&mut self, layout: &Layout, op: UnaryOp) {
        match self.dtype() {
            DType::Bool => panic!("{op:?}_: not supported for bool tensors"),
            DType::U8 | DType::I64 if op.is_float_only() => {
                panic!("{op:?}_: in-place float op on an integer tensor")
            }
            _ => {}
        }
        let params = unary_params(op, self.dtype());
        if layout.numel() == 0 {
            return;
        }
        check_extent("unary_", layout, self.len());
        // In place: the output and the input are the same elements.
        let dev = self.device_arc().clone();
        let f = dev.function(
            Family::Elementwise,
            self.dtype(),
            kname!("unary", self.dtype()),
        );
        let ops = [self.operand(layout), self.operand(layout)];
        for_each_launch(layout.shape(), &ops, |p, g, contig, grid, block| {
            let (o, x, g) = (p[0], p[1], *g);
            let mut args = cuda_args![o, x, g, contig, params];
            // SAFETY: as in `unary_into`; each element is read and written by one thread.
            unsafe { dev.launch(f, (grid, 1, 1), block, 0, &mut args) };
        });
    }

    /// Runs `binary_T` into `(out, lo)`: mode 0 `a op b`, 1 `a op s`, 2 `s op a`.
    #[allow(clippy::too_many_arguments)]
    fn binary_into(
        out: Operand<'_>,
        shape: &[usize],
        a: Operand<'_>,
        b: Option<Operand<'_>>,
        dev: &std::sync::Arc<super::device::Device>,
        dtype: DType,
        op: BinaryOp,
        mode: u32,
        s: u64,
    ) {
        let f = dev.function(Family::Elementwise, dtype, kname!("binary", dtype));
        let code = binary_code(op);
        let err = dev.error_slot();
        // (A SmallVec: the launch path allocates nothing on the heap.)
        let ops: SmallVec<[Operand<'_>; 3]> = std::iter::once(out).chain([a]).chain(b).collect();
        for_each_launch(shape, &ops, |p, g, contig, grid, block| {
            let (o, x, y, g) = (p[0], p[1], if ops.len() == 3 { p[2] } else { p[1] }, *g);
            let mut args = cuda_args![o, x, y, g, contig, code, mode, s, err];
            // SAFETY: `binary_T(T*, const T*, const T*, ElemGeom, u32, u32, u32, u64, u64*)`;
            // every operand's layout was checked against its storage by the caller.
            unsafe { dev.launch(f, (grid, 1, 1), block, 0, &mut args) };
        });
    }

    /// `a op b` for operands of one dtype and one (broadcast) shape.
    pub fn binary(&self, la: &Layout, rhs: &CudaStorage, lb: &Layout, op: BinaryOp) -> CudaStorage {
        same_device(op.name(), self, rhs);
        assert!(self.dtype() == rhs.dtype(), "binary: operand dtypes differ");
        let out = CudaStorage::uninit(self.device_arc(), la.numel(), self.dtype());
        if la.numel() > 0 {
            check_extent(op.name(), la, self.len());
            check_extent(op.name(), lb, rhs.len());
            let lo = Layout::contiguous(la.shape());
            let dev = self.device_arc().clone();
            let o = out.operand(&lo);
            CudaStorage::binary_into(
                o,
                la.shape(),
                self.operand(la),
                Some(rhs.operand(lb)),
                &dev,
                self.dtype(),
                op,
                0,
                0,
            );
        }
        out
    }

    /// `a op s` (or `s op a` when `scalar_first`), the scalar converted to the storage dtype.
    pub fn binary_scalar(
        &self,
        la: &Layout,
        s: Scalar,
        op: BinaryOp,
        scalar_first: bool,
    ) -> CudaStorage {
        let out = CudaStorage::uninit(self.device_arc(), la.numel(), self.dtype());
        if la.numel() > 0 {
            check_extent(op.name(), la, self.len());
            let lo = Layout::contiguous(la.shape());
            let dev = self.device_arc().clone();
            let mode = if scalar_first { 2 } else { 1 };
            let bits = scalar_bits(s, self.dtype());
            CudaStorage::binary_into(
                out.operand(&lo),
                la.shape(),
                self.operand(la),
                None,
                &dev,
                self.dtype(),
                op,
                mode,
                bits,
            );
        }
        out
    }

    /// `a op= b` in place; `rhs` has `self`'s dtype and does not alias it.
    pub fn binary_inplace(&mut self, la: &Layout, rhs: &CudaStorage, lb: &Layout, op: BinaryOp) {
        same_device(op.name(), self, rhs);
        assert!(
            self.dtype() == rhs.dtype(),
            "binary_: operand dtypes differ"
        );
        if la.numel() == 0 {
            return;
        }
        check_extent(op.name(), la, self.len());
        check_extent(op.name(), lb, rhs.len());
        let dev = self.device_arc().clone();
        CudaStorage::binary_into(
            self.operand(la),
            la.shape(),
            self.operand(la),
            Some(rhs.operand(lb)),
            &dev,
            self.dtype(),
            op,
            0,
            0,
        );
    }

    /// `a op= s` in place.
    pub fn binary_scalar_inplace(&mut self, la: &Layout, s: Scalar, op: BinaryOp) {
        if la.numel() == 0 {
            return;
        }
        check_extent(op.name(), la, self.len());
        let dev = self.device_arc().clone();
        let bits = scalar_bits(s, self.dtype());
        CudaStorage::binary_into(
            self.operand(la),
            la.shape(),
            self.operand(la),
            None,
            &dev,
            self.dtype(),
            op,
            1,
            bits,
        );
    }

    /// Runs `cmp_T` into a new bool storage: mode 0 tensors, 1 scalar in T, 2 scalar in f64.
    fn cmp_impl(
        &self,
        la: &Layout,
        rhs: Option<(&CudaStorage, &Layout)>,
        op: CmpOp,
        mode: u32,
        s: u64,
    ) -> CudaStorage {
        let out = CudaStorage::uninit(self.device_arc(), la.numel(), DType::Bool);
        if la.numel() == 0 {
            return out;
        }
        check_extent(op.name(), la, self.len());
        if let Some((r, lb)) = rhs {
            same_device(op.name(), self, r);
            check_extent(op.name(), lb, r.len());
        }
        let dev = self.device_arc().clone();
        let f = dev.function(
            Family::Elementwise,
            self.dtype(),
            kname!("cmp", self.dtype()),
        );
        let code = cmp_code(op);
        let lo = Layout::contiguous(la.shape());
        let mut ops: SmallVec<[Operand<'_>; 3]> = smallvec![out.operand(&lo), self.operand(la)];
        if let Some((r, lb)) = rhs {
            ops.push(r.operand(lb));
        }
        for_each_launch(la.shape(), &ops, |p, g, contig, grid, block| {
            let (o, x, y, g) = (p[0], p[1], if ops.len() == 3 { p[2] } else { p[1] }, *g);
            let mut args = cuda_args![o, x, y, g, contig, code, mode, s];
            // SAFETY: `cmp_T(bool*, const T*, const T*, ElemGeom, u32, u32, u32, u64)`;
            // layouts checked above.
            unsafe { dev.launch(f, (grid, 1, 1), block, 0, &mut args) };
        });
        out
    }

    /// Elementwise comparison of two operands of one dtype and shape, giving bools.
    pub fn cmp(&self, la: &Layout, rhs: &CudaStorage, lb: &Layout, op: CmpOp) -> CudaStorage {
        assert!(self.dtype() == rhs.dtype(), "cmp: operand dtypes differ");
        self.cmp_impl(la, Some((rhs, lb)), op, 0, 0)
    }

    /// Elementwise comparison with a scalar (converted to the storage dtype; an integer
    /// tensor against a float scalar compares in f64, as `x_int < 0.5` must).
    pub fn cmp_scalar(&self, la: &Layout, s: Scalar, op: CmpOp) -> CudaStorage {
        if !self.dtype().is_float() && matches!(s, Scalar::Float(_)) {
            return self.cmp_impl(la, None, op, 2, s.to_f64().to_bits());
        }
        self.cmp_impl(la, None, op, 1, scalar_bits(s, self.dtype()))
    }

    /// Runs `where_T`: `cond ? a : b`, or `cond ? s : b` when `a` is `None`.
    pub(crate) fn where_impl(
        cond: (&CudaStorage, &Layout),
        a: Option<(&CudaStorage, &Layout)>,
        s: u64,
        b: (&CudaStorage, &Layout),
    ) -> CudaStorage {
        let (c, lc) = cond;
        let (bs, lb) = b;
        let shape = lb.shape();
        let out = CudaStorage::uninit(bs.device_arc(), lb.numel(), bs.dtype());
        if lb.numel() == 0 {
            return out;
        }
        same_device("where", c, bs);
        check_extent("where", lc, c.len());
        check_extent("where", lb, bs.len());
        let dev = bs.device_arc().clone();
        let f = dev.function(Family::Elementwise, bs.dtype(), kname!("where", bs.dtype()));
        let lo = Layout::contiguous(shape);
        let mut ops: SmallVec<[Operand<'_>; 4]> = smallvec![out.operand(&lo), c.operand(lc)];
        let mode = match a {
            Some((x, la)) => {
                same_device("where", c, x);
                check_extent("where", la, x.len());
                ops.push(x.operand(la));
                0u32
            }
            None => 1,
        };
        ops.push(bs.operand(lb));
        for_each_launch(shape, &ops, |p, g, contig, grid, block| {
            // Mode 1 has no `a` operand: slot 2 is `b` (the kernel reads it there).
            let (o, cc, x, y, g) = if mode == 0 {
                (p[0], p[1], p[2], p[3], *g)
            } else {
                (p[0], p[1], p[2], p[2], *g)
            };
            let mut args = cuda_args![o, cc, x, y, g, contig, mode, s];
            // SAFETY: `where_T(T*, const bool*, const T*, const T*, ElemGeom, u32, u32, u64)`;
            // layouts checked above.
            unsafe { dev.launch(f, (grid, 1, 1), block, 0, &mut args) };
        });
        out
    }

    /// `cond ? a : b` elementwise; `self` is the bool condition, `a` and `b` share a dtype,
    /// all three a shape.
    pub fn where_cond(
        &self,
        lc: &Layout,
        a: &CudaStorage,
        la: &Layout,
        b: &CudaStorage,
        lb: &Layout,
    ) -> CudaStorage {
        assert!(
            self.dtype() == DType::Bool,
            "expected dtype {}, storage holds {}",
            DType::Bool,
            self.dtype()
        );
        assert!(a.dtype() == b.dtype(), "where: operand dtypes differ");
        CudaStorage::where_impl((self, lc), Some((a, la)), 0, (b, lb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unary_parameters() {
        let p = unary_params(UnaryOp::Clamp(Some(-1.5), None), DType::I64);
        assert_eq!(
            (p.op, p.flags, p.a),
            (unary_code("CLAMP"), 1, (-1i64) as u64)
        );
        let p = unary_params(UnaryOp::PowScalar(3.0), DType::U8);
        assert_eq!((p.op, p.a), (unary_code("INT_POW"), 3));
        assert_eq!(
            unary_params(UnaryOp::PowScalar(0.5), DType::F32).op,
            unary_code("POW_HALF")
        );
        let p = unary_params(UnaryOp::PowScalar(1.7), DType::F32);
        assert_eq!((p.op, p.a), (unary_code("POW"), 1.7f32.to_bits() as u64));
        let p = unary_params(UnaryOp::GeluTanh, DType::F64);
        assert_eq!(f64::from_bits(p.b), 0.044715);
        assert_eq!(
            unary_params(UnaryOp::Clamp(None, Some(1.0)), DType::Bool).op,
            0
        );
    }

    #[test]
    #[should_panic(expected = "Exp: not supported for bool tensors")]
    fn bool_exp_panics() {
        unary_params(UnaryOp::Exp, DType::Bool);
    }
}
