//! `x.i(…)`: PyTorch's basic indexing. Values against a naive reference at random shapes and
//! indices (proptest), views that share storage (`copy_` through an index assigns), gradients
//! (gradcheck), and PyTorch's messages for bad indices.

use ember_autograd::gradcheck::gradcheck;
use ember_autograd::{Ellipsis, IndexOp, NewAxis, Step, Tensor, TensorIndexer};
use proptest::prelude::*;

fn grid() -> Tensor {
    Tensor::arange(24).view([2, 3, 4])
}

#[test]
fn integers_select_and_count_from_the_end() {
    let x = grid();
    assert_eq!(x.i(1).shape(), &[3, 4]);
    assert_eq!(x.i((1, 2)).to_vec::<i64>(), vec![20, 21, 22, 23]);
    assert_eq!(x.i((-1, -1, -1)).item(), 23.0);
    assert_eq!(x.i((0, -3, 0)).item(), 0.0);
    assert_eq!(x.i((0usize, 1i64, 2isize)).item(), 6.0);
}

#[test]
fn ranges_slice_like_python() {
    let x = Tensor::arange(10);
    assert_eq!(x.i(2..5).to_vec::<i64>(), vec![2, 3, 4]);
    assert_eq!(x.i(7..).to_vec::<i64>(), vec![7, 8, 9]);
    assert_eq!(x.i(..2).to_vec::<i64>(), vec![0, 1]);
    assert_eq!(x.i(2..=4).to_vec::<i64>(), vec![2, 3, 4]);
    assert_eq!(x.i(..=1).to_vec::<i64>(), vec![0, 1]);
    assert_eq!(x.i(-3..).to_vec::<i64>(), vec![7, 8, 9]);
    assert_eq!(x.i(..-8).to_vec::<i64>(), vec![0, 1]);
    assert_eq!(x.i(-3..=-1).to_vec::<i64>(), vec![7, 8, 9]);
    // Out-of-range bounds clamp, and a reversed range is empty, as in Python.
    assert_eq!(x.i(8..20).to_vec::<i64>(), vec![8, 9]);
    assert_eq!(x.i(-20..1).to_vec::<i64>(), vec![0]);
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 5..2;
    assert_eq!(x.i(reversed).shape(), &[0]);
    assert_eq!(x.i(Step(1..8, 3)).to_vec::<i64>(), vec![1, 4, 7]);
    assert_eq!(x.i(Step(.., 4)).to_vec::<i64>(), vec![0, 4, 8]);
    assert_eq!(x.i(Step(-4.., 2)).to_vec::<i64>(), vec![6, 8]);
}

#[test]
fn new_axes_and_ellipsis() {
    let x = grid();
    assert_eq!(x.i(NewAxis).shape(), &[1, 2, 3, 4]);
    assert_eq!(x.i((.., NewAxis)).shape(), &[2, 1, 3, 4]);
    assert_eq!(x.i((Ellipsis, NewAxis)).shape(), &[2, 3, 4, 1]);
    assert_eq!(x.i((Ellipsis, 0)).shape(), &[2, 3]);
    assert_eq!(x.i((0, Ellipsis, 1)).to_vec::<i64>(), vec![1, 5, 9]);
    assert_eq!(x.i((NewAxis, 1, NewAxis, .., -1)).shape(), &[1, 1, 3]);
    assert_eq!(x.i(Ellipsis).shape(), &[2, 3, 4]);
}

#[test]
fn the_result_is_a_view_and_copy_assigns() {
    let x = Tensor::zeros([3, 4]);
    let col = x.i((.., 1));
    assert!(col.shares_storage(&x));
    col.copy_(&Tensor::from_slice(&[1.0f32, 2.0, 3.0], [3]));
    x.i((-1, Step(.., 2)))
        .copy_(&Tensor::from_slice(&[9.0f32], [1]));
    #[rustfmt::skip]
    let want = [0., 1., 0., 0.,
                0., 2., 0., 0.,
                9., 3., 9., 0.];
    assert_eq!(x.to_vec::<f32>(), want);
}

