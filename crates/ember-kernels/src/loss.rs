//! The vocabulary of the fused loss kernels, shared by every backend: reductions, targets,
//! options, results, gradients and the row geometry. The device dispatch is in
//! `storage/loss.rs`, the kernels in `cpu/loss.rs` and `cuda/loss.rs`.
//!
//! Inputs have the class dimension at 1 (`(N, C, d1, …)`) or are 1-D (`(C)`); a "row" is one
//! position `(n, d1, …)`, i.e. the C scores of one sample.

use crate::layout::Layout;
use crate::storage::Storage;

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
