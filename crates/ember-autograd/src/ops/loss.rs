//! Fused losses as Tensor ops: cross-entropy (one kernel pass computing a stable log-softmax and
//! the negative log-likelihood, with a fused `softmax - target` backward) and NLL. Both accept
//! class-index targets of any integer dtype, per-class `weight`, `ignore_index` and, for
//! cross-entropy, `label_smoothing` and probability targets; inputs are `(C)`, `(N, C)` or
//! `(N, C, d1, …)` as in PyTorch.

use crate::grad_mode::is_grad_enabled;
use crate::graph::{needs_grad, record, Saved};
use crate::ops::elementwise::check_device;
use crate::tensor::Tensor;
use ember_kernels::loss::{CeOptions, CeTarget, LossGrad, LossReduction};
use ember_kernels::{DType, Storage};
use smallvec::smallvec;

/// The shape of one class-index target per row: the input's shape without the class dim.
#[track_caller]
fn row_shape(input: &[usize]) -> Vec<usize> {
    match input.len() {
        0 | 1 => vec![],
        _ => {
            let mut s = input.to_vec();
            s.remove(1);
            s
        }
    }
}

/// Validates the input of a class-dim loss (`op`) and returns the number of classes.
#[track_caller]
fn check_input(op: &str, input: &Tensor) -> usize {
    if input.dim() == 0 {
        panic!(
            "{op}: expected an input of shape (C), (N, C) or (N, C, d1, ...), got a 0-dim tensor"
        );
    }
    if !input.dtype().is_float() {
        panic!(
            "{op}: expected a floating-point input, got {} of shape {:?}",
            input.dtype().name(),
            input.shape()
        );
    }
    input.shape()[if input.dim() == 1 { 0 } else { 1 }]
}

/// The class weights converted to the input's dtype, checked to hold one entry per class.
#[track_caller]
fn check_weight(
    op: &str,
    input: &Tensor,
    weight: Option<&Tensor>,
    classes: usize,
) -> Option<Tensor> {
    weight.map(|w| {
        check_device(op, input, w);
        if w.dim() != 1 || w.numel() != classes {
            panic!(
                "{op}: weight must be a 1-D tensor of {classes} elements (one per class), got shape {:?}",
                w.shape()
            );
        }
        w.detach().to_dtype(input.dtype())
    })
}

/// Validates class-index targets (integer dtype, the input's row shape).
#[track_caller]
fn check_index_target(op: &str, input: &Tensor, target: &Tensor, prob_ok: bool) {
    let rows = row_shape(input.shape());
    let shape_ok = target.shape() == rows.as_slice();
    if target.dtype().is_int() && shape_ok {
        return;
    }
    let alt = if prob_ok {
        format!(
            " or {:?} (class probabilities, floating point)",
            input.shape()
        )
    } else {
        String::new()
    };
    if !shape_ok {
        panic!(
            "{op}: expected a target of shape {rows:?} (class indices){alt} for an input of shape {:?}, got a target of shape {:?} ({})",
            input.shape(),
            target.shape(),
            target.dtype().name()
        );
    }
    panic!(
        "{op}: expected class-index targets of an integer dtype (int64, uint8){alt}, got {} of shape {:?}",
        target.dtype().name(),
        target.shape()
    );
}

/// The output shape of a loss over rows with `reduction`.
#[track_caller]
fn out_shape(input: &[usize], reduction: LossReduction) -> Vec<usize> {
    match reduction {
        LossReduction::None => row_shape(input),
        _ => vec![],
    }
}

/// The upstream gradient as the kernels take it.
#[track_caller]
fn loss_grad<'a>(
    g: &'a Storage,
    gl: &'a ember_kernels::Layout,
    reduction: LossReduction,
    weight_sum: f64,
) -> LossGrad<'a> {
    match reduction {
        LossReduction::None => LossGrad::Rows(g, gl),
        LossReduction::Mean => LossGrad::Reduced(g, gl, 1.0 / weight_sum),
        LossReduction::Sum => LossGrad::Reduced(g, gl, 1.0),
    }
}

/// What the differentiable (create_graph) backward of a class loss needs.
struct Composed<'a> {
    x: &'a Tensor,
    target: &'a Tensor,
    weight: Option<&'a Tensor>,
    ignore_index: i64,
    label_smoothing: f64,
    reduction: LossReduction,
    weight_sum: f64,
}

