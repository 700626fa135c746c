//! One CUDA device: its context, its stream, its caching allocator, its loaded kernel modules,
//! its cuBLAS handle and its error slot. Devices are created on first use and live for the
//! process.
//!
//! Work is queued on one stream per device (PyTorch's default-stream semantics): kernels run in
//! the order they were launched, so memory freed by the host can be reused by the next launch
//! at once. The host waits only when it copies data back (`to_cpu`), reads a scalar the API
//! returns on the host, or calls [`synchronize`]; each of those waits also checks the error
//! slot, where kernels record bad input (an index out of range, …), and panics with the
//! message — PyTorch's device-side asserts, reported at the next synchronisation likewise.

use super::alloc::{AllocError, CachingAllocator, DevPtr, MemoryStats, RawAlloc};
use super::kernels::{module_name, Family};
use super::{emulate, nvrtc};
use crate::dtype::DType;
use cudarc::driver::{result, sys, CudaContext, CudaModule};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// Why CUDA cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CudaError(pub String);

impl std::fmt::Display for CudaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CudaError {}

/// Whether the CUDA driver library can be loaded. Never panics.
pub fn driver_present() -> bool {
    static P: OnceLock<bool> = OnceLock::new();
    // SAFETY: only tries to dlopen the driver library's candidate names.
    *P.get_or_init(|| unsafe { sys::is_culib_present() })
}

/// Whether the cuBLAS library can be loaded. Never panics.
pub fn cublas_present() -> bool {
    static P: OnceLock<bool> = OnceLock::new();
    // SAFETY: only tries to dlopen cuBLAS's candidate names.
    *P.get_or_init(|| unsafe { cudarc::cublas::sys::is_culib_present() })
}

/// Number of CUDA devices the driver reports (0 without a driver or a GPU). Never panics.
pub fn device_count() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        if emulate::enabled() {
            return 1;
        }
        if !driver_present() {
            return 0;
        }
        if result::init().is_err() {
            return 0;
        }
        result::device::get_count().map_or(0, |n| n.max(0) as usize)
    })
}

/// Why CUDA is unusable, or `None` when at least one device and every library is there.
pub fn unavailable_reason() -> Option<String> {
    if emulate::enabled() {
        return None;
    }
    if !driver_present() {
        return Some("the CUDA driver library (libcuda.so) could not be loaded".into());
    }
    if device_count() == 0 {
        return Some("the CUDA driver reports no device".into());
    }
    if !nvrtc::is_available() {
        return Some("NVRTC (libnvrtc.so.13) could not be loaded: install the nvidia-cuda-nvrtc wheel and put its nvidia/cu13/lib on LD_LIBRARY_PATH".into());
    }
    if !cublas_present() {
        return Some("cuBLAS (libcublas.so.13) could not be loaded: install the nvidia-cublas wheel and put its nvidia/cu13/lib on LD_LIBRARY_PATH".into());
    }
    None
}

/// `torch.cuda.is_available()`: a device exists and the driver, NVRTC and cuBLAS load.
pub fn is_available() -> bool {
    unavailable_reason().is_none()
}

/// `cuMemAlloc`/`cuMemFree` for the caching allocator.
#[derive(Debug)]
pub struct DriverAlloc {
    ctx: Arc<CudaContext>,
}

impl RawAlloc for DriverAlloc {
    fn alloc(&mut self, bytes: usize) -> Result<DevPtr, AllocError> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| AllocError::Driver(format!("{e:?}")))?;
        // SAFETY: the context is current; the memory is only handed out through the caching
        // allocator, which tracks its size.
        match unsafe { result::malloc_sync(bytes) } {
            Ok(p) => Ok(p),
            Err(e) if e.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY => {
                Err(AllocError::OutOfMemory {
                    requested: bytes,
                    allocated: 0,
                    reserved: 0,
                })
            }
            Err(e) => Err(AllocError::Driver(format!("{e:?}"))),
        }
    }

    fn free(&mut self, ptr: DevPtr, _bytes: usize) {
        let _ = self.ctx.bind_to_thread();
        // SAFETY: `ptr` came from `malloc_sync` and the caching allocator frees each segment
        // once, after the device was synchronised (see `Device::empty_cache`).
        let _ = unsafe { result::free_sync(ptr) };
    }
}

