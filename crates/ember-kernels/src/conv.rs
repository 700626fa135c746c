//! Convolution and pooling vocabulary shared by every backend: the user-facing argument types
//! (PyTorch's "int or tuple" sizes, `padding="same"`), the resolved parameters the kernels take,
//! the output-size rules, and argument validation with PyTorch's messages.
//!
//! Kernels work on 2-D spatial data only: a 1-D op is the 2-D one with a height of 1 (its layout
//! gets a size-1 dim, no copy), exactly as PyTorch's CPU backend does.
//!
//! ```
//! use ember_kernels::conv::{ConvParams, Padding};
//! let p = ConvParams::resolve("conv2d", 1.into(), Padding::Same, 1.into(), 1, [3, 3]);
//! assert_eq!(p.padding, [[1, 1], [1, 1]]);
//! assert_eq!(p.output_size("conv2d", [28, 28], [3, 3]), [28, 28]);
//! ```

/// PyTorch's "int or tuple" argument of a 2-D op (`kernel_size=3` or `kernel_size=(3, 5)`). The
/// form given is kept so that modules print it back as PyTorch does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntOrPair {
    /// One value for both spatial dims.
    Int(usize),
    /// `(height, width)`.
    Pair(usize, usize),
}

impl IntOrPair {
    /// `[height, width]`.
    pub fn get(self) -> [usize; 2] {
        match self {
            IntOrPair::Int(v) => [v, v],
            IntOrPair::Pair(h, w) => [h, w],
        }
    }

    /// As PyTorch prints it: `2` or `(2, 3)`.
    pub fn repr(self) -> String {
        match self {
            IntOrPair::Int(v) => v.to_string(),
            IntOrPair::Pair(h, w) => format!("({h}, {w})"),
        }
    }
}

impl From<IntOrPair> for [usize; 2] {
    fn from(v: IntOrPair) -> Self {
        v.get()
    }
}

impl From<usize> for IntOrPair {
    fn from(v: usize) -> Self {
        IntOrPair::Int(v)
    }
}

impl From<[usize; 2]> for IntOrPair {
    fn from([h, w]: [usize; 2]) -> Self {
        IntOrPair::Pair(h, w)
    }
}

impl From<(usize, usize)> for IntOrPair {
    fn from((h, w): (usize, usize)) -> Self {
        IntOrPair::Pair(h, w)
    }
}

/// The `padding` of a convolution: explicit sizes, or PyTorch's `"same"` (output as large as the
/// input, stride 1 only) and `"valid"` (no padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Zeros added on both sides of each spatial dim.
    Explicit(IntOrPair),
    /// `padding="same"`: `dilation * (kernel - 1)` zeros in all, the odd one after.
    Same,
    /// `padding="valid"`: none.
    Valid,
}

impl Padding {
    /// As PyTorch's modules print it (`(1, 1)`, `same`, `valid`); explicit sizes print as a pair
    /// of `dims` values (PyTorch stores them as tuples).
    pub fn repr(self, dims: usize) -> String {
        match self {
            Padding::Explicit(p) => spatial_repr(&p.get()[2 - dims..]),
            Padding::Same => "same".into(),
            Padding::Valid => "valid".into(),
        }
    }
}

