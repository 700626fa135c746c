//! The CUDA C sources of the kernels and the per-dtype instantiations compiled from them.
//!
//! Each `.cu` file holds one kernel family as C++ templates plus `INSTANTIATE_*` macros; a
//! compiled *module* is one family for one dtype: generated `#define`s (op codes, error codes,
//! the dtype), the prelude `common.cuh`, the family's source, the macro invocations that emit
//! its `extern "C"` kernels for that dtype, and `static_assert`s tying the argument structs to
//! their Rust twins. Modules are compiled lazily, the first time one of their kernels runs.

use super::params::struct_sizes;
use crate::dtype::DType;
use crate::op::{BinaryOp, CmpOp};
use std::fmt::Write;

/// The prelude every module starts with.
pub const COMMON: &str = include_str!("kernels/common.cuh");

/// A kernel family: one `.cu` source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Unary, binary, comparison, where, fill (`elementwise.cu`).
    Elementwise,
    /// Conversions to every dtype from the module's dtype; also every strided copy.
    Cast,
    /// Reductions (`reduce.cu`).
    Reduce,
    /// Softmax forward/backward (`softmax.cu`).
    Softmax,
    /// Cross-entropy / NLL (`loss.cu`).
    Loss,
    /// gather / scatter / one_hot (`index.cu`).
    Index,
    /// Optimizer updates (`optim.cu`).
    Optim,
    /// Random numbers and creation (`random.cu`).
    Random,
    /// Integer GEMM (`matmul.cu`).
    Matmul,
    /// Convolution (im2col / col2im) and pooling (`conv.cu`).
    Conv,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 10] = [
        Family::Elementwise,
        Family::Cast,
        Family::Reduce,
        Family::Softmax,
        Family::Loss,
        Family::Index,
        Family::Optim,
        Family::Random,
        Family::Matmul,
        Family::Conv,
    ];

    /// The family's source file.
    pub fn source(self) -> &'static str {
        match self {
            Family::Elementwise | Family::Cast => include_str!("kernels/elementwise.cu"),
            Family::Reduce => include_str!("kernels/reduce.cu"),
            Family::Softmax => include_str!("kernels/softmax.cu"),
            Family::Loss => include_str!("kernels/loss.cu"),
            Family::Index => include_str!("kernels/index.cu"),
            Family::Optim => include_str!("kernels/optim.cu"),
            Family::Random => include_str!("kernels/random.cu"),
            Family::Matmul => include_str!("kernels/matmul.cu"),
            Family::Conv => include_str!("kernels/conv.cu"),
        }
    }

    /// A short name, for module names and cache files.
    pub fn name(self) -> &'static str {
        match self {
            Family::Elementwise => "elementwise",
            Family::Cast => "cast",
            Family::Reduce => "reduce",
            Family::Softmax => "softmax",
            Family::Loss => "loss",
            Family::Index => "index",
            Family::Optim => "optim",
            Family::Random => "random",
            Family::Matmul => "matmul",
            Family::Conv => "conv",
        }
    }

    /// The dtypes this family has kernels for.
    pub fn dtypes(self) -> &'static [DType] {
        const FLOATS: &[DType] = &[DType::F32, DType::F64];
        match self {
            Family::Softmax | Family::Loss | Family::Optim | Family::Conv => FLOATS,
            Family::Matmul => &[DType::U8, DType::I64],
            _ => &DType::ALL,
        }
    }

    /// The index of the family in [`Family::ALL`].
    pub fn index(self) -> usize {
        Family::ALL.iter().position(|&f| f == self).unwrap()
    }
}

/// The suffix kernels of a dtype carry (`unary_f32`).
pub fn suffix(d: DType) -> &'static str {
    match d {
        DType::Bool => "bool",
        DType::U8 => "u8",
        DType::I64 => "i64",
        DType::F32 => "f32",
        DType::F64 => "f64",
    }
}

/// The C type of a dtype.
pub fn c_type(d: DType) -> &'static str {
    match d {
        DType::Bool => "bool",
        DType::U8 => "u8",
        DType::I64 => "i64",
        DType::F32 => "float",
        DType::F64 => "double",
    }
}

/// `name_<dtype>` as a static string (no allocation on the launch path).
#[macro_export]
#[doc(hidden)]
macro_rules! kname {
    ($base:literal, $d:expr) => {
        match $d {
            $crate::dtype::DType::Bool => concat!($base, "_bool"),
            $crate::dtype::DType::U8 => concat!($base, "_u8"),
            $crate::dtype::DType::I64 => concat!($base, "_i64"),
            $crate::dtype::DType::F32 => concat!($base, "_f32"),
            $crate::dtype::DType::F64 => concat!($base, "_f64"),
        }
    };
}

