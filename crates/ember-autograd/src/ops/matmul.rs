//! Matrix products with `torch.matmul` semantics, `mm`, and the fused `addmm` that `Linear` uses.

use crate::graph::{needs_grad, record, Saved};
use crate::ops::elementwise::check_device;
use crate::tensor::Tensor;
use ember_kernels::shape::broadcast_shapes;
use ember_kernels::{DType, Layout};
use smallvec::smallvec;

#[track_caller]
fn cannot_multiply(a: &[usize], b: &[usize]) -> ! {
    panic!("matmul: shapes {a:?} and {b:?} cannot be multiplied")
}

/// PyTorch's `ScalarType` name of a dtype, as its dtype-mismatch messages print it (`Double`).
#[track_caller]
pub(crate) fn scalar_type_name(d: DType) -> &'static str {
    match d {
        DType::Bool => "Bool",
        DType::U8 => "Byte",
        DType::I64 => "Long",
        DType::F32 => "Float",
        DType::F64 => "Double",
    }
}

/// The C++ element type of a dtype, as `matmul`'s mismatch message prints it (`double`).
#[track_caller]
fn cpp_type_name(d: DType) -> &'static str {
    match d {
        DType::Bool => "bool",
        DType::U8 => "unsigned char",
        DType::I64 => "long int",
        DType::F32 => "float",
        DType::F64 => "double",
    }
}

/// Matrix products never promote: operands of different dtypes panic with PyTorch's messages
/// (a silent promotion would hide a model left in float32 fed float64 data).
#[track_caller]
fn check_same_dtype(a: &Tensor, b: &Tensor) {
    let (da, db) = (a.dtype(), b.dtype());
    if da == db {
        return;
    }
    if a.dim() == 1 && b.dim() == 1 {
        panic!(
            "dot : expected both vectors to have same dtype, but found {} and {}",
            scalar_type_name(da),
            scalar_type_name(db)
        );
    }
    panic!(
        "expected m1 and m2 to have the same dtype, but got: {} != {}",
        cpp_type_name(da),
        cpp_type_name(db)
    );
}

/// A 3-D `[B, r, c]` layout of `t` expanded to `batch + [r, c]`, viewed without copying when the
/// strides allow (a contiguous copy otherwise, only for several broadcast batch dims).
#[track_caller]
fn batched(t: &Tensor, batch: &[usize], r: usize, c: usize) -> (Tensor, Layout) {
    let mut shape = batch.to_vec();
    shape.extend([r, c]);
    let l = t.layout().expand(&shape);
    let b: usize = batch.iter().product();
    match l.view(&[b, r, c]) {
        Some(v) => (t.detach(), v),
        None => {
            let c2 = Tensor::from_storage(t.storage().contiguous(&l), &shape);
            let v = Layout::contiguous(&[b, r, c]);
            (c2, v)
        }
    }
}

/// Whether `t`'s last two dims are stored column-major (the layout of `w.t()` for a contiguous `w`).
#[track_caller]
fn is_col_major(t: &Tensor) -> bool {
    // On the layout, not through `Tensor::transpose`, which would record a graph node.
    let (l, n) = (t.layout(), t.dim());
    n >= 2 && !l.is_contiguous() && l.transpose(n - 2, n - 1).is_contiguous()
}

/// `a @ b`, column-major when `col_major` (the operand whose gradient this is was): then
/// `(bᵀ @ aᵀ)ᵀ`, so the gradient of a transposed weight view (`Linear`'s `w.t()`) comes out
/// contiguous after the view's backward and never needs a strided copy (PyTorch's
/// `mm_mat2_backward` makes the same choice).
#[track_caller]
fn mm_like(a: &Tensor, b: &Tensor, col_major: bool) -> Tensor {
    if col_major {
        b.transpose(-1, -2)
            .matmul(&a.transpose(-1, -2))
            .transpose(-1, -2)
    } else {
        a.matmul(b)
    }
}

/// `t * s`, skipping the pass over `t` when `s` is 1 (the common `addmm` case).
#[track_caller]
fn scaled(t: Tensor, s: f64) -> Tensor {
    if s == 1.0 {
        t
    } else {
        &t * s
    }
}

