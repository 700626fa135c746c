//! PyTorch's `repr(tensor)` with the default print options (precision 4, threshold 1000,
//! edgeitems 3, linewidth 80), as a pure formatter over host values. It follows
//! `torch/_tensor_str.py` step by step: one `_Formatter` chooses fixed, integer-valued or
//! scientific notation and a common width from all (or, when summarising, the edge) values; rows
//! wrap at 80 columns; nested dims are joined with newlines and `tensor(` indentation; suffixes
//! such as `dtype=…` and `grad_fn=<…>` are appended and wrapped like `_add_suffixes`.

use ember_kernels::DType;

/// Print options, fixed at PyTorch's defaults.
const PRECISION: usize = 4;
const THRESHOLD: usize = 1000;
const EDGEITEMS: usize = 3;
const LINEWIDTH: usize = 80;
/// `len("tensor(")`
const INDENT: usize = 7;

/// The elements of a tensor in row-major order, widened to one host type per kind (f32 values
/// widened exactly to f64, u8 to i64).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FormatData {
    /// float32 / float64 elements
    Float(Vec<f64>),
    /// uint8 / int64 elements
    Int(Vec<i64>),
    /// bool elements
    Bool(Vec<bool>),
}

impl FormatData {
    fn len(&self) -> usize {
        match self {
            FormatData::Float(v) => v.len(),
            FormatData::Int(v) => v.len(),
            FormatData::Bool(v) => v.len(),
        }
    }
}

/// `tensor(...)` exactly as PyTorch's `repr` prints it. `suffixes` are extra items such as
/// `grad_fn=<MulBackward0>`, `requires_grad=True` or `device='cuda:0'`; a `device=` item is moved
/// first and the dtype/size items this function adds come next, in PyTorch's order.
pub(crate) fn format_tensor(
    values: &FormatData,
    shape: &[usize],
    dtype: DType,
    suffixes: &[String],
) -> String {
    let numel: usize = shape.iter().product();
    assert_eq!(
        values.len(),
        numel,
        "format_tensor: {} values for shape {shape:?}",
        values.len()
    );
    let mut items: Vec<String> = suffixes
        .iter()
        .filter(|s| s.starts_with("device="))
        .cloned()
        .collect();
    let body = if numel == 0 {
        // NumPy-style: the shape is shown unless it is (0,), the dtype unless it is the default.
        if shape.len() != 1 {
            items.push(format!("size={}", py_tuple(shape)));
        }
        if dtype != DType::F32 {
            items.push(format!("dtype={dtype}"));
        }
        "[]".to_string()
    } else {
        if !matches!(dtype, DType::F32 | DType::I64 | DType::Bool) {
            items.push(format!("dtype={dtype}"));
        }
        tensor_str(values, shape)
    };
    items.extend(
        suffixes
            .iter()
            .filter(|s| !s.starts_with("device="))
            .cloned(),
    );
    add_suffixes(format!("tensor({body}"), &items)
}

