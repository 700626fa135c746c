//! CPU matrix products: batched `matmul` and fused `addmm`. Floats go through `matrixmultiply`'s
//! packed sgemm/dgemm, which take arbitrary row/column strides, so transposed or sliced operands
//! are read in place instead of being copied; large products are split across rayon here.
//! Integers use a plain i-k-j loop.

use super::gemm::{self, Isa, MatPtr};
use super::num::{Float, Num};
use super::par::{GEMM_GRAIN, INT_GEMM_GRAIN};
use super::{Buffer, CpuElement, CpuStorage};
use crate::layout::Layout;
use rayon::prelude::*;

/// A strided matrix operand: the element slice, the offset of element `[0, 0]`, and the row and
/// column strides. The fields are private: every GEMM checks, before it reads, that its operands'
/// elements lie inside their slices, so no safe caller can make the kernels read out of bounds.
#[derive(Clone, Copy)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    offset: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// The matrix whose element `[i, j]` is `data[offset + i * rs + j * cs]`.
    pub fn new(data: &'a [T], offset: usize, rs: usize, cs: usize) -> Self {
        MatRef {
            data,
            offset,
            rs,
            cs,
        }
    }

    /// Panics, naming `op`, unless every element of a `rows`×`cols` view lies inside `data`.
    fn check(&self, op: &str, which: &str, rows: usize, cols: usize) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = (rows - 1)
            .checked_mul(self.rs)
            .and_then(|r| {
                (cols - 1)
                    .checked_mul(self.cs)
                    .and_then(|c| r.checked_add(c))
            })
            .and_then(|x| x.checked_add(self.offset));
        match last {
            Some(l) if l < self.data.len() => {}
            _ => panic!(
                "{op}: the {rows}x{cols} operand {which} (offset {}, strides ({}, {})) reaches past its {} elements",
                self.offset,
                self.rs,
                self.cs,
                self.data.len()
            ),
        }
    }
}

/// An element type with a matrix-multiply kernel.
pub trait Gemm: CpuElement {
    /// `c = alpha * (a @ b) + (c if accumulate else 0)` for `a`: m×k and `b`: k×n (both strided)
    /// and `c` a contiguous m×n slice. Panics if an operand reaches outside its slice or `c` has
    /// the wrong length; `k == 0` gives `c = 0` (or leaves it when accumulating).
    fn gemm(
        mkn: (usize, usize, usize),
        alpha: Self,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        accumulate: bool,
        c: &mut [Self],
    );

    /// [`Gemm::gemm`] on the calling thread only, for callers that already split their work
    /// across rayon (a convolution runs one product per sample in parallel).
    fn gemm_serial(
        mkn: (usize, usize, usize),
        alpha: Self,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        accumulate: bool,
        c: &mut [Self],
    ) {
        Self::gemm(mkn, alpha, a, b, accumulate, c)
    }
}

/// The checks every GEMM makes before touching memory; false when there is nothing to multiply
/// (`c` is then already right).
fn gemm_args<T: Num>(
    (m, k, n): (usize, usize, usize),
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    accumulate: bool,
    c: &mut [T],
) -> bool {
    assert_eq!(
        c.len(),
        m * n,
        "gemm: the output holds {} elements, not {m}x{n}",
        c.len()
    );
    a.check("gemm", "a", m, k);
    b.check("gemm", "b", k, n);
    if m == 0 || n == 0 {
        return false;
    }
    if k == 0 {
        if !accumulate {
            c.fill(T::ZERO);
        }
        return false;
    }
    true
}

/// The output pointer shared by the parts of a split GEMM; each part writes a disjoint block.
#[derive(Clone, Copy)]
struct OutPtr<T>(*mut T);
// SAFETY: the parts of one GEMM write disjoint blocks of the output (see `float_gemm!`).
unsafe impl<T: Send> Send for OutPtr<T> {}
// SAFETY: as for `Send`: shared between the parts only to write their own disjoint blocks.
unsafe impl<T: Send> Sync for OutPtr<T> {}

impl<T> OutPtr<T> {
    /// The element `i` places past the start. A method (not `.0`) so closures capture the
    /// whole `Send` wrapper rather than the raw pointer field.
    ///
    /// # Safety
    /// `i` must stay inside the output allocation.
    unsafe fn at(self, i: usize) -> *mut T {
        // SAFETY: the caller keeps `i` inside the allocation `self.0` points into.
        unsafe { self.0.add(i) }
    }
}

