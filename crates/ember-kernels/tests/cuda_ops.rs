//! Every CUDA op against the CPU backend on random strided inputs. These need a GPU: without
//! one each test prints why it skipped and passes (the NVRTC test still compiles every
//! kernel on a machine without a GPU). Run on a GPU machine with
//! `cargo test -p ember-kernels --features cuda --test cuda_ops`.
#![cfg(feature = "cuda")]

use ember_kernels::conv::{AvgDivisor, ConvParams, PoolParams, PoolWindows};
use ember_kernels::cpu::CpuStorage;
use ember_kernels::cuda::{self, CudaStorage};
use ember_kernels::dtype::{DType, Scalar};
use ember_kernels::layout::Layout;
use ember_kernels::loss::{CeOptions, CeTarget, LossGrad, LossReduction};
use ember_kernels::op::{BinaryOp, CmpOp, ReduceOp, UnaryOp};
use ember_kernels::optim::{AdagradStep, AdamStep, RmspropStep, SgdStep};
use ember_kernels::random::PhiloxStream;
use ember_kernels::reduce::ArgReduceOp;

/// The device to test on, or `None` (printing why) when there is none.
fn gpu(test: &str) -> Option<usize> {
    match cuda::unavailable_reason() {
        None => Some(0),
        Some(why) => {
            eprintln!("{test}: skipped, no usable GPU: {why}");
            None
        }
    }
}

/// A small deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn float(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// A strided view of `shape` over a larger base: some dims sliced with a step, the dim order
/// permuted, some dims broadcast; returns the layout and the storage length it needs.
fn strided(r: &mut Rng, shape: &[usize], allow_broadcast: bool) -> (Layout, usize) {
    let nd = shape.len();
    let bcast: Vec<bool> = (0..nd)
        .map(|_| allow_broadcast && r.below(4) == 0)
        .collect();
    let s1: Vec<usize> = (0..nd)
        .map(|d| if bcast[d] { 1 } else { shape[d] })
        .collect();
    let perm = nd >= 2 && r.below(2) == 0;
    let s2: Vec<usize> = if perm {
        s1.iter().rev().copied().collect()
    } else {
        s1
    };
    let steps: Vec<usize> = (0..nd).map(|_| 1 + r.below(2)).collect();
    let base: Vec<usize> = s2.iter().zip(&steps).map(|(&n, &st)| n * st + 1).collect();
    let mut l = Layout::contiguous(&base);
    for d in 0..nd {
        l = if s2[d] == 0 {
            l.slice(d, 0, 0, 1)
        } else {
            l.slice(d, 1, 2 + steps[d] * (s2[d] - 1), steps[d])
        };
    }
    if perm {
        l = l.permute(&(0..nd).rev().collect::<Vec<_>>());
    }
    (l.expand(shape), base.iter().product::<usize>())
}

fn random_shape(r: &mut Rng, max_nd: usize, max_size: usize) -> Vec<usize> {
    let nd = r.below(max_nd + 1);
    (0..nd).map(|_| 1 + r.below(max_size)).collect()
}

/// `n` random values of `dtype` (floats in [-2, 2), integers in [-5, 5], bools).
fn values(r: &mut Rng, n: usize, dtype: DType) -> CpuStorage {
    let v: Vec<f64> = (0..n)
        .map(|_| match dtype {
            DType::Bool => (r.below(2)) as f64,
            DType::U8 => r.below(11) as f64,
            DType::I64 => r.below(11) as f64 - 5.0,
            _ => r.float() * 2.0,
        })
        .collect();
    CpuStorage::from_vec(v).cast(&Layout::contiguous(&[n]), dtype)
}

fn up(s: &CpuStorage, dev: usize) -> CudaStorage {
    CudaStorage::from_cpu(s, dev)
}

/// Asserts two host storages hold the same values: exactly for integers and bools, within
/// `tol` (relative, NaN == NaN) for floats.
#[track_caller]
fn assert_close(what: &str, got: &CpuStorage, want: &CpuStorage, tol: f64) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    assert_eq!(got.len(), want.len(), "{what}: length");
    let l = Layout::contiguous(&[got.len()]);
    let (g, w) = (got.to_vec::<f64>(&l), want.to_vec::<f64>(&l));
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok = if want.dtype().is_float() {
            (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * (1.0 + b.abs())
        } else {
            a == b
        };
        assert!(ok, "{what}: element {i}: got {a}, want {b}");
    }
}

fn tol(d: DType) -> f64 {
    if d == DType::F32 {
        2e-5
    } else {
        1e-12
    }
}

const ALL: [DType; 5] = DType::ALL;

#[test]
fn unary_ops_match_cpu() {
    let Some(dev) = gpu("unary_ops_match_cpu") else {
        return;
    };
    let mut r = Rng(1);
    let ops = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Relu,
        UnaryOp::Square,
        UnaryOp::Clamp(Some(-0.5), Some(1.5)),
        UnaryOp::Clamp(None, Some(0.0)),
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Log1p,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Reciprocal,
        UnaryOp::GeluErf,
        UnaryOp::GeluTanh,
        UnaryOp::Silu,
        UnaryOp::LeakyRelu(0.1),
        UnaryOp::Elu(1.3),
        UnaryOp::PowScalar(2.0),
        UnaryOp::PowScalar(3.0),
        UnaryOp::PowScalar(0.5),
        UnaryOp::PowScalar(1.7),
        UnaryOp::PowScalar(-1.0),
        UnaryOp::RPowScalar(2.5),
    ];
    for op in ops {
        for d in ALL {
            if d == DType::Bool
                && !matches!(
                    op,
                    UnaryOp::Abs
                        | UnaryOp::Relu
                        | UnaryOp::Square
                        | UnaryOp::Sign
                        | UnaryOp::Clamp(..)
                )
            {
                continue;
            }
            for _ in 0..3 {
                let shape = random_shape(&mut r, 4, 5);
                let (l, n) = strided(&mut r, &shape, true);
                let x = values(&mut r, n, d);
                let want = x.unary(&l, op);
                let got = up(&x, dev)
                    .unary(&l, op)
                    .to_cpu(&Layout::contiguous(&[want.len()]));
                assert_close(&format!("{op:?} {d}"), &got, &want, 4.0 * tol(want.dtype()));
                // In place on a strided (non-broadcast) view.
                if d != DType::Bool && (d.is_float() || !op.is_float_only()) {
                    let (l2, n2) = strided(&mut r, &shape, false);
                    let y = values(&mut r, n2, d);
                    let mut want = y.clone();
                    want.unary_inplace(&l2, op);
                    let mut g = up(&y, dev);
                    g.unary_inplace(&l2, op);
                    assert_close(
                        &format!("{op:?}_ {d}"),
                        &g.to_cpu(&Layout::contiguous(&[n2])),
                        &want,
                        4.0 * tol(d),
                    );
                }
            }
        }
    }
}

