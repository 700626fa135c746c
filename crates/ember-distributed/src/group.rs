//! `ProcessGroup`: the ranks of a job and the collectives between them
//! (`torch.distributed`'s process group and its functions), and the default group that
//! `init_process_group` creates.
//!
//! Every collective runs the same steps: check the arguments on this rank, exchange headers with
//! every rank (`header.rs`: a mismatch, or a rank whose arguments were refused, is reported by
//! all of them), then let the transport move the elements, polling with the group's timeout
//! (`wait.rs`). A transport failure (timeout, dead peer, library error) marks the group broken.

use crate::error::DistError;
use crate::header::{self, Header, Kind};
use crate::op::{Backend, ReduceOp};
use crate::transport::{Pending, Transport};
use crate::wait::WaitCtx;
use ember_autograd::Tensor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The default timeout of blocking calls: 10 minutes, as PyTorch's.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The ranks of a distributed job and the collectives between them. Cheap to clone (a shared
/// handle); the group's library is finalized when the last handle is dropped
/// ([`destroy_process_group`] drops the default one), or at process exit.
///
/// Tensors are communicated in place, any layout (a non-contiguous tensor goes through a
/// contiguous copy) and dtype (`bool`, `uint8`, `int64`, `float32`, `float64`). Every call
/// blocks until done, or fails after [`timeout`](Self::timeout).
#[derive(Clone)]
pub struct ProcessGroup(Arc<Inner>);

struct Inner {
    backend: Backend,
    transport: Box<dyn Transport>,
    timeout_ms: AtomicU64,
    /// The first transport failure; the group refuses every later call.
    broken: Mutex<Option<String>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self
            .broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            self.transport.abandon();
        }
    }
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ProcessGroup(backend={:?}, rank={}, world_size={})",
            self.backend(),
            self.rank(),
            self.world_size()
        )
    }
}

impl ProcessGroup {
    pub(crate) fn new(backend: Backend, transport: Box<dyn Transport>, timeout: Duration) -> Self {
        ProcessGroup(Arc::new(Inner {
            backend,
            transport,
            timeout_ms: AtomicU64::new(timeout.as_millis() as u64),
            broken: Mutex::new(None),
        }))
    }

    /// This process's rank, `0..world_size()`.
    pub fn rank(&self) -> usize {
        self.0.transport.rank()
    }

    /// The number of processes in the group.
    pub fn world_size(&self) -> usize {
        self.0.transport.world_size()
    }

    /// The communication engine.
    pub fn backend(&self) -> Backend {
        self.0.backend
    }