/// How a float GEMM is split: blocks of `block` rows (`by_rows`) or columns, cut at multiples
/// of the kernel's tile (`(rows, cols)`) so no block ends in a partial tile it could avoid.
fn split_plan(m: usize, k: usize, n: usize, (tr, tc): (usize, usize)) -> (bool, usize) {
    let threads = rayon::current_num_threads();
    let by_rows = m >= n;
    let len = if by_rows { m } else { n };
    if threads <= 1 || m * k * n < GEMM_GRAIN {
        return (by_rows, len);
    }
    let tile = if by_rows { tr } else { tc };
    (by_rows, len.div_ceil(threads).next_multiple_of(tile))
}

/// One strided operand of a matrix-vector product: the data, the offset of element 0 and the
/// strides along the output index and along the summed index (the vector's second is unused).
type Strided<'a, T> = (&'a [T], usize, usize, usize);

/// `Σ a[i]·b[i]` in 16 independent lanes, so the loop vectorises.
#[inline(always)]
fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    const L: usize = 16;
    let mut lanes = [T::ZERO; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let tail: T = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .fold(T::ZERO, |s, (&x, &y)| s + x * y);
    for (x, y) in ca.zip(cb) {
        for j in 0..L {
            lanes[j] = lanes[j] + x[j] * y[j];
        }
    }
    let mut w = L;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            lanes[j] = lanes[j] + lanes[j + w];
        }
    }
    lanes[0] + tail
}

/// `c[i] = alpha · Σ_p mat[i, p] · vec[p] (+ c[i] when accumulating)` for the outputs `c`, which
/// start at output index `first`. A product with one output row or column takes this path instead
/// of GEMM, whose packing would copy the whole matrix on every call (all of a 784×128 weight for
/// one 1×784 input): each output is a dot product when the matrix's rows are unit-stride, and
/// scaled rows accumulate into the outputs (`axpy`) when its columns are.
fn gemv_block<T: Float>(
    first: usize,
    k: usize,
    alpha: T,
    (md, mo, so, sk): Strided<'_, T>,
    (vd, vo, _, sv): Strided<'_, T>,
    accumulate: bool,
    c: &mut [T],
) {
    let keep = |old: T| if accumulate { old } else { T::ZERO };
    let mo = mo + first * so;
    if so == 1 && sk != 1 {
        if !accumulate {
            c.fill(T::ZERO);
        }
        for p in 0..k {
            let s = alpha * vd[vo + p * sv];
            let row = &md[mo + p * sk..][..c.len()];
            for (ci, &x) in c.iter_mut().zip(row) {
                *ci = *ci + s * x;
            }
        }
    } else if sk == 1 && sv == 1 {
        let v = &vd[vo..vo + k];
        for (i, ci) in c.iter_mut().enumerate() {
            *ci = alpha * dot(&md[mo + i * so..][..k], v) + keep(*ci);
        }
    } else {
        for (i, ci) in c.iter_mut().enumerate() {
            let d = (0..k).fold(T::ZERO, |s, p| {
                s + md[mo + i * so + p * sk] * vd[vo + p * sv]
            });
            *ci = alpha * d + keep(*ci);
        }
    }
}

/// The matrix and the vector of a product with one output row (`m == 1`: `c[j] = Σ_p a[0, p]·b[p, j]`)
/// or one output column (`c[i] = Σ_p a[i, p]·b[p, 0]`).
fn gemv_operands<'a, T>(m: usize, a: MatRef<'a, T>, b: MatRef<'a, T>) -> [Strided<'a, T>; 2] {
    if m == 1 {
        [(b.data, b.offset, b.cs, b.rs), (a.data, a.offset, 0, a.cs)]
    } else {
        [(a.data, a.offset, a.rs, a.cs), (b.data, b.offset, 0, b.rs)]
    }
}

