//! In-place ops (`add_`, `mul_`, `copy_`, …). They write through the view into shared storage, bump
//! the storage's version counter (so a backward that saved the old value fails loudly), and, when
//! recording, make the new node the tensor's `grad_fn`.

use crate::grad_mode::is_grad_enabled;
use crate::graph::{needs_grad, record};
use crate::tensor::Tensor;
use ember_kernels::op::{BinaryOp, UnaryOp};
use ember_kernels::shape::broadcast_or_panic;
use ember_kernels::{DType, Layout, Scalar, Storage};
use smallvec::smallvec;

impl Tensor {
    fn check_inplace(&self, op: &str) {
        if self.is_leaf() && self.requires_grad() && is_grad_enabled() {
            panic!(
                "{op}: a leaf Variable that requires grad is being used in an in-place operation."
            );
        }
    }

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

    fn binary_inplace(&self, other: &Tensor, op: BinaryOp, name: &'static str) -> &Tensor {
        let opname = op.name();
        self.check_inplace(opname);
        self.check_cast(
            opname,
            op.compute_dtype(DType::promote(self.dtype(), other.dtype())),
        );
        let src = self.inplace_operand(opname, other);
        let lb = src.layout().expand(self.shape());
        // Saved values for backward must be taken before the write.
        let record_it = needs_grad(&[self, other]);
        let old_self =
            (record_it && matches!(op, BinaryOp::Mul | BinaryOp::Div) && other.requires_grad())
                .then(|| self.detach().copy());
        self.storage_mut()
            .binary_inplace(self.layout(), &src.storage(), &lb, op);
        self.bump_version();
        if record_it {
            let before = self.detach_keep_graph();
            let o_shape = other.shape().to_vec();
            let o = other.detach();
            let (need_s, need_o) = (self.requires_grad(), other.requires_grad());
            let result = self.detach();
            let node_out = record(self.alias(), name, &[&before, other], move |g| {
                let (gs, go) = match op {
                    BinaryOp::Add => (need_s.then(|| g.clone()), need_o.then(|| g.clone())),
                    BinaryOp::Sub => (need_s.then(|| g.clone()), need_o.then(|| g.neg())),
                    BinaryOp::Mul => (
                        need_s.then(|| g * &o),
                        need_o.then(|| g * old_self.as_ref().unwrap()),
                    ),
                    BinaryOp::Div => (
                        need_s.then(|| g / &o),
                        need_o.then(|| -&(&(g * &result) / &o)),
                    ),
                    _ => unreachable!(),
                };
                smallvec![gs, go.map(|t| t.sum_to(&o_shape))]
            });
            self.set_grad_fn(node_out.grad_fn());
        }
        self
    }

    fn scalar_inplace(&self, s: Scalar, op: BinaryOp, name: &'static str) -> &Tensor {
        self.check_inplace(op.name());
        self.check_cast(op.name(), op.compute_dtype(s.result_dtype(self.dtype())));
        self.storage_mut()
            .binary_scalar_inplace(self.layout(), s, op);
        self.bump_version();
        if needs_grad(&[self]) {
            let before = self.detach_keep_graph();
            let c = s.to_f64();
            let node_out = record(self.alias(), name, &[&before], move |g| {
                smallvec![Some(match op {
                    BinaryOp::Mul => g * c,
                    BinaryOp::Div => g / c,
                    _ => g.clone(),
                })]
            });
            self.set_grad_fn(node_out.grad_fn());
        }
        self
    }

    /// A handle with this tensor's current graph position (used as the "before" input of an
    /// in-place node).
    fn detach_keep_graph(&self) -> Tensor {
        let t = self.with_layout(self.layout().clone());
        t.set_grad_fn(self.grad_fn());
        if self.requires_grad() && self.grad_fn().is_none() {
            return self.clone();
        }
        t
    }

    /// Another handle on the same view (the node is attached to it, then moved to `self`).
    fn alias(&self) -> Tensor {
        self.with_layout(self.layout().clone())
    }

