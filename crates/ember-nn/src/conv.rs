//! Convolution layers: `Conv1d`, `Conv2d`, `ConvTranspose2d`, with PyTorch's arguments,
//! defaults, initialisation (weight Kaiming-uniform with `a = √5`, bias `U(±1/√fan_in)`),
//! parameter names and printed form.
//!
//! ```
//! use ember_autograd::Tensor;
//! use ember_nn::{Conv2d, Module};
//! let conv = Conv2d::new(1, 32, 3).padding(1);
//! assert_eq!(conv.forward(&Tensor::zeros([8, 1, 28, 28])).shape(), &[8, 32, 28, 28]);
//! assert_eq!(
//!     conv.repr(),
//!     "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
//! );
//! ```

use crate::init;
use crate::module::{Module, Parameter, TrainFlag};
use ember_autograd::conv::spatial_repr;
use ember_autograd::{Generator, IntOrPair, Padding, Tensor};
use ember_nn_derive::Module;

/// A fresh weight of `shape` and, when `bias`, a bias of `bias_len`, initialised as PyTorch's
/// `_ConvNd.reset_parameters`: Kaiming-uniform with `a = √5` (bound `1/√fan_in`), then the bias
/// from `U(±1/√fan_in)`, `fan_in` computed from the weight's shape.
#[track_caller]
fn init_params(
    shape: &[usize],
    bias_len: usize,
    bias: bool,
    gen: Option<&Generator>,
) -> (Parameter, Option<Parameter>) {
    let w = Tensor::zeros(shape);
    let (a, mode, nl) = (
        5f64.sqrt(),
        init::FanMode::FanIn,
        init::Nonlinearity::LeakyRelu,
    );
    match gen {
        Some(g) => init::kaiming_uniform_with_(&w, a, mode, nl, g),
        None => init::kaiming_uniform_(&w, a, mode, nl),
    }
    let b = bias.then(|| init_bias(&w, bias_len, gen));
    (Parameter::new(w), b)
}

/// A bias of `len` drawn from `U(±1/√fan_in)` of `weight`.
#[track_caller]
fn init_bias(weight: &Tensor, len: usize, gen: Option<&Generator>) -> Parameter {
    let b = Tensor::zeros([len]).to_dtype(weight.dtype());
    let (fan_in, _) = init::calculate_fan_in_and_fan_out(weight);
    if fan_in > 0 {
        let bound = 1.0 / (fan_in as f64).sqrt();
        match gen {
            Some(g) => init::uniform_with_(&b, -bound, bound, g),
            None => init::uniform_(&b, -bound, bound),
        }
    }
    Parameter::new(b)
}

/// Panics unless both channel counts divide into `groups` (PyTorch's constructor checks).
#[track_caller]
fn check_groups(layer: &str, in_channels: usize, out_channels: usize, groups: usize) {
    if groups == 0 {
        panic!("{layer}: groups must be a positive integer");
    }
    if !in_channels.is_multiple_of(groups) {
        panic!("{layer}: in_channels must be divisible by groups (in_channels={in_channels}, groups={groups})");
    }
    if !out_channels.is_multiple_of(groups) {
        panic!("{layer}: out_channels must be divisible by groups (out_channels={out_channels}, groups={groups})");
    }
}

/// PyTorch's `_ConvNd.extra_repr`: sizes as tuples, options printed only when not default.
#[allow(clippy::too_many_arguments)]
#[track_caller]
fn conv_repr(
    in_channels: usize,
    out_channels: usize,
    kernel: &[usize],
    stride: &[usize],
    padding: String,
    dilation: &[usize],
    output_padding: &[usize],
    groups: usize,
    bias: bool,
) -> String {
    let dims = kernel.len();
    let mut s = format!(
        "{in_channels}, {out_channels}, kernel_size={}, stride={}",
        spatial_repr(kernel),
        spatial_repr(stride)
    );
    if padding != spatial_repr(&vec![0; dims]) {
        s += &format!(", padding={padding}");
    }
    if dilation.iter().any(|&d| d != 1) {
        s += &format!(", dilation={}", spatial_repr(dilation));
    }
    if output_padding.iter().any(|&d| d != 0) {
        s += &format!(", output_padding={}", spatial_repr(output_padding));
    }
    if groups != 1 {
        s += &format!(", groups={groups}");
    }
    if !bias {
        s += ", bias=False";
    }
    s
}

/// `[height, width]` from an int-or-pair argument.
#[track_caller]
fn pair(v: impl Into<IntOrPair>) -> [usize; 2] {
    v.into().get()
}

/// A padding argument as given.
#[track_caller]
fn padding(v: impl Into<Padding>) -> Padding {
    v.into()
}