#[test]
fn binary_ops_match_cpu() {
    let Some(dev) = gpu("binary_ops_match_cpu") else {
        return;
    };
    let mut r = Rng(2);
    let ops = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ];
    for op in ops {
        for d in ALL {
            for _ in 0..4 {
                let shape = random_shape(&mut r, 5, 4);
                let (la, na) = strided(&mut r, &shape, true);
                let (lb, nb) = strided(&mut r, &shape, true);
                let a = values(&mut r, na, d);
                let mut b = values(&mut r, nb, d);
                if op == BinaryOp::Div && !d.is_float() {
                    // Integer division by zero is an error on both backends.
                    b = b.unary(&Layout::contiguous(&[nb]), UnaryOp::Clamp(Some(1.0), None));
                }
                if op == BinaryOp::Pow && d == DType::I64 {
                    b = b.unary(&Layout::contiguous(&[nb]), UnaryOp::Abs);
                }
                let want = a.binary(&la, &b, &lb, op);
                let c = Layout::contiguous(&[want.len()]);
                let got = up(&a, dev).binary(&la, &up(&b, dev), &lb, op).to_cpu(&c);
                assert_close(&format!("{op:?} {d}"), &got, &want, tol(d));
                for first in [false, true] {
                    // `b` as the tensor: it has no zeros for integer division (`3 / b`) and
                    // no negative exponents for i64 pow.
                    let s = Scalar::Int(3);
                    let want = b.binary_scalar(&lb, s, op, first);
                    let got = up(&b, dev).binary_scalar(&lb, s, op, first).to_cpu(&c);
                    assert_close(&format!("{op:?} scalar {d}"), &got, &want, tol(d));
                }
                // In place into a non-broadcast view.
                let (lc, nc) = strided(&mut r, &shape, false);
                let x = values(&mut r, nc, d);
                let mut want = x.clone();
                want.binary_inplace(&lc, &b, &lb, op);
                let mut g = up(&x, dev);
                g.binary_inplace(&lc, &up(&b, dev), &lb, op);
                assert_close(
                    &format!("{op:?}_ {d}"),
                    &g.to_cpu(&Layout::contiguous(&[nc])),
                    &want,
                    tol(d),
                );
                let mut want = x.clone();
                want.binary_scalar_inplace(&lc, Scalar::Float(2.0), op);
                let mut g = up(&x, dev);
                g.binary_scalar_inplace(&lc, Scalar::Float(2.0), op);
                assert_close(
                    &format!("{op:?}_ scalar {d}"),
                    &g.to_cpu(&Layout::contiguous(&[nc])),
                    &want,
                    tol(d),
                );
            }
        }
    }
    // NaN propagation of maximum/minimum, pow of integers with negative exponents.
    let a = CpuStorage::from_vec(vec![f32::NAN, 1.0, 2.0, f32::NAN]);
    let b = CpuStorage::from_vec(vec![0.0f32, f32::NAN, 3.0, f32::NAN]);
    let l = Layout::contiguous(&[4]);
    for op in [BinaryOp::Maximum, BinaryOp::Minimum] {
        let got = up(&a, dev).binary(&l, &up(&b, dev), &l, op).to_cpu(&l);
        assert_close("nan", &got, &a.binary(&l, &b, &l, op), 0.0);
    }
    let a = CpuStorage::from_vec(vec![2i64, -1, -1, 1, 3, 0]);
    let b = CpuStorage::from_vec(vec![-1i64, -3, -4, -7, 40, 0]);
    let l = Layout::contiguous(&[6]);
    let got = up(&a, dev)
        .binary(&l, &up(&b, dev), &l, BinaryOp::Pow)
        .to_cpu(&l);
    assert_close("int pow", &got, &a.binary(&l, &b, &l, BinaryOp::Pow), 0.0);
}

#[test]
fn comparisons_and_where_match_cpu() {
    let Some(dev) = gpu("comparisons_and_where_match_cpu") else {
        return;
    };
    let mut r = Rng(3);
    for op in [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ] {
        for d in ALL {
            let shape = random_shape(&mut r, 4, 5);
            let (la, na) = strided(&mut r, &shape, true);
            let (lb, nb) = strided(&mut r, &shape, true);
            let a = values(&mut r, na, d);
            let b = values(&mut r, nb, d);
            let c = Layout::contiguous(&[shape.iter().product()]);
            let got = up(&a, dev).cmp(&la, &up(&b, dev), &lb, op).to_cpu(&c);
            assert_close(&format!("{op:?} {d}"), &got, &a.cmp(&la, &b, &lb, op), 0.0);
            for s in [Scalar::Int(1), Scalar::Float(0.5), Scalar::Bool(true)] {
                let got = up(&a, dev).cmp_scalar(&la, s, op).to_cpu(&c);
                assert_close(
                    &format!("{op:?} {s:?} {d}"),
                    &got,
                    &a.cmp_scalar(&la, s, op),
                    0.0,
                );
            }
            let (lc, nc) = strided(&mut r, &shape, true);
            let cond = values(&mut r, nc, DType::Bool);
            let want = cond.where_cond(&lc, &a, &la, &b, &lb);
            let got = up(&cond, dev)
                .where_cond(&lc, &up(&a, dev), &la, &up(&b, dev), &lb)
                .to_cpu(&c);
            assert_close(&format!("where {d}"), &got, &want, 0.0);
            let want = a.masked_fill(&la, &cond, &lc, Scalar::Float(-7.0));
            let got = up(&a, dev)
                .masked_fill(&la, &up(&cond, dev), &lc, Scalar::Float(-7.0))
                .to_cpu(&c);
            assert_close(&format!("masked_fill {d}"), &got, &want, 0.0);
        }
    }
}

#[test]
fn casts_copies_and_fills_match_cpu() {
    let Some(dev) = gpu("casts_copies_and_fills_match_cpu") else {
        return;
    };
    let mut r = Rng(4);
    for from in ALL {
        for to in ALL {
            let shape = random_shape(&mut r, 6, 4);
            let (l, n) = strided(&mut r, &shape, true);
            let mut x = values(&mut r, n, from);
            if from.is_float() {
                // Out-of-range and special values convert like Rust's `as`.
                let v = vec![300.7f64, -1.5, f64::NAN, f64::INFINITY, -1e30];
                let extra = CpuStorage::from_vec(v).cast(&Layout::contiguous(&[5]), from);
                x = CpuStorage::cat(
                    &[
                        (&x, &Layout::contiguous(&[n])),
                        (&extra, &Layout::contiguous(&[5])),
                    ],
                    0,
                );
            }
            let c = Layout::contiguous(&[l.numel()]);
            let got = up(&x, dev).cast(&l, to).to_cpu(&c);
            assert_close(&format!("cast {from} -> {to}"), &got, &x.cast(&l, to), 0.0);
            let lx = Layout::contiguous(&[x.len()]);
            let got = up(&x, dev).cast(&lx, to).to_cpu(&lx);
            assert_close(
                &format!("cast specials {from} -> {to}"),
                &got,
                &x.cast(&lx, to),
                0.0,
            );
            // Copy into a strided destination.
            let (ld, nd) = strided(&mut r, &shape, false);
            let dst = values(&mut r, nd, to);
            let mut want = dst.clone();
            want.copy_from(&ld, &x, &l);
            let mut g = up(&dst, dev);
            g.copy_from(&ld, &up(&x, dev), &l);
            assert_close(
                "copy_from",
                &g.to_cpu(&Layout::contiguous(&[nd])),
                &want,
                0.0,
            );
            let mut want = dst.clone();
            want.fill(&ld, Scalar::Float(2.5));
            let mut g = up(&dst, dev);
            g.fill(&ld, Scalar::Float(2.5));
            assert_close("fill", &g.to_cpu(&Layout::contiguous(&[nd])), &want, 0.0);
        }
    }
    // Many non-mergeable dims: iterated on the host in several launches.
    let shape = [2usize; 11];
    let t = Layout::contiguous(&shape).permute(&(0..11).rev().collect::<Vec<_>>());
    let x = values(&mut r, 2048, DType::F32);
    let got = up(&x, dev)
        .contiguous(&t)
        .to_cpu(&Layout::contiguous(&[2048]));
    assert_close("11 dims", &got, &x.contiguous(&t), 0.0);
}

