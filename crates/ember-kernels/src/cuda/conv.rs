//! Convolution and pooling on `CudaStorage` (`conv.cu`) — the methods of `cpu/conv.rs` and
//! `cpu/pool.rs`, with their semantics and messages.
//!
//! A convolution runs per chunk of samples (sized so the patch matrix stays under a budget,
//! 2²⁴ elements by default): `im2col` builds the chunk's patch matrix from the input read
//! through its own strides, and cuBLAS multiplies it by the weight — strided-batched over the
//! chunk's samples with one group, over the groups of each sample otherwise. The input
//! gradient multiplies `Wᵀ` by the output gradient into a patch-matrix gradient and `col2im`
//! gathers it back onto the input (one thread per input element, no atomics). The weight
//! gradient lays the patch matrix out as `(k, samples · positions)` per group and multiplies
//! the output gradient, permuted once to `(C_out, N · positions)`, by its transpose: one GEMM
//! per chunk sums over the chunk's samples, and the chunks accumulate through `beta = 1`. A
//! pointwise convolution (1×1, stride 1, no padding) reads its input or writes its input
//! gradient as a GEMM operand directly. A bias is copied into the output first and the GEMM
//! adds onto it, as the CPU does.
//!
//! Pooling is one thread per output (forward); average pooling's backward one thread per
//! input element gathering from the windows that contain it; max pooling's backward adds each
//! output gradient at its recorded index with an atomic add, so where windows overlap the order
//! of the additions to an input element (hence its last bits) may vary between runs.
//!
//! Nothing here waits for the device.

use super::blas::GemmCall;
use super::device::Device;
use super::geometry::gemm_view;
use super::kernels::Family;
use super::params::{ConvP, PoolP};
use super::storage::{blocks_for, check_extent, same_device, CudaStorage};
use crate::conv::{AvgDivisor, ConvGeom as Geom, ConvParams, PoolWindows};
use crate::dtype::DType;
use crate::layout::Layout;
use crate::{cuda_args, kname};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Threads per block of every kernel here (one work item per thread, grid-strided).
const THREADS: u32 = 256;

/// Most patch-matrix elements held at once by default: a chunk has as many samples as fit (at
/// least one).
const COL_BUDGET: usize = 1 << 24;

static COL_BUDGET_NOW: AtomicUsize = AtomicUsize::new(COL_BUDGET);

/// Sets the patch-matrix budget (elements; default 2²⁴) that sizes the chunks of samples a
/// convolution runs in — for tests of the multi-chunk paths. Results do not depend on it
/// beyond rounding.
#[doc(hidden)]
pub fn set_col_budget(elems: usize) {
    COL_BUDGET_NOW.store(elems.max(1), Ordering::Relaxed);
}

/// Index arithmetic in 32 bits when the work items fit.
fn use32(total: usize) -> u32 {
    u32::from(total < (1usize << 31))
}

/// Stride of dim `d`, 0 for a size-1 dim (whose stride may be anything).
fn st(l: &Layout, d: usize) -> u64 {
    if l.shape()[d] <= 1 {
        0
    } else {
        l.strides()[d] as u64
    }
}

fn float_only(op: &str, s: &CudaStorage) {
    if !s.dtype().is_float() {
        panic!("{op}: expected a floating-point input, got {}", s.dtype());
    }
}

/// The CPU's message for an operand whose dtype differs from the input's.
fn same_dtype(op: &str, x: &CudaStorage, s: &CudaStorage, what: &str) {
    if s.dtype() != x.dtype() {
        panic!(
            "{op}: Input type ({}) and {what} type ({}) should be the same",
            x.dtype(),
            s.dtype()
        );
    }
    same_device(op, x, s);
}

fn check_rank(op: &str, what: &str, l: &Layout) {
    assert!(
        l.ndim() == 4,
        "{op}: expected a 4-D {what} layout (N, C, H, W), got shape {:?}",
        l.shape()
    );
}

impl Geom {
    /// Samples per chunk: as many as keep the patch matrix within the budget.
    fn chunk(&self) -> usize {
        let per_sample = (self.groups() * self.k() * self.ohw()).max(1);
        (COL_BUDGET_NOW.load(Ordering::Relaxed) / per_sample).clamp(1, self.n.max(1))
    }

