//! Indexing ops on `Storage` (index_select, gather, scatter, masked_fill, cat, one_hot): device
//! dispatch (the shape rule of `cat`, shared by every device, is in `shape.rs`).

use crate::dtype::Scalar;
use crate::layout::Layout;
pub use crate::shape::cat_shape;
use crate::storage::{dispatch, operand, BackendStorage, Storage};

impl Storage {
    /// `torch.index_select`: slices of `dim` picked by the 1-D integer (i64 or u8) `index`, into
    /// a new contiguous storage of the input's shape with `dim` resized to the index length.
    /// Negative or too large indices panic naming the op, index, dim and size.
    pub fn index_select(&self, l: &Layout, dim: usize, index: &Storage, li: &Layout) -> Storage {
        let dev = self.device();
        dispatch!(self, s: S => {
            s.index_select(l, dim, operand::<S>("index_select", dev, index), li).wrap()
        })
    }

    /// `torch.gather` along `dim`; the output (contiguous) has the index's shape, which may be
    /// smaller than the input outside `dim`.
    pub fn gather(&self, l: &Layout, dim: usize, index: &Storage, li: &Layout) -> Storage {
        let dev = self.device();
        dispatch!(self, s: S => s.gather(l, dim, operand::<S>("gather", dev, index), li).wrap())
    }

    /// Out-of-place `scatter` (or `scatter_add` when `add`): a contiguous copy of `self` with the
    /// first `index.shape` region of `src` (same dtype) written (added) at the indexed positions.
    #[allow(clippy::too_many_arguments)]
    pub fn scatter(
        &self,
        l: &Layout,
        dim: usize,
        index: &Storage,
        li: &Layout,
        src: &Storage,
        ls: &Layout,
        add: bool,
    ) -> Storage {
        let dev = self.device();
        dispatch!(self, s: S => {
            let (i, x) = (operand::<S>("scatter", dev, index), operand::<S>("scatter", dev, src));
            s.scatter(l, dim, i, li, x, ls, add).wrap()
        })
    }

    /// In-place `scatter_add_` into the elements of `self` selected by `l`.
    pub fn scatter_add_inplace(
        &mut self,
        l: &Layout,
        dim: usize,
        index: &Storage,
        li: &Layout,
        src: &Storage,
        ls: &Layout,
    ) {
        let dev = self.device();
        dispatch!(self, s: S => {
            let i = operand::<S>("scatter_add_", dev, index);
            let x = operand::<S>("scatter_add_", dev, src);
            s.scatter_add_inplace(l, dim, i, li, x, ls)
        })
    }

    /// `masked_fill`: `value` where the bool `mask` (layout broadcast to `l`'s shape) is true,
    /// the input elsewhere, into a new contiguous storage.
    pub fn masked_fill(&self, l: &Layout, mask: &Storage, lm: &Layout, value: Scalar) -> Storage {
        let dev = self.device();
        dispatch!(self, s: S => {
            s.masked_fill(l, operand::<S>("masked_fill", dev, mask), lm, value).wrap()
        })
    }

    /// `torch.cat` along `dim` into a new contiguous storage of shape [`cat_shape`]; all parts
    /// share a dtype and device.
    pub fn cat(parts: &[(&Storage, &Layout)], dim: usize) -> Storage {
        let first = parts
            .first()
            .expect("cat: expected a non-empty list of Tensors")
            .0;
        let dev = first.device();
        dispatch!(first, _f: S => {
            let on: Vec<(&S, &Layout)> =
                parts.iter().map(|(s, l)| (operand::<S>("cat", dev, s), *l)).collect();
            S::cat(&on, dim).wrap()
        })
    }

    /// `nn.functional.one_hot` of int64 indices: an int64 storage of shape
    /// `l.shape + [num_classes]`.
    pub fn one_hot(&self, l: &Layout, num_classes: usize) -> Storage {
        dispatch!(self, s: S => s.one_hot(l, num_classes).wrap())
    }
}

/// Helpers shared by the kernel tests: random strided layouts and storages.
#[cfg(test)]
pub(crate) mod testutil {
    use crate::cpu::{CpuElement, CpuStorage};
    use crate::dtype::DType;
    use crate::layout::Layout;
    use crate::shape::{contiguous_strides, numel};
    use crate::storage::Storage;

