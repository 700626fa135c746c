//! In-place ops (`add_`, `mul_`, `copy_`, …). They write through the view into shared storage, bump
//! the storage's version counter (so a backward that saved the old value fails loudly), and, when
//! recording, rewrite the history of what they modified:
//!
//! - on a tensor that is not a view, the op's node becomes the tensor's `grad_fn`;
//! - on a view, the *base* gets a `CopySlices` node (PyTorch's): its backward runs the op's
//!   backward on the viewed part of the base's gradient and passes the rest through unchanged.
//!   The view, and every other view of that base, then replays its view ops on the base's new
//!   history the next time its `grad_fn` is asked for (see `Tensor::grad_fn`).

use crate::grad_mode::is_grad_enabled;
use crate::graph::{needs_grad, node, Grads, Saved};
use crate::ops::elementwise::broadcast_or_panic;
use crate::ops::operand::{Operand, OperandRef};
use crate::tensor::Tensor;
use ember_kernels::op::{BinaryOp, UnaryOp};
use ember_kernels::{DType, Layout, Scalar, Storage};
use smallvec::smallvec;

impl Tensor {
    /// Refuses in-place writes PyTorch refuses: into a leaf that requires grad or a view of one
    /// (while recording), and into a tensor whose elements overlap (an expanded view).
    #[track_caller]
    fn check_inplace(&self, op: &str) {
        if is_grad_enabled() {
            if self.is_leaf() && self.requires_grad() {
                panic!(
                    "{op}: a leaf Variable that requires grad is being used in an in-place operation."
                );
            }
            if let Some(v) = self.view_meta() {
                if v.base.is_leaf() && v.base.requires_grad() {
                    panic!("{op}: a view of a leaf Variable that requires grad is being used in an in-place operation.");
                }
            }
        }
        let l = self.layout();
        if l.has_overlap() {
            panic!(
                "{op}: unsupported operation: more than one element of the written-to tensor refers to a single memory location (shape {:?}, strides {:?}). Please clone() the tensor before performing the operation.",
                l.shape(),
                l.strides()
            );
        }
    }

    #[track_caller]
    fn check_cast(&self, op: &str, result: DType) {
        if result.category() > self.dtype().category() {
            panic!(
                "{op}: result type {} can't be cast to the desired output type {}",
                result.name(),
                self.dtype().name()
            );
        }
    }

    /// The operand as the storage kernels may read it while `self` is written: a copy when the two
    /// share storage (so overlapping reads see old values), broadcast to `self`'s shape.
    #[track_caller]
    fn inplace_operand(&self, op: &str, other: &Tensor) -> Tensor {
        crate::ops::elementwise::check_device(op, self, other);
        let shape = broadcast_or_panic(op, self.shape(), other.shape());
        if shape.as_slice() != self.shape() {
            panic!(
                "{op}: output with shape {:?} doesn't match the broadcast shape {:?}",
                self.shape(),
                shape.as_slice()
            );
        }
        if self.shares_storage(other) {
            other.detach().copy()
        } else {
            other.detach()
        }
    }

    /// Records the in-place op `name` just applied to `self`, whose inputs were `self`'s old value
    /// and `others`; `backward(g)` maps the gradient of the new value to `[old self, others…]`.
    #[track_caller]
    fn record_inplace(
        &self,
        name: &'static str,
        others: &[&Tensor],
        backward: impl Fn(&Tensor) -> Grads + Send + Sync + 'static,
    ) {
        let Some(v) = self.view_meta() else {
            let before = self.history();
            let mut inputs = vec![&before];
            inputs.extend_from_slice(others);
            self.set_grad_fn(Some(node(name, &inputs, backward)));
            return;
        };
        // A view: the base's history becomes CopySlices(base's old history, op). This view (and
        // every other view of the base) is now stale — its storage version moved on — and
        // replays itself on the new history when next asked for its grad_fn.
        let base = v.base.clone();
        let view_fn = v.view_fn.clone();
        let before = base.history();
        let mut inputs = vec![&before];
        inputs.extend_from_slice(others);
        let copy_slices = node("CopySlices", &inputs, move |g| {
            let result = g.copy();
            let slice = view_fn(&result);
            let mut grads = backward(&slice.copy()).into_iter();
            match grads.next().flatten() {
                Some(g_view) => slice.copy_(&g_view),
                None => slice.zero_(),
            };
            let mut out: Grads = smallvec![Some(result)];
            out.extend(grads);
            out
        });
        base.set_grad_fn(Some(copy_slices));
    }