    /// The kernel parameters of a chunk of `n` samples with patch-matrix strides `cs`.
    fn params(&self, n: usize, xs: [u64; 4], cs: [u64; 4], total: usize) -> ConvP {
        let u = |v: usize| v as u64;
        ConvP {
            n: u(n),
            cin: u(self.cin),
            h: u(self.h),
            w: u(self.w),
            oh: u(self.oh),
            ow: u(self.ow),
            kh: u(self.kh),
            kw: u(self.kw),
            cg: u(self.cg),
            groups: u(self.groups()),
            xs,
            cs,
            stride: self.p.stride.map(u),
            pad: [u(self.p.padding[0][0]), u(self.p.padding[1][0])],
            dil: self.p.dilation.map(u),
            total: u(total),
            use32: use32(total),
            pad_: 0,
        }
    }

    /// Patch-matrix strides of the forward and input-gradient layout: per sample and group a
    /// row-major `k × positions` matrix.
    fn col_strides(&self) -> [u64; 4] {
        let (k, ohw) = (self.k() as u64, self.ohw() as u64);
        [self.groups() as u64 * k * ohw, k * ohw, ohw, 1]
    }
}

/// A row-major GEMM operand: element `(r, c)` of batch `b` at byte address `ptr` plus
/// `b·bs + r·rs + c·cs` elements.
#[derive(Clone, Copy, Debug)]
struct Mat {
    ptr: u64,
    rs: u64,
    cs: u64,
    bs: u64,
}

impl Mat {
    /// The operand moved by `elems` elements of `es` bytes, with batch stride `bs`.
    fn at(self, elems: u64, es: u64, bs: u64) -> Mat {
        Mat {
            ptr: self.ptr + elems * es,
            bs,
            ..self
        }
    }
}

/// Whether cuBLAS can read a `rows × cols` matrix with these strides in place.
fn readable(rows: usize, cols: usize, rs: u64, cs: u64) -> bool {
    gemm_view(rows as u64, cols as u64, rs, cs).is_some()
}

/// `s` through `l` as a `rows × cols` matrix (`l`'s elements merged into that shape) that
/// cuBLAS can read: in place when the strides allow it, else a contiguous copy kept in `owned`.
fn matrix(
    s: &CudaStorage,
    l: &Layout,
    [rows, cols]: [usize; 2],
    owned: &mut Option<CudaStorage>,
) -> Mat {
    if let Some(v) = l.view(&[rows, cols]) {
        if readable(rows, cols, st(&v, 0), st(&v, 1)) {
            return Mat {
                ptr: s.ptr_at(v.offset()),
                rs: st(&v, 0),
                cs: st(&v, 1),
                bs: 0,
            };
        }
    }
    let c = owned.insert(s.contiguous(l));
    Mat {
        ptr: c.ptr(),
        rs: cols as u64,
        cs: 1,
        bs: 0,
    }
}

/// Row-major `C[b] (M×N) = A[b] (M×K) · B[b] (K×N)`, plus `C[b]` when `accumulate`, for
/// `batch` products; `C` is contiguous with batch stride `M·N` at byte address `c`.
fn gemm(
    dev: &Arc<Device>,
    d: DType,
    (m, k, n): (usize, usize, usize),
    a: Mat,
    b: Mat,
    c: u64,
    batch: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 || batch == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dev.zero(c, batch * m * n * d.size_in_bytes());
        }
        return;
    }
    let (m, k, n) = (m as u64, k as u64, n as u64);
    // Column-major Cᵀ (N×M) = Bᵀ (N×K) · Aᵀ (K×M); Bᵀ's element (n, k) is B[k, n].
    let first = gemm_view(n, k, b.cs, b.rs).expect("conv: a GEMM operand cuBLAS cannot read");
    let second = gemm_view(k, m, a.cs, a.rs).expect("conv: a GEMM operand cuBLAS cannot read");
    let call = GemmCall {
        m: n,
        n: m,
        k,
        a: (b.ptr, first, b.bs),
        b: (a.ptr, second, a.bs),
        c,
        batch: batch as u64,
        alpha: 1.0,
        beta: if accumulate { 1.0 } else { 0.0 },
    };
    let blas = dev.blas();
    // cuBLAS works in the context current on the calling thread.
    dev.bind();
    // SAFETY: the callers build every operand from a layout checked against its storage (or a
    // buffer they allocated for it), and `c` holds `batch · M · N` elements.
    unsafe { blas.gemm(d == DType::F64, &call) };
}