/// Python's `str(tuple(shape))`: `(2, 0, 3)`, `(0,)`.
fn py_tuple(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// `_add_suffixes`: each suffix goes on the current line after `, ` unless that would pass the
/// line width, in which case it starts a new line indented like `tensor(`.
fn add_suffixes(mut s: String, suffixes: &[String]) -> String {
    // Python computes `len(s) - s.rfind("\n") + 1`, with rfind = -1 when there is no newline.
    let mut last_line_len = match s.rfind('\n') {
        Some(p) => s[p..].chars().count() + 1,
        None => s.chars().count() + 2,
    };
    for suffix in suffixes {
        let len = suffix.chars().count();
        if last_line_len + len + 2 > LINEWIDTH {
            s.push_str(",\n");
            s.push_str(&" ".repeat(INDENT));
            s.push_str(suffix);
            last_line_len = INDENT + len;
        } else {
            s.push_str(", ");
            s.push_str(suffix);
            last_line_len += len + 2;
        }
    }
    s.push(')');
    s
}

/// How every element of one tensor is printed (`_Formatter`).
struct Formatter {
    kind: Kind,
    max_width: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Integers and bools: Python's `str`.
    Plain,
    /// Floats whose finite values are all integers: `3.`.
    FloatInt,
    /// Floats in fixed notation: `0.1235`.
    Fixed,
    /// Floats in scientific notation: `1.2346e+05`.
    Sci,
}

impl Formatter {
    /// Chooses the notation and the common width from `values` (every element, or the edge
    /// elements when the tensor is summarised).
    fn new(values: &FormatData, idx: &[usize]) -> Formatter {
        let vals = match values {
            FormatData::Float(v) => v,
            FormatData::Int(v) => {
                let w = idx.iter().map(|&i| v[i].to_string().len()).max();
                return Formatter {
                    kind: Kind::Plain,
                    max_width: w.unwrap_or(0).max(1),
                };
            }
            FormatData::Bool(v) => {
                let w = idx.iter().map(|&i| if v[i] { 4 } else { 5 }).max();
                return Formatter {
                    kind: Kind::Plain,
                    max_width: w.unwrap_or(0).max(1),
                };
            }
        };
        let nz: Vec<f64> = idx
            .iter()
            .map(|&i| vals[i])
            .filter(|v| v.is_finite() && *v != 0.0)
            .collect();
        if nz.is_empty() {
            return Formatter {
                kind: Kind::FloatInt,
                max_width: 1,
            };
        }
        let abs_max = nz.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let abs_min = nz.iter().fold(f64::INFINITY, |m, v| m.min(v.abs()));
        let int_mode = nz.iter().all(|v| *v == v.ceil());
        let wide = abs_max / abs_min > 1000.0 || abs_max > 1.0e8;
        let (kind, width): (Kind, fn(f64) -> usize) = if int_mode {
            if wide {
                (Kind::Sci, |v| sci(v).len())
            } else {
                (Kind::FloatInt, |v| format!("{v:.0}").len() + 1)
            }
        } else if wide || abs_min < 1.0e-4 {
            (Kind::Sci, |v| sci(v).len())
        } else {
            (Kind::Fixed, |v| format!("{v:.PRECISION$}").len())
        };
        let max_width = nz.iter().map(|&v| width(v)).max().unwrap_or(1).max(1);
        Formatter { kind, max_width }
    }

    /// One element, right-aligned to the common width (`_Formatter.format`).
    fn format(&self, values: &FormatData, i: usize) -> String {
        let s = match values {
            FormatData::Int(v) => v[i].to_string(),
            FormatData::Bool(v) => (if v[i] { "True" } else { "False" }).to_string(),
            FormatData::Float(v) => {
                let x = v[i];
                match self.kind {
                    Kind::Sci => sci(x),
                    Kind::FloatInt if x.is_finite() => format!("{x:.0}."),
                    _ => fixed(x),
                }
            }
        };
        format!("{s:>w$}", w = self.max_width)
    }
}

/// Python's spelling of non-finite floats.
fn non_finite(x: f64) -> Option<&'static str> {
    if x.is_nan() {
        Some("nan")
    } else if x == f64::INFINITY {
        Some("inf")
    } else if x == f64::NEG_INFINITY {
        Some("-inf")
    } else {
        None
    }
}

/// Python's `"{:.4f}".format(x)` (Rust's fixed formatting is also correctly rounded).
fn fixed(x: f64) -> String {
    match non_finite(x) {
        Some(s) => s.to_string(),
        None => format!("{x:.PRECISION$}"),
    }
}

/// Python's `"{:.4e}".format(x)`: a signed exponent of at least two digits (`1.0000e+05`).
fn sci(x: f64) -> String {
    if let Some(s) = non_finite(x) {
        return s.to_string();
    }
    let s = format!("{x:.PRECISION$e}");
    let (mantissa, exp) = s.split_once('e').expect("LowerExp output has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// Row-major strides of a contiguous shape.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        st[d] = st[d + 1] * shape[d + 1];
    }
    st
}