/// The raw allocator of a device: the driver, or host memory for the emulator.
#[derive(Debug)]
pub enum Raw {
    /// `cuMemAlloc`.
    Driver(DriverAlloc),
    /// Host memory (`EMBER_CUDA_EMULATE=1`).
    Host(emulate::HostAlloc),
}

impl RawAlloc for Raw {
    fn alloc(&mut self, bytes: usize) -> Result<DevPtr, AllocError> {
        match self {
            Raw::Driver(d) => d.alloc(bytes),
            Raw::Host(h) => h.alloc(bytes),
        }
    }
    fn free(&mut self, ptr: DevPtr, bytes: usize) {
        match self {
            Raw::Driver(d) => d.free(ptr, bytes),
            Raw::Host(h) => h.free(ptr, bytes),
        }
    }
}

/// A loaded module: a CUDA module, or the emulator's host library.
enum Loaded {
    Driver(Arc<CudaModule>),
    Emulated(emulate::EmuModule),
}

/// A loaded module and the functions looked up in it so far.
struct Module {
    module: Loaded,
    functions: RwLock<HashMap<&'static str, sys::CUfunction>>,
}

// SAFETY: CUfunction handles are plain identifiers valid in any thread while the module lives;
// the map is behind a lock.
unsafe impl Send for Module {}
// SAFETY: as above.
unsafe impl Sync for Module {}

/// Where kernels report errors: `[code, a, b, c]` in device memory, copied into a pinned host
/// buffer at each synchronisation (device atomics on mapped host memory need PCIe atomics,
/// which not every system has).
struct ErrorSlot {
    host: *mut u64,
    dev: u64,
}

// SAFETY: the host buffer is written by the stream's copy and read only after the stream
// synchronised; the device slot is only touched by kernels and stream-ordered copies.
unsafe impl Send for ErrorSlot {}
// SAFETY: as above.
unsafe impl Sync for ErrorSlot {}

/// The CUBINs compiled or read in this process, by (family, dtype, arch): a second device of
/// the same architecture loads them without asking NVRTC or the disk again.
fn cubin(family: Family, dtype: DType, arch: u32) -> Result<Arc<Vec<u8>>, String> {
    type Cubins = Mutex<HashMap<(Family, DType, u32), Arc<Vec<u8>>>>;
    static CUBINS: OnceLock<Cubins> = OnceLock::new();
    let map = CUBINS.get_or_init(Default::default);
    if let Some(c) = map.lock().unwrap().get(&(family, dtype, arch)) {
        return Ok(c.clone());
    }
    // Compile outside the lock: other modules may compile meanwhile.
    let (bin, _) = nvrtc::module_cubin(family, dtype, arch).map_err(|e| e.to_string())?;
    let bin = Arc::new(bin);
    map.lock()
        .unwrap()
        .insert((family, dtype, arch), bin.clone());
    Ok(bin)
}

type ModuleSlot = OnceLock<Result<Module, String>>;

/// How a device runs work: the CUDA driver, or the host emulator (tests without a GPU).
enum Backend {
    Driver {
        ctx: Arc<CudaContext>,
        stream: sys::CUstream,
    },
    Emulated,
}

/// A CUDA device in use by this process.
pub struct Device {
    ordinal: usize,
    backend: Backend,
    arch: u32,
    name: String,
    alloc: Mutex<CachingAllocator<Raw>>,
    modules: Vec<ModuleSlot>,
    errors: ErrorSlot,
    blas: OnceLock<Result<super::blas::Blas, String>>,
}

// SAFETY: the raw stream handle may be used from any thread once the context is bound (every
// entry point binds it); all mutable state is behind locks.
unsafe impl Send for Device {}
// SAFETY: as above.
unsafe impl Sync for Device {}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cuda:{} ({}, sm_{})", self.ordinal, self.name, self.arch)
    }
}

type DeviceSlot = OnceLock<Result<Arc<Device>, CudaError>>;