/// The per-(sample, group) products of a convolution over `samples` samples: the weight `a`
/// (group `g` at `g · a_gs` elements), `b` (sample `s`, group `g` at `s · b_ss + g · b_gs`) and
/// the output at `c` (sample stride `c_ss`, groups `M·N` apart). One strided-batched call over
/// the samples with one group, one call over the groups of each sample otherwise.
#[allow(clippy::too_many_arguments)]
fn grouped_gemm(
    dev: &Arc<Device>,
    d: DType,
    groups: usize,
    samples: usize,
    mkn: (usize, usize, usize),
    (a, a_gs): (Mat, u64),
    (b, b_ss, b_gs): (Mat, u64, u64),
    (c, c_ss): (u64, u64),
    accumulate: bool,
) {
    let es = d.size_in_bytes() as u64;
    if groups == 1 {
        debug_assert!(samples <= 1 || c_ss == (mkn.0 * mkn.2) as u64);
        gemm(
            dev,
            d,
            mkn,
            a.at(0, es, 0),
            b.at(0, es, b_ss),
            c,
            samples,
            accumulate,
        );
    } else {
        for s in 0..samples as u64 {
            gemm(
                dev,
                d,
                mkn,
                a.at(0, es, a_gs),
                b.at(s * b_ss, es, b_gs),
                c + s * c_ss * es,
                groups,
                accumulate,
            );
        }
    }
}

/// The four strides of a 4-D layout (0 for size-1 dims).
fn strides4(l: &Layout) -> [u64; 4] {
    [0, 1, 2, 3].map(|d| st(l, d))
}

/// Builds the patch matrix of samples `s0..s0 + n` of `x` into `col` with strides `cs`.
fn im2col(x: &CudaStorage, lx: &Layout, g: &Geom, (s0, n): (usize, usize), col: u64, cs: [u64; 4]) {
    let total = n * g.groups() * g.k() * g.ohw();
    if total == 0 {
        return;
    }
    let dev = x.device_arc();
    let d = x.dtype();
    let p = g.params(n, strides4(lx), cs, total);
    let f = dev.function(Family::Conv, d, kname!("im2col", d));
    let xp = x.ptr_at(lx.offset() + s0 * st(lx, 0) as usize);
    let mut args = cuda_args![xp, col, p];
    // SAFETY: `im2col_T(const T*, T*, ConvP)`: the reads stay inside `lx` (checked against the
    // storage by the caller) and the writes inside the `total` entries `cs` lays out in `col`.
    unsafe { dev.launch(f, (blocks_for(total, THREADS), 1, 1), THREADS, 0, &mut args) };
}

/// Gathers the patch-matrix gradient `col` (of `n` samples, forward layout) into the
/// contiguous `(n, C_in, H, W)` input gradient at `gx`.
fn col2im(dev: &Arc<Device>, d: DType, g: &Geom, n: usize, col: u64, gx: u64) {
    let total = n * g.cin * g.hw();
    if total == 0 {
        return;
    }
    let p = g.params(n, [0; 4], g.col_strides(), total);
    let f = dev.function(Family::Conv, d, kname!("col2im", d));
    let mut args = cuda_args![col, gx, p];
    // SAFETY: `col2im_T(const T*, T*, ConvP)`: reads stay inside the `n` samples' patch
    // matrices at `col`, writes inside the `total` elements at `gx`.
    unsafe { dev.launch(f, (blocks_for(total, THREADS), 1, 1), THREADS, 0, &mut args) };
}

