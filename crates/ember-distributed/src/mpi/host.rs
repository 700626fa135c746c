//! Host memory of CPU tensors as MPI sees it: the address of a contiguous view's first
//! element, fresh receive buffers (from the CPU backend's buffer pool, so repeated collectives
//! of one size do not fault in new pages), and writing a received buffer back into a tensor —
//! by swapping it in when the tensor is its storage's whole contiguous extent, otherwise by a
//! strided copy.

use ember_autograd::Tensor;
use ember_kernels::cpu::{Buffer, CpuStorage};
use ember_kernels::{DType, Layout, Storage};
use std::ffi::c_void;

/// The CPU storage, or `Err` naming the device.
pub(crate) fn cpu(storage: &Storage) -> Result<&CpuStorage, String> {
    match storage {
        Storage::Cpu(c) => Ok(c),
        #[allow(unreachable_patterns)]
        other => Err(format!(
            "Backend::Mpi takes CPU tensors, got a tensor on {}",
            other.device()
        )),
    }
}

/// The CPU storage of a tensor already checked to be on the CPU.
pub(crate) fn cpu_mut(storage: &mut Storage) -> &mut CpuStorage {
    match storage {
        Storage::Cpu(c) => c,
        #[allow(unreachable_patterns)]
        _ => unreachable!("checked to be a CPU tensor before communicating"),
    }
}

/// Address of element `offset` of `c`.
pub(crate) fn ptr(c: &CpuStorage, offset: usize) -> *const c_void {
    // `wrapping_add` keeps this safe; the address is only dereferenced by MPI within bounds
    // its callers guarantee.
    match c {
        CpuStorage::Bool(b) => b.as_ptr().wrapping_add(offset).cast(),
        CpuStorage::U8(b) => b.as_ptr().wrapping_add(offset).cast(),
        CpuStorage::I64(b) => b.as_ptr().wrapping_add(offset).cast(),
        CpuStorage::F32(b) => b.as_ptr().wrapping_add(offset).cast(),
        CpuStorage::F64(b) => b.as_ptr().wrapping_add(offset).cast(),
    }
}

/// Mutable address of element `offset` of `c`.
pub(crate) fn ptr_mut(c: &mut CpuStorage, offset: usize) -> *mut c_void {
    match c {
        CpuStorage::Bool(b) => b.as_mut_ptr().wrapping_add(offset).cast(),
        CpuStorage::U8(b) => b.as_mut_ptr().wrapping_add(offset).cast(),
        CpuStorage::I64(b) => b.as_mut_ptr().wrapping_add(offset).cast(),
        CpuStorage::F32(b) => b.as_mut_ptr().wrapping_add(offset).cast(),
        CpuStorage::F64(b) => b.as_mut_ptr().wrapping_add(offset).cast(),
    }
}

/// A buffer of `n` elements of `dtype` to receive into (contents unspecified).
pub(crate) fn uninit(n: usize, dtype: DType) -> CpuStorage {
    match dtype {
        DType::Bool => CpuStorage::Bool(Buffer::uninit(n)),
        DType::U8 => CpuStorage::U8(Buffer::uninit(n)),
        DType::I64 => CpuStorage::I64(Buffer::uninit(n)),
        DType::F32 => CpuStorage::F32(Buffer::uninit(n)),
        DType::F64 => CpuStorage::F64(Buffer::uninit(n)),
    }
}

/// The elements of a CPU tensor as one contiguous run: `(storage, element offset)` of the
/// tensor itself when it is contiguous, else of a contiguous copy (held in `copy`).
pub(crate) fn contiguous_source<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    copy: &'a mut Option<CpuStorage>,
) -> (&'a CpuStorage, usize) {
    if layout.is_contiguous() {
        (storage, layout.offset())
    } else {
        (copy.insert(storage.contiguous(layout)), 0)
    }
}

/// Writes `received` (`t.numel()` contiguous elements) into `t`'s elements. Writing into the
/// storage bumps the tensor's version counter, as any in-place op does.
pub(crate) fn write_back(t: &Tensor, received: CpuStorage) {
    let mut guard = t.storage_write();
    let c = cpu_mut(&mut guard);
    let whole = t.is_contiguous() && t.layout().offset() == 0 && c.len() == t.numel();
    if whole {
        // The tensor is the whole storage: the received buffer becomes it (no copy); the old
        // one returns to the pool.
        *c = received;
    } else {
        let src = Layout::contiguous(t.shape());
        c.copy_from(t.layout(), &received, &src);
    }
}
