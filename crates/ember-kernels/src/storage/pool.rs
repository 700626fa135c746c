//! Pooling on `Storage`: device dispatch for max and average pooling over sliding or adaptive
//! windows and their backward passes. The CPU kernels are in `cpu/pool.rs`.

use crate::conv::{AvgDivisor, PoolWindows};
use crate::layout::Layout;
use crate::storage::{dispatch, operand, BackendStorage, Storage};

impl Storage {
    /// Max pooling of `(N, C, H, W)` (any strides) to `(N, C, out[0], out[1])`: the maxima and the
    /// int64 flat index within its plane of each one (the first maximal element).
    pub fn max_pool2d(
        &self,
        lx: &Layout,
        windows: &PoolWindows,
        out: [usize; 2],
    ) -> (Storage, Storage) {
        dispatch!(self, x: S => {
            let (v, i) = x.max_pool2d(lx, windows, out);
            (v.wrap(), i.wrap())
        })
    }

    /// The input gradient of a max pooling: `self`, the output gradient, added at `indices` in a
    /// zero `(N, C, input[0], input[1])`.
    pub fn max_pool2d_backward(
        &self,
        lg: &Layout,
        indices: &Storage,
        li: &Layout,
        input: [usize; 2],
    ) -> Storage {
        let dev = self.device();
        dispatch!(self, g: S => {
            let i = operand::<S>("max_pool2d", dev, indices);
            g.max_pool2d_backward(lg, i, li, input).wrap()
        })
    }

    /// Average pooling of `(N, C, H, W)` (any strides) to `(N, C, out[0], out[1])`.
    pub fn avg_pool2d(
        &self,
        lx: &Layout,
        windows: &PoolWindows,
        divisor: AvgDivisor,
        out: [usize; 2],
    ) -> Storage {
        dispatch!(self, x: S => x.avg_pool2d(lx, windows, divisor, out).wrap())
    }

    /// The input gradient of an average pooling, `(N, C, input[0], input[1])`.
    pub fn avg_pool2d_backward(
        &self,
        lg: &Layout,
        windows: &PoolWindows,
        divisor: AvgDivisor,
        input: [usize; 2],
    ) -> Storage {
        dispatch!(self, g: S => g.avg_pool2d_backward(lg, windows, divisor, input).wrap())
    }
}

#[cfg(test)]
mod tests {
    use crate::conv::{AvgDivisor, PoolParams, PoolWindows};
    use crate::dtype::DType;
    use crate::indexing::testutil::{indices, storage, strided};
    use crate::layout::Layout;
    use proptest::prelude::*;

    /// Naive max pooling straight from PyTorch's definition: over every tap `o·s - p + i·d` that
    /// falls inside the input, the first maximum (NaN-free inputs here) and its flat index.
    fn naive_max(
        x: &[f64],
        shape: [usize; 4],
        p: &PoolParams,
        out: [usize; 2],
    ) -> (Vec<f64>, Vec<i64>) {
        let [n, c, h, w] = shape;
        let (mut v, mut ix) = (vec![], vec![]);
        for o in indices(&[n, c, out[0], out[1]]) {
            // A window that reads no input (possible with dilation) keeps -inf and PyTorch's
            // index of its first in-bounds-or-after tap.
            let first = |d: usize, o: usize| {
                let mut s = (o * p.stride[d]) as isize - p.padding[d] as isize;
                while s < 0 {
                    s += p.dilation[d] as isize;
                }
                s as usize
            };
            let (mut best, mut at) = (
                f64::NEG_INFINITY,
                (first(0, o[2]) * w + first(1, o[3])) as i64,
            );
            let mut seen = false;
            for i in 0..p.kernel[0] {
                for j in 0..p.kernel[1] {
                    let ih =
                        (o[2] * p.stride[0] + i * p.dilation[0]) as isize - p.padding[0] as isize;
                    let iw =
                        (o[3] * p.stride[1] + j * p.dilation[1]) as isize - p.padding[1] as isize;
                    if ih < 0 || iw < 0 || ih as usize >= h || iw as usize >= w {
                        continue;
                    }
                    let (ih, iw) = (ih as usize, iw as usize);
                    let val = x[((o[0] * c + o[1]) * h + ih) * w + iw];
                    if !seen || val > best {
                        best = val;
                        at = (ih * w + iw) as i64;
                        seen = true;
                    }
                }
            }
            v.push(best);
            ix.push(at);
        }
        (v, ix)
    }