#[test]
fn reductions_match_cpu() {
    let Some(dev) = gpu("reductions_match_cpu") else {
        return;
    };
    let mut r = Rng(5);
    for d in ALL {
        for _ in 0..12 {
            let shape = random_shape(&mut r, 4, 6);
            let (l, n) = strided(&mut r, &shape, true);
            let x = values(&mut r, n, d);
            let dims: Vec<usize> = (0..shape.len()).filter(|_| r.below(2) == 0).collect();
            let g = up(&x, dev);
            for op in [ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min] {
                let want = x.reduce(&l, &dims, op);
                let got = g
                    .reduce(&l, &dims, op)
                    .to_cpu(&Layout::contiguous(&[want.len()]));
                assert_close(&format!("{op:?} {d} {shape:?} {dims:?}"), &got, &want, 1e-5);
            }
            if !shape.is_empty() {
                let dim = r.below(shape.len());
                for op in [ArgReduceOp::Max, ArgReduceOp::Min] {
                    let (wv, wi) = x.arg_reduce(&l, dim, op);
                    let (gv, gi) = g.arg_reduce(&l, dim, op);
                    let c = Layout::contiguous(&[wv.len()]);
                    assert_close("arg values", &gv.to_cpu(&c), &wv, 0.0);
                    assert_close(
                        &format!("arg {op:?} {d} {shape:?} dim {dim}"),
                        &gi.to_cpu(&c),
                        &wi,
                        0.0,
                    );
                }
            }
            if d.is_float() {
                for corr in [0.0, 1.0] {
                    let want = x.var(&l, &dims, corr);
                    let got = g
                        .var(&l, &dims, corr)
                        .to_cpu(&Layout::contiguous(&[want.len()]));
                    assert_close("var", &got, &want, 1e-5);
                }
            }
            let want = x.logsumexp(&l, &dims);
            let got = g
                .logsumexp(&l, &dims)
                .to_cpu(&Layout::contiguous(&[want.len()]));
            assert_close("logsumexp", &got, &want, 1e-5);
        }
    }
    // Large reductions take the split path: a full sum, row sums and column sums.
    let x = values(&mut r, 3_000_000, DType::F32);
    let g = up(&x, dev);
    for (shape, dims) in [
        (vec![3_000_000], vec![0]),
        (vec![3000, 1000], vec![1]),
        (vec![3000, 1000], vec![0]),
    ] {
        let l = Layout::contiguous(&shape);
        let want = x.reduce(&l, &dims, ReduceOp::Sum);
        let got = g
            .reduce(&l, &dims, ReduceOp::Sum)
            .to_cpu(&Layout::contiguous(&[want.len()]));
        assert_close(&format!("big sum {shape:?} {dims:?}"), &got, &want, 1e-5);
        let want = x.reduce(&l, &dims, ReduceOp::Max);
        let got = g
            .reduce(&l, &dims, ReduceOp::Max)
            .to_cpu(&Layout::contiguous(&[want.len()]));
        assert_close("big max", &got, &want, 0.0);
    }
    // NaN: max/min propagate it, argmax picks its first index.
    let x = CpuStorage::from_vec(vec![1.0f64, f64::NAN, 3.0, f64::NAN, 3.0]);
    let l = Layout::contiguous(&[5]);
    let got = up(&x, dev)
        .reduce(&l, &[], ReduceOp::Max)
        .to_cpu(&Layout::contiguous(&[1]));
    assert!(got.to_vec::<f64>(&Layout::contiguous(&[1]))[0].is_nan());
    let (_, i) = up(&x, dev).arg_reduce(&l, 0, ArgReduceOp::Max);
    assert_eq!(i.to_vec::<i64>(&Layout::contiguous(&[1])), vec![1]);
    // norm_pow_sum for every kind.
    let x = values(&mut r, 100_003, DType::F32);
    let l = Layout::contiguous(&[100_003]);
    for ord in [2.0, 1.0, 0.0, 3.0, f64::INFINITY, f64::NEG_INFINITY] {
        let want = x.norm_pow_sum(&l, ord);
        let got = up(&x, dev).norm_pow_sum(&l, ord);
        assert!(
            (got - want).abs() <= 1e-9 * (1.0 + want.abs()),
            "norm {ord}: {got} vs {want}"
        );
    }
}

#[test]
fn softmax_matches_cpu() {
    let Some(dev) = gpu("softmax_matches_cpu") else {
        return;
    };
    let mut r = Rng(6);
    for d in [DType::F32, DType::F64] {
        for shape in [
            vec![7],
            vec![4, 10],
            vec![3, 5, 6],
            vec![64, 2000],
            vec![2, 300, 3],
        ] {
            for dim in 0..shape.len() {
                let (l, n) = strided(&mut r, &shape, false);
                let x = values(&mut r, n, d);
                let c = Layout::contiguous(&shape);
                let g = values(&mut r, l.numel(), d);
                for log in [false, true] {
                    let want = x.softmax(&l, dim, log);
                    let got = up(&x, dev).softmax(&l, dim, log);
                    assert_close(
                        &format!("softmax {log} {shape:?} {dim}"),
                        &got.to_cpu(&c),
                        &want,
                        1e-5,
                    );
                    let wb = g.softmax_backward(&c, &want, &c, dim, log);
                    let gb = up(&g, dev).softmax_backward(&c, &got, &c, dim, log);
                    assert_close("softmax backward", &gb.to_cpu(&c), &wb, 1e-4);
                }
            }
        }
    }
}

#[test]
fn matmul_matches_cpu() {
    let Some(dev) = gpu("matmul_matches_cpu") else {
        return;
    };
    let mut r = Rng(7);
    for d in [DType::F32, DType::F64, DType::I64, DType::U8] {
        for _ in 0..10 {
            let (bs, m, k, n) = (
                1 + r.below(3),
                1 + r.below(40),
                r.below(40),
                1 + r.below(40),
            );
            let (la, na) = strided(&mut r, &[bs, m, k], true);
            let (lb, nb) = strided(&mut r, &[bs, k, n], true);
            let a = values(&mut r, na, d);
            let b = values(&mut r, nb, d);
            let want = a.matmul(&la, &b, &lb);
            let got = up(&a, dev)
                .matmul(&la, &up(&b, dev), &lb)
                .to_cpu(&Layout::contiguous(&[want.len()]));
            assert_close(&format!("matmul {d} {bs}x{m}x{k}x{n}"), &got, &want, 1e-5);
            for (beta, alpha) in [(0.0, 1.0), (1.0, 1.0), (2.0, -1.0)] {
                let (la2, na2) = strided(&mut r, &[m, k], false);
                let (lb2, nb2) = strided(&mut r, &[k, n], false);
                let (lc, nc) = strided(&mut r, &[m, n], true);
                let (a2, b2, c2) = (
                    values(&mut r, na2, d),
                    values(&mut r, nb2, d),
                    values(&mut r, nc, d),
                );
                let want = c2.addmm(&lc, &a2, &la2, &b2, &lb2, beta, alpha);
                let got = up(&c2, dev)
                    .addmm(&lc, &up(&a2, dev), &la2, &up(&b2, dev), &lb2, beta, alpha)
                    .to_cpu(&Layout::contiguous(&[m * n]));
                assert_close(&format!("addmm {d} beta {beta}"), &got, &want, 1e-5);
            }
        }
    }
}