fn forward(
    x: &CudaStorage,
    lx: &Layout,
    w: &CudaStorage,
    lw: &Layout,
    bias: Option<(&CudaStorage, &Layout)>,
    g: &Geom,
) -> CudaStorage {
    let dev = x.device_arc().clone();
    let d = x.dtype();
    let (k, ohw, hw, groups) = (g.k(), g.ohw(), g.hw(), g.groups());
    let mut out = CudaStorage::uninit(&dev, g.n * g.cout * ohw, d);
    if out.is_empty() {
        return out;
    }
    check_extent("conv2d", lx, x.len());
    check_extent("conv2d", lw, w.len());
    let accumulate = match bias {
        Some((b, lb)) => {
            // Every output row starts as its channel's bias; the GEMM adds onto it.
            let shape = [g.n, g.cout, ohw];
            let lbias = Layout::new(&shape, &[0, st(lb, 0) as usize, 0], lb.offset());
            out.copy_from(&Layout::contiguous(&shape), b, &lbias);
            true
        }
        None => false,
    };
    if k == 0 {
        if !accumulate {
            dev.zero(out.ptr(), out.len() * d.size_in_bytes());
        }
        return out;
    }
    let mut owned_w = None;
    let wm = matrix(w, lw, [g.cout, k], &mut owned_w);
    let a = (wm, g.og as u64 * wm.rs);
    let c = (out.ptr(), (g.cout * ohw) as u64);
    let mkn = (g.og, k, ohw);
    // Pointwise: the input, viewed as (N, C_in, H·W), is the GEMM's right operand.
    if g.pointwise() {
        if let Some(v) = lx.view(&[g.n, g.cin, hw]) {
            if readable(g.cg, hw, st(&v, 1), st(&v, 2)) {
                let b = Mat {
                    ptr: x.ptr_at(v.offset()),
                    rs: st(&v, 1),
                    cs: st(&v, 2),
                    bs: 0,
                };
                let bs = (b, st(&v, 0), g.cg as u64 * st(&v, 1));
                grouped_gemm(&dev, d, groups, g.n, mkn, a, bs, c, accumulate);
                return out;
            }
        }
    }
    let chunk = g.chunk();
    let col = CudaStorage::uninit(&dev, chunk * groups * k * ohw, d);
    let cs = g.col_strides();
    let b = Mat {
        ptr: col.ptr(),
        rs: ohw as u64,
        cs: 1,
        bs: 0,
    };
    let es = d.size_in_bytes() as u64;
    for s0 in (0..g.n).step_by(chunk) {
        let n = chunk.min(g.n - s0);
        im2col(x, lx, g, (s0, n), col.ptr(), cs);
        let c = (c.0 + (s0 * g.cout * ohw) as u64 * es, c.1);
        grouped_gemm(&dev, d, groups, n, mkn, a, (b, cs[0], cs[1]), c, accumulate);
    }
    out
}

fn backward_input(
    gy: &CudaStorage,
    lg: &Layout,
    w: &CudaStorage,
    lw: &Layout,
    g: &Geom,
) -> CudaStorage {
    let dev = gy.device_arc().clone();
    let d = gy.dtype();
    let (k, ohw, hw, groups) = (g.k(), g.ohw(), g.hw(), g.groups());
    let out = CudaStorage::uninit(&dev, g.n * g.cin * hw, d);
    if out.is_empty() {
        return out;
    }
    check_extent("conv_transpose2d", lw, w.len());
    if g.cout * ohw == 0 {
        dev.zero(out.ptr(), out.len() * d.size_in_bytes());
        return out;
    }
    check_extent("conv_transpose2d", lg, gy.len());
    let mut owned_w = None;
    let wm = matrix(w, lw, [g.cout, k], &mut owned_w);
    // Wᵍᵀ (k × og): W read with its strides swapped.
    let wt = Mat {
        rs: wm.cs,
        cs: wm.rs,
        ..wm
    };
    let a = (wt, g.og as u64 * wm.rs);
    // The output gradient as (N, C_out, positions); copied when cuBLAS cannot read a group's
    // (og × positions) matrix in place.
    let mut owned_g = None;
    let view = lg
        .view(&[g.n, g.cout, ohw])
        .filter(|v| readable(g.og, ohw, st(v, 1), st(v, 2)));
    let (gp, lv) = match view {
        Some(v) => (gy.ptr_at(v.offset()), v),
        None => {
            let c = owned_g.insert(gy.contiguous(lg));
            (c.ptr(), Layout::contiguous(&[g.n, g.cout, ohw]))
        }
    };
    let b = Mat {
        ptr: gp,
        rs: st(&lv, 1),
        cs: st(&lv, 2),
        bs: 0,
    };
    let (b_ss, b_gs) = (st(&lv, 0), g.og as u64 * st(&lv, 1));
    let mkn = (k, g.og, ohw);
    let es = d.size_in_bytes() as u64;
    if g.pointwise() {
        // The patch matrix is the input itself: write its gradient directly.
        let c = (out.ptr(), (g.cin * hw) as u64);
        grouped_gemm(&dev, d, groups, g.n, mkn, a, (b, b_ss, b_gs), c, false);
        return out;
    }
    let chunk = g.chunk();
    let col = CudaStorage::uninit(&dev, chunk * groups * k * ohw, d);
    let cs = g.col_strides();
    for s0 in (0..g.n).step_by(chunk) {
        let n = chunk.min(g.n - s0);
        let bc = b.at(s0 as u64 * b_ss, es, 0);
        grouped_gemm(
            &dev,
            d,
            groups,
            n,
            mkn,
            a,
            (bc, b_ss, b_gs),
            (col.ptr(), cs[0]),
            false,
        );
        col2im(&dev, d, g, n, col.ptr(), out.ptr_at(s0 * g.cin * hw));
    }
    out
}