/// The op codes of `unary_*`, in order: `UOP_<NAME>` is the position.
pub const UNARY_CODES: [&str; 30] = [
    "IDENTITY",
    "NEG",
    "ABS",
    "SIGN",
    "RELU",
    "SQUARE",
    "CLAMP",
    "INT_POW",
    "EXP",
    "LOG",
    "LOG1P",
    "SQRT",
    "RSQRT",
    "SIN",
    "COS",
    "TANH",
    "SIGMOID",
    "RECIPROCAL",
    "GELU_ERF",
    "GELU_TANH",
    "SILU",
    "LEAKY_RELU",
    "ELU",
    "POW2",
    "POW1",
    "POW_HALF",
    "POW3",
    "POW",
    "RPOW",
    "ERF",
];

/// The `UOP_*` code of a unary op name in [`UNARY_CODES`].
pub fn unary_code(name: &str) -> u32 {
    UNARY_CODES
        .iter()
        .position(|&n| n == name)
        .unwrap_or_else(|| panic!("unknown unary kernel op {name}")) as u32
}

/// The `BOP_*` code of a binary op.
pub fn binary_code(op: BinaryOp) -> u32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Pow => 4,
        BinaryOp::Maximum => 5,
        BinaryOp::Minimum => 6,
    }
}

/// The `CMP_*` code of a comparison.
pub fn cmp_code(op: CmpOp) -> u32 {
    match op {
        CmpOp::Eq => 0,
        CmpOp::Ne => 1,
        CmpOp::Lt => 2,
        CmpOp::Le => 3,
        CmpOp::Gt => 4,
        CmpOp::Ge => 5,
    }
}

/// The kinds of `red_norm_*`.
pub const NORM_KINDS: [&str; 6] = ["SQ", "ABS", "NONZERO", "POW", "MAX", "MIN"];

/// Error kinds a kernel reports (the high bits of an error code; the low 16 bits name the op,
/// see `errors.rs`).
pub mod err {
    /// Integer division by zero.
    pub const ZERO_DIVISION: u64 = 1 << 16;
    /// An index value out of range (`a` value, `b` dim, `c` size).
    pub const INDEX: u64 = 2 << 16;
    /// one_hot of a negative class.
    pub const ONE_HOT_NEGATIVE: u64 = 3 << 16;
    /// one_hot of a class `>= num_classes`.
    pub const ONE_HOT_TOO_LARGE: u64 = 4 << 16;
    /// A class-index target out of range (`a` target, `b` classes, `c` ignore_index).
    pub const TARGET: u64 = 5 << 16;
    /// A bernoulli probability outside [0, 1] (`a` the f64 bits).
    pub const BERNOULLI_PROB: u64 = 6 << 16;
}

/// The generated defines of every module: op codes, error codes and the module's dtype.
fn defines(dtype: DType) -> String {
    let mut s = String::from("// ---- generated by kernels.rs ----\n");
    for (i, n) in UNARY_CODES.iter().enumerate() {
        writeln!(s, "#define UOP_{n} {i}").unwrap();
    }
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ] {
        let name = op.name().to_uppercase();
        writeln!(s, "#define BOP_{name} {}", binary_code(op)).unwrap();
    }
    for op in [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ] {
        writeln!(
            s,
            "#define CMP_{} {}",
            op.name().to_uppercase(),
            cmp_code(op)
        )
        .unwrap();
    }
    for (i, n) in NORM_KINDS.iter().enumerate() {
        writeln!(s, "#define NORM_{n} {i}").unwrap();
    }
    for (n, v) in [
        ("ERR_ZERO_DIVISION", err::ZERO_DIVISION),
        ("ERR_ONE_HOT_NEGATIVE", err::ONE_HOT_NEGATIVE),
        ("ERR_ONE_HOT_TOO_LARGE", err::ONE_HOT_TOO_LARGE),
        ("ERR_BERNOULLI_PROB", err::BERNOULLI_PROB),
    ] {
        writeln!(s, "#define {n} {v}ULL").unwrap();
    }
    writeln!(s, "#define DTYPE_{} 1", suffix(dtype).to_uppercase()).unwrap();
    s
}

/// The structs each family defines (for the size asserts).
fn family_structs(f: Family) -> &'static [&'static str] {
    match f {
        Family::Elementwise => &["UnaryP"],
        Family::Reduce => &["RedP"],
        Family::Loss => &["CeP", "GradP"],
        Family::Optim => &["SgdP", "AdamP", "RmsP", "AdagradP"],
        Family::Matmul => &["GemmP"],
        Family::Conv => &["ConvP", "PoolP"],
        _ => &[],
    }
}

