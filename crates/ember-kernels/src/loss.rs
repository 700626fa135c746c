//! Fused loss kernels on `Storage`: cross-entropy (a stable log-softmax and the negative
//! log-likelihood in one pass over each row, with class-index or probability targets) and NLL,
//! forward and backward. This file holds the argument types and the device dispatch; the CPU
//! kernels are in `cpu/loss.rs`.
//!
//! Inputs have the class dimension at 1 (`(N, C, d1, …)`) or are 1-D (`(C)`); a "row" is one
//! position `(n, d1, …)`, i.e. the C scores of one sample.

use crate::device::Device;
use crate::layout::Layout;
use crate::storage::{dispatch, operand, BackendStorage, Storage};

/// How per-row losses are combined (PyTorch's `reduction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossReduction {
    /// One loss per row.
    None,
    /// The weighted mean: the sum divided by the total weight of the rows that count.
    Mean,
    /// The sum over rows.
    Sum,
}

/// The target of a cross-entropy.
#[derive(Debug)]
pub enum CeTarget<'a, S = Storage> {
    /// Class indices (any integer dtype), one per row: shape `(N, d1, …)` or `()`.
    Index(&'a S, &'a Layout),
    /// Class probabilities with the input's shape (any float dtype; converted to the input's).
    Prob(&'a S, &'a Layout),
}

impl<S> Clone for CeTarget<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for CeTarget<'_, S> {}

/// The options shared by the cross-entropy forward and backward kernels.
#[derive(Debug)]
pub struct CeOptions<'a, S = Storage> {
    /// Per-class weights `(C)` (converted to the input's dtype), or `None` for all ones.
    pub weight: Option<(&'a S, &'a Layout)>,
    /// Rows whose class-index target equals this are skipped (PyTorch's `ignore_index`).
    pub ignore_index: i64,
    /// PyTorch's `label_smoothing` in `[0, 1]`.
    pub label_smoothing: f64,
    /// The name used in error messages (`cross_entropy`, `nll_loss`).
    pub op: &'static str,
}

impl<S> Clone for CeOptions<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for CeOptions<'_, S> {}

/// What a forward loss kernel returns.
#[derive(Debug)]
pub struct LossForward<S = Storage> {
    /// The loss: one element per row (`LossReduction::None`) or a single element.
    pub loss: S,
    /// Each row's `logsumexp` (cross-entropy only; saved for the fused backward).
    pub lse: Option<S>,
    /// The divisor of the mean: the summed weight of the rows that count.
    pub weight_sum: f64,
}

/// The upstream gradient of a loss as the backward kernels receive it.
#[derive(Debug)]
pub enum LossGrad<'a, S = Storage> {
    /// One gradient per row (reduction `None`), shape of the per-row loss.
    Rows(&'a S, &'a Layout),
    /// A one-element gradient of a reduced loss, multiplied by `factor` (`1/weight_sum` for the
    /// mean, 1 for the sum).
    Reduced(&'a S, &'a Layout, f64),
}

impl<S> Clone for LossGrad<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for LossGrad<'_, S> {}

/// Row geometry of a `(N, C, d1, …)` or `(C)` input: row `r` has its class `c` at
/// `base(r) + c * inner`. Shared by every backend's loss kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossRows {
    /// `C`.
    pub classes: usize,
    /// Positions per sample after the class dim (`d1 · d2 · …`, 1 for `(N, C)`).
    pub inner: usize,
    /// Rows: `N · inner` (1 for a `(C)` input).
    pub rows: usize,
}

impl LossRows {
    /// The geometry of an input of `shape`, panicking (naming `op`) on a 0-dim input.
    #[track_caller]
    pub fn of(op: &str, shape: &[usize]) -> LossRows {
        match shape.len() {
            0 => panic!("{op}: expected an input with a class dimension, got a 0-dim tensor"),
            1 => LossRows {
                classes: shape[0],
                inner: 1,
                rows: 1,
            },
            _ => {
                let inner: usize = shape[2..].iter().product();
                LossRows {
                    classes: shape[1],
                    inner,
                    rows: shape[0] * inner,
                }
            }
        }
    }

    /// Storage position of row `r`'s class 0 in a contiguous input.
    #[inline(always)]
    pub fn base(&self, r: usize) -> usize {
        (r / self.inner) * self.classes * self.inner + r % self.inner
    }
}

/// The arguments every backend's loss kernels rely on, checked once here before the dispatch
/// (Tensor's loss ops check them with PyTorch's messages first; this guards direct `Storage`
/// callers): a class dim, integer class-index targets (one per row), probability targets of the
/// input's shape, one weight per class.
#[track_caller]
fn check_args(layout: &Layout, target: CeTarget<'_>, opts: &CeOptions<'_>) {
    let op = opts.op;
    let g = LossRows::of(op, layout.shape());
    match target {
        CeTarget::Index(s, l) => {
            if !s.dtype().is_int() {
                panic!(
                    "{op}: expected class-index targets of an integer dtype, got {}",
                    s.dtype().name()
                );
            }
            if l.numel() != g.rows {
                panic!(
                    "{op}: expected {} class-index targets for input of shape {:?}, got shape {:?}",
                    g.rows,
                    layout.shape(),
                    l.shape()
                );
            }
        }
        CeTarget::Prob(_, l) => {
            if l.shape() != layout.shape() {
                panic!(
                    "{op}: probability targets must have the input's shape {:?}, got {:?}",
                    layout.shape(),
                    l.shape()
                );
            }
        }
    }
    if let Some((_, l)) = opts.weight {
        if l.numel() != g.classes {
            panic!(
                "{op}: weight must have {} elements (one per class), got shape {:?}",
                g.classes,
                l.shape()
            );
        }
    }
}