    /// `self += other` in place (broadcasting `other`).
    pub fn add_(&self, other: &Tensor) -> &Tensor {
        self.binary_inplace(other, BinaryOp::Add, "AddBackward0")
    }
    /// `self -= other` in place.
    pub fn sub_(&self, other: &Tensor) -> &Tensor {
        self.binary_inplace(other, BinaryOp::Sub, "SubBackward0")
    }
    /// `self *= other` in place.
    pub fn mul_(&self, other: &Tensor) -> &Tensor {
        self.binary_inplace(other, BinaryOp::Mul, "MulBackward0")
    }
    /// `self /= other` in place.
    pub fn div_(&self, other: &Tensor) -> &Tensor {
        self.binary_inplace(other, BinaryOp::Div, "DivBackward0")
    }
    /// `self += s` in place.
    pub fn add_scalar_(&self, s: impl Into<Scalar>) -> &Tensor {
        self.scalar_inplace(s.into(), BinaryOp::Add, "AddBackward1")
    }
    /// `self -= s` in place.
    pub fn sub_scalar_(&self, s: impl Into<Scalar>) -> &Tensor {
        self.scalar_inplace(s.into(), BinaryOp::Sub, "SubBackward1")
    }
    /// `self *= s` in place.
    pub fn mul_scalar_(&self, s: impl Into<Scalar>) -> &Tensor {
        self.scalar_inplace(s.into(), BinaryOp::Mul, "MulBackward1")
    }
    /// `self /= s` in place.
    pub fn div_scalar_(&self, s: impl Into<Scalar>) -> &Tensor {
        self.scalar_inplace(s.into(), BinaryOp::Div, "DivBackward1")
    }

    /// Sets every element to `value` in place.
    pub fn fill_(&self, value: impl Into<Scalar>) -> &Tensor {
        self.check_inplace("fill_");
        self.storage_mut().fill(self.layout(), value.into());
        self.bump_version();
        if self.requires_grad() && is_grad_enabled() {
            let node_out = record(
                self.alias(),
                "FillBackward0",
                &[&self.detach_keep_graph()],
                |g| smallvec![Some(g.zeros_like())],
            );
            self.set_grad_fn(node_out.grad_fn());
        }
        self
    }

    /// Overwrites every element with `values()`: a new contiguous storage of `numel` values in
    /// this view's memory order, the order PyTorch's kernels walk a tensor in (so a random fill
    /// of a transposed view draws as PyTorch's does). The result does not depend on the old
    /// values, so the op passes a zero gradient, under the node name `grad_fn`.
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
        if self.requires_grad() && is_grad_enabled() {
            let node_out = record(self.alias(), grad_fn, &[&self.detach_keep_graph()], |g| {
                smallvec![Some(g.zeros_like())]
            });
            self.set_grad_fn(node_out.grad_fn());
        }
        self
    }

    /// Sets every element to zero in place.
    pub fn zero_(&self) -> &Tensor {
        self.fill_(0.0)
    }

    /// Copies `src` (broadcast, any dtype) into this tensor's elements in place.
    pub fn copy_(&self, src: &Tensor) -> &Tensor {
        self.check_inplace("copy_");
        let s = self.inplace_operand("copy_", src);
        let ls = s.layout().expand(self.shape());
        self.storage_mut()
            .copy_from(self.layout(), &s.storage(), &ls);
        self.bump_version();
        if needs_grad(&[self, src]) {
            let src_shape = src.shape().to_vec();
            let need_src = src.requires_grad();
            let before = self.detach_keep_graph();
            let node_out = record(self.alias(), "CopyBackwards", &[&before, src], move |g| {
                smallvec![Some(g.zeros_like()), need_src.then(|| g.sum_to(&src_shape))]
            });
            self.set_grad_fn(node_out.grad_fn());
        }
        self
    }

    /// Clamps in place.
    pub fn clamp_(&self, min: Option<f64>, max: Option<f64>) -> &Tensor {
        self.check_inplace("clamp_");
        if needs_grad(&[self]) {
            // Record through the out-of-place op on a copy of the old values (which the backward
            // needs), then write the result back.
            let out = self.detach_keep_graph().copy().clamp(min, max);
            self.storage_mut()
                .copy_from(self.layout(), &out.storage(), out.layout());
            self.bump_version();
            self.set_grad_fn(out.grad_fn());
            return self;
        }
        self.storage_mut()
            .unary_inplace(self.layout(), UnaryOp::Clamp(min, max));
        self.bump_version();
        self
    }
}