/// The indices along a dim of `size` that are printed: all, or the edge items when summarising.
fn shown(size: usize, summarize: bool) -> (Vec<usize>, bool) {
    if summarize && size > 2 * EDGEITEMS {
        let idx = (0..EDGEITEMS).chain(size - EDGEITEMS..size).collect();
        (idx, true)
    } else {
        ((0..size).collect(), false)
    }
}

/// Flat indices of the printed elements (`get_summarized_data`), which the formatter sizes.
fn printed_indices(
    shape: &[usize],
    st: &[usize],
    base: usize,
    summarize: bool,
    out: &mut Vec<usize>,
) {
    match shape.split_first() {
        None => out.push(base),
        Some((&size, rest)) => {
            for i in shown(size, summarize).0 {
                printed_indices(rest, &st[1..], base + i * st[0], summarize, out);
            }
        }
    }
}

/// `_tensor_str`: the bracketed body of a non-empty tensor.
fn tensor_str(values: &FormatData, shape: &[usize]) -> String {
    let numel: usize = shape.iter().product();
    let summarize = numel > THRESHOLD;
    let st = strides(shape);
    let fmt = if summarize {
        let mut idx = Vec::new();
        printed_indices(shape, &st, 0, true, &mut idx);
        Formatter::new(values, &idx)
    } else {
        Formatter::new(values, &(0..numel).collect::<Vec<_>>())
    };
    nested_str(values, shape, &st, 0, INDENT, summarize, &fmt)
}

/// `_tensor_str_with_formatter` for the sub-tensor at flat offset `base`.
fn nested_str(
    values: &FormatData,
    shape: &[usize],
    st: &[usize],
    base: usize,
    indent: usize,
    summarize: bool,
    fmt: &Formatter,
) -> String {
    match shape.len() {
        0 => fmt.format(values, base),
        1 => vector_str(values, shape[0], st[0], base, indent, summarize, fmt),
        dim => {
            let (idx, cut) = shown(shape[0], summarize);
            let mut slices: Vec<String> = idx
                .iter()
                .map(|&i| {
                    let b = base + i * st[0];
                    nested_str(values, &shape[1..], &st[1..], b, indent + 1, summarize, fmt)
                })
                .collect();
            if cut {
                slices.insert(EDGEITEMS, "...".to_string());
            }
            let sep = format!(",{}{}", "\n".repeat(dim - 1), " ".repeat(indent + 1));
            format!("[{}]", slices.join(&sep))
        }
    }
}

/// `_vector_str`: one row, wrapped so that each line holds as many elements as fit in 80 columns.
fn vector_str(
    values: &FormatData,
    size: usize,
    stride: usize,
    base: usize,
    indent: usize,
    summarize: bool,
    fmt: &Formatter,
) -> String {
    let element_length = fmt.max_width + 2;
    let per_line = (LINEWIDTH.saturating_sub(indent) / element_length).max(1);
    let (idx, cut) = shown(size, summarize);
    let mut data: Vec<String> = idx
        .iter()
        .map(|&i| fmt.format(values, base + i * stride))
        .collect();
    if cut {
        data.insert(EDGEITEMS, " ...".to_string());
    }
    let lines: Vec<String> = data.chunks(per_line).map(|l| l.join(", ")).collect();
    let sep = format!(",\n{}", " ".repeat(indent + 1));
    format!("[{}]", lines.join(&sep))
}