fn devices() -> &'static Vec<DeviceSlot> {
    static D: OnceLock<Vec<DeviceSlot>> = OnceLock::new();
    D.get_or_init(|| (0..device_count()).map(|_| OnceLock::new()).collect())
}

/// Panics with a CUDA error in PyTorch's style.
#[track_caller]
pub fn fail(what: &str, e: impl std::fmt::Debug) -> ! {
    panic!("CUDA error: {what}: {e:?}")
}

impl Device {
    /// The device with this ordinal, created on first use.
    pub fn get(ordinal: usize) -> Result<Arc<Device>, CudaError> {
        if let Some(why) = unavailable_reason() {
            return Err(CudaError(format!(
                "cuda:{ordinal} was requested but CUDA is not available: {why}"
            )));
        }
        let slot = devices().get(ordinal).ok_or_else(|| {
            CudaError(format!(
                "CUDA error: invalid device ordinal {ordinal} ({} CUDA device(s) available)",
                device_count()
            ))
        })?;
        slot.get_or_init(|| Device::create(ordinal).map(Arc::new))
            .clone()
    }

    /// [`Device::get`], panicking with its message (for ops handed a `Device::Cuda(i)`).
    #[track_caller]
    pub fn expect(ordinal: usize) -> Arc<Device> {
        Device::get(ordinal).unwrap_or_else(|e| panic!("{e}"))
    }

