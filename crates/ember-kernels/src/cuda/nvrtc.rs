//! Run-time compilation of the kernel modules with NVRTC, to CUBIN for one `sm_XX`.
//!
//! PTX would be JIT-compiled by the driver, and PTX from a newer NVRTC is refused by an older
//! driver (`CUDA_ERROR_UNSUPPORTED_PTX_VERSION`); a CUBIN for the device's own architecture is
//! loaded as is by any driver of the same major CUDA version. A compile that prints anything
//! (a warning included) is an error carrying NVRTC's log.

use super::cache::{self, CacheKey, Origin};
use super::kernels::{module_name, module_source, Family};
use crate::dtype::DType;
use cudarc::nvrtc::sys;
use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt;
use std::sync::OnceLock;

/// A failed compile: NVRTC's status and log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// The module.
    pub module: String,
    /// The architecture (`90` for sm_90).
    pub arch: u32,
    /// NVRTC's result code (as text).
    pub status: String,
    /// The compile log (errors and warnings).
    pub log: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NVRTC failed to compile {} for sm_{} ({}):\n{}",
            self.module, self.arch, self.status, self.log
        )
    }
}

impl std::error::Error for CompileError {}

/// Whether libnvrtc can be loaded. Never panics.
pub fn is_available() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    // SAFETY: `is_culib_present` only tries to dlopen the candidate library names; loading
    // libnvrtc runs no code of ours and has no preconditions.
    *PRESENT.get_or_init(|| unsafe { sys::is_culib_present() })
}

/// NVRTC's `(major, minor)` version. Call only when [`is_available`].
pub fn version() -> (i32, i32) {
    static V: OnceLock<(i32, i32)> = OnceLock::new();
    *V.get_or_init(|| {
        let (mut major, mut minor) = (0 as c_int, 0 as c_int);
        // SAFETY: both pointers are valid for a write; the library is present (callers check
        // `is_available`, and cudarc's loader panics with a clear message otherwise).
        let r = unsafe { sys::nvrtcVersion(&mut major, &mut minor) };
        assert_eq!(
            r,
            sys::nvrtcResult::NVRTC_SUCCESS,
            "nvrtcVersion failed: {r:?}"
        );
        (major, minor)
    })
}

/// The options every module is compiled with. `--fmad=false` keeps `a * b + c` as two
/// roundings (Rust never fuses), so element formulas round as on the CPU; division and square
/// root are IEEE, denormals are kept.
pub fn options(arch: u32) -> Vec<String> {
    vec![
        format!("--gpu-architecture=sm_{arch}"),
        "--std=c++17".into(),
        "--fmad=false".into(),
        "--prec-div=true".into(),
        "--prec-sqrt=true".into(),
        "--ftz=false".into(),
    ]
}

/// Owns an `nvrtcProgram` and destroys it on drop.
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the program was created by nvrtcCreateProgram and is destroyed once.
        unsafe {
            sys::nvrtcDestroyProgram(&mut self.0);
        }
    }
}

impl Program {
    fn log(&self) -> String {
        let mut size = 0usize;
        // SAFETY: valid program; `size` is written by NVRTC.
        if unsafe { sys::nvrtcGetProgramLogSize(self.0, &mut size) }
            != sys::nvrtcResult::NVRTC_SUCCESS
        {
            return String::new();
        }
        let mut buf = vec![0 as c_char; size.max(1)];
        // SAFETY: `buf` holds `size` bytes, as NVRTC asked for.
        unsafe { sys::nvrtcGetProgramLog(self.0, buf.as_mut_ptr()) };
        // SAFETY: NVRTC writes a NUL-terminated string into `buf`; the last byte is NUL
        // either way (zero-initialised).
        let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
        s.to_string_lossy().into_owned()
    }
}

/// Compiles CUDA C `source` (named `name` in messages) to a CUBIN for `sm_{arch}`. Any output
/// in the log — a warning included — fails the compile. Call only when [`is_available`].
pub fn compile_cubin(name: &str, source: &str, arch: u32) -> Result<Vec<u8>, CompileError> {
    let err = |status: String, log: String| CompileError {
        module: name.to_string(),
        arch,
        status,
        log,
    };
    let src = CString::new(source).map_err(|_| err("source contains NUL".into(), String::new()))?;
    let cname = CString::new(name).map_err(|_| err("name contains NUL".into(), String::new()))?;
    let mut prog: sys::nvrtcProgram = std::ptr::null_mut();
    // SAFETY: `prog` is written by NVRTC; source and name are valid NUL-terminated strings
    // that outlive the call; no headers are passed (count 0, null arrays).
    let r = unsafe {
        sys::nvrtcCreateProgram(
            &mut prog,
            src.as_ptr(),
            cname.as_ptr(),
            0,
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if r != sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(err(format!("{r:?}"), String::new()));
    }
    let prog = Program(prog);
    let opts: Vec<CString> = options(arch)
        .into_iter()
        .map(|o| CString::new(o).unwrap())
        .collect();
    let ptrs: Vec<*const c_char> = opts.iter().map(|o| o.as_ptr()).collect();
    // SAFETY: `ptrs` holds `ptrs.len()` valid C strings (owned by `opts`, alive here).
    let r = unsafe { sys::nvrtcCompileProgram(prog.0, ptrs.len() as c_int, ptrs.as_ptr()) };
    let log = prog.log();
    if r != sys::nvrtcResult::NVRTC_SUCCESS || !log.trim().is_empty() {
        return Err(err(format!("{r:?}"), log));
    }
    let mut size = 0usize;
    // SAFETY: compiled program; `size` is written by NVRTC.
    let r = unsafe { sys::nvrtcGetCUBINSize(prog.0, &mut size) };
    if r != sys::nvrtcResult::NVRTC_SUCCESS || size == 0 {
        return Err(err(format!("nvrtcGetCUBINSize: {r:?}"), log));
    }
    let mut cubin = vec![0u8; size];
    // SAFETY: `cubin` has the `size` bytes NVRTC reported.
    let r = unsafe { sys::nvrtcGetCUBIN(prog.0, cubin.as_mut_ptr() as *mut c_char) };
    if r != sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(err(format!("nvrtcGetCUBIN: {r:?}"), log));
    }
    Ok(cubin)
}