fn backward_weight(
    x: &CudaStorage,
    lx: &Layout,
    gy: &CudaStorage,
    lg: &Layout,
    g: &Geom,
) -> CudaStorage {
    let dev = x.device_arc().clone();
    let d = x.dtype();
    let (k, ohw, groups) = (g.k(), g.ohw(), g.groups());
    let out = CudaStorage::uninit(&dev, g.cout * k, d);
    if out.is_empty() {
        return out;
    }
    if g.n * ohw == 0 {
        dev.zero(out.ptr(), out.len() * d.size_in_bytes());
        return out;
    }
    check_extent("conv2d", lx, x.len());
    check_extent("conv2d", lg, gy.len());
    // The output gradient as one (C_out, N · positions) matrix: in place for one sample when
    // cuBLAS can read it, else permuted once to (C_out, N, H_out, W_out).
    let mut owned_g = None;
    let ga = match lg
        .view(&[g.cout, ohw])
        .filter(|v| g.n == 1 && readable(g.og, ohw, st(v, 0), st(v, 1)))
    {
        Some(v) => Mat {
            ptr: gy.ptr_at(v.offset()),
            rs: st(&v, 0),
            cs: st(&v, 1),
            bs: 0,
        },
        None => {
            let c = owned_g.insert(gy.contiguous(&lg.permute(&[1, 0, 2, 3])));
            Mat {
                ptr: c.ptr(),
                rs: (g.n * ohw) as u64,
                cs: 1,
                bs: 0,
            }
        }
    };
    let chunk = g.chunk();
    let col = CudaStorage::uninit(&dev, chunk * groups * k * ohw, d);
    let es = d.size_in_bytes() as u64;
    for s0 in (0..g.n).step_by(chunk) {
        let n = chunk.min(g.n - s0);
        // Per group a row-major (k × n·positions) patch matrix: sample s's positions are
        // columns s·positions onwards, so the GEMM's sum runs over the chunk's samples too.
        let kc = (n * ohw) as u64;
        let cs = [ohw as u64, k as u64 * kc, kc, 1];
        im2col(x, lx, g, (s0, n), col.ptr(), cs);
        // gWᵍ (og × k) (+)= gyᵍ (og × kc) · patchesᵍᵀ (kc × k), batched over the groups.
        let a = ga.at((s0 * ohw) as u64 * ga.cs, es, g.og as u64 * ga.rs);
        let b = Mat {
            ptr: col.ptr(),
            rs: 1,
            cs: kc,
            bs: k as u64 * kc,
        };
        gemm(&dev, d, (g.og, n * ohw, k), a, b, out.ptr(), groups, s0 > 0);
    }
    out
}

