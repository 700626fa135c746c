//! The MPI transport (CPU tensors), on Open MPI through rsmpi's C bindings.
//!
//! Initialisation requests `MPI_THREAD_SERIALIZED` (every call is made under `raw::lock`),
//! duplicates `MPI_COMM_WORLD` so Ember's traffic cannot match a user's own messages, and sets
//! `MPI_ERRORS_RETURN` so a failing call returns an error code instead of aborting the job.
//! Every operation is non-blocking and polled with the group's deadline (`wait.rs`).
//!
//! MPI is finalized when the group is dropped, or at process exit if it never is (as PyTorch's
//! MPI backend does with `atexit`). If the program initialized MPI itself, it also finalizes it.
//!
//! **Leaving together.** `MPI_Finalize` waits for every rank, so a rank that exits while the
//! others still train (an error, `process::exit`) would hang in it, and the others would wait
//! for it until their timeout without knowing why. Instead, a leaving rank first sends every
//! other rank an exit notice on a second communicator, then waits (with the timeout) in a
//! barrier there until all ranks are leaving too, and finalizes only if they are. A rank waiting
//! in any operation looks for such notices (and for dead processes on its host, `peers.rs`)
//! every 100 ms, so it fails at once with an error naming the rank that left; when it exits in
//! turn, the barrier completes and every rank finalizes cleanly. If the barrier cannot complete
//! (a peer was killed), the rank exits without finalizing, and `mpirun` reports the job as
//! failed.

mod host;
mod raw;

use crate::error::DistError;
use crate::header::WORDS;
use crate::op::{Backend, ReduceOp};
use crate::peers::{Peer, Peers};
use crate::transport::{Pending, Transport};
use crate::wait::WaitCtx;
use ember_autograd::Tensor;
use ember_kernels::cpu::CpuStorage;
use ember_kernels::{DType, Layout};
use mpi::ffi;
use raw::{Comm, Request};
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

/// Set when Ember called `MPI_Init_thread` (and so must finalize).
static OWNS_MPI: AtomicBool = AtomicBool::new(false);
static FINALIZED: AtomicBool = AtomicBool::new(false);
static AT_EXIT: Once = Once::new();
/// What leaving the job needs: set at initialisation, taken by `finalize_once`.
static LEAVING: Mutex<Option<Leaving>> = Mutex::new(None);
/// The ranks whose exit notice this rank has received.
static NOTICED: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// The first departure this rank learned of (rank, how), sent on in its own exit notice so
/// that every rank names the rank that left first, not one that left because of it.
static DEPARTURE: Mutex<Option<(usize, String)>> = Mutex::new(None);

struct Leaving {
    control: Comm,
    rank: usize,
    size: usize,
    peers: Peers,
    timeout: Duration,
}

/// Point-to-point tags: a header, then the data (MPI keeps messages between two ranks in order).
const HEADER_TAG: i32 = 1;
const DATA_TAG: i32 = 2;
/// An exit notice, on the control communicator.
const EXIT_TAG: i32 = 3;
/// Bytes of a host name carried in the peer exchange.
const HOST_WORDS: usize = 8;

fn noticed() -> std::sync::MutexGuard<'static, Vec<usize>> {
    NOTICED.lock().unwrap_or_else(|e| e.into_inner())
}

fn departure() -> std::sync::MutexGuard<'static, Option<(usize, String)>> {
    DEPARTURE.lock().unwrap_or_else(|e| e.into_inner())
}

fn finalize_once() {
    if !OWNS_MPI.load(Ordering::SeqCst) || FINALIZED.swap(true, Ordering::SeqCst) {
        return;
    }
    let leaving = LEAVING.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(l) = leaving {
        if let Err(e) = leave_together(&l) {
            eprintln!(
                "ember-distributed: rank {} exits without MPI_Finalize: {e}",
                l.rank
            );
            return;
        }
    }
    let _g = raw::lock();
    // SAFETY: MPI was initialized by Ember (OWNS_MPI), is finalized only once (FINALIZED), and
    // every rank has reached this point (leave_together).
    unsafe { ffi::MPI_Finalize() };
}

