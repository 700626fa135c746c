//! The two generic elementwise drivers every CPU elementwise kernel goes through: `map` (one
//! strided input) and `zip` (two strided inputs of one shape, already broadcast), each writing a
//! new contiguous buffer, plus in-place versions. They pick a contiguous fast path, split large
//! outputs across rayon, and otherwise walk the strides run by run.

use super::buffer::{Buffer, PoolElement};
use super::par::{for_each_chunk_mut, ELEMENTWISE_GRAIN};
use super::strided::Walker;
use crate::layout::Layout;

/// `out[i] = f(src[layout(i)])` into a new contiguous buffer.
pub fn map<A: Copy + Sync, U: PoolElement>(
    src: &[A],
    layout: &Layout,
    f: impl Fn(A) -> U + Sync,
) -> Buffer<U> {
    let mut out = Buffer::<U>::uninit(layout.numel());
    // An empty view may carry an offset past its storage's end: nothing to read.
    if out.is_empty() {
        return out;
    }
    if let Some((s, e)) = layout.contiguous_range() {
        let src = &src[s..e];
        for_each_chunk_mut(&mut out, ELEMENTWISE_GRAIN, |start, chunk| {
            let n = chunk.len();
            for (o, &x) in chunk.iter_mut().zip(&src[start..start + n]) {
                *o = f(x);
            }
        });
        return out;
    }
    let w = Walker::new([layout]);
    let [st] = w.inner_strides();
    for_each_chunk_mut(&mut out, ELEMENTWISE_GRAIN, |start, chunk| {
        w.runs(start, start + chunk.len(), |pos, [o], len| {
            let dst = &mut chunk[pos - start..pos - start + len];
            if st == 1 {
                for (d, &x) in dst.iter_mut().zip(&src[o..o + len]) {
                    *d = f(x);
                }
            } else {
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = f(src[o + i * st]);
                }
            }
        });
    });
    out
}

/// `out[i] = f(a[la(i)], b[lb(i)])` into a new contiguous buffer; `la` and `lb` have one shape.
pub fn zip<A: Copy + Sync, B: Copy + Sync, U: PoolElement>(
    a: &[A],
    la: &Layout,
    b: &[B],
    lb: &Layout,
    f: impl Fn(A, B) -> U + Sync,
) -> Buffer<U> {
    let mut out = Buffer::<U>::uninit(la.numel());
    if out.is_empty() {
        return out;
    }
    if let (Some((sa, ea)), Some((sb, eb))) = (la.contiguous_range(), lb.contiguous_range()) {
        let (a, b) = (&a[sa..ea], &b[sb..eb]);
        for_each_chunk_mut(&mut out, ELEMENTWISE_GRAIN, |start, chunk| {
            let end = start + chunk.len();
            for ((o, &x), &y) in chunk.iter_mut().zip(&a[start..end]).zip(&b[start..end]) {
                *o = f(x, y);
            }
        });
        return out;
    }
    let w = Walker::new([la, lb]);
    let [sa, sb] = w.inner_strides();
    for_each_chunk_mut(&mut out, ELEMENTWISE_GRAIN, |start, chunk| {
        w.runs(start, start + chunk.len(), |pos, [oa, ob], len| {
            let dst = &mut chunk[pos - start..pos - start + len];
            // Specialise the common inner-loop shapes so they vectorise.
            match (sa, sb) {
                (1, 1) => {
                    for ((d, &x), &y) in dst.iter_mut().zip(&a[oa..oa + len]).zip(&b[ob..ob + len])
                    {
                        *d = f(x, y);
                    }
                }
                (1, 0) => {
                    let y = b[ob];
                    for (d, &x) in dst.iter_mut().zip(&a[oa..oa + len]) {
                        *d = f(x, y);
                    }
                }
                (0, 1) => {
                    let x = a[oa];
                    for (d, &y) in dst.iter_mut().zip(&b[ob..ob + len]) {
                        *d = f(x, y);
                    }
                }
                _ => {
                    for (i, d) in dst.iter_mut().enumerate() {
                        *d = f(a[oa + i * sa], b[ob + i * sb]);
                    }
                }
            }
        });
    });
    out
}

