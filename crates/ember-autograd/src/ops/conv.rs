//! Convolutions as Tensor ops: `conv1d`, `conv2d` and `conv_transpose2d` with PyTorch's
//! arguments (stride, padding as sizes or `"same"`/`"valid"`, dilation, groups, optional bias;
//! batched or unbatched inputs of any strides).
//!
//! Three kernels cover everything (see `ember_kernels::cpu::conv`): the convolution, its input
//! gradient (which is the transposed convolution) and its weight gradient. Each is an op here
//! whose backward is made of the other two, so gradients of gradients work:
//!
//! - `y = conv(x, w)`: `dx = conv_input_grad(dy, w)`, `dw = conv_weight_grad(x, dy)`;
//! - `x = conv_input_grad(y, w)`: `dy = conv(dx, w)`, `dw = conv_weight_grad(dx, y)`;
//! - `w = conv_weight_grad(x, y)`: `dx = conv_input_grad(y, dw)`, `dy = conv(x, dw)`.
//!
//! A 1-D convolution is the 2-D one over a height of 1 and an unbatched input a batch of 1: the
//! kernels see a 4-D layout with size-1 dims inserted (no copy), and the results are shaped back.

use crate::graph::{needs_grad, record, Saved};
use crate::ops::elementwise::check_device;
use crate::tensor::Tensor;
use ember_kernels::conv::{check_conv, ConvParams, IntOrPair, Padding};
use ember_kernels::op::BinaryOp;
use ember_kernels::Layout;
use smallvec::smallvec;

/// How a user's tensor maps onto the kernels' 4-D `(N, C, H, W)`: a 1-D op's tensors get a
/// height of 1 before their last dim, an unbatched input a batch of 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Canon {
    /// One spatial dim (the op is 1-D).
    pub(crate) one_d: bool,
    /// The tensor has a batch dim.
    pub(crate) batched: bool,
}

impl Canon {
    /// Canonical form of an input of `ndim` dims to an op with `spatial` spatial dims, or `None`
    /// when the rank fits neither the batched nor the unbatched form.
    #[track_caller]
    pub(crate) fn of(ndim: usize, spatial: usize) -> Option<Canon> {
        (ndim == spatial + 1 || ndim == spatial + 2).then_some(Canon {
            one_d: spatial == 1,
            batched: ndim == spatial + 2,
        })
    }

    /// The form of a 4-D tensor (nothing inserted).
    pub(crate) const FOUR_D: Canon = Canon {
        one_d: false,
        batched: true,
    };

    /// The layout seen as 4-D.
    #[track_caller]
    pub(crate) fn layout(self, l: &Layout) -> Layout {
        let mut l = l.clone();
        if self.one_d {
            l = l.unsqueeze(l.ndim() - 1);
        }
        if !self.batched {
            l = l.unsqueeze(0);
        }
        l
    }

    /// The tensor seen as 4-D (a view; recorded in the graph).
    #[track_caller]
    pub(crate) fn to4(self, t: &Tensor) -> Tensor {
        let mut t = t.clone();
        if self.one_d {
            t = t.unsqueeze(t.dim() as isize - 1);
        }
        if !self.batched {
            t = t.unsqueeze(0);
        }
        t
    }

    /// A 4-D tensor in this form again (a view).
    #[track_caller]
    pub(crate) fn from4(self, t: &Tensor) -> Tensor {
        let mut t = t.clone();
        if !self.batched {
            t = t.squeeze_dim(0);
        }
        if self.one_d {
            t = t.squeeze_dim(-2);
        }
        t
    }

    /// A 4-D shape in this form.
    #[track_caller]
    pub(crate) fn shape(self, s: [usize; 4]) -> Vec<usize> {
        let mut v = s.to_vec();
        if self.one_d {
            v.remove(2);
        }
        if !self.batched {
            v.remove(0);
        }
        v
    }
}

/// The form of a convolution weight: `(C_out, C_in / groups, [kH,] kW)`, never batched.
#[track_caller]
fn weight_canon(one_d: bool) -> Canon {
    Canon {
        one_d,
        batched: true,
    }
}

#[track_caller]
fn shape4(l: &Layout) -> [usize; 4] {
    let s = l.shape();
    [s[0], s[1], s[2], s[3]]
}

/// Panics unless `t` has `dtype` (PyTorch's message names both).
#[track_caller]
fn same_dtype(op: &str, x: &Tensor, t: &Tensor, what: &str) {
    if t.dtype() != x.dtype() {
        panic!(
            "{op}: Input type ({}) and {what} type ({}) should be the same",
            x.dtype().name(),
            t.dtype().name()
        );
    }
}

