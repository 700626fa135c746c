//! The NCCL transport itself (see `mod.rs`). Each operation is enqueued on the stream of the
//! tensor's storage, so it is ordered after the kernels that produced the elements and before
//! those that read the result; completion is observed through a CUDA event, polled with the
//! group's deadline together with `ncclCommGetAsyncError`. On a failure the communicator is
//! aborted (`ncclCommAbort`), which ends the kernels still waiting for a peer.

use crate::error::DistError;
use crate::mpi::{p2p_header, p2p_mismatch, MpiTransport};
use crate::op::{Backend, ReduceOp};
use crate::peers::Peers;
use crate::transport::{Pending, Transport};
use crate::wait::WaitCtx;
use cudarc::driver::{result as drv, sys as dsys, CudaContext};
use cudarc::nccl::{result as nres, sys as nsys};
use ember_autograd::{no_grad, Tensor};
use ember_kernels::{DType, Storage};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the NCCL transport needs from the storage of a CUDA tensor: where its elements are,
/// and the stream its kernels are issued on. The CUDA backend's storage implements it, and
/// [`device_buffer`] maps a `Storage` to it.
pub trait DeviceBuffer {
    /// The ordinal of the device holding the elements.
    fn ordinal(&self) -> usize;
    /// The element dtype.
    fn dtype(&self) -> DType;
    /// The number of elements of the storage.
    fn len(&self) -> usize;
    /// True when the storage holds no element.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The device address of the storage's element 0.
    fn device_ptr(&self) -> dsys::CUdeviceptr;
    /// The stream that the storage's kernels are issued on.
    fn stream(&self) -> dsys::CUstream;
}

/// The CUDA storage behind `storage`, if it is one.
fn device_buffer(storage: &Storage) -> Option<&dyn DeviceBuffer> {
    match storage {
        Storage::Cpu(_) => None,
        Storage::Cuda(c) => Some(c),
    }
}

impl DeviceBuffer for ember_kernels::cuda::CudaStorage {
    fn ordinal(&self) -> usize {
        ember_kernels::cuda::CudaStorage::ordinal(self)
    }
    fn dtype(&self) -> DType {
        ember_kernels::cuda::CudaStorage::dtype(self)
    }
    fn len(&self) -> usize {
        ember_kernels::cuda::CudaStorage::len(self)
    }
    fn device_ptr(&self) -> dsys::CUdeviceptr {
        self.ptr()
    }
    fn stream(&self) -> dsys::CUstream {
        self.device_arc().stream()
    }
}

/// A NCCL communicator handle: an opaque library pointer, valid until destroyed or aborted;
/// NCCL allows its use from any thread as long as calls on one communicator do not overlap,
/// which the group's blocking calls ensure.
struct Comm(nsys::ncclComm_t);
// SAFETY: see the type's documentation.
unsafe impl Send for Comm {}
// SAFETY: see the type's documentation.
unsafe impl Sync for Comm {}

pub(crate) struct NcclTransport {
    mpi: MpiTransport,
    ctx: Arc<CudaContext>,
    comm: Comm,
    aborted: AtomicBool,
}

fn unavailable(reason: String) -> DistError {
    DistError::Unavailable {
        backend: Backend::Nccl,
        reason,
    }
}