    /// A handle standing for this tensor's current value in the graph: the tensor itself for a
    /// leaf, else a handle with its current `grad_fn` (which an in-place op is about to replace).
    #[track_caller]
    fn history(&self) -> Tensor {
        if self.requires_grad() && self.is_leaf() {
            return self.clone();
        }
        let t = self.with_layout(self.layout().clone());
        t.set_grad_fn(self.grad_fn());
        t
    }

    #[track_caller]
    fn binary_inplace(&self, other: &Tensor, op: BinaryOp, name: &'static str) -> &Tensor {
        let opname = op.name();
        self.check_inplace(opname);
        self.check_cast(
            opname,
            op.compute_dtype(DType::promote(self.dtype(), other.dtype())),
        );
        let src = self.inplace_operand(opname, other);
        let lb = src.layout().expand(self.shape());
        let record_it = needs_grad(&[self, other]);
        let (need_s, need_o) = (self.requires_grad(), other.requires_grad());
        // What the backward reads, taken before the write: only what the wanted gradients need.
        // The old value is a recorded copy, so a create_graph backward differentiates through it.
        let mul_or_div = matches!(op, BinaryOp::Mul | BinaryOp::Div);
        let old_self = (record_it && mul_or_div && need_o).then(|| self.copy());
        let saved_other = (record_it && (op == BinaryOp::Mul && need_s || op == BinaryOp::Div))
            .then(|| Saved::new(other));
        self.storage_mut()
            .binary_inplace(self.layout(), &src.storage(), &lb, op);
        self.bump_version();
        if record_it {
            let o_shape = other.shape().to_vec();
            self.record_inplace(name, &[other], move |g| {
                let o = || {
                    saved_other
                        .as_ref()
                        .map(|s| s.get())
                        .expect("saved operand")
                };
                let old = || old_self.as_ref().expect("saved old value");
                let (gs, go) = match op {
                    BinaryOp::Add => (need_s.then(|| g.clone()), need_o.then(|| g.clone())),
                    BinaryOp::Sub => (need_s.then(|| g.clone()), need_o.then(|| g.neg())),
                    BinaryOp::Mul => (need_s.then(|| g * o()), need_o.then(|| g * old())),
                    // d(s/o)/do = -s / o²
                    BinaryOp::Div => (
                        need_s.then(|| g / o()),
                        need_o.then(|| -&(&(g * old()) / &o().square())),
                    ),
                    _ => unreachable!("no in-place form of {op:?}"),
                };
                smallvec![gs, go.map(|t| t.sum_to(&o_shape))]
            });
        }
        self
    }

    #[track_caller]
    fn scalar_inplace(&self, s: Scalar, op: BinaryOp, name: &'static str) -> &Tensor {
        self.check_inplace(op.name());
        self.check_cast(op.name(), op.compute_dtype(s.result_dtype(self.dtype())));
        self.storage_mut()
            .binary_scalar_inplace(self.layout(), s, op);
        self.bump_version();
        if needs_grad(&[self]) {
            let c = s.to_f64();
            self.record_inplace(name, &[], move |g| {
                smallvec![Some(match op {
                    BinaryOp::Mul => g * c,
                    BinaryOp::Div => g / c,
                    _ => g.clone(),
                })]
            });
        }
        self
    }

