//! Pooling as Tensor ops: `max_pool1d`, `max_pool2d` (with indices), `avg_pool2d`,
//! `adaptive_avg_pool2d`, `adaptive_max_pool2d`, on batched or unbatched inputs of any strides.
//!
//! Two kernel pairs cover them (see `ember_kernels::cpu::pool`): max pooling records the index of
//! each window's first maximum and its backward adds the output gradient there; average pooling's
//! backward spreads each gradient over its window. Both backward passes are ops with their own
//! backward, so double backward works: the gradient of "add at the indices" is a gather at the
//! indices, and average pooling is linear (the gradient of its backward is the forward).

use crate::graph::{needs_grad, record};
use crate::ops::conv::Canon;
use crate::tensor::Tensor;
use ember_kernels::conv::{
    check_pool_input, AdaptiveSize, AvgDivisor, IntOrPair, PoolParams, PoolWindows,
};
use smallvec::smallvec;

#[track_caller]
fn spatial4(t: &Tensor) -> [usize; 2] {
    let s = t.shape();
    [s[2], s[3]]
}

/// Max pooling of the 4-D view of `x` given by `cx`: values and indices shaped by `cx`.
#[track_caller]
fn max_pool(
    x: &Tensor,
    cx: Canon,
    w: PoolWindows,
    out: [usize; 2],
    name: &'static str,
) -> (Tensor, Tensor) {
    let l = cx.layout(x.layout());
    let input = [l.shape()[2], l.shape()[3]];
    let (v, i) = x.storage().max_pool2d(&l, &w, out);
    let shape = cx.shape([l.shape()[0], l.shape()[1], out[0], out[1]]);
    let (values, indices) = (
        Tensor::from_storage(v, &shape),
        Tensor::from_storage(i, &shape),
    );
    if !needs_grad(&[x]) {
        return (values, indices);
    }
    let idx = indices.clone();
    let values = record(values, name, &[x], move |g| {
        let gx = max_pool_backward(&cx.to4(g), &cx.to4(&idx), input);
        smallvec![Some(cx.from4(&gx))]
    });
    (values, indices)
}

/// Adds each element of the 4-D gradient `g` at its `indices` (same shape) within a zero
/// `(N, C, input[0], input[1])`: the backward of max pooling.
#[track_caller]
fn max_pool_backward(g: &Tensor, indices: &Tensor, input: [usize; 2]) -> Tensor {
    let s =
        g.storage()
            .max_pool2d_backward(g.layout(), &indices.storage(), indices.layout(), input);
    let gs = g.shape();
    let out = Tensor::from_storage(s, &[gs[0], gs[1], input[0], input[1]]);
    if !needs_grad(&[g]) {
        return out;
    }
    let gshape = gs.to_vec();
    let plane = (input[0] * input[1]) as i64;
    // A window that read no input (dilated taps all in the padding) holds an index past its
    // plane and received nothing; its gradient is read from a valid index and masked to zero.
    let idx = indices.flatten(2, 3);
    let outside = idx.numel() > 0 && idx.max().item() >= plane as f64;
    let (idx, keep) = if outside {
        let keep = idx.lt(plane).to_dtype(g.dtype());
        (idx.clamp(None, Some((plane - 1).max(0) as f64)), Some(keep))
    } else {
        (idx, None)
    };
    record(
        out,
        "MaxPool2DWithIndicesBackwardBackward0",
        &[g],
        move |gg| {
            // Each output gradient was added at one index: its own gradient is read back there.
            let picked = gg.flatten(2, 3).gather(2, &idx);
            let picked = match &keep {
                Some(k) => &picked * k,
                None => picked,
            };
            smallvec![Some(picked.reshape(&gshape[..]))]
        },
    )
}

/// Average pooling of the 4-D view of `x` given by `cx`, shaped by `cx`.
#[track_caller]
fn avg_pool(
    x: &Tensor,
    cx: Canon,
    w: PoolWindows,
    div: AvgDivisor,
    out: [usize; 2],
    name: &'static str,
) -> Tensor {
    let l = cx.layout(x.layout());
    let input = [l.shape()[2], l.shape()[3]];
    let s = x.storage().avg_pool2d(&l, &w, div, out);
    let y = Tensor::from_storage(s, &cx.shape([l.shape()[0], l.shape()[1], out[0], out[1]]));
    if !needs_grad(&[x]) {
        return y;
    }
    record(y, name, &[x], move |g| {
        smallvec![Some(cx.from4(&avg_pool_backward(
            &cx.to4(g),
            w,
            div,
            input
        )))]
    })
}

