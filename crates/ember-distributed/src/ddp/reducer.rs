//! The reducer behind `DistributedDataParallel`: parameters grouped into flat buckets, and the
//! post-accumulate-grad hook logic that all-reduces each bucket as soon as its last gradient
//! is final, while backward continues with earlier layers.
//!
//! Buckets are filled in reverse parameter order (the order backward produces gradients), the
//! first capped at 1 MiB so communication starts early, the others at `bucket_cap_mb`, one
//! dtype and device per bucket (PyTorch's assignment). They are launched strictly in index
//! order — every rank must issue its collectives in the same order — and the hook of the last
//! parameter waits for all of them and writes the averaged gradients back, so `backward`
//! returns with gradients already averaged, as in PyTorch.

use crate::error::DistError;
use crate::group::ProcessGroup;
use crate::transport::Pending;
use ember_autograd::{no_grad, DType, Device, Tensor};
use std::time::{Duration, Instant};

/// PyTorch's `_DEFAULT_FIRST_BUCKET_BYTES`.
pub(crate) const FIRST_BUCKET_BYTES: usize = 1 << 20;

/// What one backward's reduction did, for profiling and tests
/// ([`DistributedDataParallel::last_reduction`](crate::DistributedDataParallel::last_reduction)).
#[derive(Clone, Debug, Default)]
pub struct ReductionStats {
    /// Number of buckets.
    pub buckets: usize,
    /// When the first gradient hook of the backward ran.
    pub first_hook: Option<Instant>,
    /// When each bucket's all-reduce was started, in bucket order.
    pub launched: Vec<Instant>,
    /// How many parameters' gradients were final when each bucket was started (all of them
    /// for the last bucket; fewer for a bucket started while backward was still running).
    pub ready_at_launch: Vec<usize>,
    /// When each bucket's all-reduce was seen complete, in bucket order.
    pub completed: Vec<Option<Instant>>,
    /// When the last parameter's gradient was final (the end of backward's own work).
    pub all_ready: Option<Instant>,
    /// Time spent blocked, after the last gradient, waiting for buckets still in flight.
    pub exposed_wait: Duration,
    /// When the averaged gradients had been written back.
    pub finished: Option<Instant>,
}

struct Slot {
    tensor: Tensor,
    name: String,
    bucket: usize,
    offset: usize,
    ready: bool,
}

struct Bucket {
    /// The flat gradients (a contiguous tensor owning its storage).
    flat: Tensor,
    params: Vec<usize>,
    waiting_for: usize,
    work: Option<Box<dyn Pending>>,
    launched: bool,
    done: bool,
}

pub(crate) struct Reducer {
    group: ProcessGroup,
    slots: Vec<Slot>,
    buckets: Vec<Bucket>,
    next_launch: usize,
    ready: usize,
    /// False inside `no_sync()`.
    pub(crate) sync: bool,
    /// A failure during backward, returned by the next `forward` or `backward` of the wrapper.
    pub(crate) error: Option<DistError>,
    stats: ReductionStats,
    pub(crate) last: ReductionStats,
}

/// Groups parameters (given in model order) into buckets: reverse order, by dtype and device,
/// the first bucket of each kind capped at `first_cap` bytes and the others at `cap`. Returns
/// each bucket's parameter indices.
pub(crate) fn assign_buckets(
    params: &[(DType, Device, usize)],
    first_cap: usize,
    cap: usize,
) -> Vec<Vec<usize>> {
    /// A bucket being filled: its kind, parameters, bytes, and whether it is the kind's first.
    type Open = ((DType, Device), Vec<usize>, usize, bool);
    let mut done: Vec<Vec<usize>> = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    for i in (0..params.len()).rev() {
        let (dtype, device, numel) = params[i];
        let key = (dtype, device);
        let k = match open.iter().position(|(k, ..)| *k == key) {
            Some(k) => k,
            None => {
                let first = !done.iter().any(|b| {
                    let (d, v, _) = params[b[0]];
                    (d, v) == key
                });
                open.push((key, Vec::new(), 0, first));
                open.len() - 1
            }
        };
        let entry = &mut open[k];
        entry.1.push(i);
        entry.2 += numel * dtype.size_in_bytes();
        let limit = if entry.3 { first_cap } else { cap };
        if entry.2 >= limit {
            let (_, b, _, _) = open.remove(k);
            done.push(b);
        }
    }
    done.extend(open.into_iter().map(|(_, b, _, _)| b));
    done
}

