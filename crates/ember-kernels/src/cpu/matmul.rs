//! CPU matrix products: batched `matmul` and fused `addmm`. Floats go through `matrixmultiply`'s
//! packed, multithreaded sgemm/dgemm, which take arbitrary row/column strides, so transposed or
//! sliced operands are read in place instead of being copied. Integers use a plain i-k-j loop.

use super::num::Num;
use super::{Buffer, CpuElement, CpuStorage};
use crate::layout::Layout;
use rayon::prelude::*;

/// Integer GEMMs with at least this many multiply-adds split their rows across rayon.
const INT_GEMM_GRAIN: usize = 1 << 16;

/// A strided matrix operand: the element slice, the offset of element `[0, 0]`, and the row and
/// column strides.
#[derive(Clone, Copy)]
pub struct MatRef<'a, T> {
    /// The whole storage the matrix lives in.
    pub data: &'a [T],
    /// Position of element `[0, 0]`.
    pub offset: usize,
    /// Distance between consecutive rows.
    pub rs: usize,
    /// Distance between consecutive columns.
    pub cs: usize,
}

/// An element type with a matrix-multiply kernel.
pub trait Gemm: CpuElement {
    /// `c = alpha * (a @ b) + (c if accumulate else 0)` for `a`: m×k and `b`: k×n (both strided,
    /// in bounds, `k > 0`) and `c` a contiguous m×n slice.
    fn gemm(
        mkn: (usize, usize, usize),
        alpha: Self,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        accumulate: bool,
        c: &mut [Self],
    );
}

macro_rules! float_gemm {
    ($t:ty, $f:ident) => {
        impl Gemm for $t {
            fn gemm(
                (m, k, n): (usize, usize, usize),
                alpha: Self,
                a: MatRef<'_, Self>,
                b: MatRef<'_, Self>,
                accumulate: bool,
                c: &mut [Self],
            ) {
                assert_eq!(c.len(), m * n);
                if m == 0 || n == 0 {
                    return;
                }
                // SAFETY: the callers check that both layouts stay inside their storages
                // (`storage_extent`), so every element matrixmultiply reads is in bounds; `c` is
                // an exclusive contiguous m×n slice, so its strides (n, 1) never alias.
                unsafe {
                    matrixmultiply::$f(
                        m,
                        k,
                        n,
                        alpha,
                        a.data.as_ptr().add(a.offset),
                        a.rs as isize,
                        a.cs as isize,
                        b.data.as_ptr().add(b.offset),
                        b.rs as isize,
                        b.cs as isize,
                        if accumulate { 1.0 } else { 0.0 },
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            }
        }
    };
}
float_gemm!(f32, sgemm);
float_gemm!(f64, dgemm);

/// Wrapping integer GEMM in i-k-j order: the inner loop runs along a row of `b` and of `c`, so it
/// is unit-stride (and vectorises) whenever `b` is row-major.
fn int_gemm<T: Num + Send + Sync>(
    (m, k, n): (usize, usize, usize),
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    accumulate: bool,
    c: &mut [T],
) {
    if m == 0 || n == 0 {
        return;
    }
    let row = |i: usize, crow: &mut [T]| {
        if !accumulate {
            crow.fill(T::ZERO);
        }
        for p in 0..k {
            // alpha * Σ a·b == Σ (alpha·a)·b exactly in wrapping arithmetic.
            let aik = T::mul(alpha, a.data[a.offset + i * a.rs + p * a.cs]);
            let bo = b.offset + p * b.rs;
            if b.cs == 1 {
                for (cv, &bv) in crow.iter_mut().zip(&b.data[bo..bo + n]) {
                    *cv = T::add(*cv, T::mul(aik, bv));
                }
            } else {
                for (j, cv) in crow.iter_mut().enumerate() {
                    *cv = T::add(*cv, T::mul(aik, b.data[bo + j * b.cs]));
                }
            }
        }
    };
    if m > 1 && m * n * k >= INT_GEMM_GRAIN {
        c.par_chunks_mut(n).enumerate().for_each(|(i, r)| row(i, r));
    } else {
        for (i, r) in c.chunks_mut(n).enumerate() {
            row(i, r);
        }
    }
}

macro_rules! int_gemm_impl {
    ($($t:ty),*) => {$(
        impl Gemm for $t {
            fn gemm(
                (m, k, n): (usize, usize, usize),
                alpha: Self,
                a: MatRef<'_, Self>,
                b: MatRef<'_, Self>,
                accumulate: bool,
                c: &mut [Self],
            ) {
                int_gemm((m, k, n), alpha, a, b, accumulate, c)
            }
        }
    )*};
}
int_gemm_impl!(i64, u8);

/// Stride of a dim for the GEMM kernels: size-1 dims may carry any stride, so use 0 there to keep
/// every pointer computed inside the storage.
fn st(l: &Layout, d: usize) -> usize {
    if l.shape()[d] <= 1 {
        0
    } else {
        l.strides()[d]
    }
}

fn check_bounds(op: &str, len: usize, l: &Layout) {
    assert!(
        l.storage_extent() <= len,
        "{op}: layout {l:?} reaches past its storage of {len} elements"
    );
}

fn matmul_typed<T: Gemm>(a: &[T], la: &Layout, b: &[T], lb: &Layout) -> Buffer<T> {
    let (bs, m, k, n) = (la.shape()[0], la.shape()[1], la.shape()[2], lb.shape()[2]);
    let mut out = Buffer::<T>::uninit(bs * m * n);
    if out.is_empty() {
        return out;
    }
    if k == 0 {
        out.fill(T::ZERO);
        return out;
    }
    check_bounds("matmul", a.len(), la);
    check_bounds("matmul", b.len(), lb);
    let (sa, sb) = (st(la, 0), st(lb, 0));
    // One GEMM per batch entry, sequentially: each GEMM already uses every core.
    for (i, c) in out.chunks_mut(m * n).enumerate() {
        let am = MatRef {
            data: a,
            offset: la.offset() + i * sa,
            rs: st(la, 1),
            cs: st(la, 2),
        };
        let bm = MatRef {
            data: b,
            offset: lb.offset() + i * sb,
            rs: st(lb, 1),
            cs: st(lb, 2),
        };
        T::gemm((m, k, n), T::ONE, am, bm, false, c);
    }
    out
}

fn addmm_typed<T: Gemm>(
    bias: &[T],
    lbias: &Layout,
    (a, la): (&[T], &Layout),
    (b, lb): (&[T], &Layout),
    beta: f64,
    alpha: f64,
) -> Buffer<T> {
    let (m, k, n) = (la.shape()[0], la.shape()[1], lb.shape()[1]);
    let (beta_t, alpha_t) = (T::from_f64(beta), T::from_f64(alpha));
    // beta == 0 ignores the bias entirely (NaN/inf included), as PyTorch.
    let mut out = if beta == 0.0 {
        let mut o = Buffer::<T>::uninit(m * n);
        if k == 0 {
            o.fill(T::ZERO);
        }
        o
    } else if beta == 1.0 {
        super::map::map(bias, lbias, |x| x)
    } else {
        super::map::map(bias, lbias, move |x| T::mul(beta_t, x))
    };
    if k == 0 || out.is_empty() {
        return out;
    }
    check_bounds("addmm", a.len(), la);
    check_bounds("addmm", b.len(), lb);
    let am = MatRef {
        data: a,
        offset: la.offset(),
        rs: st(la, 0),
        cs: st(la, 1),
    };
    let bm = MatRef {
        data: b,
        offset: lb.offset(),
        rs: st(lb, 0),
        cs: st(lb, 1),
    };
    T::gemm((m, k, n), alpha_t, am, bm, beta != 0.0, &mut out);
    out
}

fn same_dtype<'a, T: CpuElement>(op: &str, a: &CpuStorage, b: &'a CpuStorage) -> &'a [T] {
    T::unwrap_ref(b).unwrap_or_else(|| {
        panic!(
            "{op}: expected both operands to have the same dtype, but got {} and {}",
            a.dtype(),
            b.dtype()
        )
    })
}