impl<'a> CeTarget<'a> {
    /// The target on the input's backend `S` (a mixed-device panic otherwise).
    fn on<S: BackendStorage>(self, op: &str, dev: Device) -> CeTarget<'a, S> {
        match self {
            CeTarget::Index(s, l) => CeTarget::Index(operand(op, dev, s), l),
            CeTarget::Prob(s, l) => CeTarget::Prob(operand(op, dev, s), l),
        }
    }
}

impl<'a> CeOptions<'a> {
    /// The options with the weight on the input's backend `S`.
    fn on<S: BackendStorage>(self, dev: Device) -> CeOptions<'a, S> {
        CeOptions {
            weight: self.weight.map(|(s, l)| (operand(self.op, dev, s), l)),
            ignore_index: self.ignore_index,
            label_smoothing: self.label_smoothing,
            op: self.op,
        }
    }
}

impl<'a> LossGrad<'a> {
    /// The incoming gradient on the input's backend `S`.
    fn on<S: BackendStorage>(self, op: &str, dev: Device) -> LossGrad<'a, S> {
        match self {
            LossGrad::Rows(s, l) => LossGrad::Rows(operand(op, dev, s), l),
            LossGrad::Reduced(s, l, f) => LossGrad::Reduced(operand(op, dev, s), l, f),
        }
    }
}

impl Storage {
    /// Fused cross-entropy forward: per row, a max-subtracted log-softmax of the input (float) and
    /// the (weighted, label-smoothed) negative log-likelihood of the target, then the reduction.
    /// Panics, naming `opts.op`, on a class index outside `[0, C)` other than `ignore_index`.
    pub fn cross_entropy(
        &self,
        layout: &Layout,
        target: CeTarget<'_>,
        opts: &CeOptions<'_>,
        reduction: LossReduction,
    ) -> LossForward {
        check_args(layout, target, opts);
        let dev = self.device();
        dispatch!(self, s: S => {
            let (t, o) = (target.on::<S>(opts.op, dev), opts.on::<S>(dev));
            let f = s.cross_entropy(layout, t, &o, reduction);
            LossForward {
                loss: f.loss.wrap(),
                lse: f.lse.map(BackendStorage::wrap),
                weight_sum: f.weight_sum,
            }
        })
    }

    /// Fused cross-entropy backward: `g * (softmax(x) * Σ w t' - w t')` per row from the saved
    /// row `lse`; returns the input's gradient (contiguous, input shape) and, for probability
    /// targets when `target_grad`, the target's gradient.
    pub fn cross_entropy_backward(
        &self,
        layout: &Layout,
        target: CeTarget<'_>,
        opts: &CeOptions<'_>,
        lse: &Storage,
        grad: LossGrad<'_>,
        target_grad: bool,
    ) -> (Storage, Option<Storage>) {
        check_args(layout, target, opts);
        let dev = self.device();
        dispatch!(self, s: S => {
            let (t, o) = (target.on::<S>(opts.op, dev), opts.on::<S>(dev));
            let (lse, g) = (operand::<S>(opts.op, dev, lse), grad.on::<S>(opts.op, dev));
            let (gi, gt) = s.cross_entropy_backward(layout, t, &o, lse, g, target_grad);
            (gi.wrap(), gt.map(BackendStorage::wrap))
        })
    }

    /// NLL forward on log-probabilities with class-index targets: `-w[y] * x[y]` per row, then
    /// the reduction (the mean divides by the summed weight of the rows that count).
    pub fn nll_loss(
        &self,
        layout: &Layout,
        target: (&Storage, &Layout),
        opts: &CeOptions<'_>,
        reduction: LossReduction,
    ) -> LossForward {
        check_args(layout, CeTarget::Index(target.0, target.1), opts);
        let dev = self.device();
        dispatch!(self, s: S => {
            let t = (operand::<S>(opts.op, dev, target.0), target.1);
            let f = s.nll_loss(layout, t, &opts.on::<S>(dev), reduction);
            LossForward {
                loss: f.loss.wrap(),
                lse: None,
                weight_sum: f.weight_sum,
            }
        })
    }

    /// NLL backward: `-w[y] * g` at each row's target class, zero elsewhere (input shape).
    pub fn nll_loss_backward(
        &self,
        layout: &Layout,
        target: (&Storage, &Layout),
        opts: &CeOptions<'_>,
        grad: LossGrad<'_>,
    ) -> Storage {
        check_args(layout, CeTarget::Index(target.0, target.1), opts);
        let dev = self.device();
        dispatch!(self, s: S => {
            let t = (operand::<S>(opts.op, dev, target.0), target.1);
            let g = grad.on::<S>(opts.op, dev);
            s.nll_loss_backward(layout, t, &opts.on::<S>(dev), g).wrap()
        })
    }
}