/// Joins the job over MPI, picks this rank's GPU (its local rank among the processes of its
/// host, modulo the device count) and creates the NCCL communicator.
pub(crate) fn transport(timeout: Duration) -> Result<Box<dyn Transport>, DistError> {
    let mpi = MpiTransport::init(Backend::Nccl, timeout)?;
    let devices = CudaContext::device_count()
        .map_err(|e| unavailable(format!("no usable CUDA driver: {e:?}")))?;
    if devices < 1 {
        return Err(unavailable("no CUDA device on this host".into()));
    }
    let local_rank: usize = std::env::var("OMPI_COMM_WORLD_LOCAL_RANK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(mpi.rank());
    let ordinal = local_rank % devices as usize;
    let ctx = CudaContext::new(ordinal)
        .map_err(|e| unavailable(format!("cannot open CUDA device {ordinal}: {e:?}")))?;
    // Rank 0's unique id, to every rank through the MPI all-gather (16 words of 8 bytes).
    let mut words = [0i64; 16];
    if mpi.rank() == 0 {
        let id = nres::get_uniqueid()
            .map_err(|e| unavailable(format!("ncclGetUniqueId failed: {e:?}")))?;
        for (w, chunk) in words.iter_mut().zip(id.internal.chunks(8)) {
            let b: Vec<u8> = chunk.iter().map(|&c| c as u8).collect();
            *w = i64::from_le_bytes(b.try_into().unwrap());
        }
    }
    let peers = mpi.peers().clone();
    let wctx = WaitCtx {
        rank: mpi.rank(),
        op: "init_process_group(Backend::Nccl) (sharing the NCCL unique id)",
        timeout,
        peers: &peers,
        peer: None,
        departed: &|| mpi.departed(),
    };
    let all = mpi.exchange(&words, &wctx)?;
    let mut id = nsys::ncclUniqueId { internal: [0; 128] };
    for (i, w) in all[..16].iter().enumerate() {
        for (j, b) in w.to_le_bytes().iter().enumerate() {
            id.internal[i * 8 + j] = *b as std::ffi::c_char;
        }
    }
    ctx.bind_to_thread()
        .map_err(|e| unavailable(format!("cannot use CUDA device {ordinal}: {e:?}")))?;
    let mut comm: nsys::ncclComm_t = std::ptr::null_mut();
    // SAFETY: `comm` is a valid out-pointer; the id is the same on every rank and the world
    // size and rank come from MPI.
    unsafe { nres::comm_init_rank(&mut comm, mpi.world_size() as i32, id, mpi.rank() as i32) }
        .map_err(|e| unavailable(format!("ncclCommInitRank failed: {e:?}")))?;
    Ok(Box::new(NcclTransport {
        mpi,
        ctx,
        comm: Comm(comm),
        aborted: AtomicBool::new(false),
    }))
}

fn nccl_dtype(d: DType) -> nsys::ncclDataType_t {
    use nsys::ncclDataType_t::*;
    match d {
        DType::Bool | DType::U8 => ncclUint8,
        DType::I64 => ncclInt64,
        DType::F32 => ncclFloat32,
        DType::F64 => ncclFloat64,
    }
}

/// NCCL's reduction; `bool` elements (stored as 0/1 bytes) reduce with max ("or") and min
/// ("and"). `Avg` is done by the group as a sum and a division.
fn nccl_op(op: ReduceOp, d: DType) -> nsys::ncclRedOp_t {
    use nsys::ncclRedOp_t::*;
    match (op, d) {
        (ReduceOp::Sum | ReduceOp::Max | ReduceOp::Avg, DType::Bool) => ncclMax,
        (ReduceOp::Min | ReduceOp::Product, DType::Bool) => ncclMin,
        (ReduceOp::Sum | ReduceOp::Avg, _) => ncclSum,
        (ReduceOp::Max, _) => ncclMax,
        (ReduceOp::Min, _) => ncclMin,
        (ReduceOp::Product, _) => ncclProd,
    }
}

/// Where a contiguous CUDA tensor's elements are.
struct Place {
    ptr: *mut c_void,
    stream: dsys::CUstream,
}

fn place(t: &Tensor) -> Result<Place, String> {
    let guard = t.storage();
    let b = device_buffer(&guard).ok_or_else(|| {
        format!(
            "Backend::Nccl takes CUDA tensors, got a tensor on {}",
            t.device()
        )
    })?;
    let offset = (t.layout().offset() * t.dtype().size_in_bytes()) as dsys::CUdeviceptr;
    Ok(Place {
        ptr: (b.device_ptr() + offset) as *mut c_void,
        stream: b.stream(),
    })
}

/// A CUDA event recorded after an operation on its stream.
struct Event(dsys::CUevent);
// SAFETY: a CUevent is an opaque driver handle usable from any thread of the context.
unsafe impl Send for Event {}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: the event was created by `drv::event::create` and is destroyed once; the
        // driver releases it after completion if it is still pending.
        unsafe {
            let _ = drv::event::destroy(self.0);
        }
    }
}