/// The kernel parameters of a pooling over `windows` of planes `(N, C)` from `input` to
/// `out` spatial sizes; `s` are the strides of the operand read.
fn pool_params(
    nc: [usize; 2],
    input: [usize; 2],
    out: [usize; 2],
    windows: &PoolWindows,
    divisor: Option<AvgDivisor>,
    s: [u64; 4],
    total: usize,
) -> PoolP {
    let u = |v: usize| v as u64;
    let mut p = PoolP {
        planes: u(nc[0] * nc[1]),
        c: u(nc[1]),
        h: u(input[0]),
        w: u(input[1]),
        oh: u(out[0]),
        ow: u(out[1]),
        s,
        total: u(total),
        use32: use32(total),
        ..PoolP::default()
    };
    match windows {
        PoolWindows::Adaptive => p.adaptive = 1,
        PoolWindows::Sliding(w) => {
            p.kernel = w.kernel.map(u);
            p.stride = w.stride.map(u);
            p.pad = w.padding.map(u);
            p.dil = w.dilation.map(u);
            // `AvgDivisor::of`: the override and the padding count apply to sliding windows.
            if let Some(div) = divisor {
                if let Some(v) = div.divisor_override {
                    p.has_override = 1;
                    p.divisor = u(v);
                }
                p.count_include_pad = u32::from(div.count_include_pad);
            }
        }
    }
    p
}

/// The `(N, C)` and spatial sizes of a 4-D pooling layout (the CPU's rank check).
fn pool_dims(l: &Layout) -> ([usize; 2], [usize; 2]) {
    assert!(
        l.ndim() == 4,
        "pooling: expected a 4-D (N, C, H, W) layout, got shape {:?}",
        l.shape()
    );
    let s = l.shape();
    ([s[0], s[1]], [s[2], s[3]])
}

/// Launches the pooling kernel `f` over `p.total` work items with arguments `args`.
///
/// # Safety
/// As [`Device::launch`].
unsafe fn pool_launch(
    dev: &Device,
    f: cudarc::driver::sys::CUfunction,
    p: &PoolP,
    args: &mut [*mut std::ffi::c_void],
) {
    let total = p.total as usize;
    if total > 0 {
        // SAFETY: the caller's contract.
        unsafe { dev.launch(f, (blocks_for(total, THREADS), 1, 1), THREADS, 0, args) };
    }
}

impl CudaStorage {
    /// 2-D convolution of the input `(N, C_in, H, W)` (any strides) with the weight
    /// `(C_out, C_in / groups, kH, kW)` and an optional bias `(C_out)`, all of one float dtype,
    /// shapes already validated (`conv::check_conv`); the result is contiguous
    /// `(N, C_out, H_out, W_out)` with `out` the output's spatial size (`CpuStorage::conv2d`).
    pub fn conv2d(
        &self,
        lx: &Layout,
        w: &CudaStorage,
        lw: &Layout,
        bias: Option<(&CudaStorage, &Layout)>,
        p: &ConvParams,
        out: [usize; 2],
    ) -> CudaStorage {
        check_rank("conv2d", "input", lx);
        check_rank("conv2d", "weight", lw);
        float_only("conv2d", self);
        same_dtype("conv2d", self, w, "weight");
        if let Some((b, _)) = bias {
            same_dtype("conv2d", self, b, "bias");
        }
        let s = lx.shape();
        let g = Geom::new(
            [s[0], s[1], s[2], s[3]],
            lw.shape()[0],
            [lw.shape()[2], lw.shape()[3]],
            out,
            *p,
        );
        forward(self, lx, w, lw, bias, &g)
    }

    /// The input gradient of a 2-D convolution — equally, the transposed convolution of `self`
    /// `(N, C_out, H_out, W_out)` (any strides) with the weight `(C_out, C_in / groups, kH, kW)`:
    /// contiguous `(N, C_in, input[0], input[1])` (`CpuStorage::conv2d_backward_input`).
    pub fn conv2d_backward_input(
        &self,
        lg: &Layout,
        w: &CudaStorage,
        lw: &Layout,
        p: &ConvParams,
        input: [usize; 2],
    ) -> CudaStorage {
        check_rank("conv2d_backward_input", "gradient", lg);
        check_rank("conv2d_backward_input", "weight", lw);
        float_only("conv_transpose2d", self);
        same_dtype("conv_transpose2d", self, w, "weight");
        let (s, ws) = (lg.shape(), lw.shape());
        let g = Geom::new(
            [s[0], ws[1] * p.groups, input[0], input[1]],
            ws[0],
            [ws[2], ws[3]],
            [s[2], s[3]],
            *p,
        );
        backward_input(self, lg, w, lw, &g)
    }