    /// Applies `op` in place with `other` on the right, a tensor or a number.
    #[track_caller]
    fn operand_inplace(
        &self,
        other: impl Operand,
        op: BinaryOp,
        names: [&'static str; 2],
    ) -> &Tensor {
        match other.operand() {
            OperandRef::Tensor(t) => self.binary_inplace(t, op, names[0]),
            OperandRef::Scalar(s) => self.scalar_inplace(s, op, names[1]),
        }
    }

    /// `self += other` in place: a tensor (broadcast to `self`) or a number.
    #[track_caller]
    pub fn add_(&self, other: impl Operand) -> &Tensor {
        self.operand_inplace(other, BinaryOp::Add, ["AddBackward0", "AddBackward1"])
    }
    /// `self -= other` in place: a tensor (broadcast to `self`) or a number.
    #[track_caller]
    pub fn sub_(&self, other: impl Operand) -> &Tensor {
        self.operand_inplace(other, BinaryOp::Sub, ["SubBackward0", "SubBackward1"])
    }
    /// `self *= other` in place: a tensor (broadcast to `self`) or a number.
    #[track_caller]
    pub fn mul_(&self, other: impl Operand) -> &Tensor {
        self.operand_inplace(other, BinaryOp::Mul, ["MulBackward0", "MulBackward1"])
    }
    /// `self /= other` in place: a tensor (broadcast to `self`) or a number.
    #[track_caller]
    pub fn div_(&self, other: impl Operand) -> &Tensor {
        self.operand_inplace(other, BinaryOp::Div, ["DivBackward0", "DivBackward1"])
    }

    /// Sets every element to `value` in place.
    #[track_caller]
    pub fn fill_(&self, value: impl Into<Scalar>) -> &Tensor {
        self.check_inplace("fill_");
        self.storage_mut().fill(self.layout(), value.into());
        self.bump_version();
        if needs_grad(&[self]) {
            self.record_inplace("FillBackward0", &[], |g| smallvec![Some(g.zeros_like())]);
        }
        self
    }

    /// Overwrites every element with `values()`: a new contiguous storage of `numel` values in
    /// this view's memory order, the order PyTorch's kernels walk a tensor in (so a random fill
    /// of a transposed view draws as PyTorch's does). The result does not depend on the old
    /// values, so the op passes a zero gradient, under the node name `grad_fn`.
    #[track_caller]
    pub(crate) fn overwrite_random_(
        &self,
        op: &str,
        grad_fn: &'static str,
        values: impl FnOnce() -> Storage,
    ) -> &Tensor {
        self.check_inplace(op);
        let values = values();
        // Dims outermost first by stride (stable): the permuted view, walked row-major, visits
        // memory in order.
        let l = self.layout();
        let mut perm: Vec<usize> = (0..l.shape().len()).collect();
        perm.sort_by(|&a, &b| l.strides()[b].cmp(&l.strides()[a]));
        let view = l.permute(&perm);
        self.storage_mut()
            .copy_from(&view, &values, &Layout::contiguous(view.shape()));
        self.bump_version();
        if needs_grad(&[self]) {
            self.record_inplace(grad_fn, &[], |g| smallvec![Some(g.zeros_like())]);
        }
        self
    }

    /// Sets every element to zero in place.
    #[track_caller]
    pub fn zero_(&self) -> &Tensor {
        self.fill_(0.0)
    }

    /// Copies `src` (broadcast, any dtype) into this tensor's elements in place.
    #[track_caller]
    pub fn copy_(&self, src: &Tensor) -> &Tensor {
        self.check_inplace("copy_");
        let s = self.inplace_operand("copy_", src);
        let ls = s.layout().expand(self.shape());
        self.storage_mut()
            .copy_from(self.layout(), &s.storage(), &ls);
        self.bump_version();
        if needs_grad(&[self, src]) {
            let (src_shape, src_dtype) = (src.shape().to_vec(), src.dtype());
            let need_src = src.requires_grad();
            self.record_inplace("CopyBackwards", &[src], move |g| {
                let gs = need_src.then(|| g.sum_to(&src_shape).to_dtype(src_dtype));
                smallvec![Some(g.zeros_like()), gs]
            });
        }
        self
    }

    /// Clamps in place.
    #[track_caller]
    pub fn clamp_(&self, min: Option<f64>, max: Option<f64>) -> &Tensor {
        self.check_inplace("clamp_");
        // The gradient passes where the old value was inside the bounds.
        let keep = needs_grad(&[self]).then(|| {
            let x = self.detach();
            let mut m = x.ones_like().to_dtype(DType::Bool);
            if let Some(l) = min {
                m = m.logical_and(&x.ge(l));
            }
            if let Some(h) = max {
                m = m.logical_and(&x.le(h));
            }
            m
        });
        self.storage_mut()
            .unary_inplace(self.layout(), UnaryOp::Clamp(min, max));
        self.bump_version();
        if let Some(mask) = keep {
            self.record_inplace("ClampBackward1", &[], move |g| {
                smallvec![Some(g.where_mask(&mask))]
            });
        }
        self
    }
}