impl std::fmt::Display for crate::tensor::Tensor {
    /// Prints like PyTorch's `repr`: `tensor([[1., 2.]], grad_fn=<MulBackward0>)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values = match self.dtype() {
            DType::F32 | DType::F64 => FormatData::Float(self.to_vec::<f64>()),
            DType::U8 | DType::I64 => FormatData::Int(self.to_vec::<i64>()),
            DType::Bool => FormatData::Bool(self.to_vec::<bool>()),
        };
        let mut suffixes = Vec::new();
        if self.device() != ember_kernels::Device::Cpu {
            suffixes.push(format!("device='{}'", self.device()));
        }
        if let Some(name) = self.grad_fn_name() {
            suffixes.push(format!("grad_fn=<{name}>"));
        } else if self.requires_grad() {
            suffixes.push("requires_grad=True".to_string());
        }
        f.write_str(&format_tensor(
            &values,
            self.shape(),
            self.dtype(),
            &suffixes,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: &[f64], shape: &[usize]) -> String {
        format_tensor(&FormatData::Float(v.to_vec()), shape, DType::F32, &[])
    }
    fn f32v(v: &[f32], shape: &[usize]) -> String {
        let v: Vec<f64> = v.iter().map(|&x| x as f64).collect();
        format_tensor(&FormatData::Float(v), shape, DType::F32, &[])
    }
    fn d(v: &[f64], shape: &[usize]) -> String {
        format_tensor(&FormatData::Float(v.to_vec()), shape, DType::F64, &[])
    }
    fn i(v: &[i64], shape: &[usize]) -> String {
        format_tensor(&FormatData::Int(v.to_vec()), shape, DType::I64, &[])
    }
    fn with(v: &[f64], shape: &[usize], dtype: DType, suffixes: &[&str]) -> String {
        let s: Vec<String> = suffixes.iter().map(|s| s.to_string()).collect();
        format_tensor(&FormatData::Float(v.to_vec()), shape, dtype, &s)
    }
    fn range(n: usize) -> Vec<f64> {
        (0..n).map(|x| x as f64).collect()
    }

    #[test]
    fn integer_valued_floats() {
        assert_eq!(f(&[3., 4., 6., 2.], &[1, 4]), "tensor([[3., 4., 6., 2.]])");
        assert_eq!(f(&[1., 2.], &[2]), "tensor([1., 2.])");
        assert_eq!(f(&[-1., 10., 3.], &[3]), "tensor([-1., 10.,  3.])");
        assert_eq!(
            f(&[0.; 6], &[2, 3]),
            "tensor([[0., 0., 0.],\n        [0., 0., 0.]])"
        );
        assert_eq!(f(&[-0.], &[1]), "tensor([-0.])");
        assert_eq!(f(&[3.], &[]), "tensor(3.)");
        assert_eq!(f(&[0.], &[]), "tensor(0.)");
        assert_eq!(f(&[12345678.], &[1]), "tensor([12345678.])");
    }

    #[test]
    fn fixed_point_floats() {
        assert_eq!(
            f32v(&[0.1, -2.0, 3.0, 4.0], &[2, 2]),
            "tensor([[ 0.1000, -2.0000],\n        [ 3.0000,  4.0000]])"
        );
        assert_eq!(d(&[0.8131], &[]), "tensor(0.8131, dtype=torch.float64)");
        assert_eq!(f32v(&[0.12345], &[1]), "tensor([0.1235])");
        assert_eq!(f32v(&[1.5, 2.25], &[2]), "tensor([1.5000, 2.2500])");
        assert_eq!(
            f32v(&[-0.5, 123.456, 7.0], &[3]),
            "tensor([ -0.5000, 123.4560,   7.0000])"
        );
        // Round half to even on exact ties, like Python.
        assert_eq!(
            d(&[0.00005, 1.03125], &[2]),
            "tensor([5.0000e-05, 1.0312e+00], dtype=torch.float64)"
        );
        assert_eq!(
            d(&[0.5, 1.03125], &[2]),
            "tensor([0.5000, 1.0312], dtype=torch.float64)"
        );
    }

    #[test]
    fn scientific_notation() {
        assert_eq!(f(&[1e5, 1.], &[2]), "tensor([1.0000e+05, 1.0000e+00])");
        assert_eq!(f32v(&[1e-5, 1.], &[2]), "tensor([1.0000e-05, 1.0000e+00])");
        // float32 1e-4 is just below 1e-4, which switches to scientific notation.
        assert_eq!(
            f32v(&[1e-4, 1e-3], &[2]),
            "tensor([1.0000e-04, 1.0000e-03])"
        );
        assert_eq!(
            d(&[1e-4, 1e-3], &[2]),
            "tensor([0.0001, 0.0010], dtype=torch.float64)"
        );
        assert_eq!(f(&[-1e10, 1.], &[2]), "tensor([-1.0000e+10,  1.0000e+00])");
        assert_eq!(f32v(&[123456789.], &[]), "tensor(1.2346e+08)");
        assert_eq!(d(&[1e100], &[]), "tensor(1.0000e+100, dtype=torch.float64)");
        assert_eq!(f32v(&[0., 1e-5], &[2]), "tensor([0.0000e+00, 1.0000e-05])");
        assert_eq!(
            f32v(&[1e-5, 0.5, f32::NAN], &[3]),
            "tensor([1.0000e-05, 5.0000e-01,        nan])"
        );
        // max > 1e8 alone is enough, even with a small ratio.
        assert_eq!(f(&[2e8, 3e8], &[2]), "tensor([2.0000e+08, 3.0000e+08])");
        assert_eq!(f(&[1e8, 2e5], &[2]), "tensor([100000000.,    200000.])");
    }

    #[test]
    fn non_finite_values() {
        assert_eq!(
            f32v(&[1.5, f32::NAN, f32::INFINITY], &[3]),
            "tensor([1.5000,    nan,    inf])"
        );
        assert_eq!(f(&[f64::NAN, 0.], &[2]), "tensor([nan, 0.])");
        assert_eq!(
            f(&[1., f64::NEG_INFINITY, f64::NAN], &[3]),
            "tensor([1., -inf, nan])"
        );
        assert_eq!(f(&[f64::INFINITY], &[]), "tensor(inf)");
        assert_eq!(f(&[f64::NAN], &[]), "tensor(nan)");
    }

    #[test]
    fn integers_and_bools() {
        assert_eq!(i(&[1, 0, 0], &[3]), "tensor([1, 0, 0])");
        assert_eq!(i(&[-1, 10, 3], &[3]), "tensor([-1, 10,  3])");
        assert_eq!(i(&[5], &[]), "tensor(5)");
        assert_eq!(
            i(&[0, 1, 2, 3, 4, 5, 6, 7], &[2, 2, 2]),
            "tensor([[[0, 1],\n         [2, 3]],\n\n        [[4, 5],\n         [6, 7]]])"
        );
        let b = |v: &[bool], s: &[usize]| {
            format_tensor(&FormatData::Bool(v.to_vec()), s, DType::Bool, &[])
        };
        assert_eq!(b(&[true, false], &[2]), "tensor([ True, False])");
        assert_eq!(b(&[true, true], &[2]), "tensor([True, True])");
        assert_eq!(b(&[false], &[]), "tensor(False)");
        assert_eq!(
            format_tensor(&FormatData::Int(vec![1, 2]), &[2], DType::U8, &[]),
            "tensor([1, 2], dtype=torch.uint8)"
        );
    }

    #[test]
    fn empty_tensors() {
        assert_eq!(f(&[], &[0]), "tensor([])");
        assert_eq!(f(&[], &[0, 3]), "tensor([], size=(0, 3))");
        assert_eq!(i(&[], &[0]), "tensor([], dtype=torch.int64)");
        assert_eq!(
            d(&[], &[2, 0, 3]),
            "tensor([], size=(2, 0, 3), dtype=torch.float64)"
        );
        assert_eq!(
            format_tensor(&FormatData::Bool(vec![]), &[0], DType::Bool, &[]),
            "tensor([], dtype=torch.bool)"
        );
        assert_eq!(
            with(&[], &[0], DType::F32, &["requires_grad=True"]),
            "tensor([], requires_grad=True)"
        );
    }

    #[test]
    fn suffixes() {
        assert_eq!(
            with(&[1., 2.], &[2], DType::F32, &["grad_fn=<MulBackward0>"]),
            "tensor([1., 2.], grad_fn=<MulBackward0>)"
        );
        assert_eq!(
            with(&[1., 2.], &[2], DType::F32, &["requires_grad=True"]),
            "tensor([1., 2.], requires_grad=True)"
        );
        assert_eq!(
            with(&[2., 4.], &[2], DType::F64, &["grad_fn=<MulBackward0>"]),
            "tensor([2., 4.], dtype=torch.float64, grad_fn=<MulBackward0>)"
        );
        assert_eq!(
            with(
                &[1., 2.],
                &[2],
                DType::F64,
                &["requires_grad=True", "device='cuda:0'"]
            ),
            "tensor([1., 2.], device='cuda:0', dtype=torch.float64, requires_grad=True)"
        );
        // A suffix that would pass column 80 starts a new line indented like `tensor(`.
        let v: Vec<f64> = (10..24).map(|x| x as f64).collect();
        assert_eq!(
            with(&v, &[14], DType::F64, &["requires_grad=True"]),
            "tensor([10., 11., 12., 13., 14., 15., 16., 17., 18., 19., 20., 21., 22., 23.],\n       dtype=torch.float64, requires_grad=True)"
        );
        assert_eq!(
            with(
                &[0.5, -1.25, 3.0, 4.0],
                &[2, 2],
                DType::F32,
                &["grad_fn=<AddBackward0>"]
            ),
            "tensor([[ 0.5000, -1.2500],\n        [ 3.0000,  4.0000]], grad_fn=<AddBackward0>)"
        );
    }

    #[test]
    fn line_wrapping() {
        assert_eq!(
            f(&range(30), &[30]),
            "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n        28., 29.])"
        );
        assert_eq!(
            f(&range(40), &[2, 20]),
            "tensor([[ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n         14., 15., 16., 17., 18., 19.],\n        [20., 21., 22., 23., 24., 25., 26., 27., 28., 29., 30., 31., 32., 33.,\n         34., 35., 36., 37., 38., 39.]])"
        );
        let v: Vec<i64> = (0..25).collect();
        assert_eq!(
            i(&v, &[25]),
            "tensor([ 0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14, 15, 16, 17,\n        18, 19, 20, 21, 22, 23, 24])"
        );
    }

    #[test]
    fn summarised() {
        let v: Vec<i64> = (0..2000).collect();
        assert_eq!(
            i(&v, &[2000]),
            "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"
        );
        let row = "[0., 0., 0.,  ..., 0., 0., 0.]";
        let want = format!(
            "tensor([{row},\n        {row},\n        {row},\n        ...,\n        {row},\n        {row},\n        {row}])"
        );
        assert_eq!(f(&vec![0.; 10_000], &[100, 100]), want);
        // The width comes from the printed edge values only (the hidden middle holds 1e6).
        let mut v = range(1001);
        v[500] = 1e6;
        assert_eq!(
            f(&v, &[1001]),
            "tensor([   0.,    1.,    2.,  ...,  998.,  999., 1000.])"
        );
        let row = "[0, 0, 0,  ..., 0, 0, 0]";
        let block = format!(
            "[{row},\n         {row},\n         {row},\n         ...,\n         {row},\n         {row},\n         {row}]"
        );
        let want = format!(
            "tensor([{block},\n\n        {block},\n\n        {block},\n\n        ...,\n\n        {block},\n\n        {block},\n\n        {block}])"
        );
        assert_eq!(i(&vec![0; 2000], &[10, 10, 20]), want);
        // Not summarised at exactly 1000 elements.
        let s = i(&(0..1000).collect::<Vec<_>>(), &[1000]);
        assert!(!s.contains("..."));
        assert!(s.ends_with("999])"));
    }
}
