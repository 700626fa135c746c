//! The MPI calls Ember makes, as thin wrappers over rsmpi's C bindings (`mpi::ffi`): only
//! non-blocking operations (so that every wait can be polled with a deadline) plus `MPI_Test`.
//! Every call runs under one process-wide lock, which is what `MPI_THREAD_SERIALIZED` asks of
//! a program that calls MPI from several threads.

use ember_kernels::DType;
use mpi::ffi;
use std::ffi::{c_int, c_void};
use std::sync::{Mutex, MutexGuard};

static MPI_LOCK: Mutex<()> = Mutex::new(());

/// Serialises MPI calls across threads.
pub(crate) fn lock() -> MutexGuard<'static, ()> {
    MPI_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `Err(message)` for an MPI error code.
pub(crate) fn check(code: c_int) -> Result<(), String> {
    if code == 0 {
        return Ok(());
    }
    let mut buf = vec![0u8; 512];
    let mut len: c_int = 0;
    // SAFETY: MPI_Error_string writes at most MPI_MAX_ERROR_STRING (256 in Open MPI) bytes
    // into `buf`, which holds 512, and their count into `len`.
    unsafe { ffi::MPI_Error_string(code, buf.as_mut_ptr().cast(), &mut len) };
    buf.truncate(len.clamp(0, 512) as usize);
    Err(format!(
        "MPI error {code}: {}",
        String::from_utf8_lossy(&buf)
    ))
}

/// An MPI communicator handle. Open MPI's handles are pointers to library-owned objects that
/// live until `MPI_Finalize`, and every use goes through [`lock`], so they may be shared
/// between threads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Comm(pub(crate) ffi::MPI_Comm);
// SAFETY: see the type's documentation: the handle is an opaque library pointer valid until
// MPI_Finalize, and all calls using it are serialised by MPI_LOCK.
unsafe impl Send for Comm {}
// SAFETY: as for Send.
unsafe impl Sync for Comm {}

/// An MPI datatype for an Ember dtype.
fn datatype(d: DType) -> ffi::MPI_Datatype {
    // SAFETY: the RSMPI_* statics are initialised constants of rsmpi's C shim.
    unsafe {
        match d {
            DType::Bool => ffi::RSMPI_C_BOOL,
            DType::U8 => ffi::RSMPI_UINT8_T,
            DType::I64 => ffi::RSMPI_INT64_T,
            DType::F32 => ffi::RSMPI_FLOAT,
            DType::F64 => ffi::RSMPI_DOUBLE,
        }
    }
}

/// The MPI reduction; `bool` elements use the logical operations (sum and max are "or",
/// min and product are "and"), since MPI defines no arithmetic on `MPI_C_BOOL`.
/// `Avg` is done by the caller as a sum followed by a division.
pub(crate) fn reduce_op(op: crate::op::ReduceOp, d: DType) -> ffi::MPI_Op {
    use crate::op::ReduceOp::*;
    // SAFETY: the RSMPI_* statics are initialised constants of rsmpi's C shim.
    unsafe {
        match (op, d) {
            (Sum | Max | Avg, DType::Bool) => ffi::RSMPI_LOR,
            (Min | Product, DType::Bool) => ffi::RSMPI_LAND,
            (Sum | Avg, _) => ffi::RSMPI_SUM,
            (Max, _) => ffi::RSMPI_MAX,
            (Min, _) => ffi::RSMPI_MIN,
            (Product, _) => ffi::RSMPI_PROD,
        }
    }
}

/// The largest element count one MPI call takes (counts are C ints).
pub(crate) const MAX_COUNT: usize = i32::MAX as usize;

/// An operation in flight. It must be tested to completion, or leaked together with its
/// buffers (`std::mem::forget`): MPI may still read and write them until it completes.
#[derive(Debug)]
pub(crate) struct Request(ffi::MPI_Request);
// SAFETY: an MPI_Request is an opaque library handle; every call on it is serialised by
// MPI_LOCK, which MPI_THREAD_SERIALIZED allows from any thread.
unsafe impl Send for Request {}

impl Request {
    /// Tests for completion (`MPI_Test`), which also drives MPI's progress engine.
    pub(crate) fn test(&mut self) -> Result<bool, String> {
        let mut flag: c_int = 0;
        let _g = lock();
        // SAFETY: `self.0` is a request returned by a start function below and not yet
        // completed (MPI sets it to MPI_REQUEST_NULL on completion, after which MPI_Test
        // returns flag = true at once).
        check(unsafe { ffi::MPI_Test(&mut self.0, &mut flag, ffi::RSMPI_STATUS_IGNORE) })?;
        Ok(flag != 0)
    }
}

fn start(f: impl FnOnce(*mut ffi::MPI_Request) -> c_int) -> Result<Request, String> {
    // SAFETY: RSMPI_REQUEST_NULL is an initialised constant of rsmpi's C shim.
    let mut req = Request(unsafe { ffi::RSMPI_REQUEST_NULL });
    let _g = lock();
    check(f(&mut req.0))?;
    Ok(req)
}

fn count(n: usize) -> c_int {
    assert!(n <= MAX_COUNT, "count {n} exceeds MPI's limit");
    n as c_int
}