fn idx_storage(vals: &[i64]) -> CpuStorage {
    CpuStorage::from_vec(vals.to_vec())
}

#[test]
fn index_ops_match_cpu() {
    let Some(dev) = gpu("index_ops_match_cpu") else {
        return;
    };
    let mut r = Rng(8);
    for d in ALL {
        for _ in 0..6 {
            let shape = {
                let mut s = random_shape(&mut r, 3, 5);
                if s.is_empty() {
                    s.push(3);
                }
                s
            };
            let dim = r.below(shape.len());
            let (l, n) = strided(&mut r, &shape, true);
            let x = values(&mut r, n, d);
            let ni = r.below(7);
            let iv: Vec<i64> = (0..ni).map(|_| r.below(shape[dim]) as i64).collect();
            let idx = idx_storage(&iv);
            let li = Layout::contiguous(&[ni]);
            for u8_index in [false, true] {
                let idx = if u8_index {
                    idx.cast(&li, DType::U8)
                } else {
                    idx.clone()
                };
                let want = x.index_select(&l, dim, &idx, &li);
                let got = up(&x, dev).index_select(&l, dim, &up(&idx, dev), &li);
                assert_close(
                    &format!("index_select {d}"),
                    &got.to_cpu(&Layout::contiguous(&[want.len()])),
                    &want,
                    0.0,
                );
            }
            // gather / scatter with an index no larger than the input outside `dim`.
            let ishape: Vec<usize> = (0..shape.len())
                .map(|e| {
                    if e == dim {
                        1 + r.below(4)
                    } else {
                        1 + r.below(shape[e])
                    }
                })
                .collect();
            let icount: usize = ishape.iter().product();
            let iv: Vec<i64> = (0..icount).map(|_| r.below(shape[dim]) as i64).collect();
            let (gi, gil) = (idx_storage(&iv), Layout::contiguous(&ishape));
            let want = x.gather(&l, dim, &gi, &gil);
            let got = up(&x, dev).gather(&l, dim, &up(&gi, dev), &gil);
            assert_close(
                "gather",
                &got.to_cpu(&Layout::contiguous(&[icount])),
                &want,
                0.0,
            );
            let (ls, ns) = strided(&mut r, &ishape, true);
            let src = values(&mut r, ns, d);
            // scatter_add (duplicates add up; integers exactly, floats within rounding).
            let want = x.scatter(&l, dim, &gi, &gil, &src, &ls, true);
            let got = up(&x, dev).scatter(&l, dim, &up(&gi, dev), &gil, &up(&src, dev), &ls, true);
            assert_close(
                "scatter_add",
                &got.to_cpu(&Layout::contiguous(&[want.len()])),
                &want,
                1e-6,
            );
            // In-place scatter_add into a strided destination.
            let (dl, dn) = strided(&mut r, &shape, false);
            let dst = values(&mut r, dn, d);
            let mut want = dst.clone();
            want.scatter_add_inplace(&dl, dim, &gi, &gil, &src, &ls);
            let mut g = up(&dst, dev);
            g.scatter_add_inplace(&dl, dim, &up(&gi, dev), &gil, &up(&src, dev), &ls);
            assert_close(
                "scatter_add_",
                &g.to_cpu(&Layout::contiguous(&[dn])),
                &want,
                1e-6,
            );
        }
        // cat along each dim of strided parts.
        let shape = vec![3, 4, 2];
        for dim in 0..3 {
            let parts: Vec<(CpuStorage, Layout)> = (0..3)
                .map(|_| {
                    let mut s = shape.clone();
                    s[dim] = r.below(3);
                    let (l, n) = strided(&mut r, &s, true);
                    (values(&mut r, n, d), l)
                })
                .collect();
            let cpu: Vec<(&CpuStorage, &Layout)> = parts.iter().map(|(s, l)| (s, l)).collect();
            let want = CpuStorage::cat(&cpu, dim);
            let gs: Vec<CudaStorage> = parts.iter().map(|(s, _)| up(s, dev)).collect();
            let gp: Vec<(&CudaStorage, &Layout)> =
                gs.iter().zip(&parts).map(|(g, (_, l))| (g, l)).collect();
            let got = CudaStorage::cat(&gp, dim);
            assert_close(
                "cat",
                &got.to_cpu(&Layout::contiguous(&[want.len()])),
                &want,
                0.0,
            );
        }
    }
    let x = idx_storage(&[0, 3, 1, 2, 2, 0]);
    let l = Layout::contiguous(&[2, 3]).transpose(0, 1);
    let want = x.one_hot(&l, 4);
    let got = up(&x, dev).one_hot(&l, 4);
    assert_close(
        "one_hot",
        &got.to_cpu(&Layout::contiguous(&[24])),
        &want,
        0.0,
    );
}

#[test]
fn bad_indices_are_reported_at_the_next_synchronisation() {
    let Some(dev) = gpu("bad_indices_are_reported_at_the_next_synchronisation") else {
        return;
    };
    let x = up(&values(&mut Rng(9), 10, DType::F32), dev);
    let i = up(&idx_storage(&[1, 7]), dev);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let out = x.index_select(
            &Layout::contiguous(&[5, 2]),
            0,
            &i,
            &Layout::contiguous(&[2]),
        );
        out.to_cpu(&Layout::contiguous(&[4]));
    }));
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert_eq!(
        msg,
        "index_select: index 7 is out of bounds for dimension 0 with size 5"
    );
    // The slot is cleared: later work runs normally.
    let ok = x.reduce(&Layout::contiguous(&[10]), &[], ReduceOp::Sum);
    ok.to_cpu(&Layout::contiguous(&[1]));
}