#[test]
fn gradients_flow_through_every_kind_of_entry() {
    let x = Tensor::from_slice(
        &(0..24).map(|v| v as f64 * 0.1).collect::<Vec<_>>(),
        [2, 3, 4],
    )
    .requires_grad_(true);
    let f = |v: &[Tensor]| {
        let y = v[0].i((Step(.., 1), NewAxis, -2.., Step(1.., 2)));
        &y * &y + v[0].i((Ellipsis, 3)).sum()
    };
    gradcheck(f, std::slice::from_ref(&x), 1e-6, 1e-6, 1e-4).unwrap();
    x.i((1, 2)).sum().backward();
    let g = x.grad().unwrap().to_vec::<f64>();
    assert_eq!(g.iter().sum::<f64>(), 4.0);
    assert_eq!(&g[20..24], &[1.0; 4]);
}

fn message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let e = std::panic::catch_unwind(f).unwrap_err();
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

#[test]
fn bad_indices_say_what_is_wrong() {
    let x = grid();
    let m = message(|| drop(grid().i((0, 3))));
    assert_eq!(
        m,
        "IndexError: index 3 is out of bounds for dimension 1 with size 3"
    );
    let m = message(|| drop(grid().i(-3)));
    assert_eq!(
        m,
        "IndexError: index -3 is out of bounds for dimension 0 with size 2"
    );
    let m = message(|| drop(grid().i((0, 0, 0, 0))));
    assert_eq!(
        m,
        "IndexError: too many indices for tensor of dimension 3 (got 4)"
    );
    let m = message(|| drop(grid().i((Ellipsis, 0, Ellipsis))));
    assert_eq!(
        m,
        "IndexError: an index can only have a single ellipsis ('...')"
    );
    let m = message(|| drop(grid().i(Step(.., 0))));
    assert_eq!(m, "ValueError: slice step cannot be zero");
    drop(x);
}

/// Python's slice rule, written out: the positions `x[start:end:step]` keeps of `0..n`.
fn naive_slice(n: usize, start: Option<isize>, end: Option<isize>, step: usize) -> Vec<usize> {
    let n = n as isize;
    let fix = |v: isize| if v < 0 { (v + n).max(0) } else { v.min(n) };
    let (s, e) = (fix(start.unwrap_or(0)), fix(end.unwrap_or(n)));
    (s..e).step_by(step).map(|v| v as usize).collect()
}

fn entry() -> impl Strategy<Value = (Option<isize>, Option<isize>, usize)> {
    (
        proptest::option::of(-6isize..7),
        proptest::option::of(-6isize..7),
        1usize..4,
    )
}

proptest! {
    /// A slice of each of two dims then a select of the last: the values are the naive
    /// reference's, for any bounds (negative, past the end, reversed) and steps.
    #[test]
    fn slices_and_selects_match_python(
        (a, b, c) in (1usize..6, 1usize..6, 1usize..5),
        (s0, e0, st0) in entry(),
        (s1, e1, st1) in entry(),
        sel in -4isize..4,
    ) {
        let sel = sel.rem_euclid(c as isize) - if sel < 0 { c as isize } else { 0 };
        let x = Tensor::arange((a * b * c) as i64).view([a, b, c]);
        let y = x.index_with(&[
            TensorIndexer::Slice { start: s0, end: e0, step: st0 },
            TensorIndexer::Slice { start: s1, end: e1, step: st1 },
            TensorIndexer::Select(sel),
        ]);
        let k = sel.rem_euclid(c as isize) as usize;
        let (r0, r1) = (naive_slice(a, s0, e0, st0), naive_slice(b, s1, e1, st1));
        let want: Vec<i64> = r0
            .iter()
            .flat_map(|&i| r1.iter().map(move |&j| ((i * b + j) * c + k) as i64))
            .collect();
        prop_assert_eq!(y.shape(), &[r0.len(), r1.len()]);
        prop_assert_eq!(y.to_vec::<i64>(), want);
    }
}