/// Tells every other rank that this one is leaving, then waits until all of them are leaving
/// too (see the module's documentation).
fn leave_together(l: &Leaving) -> Result<(), DistError> {
    if l.size == 1 {
        return Ok(());
    }
    let departed = || l.peers.first_dead();
    let ctx = WaitCtx {
        rank: l.rank,
        op: "leaving the job (waiting for every rank before MPI_Finalize)",
        timeout: l.timeout,
        peers: &l.peers,
        peer: None,
        departed: &departed,
    };
    let failed = |message| DistError::Backend {
        rank: l.rank,
        op: ctx.op.to_string(),
        message,
    };
    // The notice names the departure that made this rank leave, if any (-1: none). Its buffer
    // must outlive the sends, which may never complete if a peer is gone.
    let cause = departure().as_ref().map_or(-1, |(r, _)| *r as i64);
    let word: &'static i64 = Box::leak(Box::new(cause));
    let mut sends = Vec::new();
    for r in (0..l.size).filter(|&r| r != l.rank) {
        // SAFETY: `word` is never freed.
        let s = unsafe {
            raw::isend(
                l.control,
                (word as *const i64).cast(),
                1,
                DType::I64,
                r,
                EXIT_TAG,
            )
        };
        sends.push(s.map_err(failed)?);
    }
    let mut barrier = raw::ibarrier(l.control).map_err(failed)?;
    ctx.poll(|| barrier.test())?;
    for s in &mut sends {
        ctx.poll(|| s.test())?;
    }
    // Every other rank sent its notice before entering the barrier; take those that no wait
    // took yet, so that no message is left unreceived at MPI_Finalize.
    ctx.poll(|| {
        while noticed().len() < l.size - 1 {
            match raw::take_notice(l.control, EXIT_TAG)? {
                Some((src, _)) => noticed().push(src),
                None => return Ok(false),
            }
        }
        Ok(true)
    })
}

extern "C" fn finalize_at_exit() {
    finalize_once();
}

extern "C" {
    fn atexit(f: extern "C" fn()) -> c_int;
}

/// The MPI transport of one process group.
pub(crate) struct MpiTransport {
    comm: Comm,
    /// For exit notices and the exit barrier, apart from the data traffic.
    control: Comm,
    rank: usize,
    size: usize,
    peers: Peers,
}

fn init_error(message: String) -> DistError {
    DistError::Unavailable {
        backend: Backend::Mpi,
        reason: message,
    }
}

impl MpiTransport {
    /// Joins the MPI job this process was launched in.
    pub(crate) fn init(backend: Backend, timeout: Duration) -> Result<Self, DistError> {
        if !crate::launched_by_mpirun() {
            return Err(DistError::NoMpiEnvironment { backend });
        }
        if FINALIZED.load(Ordering::SeqCst) || mpi::environment::is_finalized() {
            return Err(DistError::AlreadyInitialized {
                reason: "MPI was finalized when the previous process group was destroyed, and \
                         MPI cannot be initialized twice in one process"
                    .into(),
            });
        }
        if let Some((universe, _provided)) =
            mpi::initialize_with_threading(mpi::Threading::Serialized)
        {
            // Ember finalizes itself (finalize_once), at drop or exit, not rsmpi's Universe.
            std::mem::forget(universe);
            OWNS_MPI.store(true, Ordering::SeqCst);
            // SAFETY: registering a plain extern "C" function with libc's atexit.
            AT_EXIT.call_once(|| unsafe {
                atexit(finalize_at_exit);
            });
        }
        let _g = raw::lock();
        // SAFETY: MPI is initialized (above, or by the program); the handles are rsmpi's
        // constants and out-pointers are valid locals.
        let (comm, control, rank, size) = unsafe {
            raw::check(ffi::MPI_Comm_set_errhandler(
                ffi::RSMPI_COMM_WORLD,
                ffi::RSMPI_ERRORS_RETURN,
            ))
            .map_err(init_error)?;
            let dup = || {
                let mut comm = ffi::RSMPI_COMM_NULL;
                raw::check(ffi::MPI_Comm_dup(ffi::RSMPI_COMM_WORLD, &mut comm))?;
                raw::check(ffi::MPI_Comm_set_errhandler(comm, ffi::RSMPI_ERRORS_RETURN))?;
                Ok::<_, String>(Comm(comm))
            };
            let (comm, control) = (dup().map_err(init_error)?, dup().map_err(init_error)?);
            let (mut rank, mut size): (c_int, c_int) = (0, 0);
            raw::check(ffi::MPI_Comm_rank(comm.0, &mut rank)).map_err(init_error)?;
            raw::check(ffi::MPI_Comm_size(comm.0, &mut size)).map_err(init_error)?;
            (comm, control, rank as usize, size as usize)
        };
        drop(_g);
        let mut t = MpiTransport {
            comm,
            control,
            rank,
            size,
            peers: Peers::default(),
        };
        t.peers = t.exchange_peers(timeout)?;
        *LEAVING.lock().unwrap_or_else(|e| e.into_inner()) = Some(Leaving {
            control,
            rank,
            size,
            peers: t.peers.clone(),
            timeout,
        });
        Ok(t)
    }