/// `MPI_Iallreduce` of `n` elements from `send` into `recv`.
///
/// # Safety
/// `send` must be readable and `recv` writable for `n` elements of `dtype`, and stay so (and
/// `recv` untouched by others) until the request completes or is leaked with them.
pub(crate) unsafe fn iallreduce(
    comm: Comm,
    send: *const c_void,
    recv: *mut c_void,
    n: usize,
    dtype: DType,
    op: crate::op::ReduceOp,
) -> Result<Request, String> {
    start(|r| {
        // SAFETY: the caller guarantees the buffers (see above); `r` is a valid out-pointer.
        unsafe {
            ffi::MPI_Iallreduce(
                send,
                recv,
                count(n),
                datatype(dtype),
                reduce_op(op, dtype),
                comm.0,
                r,
            )
        }
    })
}

/// `MPI_Ibcast` of `n` elements of `buf` from `root`.
///
/// # Safety
/// `buf` must be valid for `n` elements (read on the root, written elsewhere) until the
/// request completes or is leaked with it.
pub(crate) unsafe fn ibcast(
    comm: Comm,
    buf: *mut c_void,
    n: usize,
    dtype: DType,
    root: usize,
) -> Result<Request, String> {
    start(|r| {
        // SAFETY: the caller guarantees the buffer; `r` is a valid out-pointer.
        unsafe { ffi::MPI_Ibcast(buf, count(n), datatype(dtype), root as c_int, comm.0, r) }
    })
}

/// `MPI_Iallgather`: `n` elements from every rank into `recv` (`n * world_size`), in rank
/// order.
///
/// # Safety
/// `send` readable for `n` and `recv` writable for `n * world_size` elements until the request
/// completes or is leaked with them.
pub(crate) unsafe fn iallgather(
    comm: Comm,
    send: *const c_void,
    recv: *mut c_void,
    n: usize,
    dtype: DType,
) -> Result<Request, String> {
    start(|r| {
        let (c, t) = (count(n), datatype(dtype));
        // SAFETY: the caller guarantees the buffers; `r` is a valid out-pointer.
        unsafe { ffi::MPI_Iallgather(send, c, t, recv, c, t, comm.0, r) }
    })
}

/// `MPI_Ireduce_scatter_block`: reduces `send` (`n * world_size` elements) across ranks and
/// leaves block `rank` (`n` elements) in `recv`.
///
/// # Safety
/// `send` readable for `n * world_size` and `recv` writable for `n` elements until the request
/// completes or is leaked with them.
pub(crate) unsafe fn ireduce_scatter_block(
    comm: Comm,
    send: *const c_void,
    recv: *mut c_void,
    n: usize,
    dtype: DType,
    op: crate::op::ReduceOp,
) -> Result<Request, String> {
    start(|r| {
        // SAFETY: the caller guarantees the buffers; `r` is a valid out-pointer.
        unsafe {
            ffi::MPI_Ireduce_scatter_block(
                send,
                recv,
                count(n),
                datatype(dtype),
                reduce_op(op, dtype),
                comm.0,
                r,
            )
        }
    })
}

/// `MPI_Isend` of `n` elements to `dst` with `tag`.
///
/// # Safety
/// `buf` readable for `n` elements until the request completes or is leaked with it.
pub(crate) unsafe fn isend(
    comm: Comm,
    buf: *const c_void,
    n: usize,
    dtype: DType,
    dst: usize,
    tag: i32,
) -> Result<Request, String> {
    start(|r| {
        // SAFETY: the caller guarantees the buffer; `r` is a valid out-pointer.
        unsafe { ffi::MPI_Isend(buf, count(n), datatype(dtype), dst as c_int, tag, comm.0, r) }
    })
}

/// `MPI_Irecv` of up to `n` elements from `src` with `tag`.
///
/// # Safety
/// `buf` writable for `n` elements until the request completes or is leaked with it.
pub(crate) unsafe fn irecv(
    comm: Comm,
    buf: *mut c_void,
    n: usize,
    dtype: DType,
    src: usize,
    tag: i32,
) -> Result<Request, String> {
    start(|r| {
        // SAFETY: the caller guarantees the buffer; `r` is a valid out-pointer.
        unsafe { ffi::MPI_Irecv(buf, count(n), datatype(dtype), src as c_int, tag, comm.0, r) }
    })
}

/// `MPI_Ibarrier`.
pub(crate) fn ibarrier(comm: Comm) -> Result<Request, String> {
    // SAFETY: a barrier touches no buffer; `r` is a valid out-pointer.
    start(|r| unsafe { ffi::MPI_Ibarrier(comm.0, r) })
}

/// Takes one waiting message of one `i64` with `tag` from any rank, if there is one
/// (`MPI_Iprobe` then `MPI_Recv` under one lock, so no other thread can take it in between);
/// returns its source and value.
pub(crate) fn take_notice(comm: Comm, tag: i32) -> Result<Option<(usize, i64)>, String> {
    let _g = lock();
    let mut flag: c_int = 0;
    // SAFETY: MPI_Status is plain data, written by MPI_Iprobe.
    let mut status: ffi::MPI_Status = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointers; RSMPI_ANY_SOURCE is rsmpi's constant.
    check(unsafe { ffi::MPI_Iprobe(ffi::RSMPI_ANY_SOURCE, tag, comm.0, &mut flag, &mut status) })?;
    if flag == 0 {
        return Ok(None);
    }
    let src = status.MPI_SOURCE;
    let mut word = 0i64;
    // SAFETY: the probed message (one i64 from `src`) is waiting, so this receive returns at
    // once; `word` is a valid buffer for it.
    check(unsafe {
        ffi::MPI_Recv(
            (&mut word as *mut i64).cast(),
            1,
            datatype(DType::I64),
            src,
            tag,
            comm.0,
            ffi::RSMPI_STATUS_IGNORE,
        )
    })?;
    Ok(Some((src as usize, word)))
}