/// A tuple as Python prints it: `(3,)` or `(3, 3)`.
pub fn spatial_repr(v: &[usize]) -> String {
    match v {
        [x] => format!("({x},)"),
        _ => format!(
            "({})",
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl From<usize> for Padding {
    fn from(v: usize) -> Self {
        Padding::Explicit(IntOrPair::Int(v))
    }
}

impl From<[usize; 2]> for Padding {
    fn from(v: [usize; 2]) -> Self {
        Padding::Explicit(v.into())
    }
}

impl From<(usize, usize)> for Padding {
    fn from(v: (usize, usize)) -> Self {
        Padding::Explicit(v.into())
    }
}

impl From<IntOrPair> for Padding {
    fn from(v: IntOrPair) -> Self {
        Padding::Explicit(v)
    }
}

impl From<&str> for Padding {
    /// `"same"` or `"valid"`; any other string panics with PyTorch's message.
    fn from(s: &str) -> Self {
        match s {
            "same" => Padding::Same,
            "valid" => Padding::Valid,
            other => panic!("Invalid padding string: '{other}'"),
        }
    }
}

/// The `output_size` of an adaptive pooling: one size for both dims, or `(h, w)` where `None`
/// keeps the input's size (PyTorch's `(5, None)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdaptiveSize {
    /// The same size for both dims.
    Int(usize),
    /// Height and width; `None` keeps the input's.
    Pair(Option<usize>, Option<usize>),
}

impl AdaptiveSize {
    /// The output size for an input of spatial size `input`.
    pub fn resolve(self, input: [usize; 2]) -> [usize; 2] {
        match self {
            AdaptiveSize::Int(v) => [v, v],
            AdaptiveSize::Pair(h, w) => [h.unwrap_or(input[0]), w.unwrap_or(input[1])],
        }
    }

    /// As PyTorch prints it: `1`, `(5, 7)` or `(5, None)`.
    pub fn repr(self) -> String {
        let o = |v: Option<usize>| v.map_or("None".to_string(), |x| x.to_string());
        match self {
            AdaptiveSize::Int(v) => v.to_string(),
            AdaptiveSize::Pair(h, w) => format!("({}, {})", o(h), o(w)),
        }
    }
}

impl From<usize> for AdaptiveSize {
    fn from(v: usize) -> Self {
        AdaptiveSize::Int(v)
    }
}

impl From<[usize; 2]> for AdaptiveSize {
    fn from([h, w]: [usize; 2]) -> Self {
        AdaptiveSize::Pair(Some(h), Some(w))
    }
}

impl From<(usize, usize)> for AdaptiveSize {
    fn from((h, w): (usize, usize)) -> Self {
        AdaptiveSize::Pair(Some(h), Some(w))
    }
}

impl From<(Option<usize>, Option<usize>)> for AdaptiveSize {
    fn from((h, w): (Option<usize>, Option<usize>)) -> Self {
        AdaptiveSize::Pair(h, w)
    }
}

/// A 2-D convolution's geometry as every kernel takes it: per spatial dim (height, width) the
/// stride, the zeros added before and after, and the dilation; and the number of groups.
/// Asymmetric padding (`"same"` with an even kernel) is expressed directly, so no padded copy of
/// the input is ever made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvParams {
    /// Step between output positions, per spatial dim.
    pub stride: [usize; 2],
    /// `[before, after]` zeros per spatial dim.
    pub padding: [[usize; 2]; 2],
    /// Spacing between kernel taps, per spatial dim.
    pub dilation: [usize; 2],
    /// Channel groups: input and output channels are split into this many independent parts.
    pub groups: usize,
}

impl ConvParams {
    /// Resolves PyTorch's arguments for a kernel of spatial size `kernel`, panicking (naming `op`)
    /// on non-positive strides, dilations or groups and on `"same"` with a stride above 1.
    pub fn resolve(
        op: &str,
        stride: IntOrPair,
        padding: Padding,
        dilation: IntOrPair,
        groups: usize,
        kernel: [usize; 2],
    ) -> ConvParams {
        let (stride, dilation) = (stride.get(), dilation.get());
        if stride.contains(&0) {
            panic!("{op}: non-positive stride is not supported");
        }
        if dilation.contains(&0) {
            panic!("{op}: non-positive dilation is not supported");
        }
        if groups == 0 {
            panic!("{op}: non-positive groups is not supported");
        }
        let padding = match padding {
            Padding::Explicit(p) => {
                let [h, w] = p.get();
                [[h, h], [w, w]]
            }
            Padding::Valid => [[0, 0], [0, 0]],
            Padding::Same => {
                if stride != [1, 1] {
                    panic!("{op}: padding='same' is not supported for strided convolutions");
                }
                let total = |d: usize| dilation[d] * (kernel[d].max(1) - 1);
                let split = |t: usize| [t / 2, t - t / 2];
                [split(total(0)), split(total(1))]
            }
        };
        ConvParams {
            stride,
            padding,
            dilation,
            groups,
        }
    }

    /// The parameters of a 1-D convolution as the 2-D one over a height of 1.
    pub fn from_1d(stride: usize, padding: [usize; 2], dilation: usize, groups: usize) -> Self {
        ConvParams {
            stride: [1, stride],
            padding: [[0, 0], padding],
            dilation: [1, dilation],
            groups,
        }
    }

    /// The extent of a dilated kernel along dim `d`.
    pub fn dilated(&self, d: usize, k: usize) -> usize {
        self.dilation[d] * (k - 1) + 1
    }

    /// The output's spatial size for an `input` and a `kernel` of these sizes, panicking with
    /// PyTorch's message (naming `op`) when the dilated kernel is larger than the padded input.
    pub fn output_size(&self, op: &str, input: [usize; 2], kernel: [usize; 2]) -> [usize; 2] {
        let padded = |d: usize| input[d] + self.padding[d][0] + self.padding[d][1];
        if (0..2).any(|d| kernel[d] == 0 || padded(d) < self.dilated(d, kernel[d])) {
            let one_d = op.contains("1d");
            let show = |v: [usize; 2]| {
                if one_d {
                    format!("({})", v[1])
                } else {
                    format!("({} x {})", v[0], v[1])
                }
            };
            let k = [0, 1].map(|d| {
                if kernel[d] == 0 {
                    0
                } else {
                    self.dilated(d, kernel[d])
                }
            });
            panic!(
                "{op}: Calculated padded input size per channel: {}. Kernel size: {}. Kernel size can't be greater than actual input size",
                show([padded(0), padded(1)]),
                show(k)
            );
        }
        [0, 1].map(|d| (padded(d) - self.dilated(d, kernel[d])) / self.stride[d] + 1)
    }

    /// The output's spatial size of the transposed convolution (the input gradient of a
    /// convolution with these parameters): `(i - 1)·stride - pad + dilation·(k - 1) + 1 +
    /// output_padding`. `None` when padding exceeds the full size.
    pub fn transposed_output_size(
        &self,
        input: [usize; 2],
        kernel: [usize; 2],
        output_padding: [usize; 2],
    ) -> Option<[usize; 2]> {
        let mut out = [0; 2];
        for d in 0..2 {
            let full = (input[d].max(1) - 1) * self.stride[d]
                + self.dilated(d, kernel[d].max(1))
                + output_padding[d];
            out[d] = full.checked_sub(self.padding[d][0] + self.padding[d][1])?;
        }
        Some(out)
    }
}

/// Validates a convolution's input `(N, C, H, W)`, weight and bias shapes against `p`
/// (channels, groups, bias size), panicking with PyTorch's messages naming `op`. `transposed` checks a transposed convolution's weight
/// `(C_in, C_out / groups, kH, kW)` instead of `(C_out, C_in / groups, kH, kW)`. Shapes in the
/// messages are the caller's own (`shown`), so a 1-D op names its 3-D tensors.
pub fn check_conv(
    op: &str,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    p: &ConvParams,
    transposed: bool,
    shown: (&[usize], &[usize]),
) {
    let (xs, ws) = shown;
    let g = p.groups;
    if transposed {
        if input[1] != weight[0] {
            panic!(
                "{op}: Given transposed=1, weight of size {ws:?}, expected input{xs:?} to have {} channels, but got {} channels instead",
                weight[0], input[1]
            );
        }
        if !weight[0].is_multiple_of(g) {
            panic!(
                "{op}: Given groups={g}, expected weight to be divisible by {g} at dimension 0, but got weight of size {ws:?} instead"
            );
        }
    } else {
        if !weight[0].is_multiple_of(g) {
            panic!(
                "{op}: Given groups={g}, expected weight to be divisible by {g} at dimension 0, but got weight of size {ws:?} instead"
            );
        }
        if input[1] != weight[1] * g {
            panic!(
                "{op}: Given groups={g}, weight of size {ws:?}, expected input{xs:?} to have {} channels, but got {} channels instead",
                weight[1] * g,
                input[1]
            );
        }
    }
    let out_channels = if transposed { weight[1] * g } else { weight[0] };
    if let Some(b) = bias {
        if b != [out_channels] {
            panic!(
                "{op}: Given weight of size {ws:?}, expected bias to be 1-dimensional with {out_channels} elements, but got bias of size {b:?} instead"
            );
        }
    }
}

/// A pooling window: kernel, stride, zero/-inf padding (same on both sides) and dilation per
/// spatial dim, and whether partial windows at the end count (`ceil_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolParams {
    /// Window size per spatial dim.
    pub kernel: [usize; 2],
    /// Step between windows per spatial dim.
    pub stride: [usize; 2],
    /// Implicit padding on both sides per spatial dim.
    pub padding: [usize; 2],
    /// Spacing between window taps per spatial dim (max pooling only; 1 for average pooling).
    pub dilation: [usize; 2],
    /// Round the output size up, letting the last window start inside the right padding.
    pub ceil_mode: bool,
}