impl Tensor {
    /// `torch.matmul`: dot (1-D · 1-D), matrix-vector, matrix-matrix and batched products with
    /// broadcast batch dims. Transposed operands are passed to GEMM by stride, not copied.
    ///
    /// Operands of different dtypes panic with PyTorch's message (`expected m1 and m2 to have
    /// the same dtype, but got: double != float`) instead of promoting.
    #[track_caller]
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        check_device("matmul", self, other);
        check_same_dtype(self, other);
        let (a, b) = (self, other);
        if a.dim() == 0 || b.dim() == 0 {
            panic!(
                "matmul: both arguments need to be at least 1D, but they are {}D and {}D",
                a.dim(),
                b.dim()
            );
        }
        // Promote 1-D operands to matrices, then drop the added dims from the result.
        let a2 = if a.dim() == 1 {
            a.unsqueeze(0)
        } else {
            a.clone()
        };
        let b2 = if b.dim() == 1 {
            b.unsqueeze(1)
        } else {
            b.clone()
        };
        let out = a2.matmul_nd(&b2, a.shape(), b.shape());
        match (a.dim(), b.dim()) {
            (1, 1) => out.reshape([0usize; 0]),
            (1, _) => out.squeeze_dim(-2),
            (_, 1) => out.squeeze_dim(-1),
            _ => out,
        }
    }

    /// 2-D matrix product (`torch.mm`); operands must have the same dtype.
    #[track_caller]
    pub fn mm(&self, other: &Tensor) -> Tensor {
        if self.dim() != 2 || other.dim() != 2 {
            panic!(
                "mm: expected 2-D tensors, got shapes {:?} and {:?}",
                self.shape(),
                other.shape()
            );
        }
        self.matmul(other)
    }

    #[track_caller]
    fn matmul_nd(&self, other: &Tensor, orig_a: &[usize], orig_b: &[usize]) -> Tensor {
        let (na, nb) = (self.dim(), other.dim());
        let (m, k) = (self.shape()[na - 2], self.shape()[na - 1]);
        let (k2, n) = (other.shape()[nb - 2], other.shape()[nb - 1]);
        if k != k2 {
            cannot_multiply(orig_a, orig_b);
        }
        let Some(batch) = broadcast_shapes(&self.shape()[..na - 2], &other.shape()[..nb - 2])
        else {
            cannot_multiply(orig_a, orig_b)
        };
        let (ta, la) = batched(self, &batch, m, k);
        let (tb, lb) = batched(other, &batch, k, n);
        let s = ta.storage().matmul(&la, &tb.storage(), &lb);
        let mut shape = batch.to_vec();
        shape.extend([m, n]);
        let out = Tensor::from_storage(s, &shape);
        if !needs_grad(&[self, other]) {
            return out;
        }
        let (need_a, need_b) = (self.requires_grad(), other.requires_grad());
        // a's gradient reads b and b's reads a: each is kept only when the other needs it.
        let (sa, sb) = (
            need_b.then(|| Saved::new(self)),
            need_a.then(|| Saved::new(other)),
        );
        let (a_shape, b_shape) = (self.shape().to_vec(), other.shape().to_vec());
        let (a_cm, b_cm) = (is_col_major(self), is_col_major(other));
        let name = if batch.is_empty() {
            "MmBackward0"
        } else {
            "BmmBackward0"
        };
        record(out, name, &[self, other], move |g| {
            let ga = sb
                .as_ref()
                .map(|b| mm_like(g, &b.get().transpose(-1, -2), a_cm).sum_to(&a_shape));
            let gb = sa
                .as_ref()
                .map(|a| mm_like(&a.get().transpose(-1, -2), g, b_cm).sum_to(&b_shape));
            smallvec![ga, gb]
        })
    }

    /// `beta * self + alpha * (a @ b)` in one GEMM (`torch.addmm`); `self` broadcasts to
    /// `[a.rows, b.cols]`. `a` and `b` must have the same dtype (PyTorch's `mat1 and mat2 must
    /// have the same dtype, but got Double and Float`); the bias is promoted, as `torch.addmm`
    /// does.
    #[track_caller]
    pub fn addmm(&self, a: &Tensor, b: &Tensor, beta: f64, alpha: f64) -> Tensor {
        check_device("addmm", a, b);
        check_device("addmm", self, a);
        if a.dtype() != b.dtype() {
            panic!(
                "mat1 and mat2 must have the same dtype, but got {} and {}",
                scalar_type_name(a.dtype()),
                scalar_type_name(b.dtype())
            );
        }
        if a.dim() != 2 || b.dim() != 2 {
            panic!(
                "addmm: expected 2-D matrices, got shapes {:?} and {:?}",
                a.shape(),
                b.shape()
            );
        }
        let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
        if b.shape()[0] != k {
            cannot_multiply(a.shape(), b.shape());
        }
        let dtype = DType::promote(a.dtype(), self.dtype());
        let (bias, a2, b2) = (self.to_dtype(dtype), a.to_dtype(dtype), b.to_dtype(dtype));
        if ember_kernels::shape::broadcast_shapes(bias.shape(), &[m, n]).as_deref()
            != Some(&[m, n][..])
        {
            panic!(
                "addmm: bias of shape {:?} cannot be broadcast to [{m}, {n}]",
                bias.shape()
            );
        }
        let lbias = bias.layout().expand(&[m, n]);
        let s = bias.storage().addmm(
            &lbias,
            &a2.storage(),
            a2.layout(),
            &b2.storage(),
            b2.layout(),
            beta,
            alpha,
        );
        let out = Tensor::from_storage(s, &[m, n]);
        if !needs_grad(&[self, a, b]) {
            return out;
        }
        let needs = [self.requires_grad(), a.requires_grad(), b.requires_grad()];
        // a's gradient reads b and b's reads a: each is kept only when the other needs it.
        let (sa, sb) = (
            needs[2].then(|| Saved::new(a)),
            needs[1].then(|| Saved::new(b)),
        );
        let bias_shape = self.shape().to_vec();
        let (a_cm, b_cm) = (is_col_major(a), is_col_major(b));
        record(out, "AddmmBackward0", &[self, a, b], move |g| {
            let gbias = needs[0].then(|| scaled(g.sum_to(&bias_shape), beta));
            let ga = sb
                .as_ref()
                .map(|b| scaled(mm_like(g, &b.get().t(), a_cm), alpha));
            let gb = sa
                .as_ref()
                .map(|a| scaled(mm_like(&a.get().t(), g, b_cm), alpha));
            smallvec![gbias, ga, gb]
        })
    }
}
