//! Pooling layers: `MaxPool1d`, `MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d`,
//! `AdaptiveMaxPool2d`, with PyTorch's arguments and defaults (the stride defaults to the kernel
//! size) and printed form (sizes shown as given: `2` or `(2, 3)`).
//!
//! ```
//! use ember_autograd::Tensor;
//! use ember_nn::{MaxPool2d, Module};
//! let pool = MaxPool2d::new(2);
//! assert_eq!(pool.forward(&Tensor::zeros([8, 32, 28, 28])).shape(), &[8, 32, 14, 14]);
//! assert_eq!(pool.repr(), "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)");
//! ```

use crate::module::Module;
use ember_autograd::{AdaptiveSize, IntOrPair, Tensor};
use ember_nn_derive::Module;

#[track_caller]
fn py(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// 2-D max pooling (`nn.MaxPool2d`) over `(N, C, H, W)` or `(C, H, W)` inputs. The gradient goes
/// to the first maximal element of each window; [`MaxPool2d::forward_with_indices`] also returns
/// the index of each maximum (PyTorch's `return_indices=True`).
#[derive(Module, Clone, Copy, Debug)]
pub struct MaxPool2d {
    /// Window size.
    pub kernel_size: IntOrPair,
    /// Step between windows (default: the kernel size).
    pub stride: IntOrPair,
    /// Implicit `-inf` padding on both sides.
    pub padding: IntOrPair,
    /// Spacing of window taps.
    pub dilation: IntOrPair,
    /// Keep a last partial window.
    pub ceil_mode: bool,
}

impl MaxPool2d {
    /// `MaxPool2d(kernel_size)`: stride = kernel size, no padding, dilation 1, floor mode.
    #[track_caller]
    pub fn new(kernel_size: impl Into<IntOrPair>) -> MaxPool2d {
        let k = kernel_size.into();
        MaxPool2d {
            kernel_size: k,
            stride: k,
            padding: 0.into(),
            dilation: 1.into(),
            ceil_mode: false,
        }
    }
    /// Sets the stride.
    #[track_caller]
    pub fn stride(mut self, stride: impl Into<IntOrPair>) -> Self {
        self.stride = stride.into();
        self
    }
    /// Sets the padding.
    #[track_caller]
    pub fn padding(mut self, padding: impl Into<IntOrPair>) -> Self {
        self.padding = padding.into();
        self
    }
    /// Sets the dilation.
    #[track_caller]
    pub fn dilation(mut self, dilation: impl Into<IntOrPair>) -> Self {
        self.dilation = dilation.into();
        self
    }
    /// Sets `ceil_mode`.
    #[track_caller]
    pub fn ceil_mode(mut self, ceil_mode: bool) -> Self {
        self.ceil_mode = ceil_mode;
        self
    }
    /// The pooled values and the int64 index (`h·W + w` within its plane) of each maximum.
    #[track_caller]
    pub fn forward_with_indices(&self, input: &Tensor) -> (Tensor, Tensor) {
        input.max_pool2d_with_indices(
            self.kernel_size,
            Some(self.stride),
            self.padding,
            self.dilation,
            self.ceil_mode,
        )
    }
}

impl Module for MaxPool2d {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        self.forward_with_indices(input).0
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!(
            "kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={}",
            self.kernel_size.repr(),
            self.stride.repr(),
            self.padding.repr(),
            self.dilation.repr(),
            py(self.ceil_mode)
        )
    }
}

/// 1-D max pooling (`nn.MaxPool1d`) over `(N, C, L)` or `(C, L)` inputs.
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_nn::{MaxPool1d, Module};
/// let pool = MaxPool1d::new(3);
/// assert_eq!(pool.forward(&Tensor::zeros([2, 4, 9])).shape(), &[2, 4, 3]);
/// assert_eq!(pool.repr(), "MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False)");
/// ```
#[derive(Module, Clone, Copy, Debug)]
pub struct MaxPool1d {
    /// Window size.
    pub kernel_size: usize,
    /// Step between windows (default: the kernel size).
    pub stride: usize,
    /// Implicit `-inf` padding on both sides.
    pub padding: usize,
    /// Spacing of window taps.
    pub dilation: usize,
    /// Keep a last partial window.
    pub ceil_mode: bool,
}

impl MaxPool1d {
    /// `MaxPool1d(kernel_size)`: stride = kernel size, no padding, dilation 1, floor mode.
    #[track_caller]
    pub fn new(kernel_size: usize) -> MaxPool1d {
        MaxPool1d {
            kernel_size,
            stride: kernel_size,
            padding: 0,
            dilation: 1,
            ceil_mode: false,
        }
    }
    /// Sets the stride.
    #[track_caller]
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }
    /// Sets the padding.
    #[track_caller]
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }
    /// Sets the dilation.
    #[track_caller]
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.dilation = dilation;
        self
    }
    /// Sets `ceil_mode`.
    #[track_caller]
    pub fn ceil_mode(mut self, ceil_mode: bool) -> Self {
        self.ceil_mode = ceil_mode;
        self
    }
    /// The pooled values and the int64 position of each maximum.
    #[track_caller]
    pub fn forward_with_indices(&self, input: &Tensor) -> (Tensor, Tensor) {
        input.max_pool1d_with_indices(
            self.kernel_size,
            Some(self.stride),
            self.padding,
            self.dilation,
            self.ceil_mode,
        )
    }
}

impl Module for MaxPool1d {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        self.forward_with_indices(input).0
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!(
            "kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={}",
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            py(self.ceil_mode)
        )
    }
}