impl Reducer {
    pub(crate) fn new(
        group: ProcessGroup,
        params: Vec<(String, Tensor)>,
        cap_bytes: usize,
    ) -> Reducer {
        let kinds: Vec<(DType, Device, usize)> = params
            .iter()
            .map(|(_, t)| (t.dtype(), t.device(), t.numel()))
            .collect();
        let assignment = assign_buckets(&kinds, FIRST_BUCKET_BYTES.min(cap_bytes), cap_bytes);
        let mut slots: Vec<Slot> = params
            .into_iter()
            .map(|(name, tensor)| Slot {
                tensor,
                name,
                bucket: 0,
                offset: 0,
                ready: false,
            })
            .collect();
        let buckets = assignment
            .into_iter()
            .enumerate()
            .map(|(b, members)| {
                let mut offset = 0;
                for &i in &members {
                    slots[i].bucket = b;
                    slots[i].offset = offset;
                    offset += slots[i].tensor.numel();
                }
                let first = &slots[members[0]].tensor;
                Bucket {
                    flat: Tensor::full_on(&[offset], 0.0, first.dtype(), first.device()),
                    waiting_for: members.len(),
                    params: members,
                    work: None,
                    launched: false,
                    done: false,
                }
            })
            .collect();
        Reducer {
            group,
            slots,
            buckets,
            next_launch: 0,
            ready: 0,
            sync: true,
            error: None,
            stats: ReductionStats::default(),
            last: ReductionStats::default(),
        }
    }

    /// Number of buckets.
    pub(crate) fn num_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// The parameter indices of each bucket.
    pub(crate) fn bucket_members(&self) -> Vec<Vec<usize>> {
        self.buckets.iter().map(|b| b.params.clone()).collect()
    }

    fn op_name(&self, b: usize) -> String {
        let bk = &self.buckets[b];
        format!(
            "DistributedDataParallel's all_reduce of gradient bucket {b} ({} parameters, {} {} elements)",
            bk.params.len(),
            bk.flat.numel(),
            bk.flat.dtype()
        )
    }

    /// The post-accumulate-grad hook of parameter `i`.
    pub(crate) fn grad_ready(&mut self, i: usize) {
        if !self.sync || self.error.is_some() {
            return;
        }
        if let Err(e) = self.mark_ready(i) {
            self.fail(e);
        }
    }

    fn mark_ready(&mut self, i: usize) -> Result<(), DistError> {
        let now = Instant::now();
        self.stats.first_hook.get_or_insert(now);
        let slot = &mut self.slots[i];
        if slot.ready {
            return Err(DistError::Reduction {
                rank: self.group.rank(),
                message: format!(
                    "Expected to mark a variable ready only once. Parameter {i} ('{}') received \
                     its gradient twice in one iteration (a second backward before the reduction \
                     of the first finished?)",
                    slot.name
                ),
            });
        }
        slot.ready = true;
        self.ready += 1;
        let (b, offset) = (slot.bucket, slot.offset);
        {
            let _g = no_grad();
            let n = slot.tensor.numel();
            if let Some(grad) = slot.tensor.grad() {
                self.buckets[b]
                    .flat
                    .narrow(0, offset, n)
                    .copy_(&grad.reshape([n]));
            } else {
                self.buckets[b].flat.narrow(0, offset, n).zero_();
            }
        }
        self.buckets[b].waiting_for -= 1;
        self.launch_ready()?;
        self.progress()?;
        if self.ready == self.slots.len() {
            self.finish(now)?;
        }
        Ok(())
    }

    /// Starts every bucket that is complete and whose predecessors have all started.
    fn launch_ready(&mut self) -> Result<(), DistError> {
        while self.next_launch < self.buckets.len()
            && self.buckets[self.next_launch].waiting_for == 0
        {
            let b = self.next_launch;
            let op = self.op_name(b);
            let work = self.group.start_all_reduce(&self.buckets[b].flat, &op)?;
            let bucket = &mut self.buckets[b];
            bucket.work = Some(work);
            bucket.launched = true;
            self.stats.launched.push(Instant::now());
            self.stats.ready_at_launch.push(self.ready);
            self.stats.completed.push(None);
            self.next_launch += 1;
        }
        Ok(())
    }

    /// Tests the buckets in flight, which is also what lets MPI progress them.
    fn progress(&mut self) -> Result<(), DistError> {
        for b in 0..self.buckets.len() {
            if self.buckets[b].launched && !self.buckets[b].done {
                let op = self.op_name(b);
                let bucket = &mut self.buckets[b];
                if self.group.test(bucket.work.as_deref_mut().unwrap(), &op)? {
                    bucket.done = true;
                    bucket.work = None;
                    self.stats.completed[b] = Some(Instant::now());
                }
            }
        }
        Ok(())
    }

