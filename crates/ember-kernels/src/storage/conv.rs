//! Convolutions on `Storage`: device dispatch for the forward, the input gradient (also the
//! transposed convolution) and the weight gradient. Shapes are validated by the caller with
//! `conv::check_conv`; the CPU kernels are in `cpu/conv.rs`.

use crate::conv::ConvParams;
use crate::layout::Layout;
use crate::storage::{dispatch, operand, BackendStorage, Storage};

impl Storage {
    /// 2-D convolution of the input `(N, C_in, H, W)` (any strides) with the weight
    /// `(C_out, C_in / groups, kH, kW)` and an optional bias `(C_out)`, all one float dtype;
    /// returns contiguous `(N, C_out, out[0], out[1])`.
    pub fn conv2d(
        &self,
        lx: &Layout,
        w: &Storage,
        lw: &Layout,
        bias: Option<(&Storage, &Layout)>,
        p: &ConvParams,
        out: [usize; 2],
    ) -> Storage {
        let dev = self.device();
        dispatch!(self, x: S => {
            let w = operand::<S>("conv2d", dev, w);
            let b = bias.map(|(b, lb)| (operand::<S>("conv2d", dev, b), lb));
            x.conv2d(lx, w, lw, b, p, out).wrap()
        })
    }

    /// The input gradient of a 2-D convolution, i.e. the transposed convolution of `self`
    /// `(N, C_out, H_out, W_out)` with the weight `(C_out, C_in / groups, kH, kW)`; returns
    /// contiguous `(N, C_in, input[0], input[1])`.
    pub fn conv2d_backward_input(
        &self,
        lg: &Layout,
        w: &Storage,
        lw: &Layout,
        p: &ConvParams,
        input: [usize; 2],
    ) -> Storage {
        let dev = self.device();
        dispatch!(self, g: S => {
            let w = operand::<S>("conv2d", dev, w);
            g.conv2d_backward_input(lg, w, lw, p, input).wrap()
        })
    }