struct NcclPending {
    event: Event,
    comm: nsys::ncclComm_t,
}
// SAFETY: the communicator pointer is only used for ncclCommGetAsyncError, which NCCL allows
// from any thread.
unsafe impl Send for NcclPending {}

fn poll_event(event: &Event, comm: nsys::ncclComm_t) -> Result<bool, String> {
    let mut async_err = nsys::ncclResult_t::ncclSuccess;
    // SAFETY: `comm` is a live communicator and `async_err` a valid out-pointer.
    unsafe { nsys::ncclCommGetAsyncError(comm, &mut async_err) };
    if async_err != nsys::ncclResult_t::ncclSuccess
        && async_err != nsys::ncclResult_t::ncclInProgress
    {
        return Err(format!("NCCL reported {async_err:?}"));
    }
    // SAFETY: the event was created and recorded by `enqueue`.
    match unsafe { drv::event::query(event.0) } {
        Ok(()) => Ok(true),
        Err(e) if e.0 == dsys::cudaError_enum::CUDA_ERROR_NOT_READY => Ok(false),
        Err(e) => Err(format!("CUDA error while waiting: {e:?}")),
    }
}

impl Pending for NcclPending {
    fn test(&mut self) -> Result<bool, String> {
        poll_event(&self.event, self.comm)
    }
}

impl NcclTransport {
    fn backend_err(&self, ctx: &WaitCtx, message: String) -> DistError {
        DistError::Backend {
            rank: self.mpi.rank(),
            op: ctx.op.to_string(),
            message,
        }
    }

    /// Enqueues `f` on `stream` and records an event after it.
    fn enqueue(
        &self,
        op: &str,
        stream: dsys::CUstream,
        f: impl FnOnce(nsys::cudaStream_t) -> Result<nres::NcclStatus, nres::NcclError>,
    ) -> Result<Event, DistError> {
        let err = |message: String| DistError::Backend {
            rank: self.mpi.rank(),
            op: op.to_string(),
            message,
        };
        self.ctx
            .bind_to_thread()
            .map_err(|e| err(format!("{e:?}")))?;
        f(stream as nsys::cudaStream_t).map_err(|e| err(format!("NCCL error {e:?}")))?;
        let event = drv::event::create(dsys::CUevent_flags::CU_EVENT_DISABLE_TIMING)
            .map_err(|e| err(format!("{e:?}")))?;
        // SAFETY: `event` was just created in the bound context; `stream` is the storage's.
        unsafe { drv::event::record(event, stream) }.map_err(|e| err(format!("{e:?}")))?;
        Ok(Event(event))
    }

    /// Enqueues `f` and waits for it with the group's deadline; aborts the communicator when
    /// the wait fails.
    fn run(
        &self,
        ctx: &WaitCtx,
        stream: dsys::CUstream,
        f: impl FnOnce(nsys::cudaStream_t) -> Result<nres::NcclStatus, nres::NcclError>,
    ) -> Result<(), DistError> {
        let event = self.enqueue(ctx.op, stream, f)?;
        let r = ctx.poll(|| poll_event(&event, self.comm.0));
        if r.is_err() {
            self.abort();
        }
        r
    }

    fn abort(&self) {
        if !self.aborted.swap(true, Ordering::SeqCst) {
            // SAFETY: the communicator is live and aborted only once.
            unsafe {
                let _ = nres::comm_abort(self.comm.0);
            }
        }
    }

    /// Runs `body` on a contiguous version of `t`, writing the result back when `t` is not
    /// contiguous itself.
    fn contiguous(
        &self,
        t: &Tensor,
        write_back: bool,
        body: impl FnOnce(&Tensor) -> Result<(), DistError>,
    ) -> Result<(), DistError> {
        if t.is_contiguous() {
            return body(t);
        }
        let c = t.contiguous();
        body(&c)?;
        if write_back {
            let _g = no_grad();
            t.copy_(&c);
        }
        Ok(())
    }