    /// Every rank's host and pid, for liveness checks while waiting.
    fn exchange_peers(&self, timeout: Duration) -> Result<Peers, DistError> {
        let host = mpi::environment::processor_name().unwrap_or_else(|_| "unknown".into());
        let mut words = vec![0i64; HOST_WORDS + 1];
        for (i, chunk) in host.as_bytes().chunks(8).take(HOST_WORDS).enumerate() {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            words[i] = i64::from_le_bytes(b);
        }
        words[HOST_WORDS] = std::process::id() as i64;
        let nobody = Peers::default();
        let ctx = WaitCtx {
            rank: self.rank,
            op: "init_process_group (exchanging host names and process ids)",
            timeout,
            peers: &nobody,
            peer: None,
            departed: &crate::wait::nobody,
        };
        let all = self.exchange(&words, &ctx)?;
        let peers = all
            .chunks(HOST_WORDS + 1)
            .map(|w| {
                let bytes: Vec<u8> = w[..HOST_WORDS]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .take_while(|&b| b != 0)
                    .collect();
                Peer {
                    host: String::from_utf8_lossy(&bytes).into_owned(),
                    pid: w[HOST_WORDS] as u32,
                }
            })
            .collect();
        Ok(Peers::new(self.rank, peers))
    }

    /// Polls `req` to completion; on failure leaks `keep` (buffers MPI may still write).
    fn wait<K>(&self, mut req: Request, ctx: &WaitCtx, keep: K) -> Result<K, DistError> {
        match ctx.poll(|| req.test()) {
            Ok(()) => Ok(keep),
            Err(e) => {
                // `req` is dropped without MPI_Request_free: MPI may still use it.
                std::mem::forget(keep);
                Err(e)
            }
        }
    }

    /// Sends a few control words to `dst` (a point-to-point header).
    pub(crate) fn send_words(
        &self,
        words: &[i64],
        dst: usize,
        ctx: &WaitCtx,
    ) -> Result<(), DistError> {
        // SAFETY: `words` is borrowed until `wait` returns (or the request is leaked).
        let h = unsafe {
            raw::isend(
                self.comm,
                words.as_ptr().cast(),
                words.len(),
                DType::I64,
                dst,
                HEADER_TAG,
            )
        };
        let h = self.started(ctx, h)?;
        self.wait(h, ctx, ())
    }

    /// Receives `n` control words from `src`.
    pub(crate) fn recv_words(
        &self,
        n: usize,
        src: usize,
        ctx: &WaitCtx,
    ) -> Result<Vec<i64>, DistError> {
        let mut words = vec![0i64; n];
        // SAFETY: `words` holds `n` elements and is returned by `wait` only on completion.
        let h = unsafe {
            raw::irecv(
                self.comm,
                words.as_mut_ptr().cast(),
                n,
                DType::I64,
                src,
                HEADER_TAG,
            )
        };
        let h = self.started(ctx, h)?;
        self.wait(h, ctx, words)
    }

    fn started(&self, ctx: &WaitCtx, r: Result<Request, String>) -> Result<Request, DistError> {
        r.map_err(|message| DistError::Backend {
            rank: self.rank,
            op: ctx.op.to_string(),
            message,
        })
    }
}