    /// After the last gradient (final at `all_ready`): waits for the buckets in flight and
    /// writes the averaged gradients back.
    fn finish(&mut self, all_ready: Instant) -> Result<(), DistError> {
        self.stats.all_ready = Some(all_ready);
        for b in 0..self.buckets.len() {
            if !self.buckets[b].done {
                let op = self.op_name(b);
                let bucket = &mut self.buckets[b];
                self.group.wait(bucket.work.as_deref_mut().unwrap(), &op)?;
                bucket.done = true;
                bucket.work = None;
                self.stats.completed[b] = Some(Instant::now());
            }
        }
        self.stats.exposed_wait = all_ready.elapsed();
        let ws = self.group.world_size() as f64;
        {
            let _g = no_grad();
            for slot in &self.slots {
                let bucket = &self.buckets[slot.bucket];
                let t = &slot.tensor;
                let avg = &bucket
                    .flat
                    .narrow(0, slot.offset, t.numel())
                    .view(t.shape())
                    / ws;
                t.set_grad(Some(avg));
            }
        }
        self.stats.finished = Some(Instant::now());
        self.stats.buckets = self.buckets.len();
        self.last = std::mem::take(&mut self.stats);
        self.reset();
        Ok(())
    }

    fn reset(&mut self) {
        for s in &mut self.slots {
            s.ready = false;
        }
        for b in &mut self.buckets {
            b.waiting_for = b.params.len();
            b.work = None;
            b.launched = false;
            b.done = false;
        }
        self.next_launch = 0;
        self.ready = 0;
        self.stats = ReductionStats::default();
    }

    /// Records a failure: no gradient of this iteration is left for the optimizer to apply
    /// half-reduced.
    fn fail(&mut self, e: DistError) {
        for s in &self.slots {
            s.tensor.set_grad(None);
        }
        // Buckets still in flight are leaked with their buffers (see `Pending`).
        self.reset();
        self.error = Some(e);
    }

    /// Before a forward: the previous backward's reduction must have finished. A partial one
    /// means some parameters got no gradient (PyTorch's error and advice).
    pub(crate) fn check_finished(&mut self) -> Result<(), DistError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.ready == 0 {
            return Ok(());
        }
        let missing: Vec<String> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.ready)
            .map(|(i, s)| format!("{i} ('{}')", s.name))
            .collect();
        // Let the buckets already started finish, so that every rank's MPI state stays in step.
        for b in 0..self.buckets.len() {
            if self.buckets[b].launched && !self.buckets[b].done {
                let op = self.op_name(b);
                if let Err(e) = self
                    .group
                    .wait(self.buckets[b].work.as_deref_mut().unwrap(), &op)
                {
                    self.fail(e.clone());
                    return Err(e);
                }
                self.buckets[b].done = true;
            }
        }
        let e = DistError::Reduction {
            rank: self.group.rank(),
            message: format!(
                "Expected to have finished reduction in the prior iteration before starting a new \
                 one. This error indicates that your module has parameters that were not used in \
                 producing loss. Make sure all forward function outputs participate in calculating \
                 loss, or give the unused parameters requires_grad=false. Parameters which did \
                 not receive grad for rank {}: {}",
                self.group.rank(),
                missing.join(", ")
            ),
        };
        self.fail(e.clone());
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(n: usize) -> usize {
        n << 20
    }

    #[test]
    fn reverse_order_first_bucket_small_then_capped() {
        // Six f32 parameters of 0.5 MiB each (131072 elements).
        let p = (DType::F32, Device::Cpu, 131_072);
        let b = assign_buckets(&[p; 6], mb(1), mb(2));
        assert_eq!(b, vec![vec![5, 4], vec![3, 2, 1, 0]]);
    }

    #[test]
    fn dtypes_get_their_own_buckets() {
        let f = (DType::F32, Device::Cpu, 10);
        let d = (DType::F64, Device::Cpu, 10);
        let b = assign_buckets(&[f, d, f, d], mb(1), mb(25));
        assert_eq!(b, vec![vec![3, 1], vec![2, 0]]);
    }

    #[test]
    fn a_parameter_larger_than_the_cap_is_a_bucket_of_its_own() {
        let big = (DType::F64, Device::Cpu, 1 << 22); // 32 MiB
        let small = (DType::F64, Device::Cpu, 8);
        let b = assign_buckets(&[small, big, small], mb(1), mb(25));
        assert_eq!(b, vec![vec![2, 1], vec![0]]);
    }
}