    fn place(&self, ctx: &WaitCtx, t: &Tensor) -> Result<Place, DistError> {
        place(t).map_err(|m| self.backend_err(ctx, m))
    }
}

impl Transport for NcclTransport {
    fn rank(&self) -> usize {
        self.mpi.rank()
    }

    fn world_size(&self) -> usize {
        self.mpi.world_size()
    }

    fn peers(&self) -> &Peers {
        self.mpi.peers()
    }

    fn departed(&self) -> Option<(usize, String)> {
        self.mpi.departed()
    }

    fn check_device(&self, t: &Tensor) -> Result<(), String> {
        place(t).map(|_| ())
    }

    fn exchange(&self, words: &[i64], ctx: &WaitCtx) -> Result<Vec<i64>, DistError> {
        self.mpi.exchange(words, ctx)
    }

    fn all_reduce(&self, t: &Tensor, op: ReduceOp, ctx: &WaitCtx) -> Result<(), DistError> {
        self.contiguous(t, true, |c| {
            let p = self.place(ctx, c)?;
            let _g = c.storage_write();
            let (n, d) = (c.numel(), c.dtype());
            // SAFETY: `p.ptr` addresses `n` elements of `d` on the device, in place; the
            // storage is write-locked until the operation has completed.
            self.run(ctx, p.stream, |s| unsafe {
                nres::all_reduce(
                    p.ptr,
                    p.ptr,
                    n,
                    nccl_dtype(d),
                    nccl_op(op, d),
                    self.comm.0,
                    s,
                )
            })
        })
    }

    fn broadcast(&self, t: &Tensor, src: usize, ctx: &WaitCtx) -> Result<(), DistError> {
        let root = self.rank() == src;
        self.contiguous(t, !root, |c| {
            let p = self.place(ctx, c)?;
            let _g = c.storage_write();
            let (n, d) = (c.numel(), c.dtype());
            // SAFETY: as in all_reduce; NCCL reads on the root and writes elsewhere.
            self.run(ctx, p.stream, |s| unsafe {
                nres::broadcast(p.ptr, p.ptr, n, nccl_dtype(d), src as i32, self.comm.0, s)
            })
        })
    }

    fn all_gather(&self, outs: &[Tensor], input: &Tensor, ctx: &WaitCtx) -> Result<(), DistError> {
        let n = input.numel();
        let gathered =
            Tensor::full_on(&[n * self.world_size()], 0.0, input.dtype(), input.device());
        self.contiguous(input, false, |c| {
            let (pi, po) = (self.place(ctx, c)?, self.place(ctx, &gathered)?);
            let (_gi, _go) = (c.storage(), gathered.storage_write());
            // SAFETY: `pi` addresses `n` and `po` `n * world_size` elements on the device,
            // both locked until the operation completes.
            self.run(ctx, pi.stream, |s| unsafe {
                nres::all_gather(pi.ptr, po.ptr, n, nccl_dtype(c.dtype()), self.comm.0, s)
            })
        })?;
        let _g = no_grad();
        for (r, out) in outs.iter().enumerate() {
            out.copy_(&gathered.narrow(0, r * n, n).view(out.shape()));
        }
        Ok(())
    }

    fn reduce_scatter(
        &self,
        out: &Tensor,
        inputs: &[Tensor],
        op: ReduceOp,
        ctx: &WaitCtx,
    ) -> Result<(), DistError> {
        let n = out.numel();
        let flat: Vec<Tensor> = inputs.iter().map(|t| t.reshape([n])).collect();
        let send = Tensor::cat(&flat, 0);
        self.contiguous(out, true, |c| {
            let (ps, po) = (self.place(ctx, &send)?, self.place(ctx, c)?);
            let (_gs, _go) = (send.storage(), c.storage_write());
            let d = c.dtype();
            // SAFETY: `ps` addresses `n * world_size` and `po` `n` elements on the device,
            // both locked until the operation completes.
            self.run(ctx, po.stream, |s| unsafe {
                nres::reduce_scatter(
                    ps.ptr,
                    po.ptr,
                    n,
                    nccl_dtype(d),
                    nccl_op(op, d),
                    self.comm.0,
                    s,
                )
            })
        })
    }