fn check_count(ctx: &WaitCtx, n: usize) -> Result<(), DistError> {
    if n > raw::MAX_COUNT {
        return Err(DistError::InvalidArgument {
            rank: ctx.rank,
            op: "collective",
            message: format!(
                "{}: {n} elements exceed the {} that one MPI call can carry",
                ctx.op,
                raw::MAX_COUNT
            ),
        });
    }
    Ok(())
}

/// The storage type for received elements of a dtype named in a header.
pub(crate) fn dtype_of_code(code: i64) -> Option<DType> {
    [DType::Bool, DType::U8, DType::I64, DType::F32, DType::F64]
        .into_iter()
        .find(|&d| crate::header::dtype_code(d) == code)
}

impl Transport for MpiTransport {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.size
    }

    fn peers(&self) -> &Peers {
        &self.peers
    }

    fn departed(&self) -> Option<(usize, String)> {
        const LEFT: &str =
            "it is leaving the job: its process is exiting, or it destroyed its process group";
        if let Some(known) = departure().clone() {
            return Some(known);
        }
        // A dead process first: it is the cause when others leave because of it.
        let found = self.peers.first_dead().or_else(|| {
            let (src, cause) = raw::take_notice(self.control, EXIT_TAG).ok()??;
            noticed().push(src);
            Some(match usize::try_from(cause) {
                Ok(first) if first != self.rank => (
                    first,
                    format!("rank {src} is leaving the job because rank {first} left it first"),
                ),
                _ => (src, LEFT.to_string()),
            })
        });
        if let Some(d) = &found {
            departure().get_or_insert_with(|| d.clone());
        }
        found
    }

    fn check_device(&self, t: &Tensor) -> Result<(), String> {
        host::cpu(&t.storage()).map(|_| ())
    }

    fn exchange(&self, words: &[i64], ctx: &WaitCtx) -> Result<Vec<i64>, DistError> {
        let mut all = vec![0i64; words.len() * self.size];
        // SAFETY: `words` is readable and `all` writable for the counts given, and both outlive
        // the request: `wait` returns only once it completed, or leaks `all` on failure while
        // `words` is borrowed for this whole call.
        let req = unsafe {
            raw::iallgather(
                self.comm,
                words.as_ptr().cast(),
                all.as_mut_ptr().cast(),
                words.len(),
                DType::I64,
            )
        };
        let req = self.started(ctx, req)?;
        self.wait(req, ctx, all)
    }

    fn all_reduce(&self, t: &Tensor, op: ReduceOp, ctx: &WaitCtx) -> Result<(), DistError> {
        let n = t.numel();
        check_count(ctx, n)?;
        let mut recv = host::uninit(n, t.dtype());
        let guard = t.storage();
        let storage = host::cpu(&guard).expect("device checked by the group");
        let mut copy = None;
        let (src, off) = host::contiguous_source(storage, t.layout(), &mut copy);
        // SAFETY: `src` holds `n` contiguous elements from `off` and stays borrowed (under the
        // read guard) until `wait` returns; `recv` holds `n` elements and is returned by `wait`
        // only on completion, otherwise leaked.
        let req = unsafe {
            raw::iallreduce(
                self.comm,
                host::ptr(src, off),
                host::ptr_mut(&mut recv, 0),
                n,
                t.dtype(),
                op,
            )
        };
        let req = self.started(ctx, req)?;
        let recv = self.wait(req, ctx, recv)?;
        drop(guard);
        host::write_back(t, recv);
        Ok(())
    }

    fn broadcast(&self, t: &Tensor, src: usize, ctx: &WaitCtx) -> Result<(), DistError> {
        let n = t.numel();
        check_count(ctx, n)?;
        if self.rank == src {
            let guard = t.storage();
            let storage = host::cpu(&guard).expect("device checked by the group");
            let mut copy = None;
            let (s, off) = host::contiguous_source(storage, t.layout(), &mut copy);
            // SAFETY: on the root MPI only reads the buffer: `n` contiguous elements from
            // `off`, borrowed under the read guard until `wait` returns.
            let req =
                unsafe { raw::ibcast(self.comm, host::ptr(s, off).cast_mut(), n, t.dtype(), src) };
            let req = self.started(ctx, req)?;
            self.wait(req, ctx, ())?;
        } else {
            let mut recv = host::uninit(n, t.dtype());
            // SAFETY: `recv` holds `n` elements and is returned by `wait` only on completion,
            // otherwise leaked.
            let req =
                unsafe { raw::ibcast(self.comm, host::ptr_mut(&mut recv, 0), n, t.dtype(), src) };
            let req = self.started(ctx, req)?;
            let recv = self.wait(req, ctx, recv)?;
            host::write_back(t, recv);
        }
        Ok(())
    }

    fn all_gather(&self, outs: &[Tensor], input: &Tensor, ctx: &WaitCtx) -> Result<(), DistError> {
        let n = input.numel();
        check_count(ctx, n * self.size)?;
        let mut recv = host::uninit(n * self.size, input.dtype());
        let guard = input.storage();
        let storage = host::cpu(&guard).expect("device checked by the group");
        let mut copy = None;
        let (s, off) = host::contiguous_source(storage, input.layout(), &mut copy);
        // SAFETY: `s` holds `n` contiguous elements from `off`, borrowed until `wait` returns;
        // `recv` holds `n * size` elements and is returned only on completion, else leaked.
        let req = unsafe {
            raw::iallgather(
                self.comm,
                host::ptr(s, off),
                host::ptr_mut(&mut recv, 0),
                n,
                input.dtype(),
            )
        };
        let req = self.started(ctx, req)?;
        let recv = self.wait(req, ctx, recv)?;
        drop(guard);
        for (r, out) in outs.iter().enumerate() {
            let block = Layout::new(
                out.shape(),
                Layout::contiguous(out.shape()).strides(),
                r * n,
            );
            host::cpu_mut(&mut out.storage_write()).copy_from(out.layout(), &recv, &block);
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
        check_count(ctx, n * self.size)?;
        // The inputs side by side, rank order, as MPI_Reduce_scatter_block reads them.
        let mut send = host::uninit(n * self.size, out.dtype());
        for (r, input) in inputs.iter().enumerate() {
            let block = Layout::new(
                input.shape(),
                Layout::contiguous(input.shape()).strides(),
                r * n,
            );
            let g = input.storage();
            send.copy_from(
                &block,
                host::cpu(&g).expect("device checked"),
                input.layout(),
            );
        }
        let mut recv = host::uninit(n, out.dtype());
        // SAFETY: `send` holds `n * size` and `recv` `n` elements; both are returned by `wait`
        // only on completion, otherwise leaked.
        let req = unsafe {
            raw::ireduce_scatter_block(
                self.comm,
                host::ptr(&send, 0),
                host::ptr_mut(&mut recv, 0),
                n,
                out.dtype(),
                op,
            )
        };
        let req = self.started(ctx, req)?;
        let (_send, recv) = self.wait(req, ctx, (send, recv))?;
        host::write_back(out, recv);
        Ok(())
    }

    fn send(&self, t: &Tensor, dst: usize, ctx: &WaitCtx) -> Result<(), DistError> {
        let n = t.numel();
        check_count(ctx, n)?;
        let header = p2p_header(t);
        let guard = t.storage();
        let storage = host::cpu(&guard).expect("device checked by the group");
        let mut copy = None;
        let (s, off) = host::contiguous_source(storage, t.layout(), &mut copy);
        self.send_words(&header, dst, ctx)?;
        // SAFETY: `s` (n contiguous elements from `off`) is borrowed under the read guard until
        // the request completes (`wait`) or is leaked on failure.
        let d = unsafe { raw::isend(self.comm, host::ptr(s, off), n, t.dtype(), dst, DATA_TAG) };
        let d = self.started(ctx, d)?;
        self.wait(d, ctx, ())?;
        drop(guard);
        Ok(())
    }

    fn recv(&self, t: &Tensor, src: usize, ctx: &WaitCtx) -> Result<(), DistError> {
        let mine = p2p_header(t);
        let theirs = self.recv_words(WORDS, src, ctx)?;
        let (n_theirs, dtype_theirs) = (theirs[3] as usize, dtype_of_code(theirs[2]));
        let matches = theirs[..] == mine[..];
        // On a mismatch the sender's data is still received (into a scratch buffer of its
        // size), so that the sender completes instead of waiting for a receive that never comes.
        let n = if matches { t.numel() } else { n_theirs };
        let dtype = if matches {
            t.dtype()
        } else {
            dtype_theirs.unwrap_or(DType::U8)
        };
        check_count(ctx, n)?;
        let mut recv = host::uninit(n, dtype);
        // SAFETY: `recv` holds `n` elements of `dtype` (the sender's count and dtype) and is
        // returned by `wait` only on completion, otherwise leaked.
        let d = unsafe {
            raw::irecv(
                self.comm,
                host::ptr_mut(&mut recv, 0),
                n,
                dtype,
                src,
                DATA_TAG,
            )
        };
        let d = self.started(ctx, d)?;
        let recv = self.wait(d, ctx, recv)?;
        if !matches {
            return Err(p2p_mismatch(self.rank, src, &theirs, &mine));
        }
        host::write_back(t, recv);
        Ok(())
    }

    fn barrier(&self, ctx: &WaitCtx) -> Result<(), DistError> {
        let req = self.started(ctx, raw::ibarrier(self.comm))?;
        self.wait(req, ctx, ())
    }

    fn start_all_reduce(&self, bucket: &Tensor, op: &str) -> Result<Box<dyn Pending>, DistError> {
        let n = bucket.numel();
        let mut recv = host::uninit(n, bucket.dtype());
        let guard = bucket.storage();
        let storage = host::cpu(&guard).map_err(|message| DistError::InvalidArgument {
            rank: self.rank,
            op: "DistributedDataParallel",
            message,
        })?;
        // SAFETY: `bucket` is contiguous and its storage's whole extent (the caller's contract),
        // kept alive by the clone held in `MpiPending`, and nobody writes it until the request
        // completes; `recv` (n elements) is moved into `MpiPending` and leaked if the request
        // never completes.
        let req = unsafe {
            raw::iallreduce(
                self.comm,
                host::ptr(storage, 0),
                host::ptr_mut(&mut recv, 0),
                n,
                bucket.dtype(),
                ReduceOp::Sum,
            )
        }
        .map_err(|message| DistError::Backend {
            rank: self.rank,
            op: op.to_string(),
            message,
        })?;
        drop(guard);
        Ok(Box::new(MpiPending {
            req: Some(req),
            recv: Some(recv),
            bucket: Some(bucket.clone()),
        }))
    }

    fn abandon(&self) {
        // Nothing to do: leaving the job (`finalize_once`) finalizes only if every rank does.
    }
}