    /// The weight gradient of a 2-D convolution of `self`, the input `(N, C_in, H, W)`, given
    /// the output gradient `gy` `(N, C_out, H_out, W_out)` (both any strides): contiguous
    /// `(C_out, C_in / groups, kernel[0], kernel[1])`, summed over the batch
    /// (`CpuStorage::conv2d_backward_weight`).
    pub fn conv2d_backward_weight(
        &self,
        lx: &Layout,
        gy: &CudaStorage,
        lg: &Layout,
        p: &ConvParams,
        kernel: [usize; 2],
    ) -> CudaStorage {
        check_rank("conv2d_backward_weight", "input", lx);
        check_rank("conv2d_backward_weight", "gradient", lg);
        float_only("conv2d", self);
        same_dtype("conv2d", self, gy, "gradient");
        let (s, gs) = (lx.shape(), lg.shape());
        let g = Geom::new([s[0], s[1], s[2], s[3]], gs[1], kernel, [gs[2], gs[3]], *p);
        backward_weight(self, lx, gy, lg, &g)
    }

    /// Max pooling of the `(N, C, H, W)` input (any strides) over `windows`, `out` the output's
    /// spatial size: the contiguous `(N, C, out[0], out[1])` maxima and the int64 flat index
    /// (`h·W + w` within the plane) of each one's first maximal element, NaN counting as
    /// maximal (`CpuStorage::max_pool2d`).
    pub fn max_pool2d(
        &self,
        lx: &Layout,
        windows: &PoolWindows,
        out: [usize; 2],
    ) -> (CudaStorage, CudaStorage) {
        float_only("max_pool2d", self);
        let (nc, input) = pool_dims(lx);
        let dev = self.device_arc().clone();
        let d = self.dtype();
        let total = nc[0] * nc[1] * out[0] * out[1];
        let vals = CudaStorage::uninit(&dev, total, d);
        let idx = CudaStorage::uninit(&dev, total, DType::I64);
        if total == 0 {
            return (vals, idx);
        }
        check_extent("max_pool2d", lx, self.len());
        let p = pool_params(nc, input, out, windows, None, strides4(lx), total);
        let f = dev.function(Family::Conv, d, kname!("max_pool", d));
        let (xp, yp, ip) = (self.ptr_at(lx.offset()), vals.ptr(), idx.ptr());
        let mut args = cuda_args![xp, yp, ip, p];
        // SAFETY: `max_pool_T(const T*, T*, i64*, PoolP)`: the window taps lie inside `lx`
        // (checked against the storage), the `total` outputs inside `vals` and `idx`.
        unsafe { pool_launch(&dev, f, &p, &mut args) };
        (vals, idx)
    }