/// A matrix-vector product over `k` into the contiguous outputs `c`, split across rayon when
/// large.
fn gemv<T: Float>(k: usize, alpha: T, [mat, vec]: [Strided<'_, T>; 2], acc: bool, c: &mut [T]) {
    let len = c.len();
    if len * k < GEMM_GRAIN || len < 32 {
        return gemv_block(0, k, alpha, mat, vec, acc, c);
    }
    let size = len
        .div_ceil(rayon::current_num_threads())
        .next_multiple_of(16);
    c.par_chunks_mut(size)
        .enumerate()
        .for_each(|(i, ci)| gemv_block(i * size, k, alpha, mat, vec, acc, ci));
}

/// Runs `part(0..parts)`: part 0 on the calling thread, the others on rayon's pool. The caller
/// works instead of sleeping until the pool is done, so a split GEMM costs one wake-up, not two.
fn run_parts(parts: usize, part: impl Fn(usize) + Sync) {
    if parts <= 1 {
        return part(0);
    }
    let part = &part;
    rayon::in_place_scope(|s| {
        for p in 1..parts {
            s.spawn(move |_| part(p));
        }
        part(0);
    });
}

/// matrixmultiply's `sgemm` / `dgemm`.
type RawGemm<T> = unsafe fn(
    usize,
    usize,
    usize,
    T,
    *const T,
    isize,
    isize,
    *const T,
    isize,
    isize,
    T,
    *mut T,
    isize,
    isize,
);

/// Ember's own f32 GEMM (`cpu/gemm`) behind matrixmultiply's signature; C's column stride
/// must be 1.
///
/// # Safety
/// As `matrixmultiply::sgemm`, with `m, k, n > 0`.
unsafe fn own_sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    debug_assert_eq!(csc, 1);
    let (a, b) = (
        MatPtr {
            ptr: a,
            rs: rsa,
            cs: csa,
        },
        MatPtr {
            ptr: b,
            rs: rsb,
            cs: csb,
        },
    );
    // SAFETY: forwarded from the caller; `Isa::detect` names a kernel this CPU runs.
    unsafe { gemm::sgemm(Isa::detect(), (m, k, n), alpha, a, b, beta, c, rsc as usize) }
}

/// A float GEMM through `raw` (matrixmultiply's or our own), split into row or column blocks of
/// the output across rayon when `parallel` and large.
fn float_gemm<T: Float + Send + Sync>(
    (m, k, n): (usize, usize, usize),
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    accumulate: bool,
    c: &mut [T],
    parallel: bool,
    (raw, tile): (RawGemm<T>, (usize, usize)),
) {
    if !gemm_args((m, k, n), &a, &b, accumulate, c) {
        return;
    }
    if m == 1 || n == 1 {
        let ops = gemv_operands(m, a, b);
        if !parallel {
            let [mat, vec] = ops;
            return gemv_block(0, k, alpha, mat, vec, accumulate, c);
        }
        return gemv(k, alpha, ops, accumulate, c);
    }
    let (by_rows, block) = if parallel {
        split_plan(m, k, n, tile)
    } else {
        (true, m)
    };
    let len = if by_rows { m } else { n };
    let out = OutPtr(c.as_mut_ptr());
    let part = |p: usize| {
        let (s, e) = (p * block, ((p + 1) * block).min(len));
        let (mm, nn, ao, bo, co) = if by_rows {
            (e - s, n, a.offset + s * a.rs, b.offset, s * n)
        } else {
            (m, e - s, a.offset, b.offset + s * b.cs, s)
        };
        // SAFETY: `gemm_args` checked above that every element of the m×k `a` and the k×n `b`
        // lies inside its slice (and that k > 0), so every element matrixmultiply reads is in
        // bounds; a part reads a sub-block of them. `c` is an exclusive contiguous m×n slice
        // (length checked); part `p` writes only its rows (or columns) `s..e` of it, so parts
        // never overlap and strides (n, 1) never alias.
        unsafe {
            raw(
                mm,
                k,
                nn,
                alpha,
                a.data.as_ptr().add(ao),
                a.rs as isize,
                a.cs as isize,
                b.data.as_ptr().add(bo),
                b.rs as isize,
                b.cs as isize,
                if accumulate { T::ONE } else { T::ZERO },
                out.at(co),
                n as isize,
                1,
            )
        }
    };
    run_parts(len.div_ceil(block), part);
}