impl Drop for MpiTransport {
    fn drop(&mut self) {
        finalize_once();
    }
}

/// `recv`'s error when the sender's tensor differs from the receiving one.
pub(crate) fn p2p_mismatch(rank: usize, src: usize, theirs: &[i64], mine: &[i64]) -> DistError {
    let describe = |w: &[i64]| crate::header::Header::describe_words(w, |_, _| String::new());
    DistError::Mismatch {
        rank,
        op: "recv",
        message: format!(
            "rank {src} sent {}, but this rank receives into {}",
            describe(theirs).trim_start_matches("send of "),
            describe(mine).trim_start_matches("send of ")
        ),
    }
}

/// A point-to-point header: the tensor's dtype and shape.
pub(crate) fn p2p_header(t: &Tensor) -> [i64; WORDS] {
    crate::header::Header::new(crate::header::Kind::Send, 0, Some(t.dtype()), t.shape()).encode()
}

/// A bucket's all-reduce in flight.
struct MpiPending {
    req: Option<Request>,
    recv: Option<CpuStorage>,
    bucket: Option<Tensor>,
}

impl Pending for MpiPending {
    fn test(&mut self) -> Result<bool, String> {
        let Some(req) = self.req.as_mut() else {
            return Ok(true);
        };
        if !req.test()? {
            return Ok(false);
        }
        self.req = None;
        let (recv, bucket) = (self.recv.take().unwrap(), self.bucket.take().unwrap());
        host::write_back(&bucket, recv);
        Ok(true)
    }
}

impl Drop for MpiPending {
    fn drop(&mut self) {
        if self.req.is_some() {
            // Never completed: MPI may still read the bucket and write `recv`.
            std::mem::forget(self.recv.take());
            std::mem::forget(self.bucket.take());
        }
    }
}
