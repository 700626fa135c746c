//! The `#[repr(C)]` parameter structs kernels take by value, twins of the structs of the same
//! names in `kernels/*.cu`. The kernel prelude `static_assert`s each size given by
//! [`struct_sizes`], so a field added on one side only fails the NVRTC test.

use super::geometry::{ElemGeom, RedGeom};

/// Parameters of `unary_*` (`elementwise.cu`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnaryP {
    /// `UOP_*` code.
    pub op: u32,
    /// For `UOP_CLAMP`: bit 0 = has a lower bound, bit 1 = has an upper bound.
    pub flags: u32,
    /// First parameter, as bits of the dtype.
    pub a: u64,
    /// Second parameter, as bits of the dtype.
    pub b: u64,
}

/// Parameters of the reductions (`reduce.cu`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RedP {
    /// The accumulator is divided by this before the output is written.
    pub div: f64,
    /// A p-norm's order.
    pub ord: f64,
    /// The norm's `NORM_*` kind.
    pub kind: u32,
    /// Padding.
    pub pad: u32,
}

/// Row geometry and options of the losses (`loss.cu`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CeP {
    /// Rows (positions with one class score vector each).
    pub rows: u64,
    /// Classes.
    pub classes: u64,
    /// Product of the dims after the class dim.
    pub inner: u64,
    /// Targets equal to this are skipped.
    pub ignore: i64,
    /// `1 - label_smoothing`.
    pub keep: f64,
    /// `label_smoothing / classes`.
    pub smooth: f64,
    /// The error code reported for a target out of range (names the op).
    pub err_code: u64,
}

/// How the backward kernels of the losses read the upstream gradient (`loss.cu`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GradP {
    /// 1: one gradient per row; 0: one value times `factor`.
    pub per_row: u32,
    /// Padding.
    pub pad: u32,
    /// The multiplier of a reduced loss's gradient.
    pub factor: f64,
}

/// SGD constants (`optim.cu`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SgdP {
    /// `-lr`
    pub nlr: f64,
    /// Weight decay.
    pub wd: f64,
    /// -1 when maximizing, else 1.
    pub sign: f64,
    /// Momentum.
    pub mom: f64,
    /// `1 - dampening`.
    pub damp1: f64,
    /// Weight decay is applied.
    pub wd_on: u32,
    /// A momentum buffer is used.
    pub momentum: u32,
    /// The buffer's first step (it is set to the gradient).
    pub first: u32,
    /// Nesterov momentum.
    pub nesterov: u32,
}

/// Adam/AdamW constants (`optim.cu`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AdamP {
    /// -1 when maximizing, else 1.
    pub sign: f64,
    /// Weight decay.
    pub wd: f64,
    /// `1 - lr * weight_decay` (AdamW).
    pub decay: f64,
    /// `1 - beta1` (the lerp weight).
    pub w: f64,
    /// `1 - w`.
    pub w1: f64,
    /// `beta2`.
    pub b2: f64,
    /// `1 - beta2`.
    pub c2: f64,
    /// `sqrt(1 - beta2^step)`.
    pub bc2s: f64,
    /// `eps`.
    pub eps: f64,
    /// `-step_size`.
    pub nss: f64,
    /// 0 none, 1 L2 penalty, 2 decoupled.
    pub wd_mode: u32,
    /// Keep the running maximum of the second moment.
    pub amsgrad: u32,
    /// `|w| < 0.5`: lerp as `m + w (d - m)`, else `d - (d - m)(1 - w)`.
    pub lerp_small: u32,
    /// Padding.
    pub pad: u32,
}

/// RMSprop constants (`optim.cu`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RmsP {
    /// -1 when maximizing, else 1.
    pub sign: f64,
    /// Weight decay.
    pub wd: f64,
    /// Smoothing constant.
    pub alpha: f64,
    /// `1 - alpha`.
    pub c1: f64,
    /// `1 - alpha` (the lerp weight of the centered average).
    pub w: f64,
    /// `1 - w`.
    pub w1: f64,
    /// `eps`.
    pub eps: f64,
    /// Momentum.
    pub mom: f64,
    /// `-lr`.
    pub nlr: f64,
    /// Weight decay is applied.
    pub wd_on: u32,
    /// Centered variant.
    pub centered: u32,
    /// A momentum buffer is used.
    pub momentum: u32,
    /// See [`AdamP::lerp_small`].
    pub lerp_small: u32,
}

/// Adagrad constants (`optim.cu`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AdagradP {
    /// -1 when maximizing, else 1.
    pub sign: f64,
    /// Weight decay.
    pub wd: f64,
    /// `eps`.
    pub eps: f64,
    /// `-clr`.
    pub nclr: f64,
    /// Weight decay is applied.
    pub wd_on: u32,
    /// Padding.
    pub pad: u32,
}

/// Shapes and strides of an integer GEMM (`matmul.cu`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GemmP {
    /// Batch size.
    pub batch: u64,
    /// Rows of the output.
    pub m: u64,
    /// The summed dim.
    pub k: u64,
    /// Columns of the output.
    pub n: u64,
    /// `a`'s batch stride.
    pub a_batch: u64,
    /// `a`'s row stride.
    pub a_row: u64,
    /// `a`'s column stride.
    pub a_col: u64,
    /// `b`'s batch stride.
    pub b_batch: u64,
    /// `b`'s row stride.
    pub b_row: u64,
    /// `b`'s column stride.
    pub b_col: u64,
    /// `alpha`, as bits of the dtype.
    pub alpha: u64,
    /// Add into the existing output.
    pub accumulate: u32,
    /// Padding.
    pub pad: u32,
}

/// `(name, size)` of every struct passed by value, for the `static_assert`s of the prelude.
pub fn struct_sizes() -> Vec<(&'static str, usize)> {
    use std::mem::size_of;
    vec![
        ("ElemGeom", size_of::<ElemGeom>()),
        ("RedGeom", size_of::<RedGeom>()),
        ("UnaryP", size_of::<UnaryP>()),
        ("RedP", size_of::<RedP>()),
        ("CeP", size_of::<CeP>()),
        ("GradP", size_of::<GradP>()),
        ("SgdP", size_of::<SgdP>()),
        ("AdamP", size_of::<AdamP>()),
        ("RmsP", size_of::<RmsP>()),
        ("AdagradP", size_of::<AdagradP>()),
        ("GemmP", size_of::<GemmP>()),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_have_no_hidden_padding() {
        let want = [400, 280, 24, 24, 56, 16, 56, 96, 88, 40, 96];
        let got: Vec<usize> = super::struct_sizes().iter().map(|s| s.1).collect();
        assert_eq!(got, want);
    }
}
