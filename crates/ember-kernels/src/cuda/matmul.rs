//! Matrix products on `CudaStorage`: batched `matmul` and fused `addmm` — the methods of
//! `cpu/matmul.rs`, with its checks and messages. Floats go through cuBLAS (`blas.rs`) with
//! the operands' strides passed as cuBLAS arguments; integers through `gemm_int_*`
//! (`matmul.cu`), which reads any strides.

use super::blas::GemmCall;
use super::geometry::{gemm_view, GemmView};
use super::kernels::Family;
use super::params::GemmP;
use super::storage::{blocks_for, check_extent, f64_bits, same_device, CudaStorage};
use crate::dtype::{DType, Scalar};
use crate::layout::Layout;
use crate::op::BinaryOp;
use crate::{cuda_args, kname};

/// Stride of a dim for GEMM: a size-1 dim may carry any stride, so use 0 there.
fn st(l: &Layout, d: usize) -> u64 {
    if l.shape()[d] <= 1 {
        0
    } else {
        l.strides()[d] as u64
    }
}

fn same_dtype(op: &str, a: &CudaStorage, b: &CudaStorage) {
    if a.dtype() != b.dtype() {
        panic!(
            "{op}: expected both operands to have the same dtype, but got {} and {}",
            a.dtype(),
            b.dtype()
        );
    }
}

/// `c[b] = alpha · a[b] @ b[b] (+ c[b] when `beta != 0`, scaled by beta)` for float
/// operands `a` [B, M, K], `b` [B, K, N] (any strides) into the contiguous [B, M, N] at `c`.
#[allow(clippy::too_many_arguments)]
fn float_gemm(
    a: &CudaStorage,
    la: &Layout,
    b: &CudaStorage,
    lb: &Layout,
    c: u64,
    alpha: f64,
    beta: f64,
) {
    let (bs, m, k, n) = (la.shape()[0], la.shape()[1], la.shape()[2], lb.shape()[2]);
    let dev = a.device_arc().clone();
    // cuBLAS computes the column-major Cᵀ (N×M) = Bᵀ (N×K) · Aᵀ (K×M). Bᵀ's element (n, k)
    // is B[k, n] at k·rs + n·cs: rows n stride cs, columns k stride rs.
    let (m64, k64, n64) = (m as u64, k as u64, n as u64);
    let (mut owned_a, mut owned_b) = (None, None);
    let first = operand(b, lb, (n64, k64), &mut owned_b);
    let second = operand(a, la, (k64, m64), &mut owned_a);
    let call = GemmCall {
        m: n64,
        n: m64,
        k: k64,
        a: first,
        b: second,
        c,
        batch: bs as u64,
        alpha,
        beta,
    };
    let blas = dev.blas();
    // cuBLAS works in the context current on the calling thread.
    dev.bind();
    // SAFETY: the operand addresses and views reach only elements of their layouts, which
    // the callers checked against their storages; `c` holds B·M·N elements.
    unsafe { blas.gemm(a.dtype() == DType::F64, &call) };
}

/// A GEMM operand `(address, view, batch stride)`: the column-major `rows × cols` matrix whose
/// rows run along dim 2 of `l` and columns along dim 1 (the transpose of each batch matrix).
fn operand(
    s: &CudaStorage,
    l: &Layout,
    (rows, cols): (u64, u64),
    owned: &mut Option<CudaStorage>,
) -> (u64, GemmView, u64) {
    if let Some(v) = gemm_view(rows, cols, st(l, 2), st(l, 1)) {
        return (s.ptr_at(l.offset()), v, st(l, 0));
    }
    // Neither stride is 1 (a matrix sliced with a step in both dims, or a broadcast matrix
    // dim): cuBLAS cannot address it, so it is copied to row-major first.
    let c = owned.insert(s.contiguous(l));
    let lc = Layout::contiguous(l.shape());
    let v = gemm_view(rows, cols, st(&lc, 2), st(&lc, 1)).expect("a contiguous operand");
    (c.ptr(), v, st(&lc, 0))
}

/// The wrapping integer GEMM kernel; `accumulate` adds into `c`.
fn int_gemm(
    a: &CudaStorage,
    la: &Layout,
    b: &CudaStorage,
    lb: &Layout,
    c: u64,
    alpha: u64,
    accumulate: bool,
) {
    let dev = a.device_arc().clone();
    let d = a.dtype();
    let (bs, m, k, n) = (la.shape()[0], la.shape()[1], la.shape()[2], lb.shape()[2]);
    let p = GemmP {
        batch: bs as u64,
        m: m as u64,
        k: k as u64,
        n: n as u64,
        a_batch: st(la, 0),
        a_row: st(la, 1),
        a_col: st(la, 2),
        b_batch: st(lb, 0),
        b_row: st(lb, 1),
        b_col: st(lb, 2),
        alpha,
        accumulate: u32::from(accumulate),
        pad: 0,
    };
    let f = dev.function(Family::Matmul, d, kname!("gemm_int", d));
    let (ap, bp) = (a.ptr_at(la.offset()), b.ptr_at(lb.offset()));
    let mut args = cuda_args![c, ap, bp, p];
    // SAFETY: `gemm_int_T(T*, const T*, const T*, GemmP)`; the strides reach only elements
    // of the checked layouts, `c` holds B·M·N elements.
    unsafe { dev.launch(f, (blocks_for(bs * m * n, 128), 1, 1), 128, 0, &mut args) };
}