    /// A layout of logical `shape` and the storage length it needs. `kind` bit 0 slices a larger
    /// base with step 2 (step 1, i.e. `narrow`, when bit 3 is also set), bit 1 reverses the base's dim order (a permuted view), bit 2 expands the
    /// dims whose bit is set in `bcast` from size 1 (stride 0). Otherwise contiguous at offset 3.
    pub fn strided(shape: &[usize], kind: u8, bcast: u8) -> (Layout, usize) {
        let nd = shape.len();
        let s1: Vec<usize> = (0..nd)
            .map(|d| {
                if kind & 4 != 0 && (bcast >> d) & 1 == 1 {
                    1
                } else {
                    shape[d]
                }
            })
            .collect();
        let perm = kind & 2 != 0;
        let s2: Vec<usize> = if perm {
            s1.iter().rev().copied().collect()
        } else {
            s1
        };
        let (base, len) = if kind & 1 != 0 {
            let step = if kind & 8 != 0 { 1 } else { 2 };
            let s3: Vec<usize> = s2.iter().map(|&n| step * n + 1).collect();
            let mut l = Layout::contiguous(&s3);
            for (d, &n) in s2.iter().enumerate() {
                l = if n == 0 {
                    l.slice(d, 0, 0, 1)
                } else {
                    l.slice(d, 1, 2 + step * (n - 1), step)
                };
            }
            (l, numel(&s3))
        } else {
            (
                Layout::new(&s2, &contiguous_strides(&s2), 3),
                numel(&s2) + 3,
            )
        };
        let l = if perm {
            base.permute(&(0..nd).rev().collect::<Vec<_>>())
        } else {
            base
        };
        (l.expand(shape), len)
    }