#[test]
fn losses_match_cpu() {
    let Some(dev) = gpu("losses_match_cpu") else {
        return;
    };
    let mut r = Rng(10);
    for d in [DType::F32, DType::F64] {
        for shape in [vec![10], vec![64, 10], vec![5, 7, 3, 2], vec![33, 1000]] {
            let numel: usize = shape.iter().product();
            let classes = if shape.len() == 1 { shape[0] } else { shape[1] };
            let rows = numel / classes;
            let rshape: Vec<usize> = if shape.len() == 1 {
                vec![]
            } else {
                [&shape[..1], &shape[2..]].concat()
            };
            let x = values(&mut r, numel, d);
            let lx = Layout::contiguous(&shape);
            let tv: Vec<i64> = (0..rows)
                .map(|_| {
                    if r.below(8) == 0 {
                        -100
                    } else {
                        r.below(classes) as i64
                    }
                })
                .collect();
            let t = idx_storage(&tv);
            let lt = Layout::contiguous(&rshape);
            let w = values(&mut r, classes, d).unary(&Layout::contiguous(&[classes]), UnaryOp::Abs);
            let lw = Layout::contiguous(&[classes]);
            let probs = values(&mut r, numel, d).softmax(&lx, usize::from(shape.len() > 1), false);
            let (gx, gt, gw, gp) = (up(&x, dev), up(&t, dev), up(&w, dev), up(&probs, dev));
            for weighted in [false, true] {
                for smoothing in [0.0, 0.1] {
                    let cpu_opts = CeOptions {
                        weight: weighted.then_some((&w, &lw)),
                        ignore_index: -100,
                        label_smoothing: smoothing,
                        op: "cross_entropy",
                    };
                    let gpu_opts = CeOptions {
                        weight: weighted.then_some((&gw, &lw)),
                        ignore_index: -100,
                        label_smoothing: smoothing,
                        op: "cross_entropy",
                    };
                    for red in [LossReduction::None, LossReduction::Mean, LossReduction::Sum] {
                        for prob in [false, true] {
                            let (ct, gtg) = if prob {
                                (CeTarget::Prob(&probs, &lx), CeTarget::Prob(&gp, &lx))
                            } else {
                                (CeTarget::Index(&t, &lt), CeTarget::Index(&gt, &lt))
                            };
                            let want = x.cross_entropy(&lx, ct, &cpu_opts, red);
                            let got = gx.cross_entropy(&lx, gtg, &gpu_opts, red);
                            let what = format!(
                                "ce {d} {shape:?} w={weighted} ls={smoothing} {red:?} prob={prob}"
                            );
                            assert_close(
                                &what,
                                &got.loss.to_cpu(&Layout::contiguous(&[want.loss.len()])),
                                &want.loss,
                                1e-5,
                            );
                            assert!(
                                (got.weight_sum - want.weight_sum).abs()
                                    < 1e-6 * (1.0 + want.weight_sum.abs()),
                                "{what}: weight sum"
                            );
                            // Backward with the upstream gradient of this reduction.
                            let g1 = values(&mut r, want.loss.len(), d);
                            let gl = Layout::contiguous(&[want.loss.len()]);
                            let factor = if red == LossReduction::Mean {
                                1.0 / want.weight_sum
                            } else {
                                1.0
                            };
                            let (cg, ggrad) = (g1.clone(), up(&g1, dev));
                            let (cgrad, dgrad) = if red == LossReduction::None {
                                (LossGrad::Rows(&cg, &gl), LossGrad::Rows(&ggrad, &gl))
                            } else {
                                (
                                    LossGrad::Reduced(&cg, &gl, factor),
                                    LossGrad::Reduced(&ggrad, &gl, factor),
                                )
                            };
                            let (wi, wt) = x.cross_entropy_backward(
                                &lx,
                                ct,
                                &cpu_opts,
                                want.lse.as_ref().unwrap(),
                                cgrad,
                                prob,
                            );
                            let (gi, gtt) = gx.cross_entropy_backward(
                                &lx,
                                gtg,
                                &gpu_opts,
                                got.lse.as_ref().unwrap(),
                                dgrad,
                                prob,
                            );
                            let c = Layout::contiguous(&[numel]);
                            assert_close(&format!("{what} backward"), &gi.to_cpu(&c), &wi, 1e-5);
                            if let (Some(wt), Some(gtt)) = (wt, gtt) {
                                assert_close(
                                    &format!("{what} target grad"),
                                    &gtt.to_cpu(&c),
                                    &wt,
                                    1e-5,
                                );
                            }
                        }
                    }
                    // NLL on log-probabilities.
                    let lp = x.softmax(&lx, usize::from(shape.len() > 1), true);
                    let glp = up(&lp, dev);
                    let nll_c = CeOptions {
                        op: "nll_loss",
                        label_smoothing: 0.0,
                        ..cpu_opts
                    };
                    let nll_g = CeOptions {
                        op: "nll_loss",
                        label_smoothing: 0.0,
                        ..gpu_opts
                    };
                    let want = lp.nll_loss(&lx, (&t, &lt), &nll_c, LossReduction::Mean);
                    let got = glp.nll_loss(&lx, (&gt, &lt), &nll_g, LossReduction::Mean);
                    assert_close(
                        "nll",
                        &got.loss.to_cpu(&Layout::contiguous(&[1])),
                        &want.loss,
                        1e-5,
                    );
                    let one = CpuStorage::from_vec(vec![1.0f64]).cast(&Layout::contiguous(&[1]), d);
                    let gone = up(&one, dev);
                    let l1 = Layout::contiguous(&[1]);
                    let wb = lp.nll_loss_backward(
                        &lx,
                        (&t, &lt),
                        &nll_c,
                        LossGrad::Reduced(&one, &l1, 1.0 / want.weight_sum),
                    );
                    let gb = glp.nll_loss_backward(
                        &lx,
                        (&gt, &lt),
                        &nll_g,
                        LossGrad::Reduced(&gone, &l1, 1.0 / got.weight_sum),
                    );
                    assert_close(
                        "nll backward",
                        &gb.to_cpu(&Layout::contiguous(&[numel])),
                        &wb,
                        1e-5,
                    );
                }
            }
        }
    }
}

#[test]
fn optimizer_steps_match_cpu_exactly() {
    let Some(dev) = gpu("optimizer_steps_match_cpu_exactly") else {
        return;
    };
    let mut r = Rng(11);
    for d in [DType::F32, DType::F64] {
        let n = 10_007;
        let l = Layout::contiguous(&[n]);
        let mut p = values(&mut r, n, d);
        let mut gp = up(&p, dev);
        let mut st: Vec<CpuStorage> = (0..3)
            .map(|_| values(&mut r, n, d).unary(&l, UnaryOp::Abs))
            .collect();
        let mut gst: Vec<CudaStorage> = st.iter().map(|s| up(s, dev)).collect();
        let check = |what: &str,
                     p: &CpuStorage,
                     gp: &CudaStorage,
                     st: &[CpuStorage],
                     gst: &[CudaStorage]| {
            assert_close(what, &gp.to_cpu(&l), p, 0.0);
            for (s, g) in st.iter().zip(gst) {
                assert_close(&format!("{what} state"), &g.to_cpu(&l), s, 0.0);
            }
        };
        for step in 0..4 {
            let g = values(&mut r, n, d);
            let gg = up(&g, dev);
            for (momentum, nesterov, wd, maximize) in [
                (0.0, false, 0.0, false),
                (0.9, true, 1e-2, false),
                (0.9, false, 0.0, true),
            ] {
                let h = SgdStep {
                    lr: 0.1,
                    momentum,
                    dampening: 0.1,
                    weight_decay: wd,
                    nesterov,
                    maximize,
                    first_step: step == 0,
                };
                let [b, ..] = &mut st[..] else { unreachable!() };
                p.sgd_step(&l, &g, &l, Some(b), &h);
                let [gb, ..] = &mut gst[..] else {
                    unreachable!()
                };
                gp.sgd_step(&l, &gg, &l, Some(gb), &h);
                check("sgd", &p, &gp, &st, &gst);
            }
            for (amsgrad, decoupled, wd, beta1) in [
                (false, false, 0.0, 0.9),
                (true, true, 1e-2, 0.9),
                (true, false, 1e-2, 0.3),
            ] {
                let t = (step + 1) as f64;
                let h = AdamStep {
                    lr: 1e-3,
                    beta1,
                    beta2: 0.999,
                    eps: 1e-8,
                    weight_decay: wd,
                    decoupled_weight_decay: decoupled,
                    amsgrad,
                    maximize: false,
                    step_size: 1e-3 / (1.0 - beta1.powf(t)),
                    bias_correction2_sqrt: (1.0 - 0.999f64.powf(t)).sqrt(),
                };
                let [m, v, vm] = &mut st[..] else {
                    unreachable!()
                };
                p.adam_step(&l, &g, &l, m, v, Some(vm), &h);
                let [gm, gv, gvm] = &mut gst[..] else {
                    unreachable!()
                };
                gp.adam_step(&l, &gg, &l, gm, gv, Some(gvm), &h);
                check("adam", &p, &gp, &st, &gst);
            }
            for (centered, momentum, wd) in [(false, 0.0, 0.0), (true, 0.9, 1e-2)] {
                let h = RmspropStep {
                    lr: 1e-2,
                    alpha: 0.99,
                    eps: 1e-8,
                    weight_decay: wd,
                    momentum,
                    centered,
                    maximize: false,
                };
                let [sq, b, ga] = &mut st[..] else {
                    unreachable!()
                };
                p.rmsprop_step(&l, &g, &l, sq, Some(b), Some(ga), &h);
                let [gsq, gb, gga] = &mut gst[..] else {
                    unreachable!()
                };
                gp.rmsprop_step(&l, &gg, &l, gsq, Some(gb), Some(gga), &h);
                check("rmsprop", &p, &gp, &st, &gst);
            }
            let h = AdagradStep {
                clr: 1e-2,
                eps: 1e-10,
                weight_decay: 1e-3,
                maximize: false,
            };
            let [s, ..] = &mut st[..] else { unreachable!() };
            p.adagrad_step(&l, &g, &l, s, &h);
            let [gs, ..] = &mut gst[..] else {
                unreachable!()
            };
            gp.adagrad_step(&l, &gg, &l, gs, &h);
            check("adagrad", &p, &gp, &st, &gst);
        }
    }
}