impl PoolParams {
    /// Resolves PyTorch's arguments (`stride` of `None` is the kernel size), panicking with
    /// PyTorch's messages (naming `op`) on zero sizes and on padding above half the kernel.
    pub fn resolve(
        op: &str,
        kernel: IntOrPair,
        stride: Option<IntOrPair>,
        padding: IntOrPair,
        dilation: IntOrPair,
        ceil_mode: bool,
    ) -> PoolParams {
        let kernel = kernel.get();
        let stride = stride.map_or(kernel, |s| s.get());
        let (padding, dilation) = (padding.get(), dilation.get());
        if kernel.contains(&0) {
            panic!(
                "{op}: kernel size should be greater than zero, but got kH: {} kW: {}",
                kernel[0], kernel[1]
            );
        }
        if stride.contains(&0) {
            panic!("{op}: stride should not be zero");
        }
        if dilation.contains(&0) {
            panic!(
                "{op}: dilation should be greater than zero, but got dilationH: {} dilationW: {}",
                dilation[0], dilation[1]
            );
        }
        for d in 0..2 {
            let effective = (kernel[d] - 1) * dilation[d] + 1;
            if padding[d] > effective / 2 {
                panic!(
                    "{op}: pad should be at most half of effective kernel size, but got pad={}, kernel_size={} and dilation={}",
                    padding[d], kernel[d], dilation[d]
                );
            }
        }
        PoolParams {
            kernel,
            stride,
            padding,
            dilation,
            ceil_mode,
        }
    }

