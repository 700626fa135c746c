//! `DistributedDataParallel`: data-parallel training across the ranks of a process group
//! (`torch.nn.parallel.DistributedDataParallel`).

mod reducer;

pub use reducer::ReductionStats;

use crate::error::DistError;
use crate::group::{default_group, ProcessGroup};
use crate::header::{Header, Kind};
use ember_autograd::{no_grad, DType, RemovableHandle, Tensor};
use ember_nn::Module;
use reducer::Reducer;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Options of [`DistributedDataParallel::with_options`] (PyTorch's constructor arguments).
#[derive(Clone, Debug)]
pub struct DdpOptions {
    /// The group to train across (default: the default group).
    pub group: Option<ProcessGroup>,
    /// Bucket size in MiB (PyTorch's `bucket_cap_mb`, default 25).
    pub bucket_cap_mb: f64,
    /// Broadcast rank 0's buffers (BatchNorm's running statistics) before each forward that
    /// runs with grad mode on, outside `no_sync` (PyTorch's `broadcast_buffers`, default true).
    pub broadcast_buffers: bool,
}

impl Default for DdpOptions {
    fn default() -> Self {
        DdpOptions {
            group: None,
            bucket_cap_mb: 25.0,
            broadcast_buffers: true,
        }
    }
}

/// Trains `module` on every rank of a process group as one model: each rank runs forward and
/// backward on its own part of the batch, and the gradients are averaged across the ranks
/// during backward, so that every rank's optimizer takes the same step.
///
/// * **Construction** checks that every rank has the same parameters (count, shapes, dtypes)
///   and copies rank 0's parameters and buffers to the others.
/// * **Backward** all-reduces the gradients in buckets of about `bucket_cap_mb` (25 MiB; the
///   first 1 MiB), in reverse parameter order: each bucket starts, without blocking, from the
///   post-accumulate-grad hook of its last parameter, while backward goes on with the earlier
///   layers; the last hook waits for the buckets still in flight and writes back the gradients
///   divided by the world size. When `loss.backward()` returns, `.grad()` holds the average.
/// * **Forward** ([`forward`](Self::forward)) first broadcasts rank 0's buffers, when grad
///   mode is on and outside `no_sync` (unless `broadcast_buffers` is off), so that every rank
///   trains from the same BatchNorm statistics.
/// * [`no_sync`](Self::no_sync) skips the reduction, to accumulate gradients locally over
///   several backwards; the first backward after it reduces the accumulated sum.
///
/// Every parameter must receive a gradient in every backward (PyTorch's default
/// `find_unused_parameters=False`); otherwise the next `forward` fails with PyTorch's
/// message naming the parameters. A communication failure during backward (a timeout, a peer
/// that died) clears the gradients, so that no optimizer step applies an unreduced one, and is
/// returned by [`backward`](Self::backward) and by every later `forward`.
///
/// ```no_run
/// use ember_distributed::{init_process_group, Backend, DistributedDataParallel};
/// use ember_nn::{self as nn, Module};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pg = init_process_group(Backend::Mpi)?; // under `mpirun -np N`
/// let model = nn::Sequential::new().add(nn::Linear::new(784, 10));
/// let ddp = DistributedDataParallel::new(model)?;
/// let x = ember_autograd::Tensor::randn([64 / pg.world_size(), 784]);
/// let loss = ddp.forward(&x)?.pow(2.0).mean();
/// ddp.backward(&loss)?; // gradients are now averaged over the ranks
/// # Ok(()) }
/// ```
pub struct DistributedDataParallel<M: Module> {
    module: M,
    group: ProcessGroup,
    reducer: Arc<Mutex<Reducer>>,
    _hooks: Hooks,
    broadcast_buffers: bool,
}

/// The gradient hooks on the parameters, removed when the wrapper goes away (the parameters
/// may outlive it, through `into_module` or the optimizer).
struct Hooks(Vec<RemovableHandle>);

impl Drop for Hooks {
    fn drop(&mut self) {
        for h in &self.0 {
            h.remove();
        }
    }
}

/// While alive, `backward` accumulates gradients locally without reducing them
/// ([`DistributedDataParallel::no_sync`]).
pub struct NoSync<'a> {
    reducer: &'a Mutex<Reducer>,
    was: bool,
}