/// 2-D average pooling (`nn.AvgPool2d`) over `(N, C, H, W)` or `(C, H, W)` inputs; the zero
/// padding counts in each window's size unless `count_include_pad(false)`.
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_nn::{AvgPool2d, Module};
/// let pool = AvgPool2d::new(2);
/// assert_eq!(pool.forward(&Tensor::ones([1, 1, 4, 4])).to_vec::<f32>(), vec![1.0; 4]);
/// assert_eq!(pool.repr(), "AvgPool2d(kernel_size=2, stride=2, padding=0)");
/// ```
#[derive(Module, Clone, Copy, Debug)]
pub struct AvgPool2d {
    /// Window size.
    pub kernel_size: IntOrPair,
    /// Step between windows (default: the kernel size).
    pub stride: IntOrPair,
    /// Implicit zero padding on both sides.
    pub padding: IntOrPair,
    /// Keep a last partial window.
    pub ceil_mode: bool,
    /// Count the padding in each window's size (default true).
    pub count_include_pad: bool,
    /// Divide every window's sum by this instead.
    pub divisor_override: Option<usize>,
}

impl AvgPool2d {
    /// `AvgPool2d(kernel_size)`: stride = kernel size, no padding, floor mode, padding counted.
    #[track_caller]
    pub fn new(kernel_size: impl Into<IntOrPair>) -> AvgPool2d {
        let k = kernel_size.into();
        AvgPool2d {
            kernel_size: k,
            stride: k,
            padding: 0.into(),
            ceil_mode: false,
            count_include_pad: true,
            divisor_override: None,
        }
    }
    /// Sets the stride.
    #[track_caller]
    pub fn stride(mut self, stride: impl Into<IntOrPair>) -> Self {
        self.stride = stride.into();
        self
    }
    /// Sets the padding.
    #[track_caller]
    pub fn padding(mut self, padding: impl Into<IntOrPair>) -> Self {
        self.padding = padding.into();
        self
    }
    /// Sets `ceil_mode`.
    #[track_caller]
    pub fn ceil_mode(mut self, ceil_mode: bool) -> Self {
        self.ceil_mode = ceil_mode;
        self
    }
    /// Sets `count_include_pad`.
    #[track_caller]
    pub fn count_include_pad(mut self, count: bool) -> Self {
        self.count_include_pad = count;
        self
    }
    /// Sets `divisor_override`.
    #[track_caller]
    pub fn divisor_override(mut self, divisor: Option<usize>) -> Self {
        self.divisor_override = divisor;
        self
    }
}

impl Module for AvgPool2d {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        input.avg_pool2d(
            self.kernel_size,
            Some(self.stride),
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!(
            "kernel_size={}, stride={}, padding={}",
            self.kernel_size.repr(),
            self.stride.repr(),
            self.padding.repr()
        )
    }
}

/// Adaptive 2-D average pooling (`nn.AdaptiveAvgPool2d`): `output_size` windows per spatial dim
/// that tile the input, whatever its size (`AdaptiveAvgPool2d::new(1)` is global average pooling).
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_nn::{AdaptiveAvgPool2d, Module};
/// let pool = AdaptiveAvgPool2d::new((5, 7));
/// assert_eq!(pool.forward(&Tensor::zeros([2, 3, 10, 9])).shape(), &[2, 3, 5, 7]);
/// assert_eq!(pool.repr(), "AdaptiveAvgPool2d(output_size=(5, 7))");
/// ```
#[derive(Module, Clone, Copy, Debug)]
pub struct AdaptiveAvgPool2d {
    /// Output height and width (`None` keeps the input's).
    pub output_size: AdaptiveSize,
}

impl AdaptiveAvgPool2d {
    /// `AdaptiveAvgPool2d(output_size)`.
    #[track_caller]
    pub fn new(output_size: impl Into<AdaptiveSize>) -> AdaptiveAvgPool2d {
        AdaptiveAvgPool2d {
            output_size: output_size.into(),
        }
    }
}

impl Module for AdaptiveAvgPool2d {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        input.adaptive_avg_pool2d(self.output_size)
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!("output_size={}", self.output_size.repr())
    }
}

/// Adaptive 2-D max pooling (`nn.AdaptiveMaxPool2d`).
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_nn::{AdaptiveMaxPool2d, Module};
/// let pool = AdaptiveMaxPool2d::new((Some(2), None));
/// assert_eq!(pool.forward(&Tensor::zeros([3, 4, 6])).shape(), &[3, 2, 6]);
/// assert_eq!(pool.repr(), "AdaptiveMaxPool2d(output_size=(2, None))");
/// ```
#[derive(Module, Clone, Copy, Debug)]
pub struct AdaptiveMaxPool2d {
    /// Output height and width (`None` keeps the input's).
    pub output_size: AdaptiveSize,
}

impl AdaptiveMaxPool2d {
    /// `AdaptiveMaxPool2d(output_size)`.
    #[track_caller]
    pub fn new(output_size: impl Into<AdaptiveSize>) -> AdaptiveMaxPool2d {
        AdaptiveMaxPool2d {
            output_size: output_size.into(),
        }
    }
    /// The pooled values and the int64 index of each maximum.
    #[track_caller]
    pub fn forward_with_indices(&self, input: &Tensor) -> (Tensor, Tensor) {
        input.adaptive_max_pool2d_with_indices(self.output_size)
    }
}

impl Module for AdaptiveMaxPool2d {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        input.adaptive_max_pool2d(self.output_size)
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!("output_size={}", self.output_size.repr())
    }
}
