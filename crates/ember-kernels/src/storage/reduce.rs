//! Reductions and softmax on `Storage`: device dispatch. Outputs are new contiguous storages; a
//! reduction's output has the input's shape with the reduced dims set to 1 (keepdim form, the
//! Tensor layer squeezes).

use crate::layout::Layout;
use crate::op::ReduceOp;
use crate::reduce::ArgReduceOp;
use crate::storage::{dispatch, operand, BackendStorage, Storage};

impl Storage {
    /// Reduces the elements selected by `layout` over `dims` (sorted, deduplicated; empty = all
    /// dims) with `op`. Dtype per [`crate::reduce::reduce_dtype`]; an empty reduction gives 0 (sum) or 1
    /// (prod) and panics for max/min.
    pub fn reduce(&self, layout: &Layout, dims: &[usize], op: ReduceOp) -> Storage {
        dispatch!(self, s: S => s.reduce(layout, dims, op).wrap())
    }

    /// `(values, indices)` of the largest/smallest element along `dim` (indices int64), keepdim
    /// shape. First occurrence wins; NaN counts as the extreme. For a whole-tensor argmax pass a
    /// flattened contiguous layout.
    pub fn arg_reduce(&self, layout: &Layout, dim: usize, op: ArgReduceOp) -> (Storage, Storage) {
        dispatch!(self, s: S => {
            let (v, i) = s.arg_reduce(layout, dim, op);
            (v.wrap(), i.wrap())
        })
    }

    /// Variance over `dims` (empty = all), keepdim shape, dividing by `N - correction` (1 =
    /// unbiased; a non-positive divisor gives inf/NaN as PyTorch). Floating-point dtypes only.
    pub fn var(&self, layout: &Layout, dims: &[usize], correction: f64) -> Storage {
        dispatch!(self, s: S => s.var(layout, dims, correction).wrap())
    }

    /// `log(Σ exp(x))` over `dims` (empty = all), keepdim shape, computed stably. Integer inputs
    /// give float32.
    pub fn logsumexp(&self, layout: &Layout, dims: &[usize]) -> Storage {
        dispatch!(self, s: S => s.logsumexp(layout, dims).wrap())
    }

    /// `softmax` (or `log_softmax` when `log`) along `dim`: same shape, contiguous, float only.
    pub fn softmax(&self, layout: &Layout, dim: usize, log: bool) -> Storage {
        dispatch!(self, s: S => s.softmax(layout, dim, log).wrap())
    }

    /// Fused backward of `softmax`/`log_softmax` along `dim`: `self` is the upstream gradient
    /// (layout `lg`), `out` the forward output (layout `lo`). Same shape, contiguous.
    pub fn softmax_backward(
        &self,
        lg: &Layout,
        out: &Storage,
        lo: &Layout,
        dim: usize,
        log: bool,
    ) -> Storage {
        let dev = self.device();
        dispatch!(self, g: S => {
            let o = operand::<S>("softmax_backward", dev, out);
            g.softmax_backward(lg, o, lo, dim, log).wrap()
        })
    }
}