impl Drop for NoSync<'_> {
    fn drop(&mut self) {
        lock(self.reducer).sync = self.was;
    }
}

fn lock(r: &Mutex<Reducer>) -> MutexGuard<'_, Reducer> {
    r.lock().unwrap_or_else(|e| e.into_inner())
}

/// FNV-1a of a parameter's dtype and shape, for the cross-rank model check.
fn param_hash(t: &Tensor) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in std::iter::once(crate::header::dtype_code(t.dtype()) as u64)
        .chain(t.shape().iter().map(|&d| d as u64 + 7))
    {
        h = (h ^ x).wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// Broadcasts `tensors` from rank 0, one flat message per dtype.
fn broadcast_coalesced(group: &ProcessGroup, tensors: &[Tensor]) -> Result<(), DistError> {
    let _g = no_grad();
    let mut dtypes: Vec<DType> = tensors.iter().map(|t| t.dtype()).collect();
    dtypes.dedup();
    dtypes.sort_by_key(|d| crate::header::dtype_code(*d));
    dtypes.dedup();
    for dtype in dtypes {
        let members: Vec<&Tensor> = tensors.iter().filter(|t| t.dtype() == dtype).collect();
        let flat: Vec<Tensor> = members.iter().map(|t| t.reshape([t.numel()])).collect();
        let flat = Tensor::cat(&flat, 0);
        group.broadcast(&flat, 0)?;
        if group.rank() != 0 {
            let mut offset = 0;
            for t in members {
                t.copy_(&flat.narrow(0, offset, t.numel()).view(t.shape()));
                offset += t.numel();
            }
        }
    }
    Ok(())
}

impl<M: Module> DistributedDataParallel<M> {
    /// Wraps `module` for training across the default group, with PyTorch's defaults.
    pub fn new(module: M) -> Result<Self, DistError> {
        Self::with_options(module, DdpOptions::default())
    }

    /// Wraps `module` with `options`.
    pub fn with_options(module: M, options: DdpOptions) -> Result<Self, DistError> {
        let group = match options.group {
            Some(g) => g,
            None => default_group()?,
        };
        if options.bucket_cap_mb.is_nan() || options.bucket_cap_mb <= 0.0 {
            return Err(DistError::InvalidArgument {
                rank: group.rank(),
                op: "DistributedDataParallel",
                message: format!(
                    "bucket_cap_mb must be positive, got {}",
                    options.bucket_cap_mb
                ),
            });
        }
        let params: Vec<(String, Tensor)> = module
            .named_parameters()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        Self::verify_same_model(&group, &params)?;
        let mut everything: Vec<Tensor> = params.iter().map(|(_, t)| t.clone()).collect();
        everything.extend(module.buffers());
        broadcast_coalesced(&group, &everything)?;
        let cap = (options.bucket_cap_mb * (1 << 20) as f64) as usize;
        let reducer = Arc::new(Mutex::new(Reducer::new(
            group.clone(),
            params.clone(),
            cap.max(1),
        )));
        let hooks = params
            .iter()
            .enumerate()
            .map(|(i, (_, p))| {
                let weak: Weak<Mutex<Reducer>> = Arc::downgrade(&reducer);
                p.register_post_accumulate_grad_hook(move |_| {
                    if let Some(r) = weak.upgrade() {
                        lock(&r).grad_ready(i);
                    }
                })
            })
            .collect();
        Ok(DistributedDataParallel {
            module,
            group,
            reducer,
            _hooks: Hooks(hooks),
            broadcast_buffers: options.broadcast_buffers,
        })
    }

    /// PyTorch's `_verify_param_shape_across_processes`: the same number of parameters, with
    /// the same shapes and dtypes, on every rank.
    fn verify_same_model(
        group: &ProcessGroup,
        params: &[(String, Tensor)],
    ) -> Result<(), DistError> {
        let n = params.len();
        let header = Header::new(Kind::Verify, n as i64, None, &[]);
        let hashes: Vec<i64> = params.iter().map(|(_, t)| param_hash(t)).collect();
        let all = group
            .exchange_checked(header, &hashes)
            .map_err(|e| match e {
                DistError::Mismatch { rank, .. } => DistError::Mismatch {
                    rank,
                    op: "DistributedDataParallel",
                    message: format!(
                        "DDP expects same model across all ranks, but rank {rank} has {n} params \
                     while another rank has a different number ({e})"
                    ),
                },
                other => other,
            })?;
        for (r, theirs) in all.chunks(n.max(1)).enumerate().take(group.world_size()) {
            if n == 0 {
                break;
            }
            if let Some(i) = (0..n).find(|&i| theirs[i] != hashes[i]) {
                let (name, t) = &params[i];
                return Err(DistError::Mismatch {
                    rank: group.rank(),
                    op: "DistributedDataParallel",
                    message: format!(
                        "DDP expects same model across all ranks, but parameter {i} ('{name}', a {} \
                         tensor of shape {:?} here) has another shape or dtype on rank {r}",
                        t.dtype(),
                        t.shape()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The wrapped module (PyTorch's `ddp.module`).
    pub fn module(&self) -> &M {
        &self.module
    }

    /// The wrapped module, mutably.
    pub fn module_mut(&mut self) -> &mut M {
        &mut self.module
    }

    /// Unwraps the module (its parameters lose the gradient hooks).
    pub fn into_module(self) -> M {
        self.module
    }

    /// The process group.
    pub fn process_group(&self) -> &ProcessGroup {
        &self.group
    }

    /// The module's parameters (give them to the optimizer).
    pub fn parameters(&self) -> Vec<Tensor> {
        self.module.parameters()
    }

    /// Runs the module's forward, after broadcasting rank 0's buffers (with grad mode on and
    /// outside `no_sync`). Fails when the previous backward's reduction did not finish (a
    /// parameter without gradient) or failed.
    pub fn forward(&self, input: &Tensor) -> Result<Tensor, DistError> {
        let syncing = {
            let mut r = lock(&self.reducer);
            r.check_finished()?;
            r.sync
        };
        if self.broadcast_buffers
            && syncing
            && ember_autograd::is_grad_enabled()
            && self.group.world_size() > 1
        {
            let buffers = self.module.buffers();
            if !buffers.is_empty() {
                broadcast_coalesced(&self.group, &buffers)?;
            }
        }
        Ok(self.module.forward(input))
    }

    /// `loss.backward()`, returning the error of a reduction that failed during it (after
    /// which the gradients are cleared).
    pub fn backward(&self, loss: &Tensor) -> Result<(), DistError> {
        loss.backward();
        match &lock(&self.reducer).error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Skips gradient reduction while the returned guard lives (PyTorch's `no_sync()`), to
    /// accumulate gradients over several micro-batches; the first backward after the guard is
    /// dropped reduces the accumulated gradients.
    pub fn no_sync(&self) -> NoSync<'_> {
        let was = std::mem::replace(&mut lock(&self.reducer).sync, false);
        NoSync {
            reducer: &self.reducer,
            was,
        }
    }

    /// What the last completed reduction did: bucket launch and completion times, and how
    /// much of the communication backward left exposed.
    pub fn last_reduction(&self) -> ReductionStats {
        lock(&self.reducer).last.clone()
    }

    /// Number of gradient buckets.
    pub fn num_buckets(&self) -> usize {
        lock(&self.reducer).num_buckets()
    }

    /// The parameter indices (in `parameters()` order) of each bucket, in launch order.
    pub fn bucket_assignment(&self) -> Vec<Vec<usize>> {
        lock(&self.reducer).bucket_members()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_nn as nn;

    fn mlp() -> nn::Sequential {
        nn::Sequential::new()
            .add(nn::Linear::new(8, 16))
            .add(nn::ReLU)
            .add(nn::Linear::new(16, 16))
            .add(nn::ReLU)
            .add(nn::Linear::new(16, 4))
    }

    fn ddp(cap_mb: f64) -> DistributedDataParallel<nn::Sequential> {
        ember_autograd::manual_seed(0);
        DistributedDataParallel::with_options(
            mlp(),
            DdpOptions {
                group: Some(ProcessGroup::single()),
                bucket_cap_mb: cap_mb,
                broadcast_buffers: true,
            },
        )
        .unwrap()
    }

    #[test]
    fn buckets_start_during_backward_and_gradients_match_plain_training() {
        // One parameter per bucket (a tiny cap): six buckets, last layer's first.
        let model = ddp(1e-6);
        assert_eq!(model.num_buckets(), 6);
        assert_eq!(model.bucket_assignment()[0], vec![5]);
        let x = Tensor::randn([5, 8]);
        let loss = model.forward(&x).unwrap().pow(2.0).mean();
        model.backward(&loss).unwrap();
        let returned = std::time::Instant::now();
        let s = model.last_reduction();
        assert_eq!(s.buckets, 6);
        assert_eq!(s.launched.len(), 6);
        assert!(s.launched.iter().all(|&t| t <= returned));
        // The first bucket started when only its own parameter's gradient was final.
        assert_eq!(s.ready_at_launch, vec![1, 2, 3, 4, 5, 6]);
        assert!(s
            .completed
            .iter()
            .zip(&s.launched)
            .all(|(c, l)| c.unwrap() >= *l));
        // World size 1: the averaged gradient is the gradient.
        let plain = mlp_copy(&model);
        plain.forward(&x).pow(2.0).mean().backward();
        for (a, b) in model.parameters().iter().zip(plain.parameters()) {
            assert!(a.grad().unwrap().allclose(&b.grad().unwrap(), 1e-6, 1e-7));
        }
    }

    /// A plain copy of the wrapped model (same weights, no hooks).
    fn mlp_copy(model: &DistributedDataParallel<nn::Sequential>) -> nn::Sequential {
        let plain = mlp();
        let _g = no_grad();
        for (dst, src) in plain.parameters().iter().zip(model.parameters()) {
            dst.copy_(&src);
        }
        plain
    }

    #[test]
    fn no_sync_accumulates_and_the_next_backward_reduces_the_sum() {
        let model = ddp(25.0);
        assert_eq!(model.num_buckets(), 1);
        let (x1, x2) = (Tensor::randn([3, 8]), Tensor::randn([3, 8]));
        {
            let _g = model.no_sync();
            model.forward(&x1).unwrap().sum().backward();
            assert_eq!(
                model.last_reduction().buckets,
                0,
                "nothing reduced under no_sync"
            );
        }
        model.forward(&x2).unwrap().sum().backward();
        assert_eq!(model.last_reduction().buckets, 1);
        let plain = mlp_copy(&model);
        plain.forward(&x1).sum().backward();
        plain.forward(&x2).sum().backward();
        for (a, b) in model.parameters().iter().zip(plain.parameters()) {
            assert!(a.grad().unwrap().allclose(&b.grad().unwrap(), 1e-6, 1e-6));
        }
    }

    #[test]
    fn an_unused_parameter_fails_the_next_forward_with_pytorchs_message() {
        let model = ddp(1e-6);
        let x = Tensor::randn([2, 8]);
        // Only the first layer's output is used: the later layers get no gradient.
        model.module().children()[0].forward(&x).sum().backward();
        let e = model.forward(&x).unwrap_err().to_string();
        assert!(
            e.contains("Expected to have finished reduction in the prior iteration"),
            "{e}"
        );
        assert!(
            e.contains("2 ('2.weight')") && e.contains("5 ('4.bias')"),
            "{e}"
        );
        assert!(model.parameters().iter().all(|p| p.grad().is_none()));
    }
}
