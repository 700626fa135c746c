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

/// Geometry of one im2col / col2im launch (`conv.cu`): a chunk of `n` samples of a 2-D
/// convolution, how the input is strided and how the patch matrix ("columns") is laid out.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConvP {
    /// Samples in this launch.
    pub n: u64,
    /// Input channels (all groups).
    pub cin: u64,
    /// Input height.
    pub h: u64,
    /// Input width.
    pub w: u64,
    /// Output height.
    pub oh: u64,
    /// Output width.
    pub ow: u64,
    /// Kernel height.
    pub kh: u64,
    /// Kernel width.
    pub kw: u64,
    /// Input channels of one group.
    pub cg: u64,
    /// Groups.
    pub groups: u64,
    /// Input strides (sample, channel, row, column); im2col reads through them.
    pub xs: [u64; 4],
    /// Patch-matrix strides (sample, group, row `(c·kh + i)·kw + j`, output position).
    pub cs: [u64; 4],
    /// Convolution stride (height, width).
    pub stride: [u64; 2],
    /// Zeros before the input (height, width).
    pub pad: [u64; 2],
    /// Dilation (height, width).
    pub dil: [u64; 2],
    /// Threads' work items: patch-matrix entries (im2col) or input elements (col2im).
    pub total: u64,
    /// 1: `total` fits 32-bit index arithmetic.
    pub use32: u32,
    /// Padding.
    pub pad_: u32,
}

/// Geometry of a pooling launch (`conv.cu`): planes of `(N, C, H, W)`, the windows, the
/// average's divisor and the strides of the strided operands.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolP {
    /// `N · C` planes.
    pub planes: u64,
    /// Channels `C` (a plane `p` is sample `p / C`, channel `p % C`).
    pub c: u64,
    /// Input height.
    pub h: u64,
    /// Input width.
    pub w: u64,
    /// Output height.
    pub oh: u64,
    /// Output width.
    pub ow: u64,
    /// Window size (height, width) of sliding windows.
    pub kernel: [u64; 2],
    /// Window stride.
    pub stride: [u64; 2],
    /// Implicit padding on both sides.
    pub pad: [u64; 2],
    /// Distance between window taps.
    pub dil: [u64; 2],
    /// Strides (sample, channel, row, column) of the operand read: the input (forward) or the
    /// output gradient (backward).
    pub s: [u64; 4],
    /// Strides of the max-pooling indices (`max_pool_bwd`).
    pub si: [u64; 4],
    /// The average's `divisor_override` (when `has_override`).
    pub divisor: u64,
    /// Threads' work items (outputs, or input elements for `avg_pool_bwd`).
    pub total: u64,
    /// 1: adaptive windows (`conv::adaptive_range`), 0: sliding.
    pub adaptive: u32,
    /// 1: an average divides by the window's size counting padding.
    pub count_include_pad: u32,
    /// 1: an average divides by `divisor`.
    pub has_override: u32,
    /// 1: `total` fits 32-bit index arithmetic.
    pub use32: u32,
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
        ("ConvP", size_of::<ConvP>()),
        ("PoolP", size_of::<PoolP>()),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_have_no_hidden_padding() {
        let want = [400, 280, 24, 24, 56, 16, 56, 96, 88, 40, 96, 208, 208];
        let got: Vec<usize> = super::struct_sizes().iter().map(|s| s.1).collect();
        assert_eq!(got, want);
    }
}