/// The backward of average pooling on the 4-D gradient `g`: `(N, C, input[0], input[1])`.
#[track_caller]
fn avg_pool_backward(g: &Tensor, w: PoolWindows, div: AvgDivisor, input: [usize; 2]) -> Tensor {
    let s = g.storage().avg_pool2d_backward(g.layout(), &w, div, input);
    let gs = g.shape();
    let out = Tensor::from_storage(s, &[gs[0], gs[1], input[0], input[1]]);
    if !needs_grad(&[g]) {
        return out;
    }
    let out_hw = spatial4(g);
    record(out, "AvgPool2DBackwardBackward0", &[g], move |gg| {
        // Linear in g: the gradient of the backward is the forward.
        smallvec![Some(avg_pool(
            gg,
            Canon::FOUR_D,
            w,
            div,
            out_hw,
            "AvgPool2DBackward0"
        ))]
    })
}

/// Validates a pooling input and returns its form.
#[track_caller]
fn pool_input(op: &str, x: &Tensor, spatial: usize) -> Canon {
    check_pool_input(op, x.shape(), spatial);
    Canon::of(x.dim(), spatial).expect("rank checked")
}

/// The output size of sliding windows over the 4-D view of `x`.
#[track_caller]
fn sliding_out(op: &str, x: &Tensor, cx: Canon, p: &PoolParams) -> [usize; 2] {
    let l = cx.layout(x.layout());
    p.output_size(op, l.shape(), x.shape())
}

impl Tensor {
    /// 2-D max pooling (`torch.nn.functional.max_pool2d`) of `(N, C, H, W)` or `(C, H, W)`:
    /// the maximum of each `kernel_size` window, windows `stride` apart (`None`: the kernel
    /// size), with implicit `-inf` padding, taps `dilation` apart, and `ceil_mode` keeping a last
    /// partial window. The gradient goes to the first maximal element of each window.
    ///
    /// ```
    /// use ember_autograd::Tensor;
    /// let x = Tensor::arange(16).to_dtype(ember_autograd::DType::F32).reshape([1, 1, 4, 4]);
    /// let y = x.max_pool2d(2, None, 0, 1, false);
    /// assert_eq!(y.to_vec::<f32>(), vec![5.0, 7.0, 13.0, 15.0]);
    /// ```
    #[track_caller]
    pub fn max_pool2d(
        &self,
        kernel_size: impl Into<IntOrPair>,
        stride: Option<IntOrPair>,
        padding: impl Into<IntOrPair>,
        dilation: impl Into<IntOrPair>,
        ceil_mode: bool,
    ) -> Tensor {
        self.max_pool2d_with_indices(kernel_size, stride, padding, dilation, ceil_mode)
            .0
    }

    /// [`Tensor::max_pool2d`] also returning the int64 index (`h·W + w` within its plane) of each
    /// maximum (`return_indices=True`).
    #[track_caller]
    pub fn max_pool2d_with_indices(
        &self,
        kernel_size: impl Into<IntOrPair>,
        stride: Option<IntOrPair>,
        padding: impl Into<IntOrPair>,
        dilation: impl Into<IntOrPair>,
        ceil_mode: bool,
    ) -> (Tensor, Tensor) {
        let op = "max_pool2d";
        let cx = pool_input(op, self, 2);
        let p = PoolParams::resolve(
            op,
            kernel_size.into(),
            stride,
            padding.into(),
            dilation.into(),
            ceil_mode,
        );
        let out = sliding_out(op, self, cx, &p);
        max_pool(
            self,
            cx,
            PoolWindows::Sliding(p),
            out,
            "MaxPool2DWithIndicesBackward0",
        )
    }

