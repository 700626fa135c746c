//! Matrix products on `Storage` (matmul, batched matmul, addmm): device dispatch.

use crate::layout::Layout;
use crate::storage::{dispatch, operand, BackendStorage, Storage};

impl Storage {
    /// Batched GEMM: `la` is [B, M, K] and `rhs`'s `lb` is [B, K, N], batch dims already broadcast
    /// (stride 0 allowed) and both operands of one dtype; returns contiguous [B, M, N]. Transposed
    /// or strided operands are read in place, not copied.
    pub fn matmul(&self, la: &Layout, rhs: &Storage, lb: &Layout) -> Storage {
        let dev = self.device();
        dispatch!(self, a: S => a.matmul(la, operand::<S>("matmul", dev, rhs), lb).wrap())
    }

    /// `beta * self + alpha * (a @ b)` with `self` the bias (layout already broadcast to [M, N]),
    /// `a`: [M, K], `b`: [K, N]; returns contiguous [M, N]. `beta == 0` ignores the bias (NaNs
    /// included), as PyTorch.
    #[allow(clippy::too_many_arguments)]
    pub fn addmm(
        &self,
        lbias: &Layout,
        a: &Storage,
        la: &Layout,
        b: &Storage,
        lb: &Layout,
        beta: f64,
        alpha: f64,
    ) -> Storage {
        let dev = self.device();
        dispatch!(self, c: S => {
            let (a, b) = (operand::<S>("addmm", dev, a), operand::<S>("addmm", dev, b));
            c.addmm(lbias, a, la, b, lb, beta, alpha).wrap()
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::num::Num;
    use crate::cpu::CpuElement;
    use crate::dtype::{DType, Element, Scalar};
    use crate::indexing::testutil::{floats, slice, storage, strided};
    use crate::layout::Layout;
    use crate::storage::Storage;
    use proptest::prelude::*;

    /// Naive `alpha * a @ b (+ beta * c)` over positions, in `T`'s own arithmetic.
    fn naive<T: CpuElement>(
        (a, la): (&Storage, &Layout),
        (b, lb): (&Storage, &Layout),
        bias: Option<(&Storage, &Layout, T)>,
        alpha: T,
    ) -> Vec<T> {
        let (a, b) = (slice::<T>(a), slice::<T>(b));
        let (bs, m, k, n) = (la.shape()[0], la.shape()[1], la.shape()[2], lb.shape()[2]);
        let mut out = Vec::new();
        for bi in 0..bs {
            for i in 0..m {
                for j in 0..n {
                    let mut acc = T::ZERO;
                    for p in 0..k {
                        let x = a[la.position(&[bi, i, p])];
                        let y = b[lb.position(&[bi, p, j])];
                        acc = T::add(acc, T::mul(x, y));
                    }
                    let mut v = T::mul(alpha, acc);
                    if let Some((c, lc, beta)) = bias {
                        v = T::add(v, T::mul(beta, slice::<T>(c)[lc.position(&[i, j])]));
                    }
                    out.push(v);
                }
            }
        }
        out
    }

    fn dtype_of(i: usize) -> DType {
        [DType::U8, DType::I64, DType::F32, DType::F64][i]
    }

    macro_rules! typed {
        ($dt:expr, $T:ident => $body:expr) => {
            match $dt {
                DType::U8 => {
                    type $T = u8;
                    $body
                }
                DType::I64 => {
                    type $T = i64;
                    $body
                }
                DType::F32 => {
                    type $T = f32;
                    $body
                }
                DType::F64 => {
                    type $T = f64;
                    $body
                }
                DType::Bool => unreachable!(),
            }
        };
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Small-integer operands make every dtype's result exact, so equality is checked.
        #[test]
        fn matmul_matches_naive(
            bs in 1usize..3, m in 0usize..5, k in 0usize..5, n in 0usize..5,
            ka in 0u8..16, kb in 0u8..16, bca in 0u8..16, bcb in 0u8..16,
            dt in 0usize..4, seed in any::<u64>(),
        ) {
            let dt = dtype_of(dt);
            let (la, na) = strided(&[bs, m, k], ka, bca);
            let (lb, nb) = strided(&[bs, k, n], kb, bcb);
            let a = storage(dt, na, seed);
            let b = storage(dt, nb, seed ^ 0x9e37);
            let c = a.matmul(&la, &b, &lb);
            prop_assert_eq!(c.len(), bs * m * n);
            typed!(dt, T => {
                let want = naive::<T>((&a, &la), (&b, &lb), None, T::ONE);
                prop_assert_eq!(slice::<T>(&c), &want[..]);
            });
        }

        #[test]
        fn addmm_matches_naive(
            m in 0usize..5, k in 0usize..5, n in 0usize..5,
            ka in 0u8..16, kb in 0u8..16, kc in 0u8..16, bcc in 0u8..4,
            beta in prop::sample::select(vec![0.0, 1.0, 2.0, -1.0]),
            alpha in prop::sample::select(vec![1.0, 2.0, -1.0]),
            dt in 0usize..4, seed in any::<u64>(),
        ) {
            let dt = dtype_of(dt);
            let (la, na) = strided(&[m, k], ka, 0);
            let (lb, nb) = strided(&[k, n], kb, 0);
            let (lc, nc) = strided(&[m, n], kc, bcc);
            let a = storage(dt, na, seed);
            let b = storage(dt, nb, seed ^ 0x9e37);
            let c = storage(dt, nc, seed ^ 0x1234);
            let out = c.addmm(&lc, &a, &la, &b, &lb, beta, alpha);
            typed!(dt, T => {
                let (la3, lb3) = (la.unsqueeze(0), lb.unsqueeze(0));
                let bias = (beta != 0.0).then(|| (&c, &lc, T::from_f64(beta)));
                let want = naive::<T>((&a, &la3), (&b, &lb3), bias, T::from_f64(alpha));
                prop_assert_eq!(slice::<T>(&out), &want[..]);
            });
        }
    }

    /// Real-valued operands at sizes that cross matrixmultiply's kernel tiles, all four
    /// transpose combinations, against an f64 reference.
    fn check_float<T: CpuElement>(m: usize, k: usize, n: usize, tol: f64) {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let la = if ta {
                Layout::contiguous(&[1, k, m]).transpose(1, 2)
            } else {
                Layout::contiguous(&[1, m, k])
            };
            let lb = if tb {
                Layout::contiguous(&[1, n, k]).transpose(1, 2)
            } else {
                Layout::contiguous(&[1, k, n])
            };
            let a = floats::<T>(m * k, 7);
            let b = floats::<T>(k * n, 11);
            let c = a.matmul(&la, &b, &lb);
            let a64 = a.cast(&Layout::contiguous(&[m * k]), DType::F64);
            let b64 = b.cast(&Layout::contiguous(&[k * n]), DType::F64);
            let want = naive::<f64>((&a64, &la), (&b64, &lb), None, 1.0);
            let got = c.to_vec::<f64>(&Layout::contiguous(&[m * n]));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
    }

    #[test]
    fn float_matmul_real_values() {
        check_float::<f32>(37, 70, 19, 1e-5);
        check_float::<f64>(37, 70, 19, 1e-12);
        check_float::<f32>(1, 300, 1, 1e-5);
        // Matrix-vector products (no packing), serial and split across threads.
        check_float::<f32>(1, 50, 37, 1e-5);
        check_float::<f64>(29, 50, 1, 1e-12);
        check_float::<f32>(1, 1100, 1000, 1e-4);
        check_float::<f32>(1000, 1100, 1, 1e-4);
        // GEMMs split by rows and by columns of the output.
        check_float::<f32>(130, 1000, 20, 1e-4);
        check_float::<f64>(20, 1000, 130, 1e-12);
    }

    #[test]
    fn batch_broadcast_and_empty() {
        // b is one matrix broadcast over a batch of 3 (stride 0).
        let a = storage(DType::F32, 3 * 2 * 4, 1);
        let la = Layout::contiguous(&[3, 2, 4]);
        let b = storage(DType::F32, 4 * 5, 2);
        let lb = Layout::contiguous(&[1, 4, 5]).expand(&[3, 4, 5]);
        let c = a.matmul(&la, &b, &lb);
        assert_eq!(
            slice::<f32>(&c),
            &naive::<f32>((&a, &la), (&b, &lb), None, 1.0)[..]
        );
        // K = 0 gives zeros; M = 0 gives nothing.
        let z = Storage::full(0, Scalar::Int(0), DType::F32, crate::Device::Cpu);
        let c = z.matmul(
            &Layout::contiguous(&[2, 3, 0]),
            &z,
            &Layout::contiguous(&[2, 0, 4]),
        );
        assert_eq!(slice::<f32>(&c), &[0.0; 24]);
        let c = z.matmul(
            &Layout::contiguous(&[2, 0, 3]),
            &storage(DType::F32, 12, 3),
            &Layout::contiguous(&[2, 3, 2]),
        );
        assert!(c.is_empty());
    }

    #[test]
    fn addmm_beta_zero_ignores_nan_bias() {
        let bias = Storage::full(1, Scalar::Float(f64::NAN), DType::F32, crate::Device::Cpu);
        let lbias = Layout::contiguous(&[1]).expand(&[2, 3]);
        let a = storage(DType::F32, 8, 1);
        let b = storage(DType::F32, 12, 2);
        let (la, lb) = (Layout::contiguous(&[2, 4]), Layout::contiguous(&[4, 3]));
        let out = bias.addmm(&lbias, &a, &la, &b, &lb, 0.0, 1.0);
        let ab = a.matmul(&la.unsqueeze(0), &b, &lb.unsqueeze(0));
        assert_eq!(slice::<f32>(&out), slice::<f32>(&ab));
        // A bias row broadcast over the rows (Linear's bias).
        let row = storage(DType::F32, 3, 5);
        let lrow = Layout::contiguous(&[1, 3]).expand(&[2, 3]);
        let out = row.addmm(&lrow, &a, &la, &b, &lb, 1.0, 1.0);
        let want: Vec<f32> = (0..6)
            .map(|i| slice::<f32>(&ab)[i] + slice::<f32>(&row)[i % 3])
            .collect();
        assert_eq!(slice::<f32>(&out), &want[..]);
    }

    #[test]
    #[should_panic(
        expected = "gemm: the 2x2 operand a (offset 1, strides (2, 1)) reaches past its 4 elements"
    )]
    fn gemm_refuses_operands_outside_their_slices() {
        use crate::cpu::matmul::{Gemm, MatRef};
        let (a, b, mut c) = (vec![1f32; 4], vec![1f32; 4], vec![0f32; 4]);
        f32::gemm(
            (2, 2, 2),
            1.0,
            MatRef::new(&a, 1, 2, 1),
            MatRef::new(&b, 0, 2, 1),
            false,
            &mut c,
        );
    }

    #[test]
    #[should_panic(expected = "matmul: shapes [2, 3] and [4, 5] cannot be multiplied")]
    fn matmul_shape_mismatch() {
        let a = storage(DType::F32, 6, 1);
        let b = storage(DType::F32, 20, 1);
        a.matmul(
            &Layout::contiguous(&[1, 2, 3]),
            &b,
            &Layout::contiguous(&[1, 4, 5]),
        );
    }

    #[test]
    #[should_panic(expected = "addmm: shapes [2, 3] and [4, 5] cannot be multiplied")]
    fn addmm_shape_mismatch() {
        let a = storage(DType::F32, 20, 1);
        a.addmm(
            &Layout::contiguous(&[2, 5]),
            &a,
            &Layout::contiguous(&[2, 3]),
            &a,
            &Layout::contiguous(&[4, 5]),
            1.0,
            1.0,
        );
    }

    #[test]
    #[should_panic(expected = "matmul: not implemented for bool")]
    fn matmul_bool() {
        let a = storage(DType::Bool, 4, 1);
        let l = Layout::contiguous(&[1, 2, 2]);
        a.matmul(&l, &a, &l);
    }

    #[test]
    #[should_panic(expected = "matmul: expected both operands to have the same dtype")]
    fn matmul_dtype_mismatch() {
        let a = storage(DType::F32, 4, 1);
        let b = storage(DType::F64, 4, 1);
        let l = Layout::contiguous(&[1, 2, 2]);
        a.matmul(&l, &b, &l);
    }

    /// User + system CPU time of this process so far (Linux `/proc/self/stat`, 100 Hz ticks).
    fn cpu_seconds() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let rest = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
    }