    /// The output size along dim `d` for an input of size `i` (PyTorch's `pooling_output_shape`).
    fn out_dim(&self, d: usize, i: usize) -> isize {
        let (k, s, p, dil) = (
            self.kernel[d] as isize,
            self.stride[d] as isize,
            self.padding[d] as isize,
            self.dilation[d] as isize,
        );
        let span = i as isize + 2 * p - dil * (k - 1) - 1 + if self.ceil_mode { s - 1 } else { 0 };
        let mut o = span.div_euclid(s) + 1;
        // The last window must start inside the input or the left padding.
        if self.ceil_mode && (o - 1) * s >= i as isize + p {
            o -= 1;
        }
        o
    }

    /// The output's spatial size for `input` `(N, C, H, W)`, panicking with PyTorch's message
    /// (naming `op`) when it would be empty. `shown` is the caller's shape for messages.
    pub fn output_size(&self, op: &str, input: &[usize], shown: &[usize]) -> [usize; 2] {
        let o = [0, 1].map(|d| self.out_dim(d, input[2 + d]));
        if o[0] < 1 || o[1] < 1 {
            let c = shown[shown.len() - 3];
            let size = if op.contains("1d") {
                format!("({c}x{})", input[3])
            } else {
                format!("({c}x{}x{})", input[2], input[3])
            };
            let out = if op.contains("1d") {
                format!("({c}x{})", o[1])
            } else {
                format!("({c}x{}x{})", o[0], o[1])
            };
            panic!(
                "{op}: Given input size: {size}. Calculated output size: {out}. Output size is too small"
            );
        }
        [o[0] as usize, o[1] as usize]
    }

    /// The window of output position `o` along dim `d` clipped to the input `0..len`: the first
    /// tap's position (may be negative before clipping) is `o·stride - pad`.
    pub fn window(&self, d: usize, o: usize, len: usize) -> (isize, usize, usize) {
        let start = (o * self.stride[d]) as isize - self.padding[d] as isize;
        let end = start + ((self.kernel[d] - 1) * self.dilation[d] + 1) as isize;
        (
            start,
            start.max(0) as usize,
            (end.min(len as isize)).max(0) as usize,
        )
    }
}

/// How a pooling op places its windows: sliding windows of fixed size (`max_pool2d`,
/// `avg_pool2d`), or adaptive ones that tile the input into a given number of outputs
/// (`adaptive_*_pool2d`, windows `adaptive_range`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolWindows {
    /// Fixed-size windows.
    Sliding(PoolParams),
    /// Windows that tile the input.
    Adaptive,
}

/// The input positions one window reads along one dim: `start, start + step, …` below `end`
/// (clipped to the input), and for sliding windows the window's size counting padding (the
/// divisor of an average with `count_include_pad`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taps {
    /// First position read.
    pub start: usize,
    /// One past the last position read.
    pub end: usize,
    /// Distance between positions (the dilation).
    pub step: usize,
    /// The window's size clipped to the padded input (sliding windows; `end - start` otherwise).
    pub padded_len: usize,
}

impl Taps {
    /// Number of positions read.
    pub fn count(&self) -> usize {
        if self.end > self.start {
            (self.end - self.start).div_ceil(self.step)
        } else {
            0
        }
    }
}