    /// Naive average pooling: the window's in-input sum over PyTorch's divisor.
    fn naive_avg(
        x: &[f64],
        shape: [usize; 4],
        p: &PoolParams,
        d: AvgDivisor,
        out: [usize; 2],
    ) -> Vec<f64> {
        let [n, c, h, w] = shape;
        indices(&[n, c, out[0], out[1]])
            .into_iter()
            .map(|o| {
                let hs = (o[2] * p.stride[0]) as isize - p.padding[0] as isize;
                let ws = (o[3] * p.stride[1]) as isize - p.padding[1] as isize;
                let he = (hs + p.kernel[0] as isize).min((h + p.padding[0]) as isize);
                let we = (ws + p.kernel[1] as isize).min((w + p.padding[1]) as isize);
                let padded = (he - hs) * (we - ws);
                let (h0, w0, h1, w1) =
                    (hs.max(0), ws.max(0), he.min(h as isize), we.min(w as isize));
                if h0 >= h1 || w0 >= w1 {
                    return 0.0;
                }
                let mut sum = 0.0;
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        sum += x[((o[0] * c + o[1]) * h + ih as usize) * w + iw as usize];
                    }
                }
                let div = d.divisor_override.unwrap_or(if d.count_include_pad {
                    padded as usize
                } else {
                    ((h1 - h0) * (w1 - w0)) as usize
                });
                sum / div as f64
            })
            .collect()
    }

    /// Max pooling of a `shape` input laid out by `kind` against the loops, values and indices,
    /// and its backward: each gradient lands on the recorded index. Returns the input.
    fn check_max(
        shape: [usize; 4],
        p: &PoolParams,
        kind: u8,
        dt: DType,
        seed: u64,
    ) -> Result<(crate::storage::Storage, Layout), TestCaseError> {
        let [n, c, h, w] = shape;
        let out = p.output_size("max_pool2d", &shape, &shape);
        let (lx, nx) = strided(&shape, kind & !4, 0);
        // Small integers repeat: ties must go to the first tap in row-major window order.
        let x = storage(dt, nx, seed);
        let xv = x.to_vec::<f64>(&lx);
        let (v, i) = x.max_pool2d(&lx, &PoolWindows::Sliding(*p), out);
        let (nv, ni) = naive_max(&xv, shape, p, out);
        let lo = Layout::contiguous(&[n, c, out[0], out[1]]);
        prop_assert_eq!(v.to_vec::<f64>(&lo), nv);
        prop_assert_eq!(i.to_vec::<i64>(&lo), ni.clone());
        let g = storage(dt, lo.numel(), seed ^ 9);
        let gx = g
            .max_pool2d_backward(&lo, &i, &lo, [h, w])
            .to_vec::<f64>(&Layout::contiguous(&shape));
        let mut want = vec![0.0; n * c * h * w];
        for (k, (gv, at)) in g.to_vec::<f64>(&lo).iter().zip(&ni).enumerate() {
            if (*at as usize) < h * w {
                want[(k / (out[0] * out[1])) * h * w + *at as usize] += gv;
            }
        }
        prop_assert_eq!(gx, want);
        Ok((x, lx))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Windows that tile the input (kernel = stride, no padding or dilation: `MaxPool2d(k)`),
        /// which take their own path, at sizes that do and do not divide the input.
        #[test]
        fn tiling_max_pool_matches_naive_loops(
            n in 1usize..3, c in 1usize..3, h in 1usize..12, w in 1usize..20,
            kh in 1usize..5, kw in 1usize..5, ceil in any::<bool>(),
            kind in 0u8..16, f64_ in any::<bool>(), seed in any::<u64>(),
        ) {
            prop_assume!(kh <= h && kw <= w);
            let dt = if f64_ { DType::F64 } else { DType::F32 };
            let p = PoolParams::resolve("max_pool2d", (kh, kw).into(), None, 0.into(), 1.into(), ceil);
            check_max([n, c, h, w], &p, kind, dt, seed)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Sliding max and average pooling against the loops, any input strides, and each
        /// backward against the forward's definition: the max's gradient lands on the recorded
        /// index, the average's is the adjoint (⟨avg(x), g⟩ = ⟨x, avg_backward(g)⟩).
        #[test]
        fn pooling_matches_naive_loops(
            n in 1usize..3, c in 1usize..3, h in 1usize..8, w in 1usize..20,
            kh in 1usize..4, kw in 1usize..4, sh in 1usize..4, sw in 1usize..4,
            ph in 0usize..2, pw in 0usize..2, dh in 1usize..3, dw in 1usize..3,
            ceil in any::<bool>(), cip in any::<bool>(), over in 0usize..3,
            kind in 0u8..16, f64_ in any::<bool>(), seed in any::<u64>(),
        ) {
            let dt = if f64_ { DType::F64 } else { DType::F32 };
            let (ph, pw) = (ph.min(((kh - 1) * dh).div_ceil(2)), pw.min(((kw - 1) * dw).div_ceil(2)));
            let p = PoolParams::resolve("max_pool2d", (kh, kw).into(), Some((sh, sw).into()), (ph, pw).into(), (dh, dw).into(), ceil);
            let shape = [n, c, h, w];
            let out_h = (h + 2 * ph) as isize - ((kh - 1) * dh + 1) as isize;
            let out_w = (w + 2 * pw) as isize - ((kw - 1) * dw + 1) as isize;
            prop_assume!(out_h >= 0 && out_w >= 0);
            let (x, lx) = check_max(shape, &p, kind, dt, seed)?;
            let xv = x.to_vec::<f64>(&lx);

            let ap = PoolParams { dilation: [1, 1], ..p };
            let div = AvgDivisor { count_include_pad: cip, divisor_override: (over > 0).then_some(over) };
            let aout = ap.output_size("avg_pool2d", &shape, &shape);
            let y = x.avg_pool2d(&lx, &PoolWindows::Sliding(ap), div, aout);
            let ny = naive_avg(&xv, shape, &ap, div, aout);
            let la = Layout::contiguous(&[n, c, aout[0], aout[1]]);
            for (a, b) in y.to_vec::<f64>(&la).iter().zip(&ny) {
                prop_assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{} vs {}", a, b);
            }
            let ga = storage(DType::F64, la.numel(), seed ^ 3);
            let gxa = ga.avg_pool2d_backward(&la, &PoolWindows::Sliding(ap), div, [h, w]);
            let x64 = storage(DType::F64, n * c * h * w, seed ^ 5);
            let lc = Layout::contiguous(&shape);
            let ya = x64.avg_pool2d(&lc, &PoolWindows::Sliding(ap), div, aout);
            let lhs: f64 = ya.to_vec::<f64>(&la).iter().zip(ga.to_vec::<f64>(&la)).map(|(a, b)| a * b).sum();
            let rhs: f64 = x64.to_vec::<f64>(&lc).iter().zip(gxa.to_vec::<f64>(&lc)).map(|(a, b)| a * b).sum();
            prop_assert!((lhs - rhs).abs() <= 1e-9 * (1.0 + lhs.abs()), "{} vs {}", lhs, rhs);
        }

        /// Adaptive windows tile the input: the average of the adaptive pooling to (1, 1) is the
        /// plane mean, and every window is PyTorch's [⌊o·len/out⌋, ⌈(o+1)·len/out⌉).
        #[test]
        fn adaptive_pooling_matches_naive_loops(
            h in 1usize..9, w in 1usize..9, oh in 1usize..6, ow in 1usize..6, seed in any::<u64>(),
        ) {
            let shape = [1, 2, h, w];
            let lx = Layout::contiguous(&shape);
            let x = storage(DType::F64, 2 * h * w, seed);
            let xv = x.to_vec::<f64>(&lx);
            let div = AvgDivisor { count_include_pad: false, divisor_override: None };
            let y = x.avg_pool2d(&lx, &PoolWindows::Adaptive, div, [oh, ow]).to_vec::<f64>(&Layout::contiguous(&[1, 2, oh, ow]));
            let (m, _) = x.max_pool2d(&lx, &PoolWindows::Adaptive, [oh, ow]);
            let m = m.to_vec::<f64>(&Layout::contiguous(&[1, 2, oh, ow]));
            for o in indices(&[1, 2, oh, ow]) {
                let (h0, h1) = ((o[2] * h) / oh, ((o[2] + 1) * h).div_ceil(oh));
                let (w0, w1) = ((o[3] * w) / ow, ((o[3] + 1) * w).div_ceil(ow));
                let vals: Vec<f64> = (h0..h1).flat_map(|i| (w0..w1).map(move |j| (i, j))).map(|(i, j)| xv[(o[1] * h + i) * w + j]).collect();
                let k = (o[1] * oh + o[2]) * ow + o[3];
                let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                prop_assert!((y[k] - mean).abs() < 1e-12);
                prop_assert_eq!(m[k], vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
            }
        }
    }

    /// NaN counts as the maximum (PyTorch's rule), and with no NaN ties go to the first element.
    #[test]
    fn max_pool_nan_and_ties() {
        let x = crate::storage::Storage::Cpu(crate::cpu::CpuStorage::from_vec(vec![
            1.0f32,
            3.0,
            3.0,
            f32::NAN,
            2.0,
            2.0,
            0.0,
            1.0,
        ]));
        let lx = Layout::contiguous(&[1, 1, 2, 4]);
        let p = PoolParams::resolve("max_pool2d", (2, 2).into(), None, 0.into(), 1.into(), false);
        let (v, i) = x.max_pool2d(&lx, &PoolWindows::Sliding(p), [1, 2]);
        let l = Layout::contiguous(&[1, 1, 1, 2]);
        let v = v.to_vec::<f32>(&l);
        assert_eq!(v[0], 3.0);
        assert!(v[1].is_nan());
        assert_eq!(i.to_vec::<i64>(&l), vec![1, 3]);
    }
}