/// Host references of the device's Philox transforms (value `j` from block `j / K`, lane
/// `j % K`), written from the definitions in `kernels/random.cu`.
mod philox_ref {
    use ember_kernels::random::PhiloxStream;

    pub fn words32(s: PhiloxStream, n: usize) -> Vec<u32> {
        (0..n).map(|j| s.block((j / 4) as u64)[j % 4]).collect()
    }
    pub fn words64(s: PhiloxStream, n: usize) -> Vec<u64> {
        (0..n)
            .map(|j| {
                let w = s.block((j / 2) as u64);
                let h = j % 2;
                (w[2 * h + 1] as u64) << 32 | w[2 * h] as u64
            })
            .collect()
    }
    pub fn uniform_f32(s: PhiloxStream, n: usize, lo: f32, range: f32) -> Vec<f32> {
        let unit = 1.0f32 / 16_777_216.0;
        words32(s, n)
            .iter()
            .map(|&x| (x >> 8) as f32 * unit * range + lo)
            .collect()
    }
    pub fn uniform_f64(s: PhiloxStream, n: usize, lo: f64, range: f64) -> Vec<f64> {
        let unit = 1.0 / 9_007_199_254_740_992.0;
        words64(s, n)
            .iter()
            .map(|&x| (x >> 11) as f64 * unit * range + lo)
            .collect()
    }
    pub fn randint(s: PhiloxStream, n: usize, low: i64, range: u64) -> Vec<i64> {
        words64(s, n)
            .iter()
            .map(|&x| (low as u64).wrapping_add(((x as u128 * range as u128) >> 64) as u64) as i64)
            .collect()
    }
    pub fn below(s: PhiloxStream, n: usize, p: f64) -> Vec<f64> {
        let t = (p * 4_294_967_296.0) as u64;
        words32(s, n)
            .iter()
            .map(|&x| f64::from((x as u64) < t))
            .collect()
    }
    /// Box–Muller in f64 from the f32 draws (the device uses its own ln/sin/cos in f32).
    pub fn normal_f32(s: PhiloxStream, n: usize, mean: f64, std: f64) -> Vec<f64> {
        let w = words32(s, n.div_ceil(4) * 4);
        let u = |x: u32| (x >> 8) as f64 / 16_777_216.0;
        let mut out = Vec::with_capacity(n);
        for pair in w.chunks(2) {
            let r = (-2.0 * (1.0 - u(pair[0])).ln()).sqrt();
            let th = 2.0 * std::f64::consts::PI * u(pair[1]);
            out.push(r * th.cos() * std + mean);
            out.push(r * th.sin() * std + mean);
        }
        out.truncate(n);
        out
    }
}