impl Composed<'_> {
    #[track_caller]
    fn class_dim(&self) -> usize {
        usize::from(self.x.dim() > 1)
    }

    /// The weights shaped to broadcast along the class dim (ones without weights).
    #[track_caller]
    fn weight_view(&self, classes: usize) -> Tensor {
        let mut shape = vec![1usize; self.x.dim()];
        shape[self.class_dim()] = classes;
        match self.weight {
            Some(w) => w.reshape(&shape[..]),
            None => Tensor::full_on(&shape, 1.0, self.x.dtype(), self.x.device()),
        }
    }

    /// The upstream gradient per row, broadcastable against the input.
    #[track_caller]
    fn row_grad(&self, g: &Tensor) -> Tensor {
        match self.reduction {
            LossReduction::None => g.unsqueeze(self.class_dim() as isize),
            LossReduction::Mean => g * (1.0 / self.weight_sum),
            LossReduction::Sum => g.clone(),
        }
    }

    /// `w[c] * [c == y]` for each row (zero rows where ignored), and the 0/1 row mask.
    #[track_caller]
    fn weighted_one_hot(&self, classes: usize) -> (Tensor, Tensor) {
        let cd = self.class_dim();
        let t = self.target.to_dtype(DType::I64);
        let valid = t.ne(self.ignore_index);
        let safe = Tensor::where_cond(&valid, &t, &t.zeros_like());
        let mut oh = safe.one_hot(Some(classes)).to_dtype(self.x.dtype());
        if self.x.dim() > 2 {
            // (N, d1, …, C) -> (N, C, d1, …)
            let last = oh.dim() as isize - 1;
            let mut perm: Vec<isize> = vec![0, last];
            perm.extend(1..last);
            oh = oh.permute(perm);
        }
        let validf = valid.to_dtype(self.x.dtype()).unsqueeze(cd as isize);
        (&(&oh * &self.weight_view(classes)) * &validf, validf)
    }

    /// Cross-entropy's input gradient (and the target's, for probabilities) as differentiable
    /// tensor ops, for `create_graph`.
    #[track_caller]
    fn cross_entropy(&self, g: &Tensor, prob: bool) -> (Tensor, Option<Tensor>) {
        let cd = self.class_dim() as isize;
        let classes = self.x.shape()[cd as usize];
        let (eps, smooth) = (self.label_smoothing, self.label_smoothing / classes as f64);
        let p = self.x.softmax(cd);
        let w = self.weight_view(classes);
        let gr = self.row_grad(g);
        if prob {
            let t = &(self.target * (1.0 - eps)) + smooth;
            let wt = &t * &w;
            let gx = &(&(&p * &wt.sum_dim(cd, true)) - &wt) * &gr;
            let gt = &(&(&self.x.log_softmax(cd) * &w) * (eps - 1.0)) * &gr;
            return (gx, Some(gt));
        }
        let (ohw, validf) = self.weighted_one_hot(classes);
        let wy = ohw.sum_dim(cd, true);
        let coef = &(&wy * (1.0 - eps)) + &(&w.sum() * smooth);
        let d = &(&(&coef * &p) - &(&w * smooth)) - &(&ohw * (1.0 - eps));
        (&(&d * &validf) * &gr, None)
    }

    /// NLL's input gradient as differentiable tensor ops.
    #[track_caller]
    fn nll(&self, g: &Tensor) -> Tensor {
        let classes = self.x.shape()[self.class_dim()];
        let (ohw, _) = self.weighted_one_hot(classes);
        &ohw.neg() * &self.row_grad(g)
    }
}

