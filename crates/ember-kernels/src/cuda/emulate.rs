//! A CUDA device emulated on the host, for tests on machines without a GPU
//! (`EMBER_CUDA_EMULATE=1`; never used otherwise).
//!
//! The same kernel sources are compiled by the host C++ compiler (`g++`, or `$CXX`) with the
//! prelude `kernels/emulate.h`, which maps the CUDA dialect onto threads: a launch runs the
//! grid's blocks in order, each block's threads as real threads with a barrier for
//! `__syncthreads` and a shared buffer for dynamic shared memory. Device memory is host memory,
//! copies are `memcpy`, and cuBLAS is a reference GEMM with cuBLAS's column-major semantics.
//! Everything above — `CudaStorage`, the launch plumbing, the argument structs, the allocator —
//! is the real code, so the GPU tests exercise all of it except the driver itself and cuBLAS.

use super::alloc::{AllocError, DevPtr, RawAlloc};
use super::blas::GemmCall;
use super::cache::{atomic_write, fnv128};
use super::kernels::{emulator_source, module_name, Family};
use crate::dtype::DType;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Whether `EMBER_CUDA_EMULATE=1`: device 0 is then an emulated device.
pub fn enabled() -> bool {
    static E: OnceLock<bool> = OnceLock::new();
    *E.get_or_init(|| std::env::var("EMBER_CUDA_EMULATE").as_deref() == Ok("1"))
}

#[link(name = "dl")]
extern "C" {
    fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *const c_char;
}

const RTLD_NOW: c_int = 2;

/// The compiler flags of an emulated module.
const FLAGS: [&str; 7] = [
    "-std=c++20",
    "-O1",
    "-shared",
    "-fPIC",
    "-pthread",
    "-w",
    "-xc++",
];

/// A module compiled for the host and loaded.
pub struct EmuModule {
    lookup: unsafe extern "C" fn(*const c_char) -> *mut c_void,
}

// SAFETY: the library stays loaded for the process; the lookup function is pure.
unsafe impl Send for EmuModule {}
// SAFETY: as above.
unsafe impl Sync for EmuModule {}