    /// The weight gradient of a 2-D convolution of `self` (the input) given the output gradient
    /// `gy`; returns contiguous `(C_out, C_in / groups, kernel[0], kernel[1])`.
    pub fn conv2d_backward_weight(
        &self,
        lx: &Layout,
        gy: &Storage,
        lg: &Layout,
        p: &ConvParams,
        kernel: [usize; 2],
    ) -> Storage {
        let dev = self.device();
        dispatch!(self, x: S => {
            let g = operand::<S>("conv2d", dev, gy);
            x.conv2d_backward_weight(lx, g, lg, p, kernel).wrap()
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::conv::{ConvParams, Padding};
    use crate::dtype::DType;
    use crate::indexing::testutil::{floats, indices, storage, strided};
    use crate::layout::Layout;
    use crate::storage::Storage;
    use proptest::prelude::*;

    /// One convolution's sizes and parameters.
    #[derive(Clone, Debug)]
    struct Case {
        n: usize,
        groups: usize,
        cg: usize,
        og: usize,
        hw: [usize; 2],
        k: [usize; 2],
        p: ConvParams,
        out: [usize; 2],
    }

    impl Case {
        fn x_shape(&self) -> [usize; 4] {
            [self.n, self.cg * self.groups, self.hw[0], self.hw[1]]
        }
        fn w_shape(&self) -> [usize; 4] {
            [self.og * self.groups, self.cg, self.k[0], self.k[1]]
        }
        fn y_shape(&self) -> [usize; 4] {
            [self.n, self.og * self.groups, self.out[0], self.out[1]]
        }
        /// The input position output (oh, ow) reads at kernel tap (i, j), if inside the input.
        fn tap(&self, oh: usize, ow: usize, i: usize, j: usize) -> Option<(usize, usize)> {
            let at = |d: usize, o: usize, t: usize| {
                let v = (o * self.p.stride[d] + t * self.p.dilation[d]) as isize
                    - self.p.padding[d][0] as isize;
                (v >= 0 && (v as usize) < self.hw[d]).then_some(v as usize)
            };
            Some((at(0, oh, i)?, at(1, ow, j)?))
        }
    }

    fn val(s: &Storage, l: &Layout, idx: &[usize]) -> f64 {
        s.to_vec::<f64>(&Layout::new(&[1], &[1], l.position(idx)))[0]
    }

    /// Naive nested loops: the forward, the input gradient and the weight gradient.
    fn naive(
        c: &Case,
        (x, lx): (&Storage, &Layout),
        (w, lw): (&Storage, &Layout),
        (gy, lg): (&Storage, &Layout),
    ) -> [Vec<f64>; 3] {
        let (xs, ws, ys) = (c.x_shape(), c.w_shape(), c.y_shape());
        let mut y = vec![0.0; ys.iter().product()];
        let mut gx = vec![0.0; xs.iter().product()];
        let mut gw = vec![0.0; ws.iter().product()];
        let flat =
            |s: &[usize; 4], i: [usize; 4]| ((i[0] * s[1] + i[1]) * s[2] + i[2]) * s[3] + i[3];
        for o in indices(&ys) {
            let (ni, co, oh, ow) = (o[0], o[1], o[2], o[3]);
            let gi = co / c.og;
            let g = val(gy, lg, &o);
            for ci in 0..c.cg {
                for i in 0..c.k[0] {
                    for j in 0..c.k[1] {
                        if let Some((ih, iw)) = c.tap(oh, ow, i, j) {
                            let xi = [ni, gi * c.cg + ci, ih, iw];
                            let wi = [co, ci, i, j];
                            let (xv, wv) = (val(x, lx, &xi), val(w, lw, &wi));
                            y[flat(&ys, [ni, co, oh, ow])] += xv * wv;
                            gx[flat(&xs, xi)] += g * wv;
                            gw[flat(&ws, wi)] += g * xv;
                        }
                    }
                }
            }
        }
        [y, gx, gw]
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            (1usize..3, 1usize..4, 1usize..3, 1usize..3),
            (1usize..4, 1usize..4, 1usize..3, 1usize..3),
            (
                1usize..3,
                1usize..3,
                0usize..3,
                0usize..3,
                0usize..3,
                0usize..3,
            ),
            (1usize..6, 1usize..6),
        )
            .prop_map(
                |((n, groups, cg, og), (kh, kw, sh, sw), (dh, dw, p0, p1, p2, p3), (eh, ew))| {
                    let p = ConvParams {
                        stride: [sh, sw],
                        padding: [[p0, p1], [p2, p3]],
                        dilation: [dh, dw],
                        groups,
                    };
                    // An input at least as large as the dilated kernel (padding included).
                    let hw = [0, 1].map(|d| {
                        let need = p.dilated(d, [kh, kw][d]);
                        let pad = p.padding[d][0] + p.padding[d][1];
                        need.saturating_sub(pad).max(1) + [eh, ew][d] - 1
                    });
                    let out = p.output_size("conv2d", hw, [kh, kw]);
                    Case {
                        n,
                        groups,
                        cg,
                        og,
                        hw,
                        k: [kh, kw],
                        p,
                        out,
                    }
                },
            )
    }

    fn close(got: &Storage, want: &[f64], shape: &[usize], tol: f64) -> Result<(), TestCaseError> {
        let g = got.to_vec::<f64>(&Layout::contiguous(shape));
        prop_assert_eq!(g.len(), want.len());
        for (i, (a, b)) in g.iter().zip(want).enumerate() {
            prop_assert!(
                (a - b).abs() <= tol * (1.0 + b.abs()),
                "element {}: {} vs {}",
                i,
                a,
                b
            );
        }
        Ok(())
    }

    /// Runs the three kernels on `c` with operand layouts chosen by `kx`, `kw`, `kg` (see
    /// `strided`) and compares them with the nested loops: small integers make every sum exact in
    /// f32 and f64, so they must match exactly.
    #[allow(clippy::too_many_arguments)]
    fn check(
        c: &Case,
        kx: u8,
        kw: u8,
        kg: u8,
        f64_: bool,
        bias: bool,
        seed: u64,
    ) -> Result<(), TestCaseError> {
        let dt = if f64_ { DType::F64 } else { DType::F32 };
        let (lx, nx) = strided(&c.x_shape(), kx & !4, 0);
        let (lw, nw) = strided(&c.w_shape(), kw & !4, 0);
        let (lg, ng) = strided(&c.y_shape(), kg & !4, 0);
        let (x, w, gy) = (
            storage(dt, nx, seed),
            storage(dt, nw, seed ^ 0x55),
            storage(dt, ng, seed ^ 0xaa),
        );
        let b = storage(dt, c.og * c.groups, seed ^ 0x77);
        let lb = Layout::contiguous(&[c.og * c.groups]);
        let y = x.conv2d(&lx, &w, &lw, bias.then_some((&b, &lb)), &c.p, c.out);
        let [mut ny, ngx, ngw] = naive(c, (&x, &lx), (&w, &lw), (&gy, &lg));
        if bias {
            let bv = b.to_vec::<f64>(&lb);
            for (i, v) in ny.iter_mut().enumerate() {
                *v += bv[(i / (c.out[0] * c.out[1])) % (c.og * c.groups)];
            }
        }
        close(&y, &ny, &c.y_shape(), 0.0)?;
        let gx = gy.conv2d_backward_input(&lg, &w, &lw, &c.p, c.hw);
        close(&gx, &ngx, &c.x_shape(), 0.0)?;
        let gw = x.conv2d_backward_weight(&lx, &gy, &lg, &c.p, c.k);
        close(&gw, &ngw, &c.w_shape(), 0.0)?;
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// The three kernels match the nested loops exactly, for any operand strides (sliced,
        /// permuted, broadcast).
        #[test]
        fn conv_kernels_match_naive_loops(
            c in case(), kx in 0u8..16, kw in 0u8..16, kg in 0u8..16,
            f64_ in any::<bool>(), bias in any::<bool>(), seed in any::<u64>(),
        ) {
            check(&c, kx, kw, kg, f64_, bias, seed)?;
        }
    }

    /// Stride-1 "same" convolutions over contiguous operands take the path that copies (and adds
    /// back) whole runs of rows at once, with the padding between rows zeroed: every such shape
    /// of the CNN kind, odd and even kernels, dilated, asymmetric padding, and a stride-2 row
    /// step that must not take it.
    #[test]
    fn same_convolutions_match_naive_loops() {
        let same = |hw: [usize; 2], k: [usize; 2], padding: [[usize; 2]; 2], dilation, stride| {
            let p = ConvParams {
                stride,
                padding,
                dilation,
                groups: 1,
            };
            let out = p.output_size("conv2d", hw, k);
            Case {
                n: 2,
                groups: 1,
                cg: 3,
                og: 2,
                hw,
                k,
                p,
                out,
            }
        };
        let cases = [
            same([5, 4], [3, 3], [[1, 1], [1, 1]], [1, 1], [1, 1]),
            same([6, 7], [5, 3], [[2, 2], [1, 1]], [1, 1], [1, 1]),
            same([6, 6], [3, 3], [[2, 2], [2, 2]], [2, 2], [1, 1]),
            same([4, 5], [2, 2], [[0, 1], [1, 0]], [1, 1], [1, 1]),
            same([7, 5], [3, 3], [[1, 1], [1, 1]], [1, 1], [2, 1]),
            same([3, 1], [3, 1], [[1, 1], [0, 0]], [1, 1], [1, 1]),
        ];
        for (i, c) in cases.iter().enumerate() {
            for f64_ in [false, true] {
                check(c, 0, 0, 0, f64_, i % 2 == 0, i as u64).unwrap();
            }
        }
    }

    /// A convolution large enough to run its samples in parallel, with real values: same results
    /// as the loops, and bit-identical on 1 and 2 threads.
    #[test]
    fn large_convolution_is_parallel_and_deterministic() {
        let c = Case {
            n: 9,
            groups: 2,
            cg: 8,
            og: 8,
            hw: [14, 13],
            k: [3, 3],
            p: ConvParams::resolve("conv2d", 1.into(), Padding::Same, 1.into(), 2, [3, 3]),
            out: [14, 13],
        };
        // A channels-last input: permuted, not contiguous.
        let [n, ci, h, wd] = c.x_shape();
        let lx = Layout::contiguous(&[n, h, wd, ci]).permute(&[0, 3, 1, 2]);
        let lw = Layout::contiguous(&c.w_shape());
        let lg = Layout::contiguous(&c.y_shape());
        let x = floats::<f64>(lx.numel(), 1);
        let w = floats::<f64>(lw.numel(), 2);
        let gy = floats::<f64>(lg.numel(), 3);
        let run = || {
            (
                x.conv2d(&lx, &w, &lw, None, &c.p, c.out).to_vec::<f64>(&lg),
                gy.conv2d_backward_input(&lg, &w, &lw, &c.p, c.hw)
                    .to_vec::<f64>(&Layout::contiguous(&c.x_shape())),
                x.conv2d_backward_weight(&lx, &gy, &lg, &c.p, c.k)
                    .to_vec::<f64>(&lw),
            )
        };
        let pool = |t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
        };
        let one = pool(1).install(run);
        let two = pool(2).install(run);
        assert_eq!(one, two, "1 and 2 threads differ");
        let want = naive(&c, (&x, &lx), (&w, &lw), (&gy, &lg));
        for (got, want) in [&one.0, &one.1, &one.2].into_iter().zip(&want) {
            for (a, b) in got.iter().zip(want) {
                assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }
}
