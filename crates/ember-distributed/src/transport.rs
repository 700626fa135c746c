//! The interface between a process group and its communication engine. The group
//! (`group.rs`) validates arguments, runs the header exchange and applies the timeout; a
//! transport moves the elements: `mpi/` for CPU tensors, `nccl/` for CUDA tensors.

use crate::error::DistError;
use crate::op::ReduceOp;
use crate::peers::Peers;
use crate::wait::WaitCtx;
use ember_autograd::Tensor;

/// A communication engine connecting the ranks of one group. Every method blocks (polling,
/// through `ctx`, with the group's deadline) except `start_all_reduce`. Reductions never get
/// [`ReduceOp::Avg`] (the group sums and divides).
pub(crate) trait Transport: Send + Sync {
    fn rank(&self) -> usize;
    fn world_size(&self) -> usize;
    fn peers(&self) -> &Peers;
    /// The first peer known to have left the job (a dead process on this host, or a rank that
    /// announced its exit), with how it left.
    fn departed(&self) -> Option<(usize, String)>;
    /// `Err(reason)` unless this transport carries tensors on `t`'s device.
    fn check_device(&self, t: &Tensor) -> Result<(), String>;
    /// Every rank's `words` (the same number on each), in rank order: the header exchange.
    fn exchange(&self, words: &[i64], ctx: &WaitCtx) -> Result<Vec<i64>, DistError>;
    fn all_reduce(&self, t: &Tensor, op: ReduceOp, ctx: &WaitCtx) -> Result<(), DistError>;
    fn broadcast(&self, t: &Tensor, src: usize, ctx: &WaitCtx) -> Result<(), DistError>;
    fn all_gather(&self, outs: &[Tensor], input: &Tensor, ctx: &WaitCtx) -> Result<(), DistError>;
    fn reduce_scatter(
        &self,
        out: &Tensor,
        inputs: &[Tensor],
        op: ReduceOp,
        ctx: &WaitCtx,
    ) -> Result<(), DistError>;
    fn send(&self, t: &Tensor, dst: usize, ctx: &WaitCtx) -> Result<(), DistError>;
    fn recv(&self, t: &Tensor, src: usize, ctx: &WaitCtx) -> Result<(), DistError>;
    fn barrier(&self, ctx: &WaitCtx) -> Result<(), DistError>;
    /// Starts summing `bucket` across the ranks without waiting. `bucket` is a contiguous
    /// tensor that is its storage's whole extent and that nobody else reads or writes until the
    /// returned operation completes (`DistributedDataParallel`'s flat gradient buckets).
    fn start_all_reduce(&self, bucket: &Tensor, op: &str) -> Result<Box<dyn Pending>, DistError>;
    /// The group failed: never finalize the library (its requests may never complete, and
    /// finalizing would wait for them).
    fn abandon(&self);
}

/// A non-blocking operation in flight. Dropping one that has not completed leaks its buffers
/// (the library may still use them) rather than freeing memory it could write to.
pub(crate) trait Pending: Send {
    /// True once complete (the result is then in the bucket); each call also drives the
    /// library's progress.
    fn test(&mut self) -> Result<bool, String>;
}

/// A group of one process, with no library: every collective is the identity. It exists so
/// that the group's and `DistributedDataParallel`'s logic is tested in every build.
#[cfg(test)]
pub(crate) mod single {
    use super::*;

    pub(crate) struct Single(pub Peers);

    struct Done;
    impl Pending for Done {
        fn test(&mut self) -> Result<bool, String> {
            Ok(true)
        }
    }

    impl Transport for Single {
        fn rank(&self) -> usize {
            0
        }
        fn world_size(&self) -> usize {
            1
        }
        fn peers(&self) -> &Peers {
            &self.0
        }
        fn departed(&self) -> Option<(usize, String)> {
            None
        }
        fn check_device(&self, t: &Tensor) -> Result<(), String> {
            match t.device() {
                ember_autograd::Device::Cpu => Ok(()),
                d => Err(format!("expected a CPU tensor, got one on {d}")),
            }
        }
        fn exchange(&self, words: &[i64], _: &WaitCtx) -> Result<Vec<i64>, DistError> {
            Ok(words.to_vec())
        }
        fn all_reduce(&self, _: &Tensor, _: ReduceOp, _: &WaitCtx) -> Result<(), DistError> {
            Ok(())
        }
        fn broadcast(&self, _: &Tensor, _: usize, _: &WaitCtx) -> Result<(), DistError> {
            Ok(())
        }
        fn all_gather(
            &self,
            outs: &[Tensor],
            input: &Tensor,
            _: &WaitCtx,
        ) -> Result<(), DistError> {
            let _g = ember_autograd::no_grad();
            outs[0].copy_(input);
            Ok(())
        }
        fn reduce_scatter(
            &self,
            out: &Tensor,
            inputs: &[Tensor],
            _: ReduceOp,
            _: &WaitCtx,
        ) -> Result<(), DistError> {
            let _g = ember_autograd::no_grad();
            out.copy_(&inputs[0]);
            Ok(())
        }
        fn send(&self, _: &Tensor, _: usize, _: &WaitCtx) -> Result<(), DistError> {
            unreachable!("the group refuses a send to itself")
        }
        fn recv(&self, _: &Tensor, _: usize, _: &WaitCtx) -> Result<(), DistError> {
            unreachable!("the group refuses a recv from itself")
        }
        fn barrier(&self, _: &WaitCtx) -> Result<(), DistError> {
            Ok(())
        }
        fn start_all_reduce(&self, _: &Tensor, _: &str) -> Result<Box<dyn Pending>, DistError> {
            Ok(Box::new(Done))
        }
        fn abandon(&self) {}
    }
}