impl Tensor {
    /// `F.cross_entropy(self, target, weight, ignore_index=…, reduction=…, label_smoothing=…)` as
    /// one fused op: per row a max-subtracted log-softmax and the (weighted, smoothed) negative
    /// log-likelihood, and a fused backward `g * (softmax * Σ w t' - w t')`.
    ///
    /// `self` is `(C)`, `(N, C)` or `(N, C, d1, …)`. A `target` of the input's shape and a float
    /// dtype holds class probabilities (it gets a gradient too); otherwise it holds class indices
    /// of any integer dtype with the input's shape minus the class dim, where `ignore_index`
    /// entries are skipped. The mean divides by the summed weight of the counted rows
    /// (probability targets: by the number of rows), as PyTorch does.
    ///
    /// ```
    /// use ember_autograd::Tensor;
    /// use ember_autograd::LossReduction;
    /// let x = Tensor::from_slice(&[-0.122f64, 0.105], [1, 2]);
    /// let t = Tensor::from_slice(&[1.0f64, 0.0], [1, 2]);
    /// let l = x.cross_entropy(&t, None, -100, 0.0, LossReduction::Mean);
    /// assert!((l.item() - 0.8131).abs() < 1e-4);
    /// ```
    #[track_caller]
    pub fn cross_entropy(
        &self,
        target: &Tensor,
        weight: Option<&Tensor>,
        ignore_index: i64,
        label_smoothing: f64,
        reduction: LossReduction,
    ) -> Tensor {
        const OP: &str = "cross_entropy";
        let classes = check_input(OP, self);
        check_device(OP, self, target);
        if !(0.0..=1.0).contains(&label_smoothing) {
            panic!("{OP}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}");
        }
        let prob = target.dtype().is_float() && target.shape() == self.shape();
        let target_c = if prob {
            target.detach().to_dtype(self.dtype())
        } else {
            check_index_target(OP, self, target, true);
            target.detach()
        };
        let weight = check_weight(OP, self, weight, classes);
        let fwd = {
            let (xs, ts) = (self.storage(), target_c.storage());
            let ws = weight.as_ref().map(|w| w.storage());
            let opts = CeOptions {
                weight: ws
                    .as_ref()
                    .map(|s| (&**s, weight.as_ref().unwrap().layout())),
                ignore_index,
                label_smoothing,
                op: OP,
            };
            let t = if prob {
                CeTarget::Prob(&*ts, target_c.layout())
            } else {
                CeTarget::Index(&*ts, target_c.layout())
            };
            xs.cross_entropy(self.layout(), t, &opts, reduction)
        };
        let out = Tensor::from_storage(fwd.loss, &out_shape(self.shape(), reduction));
        let need_target = prob && target.requires_grad();
        if !needs_grad(&[self, target]) {
            return out;
        }
        let x = Saved::new(self);
        let lse = fwd
            .lse
            .expect("cross_entropy: the kernel returns the row logsumexp");
        let weight_sum = fwd.weight_sum;
        let need_input = self.requires_grad();
        // Probability targets that require grad are kept with their graph: under create_graph
        // the input's gradient depends on them too.
        let target_graph = need_target.then(|| target.clone());
        record(out, "NllLossBackward0", &[self, target], move |g| {
            let x = x.get();
            if is_grad_enabled() {
                // create_graph: the same gradient from differentiable ops, so that it can itself
                // be differentiated.
                let t = match &target_graph {
                    Some(t) => t.to_dtype(x.dtype()),
                    None => target_c.clone(),
                };
                let c = Composed {
                    x,
                    target: &t,
                    weight: weight.as_ref(),
                    ignore_index,
                    label_smoothing,
                    reduction,
                    weight_sum,
                };
                let (gx, gt) = c.cross_entropy(g, prob);
                return smallvec![need_input.then_some(gx), gt.filter(|_| need_target)];
            }
            let (xs, ts, gs) = (x.storage(), target_c.storage(), g.storage());
            let ws = weight.as_ref().map(|w| w.storage());
            let opts = CeOptions {
                weight: ws
                    .as_ref()
                    .map(|s| (&**s, weight.as_ref().unwrap().layout())),
                ignore_index,
                label_smoothing,
                op: OP,
            };
            let t = if prob {
                CeTarget::Prob(&*ts, target_c.layout())
            } else {
                CeTarget::Index(&*ts, target_c.layout())
            };
            let grad = loss_grad(&gs, g.layout(), reduction, weight_sum);
            let (gi, gt) = xs.cross_entropy_backward(x.layout(), t, &opts, &lse, grad, need_target);
            let gi = need_input.then(|| Tensor::from_storage(gi, x.shape()));
            let gt = gt.map(|s| Tensor::from_storage(s, x.shape()));
            smallvec![gi, gt]
        })
    }

    /// `F.nll_loss(self, target, weight, ignore_index=…, reduction=…)` on log-probabilities
    /// `(C)`, `(N, C)` or `(N, C, d1, …)` with class-index targets of any integer dtype: `-w[y] *
    /// self[y]` per row; the mean divides by the summed weight of the rows not ignored.
    #[track_caller]
    pub fn nll_loss(
        &self,
        target: &Tensor,
        weight: Option<&Tensor>,
        ignore_index: i64,
        reduction: LossReduction,
    ) -> Tensor {
        const OP: &str = "nll_loss";
        let classes = check_input(OP, self);
        check_device(OP, self, target);
        check_index_target(OP, self, target, false);
        let weight = check_weight(OP, self, weight, classes);
        let target = target.detach();
        let fwd = {
            let (xs, ts) = (self.storage(), target.storage());
            let ws = weight.as_ref().map(|w| w.storage());
            let opts = CeOptions {
                weight: ws
                    .as_deref()
                    .map(|s| (s, weight.as_ref().unwrap().layout())),
                ignore_index,
                label_smoothing: 0.0,
                op: OP,
            };
            xs.nll_loss(self.layout(), (&ts, target.layout()), &opts, reduction)
        };
        let out = Tensor::from_storage(fwd.loss, &out_shape(self.shape(), reduction));
        if !needs_grad(&[self]) {
            return out;
        }
        let weight_sum = fwd.weight_sum;
        let shape = self.shape().to_vec();
        let dtype: DType = self.dtype();
        let x = self.detach();
        record(out, "NllLossBackward0", &[self], move |g| {
            if is_grad_enabled() {
                let c = Composed {
                    x: &x,
                    target: &target,
                    weight: weight.as_ref(),
                    ignore_index,
                    label_smoothing: 0.0,
                    reduction,
                    weight_sum,
                };
                return smallvec![Some(c.nll(g))];
            }
            let (xs, ts, gs) = (x.storage(), target.storage(), g.storage());
            let ws = weight.as_ref().map(|w| w.storage());
            let opts = CeOptions {
                weight: ws
                    .as_deref()
                    .map(|s| (s, weight.as_ref().unwrap().layout())),
                ignore_index,
                label_smoothing: 0.0,
                op: OP,
            };
            let grad = loss_grad(&gs, g.layout(), reduction, weight_sum);
            let gi = xs.nll_loss_backward(x.layout(), (&ts, target.layout()), &opts, grad);
            debug_assert_eq!(gi.dtype(), dtype);
            smallvec![Some(Tensor::from_storage(gi, &shape))]
        })
    }
}