    /// 1-D max pooling (`torch.nn.functional.max_pool1d`) of `(N, C, L)` or `(C, L)`.
    ///
    /// ```
    /// use ember_autograd::Tensor;
    /// let x = Tensor::from_slice(&[1.0f32, 3.0, 2.0, 5.0, 4.0], [1, 1, 5]);
    /// assert_eq!(x.max_pool1d(2, None, 0, 1, false).to_vec::<f32>(), vec![3.0, 5.0]);
    /// assert_eq!(x.max_pool1d(2, None, 0, 1, true).to_vec::<f32>(), vec![3.0, 5.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn max_pool1d(
        &self,
        kernel_size: usize,
        stride: Option<usize>,
        padding: usize,
        dilation: usize,
        ceil_mode: bool,
    ) -> Tensor {
        self.max_pool1d_with_indices(kernel_size, stride, padding, dilation, ceil_mode)
            .0
    }

    /// [`Tensor::max_pool1d`] also returning the int64 position of each maximum.
    #[track_caller]
    pub fn max_pool1d_with_indices(
        &self,
        kernel_size: usize,
        stride: Option<usize>,
        padding: usize,
        dilation: usize,
        ceil_mode: bool,
    ) -> (Tensor, Tensor) {
        let op = "max_pool1d";
        let cx = pool_input(op, self, 1);
        let p = PoolParams::resolve(
            op,
            IntOrPair::Pair(1, kernel_size),
            stride.map(|s| IntOrPair::Pair(1, s)),
            IntOrPair::Pair(0, padding),
            IntOrPair::Pair(1, dilation),
            ceil_mode,
        );
        let out = sliding_out(op, self, cx, &p);
        max_pool(
            self,
            cx,
            PoolWindows::Sliding(p),
            out,
            "MaxPool1DWithIndicesBackward0",
        )
    }

    /// 2-D average pooling (`torch.nn.functional.avg_pool2d`) of `(N, C, H, W)` or `(C, H, W)`:
    /// the mean of each window, zero padding counted when `count_include_pad`, or the sum divided
    /// by `divisor_override`.
    ///
    /// ```
    /// use ember_autograd::Tensor;
    /// let x = Tensor::ones([1, 1, 3, 3]);
    /// let y = x.avg_pool2d(3, Some(1.into()), 1, false, true, None);
    /// assert_eq!(y.to_vec::<f32>()[0], 4.0 / 9.0);
    /// let z = x.avg_pool2d(3, Some(1.into()), 1, false, false, None);
    /// assert_eq!(z.to_vec::<f32>()[0], 1.0);
    /// ```
    #[track_caller]
    pub fn avg_pool2d(
        &self,
        kernel_size: impl Into<IntOrPair>,
        stride: Option<IntOrPair>,
        padding: impl Into<IntOrPair>,
        ceil_mode: bool,
        count_include_pad: bool,
        divisor_override: Option<usize>,
    ) -> Tensor {
        let op = "avg_pool2d";
        let cx = pool_input(op, self, 2);
        if divisor_override == Some(0) {
            panic!("{op}: divisor must be not zero");
        }
        let p = PoolParams::resolve(
            op,
            kernel_size.into(),
            stride,
            padding.into(),
            1.into(),
            ceil_mode,
        );
        let out = sliding_out(op, self, cx, &p);
        let div = AvgDivisor {
            count_include_pad,
            divisor_override,
        };
        avg_pool(
            self,
            cx,
            PoolWindows::Sliding(p),
            div,
            out,
            "AvgPool2DBackward0",
        )
    }

    /// Adaptive 2-D average pooling (`torch.nn.functional.adaptive_avg_pool2d`): `output_size`
    /// windows per spatial dim that tile the input (`(5, None)` keeps the width).
    ///
    /// ```
    /// use ember_autograd::Tensor;
    /// let x = Tensor::arange(6).to_dtype(ember_autograd::DType::F32).reshape([1, 2, 3]);
    /// assert_eq!(x.adaptive_avg_pool2d(1).to_vec::<f32>(), vec![2.5]);
    /// ```
    #[track_caller]
    pub fn adaptive_avg_pool2d(&self, output_size: impl Into<AdaptiveSize>) -> Tensor {
        let op = "adaptive_avg_pool2d";
        let (cx, out) = self.adaptive_out(op, output_size.into());
        let div = AvgDivisor {
            count_include_pad: false,
            divisor_override: None,
        };
        avg_pool(
            self,
            cx,
            PoolWindows::Adaptive,
            div,
            out,
            "AdaptiveAvgPool2DBackward0",
        )
    }

    /// Adaptive 2-D max pooling (`torch.nn.functional.adaptive_max_pool2d`).
    #[track_caller]
    pub fn adaptive_max_pool2d(&self, output_size: impl Into<AdaptiveSize>) -> Tensor {
        self.adaptive_max_pool2d_with_indices(output_size).0
    }

    /// [`Tensor::adaptive_max_pool2d`] also returning the int64 index of each maximum.
    #[track_caller]
    pub fn adaptive_max_pool2d_with_indices(
        &self,
        output_size: impl Into<AdaptiveSize>,
    ) -> (Tensor, Tensor) {
        let op = "adaptive_max_pool2d";
        let (cx, out) = self.adaptive_out(op, output_size.into());
        max_pool(
            self,
            cx,
            PoolWindows::Adaptive,
            out,
            "AdaptiveMaxPool2DBackward0",
        )
    }

    /// The form and output size of an adaptive pooling.
    #[track_caller]
    fn adaptive_out(&self, op: &str, size: AdaptiveSize) -> (Canon, [usize; 2]) {
        let Some(cx) = Canon::of(self.dim(), 2) else {
            panic!(
                "{op}(): Expected 3D or 4D tensor, but got {:?}",
                self.shape()
            );
        };
        let l = cx.layout(self.layout());
        let input = [l.shape()[2], l.shape()[3]];
        if input.contains(&0) || l.shape()[1] == 0 {
            panic!(
                "{op}(): Expected input to have non-zero size for non-batch dimensions, but input has sizes {:?} with dimension {} being empty",
                self.shape(),
                self.shape().iter().rposition(|&s| s == 0).unwrap_or(0)
            );
        }
        (cx, size.resolve(input))
    }
}