/// `dst[ld(i)] = f(dst[ld(i)], b[lb(i)])` in place; `ld` and `lb` have one shape and `b` does not
/// alias `dst` (callers copy an aliasing operand first).
pub fn zip_inplace<T: Copy + Send + Sync, B: Copy + Sync>(
    dst: &mut [T],
    ld: &Layout,
    b: &[B],
    lb: &Layout,
    f: impl Fn(T, B) -> T + Sync,
) {
    if let (Some((sd, ed)), Some((sb, eb))) = (ld.contiguous_range(), lb.contiguous_range()) {
        let (d, b) = (&mut dst[sd..ed], &b[sb..eb]);
        for_each_chunk_mut(d, ELEMENTWISE_GRAIN, |start, chunk| {
            let n = chunk.len();
            for (o, &y) in chunk.iter_mut().zip(&b[start..start + n]) {
                *o = f(*o, y);
            }
        });
        return;
    }
    // Strided destinations are rare (in-place on a view); walk them on one thread.
    let w = Walker::new([ld, lb]);
    let [sd, sb] = w.inner_strides();
    w.runs(0, w.numel(), |_, [od, ob], len| {
        for i in 0..len {
            let p = od + i * sd;
            dst[p] = f(dst[p], b[ob + i * sb]);
        }
    });
}

/// `dst[ld(i)] = f(dst[ld(i)])` in place.
pub fn map_inplace<T: Copy + Send + Sync>(dst: &mut [T], ld: &Layout, f: impl Fn(T) -> T + Sync) {
    if let Some((s, e)) = ld.contiguous_range() {
        for_each_chunk_mut(&mut dst[s..e], ELEMENTWISE_GRAIN, |_, chunk| {
            for o in chunk.iter_mut() {
                *o = f(*o);
            }
        });
        return;
    }
    let w = Walker::new([ld]);
    let [sd] = w.inner_strides();
    w.runs(0, w.numel(), |_, [od], len| {
        for i in 0..len {
            let p = od + i * sd;
            dst[p] = f(dst[p]);
        }
    });
}