/// The convolution of 4-D views `x4` (of `x`) and `w4` (of `w`): the kernel call and the graph
/// node. The output is shaped by `cx`; `name` is the node's name.
// Each argument is one independent piece of the call (operands, their 4-D views, the params, the
// output size, the node name); bundling them in a struct would only move the list.
#[allow(clippy::too_many_arguments)]
#[track_caller]
fn convolution(
    x: &Tensor,
    cx: Canon,
    w: &Tensor,
    cw: Canon,
    bias: Option<&Tensor>,
    p: ConvParams,
    out: [usize; 2],
    name: &'static str,
) -> Tensor {
    let (lx, lw) = (cx.layout(x.layout()), cw.layout(w.layout()));
    let (xs, ws) = (shape4(&lx), shape4(&lw));
    let s = {
        let b = bias.map(|b| b.storage());
        x.storage().conv2d(
            &lx,
            &w.storage(),
            &lw,
            b.as_deref().zip(bias.map(|b| b.layout())),
            &p,
            out,
        )
    };
    let y4 = [xs[0], ws[0], out[0], out[1]];
    let y = Tensor::from_storage(s, &cx.shape(y4));
    let inputs: Vec<&Tensor> = [Some(x), Some(w), bias].into_iter().flatten().collect();
    if !needs_grad(&inputs) {
        return y;
    }
    let (sx, sw) = (Saved::new(x), Saved::new(w));
    let need = [
        x.requires_grad(),
        w.requires_grad(),
        bias.is_some_and(|b| b.requires_grad()),
    ];
    let (in_hw, k) = ([xs[2], xs[3]], [ws[2], ws[3]]);
    let has_bias = bias.is_some();
    record(y, name, &inputs, move |g| {
        let g4 = cx.to4(g);
        let (x4, w4) = (cx.to4(sx.get()), cw.to4(sw.get()));
        let gx = need[0].then(|| {
            let gx4 = conv_input_grad(&g4, &w4, None, p, in_hw, "ConvolutionBackwardBackward0");
            cx.from4(&gx4)
        });
        let gw = need[1].then(|| cw.from4(&conv_weight_grad(&x4, &g4, p, k)));
        let mut grads = smallvec![gx, gw];
        if has_bias {
            grads.push(need[2].then(|| g4.sum_dim([0isize, 2, 3], false)));
        }
        grads
    })
}

/// The input gradient of a convolution of 4-D tensors — equally the transposed convolution of
/// `g` with `w` — with an optional bias added per output channel: `(N, C_in, input[0],
/// input[1])`.
#[track_caller]
fn conv_input_grad(
    g: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: ConvParams,
    input: [usize; 2],
    name: &'static str,
) -> Tensor {
    let (gs, ws) = (shape4(g.layout()), shape4(w.layout()));
    let mut s = g
        .storage()
        .conv2d_backward_input(g.layout(), &w.storage(), w.layout(), &p, input);
    let shape = [gs[0], ws[1] * p.groups, input[0], input[1]];
    if let Some(b) = bias {
        let lb = b.layout().unsqueeze(1).unsqueeze(2).expand(&shape);
        s.binary_inplace(
            &Layout::contiguous(&shape),
            &b.storage(),
            &lb,
            BinaryOp::Add,
        );
    }
    let out = Tensor::from_storage(s, &shape);
    let inputs: Vec<&Tensor> = [Some(g), Some(w), bias].into_iter().flatten().collect();
    if !needs_grad(&inputs) {
        return out;
    }
    let (sg, sw) = (Saved::new(g), Saved::new(w));
    let need = [
        g.requires_grad(),
        w.requires_grad(),
        bias.is_some_and(|b| b.requires_grad()),
    ];
    let (out_hw, k) = ([gs[2], gs[3]], [ws[2], ws[3]]);
    let has_bias = bias.is_some();
    record(out, name, &inputs, move |gg| {
        let (g, w) = (sg.get(), sw.get());
        let four = Canon::FOUR_D;
        let dg = need[0].then(|| {
            convolution(
                gg,
                four,
                w,
                four,
                None,
                p,
                out_hw,
                "ConvolutionBackwardBackward0",
            )
        });
        let dw = need[1].then(|| conv_weight_grad(gg, g, p, k));
        let mut grads = smallvec![dg, dw];
        if has_bias {
            grads.push(need[2].then(|| gg.sum_dim([0isize, 2, 3], false)));
        }
        grads
    })
}

