//! Fused losses on `Storage`: cross-entropy (a stable log-softmax and the negative
//! log-likelihood in one pass over each row, with class-index or probability targets) and NLL,
//! forward and backward: argument checks and device dispatch (types in `crate::loss`).

use crate::device::Device;
use crate::layout::Layout;
use crate::loss::{CeOptions, CeTarget, LossForward, LossGrad, LossReduction, LossRows};
use crate::storage::{dispatch, operand, BackendStorage, Storage};

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