    /// Throughput of the f32 GEMM path; run with
    /// `cargo test -p ember-kernels --release -- --ignored --nocapture gemm_gflops`.
    #[test]
    #[ignore]
    fn gemm_gflops() {
        for (m, k, n) in [
            (64, 784, 128),
            (784, 64, 128),
            (512, 512, 512),
            (1024, 1024, 1024),
        ] {
            let a = floats::<f32>(m * k, 1);
            let b = floats::<f32>(k * n, 2);
            let cases = [
                (
                    "a @ b    ",
                    Layout::contiguous(&[1, m, k]),
                    Layout::contiguous(&[1, k, n]),
                ),
                (
                    "a.t() @ b",
                    Layout::contiguous(&[1, k, m]).transpose(1, 2),
                    Layout::contiguous(&[1, k, n]),
                ),
                (
                    "a @ b.t()",
                    Layout::contiguous(&[1, m, k]),
                    Layout::contiguous(&[1, n, k]).transpose(1, 2),
                ),
            ];
            for (name, la, lb) in cases {
                let flops = 2.0 * (m * k * n) as f64;
                let iters = ((2e10 / flops) as usize).clamp(3, 2000);
                for _ in 0..2 {
                    std::hint::black_box(a.matmul(&la, &b, &lb));
                }
                let (t, cpu0) = (std::time::Instant::now(), cpu_seconds());
                for _ in 0..iters {
                    std::hint::black_box(a.matmul(&la, &b, &lb));
                }
                let s = t.elapsed().as_secs_f64() / iters as f64;
                let cpu = (cpu_seconds() - cpu0) / iters as f64;
                // Per CPU-second too: the shared machine's other jobs steal wall time.
                println!(
                    "({m:4},{k:4},{n:4}) {name}: {:8.1} us  {:6.1} GFLOP/s wall  {:6.1} GFLOP per CPU-s",
                    s * 1e6,
                    flops / s / 1e9,
                    flops / cpu / 1e9
                );
            }
        }
    }
}