impl PoolWindows {
    /// The taps of output position `o` (of `out`) along dim `d` of an input of size `len`.
    pub fn taps(&self, d: usize, o: usize, out: usize, len: usize) -> Taps {
        match self {
            PoolWindows::Adaptive => {
                let (start, end) = adaptive_range(o, out, len);
                Taps {
                    start,
                    end,
                    step: 1,
                    padded_len: end - start,
                }
            }
            PoolWindows::Sliding(p) => {
                let (k, s, pad, dil) = (p.kernel[d], p.stride[d], p.padding[d], p.dilation[d]);
                let raw = (o * s) as isize - pad as isize;
                let raw_end = raw + ((k - 1) * dil + 1) as isize;
                let padded_end = raw_end.min((len + pad) as isize);
                // The first tap inside the input: skip whole dilation steps over the padding.
                let start = if raw < 0 {
                    raw + (raw.unsigned_abs().div_ceil(dil) * dil) as isize
                } else {
                    raw
                };
                Taps {
                    start: start.max(0) as usize,
                    end: raw_end.clamp(0, len as isize) as usize,
                    step: dil,
                    padded_len: (padded_end - raw).max(0) as usize,
                }
            }
        }
    }
}

/// How an average pooling divides each window's sum (PyTorch's `count_include_pad` and
/// `divisor_override`; adaptive windows always divide by the number of elements read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgDivisor {
    /// Count the zero padding inside a window.
    pub count_include_pad: bool,
    /// Divide by this instead.
    pub divisor_override: Option<usize>,
}

impl AvgDivisor {
    /// The divisor of a window with taps `h` and `w`.
    pub fn of(&self, windows: &PoolWindows, h: &Taps, w: &Taps) -> usize {
        match (windows, self.divisor_override) {
            (PoolWindows::Sliding(_), Some(d)) => d,
            (PoolWindows::Sliding(_), None) if self.count_include_pad => {
                h.padded_len * w.padded_len
            }
            _ => h.count() * w.count(),
        }
    }
}

/// The `[start, end)` input range that adaptive pooling averages for output `o` of `out` along
/// an input of size `len` (PyTorch's `start_index` / `end_index`).
pub fn adaptive_range(o: usize, out: usize, len: usize) -> (usize, usize) {
    let start = (o * len) / out;
    let end = ((o + 1) * len).div_ceil(out);
    (start, end)
}