/// The instantiation lines of family `f` for `dtype`.
fn instantiations(f: Family, d: DType) -> String {
    let (t, n) = (c_type(d), suffix(d));
    let mut s = String::new();
    match f {
        Family::Elementwise => writeln!(s, "INSTANTIATE_ELEMENTWISE({t}, {n})").unwrap(),
        Family::Cast => {
            for to in DType::ALL {
                writeln!(
                    s,
                    "INSTANTIATE_CAST({t}, {n}, {}, {})",
                    c_type(to),
                    suffix(to)
                )
                .unwrap();
            }
        }
        Family::Reduce => {
            writeln!(s, "INSTANTIATE_REDUCE({t}, {n})").unwrap();
            if d.is_float() {
                writeln!(s, "INSTANTIATE_REDUCE_FLOAT({t}, {n})").unwrap();
            } else {
                writeln!(s, "INSTANTIATE_REDUCE_INT({t}, {n})").unwrap();
            }
        }
        Family::Softmax => writeln!(s, "INSTANTIATE_SOFTMAX({t}, {n})").unwrap(),
        Family::Loss => writeln!(s, "INSTANTIATE_LOSS({t}, {n})").unwrap(),
        Family::Index => {
            for i in [DType::I64, DType::U8] {
                writeln!(
                    s,
                    "INSTANTIATE_INDEX({t}, {n}, {}, {})",
                    c_type(i),
                    suffix(i)
                )
                .unwrap();
            }
            if d == DType::I64 {
                s.push_str("INSTANTIATE_ONE_HOT\n");
            }
        }
        Family::Optim => writeln!(s, "INSTANTIATE_OPTIM({t}, {n})").unwrap(),
        Family::Random => {
            writeln!(s, "INSTANTIATE_RANDOM({t}, {n})").unwrap();
            if d.is_float() {
                writeln!(s, "INSTANTIATE_RANDOM_FLOAT({t}, {n})").unwrap();
            } else if d != DType::Bool {
                writeln!(s, "INSTANTIATE_RANDOM_INT({t}, {n})").unwrap();
            }
        }
        Family::Matmul => writeln!(s, "INSTANTIATE_MATMUL({t}, {n})").unwrap(),
        Family::Conv => writeln!(s, "INSTANTIATE_CONV({t}, {n})").unwrap(),
    }
    s
}

/// The complete CUDA source of module (`f`, `dtype`).
pub fn module_source(f: Family, dtype: DType) -> String {
    assert!(
        f.dtypes().contains(&dtype),
        "no {} kernels for {dtype}",
        f.name()
    );
    let mut s = defines(dtype);
    s.push_str(COMMON);
    s.push('\n');
    s.push_str(f.source());
    s.push_str("\n// ---- instantiations ----\n");
    s.push_str(&instantiations(f, dtype));
    let sizes = struct_sizes();
    let wanted = ["ElemGeom", "RedGeom"]
        .iter()
        .chain(family_structs(f))
        .copied();
    for name in wanted {
        let size = sizes.iter().find(|(n, _)| *n == name).unwrap().1;
        writeln!(
            s,
            "static_assert(sizeof({name}) == {size}, \"{name} differs from its Rust twin\");"
        )
        .unwrap();
    }
    s
}

/// The host-emulation prelude (`emulate.h`): the CUDA dialect for a host C++ compiler.
pub const EMULATE: &str = include_str!("kernels/emulate.h");

/// Module (`f`, `dtype`) as host C++ for the test-only emulator (`emulate.rs`): the emulation
/// prelude, the module's CUDA source unchanged, and `ember_emu_kernel(name)`, which returns the
/// host launcher of each kernel the launchers name.
pub fn emulator_source(f: Family, dtype: DType) -> String {
    let mut s = String::from(EMULATE);
    s.push_str(&module_source(f, dtype));
    s.push_str("\nextern \"C\" void* ember_emu_kernel(const char* want) {\n");
    for k in expected_kernels(f, dtype) {
        writeln!(s, "    EMU_KERNEL({k})").unwrap();
    }
    s.push_str("    return 0;\n}\n");
    s
}

/// Every (family, dtype) module, in a fixed order.
pub fn all_modules() -> Vec<(Family, DType)> {
    Family::ALL
        .iter()
        .flat_map(|&f| f.dtypes().iter().map(move |&d| (f, d)))
        .collect()
}

