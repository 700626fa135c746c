//! The CUDA backend.
//!
//! `CudaStorage` holds a tensor's elements on a GPU and has the methods of `CpuStorage`; its
//! kernels are CUDA C sources (`kernels/*.cu`) compiled at run time by NVRTC to a CUBIN for the
//! device's own architecture and cached on disk. Memory comes from a caching allocator, work
//! is queued on one stream per device, and the host waits only when it reads data back.
//!
//! The host logic (the caching allocator, kernel geometry and launch configurations, the
//! compiled-module cache, error messages and the kernel sources with their per-dtype
//! instantiations) is plain Rust, built and unit-tested with or without the `cuda` feature;
//! everything that talks to a driver is behind the feature. See `docs/cuda.md`.

pub mod alloc;
pub mod cache;
pub mod errors;
pub mod geometry;
pub mod kernels;
pub mod params;

#[cfg(feature = "cuda")]
pub mod blas;
#[cfg(feature = "cuda")]
mod conv;
#[cfg(feature = "cuda")]
mod creation;
#[cfg(feature = "cuda")]
pub mod device;
#[cfg(feature = "cuda")]
mod elementwise;
#[cfg(feature = "cuda")]
pub mod emulate;
#[cfg(feature = "cuda")]
mod index;
#[cfg(feature = "cuda")]
pub mod loss;
#[cfg(feature = "cuda")]
mod matmul;
#[cfg(feature = "cuda")]
pub mod nvrtc;
#[cfg(feature = "cuda")]
mod optim;
#[cfg(feature = "cuda")]
mod reduce;
#[cfg(feature = "cuda")]
mod softmax;
#[cfg(feature = "cuda")]
pub mod storage;

#[cfg(feature = "cuda")]
#[doc(hidden)]
pub use conv::set_col_budget;
#[cfg(feature = "cuda")]
pub use storage::CudaStorage;

pub use alloc::MemoryStats;

/// Whether a CUDA device can be used (`torch.cuda.is_available()`): this build has the `cuda`
/// feature, a driver and a GPU are present, and NVRTC and cuBLAS load. Never panics.
pub fn is_available() -> bool {
    #[cfg(feature = "cuda")]
    {
        device::is_available()
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}

/// Number of CUDA devices (`torch.cuda.device_count()`); 0 without the `cuda` feature, a
/// driver or a GPU. Never panics.
pub fn device_count() -> usize {
    #[cfg(feature = "cuda")]
    {
        device::device_count()
    }
    #[cfg(not(feature = "cuda"))]
    {
        0
    }
}

/// Why CUDA cannot be used, or `None` when it can.
pub fn unavailable_reason() -> Option<String> {
    #[cfg(feature = "cuda")]
    {
        device::unavailable_reason()
    }
    #[cfg(not(feature = "cuda"))]
    {
        Some("this build of Ember has no CUDA support (enable the `cuda` feature)".into())
    }
}

#[cfg(feature = "cuda")]
pub use blas::{allow_tf32, set_allow_tf32};

/// Waits for all work queued on every device in use (`torch.cuda.synchronize()`), then
/// reports any error a kernel recorded.
#[cfg(feature = "cuda")]
pub fn synchronize() {
    device::synchronize()
}

/// The caching allocator's counters of device `ordinal` (`torch.cuda.memory_stats`).
#[cfg(feature = "cuda")]
pub fn memory_stats(ordinal: usize) -> MemoryStats {
    device::Device::expect(ordinal).memory_stats()
}

/// Bytes held by live tensors on device `ordinal` (`torch.cuda.memory_allocated`).
#[cfg(feature = "cuda")]
pub fn memory_allocated(ordinal: usize) -> usize {
    memory_stats(ordinal).allocated
}

/// The peak of [`memory_allocated`] (`torch.cuda.max_memory_allocated`).
#[cfg(feature = "cuda")]
pub fn max_memory_allocated(ordinal: usize) -> usize {
    memory_stats(ordinal).max_allocated
}

/// Bytes the caching allocator holds on device `ordinal` (`torch.cuda.memory_reserved`).
#[cfg(feature = "cuda")]
pub fn memory_reserved(ordinal: usize) -> usize {
    memory_stats(ordinal).reserved
}

/// Restarts the peak counters (`torch.cuda.reset_peak_memory_stats`).
#[cfg(feature = "cuda")]
pub fn reset_peak_memory_stats(ordinal: usize) {
    device::Device::expect(ordinal).reset_peak_memory_stats()
}

/// Returns cached, unused device memory to the driver (`torch.cuda.empty_cache`).
#[cfg(feature = "cuda")]
pub fn empty_cache(ordinal: usize) {
    device::Device::expect(ordinal).empty_cache()
}