#[test]
fn random_numbers_follow_philox_and_do_not_depend_on_launches() {
    let Some(dev) = gpu("random_numbers_follow_philox_and_do_not_depend_on_launches") else {
        return;
    };
    for (seed, offset) in [
        (0u64, 0u64),
        (67280421310721, 12345),
        (u64::MAX, u64::MAX - 3),
    ] {
        let s = PhiloxStream { seed, offset };
        for n in [1usize, 5, 1000, 100_003] {
            let c = Layout::contiguous(&[n]);
            let got = |x: CudaStorage| x.to_cpu(&c).to_vec::<f64>(&c);
            let f64s = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<f64>>();
            assert_eq!(
                got(CudaStorage::uniform(n, -1.0, 3.0, DType::F32, s, dev)),
                f64s(philox_ref::uniform_f32(s, n, -1.0, 4.0)),
                "uniform f32 n={n}"
            );
            assert_eq!(
                got(CudaStorage::uniform(n, -1.0, 3.0, DType::F64, s, dev)),
                philox_ref::uniform_f64(s, n, -1.0, 4.0),
                "uniform f64 n={n}"
            );
            let normal = got(CudaStorage::normal(n, 0.5, 2.0, DType::F32, s, dev));
            for (k, (g, w)) in normal
                .iter()
                .zip(philox_ref::normal_f32(s, n, 0.5, 2.0))
                .enumerate()
            {
                assert!(
                    (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                    "normal f32[{k}] n={n}: {g} vs {w}"
                );
            }
            for d in ALL {
                assert_eq!(
                    got(CudaStorage::bernoulli_scalar(n, 0.3, d, s, dev)),
                    philox_ref::below(s, n, 0.3),
                    "bernoulli_scalar {d:?} n={n}"
                );
            }
            let range = 1_000_000_007u64 + 7;
            let ints = CudaStorage::randint(n, -7, 1_000_000_007, s, dev).to_cpu(&c);
            assert_eq!(
                ints.to_vec::<i64>(&c),
                philox_ref::randint(s, n, -7, range),
                "randint n={n}"
            );
            let mut perm = CudaStorage::randperm(n, s, dev)
                .to_cpu(&c)
                .to_vec::<i64>(&c);
            perm.sort_unstable();
            assert_eq!(
                perm,
                (0..n as i64).collect::<Vec<_>>(),
                "randperm is a permutation"
            );
            let probs = CpuStorage::from_vec(vec![0.3f32; n]);
            assert_eq!(
                got(CudaStorage::bernoulli(&up(&probs, dev), &c, s)),
                philox_ref::below(s, n, 0.3f32 as f64),
                "bernoulli n={n}"
            );
            // A longer draw from the same state extends a shorter one (other grid sizes).
            let longer = CudaStorage::uniform(n + 999, -1.0, 3.0, DType::F32, s, dev)
                .to_cpu(&Layout::contiguous(&[n + 999]));
            let short = CudaStorage::uniform(n, -1.0, 3.0, DType::F32, s, dev).to_cpu(&c);
            assert_eq!(
                &longer.to_vec::<f32>(&Layout::contiguous(&[n + 999]))[..n],
                &short.to_vec::<f32>(&c)[..]
            );
        }
    }
    use ember_kernels::cpu::creation as cpu;
    for d in [DType::F32, DType::F64, DType::I64, DType::U8] {
        for (start, step, n) in [(0.0, 1.0, 10usize), (-3.5, 0.25, 100), (10.0, -3.0, 4)] {
            let c = Layout::contiguous(&[n]);
            assert_close(
                "arange",
                &CudaStorage::arange(n, start, step, d, dev).to_cpu(&c),
                &cpu::arange(n, start, step, d),
                0.0,
            );
            assert_close(
                "linspace",
                &CudaStorage::linspace(start, 7.5, n, d, dev).to_cpu(&c),
                &cpu::linspace(start, 7.5, n, d),
                0.0,
            );
        }
    }
    for d in ALL {
        assert_close(
            "eye",
            &CudaStorage::eye(3, 5, d, dev).to_cpu(&Layout::contiguous(&[15])),
            &cpu::eye(3, 5, d),
            0.0,
        );
    }
}

#[test]
fn a_repeated_computation_allocates_nothing_after_warm_up() {
    let Some(dev) = gpu("a_repeated_computation_allocates_nothing_after_warm_up") else {
        return;
    };
    let mut r = Rng(12);
    let x = up(&values(&mut r, 64 * 784, DType::F32), dev);
    let w = up(&values(&mut r, 784 * 128, DType::F32), dev);
    let (lx, lw) = (
        Layout::contiguous(&[1, 64, 784]),
        Layout::contiguous(&[1, 784, 128]),
    );
    let step = || {
        let h = x.matmul(&lx, &w, &lw);
        let l = Layout::contiguous(&[64, 128]);
        let a = h.unary(&l, UnaryOp::Relu);
        let s = a.softmax(&l, 1, true);
        s.reduce(&l, &[], ReduceOp::Sum)
    };
    for _ in 0..3 {
        step();
    }
    cuda::synchronize();
    let before = cuda::memory_stats(dev);
    for _ in 0..200 {
        step();
    }
    cuda::synchronize();
    let after = cuda::memory_stats(dev);
    assert_eq!(
        after.driver_allocs, before.driver_allocs,
        "{before:?} -> {after:?}"
    );
    assert_eq!(after.allocated, before.allocated);
    assert!(cuda::max_memory_allocated(dev) >= 64 * 128 * 4);
}

/// Sets the convolutions' patch-matrix budget for case `case` of geometry `xs`, `ws`, `out`:
/// the default (one chunk), one sample per chunk, or two (a shorter last chunk when N = 3).
fn conv_budget(case: usize, xs: &[usize; 4], ws: &[usize; 4], out: [usize; 2]) {
    let per_sample = xs[1] * ws[2] * ws[3] * out[0] * out[1];
    cuda::set_col_budget(match case % 3 {
        0 => 1 << 24,
        1 => 1,
        _ => 2 * per_sample,
    });
}

/// A random convolution geometry: (input `(N, C_in, H, W)`, weight shape, parameters, output
/// spatial size). Every fourth case is pointwise (1×1, stride 1, no padding).
fn conv_case(r: &mut Rng) -> ([usize; 4], [usize; 4], ConvParams, [usize; 2]) {
    let groups = 1 + r.below(3);
    let (cg, og) = (1 + r.below(3), 1 + r.below(3));
    let n = 1 + r.below(3);
    let pointwise = r.below(4) == 0;
    let (kernel, p) = if pointwise {
        (
            [1, 1],
            ConvParams {
                stride: [1, 1],
                padding: [[0, 0], [0, 0]],
                dilation: [1, 1],
                groups,
            },
        )
    } else {
        let pad = |r: &mut Rng| [r.below(3), r.below(3)];
        (
            [1 + r.below(3), 1 + r.below(3)],
            ConvParams {
                stride: [1 + r.below(2), 1 + r.below(3)],
                padding: [pad(r), pad(r)],
                dilation: [1 + r.below(2), 1 + r.below(2)],
                groups,
            },
        )
    };
    // Large enough that the dilated kernel fits the padded input.
    let hw = [0, 1].map(|d| {
        let need = p
            .dilated(d, kernel[d])
            .saturating_sub(p.padding[d][0] + p.padding[d][1]);
        need.max(1) + r.below(5)
    });
    let out = p.output_size("conv2d", hw, kernel);
    (
        [n, groups * cg, hw[0], hw[1]],
        [groups * og, cg, kernel[0], kernel[1]],
        p,
        out,
    )
}

#[test]
fn conv2d_matches_cpu() {
    let Some(dev) = gpu("conv2d_matches_cpu") else {
        return;
    };
    let mut r = Rng(21);
    for d in [DType::F32, DType::F64] {
        for case in 0..36 {
            let (xs, ws, p, out) = conv_case(&mut r);
            conv_budget(case, &xs, &ws, out);
            let (lx, nx) = strided(&mut r, &xs, false);
            let (lw, nw) = strided(&mut r, &ws, false);
            let (x, w) = (values(&mut r, nx, d), values(&mut r, nw, d));
            let bias = (r.below(2) == 0).then(|| {
                let (lb, nb) = strided(&mut r, &[ws[0]], false);
                (values(&mut r, nb, d), lb)
            });
            let what = format!("conv2d {d} case {case}: x {xs:?} w {ws:?} {p:?}");
            let want = x.conv2d(&lx, &w, &lw, bias.as_ref().map(|(b, l)| (b, l)), &p, out);
            let (gb, gw) = (bias.as_ref().map(|(b, l)| (up(b, dev), l)), up(&w, dev));
            let got = up(&x, dev)
                .conv2d(&lx, &gw, &lw, gb.as_ref().map(|(b, l)| (b, *l)), &p, out)
                .to_cpu(&Layout::contiguous(&[want.len()]));
            assert_close(&what, &got, &want, 4.0 * tol(d));
        }
    }
}

#[test]
fn conv2d_backward_matches_cpu() {
    let Some(dev) = gpu("conv2d_backward_matches_cpu") else {
        return;
    };
    let mut r = Rng(22);
    for d in [DType::F32, DType::F64] {
        for case in 0..36 {
            let (xs, ws, p, out) = conv_case(&mut r);
            conv_budget(case, &xs, &ws, out);
            let gs = [xs[0], ws[0], out[0], out[1]];
            let (lg, ng) = strided(&mut r, &gs, false);
            let (lw, nw) = strided(&mut r, &ws, false);
            let (lx, nx) = strided(&mut r, &xs, false);
            let (g, w, x) = (
                values(&mut r, ng, d),
                values(&mut r, nw, d),
                values(&mut r, nx, d),
            );
            let (cg, cw, cx) = (up(&g, dev), up(&w, dev), up(&x, dev));
            let what = format!("case {case}: x {xs:?} w {ws:?} {p:?}");
            // The input gradient, also of a larger input the same windows cover (a transposed
            // convolution's output padding).
            let mut input = [xs[2], xs[3]];
            for dim in 0..2 {
                let grown = input[dim] + r.below(p.stride[dim]);
                let mut bigger = input;
                bigger[dim] = grown;
                if p.output_size("conv2d", bigger, [ws[2], ws[3]]) == out {
                    input = bigger;
                }
            }
            let want = g.conv2d_backward_input(&lg, &w, &lw, &p, input);
            let got = cg
                .conv2d_backward_input(&lg, &cw, &lw, &p, input)
                .to_cpu(&Layout::contiguous(&[want.len()]));
            assert_close(
                &format!("conv2d_backward_input {d} {what} input {input:?}"),
                &got,
                &want,
                4.0 * tol(d),
            );
            let want = x.conv2d_backward_weight(&lx, &g, &lg, &p, [ws[2], ws[3]]);
            let got = cx
                .conv2d_backward_weight(&lx, &cg, &lg, &p, [ws[2], ws[3]])
                .to_cpu(&Layout::contiguous(&[want.len()]));
            assert_close(
                &format!("conv2d_backward_weight {d} {what}"),
                &got,
                &want,
                4.0 * tol(d),
            );
        }
    }
}

/// A random pooling geometry: input `(N, C, H, W)`, windows (sliding with random kernel,
/// stride, padding, dilation and ceil_mode, or adaptive), output spatial size.
fn pool_case(r: &mut Rng, dilate: bool) -> ([usize; 4], PoolWindows, [usize; 2]) {
    let (n, c) = (1 + r.below(2), 1 + r.below(3));
    if r.below(4) == 0 {
        let hw = [1 + r.below(7), 1 + r.below(7)];
        let out = [1 + r.below(hw[0] + 2), 1 + r.below(hw[1] + 2)];
        return ([n, c, hw[0], hw[1]], PoolWindows::Adaptive, out);
    }
    let kernel = [1 + r.below(3), 1 + r.below(3)];
    let dilation = if dilate {
        [1 + r.below(2), 1 + r.below(2)]
    } else {
        [1, 1]
    };
    // At most half the dilated kernel (PoolParams::resolve's rule).
    let effective = [0, 1].map(|d| (kernel[d] - 1) * dilation[d] + 1);
    let padding = effective.map(|e| r.below(e / 2 + 1));
    let stride = [1 + r.below(3), 1 + r.below(3)];
    let pp = PoolParams {
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode: r.below(2) == 0,
    };
    let hw = [0, 1].map(|d| (kernel[d] - 1) * dilation[d] + 1 + r.below(5));
    let shape = [n, c, hw[0], hw[1]];
    let out = pp.output_size("pool", &shape, &shape);
    (shape, PoolWindows::Sliding(pp), out)
}

/// Pooling inputs with ties, and (when `specials`) NaNs and infinities.
fn pool_values(r: &mut Rng, n: usize, d: DType, specials: bool) -> CpuStorage {
    let v: Vec<f64> = (0..n)
        .map(|_| match r.below(if specials { 12 } else { 10 }) {
            0..=4 => r.below(4) as f64 - 2.0,
            10 => f64::NAN,
            11 => f64::NEG_INFINITY,
            _ => r.float() * 2.0,
        })
        .collect();
    CpuStorage::from_vec(v).cast(&Layout::contiguous(&[n]), d)
}

/// `vals` (row-major over `l`'s shape) placed at `l`'s positions in a zero storage of `n`.
fn place_i64(vals: &[i64], l: &Layout, n: usize) -> CpuStorage {
    let mut v = vec![0i64; n];
    for (x, pos) in vals.iter().zip(l.positions()) {
        v[pos] = *x;
    }
    CpuStorage::from_vec(v)
}

#[test]
fn max_pool2d_matches_cpu() {
    let Some(dev) = gpu("max_pool2d_matches_cpu") else {
        return;
    };
    let mut r = Rng(23);
    for d in [DType::F32, DType::F64] {
        for case in 0..30 {
            let (xs, windows, out) = pool_case(&mut r, true);
            let (lx, nx) = strided(&mut r, &xs, false);
            let x = pool_values(&mut r, nx, d, case % 3 == 0);
            let what = format!("max_pool2d {d} case {case}: x {xs:?} {windows:?} out {out:?}");
            let (wv, wi) = x.max_pool2d(&lx, &windows, out);
            let (gv, gi) = up(&x, dev).max_pool2d(&lx, &windows, out);
            let lo = Layout::contiguous(&[wv.len()]);
            // The same maxima and the same (first maximal, NaN winning) indices, exactly.
            assert_close(&format!("{what} values"), &gv.to_cpu(&lo), &wv, 0.0);
            assert_close(&format!("{what} indices"), &gi.to_cpu(&lo), &wi, 0.0);
            // Backward through strided views of the gradient and the indices.
            let gs = [xs[0], xs[1], out[0], out[1]];
            let (lg, ng) = strided(&mut r, &gs, false);
            let g = values(&mut r, ng, d);
            let (li, ni) = strided(&mut r, &gs, false);
            let idx = place_i64(&wi.to_vec::<i64>(&lo), &li, ni);
            let input = [xs[2], xs[3]];
            let want = g.max_pool2d_backward(&lg, &idx, &li, input);
            let got = up(&g, dev)
                .max_pool2d_backward(&lg, &up(&idx, dev), &li, input)
                .to_cpu(&Layout::contiguous(&[want.len()]));
            assert_close(&format!("{what} backward"), &got, &want, 4.0 * tol(d));
        }
    }
}

#[test]
fn avg_pool2d_matches_cpu() {
    let Some(dev) = gpu("avg_pool2d_matches_cpu") else {
        return;
    };
    let mut r = Rng(24);
    for d in [DType::F32, DType::F64] {
        for case in 0..30 {
            let (xs, windows, out) = pool_case(&mut r, false);
            let div = AvgDivisor {
                count_include_pad: r.below(2) == 0,
                divisor_override: (r.below(4) == 0).then(|| 1 + r.below(5)),
            };
            let (lx, nx) = strided(&mut r, &xs, false);
            let x = values(&mut r, nx, d);
            let what = format!("avg_pool2d {d} case {case}: x {xs:?} {windows:?} {div:?}");
            let want = x.avg_pool2d(&lx, &windows, div, out);
            let got = up(&x, dev)
                .avg_pool2d(&lx, &windows, div, out)
                .to_cpu(&Layout::contiguous(&[want.len()]));
            assert_close(&what, &got, &want, 4.0 * tol(d));
            let gs = [xs[0], xs[1], out[0], out[1]];
            let (lg, ng) = strided(&mut r, &gs, false);
            let g = values(&mut r, ng, d);
            let input = [xs[2], xs[3]];
            let want = g.avg_pool2d_backward(&lg, &windows, div, input);
            let got = up(&g, dev)
                .avg_pool2d_backward(&lg, &windows, div, input)
                .to_cpu(&Layout::contiguous(&[want.len()]));
            assert_close(&format!("{what} backward"), &got, &want, 4.0 * tol(d));
        }
    }
}