/// The weight gradient of a convolution of the 4-D input `x` given the output gradient `g`:
/// `(C_out, C_in / groups, kernel[0], kernel[1])`, summed over the batch.
#[track_caller]
fn conv_weight_grad(x: &Tensor, g: &Tensor, p: ConvParams, kernel: [usize; 2]) -> Tensor {
    let (xs, gs) = (shape4(x.layout()), shape4(g.layout()));
    let s = x
        .storage()
        .conv2d_backward_weight(x.layout(), &g.storage(), g.layout(), &p, kernel);
    let out = Tensor::from_storage(s, &[gs[1], xs[1] / p.groups, kernel[0], kernel[1]]);
    if !needs_grad(&[x, g]) {
        return out;
    }
    let (sx, sg) = (Saved::new(x), Saved::new(g));
    let need = [x.requires_grad(), g.requires_grad()];
    let (in_hw, out_hw) = ([xs[2], xs[3]], [gs[2], gs[3]]);
    record(out, "ConvolutionBackwardBackward0", &[x, g], move |gw| {
        let (x, g) = (sx.get(), sg.get());
        let four = Canon::FOUR_D;
        let dx =
            need[0].then(|| conv_input_grad(g, gw, None, p, in_hw, "ConvolutionBackwardBackward0"));
        let dg = need[1].then(|| {
            convolution(
                x,
                four,
                gw,
                four,
                None,
                p,
                out_hw,
                "ConvolutionBackwardBackward0",
            )
        });
        smallvec![dx, dg]
    })
}

/// Validates ranks, dtypes and devices of a convolution's operands and returns the input's form.
#[track_caller]
fn check_operands(
    op: &str,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    spatial: usize,
) -> Canon {
    let cx = Canon::of(x.dim(), spatial).unwrap_or_else(|| {
        let (a, b) = if spatial == 1 { ("2D", "3D") } else { ("3D", "4D") };
        panic!(
            "{op}: Expected {a} (unbatched) or {b} (batched) input to {op}, but got input of size: {:?}",
            x.shape()
        )
    });
    if w.dim() != spatial + 2 {
        panic!(
            "{op}: expected a {}-D weight (out_channels, in_channels / groups, {}), got weight of size {:?}",
            spatial + 2,
            if spatial == 1 { "kW" } else { "kH, kW" },
            w.shape()
        );
    }
    check_device(op, x, w);
    same_dtype(op, x, w, "weight");
    if let Some(b) = bias {
        check_device(op, x, b);
        same_dtype(op, x, b, "bias");
    }
    cx
}