/// The `extern "C"` kernels module (`f`, `d`) must export: the names the launchers use.
pub fn expected_kernels(f: Family, d: DType) -> Vec<String> {
    let n = suffix(d);
    let with = |bases: &[&str]| bases.iter().map(|b| format!("{b}_{n}")).collect::<Vec<_>>();
    match f {
        Family::Elementwise => with(&["unary", "binary", "cmp", "where", "fill"]),
        Family::Cast => DType::ALL
            .iter()
            .map(|&t| format!("cast_{n}_{}", suffix(t)))
            .collect(),
        Family::Reduce => {
            let mut v = with(&[
                "red_max",
                "red_min",
                "red_argmax",
                "red_argmin",
                "red_sum",
                "red_prod",
            ]);
            if d.is_float() {
                v.extend(with(&["red_sqdev", "red_lse", "red_norm"]));
            }
            let finals: Vec<String> = v.iter().map(|k| format!("{k}_final")).collect();
            v.extend(finals);
            v
        }
        Family::Softmax => with(&["softmax", "softmax_bwd"]),
        Family::Loss => with(&[
            "ce_fwd_index",
            "ce_fwd_prob",
            "nll_fwd",
            "loss_reduce",
            "ce_bwd_index",
            "ce_bwd_prob",
            "nll_bwd",
        ]),
        Family::Index => {
            let mut v: Vec<String> = ["gather", "scatter"]
                .iter()
                .flat_map(|b| ["i64", "u8"].map(|i| format!("{b}_{n}_{i}")))
                .collect();
            if d == DType::I64 {
                v.push("one_hot".into());
            }
            v
        }
        Family::Optim => with(&["sgd", "adam", "rmsprop", "adagrad"]),
        Family::Random => {
            let mut v = with(&["bernoulli_scalar", "eye"]);
            if d.is_float() {
                v.extend(with(&[
                    "bernoulli",
                    "arange",
                    "linspace",
                    "uniform",
                    "normal",
                ]));
            } else if d != DType::Bool {
                v.extend(with(&["arange", "linspace"]));
            }
            if d == DType::I64 {
                v.push("randint_i64".into());
            }
            v
        }
        Family::Matmul => with(&["gemm_int"]),
        Family::Conv => with(&[
            "im2col",
            "col2im",
            "max_pool",
            "max_pool_bwd",
            "avg_pool",
            "avg_pool_bwd",
        ]),
    }
}

/// The name of module (`f`, `dtype`), for NVRTC messages and cache entries.
pub fn module_name(f: Family, dtype: DType) -> String {
    format!("{}_{}.cu", f.name(), suffix(dtype))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_has_its_kernels_and_asserts() {
        let mods = all_modules();
        // Five families for every dtype, four for f32/f64, the integer GEMM for u8/i64.
        assert_eq!(mods.len(), 5 * 5 + 4 * 2 + 2);
        for (f, d) in mods {
            let src = module_source(f, d);
            assert!(src.contains("static_assert(sizeof(ElemGeom) == 400"));
            assert!(src.contains(&format!("#define DTYPE_{} 1", suffix(d).to_uppercase())));
            assert!(src.contains("INSTANTIATE_"), "{f:?} {d:?}");
        }
        let s = module_source(Family::Cast, DType::F32);
        assert!(s.contains("INSTANTIATE_CAST(float, f32, bool, bool)"));
        assert!(s.contains("INSTANTIATE_CAST(float, f32, double, f64)"));
        assert!(module_source(Family::Index, DType::I64).contains("INSTANTIATE_ONE_HOT"));
        assert!(!module_source(Family::Index, DType::F32).contains("INSTANTIATE_ONE_HOT\n"));
        assert!(module_source(Family::Optim, DType::F64).contains("sizeof(AdamP) == 96"));
        let conv = module_source(Family::Conv, DType::F32);
        assert!(conv.contains("INSTANTIATE_CONV(float, f32)"));
        assert!(conv.contains("sizeof(ConvP) == 208") && conv.contains("sizeof(PoolP) == 208"));
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(unary_code("IDENTITY"), 0);
        assert_eq!(unary_code("RPOW"), 28);
        let d = defines(DType::F32);
        assert!(d.contains("#define BOP_ADD 0\n"));
        assert!(d.contains("#define BOP_MAXIMUM 5\n"));
        assert!(d.contains("#define CMP_GE 5\n"));
        assert!(d.contains("#define NORM_MIN 5\n"));
        assert_eq!(kname!("unary", DType::F64), "unary_f64");
    }
}