    fn create(ordinal: usize) -> Result<Device, CudaError> {
        if emulate::enabled() {
            let host = Box::into_raw(Box::new([0u64; 4])) as *mut u64;
            return Ok(Device {
                ordinal,
                backend: Backend::Emulated,
                arch: 90,
                name: "host emulation".into(),
                alloc: Mutex::new(CachingAllocator::new(Raw::Host(emulate::HostAlloc))),
                modules: (0..Family::ALL.len() * DType::ALL.len())
                    .map(|_| OnceLock::new())
                    .collect(),
                // One host buffer serves as both sides of the slot.
                errors: ErrorSlot {
                    host,
                    dev: host as u64,
                },
                blas: OnceLock::new(),
            });
        }
        let e = |what: &str, err: result::DriverError| {
            CudaError(format!("CUDA error on cuda:{ordinal}: {what}: {err:?}"))
        };
        let ctx = CudaContext::new(ordinal).map_err(|x| e("creating the context", x))?;
        // SAFETY: Ember never uses cudarc's CudaSlice (whose cross-stream bookkeeping event
        // tracking is), only raw allocations ordered on one stream.
        unsafe { ctx.disable_event_tracking() };
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|x| e("reading the compute capability", x))?;
        let name = ctx.name().unwrap_or_else(|_| "unknown".into());
        let stream = result::stream::create(result::stream::StreamKind::NonBlocking)
            .map_err(|x| e("creating the stream", x))?;
        // SAFETY: the context is current (CudaContext::new binds it); 32 bytes of device
        // memory, zeroed before any kernel can see it, and 32 bytes of pinned host memory.
        let errors = unsafe {
            let host = result::malloc_host(32, 0).map_err(|x| e("allocating the error slot", x))?
                as *mut u64;
            std::ptr::write_bytes(host, 0, 4);
            let dev = result::malloc_sync(32).map_err(|x| e("allocating the error slot", x))?;
            result::memset_d8_sync(dev, 0, 32).map_err(|x| e("clearing the error slot", x))?;
            ErrorSlot { host, dev }
        };
        Ok(Device {
            ordinal,
            alloc: Mutex::new(CachingAllocator::new(Raw::Driver(DriverAlloc {
                ctx: ctx.clone(),
            }))),
            backend: Backend::Driver { ctx, stream },
            arch: (major * 10 + minor) as u32,
            name,
            modules: (0..Family::ALL.len() * DType::ALL.len())
                .map(|_| OnceLock::new())
                .collect(),
            errors,
            blas: OnceLock::new(),
        })
    }

    /// The ordinal.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// Compute capability as `major * 10 + minor`.
    pub fn arch(&self) -> u32 {
        self.arch
    }

    /// The device's name (`NVIDIA H200`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is the host emulator (`EMBER_CUDA_EMULATE=1`).
    pub fn is_emulated(&self) -> bool {
        matches!(self.backend, Backend::Emulated)
    }

    /// The stream all work of this device is queued on (null for the emulator).
    pub fn stream(&self) -> sys::CUstream {
        match &self.backend {
            Backend::Driver { stream, .. } => *stream,
            Backend::Emulated => std::ptr::null_mut(),
        }
    }

    /// Makes this device's context current on the calling thread.
    pub fn bind(&self) {
        if let Backend::Driver { ctx, .. } = &self.backend {
            if let Err(e) = ctx.bind_to_thread() {
                fail("binding the context", e);
            }
        }
    }

    /// `bytes` bytes of device memory from the caching allocator (none for 0 bytes).
    pub fn alloc(self: &Arc<Self>, bytes: usize) -> DevBuf {
        if bytes == 0 {
            return DevBuf {
                ptr: 0,
                bytes: 0,
                dev: self.clone(),
            };
        }
        let r = self.alloc.lock().unwrap().alloc(bytes, 0);
        match r {
            Ok((ptr, _)) => DevBuf {
                ptr,
                bytes,
                dev: self.clone(),
            },
            Err(e) => panic!("{e} (on cuda:{})", self.ordinal),
        }
    }

    /// The allocator's counters.
    pub fn memory_stats(&self) -> MemoryStats {
        self.alloc.lock().unwrap().stats()
    }

    /// Restarts the allocator's peak counters.
    pub fn reset_peak_memory_stats(&self) {
        self.alloc.lock().unwrap().reset_peak();
    }

    /// Returns unused cached memory to the driver (after the device finished its work, since a
    /// block freed by the host may still be read by queued kernels).
    pub fn empty_cache(&self) {
        self.synchronize();
        self.alloc.lock().unwrap().empty_cache();
    }

    /// Waits for all queued work, then panics if a kernel reported an error.
    pub fn synchronize(&self) {
        if let Backend::Driver { stream, .. } = &self.backend {
            self.bind();
            // SAFETY: the error slot's device and host buffers are 32 bytes each and live as
            // long as the device; the copy is ordered after every kernel queued so far, and the
            // stream synchronisation completes it before `check_errors` reads the host buffer.
            unsafe {
                let r = sys::cuMemcpyDtoHAsync_v2(
                    self.errors.host as *mut c_void,
                    self.errors.dev,
                    32,
                    *stream,
                );
                if r != sys::CUresult::CUDA_SUCCESS {
                    fail("reading the error slot", result::DriverError(r));
                }
                if let Err(e) = result::stream::synchronize(*stream) {
                    fail("synchronizing the device", e);
                }
            }
        }
        self.check_errors();
    }

    /// The device address of the error slot, for kernels that validate their input.
    pub fn error_slot(&self) -> u64 {
        self.errors.dev
    }

    /// Panics with the first error a kernel recorded up to the last [`Device::synchronize`]
    /// (and clears it, so that later computations can report again).
    fn check_errors(&self) {
        // SAFETY: the host buffer is 4 valid u64s of pinned memory, filled by the copy the
        // synchronisation completed (the emulator's kernels write it directly and have
        // finished). Volatile: it was written behind the compiler's back.
        let [code, a, b, c] =
            std::array::from_fn(|i| unsafe { std::ptr::read_volatile(self.errors.host.add(i)) });
        if code == 0 {
            return;
        }
        // SAFETY: as above; the device slot is cleared in stream order (no kernel is running:
        // the stream just synchronised).
        unsafe {
            std::ptr::write_bytes(self.errors.host, 0, 4);
            if let Backend::Driver { stream, .. } = &self.backend {
                let _ = sys::cuMemsetD8Async(self.errors.dev, 0, 32, *stream);
            }
        }
        panic!("{}", super::errors::message(code, a, b, c));
    }

    /// The function `name` of module (`family`, `dtype`), compiling or loading the module on
    /// first use.
    pub fn function(&self, family: Family, dtype: DType, name: &'static str) -> sys::CUfunction {
        let slot = &self.modules[family.index() * DType::ALL.len() + dtype as usize];
        let module = slot.get_or_init(|| {
            let module = match &self.backend {
                Backend::Emulated => Loaded::Emulated(emulate::EmuModule::load(family, dtype)?),
                Backend::Driver { ctx, .. } => {
                    let bin = cubin(family, dtype, self.arch)?;
                    self.bind();
                    Loaded::Driver(
                        ctx.load_module(cudarc::nvrtc::Ptx::from_binary(bin.to_vec()))
                            .map_err(|e| {
                                format!(
                                    "loading {} for sm_{} on cuda:{}: {e:?}",
                                    module_name(family, dtype),
                                    self.arch,
                                    self.ordinal
                                )
                            })?,
                    )
                }
            };
            Ok(Module {
                module,
                functions: RwLock::new(HashMap::new()),
            })
        });
        let module = match module {
            Ok(m) => m,
            Err(e) => panic!("CUDA kernels unavailable: {e}"),
        };
        if let Some(&f) = module.functions.read().unwrap().get(name) {
            return f;
        }
        let f = match &module.module {
            Loaded::Driver(m) => m
                .load_function(name)
                .unwrap_or_else(|e| fail(&format!("kernel {name} not found"), e))
                .cu_function(),
            // The emulator's launcher travels in the CUfunction slot; `launch` casts it back.
            Loaded::Emulated(m) => m
                .kernel(name)
                .unwrap_or_else(|| panic!("CUDA emulator: kernel {name} not found"))
                as sys::CUfunction,
        };
        module.functions.write().unwrap().insert(name, f);
        f
    }

    /// Launches `f` on this device's stream. `args` points at each kernel argument (values
    /// that outlive the call; the driver copies them before returning).
    ///
    /// # Safety
    /// `args` must match the kernel's parameter list in number, order and layout, and every
    /// device address in them must be valid for the accesses the kernel makes.
    pub unsafe fn launch(
        &self,
        f: sys::CUfunction,
        grid: (u32, u32, u32),
        block: u32,
        shared: u32,
        args: &mut [*mut c_void],
    ) {
        if grid.0 == 0 || grid.1 == 0 || grid.2 == 0 {
            return;
        }
        let stream = match &self.backend {
            Backend::Driver { stream, .. } => *stream,
            Backend::Emulated => {
                // `f` is an emulator launcher (see `function`); shared memory is a fixed
                // 64 KiB buffer in the emulator.
                assert!(
                    shared <= 1 << 16,
                    "CUDA emulator: {shared} bytes of shared memory"
                );
                // SAFETY: on the emulated device `f` came from the emulator and addresses are
                // host memory; the caller's contract covers the arguments.
                return unsafe { emulate::launch(f as *mut c_void, grid, block, args) };
            }
        };
        self.bind();
        // SAFETY: `f` is a function of a module loaded in this device's context (bound above),
        // `stream` belongs to it, and the caller guarantees `args` match the kernel.
        let r = unsafe {
            sys::cuLaunchKernel(
                f,
                grid.0,
                grid.1,
                grid.2,
                block,
                1,
                1,
                shared,
                stream,
                args.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        };
        if r != sys::CUresult::CUDA_SUCCESS {
            fail("launching a kernel", result::DriverError(r));
        }
    }

    /// Copies `bytes` bytes between device buffers, queued on the stream.
    pub fn copy_dtod(&self, dst: u64, src: u64, bytes: usize) {
        if bytes == 0 {
            return;
        }
        match &self.backend {
            // SAFETY: callers pass ranges inside live buffers (host memory here).
            Backend::Emulated => unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, bytes) },
            Backend::Driver { stream, .. } => {
                self.bind();
                // SAFETY: callers pass ranges inside live buffers of this device.
                let r = unsafe { sys::cuMemcpyDtoDAsync_v2(dst, src, bytes, *stream) };
                if r != sys::CUresult::CUDA_SUCCESS {
                    fail("copying on the device", result::DriverError(r));
                }
            }
        }
    }

    /// Sets `bytes` bytes to zero, queued on the stream.
    pub fn zero(&self, dst: u64, bytes: usize) {
        if bytes == 0 {
            return;
        }
        match &self.backend {
            // SAFETY: callers pass a range inside a live buffer (host memory here).
            Backend::Emulated => unsafe { std::ptr::write_bytes(dst as *mut u8, 0, bytes) },
            Backend::Driver { stream, .. } => {
                self.bind();
                // SAFETY: callers pass a range inside a live buffer of this device.
                let r = unsafe { sys::cuMemsetD8Async(dst, 0, bytes, *stream) };
                if r != sys::CUresult::CUDA_SUCCESS {
                    fail("clearing device memory", result::DriverError(r));
                }
            }
        }
    }

    /// Copies host values to the device (waits for the copy: the source is pageable memory).
    pub fn upload<T: Copy>(&self, dst: u64, src: &[T]) {
        if src.is_empty() {
            return;
        }
        match &self.backend {
            // SAFETY: `dst` has room for `src` (callers allocate it so).
            Backend::Emulated => unsafe {
                std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut T, src.len())
            },
            Backend::Driver { stream, .. } => {
                self.bind();
                // SAFETY: `dst` has room for `src`; the copy of pageable memory is staged
                // before `cuMemcpyHtoDAsync` returns, so `src` may be dropped after.
                unsafe {
                    if let Err(e) = result::memcpy_htod_async(dst, src, *stream) {
                        fail("copying to the device", e);
                    }
                }
            }
        }
    }

    /// Copies device values to the host and waits for them (then checks the error slot).
    pub fn download<T: Copy>(&self, dst: &mut [T], src: u64) {
        if !dst.is_empty() {
            match &self.backend {
                // SAFETY: `src` holds at least `dst.len()` values of `T` (callers guarantee it).
                Backend::Emulated => unsafe {
                    std::ptr::copy_nonoverlapping(src as *const T, dst.as_mut_ptr(), dst.len())
                },
                Backend::Driver { stream, .. } => {
                    self.bind();
                    // SAFETY: `src` holds at least `dst.len()` values of `T`; the
                    // synchronisation below completes the copy before `dst` is read.
                    unsafe {
                        if let Err(e) = result::memcpy_dtoh_async(dst, src, *stream) {
                            fail("copying to the host", e);
                        }
                    }
                }
            }
        }
        self.synchronize();
    }

    /// cuBLAS on this device's stream, created on first use.
    pub fn blas(&self) -> &super::blas::Blas {
        let b = self.blas.get_or_init(|| match &self.backend {
            Backend::Emulated => Ok(super::blas::Blas::emulated()),
            Backend::Driver { stream, .. } => {
                self.bind();
                super::blas::Blas::new(*stream)
            }
        });
        match b {
            Ok(b) => b,
            Err(e) => panic!("cuBLAS unavailable on cuda:{}: {e}", self.ordinal),
        }
    }
}