    /// `n` pseudo-random small integers (-3..=3) from `seed`, converted to `dtype`.
    pub fn storage(dtype: DType, n: usize, seed: u64) -> Storage {
        let mut x = seed | 1;
        let v: Vec<i64> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 7) as i64 - 3
            })
            .collect();
        Storage::Cpu(CpuStorage::from_vec(v).cast(&Layout::contiguous(&[n]), dtype))
    }

    /// Uniform floats in [-1, 1) from `seed`.
    pub fn floats<T: CpuElement>(n: usize, seed: u64) -> Storage {
        let mut x = seed | 1;
        let v: Vec<f64> = (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
            })
            .collect();
        Storage::Cpu(CpuStorage::from_vec(v).cast(&Layout::contiguous(&[n]), T::DTYPE))
    }

    /// The typed host slice of a CPU storage.
    pub fn slice<T: CpuElement>(s: &Storage) -> &[T] {
        s.as_cpu().unwrap().as_slice::<T>()
    }

    /// Every multi-index of `shape` in row-major order.
    pub fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
        let n = numel(shape);
        (0..n)
            .map(|mut i| {
                let mut idx = vec![0; shape.len()];
                for d in (0..shape.len()).rev() {
                    idx[d] = i % shape[d];
                    i /= shape[d];
                }
                idx
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{indices, slice, storage, strided};
    use crate::cpu::num::Num;
    use crate::cpu::{CpuElement, CpuStorage};
    use crate::dtype::{DType, Scalar};
    use crate::layout::Layout;
    use crate::storage::Storage;
    use proptest::prelude::*;

    fn dtype_of(i: usize) -> DType {
        DType::ALL[i]
    }

    /// Runs `$body` with `$T` the Rust type of dtype `$dt`.
    macro_rules! typed {
        ($dt:expr, $T:ident => $body:expr) => {
            match $dt {
                DType::Bool => {
                    type $T = bool;
                    $body
                }
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
            }
        };
    }

    /// A storage of i64 (or u8) index values, laid out by `kind` as a strided view.
    fn index_storage(vals: &[i64], shape: &[usize], kind: u8, u8_index: bool) -> (Storage, Layout) {
        let (l, n) = strided(shape, kind & 11, 0);
        let mut data = vec![0i64; n];
        for (p, &v) in l.positions().zip(vals) {
            data[p] = v;
        }
        let s = Storage::Cpu(CpuStorage::from_vec(data));
        if u8_index {
            (s.cast(&Layout::contiguous(&[n]), DType::U8), l)
        } else {
            (s, l)
        }
    }

    fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(0usize..4, 1..4)
    }

    /// Values of `s` at `l`'s element `idx`.
    fn at<T: CpuElement>(s: &Storage, l: &Layout, idx: &[usize]) -> T {
        slice::<T>(s)[l.position(idx)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn index_select_matches_naive(
            shape in shape_strategy(), dim in 0usize..3, kind in 0u8..16, bc in 0u8..16,
            raw in prop::collection::vec(0usize..100, 0..6), ikind in 0u8..16, u8i in any::<bool>(),
            dt in 0usize..5, seed in any::<u64>(),
        ) {
            let dim = dim % shape.len();
            let size = shape[dim];
            prop_assume!(size > 0 || raw.is_empty());
            let vals: Vec<i64> = raw.iter().map(|&r| (r % size.max(1)) as i64).collect();
            let (li_s, li) = index_storage(&vals, &[vals.len()], ikind, u8i);
            let (l, n) = strided(&shape, kind, bc);
            let dt = dtype_of(dt);
            let x = storage(dt, n, seed);
            let out = x.index_select(&l, dim, &li_s, &li);
            let mut oshape = shape.clone();
            oshape[dim] = vals.len();
            typed!(dt, T => {
                let want: Vec<T> = indices(&oshape).iter().map(|i| {
                    let mut j = i.clone();
                    j[dim] = vals[i[dim]] as usize;
                    at::<T>(&x, &l, &j)
                }).collect();
                prop_assert_eq!(slice::<T>(&out), &want[..]);
            });
        }

        #[test]
        fn gather_matches_naive(
            shape in shape_strategy(), ishape_raw in prop::collection::vec(0usize..4, 3),
            dim in 0usize..3, kind in 0u8..16, bc in 0u8..16, ikind in 0u8..16, u8i in any::<bool>(),
            dt in 0usize..5, seed in any::<u64>(),
        ) {
            let nd = shape.len();
            let dim = dim % nd;
            prop_assume!(shape[dim] > 0);
            // Index no larger than the input outside `dim`, any length along it.
            let ishape: Vec<usize> = (0..nd)
                .map(|d| if d == dim { ishape_raw[d] } else { ishape_raw[d].min(shape[d]) })
                .collect();
            let vals: Vec<i64> = (0..ishape.iter().product::<usize>())
                .map(|i| ((i as u64 * 7 + seed % 13) % shape[dim] as u64) as i64)
                .collect();
            let (li_s, li) = index_storage(&vals, &ishape, ikind, u8i);
            let (l, n) = strided(&shape, kind, bc);
            let dt = dtype_of(dt);
            let x = storage(dt, n, seed);
            let out = x.gather(&l, dim, &li_s, &li);
            typed!(dt, T => {
                let want: Vec<T> = indices(&ishape).iter().zip(&vals).map(|(i, &v)| {
                    let mut j = i.clone();
                    j[dim] = v as usize;
                    at::<T>(&x, &l, &j)
                }).collect();
                prop_assert_eq!(slice::<T>(&out), &want[..]);
            });
        }

        #[test]
        fn scatter_matches_naive(
            shape in shape_strategy(), ishape_raw in prop::collection::vec(0usize..4, 3),
            dim in 0usize..3, kind in 0u8..16, bc in 0u8..16, skind in 0u8..16, ikind in 0u8..16,
            add in any::<bool>(), inplace in any::<bool>(), dt in 0usize..5, seed in any::<u64>(),
        ) {
            let nd = shape.len();
            let dim = dim % nd;
            prop_assume!(shape[dim] > 0);
            let ishape: Vec<usize> = (0..nd)
                .map(|d| if d == dim { ishape_raw[d] } else { ishape_raw[d].min(shape[d]) })
                .collect();
            // src is at least as large as the index (one extra row along dim 0).
            let mut sshape = ishape.clone();
            sshape[0] += 1;
            let vals: Vec<i64> = (0..ishape.iter().product::<usize>())
                .map(|i| ((i as u64 * 5 + seed % 11) % shape[dim] as u64) as i64)
                .collect();
            let (li_s, li) = index_storage(&vals, &ishape, ikind, false);
            // In place needs a destination without broadcast dims.
            let (l, n) = strided(&shape, if inplace { kind & 11 } else { kind }, bc);
            let (ls, ns) = strided(&sshape, skind, seed as u8);
            let dt = dtype_of(dt);
            let x = storage(dt, n, seed);
            let src = storage(dt, ns, seed ^ 77);
            typed!(dt, T => {
                let mut want: Vec<T> = indices(&shape).iter().map(|i| at::<T>(&x, &l, i)).collect();
                let cl = Layout::contiguous(&shape);
                for (i, &v) in indices(&ishape).iter().zip(&vals) {
                    let mut j = i.clone();
                    j[dim] = v as usize;
                    let p = cl.position(&j);
                    let s: T = at(&src, &ls, i);
                    want[p] = if add { T::add(want[p], s) } else { s };
                }
                if inplace && add {
                    let mut y = x.clone();
                    y.scatter_add_inplace(&l, dim, &li_s, &li, &src, &ls);
                    let got: Vec<T> = indices(&shape).iter().map(|i| at::<T>(&y, &l, i)).collect();
                    prop_assert_eq!(got, want);
                } else {
                    let out = x.scatter(&l, dim, &li_s, &li, &src, &ls, add);
                    prop_assert_eq!(slice::<T>(&out), &want[..]);
                }
            });
        }

        #[test]
        fn masked_fill_matches_naive(
            shape in shape_strategy(), kind in 0u8..16, bc in 0u8..16, mkind in 0u8..16, mbc in 0u8..16,
            dt in 0usize..5, seed in any::<u64>(),
        ) {
            let (l, n) = strided(&shape, kind, bc);
            let (lm, nm) = strided(&shape, mkind, mbc);
            let dt = dtype_of(dt);
            let x = storage(dt, n, seed);
            let m = storage(DType::Bool, nm, seed ^ 5);
            let v = Scalar::Int(2);
            let out = x.masked_fill(&l, &m, &lm, v);
            typed!(dt, T => {
                let want: Vec<T> = indices(&shape).iter().map(|i| {
                    if at::<bool>(&m, &lm, i) { v.to_elem() } else { at::<T>(&x, &l, i) }
                }).collect();
                prop_assert_eq!(slice::<T>(&out), &want[..]);
            });
        }

        #[test]
        fn cat_matches_naive(
            shape in shape_strategy(), dim in 0usize..3,
            sizes in prop::collection::vec(0usize..4, 1..4),
            kinds in prop::collection::vec((0u8..16, 0u8..16), 4),
            dt in 0usize..5, seed in any::<u64>(),
        ) {
            let dim = dim % shape.len();
            let dt = dtype_of(dt);
            let parts: Vec<(Storage, Layout)> = sizes.iter().enumerate().map(|(p, &sz)| {
                let mut s = shape.clone();
                s[dim] = sz;
                let (l, n) = strided(&s, kinds[p].0, kinds[p].1);
                (storage(dt, n, seed.wrapping_add(p as u64)), l)
            }).collect();
            let refs: Vec<(&Storage, &Layout)> = parts.iter().map(|(s, l)| (s, l)).collect();
            let out = Storage::cat(&refs, dim);
            let shapes: Vec<&[usize]> = parts.iter().map(|(_, l)| l.shape()).collect();
            let oshape = super::cat_shape(&shapes, dim);
            typed!(dt, T => {
                let want: Vec<T> = indices(&oshape).iter().map(|i| {
                    let (mut j, mut p) = (i.clone(), 0);
                    while j[dim] >= sizes[p] {
                        j[dim] -= sizes[p];
                        p += 1;
                    }
                    at::<T>(&parts[p].0, &parts[p].1, &j)
                }).collect();
                prop_assert_eq!(slice::<T>(&out), &want[..]);
            });
        }

        #[test]
        fn one_hot_matches_naive(
            shape in prop::collection::vec(0usize..4, 0..3), kind in 0u8..16, bc in 0u8..16,
            c in 1usize..5, seed in any::<u64>(),
        ) {
            let (l, n) = strided(&shape, kind, bc);
            let x = storage(DType::I64, n, seed).binary_scalar(
                &Layout::contiguous(&[n]), Scalar::Int(3), crate::op::BinaryOp::Add, false, DType::I64);
            let x = x.binary_scalar(
                &Layout::contiguous(&[n]), Scalar::Int(c as i64), crate::op::BinaryOp::Minimum, false, DType::I64);
            let x = x.binary_scalar(
                &Layout::contiguous(&[n]), Scalar::Int(c as i64 - 1), crate::op::BinaryOp::Minimum, false, DType::I64);
            let out = x.one_hot(&l, c);
            let want: Vec<i64> = indices(&shape).iter().flat_map(|i| {
                let v = at::<i64>(&x, &l, i) as usize;
                (0..c).map(move |k| (k == v) as i64)
            }).collect();
            prop_assert_eq!(slice::<i64>(&out), &want[..]);
        }
    }

    #[test]
    fn index_select_large_rows_parallel() {
        // Big enough to take the parallel row-copy path, for dim 0 and dim 1.
        let x = storage(DType::F32, 300 * 200, 3);
        let l = Layout::contiguous(&[300, 200]);
        let idx: Vec<i64> = (0..500).map(|i| (i * 37 % 300) as i64).collect();
        let (is, il) = (
            Storage::Cpu(CpuStorage::from_vec(idx.clone())),
            Layout::contiguous(&[500]),
        );
        let out = x.index_select(&l, 0, &is, &il);
        for (r, &i) in idx.iter().enumerate() {
            let i = i as usize;
            assert_eq!(
                &slice::<f32>(&out)[r * 200..(r + 1) * 200],
                &slice::<f32>(&x)[i * 200..(i + 1) * 200]
            );
        }
        let idx1: Vec<i64> = (0..500).map(|i| (i * 13 % 200) as i64).collect();
        let is1 = Storage::Cpu(CpuStorage::from_vec(idx1.clone()));
        let out = x.index_select(&l, 1, &is1, &il);
        for r in 0..300 {
            for (c, &j) in idx1.iter().enumerate() {
                assert_eq!(
                    slice::<f32>(&out)[r * 500 + c],
                    slice::<f32>(&x)[r * 200 + j as usize]
                );
            }
        }
    }

    #[test]
    fn cat_large_and_legacy_empty() {
        let a = storage(DType::F64, 400 * 100, 1);
        let b = storage(DType::F64, 400 * 50, 2);
        let la = Layout::contiguous(&[400, 100]);
        let lb = Layout::contiguous(&[50, 400]).transpose(0, 1);
        let e = storage(DType::F64, 0, 3);
        let le = Layout::contiguous(&[0]);
        let out = Storage::cat(&[(&a, &la), (&e, &le), (&b, &lb)], 1);
        assert_eq!(
            super::cat_shape(&[la.shape(), le.shape(), lb.shape()], 1).as_slice(),
            &[400, 150]
        );
        let o = slice::<f64>(&out);
        for r in 0..400 {
            assert_eq!(
                &o[r * 150..r * 150 + 100],
                &slice::<f64>(&a)[r * 100..][..100]
            );
            for c in 0..50 {
                assert_eq!(o[r * 150 + 100 + c], slice::<f64>(&b)[c * 400 + r]);
            }
        }
    }

    #[test]
    #[should_panic(expected = "index_select: index 7 is out of bounds for dimension 0 with size 5")]
    fn index_select_out_of_range() {
        let x = storage(DType::F32, 10, 1);
        let i = Storage::Cpu(CpuStorage::from_vec(vec![1i64, 7]));
        x.index_select(
            &Layout::contiguous(&[5, 2]),
            0,
            &i,
            &Layout::contiguous(&[2]),
        );
    }

    #[test]
    #[should_panic(
        expected = "index_select: index -1 is out of bounds for dimension 1 with size 2"
    )]
    fn index_select_negative() {
        let x = storage(DType::F32, 10, 1);
        let i = Storage::Cpu(CpuStorage::from_vec(vec![-1i64]));
        x.index_select(
            &Layout::contiguous(&[5, 2]),
            1,
            &i,
            &Layout::contiguous(&[1]),
        );
    }

    #[test]
    #[should_panic(expected = "index_select(): Expected dtype int64 for index, got torch.float32")]
    fn index_select_float_index() {
        let x = storage(DType::F32, 10, 1);
        x.index_select(
            &Layout::contiguous(&[5, 2]),
            0,
            &x,
            &Layout::contiguous(&[2]),
        );
    }

    #[test]
    #[should_panic(expected = "gather: index 4 is out of bounds for dimension 1 with size 4")]
    fn gather_out_of_range() {
        let x = storage(DType::F32, 12, 1);
        let i = Storage::Cpu(CpuStorage::from_vec(vec![0i64, 4]));
        x.gather(
            &Layout::contiguous(&[3, 4]),
            1,
            &i,
            &Layout::contiguous(&[1, 2]),
        );
    }

    #[test]
    #[should_panic(expected = "gather: Size does not match at dimension 0")]
    fn gather_index_too_big() {
        let x = storage(DType::F32, 12, 1);
        let i = Storage::Cpu(CpuStorage::from_vec(vec![0i64; 4]));
        x.gather(
            &Layout::contiguous(&[3, 4]),
            1,
            &i,
            &Layout::contiguous(&[4, 1]),
        );
    }

    #[test]
    #[should_panic(expected = "scatter_add: index -2 is out of bounds for dimension 0 with size 3")]
    fn scatter_add_negative() {
        let x = storage(DType::F32, 12, 1);
        let i = Storage::Cpu(CpuStorage::from_vec(vec![-2i64]));
        let l = Layout::contiguous(&[3, 4]);
        x.scatter(&l, 0, &i, &Layout::contiguous(&[1, 1]), &x, &l, true);
    }

    #[test]
    #[should_panic(expected = "scatter(): Expected self.dtype to be equal to src.dtype")]
    fn scatter_dtype_mismatch() {
        let x = storage(DType::F32, 12, 1);
        let y = storage(DType::F64, 12, 1);
        let i = Storage::Cpu(CpuStorage::from_vec(vec![0i64]));
        let l = Layout::contiguous(&[3, 4]);
        x.scatter(&l, 0, &i, &Layout::contiguous(&[1, 1]), &y, &l, false);
    }

    #[test]
    #[should_panic(expected = "masked_fill: only supports boolean masks")]
    fn masked_fill_non_bool_mask() {
        let x = storage(DType::F32, 4, 1);
        let l = Layout::contiguous(&[4]);
        x.masked_fill(&l, &x, &l, Scalar::Float(0.0));
    }

    #[test]
    #[should_panic(
        expected = "cat: Sizes of tensors must match except in dimension 0. Expected size 3 but got size 4 for tensor number 1"
    )]
    fn cat_shape_mismatch() {
        let x = storage(DType::F32, 8, 1);
        Storage::cat(
            &[
                (&x, &Layout::contiguous(&[2, 3])),
                (&x, &Layout::contiguous(&[2, 4])),
            ],
            0,
        );
    }

    #[test]
    #[should_panic(expected = "cat: expected all tensors to have the same dtype")]
    fn cat_dtype_mismatch() {
        let x = storage(DType::F32, 8, 1);
        let y = storage(DType::I64, 8, 1);
        let l = Layout::contiguous(&[2, 3]);
        Storage::cat(&[(&x, &l), (&y, &l)], 0);
    }

    #[test]
    #[should_panic(expected = "one_hot: Class values must be smaller than num_classes.")]
    fn one_hot_too_large() {
        let x = Storage::Cpu(CpuStorage::from_vec(vec![0i64, 3]));
        x.one_hot(&Layout::contiguous(&[2]), 3);
    }

    #[test]
    #[should_panic(expected = "one_hot: Class values must be non-negative.")]
    fn one_hot_negative() {
        let x = Storage::Cpu(CpuStorage::from_vec(vec![0i64, -1]));
        x.one_hot(&Layout::contiguous(&[2]), 3);
    }

    #[test]
    fn parity_vectors() {
        // A few of PyTorch's cases from /work/shared/parity/index.json, inlined.
        let x = Storage::Cpu(CpuStorage::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]));
        let l = Layout::contiguous(&[2, 3]);
        let i = Storage::Cpu(CpuStorage::from_vec(vec![2i64, 0, 0, 1]));
        let li = Layout::contiguous(&[2, 2]);
        // torch.gather(x, 1, [[2, 0], [0, 1]]) = [[3, 1], [4, 5]]
        assert_eq!(
            slice::<f32>(&x.gather(&l, 1, &i, &li)),
            &[3.0, 1.0, 4.0, 5.0]
        );
        // torch.zeros(2, 3).scatter_add(1, [[2, 0], [0, 1]], x) = [[2, 0, 1], [4, 5, 0]]
        let z = Storage::full(6, Scalar::Float(0.0), DType::F32, crate::Device::Cpu);
        assert_eq!(
            slice::<f32>(&z.scatter(&l, 1, &i, &li, &x, &l, true)),
            &[2.0, 0.0, 1.0, 4.0, 5.0, 0.0]
        );
        let oh =
            Storage::Cpu(CpuStorage::from_vec(vec![0i64])).one_hot(&Layout::contiguous(&[]), 3);
        assert_eq!(slice::<i64>(&oh), &[1, 0, 0]);
    }
}