/// A 1-D size as given.
#[track_caller]
fn same(v: usize) -> usize {
    v
}

/// The builder methods every convolution layer shares (`stride`, `padding`, `dilation`, `bias`).
/// `$size` / `$pad` are the argument types, `$to_size` / `$to_pad` convert them to the fields.
macro_rules! conv_options {
    ($t:ty, $size:ty => $to_size:path, $pad:ty => $to_pad:path) => {
        impl $t {
            /// Sets the stride (PyTorch's `stride=`; default 1).
            #[track_caller]
            pub fn stride(mut self, stride: $size) -> Self {
                self.stride = $to_size(stride);
                self
            }

            /// Sets the padding (PyTorch's `padding=`; default 0).
            #[track_caller]
            pub fn padding(mut self, padding: $pad) -> Self {
                self.padding = $to_pad(padding);
                self
            }

            /// Sets the spacing of kernel taps (PyTorch's `dilation=`; default 1).
            #[track_caller]
            pub fn dilation(mut self, dilation: $size) -> Self {
                self.dilation = $to_size(dilation);
                self
            }

            /// Keeps (`true`, the default) or drops the bias, PyTorch's `bias=`.
            #[track_caller]
            pub fn bias(mut self, bias: bool) -> Self {
                if !bias {
                    self.bias = None;
                } else if self.bias.is_none() {
                    self.bias = Some(init_bias(&self.weight, self.out_channels, None));
                }
                self
            }

            /// Splits the channels into `groups` independent convolutions (PyTorch's `groups=`;
            /// `in_channels` and `out_channels` must both be multiples). The weight changes shape,
            /// so weight and bias are drawn again from the default generator.
            #[track_caller]
            pub fn groups(mut self, groups: usize) -> Self {
                check_groups(stringify!($t), self.in_channels, self.out_channels, groups);
                self.groups = groups;
                let (w, b) = init_params(
                    &self.weight_shape(),
                    self.out_channels,
                    self.bias.is_some(),
                    None,
                );
                self.weight = w;
                self.bias = b;
                self
            }
        }
    };
}

/// 2-D convolution over `(N, C_in, H, W)` or `(C_in, H, W)` inputs (`nn.Conv2d`): weight
/// `(out_channels, in_channels / groups, kH, kW)`, bias `(out_channels)`.
#[derive(Module)]
pub struct Conv2d {
    /// The weight, `(out_channels, in_channels / groups, kH, kW)`.
    pub weight: Parameter,
    /// The bias, `(out_channels)`, if any.
    pub bias: Option<Parameter>,
    /// Channels of the input.
    pub in_channels: usize,
    /// Channels of the output.
    pub out_channels: usize,
    /// `[kH, kW]`.
    pub kernel_size: [usize; 2],
    /// `[sH, sW]`.
    pub stride: [usize; 2],
    /// Sizes, `"same"` or `"valid"`.
    pub padding: Padding,
    /// `[dH, dW]`.
    pub dilation: [usize; 2],
    /// Channel groups.
    pub groups: usize,
    training: TrainFlag,
}

impl Conv2d {
    /// `Conv2d(in_channels, out_channels, kernel_size)` with stride 1, no padding, dilation 1,
    /// one group and a bias, initialised like PyTorch from the default generator.
    #[track_caller]
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: impl Into<IntOrPair>,
    ) -> Conv2d {
        Conv2d::build(in_channels, out_channels, kernel_size.into().get(), None)
    }

    /// [`Conv2d::new`] drawing the initial values from `gen`.
    #[track_caller]
    pub fn new_with(
        in_channels: usize,
        out_channels: usize,
        kernel_size: impl Into<IntOrPair>,
        gen: &Generator,
    ) -> Conv2d {
        Conv2d::build(
            in_channels,
            out_channels,
            kernel_size.into().get(),
            Some(gen),
        )
    }

    #[track_caller]
    fn build(
        in_channels: usize,
        out_channels: usize,
        kernel_size: [usize; 2],
        gen: Option<&Generator>,
    ) -> Conv2d {
        let shape = [out_channels, in_channels, kernel_size[0], kernel_size[1]];
        let (weight, bias) = init_params(&shape, out_channels, true, gen);
        Conv2d {
            weight,
            bias,
            in_channels,
            out_channels,
            kernel_size,
            stride: [1, 1],
            padding: Padding::from(0),
            dilation: [1, 1],
            groups: 1,
            training: TrainFlag::new(),
        }
    }

    #[track_caller]
    fn weight_shape(&self) -> Vec<usize> {
        let [kh, kw] = self.kernel_size;
        vec![self.out_channels, self.in_channels / self.groups, kh, kw]
    }
}