impl CpuStorage {
    /// Batched matrix product: `la` is [B, M, K], `rhs`'s `lb` is [B, K, N] (batch dims already
    /// broadcast, possibly with stride 0), both of one dtype; the result is contiguous [B, M, N].
    pub fn matmul(&self, la: &Layout, rhs: &CpuStorage, lb: &Layout) -> CpuStorage {
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
        match self {
            CpuStorage::F32(a) => {
                f32::wrap(matmul_typed(a, la, same_dtype("matmul", self, rhs), lb))
            }
            CpuStorage::F64(a) => {
                f64::wrap(matmul_typed(a, la, same_dtype("matmul", self, rhs), lb))
            }
            CpuStorage::I64(a) => {
                i64::wrap(matmul_typed(a, la, same_dtype("matmul", self, rhs), lb))
            }
            CpuStorage::U8(a) => u8::wrap(matmul_typed(a, la, same_dtype("matmul", self, rhs), lb)),
            CpuStorage::Bool(_) => panic!("matmul: not implemented for bool tensors (torch.bool)"),
        }
    }

    /// `beta * self + alpha * (a @ b)` for `a`: [M, K], `b`: [K, N] and `self` (the bias) with a
    /// layout already broadcast to [M, N]; all one dtype. The result is contiguous [M, N]. With
    /// `beta == 0` the bias is not read at all.
    #[allow(clippy::too_many_arguments)]
    pub fn addmm(
        &self,
        lbias: &Layout,
        a: &CpuStorage,
        la: &Layout,
        b: &CpuStorage,
        lb: &Layout,
        beta: f64,
        alpha: f64,
    ) -> CpuStorage {
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
        fn go<T: Gemm>(
            s: &CpuStorage,
            lbias: &Layout,
            (a, la): (&CpuStorage, &Layout),
            (b, lb): (&CpuStorage, &Layout),
            beta: f64,
            alpha: f64,
        ) -> CpuStorage {
            let bias = s.as_slice::<T>();
            let (av, bv) = (same_dtype("addmm", s, a), same_dtype("addmm", s, b));
            T::wrap(addmm_typed(bias, lbias, (av, la), (bv, lb), beta, alpha))
        }
        let (a, b) = ((a, la), (b, lb));
        match self {
            CpuStorage::F32(_) => go::<f32>(self, lbias, a, b, beta, alpha),
            CpuStorage::F64(_) => go::<f64>(self, lbias, a, b, beta, alpha),
            CpuStorage::I64(_) => go::<i64>(self, lbias, a, b, beta, alpha),
            CpuStorage::U8(_) => go::<u8>(self, lbias, a, b, beta, alpha),
            CpuStorage::Bool(_) => panic!("addmm: not implemented for bool tensors (torch.bool)"),
        }
    }
}