/// `out[i] = f(c[lc(i)], a[la(i)], b[lb(i)])` into a new contiguous buffer (three operands of one
/// shape; used by `where`).
pub fn zip3<C: Copy + Sync, A: Copy + Sync, B: Copy + Sync, U: PoolElement>(
    (c, lc): (&[C], &Layout),
    (a, la): (&[A], &Layout),
    (b, lb): (&[B], &Layout),
    f: impl Fn(C, A, B) -> U + Sync,
) -> Buffer<U> {
    let mut out = Buffer::<U>::uninit(la.numel());
    let w = Walker::new([lc, la, lb]);
    let [sc, sa, sb] = w.inner_strides();
    for_each_chunk_mut(&mut out, ELEMENTWISE_GRAIN, |start, chunk| {
        w.runs(start, start + chunk.len(), |pos, [oc, oa, ob], len| {
            let dst = &mut chunk[pos - start..pos - start + len];
            // Unit-stride operands, and a broadcast scalar `b` (`where(mask, g, 0)`, ReLU's
            // backward), get slice loops that vectorise.
            match (sc, sa, sb) {
                (1, 1, 1) => {
                    let (c, a, b) = (&c[oc..oc + len], &a[oa..oa + len], &b[ob..ob + len]);
                    for (((d, &x), &y), &z) in dst.iter_mut().zip(c).zip(a).zip(b) {
                        *d = f(x, y, z);
                    }
                }
                (1, 1, 0) => {
                    let (c, a, z) = (&c[oc..oc + len], &a[oa..oa + len], b[ob]);
                    for ((d, &x), &y) in dst.iter_mut().zip(c).zip(a) {
                        *d = f(x, y, z);
                    }
                }
                _ => {
                    for (i, d) in dst.iter_mut().enumerate() {
                        *d = f(c[oc + i * sc], a[oa + i * sa], b[ob + i * sb]);
                    }
                }
            }
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::super::reduce::test_util::Rng;
    use super::*;
    use proptest::prelude::*;

    /// A random layout of exactly `shape` over a storage of the returned length: contiguous,
    /// permuted, sliced with a step, offset, or broadcast (stride 0) along some dims.
    fn layout_of(r: &mut Rng, shape: &[usize]) -> (usize, Layout) {
        let nd = shape.len();
        let off = r.below(3);
        match r.below(4) {
            0 => {
                let strides = Layout::contiguous(shape).strides().to_vec();
                let n = off + shape.iter().product::<usize>();
                (n, Layout::new(shape, &strides, off))
            }
            1 if nd >= 2 => {
                // Stored transposed: contiguous over the reversed shape, then reversed back.
                let rev: Vec<usize> = shape.iter().rev().copied().collect();
                let perm: Vec<usize> = (0..nd).rev().collect();
                (
                    rev.iter().product::<usize>(),
                    Layout::contiguous(&rev).permute(&perm),
                )
            }
            2 if nd >= 1 => {
                // Every other element along one dim.
                let d = r.below(nd);
                let mut big = shape.to_vec();
                big[d] *= 2;
                let l = Layout::contiguous(&big).slice(d, 0, big[d], 2);
                (big.iter().product::<usize>(), l)
            }
            _ => {
                // Broadcast along a random subset of dims.
                let small: Vec<usize> = shape
                    .iter()
                    .map(|&n| if r.below(2) == 0 { 1 } else { n })
                    .collect();
                let l = Layout::contiguous(&small).expand(shape);
                (small.iter().product::<usize>(), l)
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// `map`, `zip` and `zip3` against a walk over `positions()`, on random strided,
        /// broadcast and contiguous layouts of one random shape (up to above the parallel grain).
        #[test]
        fn drivers_match_positions(seed in any::<u64>()) {
            let mut r = Rng(seed);
            let nd = r.below(4);
            let big = r.below(8) == 0;
            let shape: Vec<usize> = (0..nd)
                .map(|_| if big { 20 + r.below(30) } else { r.below(6) })
                .collect();
            let (na, la) = layout_of(&mut r, &shape);
            let (nb, lb) = layout_of(&mut r, &shape);
            let (nc, lc) = layout_of(&mut r, &shape);
            let a: Vec<i64> = (0..na as i64).collect();
            let b: Vec<i64> = (0..nb as i64).map(|x| 1000 * x).collect();
            let c: Vec<bool> = (0..nc).map(|i| i % 3 != 0).collect();
            let pa: Vec<usize> = la.positions().collect();
            let pb: Vec<usize> = lb.positions().collect();
            let pc: Vec<usize> = lc.positions().collect();
            let want: Vec<i64> = pa.iter().map(|&i| a[i] * 7).collect();
            prop_assert_eq!(&map(&a, &la, |x| x * 7)[..], &want[..]);
            let want: Vec<i64> = pa.iter().zip(&pb).map(|(&i, &j)| a[i] + b[j]).collect();
            prop_assert_eq!(&zip(&a, &la, &b, &lb, |x, y| x + y)[..], &want[..]);
            let want: Vec<i64> = (0..pa.len())
                .map(|k| if c[pc[k]] { a[pa[k]] } else { b[pb[k]] })
                .collect();
            let got = zip3((&c, &lc), (&a, &la), (&b, &lb), |c, x, y| if c { x } else { y });
            prop_assert_eq!(&got[..], &want[..]);
            // The broadcast-scalar fast path of `zip3` (ReLU's backward).
            let zero = Layout::contiguous(&[]).expand(&shape);
            let want: Vec<i64> = (0..pa.len())
                .map(|k| if c[pc[k]] { a[pa[k]] } else { -1 })
                .collect();
            let got = zip3((&c, &lc), (&a, &la), (&[-1i64][..], &zero), |c, x, y| {
                if c { x } else { y }
            });
            prop_assert_eq!(&got[..], &want[..]);
        }
    }

    #[test]
    fn empty_view_past_the_end_reads_nothing() {
        // `x[:, 2:2]` of a [1, 2] tensor: offset 2 over 2 elements, no element selected.
        let l = Layout::contiguous(&[1, 2]).slice(1, 2, 2, 1);
        let src = [1.0f32, 2.0];
        assert_eq!(map(&src, &l, |x| x).len(), 0);
        assert_eq!(zip(&src, &l, &src, &l, |x, y| x + y).len(), 0);
    }
}