conv_options!(Conv2d, impl Into<IntOrPair> => pair, impl Into<Padding> => padding);

impl Module for Conv2d {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        input.conv2d(
            &self.weight,
            self.bias.as_deref(),
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        conv_repr(
            self.in_channels,
            self.out_channels,
            &self.kernel_size,
            &self.stride,
            self.padding.repr(2),
            &self.dilation,
            &[0, 0],
            self.groups,
            self.bias.is_some(),
        )
    }
}

/// 1-D convolution over `(N, C_in, L)` or `(C_in, L)` inputs (`nn.Conv1d`): weight
/// `(out_channels, in_channels / groups, kernel_size)`, bias `(out_channels)`.
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_nn::{Conv1d, Module};
/// let conv = Conv1d::new(3, 4, 3).stride(2).padding(1);
/// assert_eq!(conv.forward(&Tensor::zeros([2, 3, 11])).shape(), &[2, 4, 6]);
/// assert_eq!(conv.repr(), "Conv1d(3, 4, kernel_size=(3,), stride=(2,), padding=(1,))");
/// ```
#[derive(Module)]
pub struct Conv1d {
    /// The weight, `(out_channels, in_channels / groups, kernel_size)`.
    pub weight: Parameter,
    /// The bias, `(out_channels)`, if any.
    pub bias: Option<Parameter>,
    /// Channels of the input.
    pub in_channels: usize,
    /// Channels of the output.
    pub out_channels: usize,
    /// Kernel width.
    pub kernel_size: usize,
    /// Step between output positions.
    pub stride: usize,
    /// A size, `"same"` or `"valid"`.
    pub padding: Padding,
    /// Spacing of kernel taps.
    pub dilation: usize,
    /// Channel groups.
    pub groups: usize,
    training: TrainFlag,
}

impl Conv1d {
    /// `Conv1d(in_channels, out_channels, kernel_size)` with stride 1, no padding, dilation 1,
    /// one group and a bias, initialised like PyTorch from the default generator.
    #[track_caller]
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: usize) -> Conv1d {
        Conv1d::build(in_channels, out_channels, kernel_size, None)
    }

    /// [`Conv1d::new`] drawing the initial values from `gen`.
    #[track_caller]
    pub fn new_with(
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        gen: &Generator,
    ) -> Conv1d {
        Conv1d::build(in_channels, out_channels, kernel_size, Some(gen))
    }

    #[track_caller]
    fn build(
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        gen: Option<&Generator>,
    ) -> Conv1d {
        let (weight, bias) = init_params(
            &[out_channels, in_channels, kernel_size],
            out_channels,
            true,
            gen,
        );
        Conv1d {
            weight,
            bias,
            in_channels,
            out_channels,
            kernel_size,
            stride: 1,
            padding: Padding::from(0),
            dilation: 1,
            groups: 1,
            training: TrainFlag::new(),
        }
    }

    #[track_caller]
    fn weight_shape(&self) -> Vec<usize> {
        vec![
            self.out_channels,
            self.in_channels / self.groups,
            self.kernel_size,
        ]
    }
}

conv_options!(Conv1d, usize => same, impl Into<Padding> => padding);

impl Module for Conv1d {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        input.conv1d(
            &self.weight,
            self.bias.as_deref(),
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        conv_repr(
            self.in_channels,
            self.out_channels,
            &[self.kernel_size],
            &[self.stride],
            self.padding.repr(1),
            &[self.dilation],
            &[0],
            self.groups,
            self.bias.is_some(),
        )
    }
}

/// 2-D transposed convolution (`nn.ConvTranspose2d`, the gradient of a `Conv2d` with respect to
/// its input; "deconvolution"): weight `(in_channels, out_channels / groups, kH, kW)`, bias
/// `(out_channels)`. The output is `(H - 1)·stride - 2·padding + dilation·(kH - 1) +
/// output_padding + 1` high (and likewise wide).
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_nn::{ConvTranspose2d, Module};
/// let up = ConvTranspose2d::new(4, 3, 3).stride(2).padding(1).output_padding(1);
/// assert_eq!(up.forward(&Tensor::zeros([2, 4, 5, 5])).shape(), &[2, 3, 10, 10]);
/// // Without output_padding the size is ambiguous; ask for it explicitly.
/// let up = ConvTranspose2d::new(4, 3, 3).stride(2).padding(1);
/// assert_eq!(up.forward_with_output_size(&Tensor::zeros([2, 4, 5, 5]), [10, 10]).shape(), &[2, 3, 10, 10]);
/// ```
#[derive(Module)]
pub struct ConvTranspose2d {
    /// The weight, `(in_channels, out_channels / groups, kH, kW)`.
    pub weight: Parameter,
    /// The bias, `(out_channels)`, if any.
    pub bias: Option<Parameter>,
    /// Channels of the input.
    pub in_channels: usize,
    /// Channels of the output.
    pub out_channels: usize,
    /// `[kH, kW]`.
    pub kernel_size: [usize; 2],
    /// `[sH, sW]`.
    pub stride: [usize; 2],
    /// Zeros removed from both sides of the full output: `dilation·(k - 1) - padding` are added to
    /// the input.
    pub padding: [usize; 2],
    /// Extra rows/columns added at the end of the output.
    pub output_padding: [usize; 2],
    /// `[dH, dW]`.
    pub dilation: [usize; 2],
    /// Channel groups.
    pub groups: usize,
    training: TrainFlag,
}