/// A block of device memory from a device's caching allocator, returned to it on drop.
pub struct DevBuf {
    ptr: u64,
    bytes: usize,
    dev: Arc<Device>,
}

impl DevBuf {
    /// The device address (0 for an empty buffer).
    pub fn ptr(&self) -> u64 {
        self.ptr
    }

    /// Size in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The device holding the memory.
    pub fn device(&self) -> &Arc<Device> {
        &self.dev
    }
}

impl Drop for DevBuf {
    fn drop(&mut self) {
        if self.bytes > 0 {
            // Work already queued may still use the block: the allocator hands it out only to
            // later work on the same stream, which runs after.
            self.dev.alloc.lock().unwrap().free(self.ptr);
        }
    }
}

impl std::fmt::Debug for DevBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DevBuf({:#x}, {} bytes, cuda:{})",
            self.ptr, self.bytes, self.dev.ordinal
        )
    }
}

/// Waits for all work queued on every device in use (`torch.cuda.synchronize()`).
pub fn synchronize() {
    for d in devices().iter().filter_map(|s| s.get()).flatten() {
        d.synchronize();
    }
}

/// The kernel argument pointer array of a launch: `cuda_args![a, b, c]` points at each of
/// the local variables `a`, `b`, `c` (variables, not expressions: a pointer to a temporary
/// would dangle by the time of the launch).
#[macro_export]
#[doc(hidden)]
macro_rules! cuda_args {
    ($($a:ident),* $(,)?) => {
        [$(&$a as *const _ as *mut ::std::ffi::c_void),*]
    };
}