impl CudaStorage {
    /// Batched matrix product: `la` is [B, M, K], `rhs`'s `lb` is [B, K, N] (batch dims
    /// already broadcast, possibly with stride 0), both of one dtype; the result is contiguous
    /// [B, M, N].
    pub fn matmul(&self, la: &Layout, rhs: &CudaStorage, lb: &Layout) -> CudaStorage {
        let (sa, sb) = (la.shape(), lb.shape());
        assert!(
            sa.len() == 3 && sb.len() == 3,
            "matmul: expected 3-D [B, M, K] and [B, K, N] layouts, got shapes {sa:?} and {sb:?}"
        );
        if sa[2] != sb[1] {
            panic!(
                "matmul: shapes [{}, {}] and [{}, {}] cannot be multiplied",
                sa[1], sa[2], sb[1], sb[2]
            );
        }
        if sa[0] != sb[0] {
            panic!(
                "matmul: batch sizes {} and {} differ (shapes {sa:?} and {sb:?})",
                sa[0], sb[0]
            );
        }
        if self.dtype() == DType::Bool {
            panic!("matmul: not implemented for bool tensors (torch.bool)");
        }
        same_dtype("matmul", self, rhs);
        same_device("matmul", self, rhs);
        let (bs, m, k, n) = (sa[0], sa[1], sa[2], sb[2]);
        let dev = self.device_arc().clone();
        let out = CudaStorage::uninit(&dev, bs * m * n, self.dtype());
        if out.is_empty() {
            return out;
        }
        if k == 0 {
            dev.zero(out.ptr(), out.len() * self.dtype().size_in_bytes());
            return out;
        }
        check_extent("matmul", la, self.len());
        check_extent("matmul", lb, rhs.len());
        if self.dtype().is_float() {
            float_gemm(self, la, rhs, lb, out.ptr(), 1.0, 0.0);
        } else {
            int_gemm(
                self,
                la,
                rhs,
                lb,
                out.ptr(),
                f64_bits(1.0, self.dtype()),
                false,
            );
        }
        out
    }

    /// `beta * self + alpha * (a @ b)` for `a`: [M, K], `b`: [K, N] and `self` (the bias)
    /// with a layout already broadcast to [M, N]; all one dtype. The result is contiguous
    /// [M, N]. With `beta == 0` the bias is not read at all.
    #[allow(clippy::too_many_arguments)]
    pub fn addmm(
        &self,
        lbias: &Layout,
        a: &CudaStorage,
        la: &Layout,
        b: &CudaStorage,
        lb: &Layout,
        beta: f64,
        alpha: f64,
    ) -> CudaStorage {
        let (sa, sb, sc) = (la.shape(), lb.shape(), lbias.shape());
        assert!(
            sa.len() == 2 && sb.len() == 2,
            "addmm: expected 2-D matrices, got shapes {sa:?} and {sb:?}"
        );
        if sa[1] != sb[0] {
            panic!(
                "addmm: shapes [{}, {}] and [{}, {}] cannot be multiplied",
                sa[0], sa[1], sb[0], sb[1]
            );
        }
        if sc != [sa[0], sb[1]] {
            panic!(
                "addmm: the bias of shape {sc:?} does not match the product's shape [{}, {}]",
                sa[0], sb[1]
            );
        }
        if self.dtype() == DType::Bool {
            panic!("addmm: not implemented for bool tensors (torch.bool)");
        }
        same_dtype("addmm", self, a);
        same_dtype("addmm", self, b);
        same_device("addmm", self, a);
        same_device("addmm", self, b);
        let (m, k, n) = (sa[0], sa[1], sb[1]);
        let dev = self.device_arc().clone();
        let d = self.dtype();
        // The output starts as beta · bias (not read at all when beta == 0, NaNs included).
        let out = if beta == 0.0 {
            let o = CudaStorage::uninit(&dev, m * n, d);
            if k == 0 {
                dev.zero(o.ptr(), o.len() * d.size_in_bytes());
            }
            o
        } else if beta == 1.0 || (d.is_float() && k > 0) {
            // Floats with k > 0 let cuBLAS apply beta to the copied bias.
            self.contiguous(lbias)
        } else {
            // Integers (and any k == 0): beta · bias in the dtype's arithmetic, as the CPU.
            self.binary_scalar(lbias, Scalar::Float(beta), BinaryOp::Mul, false)
        };
        if k == 0 || out.is_empty() {
            return out;
        }
        check_extent("addmm", la, a.len());
        check_extent("addmm", lb, b.len());
        let (la3, lb3) = (la.unsqueeze(0), lb.unsqueeze(0));
        if d.is_float() {
            float_gemm(a, &la3, b, &lb3, out.ptr(), alpha, beta);
        } else {
            int_gemm(a, &la3, b, &lb3, out.ptr(), f64_bits(alpha, d), beta != 0.0);
        }
        out
    }
}