/// Validates a pooling input: 3-D `(C, H, W)` or 4-D `(N, C, H, W)` (2-D and 3-D for 1-D ops)
/// with non-zero channel and spatial sizes (PyTorch's message, naming `op`).
pub fn check_pool_input(op: &str, shape: &[usize], spatial: usize) {
    let ok_rank = shape.len() == spatial + 1 || shape.len() == spatial + 2;
    let batch = usize::from(shape.len() == spatial + 2);
    if !ok_rank || shape[batch..].contains(&0) {
        let (a, b) = if spatial == 1 {
            ("2D", "3D")
        } else {
            ("3D", "4D")
        };
        panic!(
            "{op}: Expected {a} or {b} (batch mode) tensor with optional 0 dim batch size for input, but got: {shape:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes() {
        let p = ConvParams::resolve("conv2d", 2.into(), 1.into(), 1.into(), 1, [3, 3]);
        assert_eq!(p.output_size("conv2d", [8, 9], [3, 3]), [4, 5]);
        let same = ConvParams::resolve("conv2d", 1.into(), Padding::Same, 2.into(), 1, [4, 3]);
        assert_eq!(same.padding, [[3, 3], [2, 2]]);
        let even = ConvParams::resolve("conv2d", 1.into(), "same".into(), 1.into(), 1, [2, 4]);
        assert_eq!(even.padding, [[0, 1], [1, 2]]);
        assert_eq!(even.output_size("conv2d", [5, 6], [2, 4]), [5, 6]);
        let t = ConvParams::resolve("conv_transpose2d", 2.into(), 1.into(), 1.into(), 1, [3, 3]);
        assert_eq!(
            t.transposed_output_size([5, 5], [3, 3], [1, 1]),
            Some([10, 10])
        );
    }

    #[test]
    #[should_panic(
        expected = "conv2d: Calculated padded input size per channel: (5 x 5). Kernel size: (7 x 7). Kernel size can't be greater than actual input size"
    )]
    fn kernel_larger_than_input() {
        let p = ConvParams::resolve("conv2d", 1.into(), 0.into(), 1.into(), 1, [7, 7]);
        p.output_size("conv2d", [5, 5], [7, 7]);
    }

    #[test]
    #[should_panic(expected = "padding='same' is not supported for strided convolutions")]
    fn same_with_stride() {
        ConvParams::resolve("conv2d", 2.into(), Padding::Same, 1.into(), 1, [3, 3]);
    }

    #[test]
    fn pool_sizes() {
        let p = PoolParams::resolve("max_pool2d", 2.into(), None, 0.into(), 1.into(), true);
        assert_eq!(
            p.output_size("max_pool2d", &[1, 1, 5, 7], &[1, 1, 5, 7]),
            [3, 4]
        );
        let q = PoolParams::resolve(
            "max_pool2d",
            3.into(),
            Some(2.into()),
            1.into(),
            1.into(),
            false,
        );
        assert_eq!(
            q.output_size("max_pool2d", &[1, 2, 7, 7], &[1, 2, 7, 7]),
            [4, 4]
        );
        // ceil_mode drops a last window that would start in the right padding.
        let r = PoolParams::resolve(
            "max_pool2d",
            2.into(),
            Some(2.into()),
            1.into(),
            1.into(),
            true,
        );
        assert_eq!(
            r.output_size("max_pool2d", &[1, 1, 4, 4], &[1, 1, 4, 4]),
            [3, 3]
        );
        assert_eq!(adaptive_range(1, 3, 7), (2, 5));
        assert_eq!(adaptive_range(2, 3, 7), (4, 7));
    }

    #[test]
    #[should_panic(
        expected = "pad should be at most half of effective kernel size, but got pad=2, kernel_size=3 and dilation=1"
    )]
    fn pool_pad_too_large() {
        PoolParams::resolve("max_pool2d", 3.into(), None, 2.into(), 1.into(), false);
    }

    #[test]
    #[should_panic(
        expected = "Given input size: (3x5x5). Calculated output size: (3x0x0). Output size is too small"
    )]
    fn pool_output_too_small() {
        let p = PoolParams::resolve("max_pool2d", 7.into(), None, 0.into(), 1.into(), false);
        p.output_size("max_pool2d", &[2, 3, 5, 5], &[2, 3, 5, 5]);
    }

    #[test]
    fn reprs() {
        assert_eq!(IntOrPair::from(2).repr(), "2");
        assert_eq!(IntOrPair::from((2, 3)).repr(), "(2, 3)");
        assert_eq!(Padding::from(1).repr(2), "(1, 1)");
        assert_eq!(Padding::from(1).repr(1), "(1,)");
        assert_eq!(Padding::Same.repr(2), "same");
        assert_eq!(AdaptiveSize::from((Some(5), None)).repr(), "(5, None)");
    }
}

/// The sizes of one convolution as its kernels see them, shared by every backend (each adds the
/// methods of its own plan: work split, chunking, kernel parameters).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvGeom {
    pub(crate) n: usize,
    pub(crate) cin: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) cout: usize,
    pub(crate) kh: usize,
    pub(crate) kw: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
    /// Channels of a group: input (`cg`) and output (`og`).
    pub(crate) cg: usize,
    pub(crate) og: usize,
    pub(crate) p: ConvParams,
}

impl ConvGeom {
    pub(crate) fn new(
        input: [usize; 4],
        cout: usize,
        kernel: [usize; 2],
        out: [usize; 2],
        p: ConvParams,
    ) -> ConvGeom {
        let [n, cin, h, w] = input;
        ConvGeom {
            n,
            cin,
            h,
            w,
            cout,
            kh: kernel[0],
            kw: kernel[1],
            oh: out[0],
            ow: out[1],
            cg: cin / p.groups,
            og: cout / p.groups,
            p,
        }
    }

    /// Rows of the patch matrix (= columns of a group's weight matrix).
    pub(crate) fn k(&self) -> usize {
        self.cg * self.kh * self.kw
    }

    pub(crate) fn ohw(&self) -> usize {
        self.oh * self.ow
    }

    pub(crate) fn hw(&self) -> usize {
        self.h * self.w
    }

    pub(crate) fn groups(&self) -> usize {
        self.p.groups
    }

    /// A 1×1 kernel at stride 1 without padding reads the input as it is, unless the output is
    /// a different size (a transposed convolution's output padding makes the input larger).
    pub(crate) fn pointwise(&self) -> bool {
        self.oh == self.h
            && self.ow == self.w
            && self.kh == 1
            && self.kw == 1
            && self.p.stride == [1, 1]
            && self.p.padding == [[0, 0], [0, 0]]
    }
}
