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
            for (i, d) in chunk[pos - start..pos - start + len].iter_mut().enumerate() {
                *d = f(c[oc + i * sc], a[oa + i * sa], b[ob + i * sb]);
            }
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_view_past_the_end_reads_nothing() {
        // `x[:, 2:2]` of a [1, 2] tensor: offset 2 over 2 elements, no element selected.
        let l = Layout::contiguous(&[1, 2]).slice(1, 2, 2, 1);
        let src = [1.0f32, 2.0];
        assert_eq!(map(&src, &l, |x| x).len(), 0);
        assert_eq!(zip(&src, &l, &src, &l, |x, y| x + y).len(), 0);
    }
}