/// The CUBIN of module (`family`, `dtype`) for `sm_{arch}`: from the disk cache when present,
/// else compiled (and cached). This is the one path both the backend and the NVRTC test use.
pub fn module_cubin(
    family: Family,
    dtype: DType,
    arch: u32,
) -> Result<(Vec<u8>, Origin), CompileError> {
    module_cubin_in(cache::cache_dir().as_deref(), family, dtype, arch)
}

/// [`module_cubin`] with the cache in `dir` (`None`: no disk cache).
pub fn module_cubin_in(
    dir: Option<&std::path::Path>,
    family: Family,
    dtype: DType,
    arch: u32,
) -> Result<(Vec<u8>, Origin), CompileError> {
    let name = module_name(family, dtype);
    let source = module_source(family, dtype);
    let key = CacheKey::new(&name, &source, arch, version(), &options(arch));
    cache::load_or_compile(dir, &key, || compile_cubin(&name, &source, arch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::kernels::{all_modules, expected_kernels};

    /// Compiles every kernel module for sm_80 and sm_90 through the backend's path (source
    /// generation, options, NVRTC, the disk cache in a fresh directory), failing on any error or
    /// warning, and checks that each CUBIN exports the kernels the launchers name. Without
    /// libnvrtc it prints why it skipped — unless `EMBER_REQUIRE_NVRTC=1` (CI), where that is a
    /// failure.
    #[test]
    fn compiles_every_kernel_module() {
        if !is_available() {
            let msg = "NVRTC test skipped: libnvrtc could not be loaded (put the nvidia-cuda-nvrtc wheel's nvidia/cu13/lib on LD_LIBRARY_PATH; see docs/cuda.md)";
            assert!(
                std::env::var("EMBER_REQUIRE_NVRTC").as_deref() != Ok("1"),
                "{msg}, and EMBER_REQUIRE_NVRTC=1 requires it"
            );
            eprintln!("{msg}");
            return;
        }
        let dir = std::env::temp_dir().join(format!("ember-nvrtc-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Every (arch, module) pair, compiled by a few threads (NVRTC is thread-safe for
        // separate programs).
        let jobs: Vec<(u32, Family, DType)> = [80, 90]
            .into_iter()
            .flat_map(|a| all_modules().into_iter().map(move |(f, d)| (a, f, d)))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 8);
        type Outcome = (
            u32,
            Family,
            DType,
            Result<(Vec<u8>, Origin), CompileError>,
            f64,
        );
        let results: Vec<Outcome> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(&(arch, f, d)) = jobs.get(i) else {
                                return out;
                            };
                            let t = std::time::Instant::now();
                            let r = module_cubin_in(Some(&dir), f, d, arch);
                            out.push((arch, f, d, r, t.elapsed().as_secs_f64()));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let (mut modules, mut kernels, mut bytes) = (0, 0, 0);
        let mut failures = Vec::new();
        let mut slowest = (0.0, String::new());
        for (arch, f, d, r, secs) in results {
            if secs > slowest.0 {
                slowest = (secs, format!("{} for sm_{arch}", module_name(f, d)));
            }
            match r {
                Ok((cubin, origin)) => {
                    assert_eq!(origin, Origin::Compiled);
                    for k in expected_kernels(f, d) {
                        let sym = format!("{k}\0");
                        assert!(
                            cubin.windows(sym.len()).any(|w| w == sym.as_bytes()),
                            "{} for sm_{arch} does not export {k}",
                            module_name(f, d)
                        );
                        kernels += 1;
                    }
                    modules += 1;
                    bytes += cubin.len();
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
        // A second lookup reads the cache instead of compiling.
        let (_, origin) = module_cubin_in(Some(&dir), Family::Elementwise, DType::F32, 90).unwrap();
        assert_eq!(origin, Origin::Disk);
        let _ = std::fs::remove_dir_all(&dir);
        let (maj, min) = version();
        println!(
            "NVRTC {maj}.{min}: compiled {modules} modules ({kernels} kernels, {} KiB of CUBIN) for sm_80 and sm_90; slowest {:.1} s ({})",
            bytes / 1024,
            slowest.0,
            slowest.1
        );
        assert!(modules > 0);
    }

    #[test]
    fn warnings_fail_the_compile() {
        if !is_available() {
            eprintln!("NVRTC test skipped: libnvrtc could not be loaded");
            return;
        }
        let src = "extern \"C\" __global__ void k(int* p) { int unused = 3; p[0] = 1; }";
        let e = compile_cubin("warn.cu", src, 90).unwrap_err();
        assert!(e.log.contains("unused"), "{e}");
        let e = compile_cubin("bad.cu", "extern \"C\" __global__ void k(", 90).unwrap_err();
        assert!(e.status.contains("COMPILATION"), "{e}");
        let ok = compile_cubin(
            "ok.cu",
            "extern \"C\" __global__ void k(int* p) { p[0] = 1; }",
            80,
        );
        assert!(ok.unwrap().starts_with(b"\x7fELF"));
    }
}