macro_rules! float_gemm {
    ($t:ty, $f:expr) => {
        impl Gemm for $t {
            /// matrixmultiply runs single-threaded (its `threading` feature is off); large
            /// products are split here into row or column blocks of the output across rayon, so
            /// GEMMs and elementwise kernels share one pool and never oversubscribe the cores.
            fn gemm(
                mkn: (usize, usize, usize),
                alpha: Self,
                a: MatRef<'_, Self>,
                b: MatRef<'_, Self>,
                accumulate: bool,
                c: &mut [Self],
            ) {
                float_gemm(mkn, alpha, a, b, accumulate, c, true, $f)
            }

            fn gemm_serial(
                mkn: (usize, usize, usize),
                alpha: Self,
                a: MatRef<'_, Self>,
                b: MatRef<'_, Self>,
                accumulate: bool,
                c: &mut [Self],
            ) {
                float_gemm(mkn, alpha, a, b, accumulate, c, false, $f)
            }
        }
    };
}
float_gemm!(f32, f32_kernel());
float_gemm!(f64, (matrixmultiply::dgemm as RawGemm<f64>, (8, 8)));

/// The f32 GEMM and its tile: our own (EMBER_GEMM unset or `own`) or matrixmultiply's
/// (`EMBER_GEMM=mm`, for comparison).
fn f32_kernel() -> (RawGemm<f32>, (usize, usize)) {
    use std::sync::OnceLock;
    static MM: OnceLock<bool> = OnceLock::new();
    if *MM.get_or_init(|| std::env::var("EMBER_GEMM").is_ok_and(|v| v == "mm")) {
        (matrixmultiply::sgemm, (8, 8))
    } else {
        (own_sgemm, Isa::detect().tile())
    }
}

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
    if !gemm_args((m, k, n), &a, &b, accumulate, c) {
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
    let one = |(i, c): (usize, &mut [T])| {
        let am = MatRef::new(a, la.offset() + i * sa, st(la, 1), st(la, 2));
        let bm = MatRef::new(b, lb.offset() + i * sb, st(lb, 1), st(lb, 2));
        T::gemm((m, k, n), T::ONE, am, bm, false, c);
    };
    // Small products in a batch run one per task; large ones split themselves.
    if bs > 1 && m * k * n < GEMM_GRAIN && bs * m * k * n >= GEMM_GRAIN {
        out.par_chunks_mut(m * n).enumerate().for_each(one);
    } else {
        out.chunks_mut(m * n).enumerate().for_each(one);
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
    let am = MatRef::new(a, la.offset(), st(la, 0), st(la, 1));
    let bm = MatRef::new(b, lb.offset(), st(lb, 0), st(lb, 1));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The product `a @ b` (`a` m×k, `b` k×n, each row-major or a transposed view) on a pool of
    /// `threads` threads.
    fn product(threads: usize, (m, k, n): (usize, usize, usize), a_t: bool, b_t: bool) -> Vec<f32> {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 997) as f32 / 498.5 - 1.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104729) % 991) as f32 / 495.5 - 1.0)
            .collect();
        let am = if a_t {
            MatRef::new(&a, 0, 1, m)
        } else {
            MatRef::new(&a, 0, k, 1)
        };
        let bm = if b_t {
            MatRef::new(&b, 0, 1, k)
        } else {
            MatRef::new(&b, 0, n, 1)
        };
        let mut c = vec![0f32; m * n];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| f32::gemm((m, k, n), 1.0, am, bm, false, &mut c));
        c
    }

    #[test]
    fn split_products_are_identical_on_one_and_two_threads() {
        // The MLP's training products, large enough to be split across the pool, split by rows
        // (m >= n) and by columns, with the operand layouts training uses.
        for mkn in [
            (64, 784, 128),
            (784, 64, 128),
            (128, 64, 784),
            (64, 128, 784),
            (300, 81, 45),
        ] {
            assert!(
                mkn.0 * mkn.1 * mkn.2 >= GEMM_GRAIN,
                "{mkn:?} would not be split"
            );
            for (a_t, b_t) in [(false, false), (false, true), (true, false)] {
                let one = product(1, mkn, a_t, b_t);
                let two = product(2, mkn, a_t, b_t);
                assert!(
                    one.iter()
                        .zip(&two)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{mkn:?} a_t={a_t} b_t={b_t}: one and two threads differ"
                );
            }
        }
    }
}