    /// How long a blocking call waits before failing with [`DistError::Timeout`].
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.0.timeout_ms.load(Ordering::Relaxed))
    }

    /// Sets the timeout of later calls.
    pub fn set_timeout(&self, timeout: Duration) {
        self.0
            .timeout_ms
            .store(timeout.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    fn ctx<'a>(
        &'a self,
        op: &'a str,
        peer: Option<usize>,
        departed: &'a dyn Fn() -> Option<(usize, String)>,
    ) -> WaitCtx<'a> {
        WaitCtx {
            rank: self.rank(),
            op,
            timeout: self.timeout(),
            peers: self.0.transport.peers(),
            peer,
            departed,
        }
    }

    fn departed(&self) -> Option<(usize, String)> {
        self.0.transport.departed()
    }

    fn usable(&self) -> Result<(), DistError> {
        match &*self.0.broken.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(cause) => Err(DistError::Broken {
                rank: self.rank(),
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Passes `r` through, marking the group broken on a transport failure.
    pub(crate) fn guard<T>(&self, r: Result<T, DistError>) -> Result<T, DistError> {
        if let Err(e) = &r {
            if e.breaks_group() {
                let mut b = self.0.broken.lock().unwrap_or_else(|e| e.into_inner());
                b.get_or_insert_with(|| e.to_string());
                self.0.transport.abandon();
            }
        }
        r
    }

    fn invalid(&self, op: &'static str, message: String) -> DistError {
        DistError::InvalidArgument {
            rank: self.rank(),
            op,
            message,
        }
    }

    /// Checks `tensors` are on this backend's device.
    fn check_devices(&self, op: &'static str, tensors: &[&Tensor]) -> Result<(), DistError> {
        for t in tensors {
            self.0
                .transport
                .check_device(t)
                .map_err(|m| self.invalid(op, m))?;
        }
        Ok(())
    }

    /// The header exchange, then `body` with the transport, for one collective. `refused` is
    /// this rank's argument error, reported after the exchange so that the other ranks learn
    /// of it instead of waiting.
    fn collective(
        &self,
        op: &'static str,
        header: Header,
        refused: Result<(), DistError>,
        body: impl FnOnce(&dyn Transport, &WaitCtx) -> Result<(), DistError>,
    ) -> Result<(), DistError> {
        self.usable()?;
        let words = match refused {
            Ok(()) => header.encode(),
            Err(_) => header.encode_invalid(),
        };
        let desc = Header::describe_words(&words, header::param_name);
        let departed = || self.departed();
        let ctx = self.ctx(&desc, None, &departed);
        let all = self.guard(self.0.transport.exchange(&words, &ctx))?;
        refused?;
        header::check(&all, self.rank(), op)?;
        self.guard(body(&*self.0.transport, &ctx))
    }

    /// Waits until every rank has called `barrier` (`dist.barrier()`).
    pub fn barrier(&self) -> Result<(), DistError> {
        let h = Header::new(Kind::Barrier, 0, None, &[]);
        self.collective("barrier", h, Ok(()), |t, ctx| t.barrier(ctx))
    }

    /// Combines `tensor` across all ranks with `op`, leaving the result in `tensor` on every
    /// rank (`dist.all_reduce`). `ReduceOp::Avg` takes floating-point tensors only; on `bool`
    /// tensors, `Sum` and `Max` are "or", `Min` and `Product` are "and".
    pub fn all_reduce(&self, tensor: &Tensor, op: ReduceOp) -> Result<(), DistError> {
        let h = Header::new(
            Kind::AllReduce,
            op.code(),
            Some(tensor.dtype()),
            tensor.shape(),
        );
        let refused = self.check_devices("all_reduce", &[tensor]).and_then(|_| {
            if op == ReduceOp::Avg && !tensor.dtype().is_float() {
                return Err(self.invalid(
                    "all_reduce",
                    format!(
                        "ReduceOp.AVG takes floating-point tensors, got a {} tensor",
                        tensor.dtype()
                    ),
                ));
            }
            Ok(())
        });
        let ws = self.world_size();
        self.collective("all_reduce", h, refused, |t, ctx| {
            if op == ReduceOp::Avg {
                t.all_reduce(tensor, ReduceOp::Sum, ctx)?;
                let _g = ember_autograd::no_grad();
                tensor.div_(ws as f64);
                Ok(())
            } else {
                t.all_reduce(tensor, op, ctx)
            }
        })
    }

    fn check_rank(&self, op: &'static str, what: &str, r: usize) -> Result<(), DistError> {
        if r >= self.world_size() {
            return Err(self.invalid(
                op,
                format!(
                    "Invalid {what} rank {r}: the group has ranks 0..{}",
                    self.world_size()
                ),
            ));
        }
        Ok(())
    }

    /// Copies `tensor` from rank `src` into `tensor` on every other rank (`dist.broadcast`).
    pub fn broadcast(&self, tensor: &Tensor, src: usize) -> Result<(), DistError> {
        let h = Header::new(
            Kind::Broadcast,
            src as i64,
            Some(tensor.dtype()),
            tensor.shape(),
        );
        let refused = self
            .check_devices("broadcast", &[tensor])
            .and_then(|_| self.check_rank("broadcast", "src", src));
        self.collective("broadcast", h, refused, |t, ctx| {
            t.broadcast(tensor, src, ctx)
        })
    }

    /// Fills `outputs[r]` with rank `r`'s `input` on every rank (`dist.all_gather`): one output
    /// per rank, each of `input`'s shape and dtype.
    pub fn all_gather(&self, outputs: &[Tensor], input: &Tensor) -> Result<(), DistError> {
        let h = Header::new(Kind::AllGather, 0, Some(input.dtype()), input.shape());
        let refused = self.check_list("all_gather", "output", outputs, input);
        self.collective("all_gather", h, refused, |t, ctx| {
            t.all_gather(outputs, input, ctx)
        })
    }

    /// Reduces `inputs[r]` across the ranks with `op` and leaves the result in `output` on
    /// rank `r` (`dist.reduce_scatter`): one input per rank, each of `output`'s shape and
    /// dtype.
    pub fn reduce_scatter(
        &self,
        output: &Tensor,
        inputs: &[Tensor],
        op: ReduceOp,
    ) -> Result<(), DistError> {
        let h = Header::new(
            Kind::ReduceScatter,
            op.code(),
            Some(output.dtype()),
            output.shape(),
        );
        let refused = self
            .check_list("reduce_scatter", "input", inputs, output)
            .and_then(|_| {
                if op == ReduceOp::Avg && !output.dtype().is_float() {
                    return Err(self.invalid(
                        "reduce_scatter",
                        format!(
                            "ReduceOp.AVG takes floating-point tensors, got a {} tensor",
                            output.dtype()
                        ),
                    ));
                }
                Ok(())
            });
        let ws = self.world_size();
        self.collective("reduce_scatter", h, refused, |t, ctx| {
            if op == ReduceOp::Avg {
                t.reduce_scatter(output, inputs, ReduceOp::Sum, ctx)?;
                let _g = ember_autograd::no_grad();
                output.div_(ws as f64);
                Ok(())
            } else {
                t.reduce_scatter(output, inputs, op, ctx)
            }
        })
    }

    /// A list with one tensor per rank, each like `like`.
    fn check_list(
        &self,
        op: &'static str,
        what: &str,
        list: &[Tensor],
        like: &Tensor,
    ) -> Result<(), DistError> {
        let all: Vec<&Tensor> = list.iter().chain([like]).collect();
        self.check_devices(op, &all)?;
        if list.len() != self.world_size() {
            return Err(self.invalid(
                op,
                format!(
                    "the {what} list holds {} tensors, but the group has {} ranks",
                    list.len(),
                    self.world_size()
                ),
            ));
        }
        for (i, t) in list.iter().enumerate() {
            if t.shape() != like.shape() || t.dtype() != like.dtype() {
                return Err(self.invalid(
                    op,
                    format!(
                        "{what} tensor {i} is a {} tensor of shape {:?}, expected {} of shape {:?}",
                        t.dtype(),
                        t.shape(),
                        like.dtype(),
                        like.shape()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_peer(&self, op: &'static str, what: &str, peer: usize) -> Result<(), DistError> {
        self.check_rank(op, what, peer)?;
        if peer == self.rank() {
            return Err(self.invalid(
                op,
                format!("Invalid {what} rank: should not be the same as the rank of the current process."),
            ));
        }
        Ok(())
    }

    /// Sends `tensor` to rank `dst`, which must `recv` it into a tensor of the same shape and
    /// dtype (`dist.send`).
    pub fn send(&self, tensor: &Tensor, dst: usize) -> Result<(), DistError> {
        self.usable()?;
        self.check_devices("send", &[tensor])?;
        self.check_peer("send", "destination", dst)?;
        let desc = format!(
            "send to rank {dst} of a {} tensor of shape {:?}",
            tensor.dtype(),
            tensor.shape()
        );
        let departed = || self.departed();
        let ctx = self.ctx(&desc, Some(dst), &departed);
        let r = self.0.transport.send(tensor, dst, &ctx);
        self.guard(r)
    }

    /// Receives into `tensor` what rank `src` sends (`dist.recv`); returns `src`. A sender's
    /// tensor of another shape or dtype is a [`DistError::Mismatch`] naming both.
    pub fn recv(&self, tensor: &Tensor, src: usize) -> Result<usize, DistError> {
        self.usable()?;
        self.check_devices("recv", &[tensor])?;
        self.check_peer("recv", "source", src)?;
        let desc = format!(
            "recv from rank {src} into a {} tensor of shape {:?}",
            tensor.dtype(),
            tensor.shape()
        );
        let departed = || self.departed();
        let ctx = self.ctx(&desc, Some(src), &departed);
        let r = self.0.transport.recv(tensor, src, &ctx);
        self.guard(r).map(|()| src)
    }

    /// Every rank's `words` after a header check (`DistributedDataParallel`'s model check).
    pub(crate) fn exchange_checked(
        &self,
        header: Header,
        words: &[i64],
    ) -> Result<Vec<i64>, DistError> {
        let mut all = Vec::new();
        self.collective("DistributedDataParallel", header, Ok(()), |t, ctx| {
            all = t.exchange(words, ctx)?;
            Ok(())
        })?;
        Ok(all)
    }

    /// Starts summing a bucket without waiting (see `Transport::start_all_reduce`).
    pub(crate) fn start_all_reduce(
        &self,
        bucket: &Tensor,
        op: &str,
    ) -> Result<Box<dyn Pending>, DistError> {
        self.usable()?;
        let r = self.0.transport.start_all_reduce(bucket, op);
        self.guard(r)
    }

    /// Polls `pending` without blocking: true once complete.
    pub(crate) fn test(&self, pending: &mut dyn Pending, op: &str) -> Result<bool, DistError> {
        let r = pending.test().map_err(|message| DistError::Backend {
            rank: self.rank(),
            op: op.to_string(),
            message,
        });
        self.guard(r)
    }

    /// Waits for `pending` with the group's timeout.
    pub(crate) fn wait(&self, pending: &mut dyn Pending, op: &str) -> Result<(), DistError> {
        let departed = || self.departed();
        let r = self.ctx(op, None, &departed).poll(|| pending.test());
        self.guard(r)
    }

    /// A group of one process without any library, for tests of the logic above it.
    #[cfg(test)]
    pub(crate) fn single() -> ProcessGroup {
        use crate::peers::{Peer, Peers};
        let me = Peer {
            host: "localhost".into(),
            pid: std::process::id(),
        };
        let t = crate::transport::single::Single(Peers::new(0, vec![me]));
        ProcessGroup::new(Backend::Mpi, Box::new(t), DEFAULT_TIMEOUT)
    }
}

// ----- the default group -----

static DEFAULT: Mutex<Option<ProcessGroup>> = Mutex::new(None);

fn default_slot() -> std::sync::MutexGuard<'static, Option<ProcessGroup>> {
    DEFAULT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Joins the job this process was launched in (by `mpirun`) and makes it the default group
/// (`dist.init_process_group(backend)`), with the default 10-minute timeout.
///
/// Fails with [`DistError::NoMpiEnvironment`] when the program was not started by `mpirun`,
/// and with [`DistError::Unavailable`] when Ember was built without the backend's feature
/// (`mpi`, `nccl`).
pub fn init_process_group(backend: Backend) -> Result<ProcessGroup, DistError> {
    init_process_group_with_timeout(backend, DEFAULT_TIMEOUT)
}

/// [`init_process_group`] with another timeout for blocking calls (PyTorch's `timeout=`).
pub fn init_process_group_with_timeout(
    backend: Backend,
    timeout: Duration,
) -> Result<ProcessGroup, DistError> {
    let mut slot = default_slot();
    if slot.is_some() {
        return Err(DistError::AlreadyInitialized {
            reason: "trying to initialize the default process group twice (call \
                     destroy_process_group first)"
                .into(),
        });
    }
    let transport: Box<dyn Transport> = match backend {
        Backend::Mpi => mpi_transport(backend, timeout)?,
        Backend::Nccl => crate::nccl::transport(timeout)?,
    };
    let pg = ProcessGroup::new(backend, transport, timeout);
    *slot = Some(pg.clone());
    Ok(pg)
}

#[cfg(feature = "mpi")]
pub(crate) fn mpi_transport(
    backend: Backend,
    timeout: Duration,
) -> Result<Box<dyn Transport>, DistError> {
    Ok(Box::new(crate::mpi::MpiTransport::init(backend, timeout)?))
}

#[cfg(not(feature = "mpi"))]
pub(crate) fn mpi_transport(
    backend: Backend,
    _timeout: Duration,
) -> Result<Box<dyn Transport>, DistError> {
    Err(DistError::Unavailable {
        backend,
        reason: "Ember was built without MPI: enable the `mpi` feature of ember-distributed \
                 (or of ember), which needs Open MPI (Debian: libopenmpi-dev openmpi-bin \
                 libclang-dev)"
            .into(),
    })
}

/// Drops the default group (`dist.destroy_process_group()`); its library is finalized once no
/// other handle to it is left.
pub fn destroy_process_group() {
    default_slot().take();
}

/// True while a default group exists (`dist.is_initialized()`).
pub fn is_initialized() -> bool {
    default_slot().is_some()
}

/// The default group.
pub fn default_group() -> Result<ProcessGroup, DistError> {
    default_slot().clone().ok_or(DistError::NotInitialized)
}

/// This process's rank in the default group (`dist.get_rank()`).
pub fn get_rank() -> Result<usize, DistError> {
    default_group().map(|g| g.rank())
}

/// The number of processes in the default group (`dist.get_world_size()`).
pub fn get_world_size() -> Result<usize, DistError> {
    default_group().map(|g| g.world_size())
}

/// [`ProcessGroup::barrier`] on the default group.
pub fn barrier() -> Result<(), DistError> {
    default_group()?.barrier()
}

/// [`ProcessGroup::all_reduce`] on the default group.
pub fn all_reduce(tensor: &Tensor, op: ReduceOp) -> Result<(), DistError> {
    default_group()?.all_reduce(tensor, op)
}

/// [`ProcessGroup::broadcast`] on the default group.
pub fn broadcast(tensor: &Tensor, src: usize) -> Result<(), DistError> {
    default_group()?.broadcast(tensor, src)
}

/// [`ProcessGroup::all_gather`] on the default group.
pub fn all_gather(outputs: &[Tensor], input: &Tensor) -> Result<(), DistError> {
    default_group()?.all_gather(outputs, input)
}

/// [`ProcessGroup::reduce_scatter`] on the default group.
pub fn reduce_scatter(output: &Tensor, inputs: &[Tensor], op: ReduceOp) -> Result<(), DistError> {
    default_group()?.reduce_scatter(output, inputs, op)
}

/// [`ProcessGroup::send`] on the default group.
pub fn send(tensor: &Tensor, dst: usize) -> Result<(), DistError> {
    default_group()?.send(tensor, dst)
}

/// [`ProcessGroup::recv`] on the default group.
pub fn recv(tensor: &Tensor, src: usize) -> Result<usize, DistError> {
    default_group()?.recv(tensor, src)
}
