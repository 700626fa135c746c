//! Float matrix products through cuBLAS (`sgemm`/`dgemm`, strided-batched), with the TF32
//! setting of `torch.backends.cuda.matmul.allow_tf32` (off by default, as PyTorch).
//!
//! cuBLAS is column-major; a row-major contiguous `C[M, N] = A[M, K] · B[K, N]` is computed as
//! the column-major `Cᵀ (N×M) = Bᵀ · Aᵀ`. Each operand's row and column strides are expressed
//! through cuBLAS's own arguments (no-transpose with a leading dimension when one stride is 1,
//! transpose when the other is), and the batch stride through `strideA/strideB` (0 for a
//! broadcast batch), so transposed, sliced and broadcast operands are read in place. Only a
//! layout cuBLAS cannot describe (neither stride 1, e.g. a matrix sliced with a step in both
//! dims, or a broadcast matrix dim) is copied first — see `geometry::gemm_view`.

use super::geometry::GemmView;
use cudarc::cublas::sys;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static ALLOW_TF32: AtomicBool = AtomicBool::new(false);

/// `torch.backends.cuda.matmul.allow_tf32 = allow`: f32 GEMMs may use TF32 tensor cores
/// (10-bit mantissa products, much faster). Off by default, as in PyTorch.
pub fn set_allow_tf32(allow: bool) {
    ALLOW_TF32.store(allow, Ordering::Relaxed);
}

/// The current TF32 setting.
pub fn allow_tf32() -> bool {
    ALLOW_TF32.load(Ordering::Relaxed)
}

/// One strided-batched GEMM in cuBLAS's terms.
#[derive(Clone, Copy, Debug)]
pub struct GemmCall {
    /// Rows of the column-major result (N of the row-major product).
    pub m: u64,
    /// Columns of the column-major result (M).
    pub n: u64,
    /// The summed dim.
    pub k: u64,
    /// First operand (B of the row-major product), its view and batch stride.
    pub a: (u64, GemmView, u64),
    /// Second operand (A), its view and batch stride.
    pub b: (u64, GemmView, u64),
    /// The output, leading dimension `m`, batch stride `m * n`.
    pub c: u64,
    /// Batch count.
    pub batch: u64,
    /// `alpha`.
    pub alpha: f64,
    /// `beta` (0: the output is not read).
    pub beta: f64,
}

/// A cuBLAS handle bound to a device's stream (null for the host emulator, which computes
/// GEMMs by definition).
pub struct Blas {
    handle: sys::cublasHandle_t,
    /// Serialises calls (the handle's math mode is state) and remembers that mode.
    state: Mutex<bool>,
}

// SAFETY: the handle is used only under `state`'s lock.
unsafe impl Send for Blas {}
// SAFETY: as above.
unsafe impl Sync for Blas {}

fn check(what: &str, s: sys::cublasStatus_t) -> Result<(), String> {
    if s == sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
        Ok(())
    } else {
        Err(format!("{what}: {s:?}"))
    }
}

impl Blas {
    /// The host emulator's stand-in (`EMBER_CUDA_EMULATE=1`).
    pub fn emulated() -> Blas {
        Blas {
            handle: std::ptr::null_mut(),
            state: Mutex::new(false),
        }
    }

    /// A handle whose work goes to `stream` (the device's context must be current).
    pub fn new(stream: cudarc::driver::sys::CUstream) -> Result<Blas, String> {
        let mut handle: sys::cublasHandle_t = std::ptr::null_mut();
        // SAFETY: `handle` is written by cuBLAS; the stream belongs to the current context.
        unsafe {
            check("cublasCreate", sys::cublasCreate_v2(&mut handle))?;
            check(
                "cublasSetStream",
                sys::cublasSetStream_v2(handle, stream as sys::cudaStream_t),
            )?;
            check(
                "cublasSetMathMode",
                sys::cublasSetMathMode(handle, sys::cublasMath_t::CUBLAS_DEFAULT_MATH),
            )?;
        }
        Ok(Blas {
            handle,
            state: Mutex::new(false),
        })
    }

    /// Runs `call` as an f32 (`f64 == false`) or f64 GEMM.
    ///
    /// # Safety
    /// The addresses in `call` must be device memory of this handle's device holding the
    /// elements the views and batch strides reach.
    pub unsafe fn gemm(&self, f64: bool, call: &GemmCall) {
        let mut tf32 = self.state.lock().unwrap();
        if self.handle.is_null() {
            // SAFETY: the emulated device's addresses are host memory; the caller's contract
            // (every element the views reach is live) is the emulator's.
            return unsafe { super::emulate::gemm(f64, call) };
        }
        let want = !f64 && allow_tf32();
        if *tf32 != want {
            let mode = if want {
                sys::cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH
            } else {
                sys::cublasMath_t::CUBLAS_DEFAULT_MATH
            };
            if let Err(e) = check(
                "cublasSetMathMode",
                // SAFETY: `handle` is this live cuBLAS handle (non-null checked above).
                unsafe { sys::cublasSetMathMode(self.handle, mode) },
            ) {
                panic!("CUDA error: {e}");
            }
            *tf32 = want;
        }
        let op = |v: GemmView| {
            if v.trans {
                sys::cublasOperation_t::CUBLAS_OP_T
            } else {
                sys::cublasOperation_t::CUBLAS_OP_N
            }
        };
        let (m, n, k) = (call.m as i64, call.n as i64, call.k as i64);
        let (a, av, sa) = call.a;
        let (b, bv, sb) = call.b;
        let sc = (call.m * call.n) as i64;
        let status = if f64 {
            let (alpha, beta) = (call.alpha, call.beta);
            // SAFETY: the caller guarantees the addresses hold every element the views and
            // batch strides reach; `alpha`/`beta` outlive the call.
            unsafe {
                sys::cublasDgemmStridedBatched_64(
                    self.handle,
                    op(av),
                    op(bv),
                    m,
                    n,
                    k,
                    &alpha,
                    a as *const f64,
                    av.ld as i64,
                    sa as i64,
                    b as *const f64,
                    bv.ld as i64,
                    sb as i64,
                    &beta,
                    call.c as *mut f64,
                    m,
                    sc,
                    call.batch as i64,
                )
            }
        } else {
            let (alpha, beta) = (call.alpha as f32, call.beta as f32);
            // SAFETY: as for the f64 call above.
            unsafe {
                sys::cublasSgemmStridedBatched_64(
                    self.handle,
                    op(av),
                    op(bv),
                    m,
                    n,
                    k,
                    &alpha,
                    a as *const f32,
                    av.ld as i64,
                    sa as i64,
                    b as *const f32,
                    bv.ld as i64,
                    sb as i64,
                    &beta,
                    call.c as *mut f32,
                    m,
                    sc,
                    call.batch as i64,
                )
            }
        };
        if let Err(e) = check("cublas gemm", status) {
            panic!("CUDA error: {e} ({call:?})");
        }
    }
}

impl Drop for Blas {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            // SAFETY: created by cublasCreate, destroyed once.
            unsafe {
                sys::cublasDestroy_v2(self.handle);
            }
        }
    }
}