impl ConvTranspose2d {
    /// `ConvTranspose2d(in_channels, out_channels, kernel_size)` with stride 1, no padding or
    /// output padding, dilation 1, one group and a bias, initialised like PyTorch.
    #[track_caller]
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: impl Into<IntOrPair>,
    ) -> ConvTranspose2d {
        ConvTranspose2d::build(in_channels, out_channels, kernel_size.into().get(), None)
    }

    /// [`ConvTranspose2d::new`] drawing the initial values from `gen`.
    #[track_caller]
    pub fn new_with(
        in_channels: usize,
        out_channels: usize,
        kernel_size: impl Into<IntOrPair>,
        gen: &Generator,
    ) -> ConvTranspose2d {
        ConvTranspose2d::build(
            in_channels,
            out_channels,
            kernel_size.into().get(),
            Some(gen),
        )
    }

    #[track_caller]
    fn build(
        in_channels: usize,
        out_channels: usize,
        kernel_size: [usize; 2],
        gen: Option<&Generator>,
    ) -> ConvTranspose2d {
        let shape = [in_channels, out_channels, kernel_size[0], kernel_size[1]];
        let (weight, bias) = init_params(&shape, out_channels, true, gen);
        ConvTranspose2d {
            weight,
            bias,
            in_channels,
            out_channels,
            kernel_size,
            stride: [1, 1],
            padding: [0, 0],
            output_padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            training: TrainFlag::new(),
        }
    }

    #[track_caller]
    fn weight_shape(&self) -> Vec<usize> {
        let [kh, kw] = self.kernel_size;
        vec![self.in_channels, self.out_channels / self.groups, kh, kw]
    }

    /// Sets the extra size added at the end of the output (PyTorch's `output_padding=`; must be
    /// smaller than the stride or the dilation).
    #[track_caller]
    pub fn output_padding(mut self, output_padding: impl Into<IntOrPair>) -> Self {
        self.output_padding = output_padding.into().get();
        self
    }

    /// The forward pass producing an output of spatial size `output_size` (PyTorch's
    /// `forward(input, output_size)`): the output padding is chosen to reach it, and a size no
    /// output padding reaches panics.
    #[track_caller]
    pub fn forward_with_output_size(&self, input: &Tensor, output_size: [usize; 2]) -> Tensor {
        let n = input.dim();
        if n < 3 {
            panic!(
                "ConvTranspose2d: expected a 3-D or 4-D input, got shape {:?}",
                input.shape()
            );
        }
        let hw = [input.shape()[n - 2], input.shape()[n - 1]];
        let min = [0, 1].map(|d| {
            ((hw[d].max(1) - 1) * self.stride[d] + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
                .saturating_sub(2 * self.padding[d])
        });
        let max = [0, 1].map(|d| min[d] + self.stride[d].max(self.dilation[d]) - 1);
        if (0..2).any(|d| output_size[d] < min[d] || output_size[d] > max[d]) {
            panic!(
                "ConvTranspose2d: requested an output size of {output_size:?}, but valid sizes range from {min:?} to {max:?} (for an input of {hw:?})"
            );
        }
        let op = [0, 1].map(|d| output_size[d] - min[d]);
        self.run(input, op)
    }

    #[track_caller]
    fn run(&self, input: &Tensor, output_padding: [usize; 2]) -> Tensor {
        input.conv_transpose2d(
            &self.weight,
            self.bias.as_deref(),
            self.stride,
            self.padding,
            output_padding,
            self.groups,
            self.dilation,
        )
    }
}

conv_options!(ConvTranspose2d, impl Into<IntOrPair> => pair, impl Into<IntOrPair> => pair);

impl Module for ConvTranspose2d {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        self.run(input, self.output_padding)
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        conv_repr(
            self.in_channels,
            self.out_channels,
            &self.kernel_size,
            &self.stride,
            spatial_repr(&self.padding),
            &self.dilation,
            &self.output_padding,
            self.groups,
            self.bias.is_some(),
        )
    }
}