    /// The input gradient of a max pooling: each output gradient of `self` `(N, C, H_out,
    /// W_out)` added at its recorded `indices` (same shape, int64) in a zero `(N, C, input[0],
    /// input[1])` gradient (`CpuStorage::max_pool2d_backward`).
    pub fn max_pool2d_backward(
        &self,
        lg: &Layout,
        indices: &CudaStorage,
        li: &Layout,
        input: [usize; 2],
    ) -> CudaStorage {
        assert_eq!(
            lg.shape(),
            li.shape(),
            "max_pool2d_backward: gradient and indices shapes differ"
        );
        if indices.dtype() != DType::I64 {
            panic!(
                "expected dtype {}, storage holds {}",
                DType::I64,
                indices.dtype()
            );
        }
        float_only("max_pool2d", self);
        same_device("max_pool2d", self, indices);
        let (nc, out) = pool_dims(lg);
        let dev = self.device_arc().clone();
        let d = self.dtype();
        let gx = CudaStorage::zeros(&dev, nc[0] * nc[1] * input[0] * input[1], d);
        let total = nc[0] * nc[1] * out[0] * out[1];
        if total == 0 || gx.is_empty() {
            return gx;
        }
        check_extent("max_pool2d_backward", lg, self.len());
        check_extent("max_pool2d_backward", li, indices.len());
        let mut p = pool_params(
            nc,
            input,
            out,
            &PoolWindows::Adaptive,
            None,
            strides4(lg),
            total,
        );
        p.si = strides4(li);
        let f = dev.function(Family::Conv, d, kname!("max_pool_bwd", d));
        let (gp, ip, xp) = (
            self.ptr_at(lg.offset()),
            indices.ptr_at(li.offset()),
            gx.ptr(),
        );
        let mut args = cuda_args![gp, ip, xp, p];
        // SAFETY: `max_pool_bwd_T(const T*, const i64*, T*, PoolP)`: reads inside `lg` and
        // `li` (checked), atomic adds only at indices inside their plane of `gx`.
        unsafe { pool_launch(&dev, f, &p, &mut args) };
        gx
    }

    /// Average pooling of the `(N, C, H, W)` input (any strides) over `windows`, each sum
    /// divided as `divisor` says (adaptive windows: by their size): contiguous `(N, C, out[0],
    /// out[1])` (`CpuStorage::avg_pool2d`).
    pub fn avg_pool2d(
        &self,
        lx: &Layout,
        windows: &PoolWindows,
        divisor: AvgDivisor,
        out: [usize; 2],
    ) -> CudaStorage {
        float_only("avg_pool2d", self);
        let (nc, input) = pool_dims(lx);
        let dev = self.device_arc().clone();
        let d = self.dtype();
        let total = nc[0] * nc[1] * out[0] * out[1];
        let y = CudaStorage::uninit(&dev, total, d);
        if total == 0 {
            return y;
        }
        check_extent("avg_pool2d", lx, self.len());
        let p = pool_params(nc, input, out, windows, Some(divisor), strides4(lx), total);
        let f = dev.function(Family::Conv, d, kname!("avg_pool", d));
        let (xp, yp) = (self.ptr_at(lx.offset()), y.ptr());
        let mut args = cuda_args![xp, yp, p];
        // SAFETY: `avg_pool_T(const T*, T*, PoolP)`: the window positions lie inside `lx`
        // (checked against the storage), the `total` outputs inside `y`.
        unsafe { pool_launch(&dev, f, &p, &mut args) };
        y
    }

    /// The input gradient of an average pooling: each output gradient of `self`, divided as in
    /// the forward, spread over its window in a zero `(N, C, input[0], input[1])` gradient —
    /// computed as a gather, one input element at a time (`CpuStorage::avg_pool2d_backward`).
    pub fn avg_pool2d_backward(
        &self,
        lg: &Layout,
        windows: &PoolWindows,
        divisor: AvgDivisor,
        input: [usize; 2],
    ) -> CudaStorage {
        float_only("avg_pool2d", self);
        let (nc, out) = pool_dims(lg);
        let dev = self.device_arc().clone();
        let d = self.dtype();
        let total = nc[0] * nc[1] * input[0] * input[1];
        let gx = CudaStorage::uninit(&dev, total, d);
        if total == 0 {
            return gx;
        }
        if out[0] * out[1] == 0 {
            dev.zero(gx.ptr(), total * d.size_in_bytes());
            return gx;
        }
        check_extent("avg_pool2d_backward", lg, self.len());
        let p = pool_params(nc, input, out, windows, Some(divisor), strides4(lg), total);
        let f = dev.function(Family::Conv, d, kname!("avg_pool_bwd", d));
        let (gp, xp) = (self.ptr_at(lg.offset()), gx.ptr());
        let mut args = cuda_args![gp, xp, p];
        // SAFETY: `avg_pool_bwd_T(const T*, T*, PoolP)`: reads of the output gradient inside
        // `lg` (checked against the storage), the `total` writes inside `gx`.
        unsafe { pool_launch(&dev, f, &p, &mut args) };
        gx
    }
}