impl Tensor {
    /// 2-D convolution (`torch.nn.functional.conv2d`) of the input `(N, C_in, H, W)` or
    /// `(C_in, H, W)` (any strides: a channels-last view is read in place) with `weight`
    /// `(C_out, C_in / groups, kH, kW)` and an optional `bias` `(C_out)`. `padding` is a size,
    /// a pair, `"same"` or `"valid"`; `stride` and `dilation` a size or a pair.
    ///
    /// ```
    /// use ember_autograd::Tensor;
    /// let x = Tensor::ones([1, 1, 4, 4]);
    /// let w = Tensor::ones([2, 1, 3, 3]);
    /// let y = x.conv2d(&w, None, 1, 1, 1, 1);
    /// assert_eq!(y.shape(), &[1, 2, 4, 4]);
    /// assert_eq!(y.to_vec::<f32>()[..4], [4.0, 6.0, 6.0, 4.0]);
    /// assert_eq!(x.conv2d(&w, None, 2, "valid", 1, 1).shape(), &[1, 2, 1, 1]);
    /// ```
    #[track_caller]
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: impl Into<IntOrPair>,
        padding: impl Into<Padding>,
        dilation: impl Into<IntOrPair>,
        groups: usize,
    ) -> Tensor {
        let cx = check_operands("conv2d", self, weight, bias, 2);
        let k = [weight.shape()[2], weight.shape()[3]];
        let p = ConvParams::resolve(
            "conv2d",
            stride.into(),
            padding.into(),
            dilation.into(),
            groups,
            k,
        );
        let x4 = cx.layout(self.layout());
        check_conv(
            "conv2d",
            x4.shape(),
            weight.shape(),
            bias.map(|b| b.shape()),
            &p,
            false,
            (x4.shape(), weight.shape()),
        );
        let out = p.output_size("conv2d", [x4.shape()[2], x4.shape()[3]], k);
        convolution(
            self,
            cx,
            weight,
            weight_canon(false),
            bias,
            p,
            out,
            "ConvolutionBackward0",
        )
    }

    /// 1-D convolution (`torch.nn.functional.conv1d`) of the input `(N, C_in, L)` or
    /// `(C_in, L)` with `weight` `(C_out, C_in / groups, kW)` and an optional `bias` `(C_out)`;
    /// `padding` is a size, `"same"` or `"valid"`.
    ///
    /// ```
    /// use ember_autograd::Tensor;
    /// let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0], [1, 1, 4]);
    /// let w = Tensor::from_slice(&[1.0f32, -1.0], [1, 1, 2]);
    /// assert_eq!(x.conv1d(&w, None, 1, 0, 1, 1).to_vec::<f32>(), vec![-1.0, -1.0, -1.0]);
    /// ```
    #[track_caller]
    pub fn conv1d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: impl Into<Padding>,
        dilation: usize,
        groups: usize,
    ) -> Tensor {
        let cx = check_operands("conv1d", self, weight, bias, 1);
        let k = weight.shape()[2];
        let padding = match padding.into() {
            Padding::Explicit(IntOrPair::Pair(a, b)) => panic!(
                "conv1d: expected padding to be a single integer value or a list of 1 values to match the convolution dimensions, but got padding=[{a}, {b}]"
            ),
            Padding::Explicit(IntOrPair::Int(v)) => Padding::Explicit(IntOrPair::Pair(0, v)),
            other => other,
        };
        let p = ConvParams::resolve(
            "conv1d",
            IntOrPair::Pair(1, stride),
            padding,
            IntOrPair::Pair(1, dilation),
            groups,
            [1, k],
        );
        let (x4, w4) = (
            cx.layout(self.layout()),
            weight_canon(true).layout(weight.layout()),
        );
        check_conv(
            "conv1d",
            x4.shape(),
            w4.shape(),
            bias.map(|b| b.shape()),
            &p,
            false,
            (self.shape(), weight.shape()),
        );
        let out = p.output_size("conv1d", [1, x4.shape()[3]], [1, k]);
        convolution(
            self,
            cx,
            weight,
            weight_canon(true),
            bias,
            p,
            out,
            "ConvolutionBackward0",
        )
    }

    /// 2-D transposed convolution (`torch.nn.functional.conv_transpose2d`, the gradient of
    /// `conv2d` with respect to its input) of `(N, C_in, H, W)` or `(C_in, H, W)` with `weight`
    /// `(C_in, C_out / groups, kH, kW)` and an optional `bias` `(C_out)`: the output is
    /// `(H - 1)·stride - 2·padding + dilation·(kH - 1) + output_padding + 1` high (and wide).
    ///
    /// ```
    /// use ember_autograd::Tensor;
    /// let x = Tensor::ones([1, 4, 5, 5]);
    /// let w = Tensor::ones([4, 3, 3, 3]);
    /// let y = x.conv_transpose2d(&w, None, 2, 1, 1, 1, 1);
    /// assert_eq!(y.shape(), &[1, 3, 10, 10]);
    /// ```
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: impl Into<IntOrPair>,
        padding: impl Into<IntOrPair>,
        output_padding: impl Into<IntOrPair>,
        groups: usize,
        dilation: impl Into<IntOrPair>,
    ) -> Tensor {
        let op = "conv_transpose2d";
        let cx = check_operands(op, self, weight, bias, 2);
        let k = [weight.shape()[2], weight.shape()[3]];
        let p = ConvParams::resolve(
            op,
            stride.into(),
            Padding::Explicit(padding.into()),
            dilation.into(),
            groups,
            k,
        );
        let op_pad = output_padding.into().get();
        if (0..2).any(|d| op_pad[d] >= p.stride[d] && op_pad[d] >= p.dilation[d]) {
            panic!(
                "{op}: output padding must be smaller than either stride or dilation, but got output_padding_height: {} output_padding_width: {} stride_height: {} stride_width: {} dilation_height: {} dilation_width: {}",
                op_pad[0], op_pad[1], p.stride[0], p.stride[1], p.dilation[0], p.dilation[1]
            );
        }
        let x4 = cx.layout(self.layout());
        check_conv(
            op,
            x4.shape(),
            weight.shape(),
            bias.map(|b| b.shape()),
            &p,
            true,
            (x4.shape(), weight.shape()),
        );
        let in_hw = [x4.shape()[2], x4.shape()[3]];
        let out = p
            .transposed_output_size(in_hw, k, op_pad)
            .filter(|o| o[0] > 0 && o[1] > 0)
            .unwrap_or_else(|| {
                panic!(
                    "{op}: Given input size per channel: ({} x {}). Calculated output size per channel is not positive (padding {:?}, kernel {:?}, stride {:?}). Output size is too small",
                    in_hw[0], in_hw[1], p.padding, k, p.stride
                )
            });
        // The transposed convolution is the input gradient of the convolution it inverts, whose
        // weight has the same layout.
        let y4 = conv_input_grad(&cx.to4(self), weight, bias, p, out, "ConvolutionBackward0");
        cx.from4(&y4)
    }
}