    fn send(&self, t: &Tensor, dst: usize, ctx: &WaitCtx) -> Result<(), DistError> {
        self.mpi.send_words(&p2p_header(t), dst, ctx)?;
        self.contiguous(t, false, |c| {
            let p = self.place(ctx, c)?;
            let _g = c.storage();
            let (n, d) = (c.numel(), c.dtype());
            // SAFETY: `p.ptr` addresses `n` elements, read-locked until completion.
            self.run(ctx, p.stream, |s| unsafe {
                nres::send(p.ptr, n, nccl_dtype(d), dst as i32, self.comm.0, s)
            })
        })
    }

    fn recv(&self, t: &Tensor, src: usize, ctx: &WaitCtx) -> Result<(), DistError> {
        let mine = p2p_header(t);
        let theirs = self.mpi.recv_words(mine.len(), src, ctx)?;
        if theirs[..] != mine[..] {
            // The sender's data is still received (into a scratch tensor of its size and
            // dtype), so that its NCCL send completes instead of waiting for a receive.
            let dtype = crate::mpi::dtype_of_code(theirs[2]).unwrap_or(DType::U8);
            let scratch = Tensor::full_on(&[theirs[3] as usize], 0.0, dtype, t.device());
            let p = self.place(ctx, &scratch)?;
            let _g = scratch.storage_write();
            let n = scratch.numel();
            // SAFETY: `p.ptr` addresses the scratch tensor's `n` elements, write-locked until
            // completion.
            self.run(ctx, p.stream, |s| unsafe {
                nres::recv(p.ptr, n, nccl_dtype(dtype), src as i32, self.comm.0, s)
            })?;
            return Err(p2p_mismatch(self.rank(), src, &theirs, &mine));
        }
        self.contiguous(t, true, |c| {
            let p = self.place(ctx, c)?;
            let _g = c.storage_write();
            let (n, d) = (c.numel(), c.dtype());
            // SAFETY: `p.ptr` addresses `n` elements, write-locked until completion.
            self.run(ctx, p.stream, |s| unsafe {
                nres::recv(p.ptr, n, nccl_dtype(d), src as i32, self.comm.0, s)
            })
        })
    }

    fn barrier(&self, ctx: &WaitCtx) -> Result<(), DistError> {
        self.mpi.barrier(ctx)
    }

    fn start_all_reduce(&self, bucket: &Tensor, op: &str) -> Result<Box<dyn Pending>, DistError> {
        let p = place(bucket).map_err(|message| DistError::InvalidArgument {
            rank: self.rank(),
            op: "DistributedDataParallel",
            message,
        })?;
        let (n, d) = (bucket.numel(), bucket.dtype());
        // SAFETY: the bucket is DistributedDataParallel's own contiguous tensor, which nobody
        // reads or writes until the operation completes (the caller's contract).
        let event = self.enqueue(op, p.stream, |s| unsafe {
            nres::all_reduce(
                p.ptr,
                p.ptr,
                n,
                nccl_dtype(d),
                nccl_op(ReduceOp::Sum, d),
                self.comm.0,
                s,
            )
        })?;
        Ok(Box::new(NcclPending {
            event,
            comm: self.comm.0,
        }))
    }

    fn abandon(&self) {
        self.abort();
        self.mpi.abandon();
    }
}

impl Drop for NcclTransport {
    fn drop(&mut self) {
        if !self.aborted.load(Ordering::SeqCst) {
            // SAFETY: the communicator is live; every operation of a healthy group completed.
            unsafe {
                let _ = nres::comm_destroy(self.comm.0);
            }
        }
    }
}