fn last_dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string owned by libdl.
    unsafe {
        let e = dlerror();
        if e.is_null() {
            "unknown error".into()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

impl EmuModule {
    /// Compiles (or finds, from an earlier process) and loads module (`family`, `dtype`).
    pub fn load(family: Family, dtype: DType) -> Result<EmuModule, String> {
        let src = emulator_source(family, dtype);
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
        let hash = fnv128(&[src.as_bytes(), cxx.as_bytes(), FLAGS.join(" ").as_bytes()]);
        let dir = std::env::temp_dir().join("ember-cuda-emulator");
        let stem = module_name(family, dtype).replace(".cu", "");
        let so: PathBuf = dir.join(format!("{stem}-{hash:032x}.so"));
        if !so.exists() {
            let cpp = dir.join(format!("{stem}-{hash:032x}.{}.cpp", std::process::id()));
            atomic_write(&cpp, src.as_bytes()).map_err(|e| format!("writing {cpp:?}: {e}"))?;
            let tmp = so.with_extension(format!("{}.tmp", std::process::id()));
            let out = std::process::Command::new(&cxx)
                .args(FLAGS)
                .arg(&cpp)
                .arg("-o")
                .arg(&tmp)
                .output()
                .map_err(|e| format!("running {cxx} for the CUDA emulator: {e}"))?;
            let _ = std::fs::remove_file(&cpp);
            if !out.status.success() {
                return Err(format!(
                    "{cxx} failed on {}:\n{}",
                    module_name(family, dtype),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::fs::rename(&tmp, &so).map_err(|e| format!("renaming {tmp:?}: {e}"))?;
        }
        let path = CString::new(so.to_string_lossy().into_owned()).unwrap();
        // SAFETY: loading a library we just compiled from our own sources; its static
        // initialisers only set up the emulator's globals.
        let handle = unsafe { dlopen(path.as_ptr(), RTLD_NOW) };
        if handle.is_null() {
            return Err(format!("dlopen {so:?}: {}", last_dl_error()));
        }
        // SAFETY: `handle` is a loaded library; the symbol name is a valid C string.
        let sym = unsafe { dlsym(handle, c"ember_emu_kernel".as_ptr()) };
        if sym.is_null() {
            return Err(format!(
                "{so:?} has no ember_emu_kernel: {}",
                last_dl_error()
            ));
        }
        Ok(EmuModule {
            // SAFETY: `ember_emu_kernel` is defined with exactly this signature in
            // `kernels::emulator_source`.
            lookup: unsafe {
                std::mem::transmute::<*mut c_void, unsafe extern "C" fn(*const c_char) -> *mut c_void>(
                    sym,
                )
            },
        })
    }

    /// The host launcher of kernel `name`, or `None` when the module has no such kernel.
    pub fn kernel(&self, name: &str) -> Option<*mut c_void> {
        let n = CString::new(name).ok()?;
        // SAFETY: `lookup` compares `n` with the module's kernel names and returns a function
        // pointer or null.
        let p = unsafe { (self.lookup)(n.as_ptr()) };
        (!p.is_null()).then_some(p)
    }
}

/// A kernel's host launcher (see `EMU_KERNEL` in `emulate.h`).
type Launcher = unsafe extern "C" fn(u32, u32, u32, u32, *mut *mut c_void);

/// Runs an emulated kernel over `grid` blocks of `block` threads.
///
/// # Safety
/// `kernel` must come from [`EmuModule::kernel`]; `args` must match the kernel's parameters
/// and every address in them be host memory valid for the kernel's accesses.
pub unsafe fn launch(
    kernel: *mut c_void,
    grid: (u32, u32, u32),
    block: u32,
    args: &mut [*mut c_void],
) {
    // SAFETY: `kernel` is an emulator launcher symbol (the caller's contract), whose C type is
    // `Launcher`; the arguments match the kernel's parameters and reach live host memory.
    unsafe {
        let f = std::mem::transmute::<*mut c_void, Launcher>(kernel);
        f(grid.0, grid.1, grid.2, block, args.as_mut_ptr());
    }
}

/// "Device" memory of the emulator: 512-byte aligned host allocations.
#[derive(Debug, Default)]
pub struct HostAlloc;

impl RawAlloc for HostAlloc {
    fn alloc(&mut self, bytes: usize) -> Result<DevPtr, AllocError> {
        let layout = std::alloc::Layout::from_size_align(bytes, 512)
            .map_err(|e| AllocError::Driver(e.to_string()))?;
        // SAFETY: `bytes > 0` (the caching allocator never asks for 0).
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        if p.is_null() {
            return Err(AllocError::OutOfMemory {
                requested: bytes,
                allocated: 0,
                reserved: 0,
            });
        }
        Ok(p as DevPtr)
    }

    fn free(&mut self, ptr: DevPtr, bytes: usize) {
        // SAFETY: `ptr` came from `alloc` with this size and alignment.
        unsafe {
            std::alloc::dealloc(
                ptr as *mut u8,
                std::alloc::Layout::from_size_align_unchecked(bytes, 512),
            )
        };
    }
}

/// cuBLAS's strided-batched GEMM, by definition (column-major, `op(A)` per the views), in the
/// dtype's arithmetic.
///
/// # Safety
/// The addresses in `call` must be host memory holding every element the views reach.
pub unsafe fn gemm(f64: bool, call: &GemmCall) {
    unsafe fn go<T: Copy + Into<f64> + FromF64>(call: &GemmCall) {
        let (m, n, k) = (call.m as usize, call.n as usize, call.k as usize);
        let (a, av, sa) = call.a;
        let (b, bv, sb) = call.b;
        // SAFETY: the caller guarantees every element the views and batch strides reach is
        // live host memory of the element type; the output block of each batch is exclusive.
        unsafe {
            for bi in 0..call.batch as usize {
                let ap = (a as *const T).add(bi * sa as usize);
                let bp = (b as *const T).add(bi * sb as usize);
                let cp = (call.c as *mut T).add(bi * m * n);
                for j in 0..n {
                    for i in 0..m {
                        let mut acc = 0f64;
                        for p in 0..k {
                            let x = if av.trans {
                                *ap.add(p + i * av.ld as usize)
                            } else {
                                *ap.add(i + p * av.ld as usize)
                            };
                            let y = if bv.trans {
                                *bp.add(j + p * bv.ld as usize)
                            } else {
                                *bp.add(p + j * bv.ld as usize)
                            };
                            acc += x.into() * y.into();
                        }
                        let c = cp.add(i + j * m);
                        let old = if call.beta == 0.0 {
                            0.0
                        } else {
                            call.beta * (*c).into()
                        };
                        *c = T::from_f64(call.alpha * acc + old);
                    }
                }
            }
        }
    }
    // SAFETY: the caller's contract, passed on.
    unsafe {
        if f64 {
            go::<f64>(call)
        } else {
            go::<f32>(call)
        }
    }
}

/// Rounding from f64.
trait FromF64 {
    fn from_f64(v: f64) -> Self;
}
impl FromF64 for f32 {
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
}
impl FromF64 for f64 {
    fn from_f64(v: f64) -> f64 {
        v
    }
}
