//! Host-side geometry of the CUDA kernels: dimension collapsing, the fixed-size argument
//! structs that carry shapes and strides to a kernel *by value* (no upload per call), fast
//! 32-bit division by the sizes, and launch configurations.
//!
//! The structs here are `#[repr(C)]` twins of the ones in `kernels/common.cuh`; the kernel
//! sources `static_assert` their sizes (see `params::struct_sizes`), so the two cannot drift
//! apart silently (the NVRTC test compiles them).

use smallvec::SmallVec;

/// Dims a kernel handles after collapsing; more are iterated on the host (one launch each).
pub const MAX_DIMS: usize = 8;
/// Operands (output first) an elementwise kernel addresses through strides.
pub const MAX_OPERANDS: usize = 4;
/// Threads per block of the elementwise kernels.
pub const ELEM_THREADS: u32 = 128;
/// Elements each thread of an elementwise kernel handles.
pub const ELEM_PER_THREAD: u32 = 4;

/// A divisor `d` with the constants of division by multiplication (PyTorch's `IntDivider`,
/// Granlund–Montgomery): for `n < 2^31`, `n / d == (umulhi(n, magic) + n) >> shift`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastDiv {
    /// The divisor.
    pub d: u32,
    /// The multiplier.
    pub magic: u32,
    /// The shift.
    pub shift: u32,
}

impl FastDiv {
    /// The constants for divisor `d` (`1 ≤ d ≤ 2^31`).
    pub fn new(d: u32) -> FastDiv {
        assert!(
            (1..=1 << 31).contains(&d),
            "FastDiv: divisor {d} out of range"
        );
        let shift = (0..32).find(|&s| (1u64 << s) >= d as u64).unwrap_or(32);
        let magic = ((1u64 << 32) * ((1u64 << shift) - d as u64)) / d as u64 + 1;
        debug_assert!(magic <= u32::MAX as u64);
        FastDiv {
            d,
            magic: magic as u32,
            shift,
        }
    }

    /// `n / d` the way the kernels compute it (valid for `n < 2^31`).
    pub fn quotient(self, n: u32) -> u32 {
        let t = ((n as u64 * self.magic as u64) >> 32) as u32;
        (t + n) >> self.shift
    }
}

/// Shapes and per-operand element strides of an elementwise launch, innermost dim first, after
/// collapsing. Twin of `ElemGeom` in `common.cuh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElemGeom {
    /// Number of elements (logical, row-major order).
    pub n: u64,
    /// Dims in use (0 for a single element).
    pub ndim: u32,
    /// 1 when `n < 2^31`: index arithmetic uses [`FastDiv`] on 32-bit values.
    pub use32: u32,
    /// Sizes, innermost first.
    pub shape: [u64; MAX_DIMS],
    /// [`FastDiv::magic`] of each size.
    pub magic: [u32; MAX_DIMS],
    /// [`FastDiv::shift`] of each size.
    pub shift: [u32; MAX_DIMS],
    /// Element strides of each operand (output first), innermost first.
    pub strides: [[u64; MAX_DIMS]; MAX_OPERANDS],
}

impl ElemGeom {
    /// A geometry of `n` elements with every operand contiguous (one dim).
    pub fn linear(n: usize) -> ElemGeom {
        let mut g = ElemGeom::empty(n);
        if n > 1 {
            g.set_dims(&[n], &[&[1; MAX_OPERANDS][..]]);
            for k in 0..MAX_OPERANDS {
                g.strides[k][0] = 1;
            }
        }
        g
    }

    fn empty(n: usize) -> ElemGeom {
        ElemGeom {
            n: n as u64,
            ndim: 0,
            use32: u32::from(n < 1 << 31),
            shape: [1; MAX_DIMS],
            magic: [1; MAX_DIMS],
            shift: [0; MAX_DIMS],
            strides: [[0; MAX_DIMS]; MAX_OPERANDS],
        }
    }

    /// Fills dims from outermost-first `shape` and per-operand `strides` (at most
    /// [`MAX_DIMS`] dims).
    fn set_dims(&mut self, shape: &[usize], strides: &[&[usize]]) {
        let nd = shape.len();
        debug_assert!(nd <= MAX_DIMS);
        self.ndim = nd as u32;
        for (i, d) in (0..nd).rev().enumerate() {
            self.shape[i] = shape[d] as u64;
            if self.use32 == 1 {
                let f = FastDiv::new(shape[d] as u32);
                self.magic[i] = f.magic;
                self.shift[i] = f.shift;
            }
            for (k, st) in strides.iter().enumerate() {
                self.strides[k][i] = st[d] as u64;
            }
        }
    }

    /// Whether every operand `0..nops` walks memory contiguously (stride 1 over one dim, or a
    /// single element): the kernels then skip index arithmetic and may vectorise.
    pub fn is_contiguous(&self, nops: usize) -> bool {
        self.ndim == 0 || (self.ndim == 1 && (0..nops).all(|k| self.strides[k][0] == 1))
    }

    /// The storage offsets (relative to each operand's start) of logical element `i`, computed
    /// as the kernels do: the reference for the unit tests.
    pub fn offsets(&self, mut i: u64, nops: usize) -> [u64; MAX_OPERANDS] {
        let mut off = [0u64; MAX_OPERANDS];
        for d in 0..self.ndim as usize {
            let (q, r) = if self.use32 == 1 {
                let f = FastDiv {
                    d: self.shape[d] as u32,
                    magic: self.magic[d],
                    shift: self.shift[d],
                };
                let q = f.quotient(i as u32) as u64;
                (q, i - q * self.shape[d])
            } else {
                (i / self.shape[d], i % self.shape[d])
            };
            for (k, o) in off.iter_mut().enumerate().take(nops) {
                *o += r * self.strides[k][d];
            }
            i = q;
        }
        off
    }
}

/// Shapes and strides after collapsing: size-1 dims dropped, neighbours merged where every
/// operand is contiguous across them. Outermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collapsed {
    /// Sizes.
    pub shape: SmallVec<[usize; MAX_DIMS]>,
    /// Per operand, the element strides.
    pub strides: SmallVec<[SmallVec<[usize; MAX_DIMS]>; MAX_OPERANDS]>,
}

/// Collapses a shape shared by several operands with their own strides: dims of size 1 are
/// dropped, and dim `d` merges into the dim outside it when, for every operand, stepping the
/// outer dim once equals stepping `d` through its whole size (`stride[outer] == stride[d] *
/// size[d]`). The logical (row-major) order of elements is unchanged.
pub fn collapse(shape: &[usize], strides: &[&[usize]]) -> Collapsed {
    let mut out = Collapsed {
        shape: SmallVec::new(),
        strides: strides.iter().map(|_| SmallVec::new()).collect(),
    };
    for d in 0..shape.len() {
        if shape[d] == 1 {
            continue;
        }
        let merge = match out.shape.last() {
            Some(_) => strides.iter().zip(&out.strides).all(|(st, o)| {
                let outer = *o.last().unwrap();
                outer == st[d] * shape[d]
            }),
            None => false,
        };
        if merge {
            *out.shape.last_mut().unwrap() *= shape[d];
            for (k, st) in strides.iter().enumerate() {
                *out.strides[k].last_mut().unwrap() = st[d];
            }
        } else {
            out.shape.push(shape[d]);
            for (k, st) in strides.iter().enumerate() {
                out.strides[k].push(st[d]);
            }
        }
    }
    out
}

/// One or more launches covering an elementwise op: the geometry of the innermost
/// [`MAX_DIMS`] collapsed dims, and per launch the extra element offset of each operand (one
/// launch with zero offsets unless more dims remain after collapsing).
#[derive(Clone, Debug)]
pub struct ElemPlan {
    /// The geometry every launch uses.
    pub geom: ElemGeom,
    /// Per launch, the offset added to each operand.
    pub launches: SmallVec<[[u64; MAX_OPERANDS]; 1]>,
}

/// Plans an elementwise op over `shape` whose operands (output first) have `strides`.
pub fn plan(shape: &[usize], strides: &[&[usize]]) -> ElemPlan {
    assert!(strides.len() <= MAX_OPERANDS);
    let n: usize = shape.iter().product();
    let c = collapse(shape, strides);
    let nd = c.shape.len();
    let outer = nd.saturating_sub(MAX_DIMS);
    let inner_n: usize = c.shape[outer..].iter().product();
    let mut geom = ElemGeom::empty(if nd == 0 { n.min(1) } else { inner_n });
    if n == 0 {
        geom.n = 0;
        return ElemPlan {
            geom,
            launches: SmallVec::new(),
        };
    }
    let inner_strides: SmallVec<[&[usize]; MAX_OPERANDS]> =
        c.strides.iter().map(|s| &s[outer..]).collect();
    geom.set_dims(&c.shape[outer..], &inner_strides);
    let mut launches = SmallVec::new();
    // Odometer over the dims that did not fit (row-major, so launches follow logical order).
    let mut idx: SmallVec<[usize; 4]> = SmallVec::from_elem(0, outer);
    loop {
        let mut off = [0u64; MAX_OPERANDS];
        for d in 0..outer {
            for (k, o) in off.iter_mut().enumerate().take(strides.len()) {
                *o += (idx[d] * c.strides[k][d]) as u64;
            }
        }
        launches.push(off);
        let mut d = outer;
        loop {
            if d == 0 {
                return ElemPlan { geom, launches };
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < c.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Grid and block sizes of one elementwise launch over `n` elements.
pub fn elem_launch(n: u64) -> (u32, u32) {
    let per_block = (ELEM_THREADS * ELEM_PER_THREAD) as u64;
    let blocks = n.div_ceil(per_block).clamp(1, i32::MAX as u64);
    (blocks as u32, ELEM_THREADS)
}

/// Geometry of a reduction: the kept dims (which index the outputs) and the reduced dims (which
/// index the inputs folded into one output), each collapsed and innermost first. Twin of
/// `RedGeom` in `common.cuh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedGeom {
    /// Number of outputs.
    pub m: u64,
    /// Number of inputs folded into each output.
    pub k: u64,
    /// Kept dims in use.
    pub nkeep: u32,
    /// Reduced dims in use.
    pub nred: u32,
    /// Sizes of the kept dims, innermost first.
    pub keep_shape: [u64; MAX_DIMS],
    /// Input strides of the kept dims.
    pub keep_stride: [u64; MAX_DIMS],
    /// Sizes of the reduced dims, innermost first.
    pub red_shape: [u64; MAX_DIMS],
    /// Input strides of the reduced dims.
    pub red_stride: [u64; MAX_DIMS],
}

impl RedGeom {
    /// Input offset of output `o`'s first element and of reduced element `r` (relative), as the
    /// kernels compute them.
    pub fn offsets(&self, o: u64, r: u64) -> (u64, u64) {
        let walk = |mut i: u64, n: u32, shape: &[u64; MAX_DIMS], st: &[u64; MAX_DIMS]| {
            let mut off = 0;
            for d in 0..n as usize {
                off += (i % shape[d]) * st[d];
                i /= shape[d];
            }
            off
        };
        (
            walk(o, self.nkeep, &self.keep_shape, &self.keep_stride),
            walk(r, self.nred, &self.red_shape, &self.red_stride),
        )
    }

    /// Whether the reduced elements of one output are contiguous (the innermost reduced stride
    /// is 1, or there is at most one reduced element).
    pub fn inner_contiguous(&self) -> bool {
        self.nred == 0 || self.red_stride[0] == 1
    }
}

/// Why a reduction cannot be expressed in one [`RedGeom`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooManyDims;

/// Splits a layout's dims into kept and reduced groups (`mask[d]` true = reduced), collapsing
/// each group separately; the outputs are numbered row-major over the kept dims, matching a
/// contiguous keepdim output. Fails when a group keeps more than [`MAX_DIMS`] dims.
pub fn reduction(
    shape: &[usize],
    strides: &[usize],
    mask: &[bool],
) -> Result<RedGeom, TooManyDims> {
    let pick = |want: bool| -> (Vec<usize>, Vec<usize>) {
        (0..shape.len())
            .filter(|&d| mask[d] == want)
            .map(|d| (shape[d], strides[d]))
            .unzip()
    };
    let (ks, kst) = pick(false);
    let (rs, rst) = pick(true);
    let keep = collapse(&ks, &[&kst]);
    let red = collapse(&rs, &[&rst]);
    if keep.shape.len() > MAX_DIMS || red.shape.len() > MAX_DIMS {
        return Err(TooManyDims);
    }
    let mut g = RedGeom {
        m: ks.iter().product::<usize>() as u64,
        k: rs.iter().product::<usize>() as u64,
        nkeep: keep.shape.len() as u32,
        nred: red.shape.len() as u32,
        keep_shape: [1; MAX_DIMS],
        keep_stride: [0; MAX_DIMS],
        red_shape: [1; MAX_DIMS],
        red_stride: [0; MAX_DIMS],
    };
    for (i, d) in (0..keep.shape.len()).rev().enumerate() {
        g.keep_shape[i] = keep.shape[d] as u64;
        g.keep_stride[i] = keep.strides[0][d] as u64;
    }
    for (i, d) in (0..red.shape.len()).rev().enumerate() {
        g.red_shape[i] = red.shape[d] as u64;
        g.red_stride[i] = red.strides[0][d] as u64;
    }
    Ok(g)
}

/// How a reduction kernel is launched: threads of a block cooperate on one output
/// (`per_output`, when the reduced elements are contiguous) or each thread owns an output
/// (otherwise); `split` blocks share the reduced elements of each output, writing partial
/// accumulators that a second launch combines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedLaunch {
    /// True: one block (of `threads`) per output; false: one thread per output.
    pub per_output: bool,
    /// Threads per block.
    pub threads: u32,
    /// Blocks along the outputs.
    pub grid_x: u32,
    /// Parts each output's reduced elements are split into (grid y).
    pub split: u32,
}

/// Target number of resident blocks when choosing a split (a few per SM of a large GPU).
const TARGET_BLOCKS: u64 = 1024;
/// A block keeps at least this many inputs per thread before the reduction is split further.
const MIN_PER_THREAD: u64 = 16;

/// Chooses a reduction launch for `g` (see [`RedLaunch`]).
pub fn red_launch(g: &RedGeom) -> RedLaunch {
    let (m, k) = (g.m.max(1), g.k.max(1));
    if g.inner_contiguous() && k >= 32 {
        // A block per output: threads stride over the contiguous reduced elements.
        let threads = (k.next_power_of_two()).clamp(32, 512) as u32;
        let per_block = threads as u64 * MIN_PER_THREAD;
        let split = if m >= TARGET_BLOCKS {
            1
        } else {
            (TARGET_BLOCKS / m).min(k.div_ceil(per_block)).max(1)
        };
        RedLaunch {
            per_output: true,
            threads,
            grid_x: m.min(i32::MAX as u64) as u32,
            split: split.min(65535) as u32,
        }
    } else {
        // A thread per output (coalesced when the outputs' inputs are adjacent): split the
        // reduced elements when there are too few outputs to fill the device.
        let threads = 128u32;
        let blocks = m.div_ceil(threads as u64);
        let split = if blocks >= TARGET_BLOCKS {
            1
        } else {
            (TARGET_BLOCKS / blocks)
                .min(k.div_ceil(MIN_PER_THREAD))
                .max(1)
        };
        RedLaunch {
            per_output: false,
            threads,
            grid_x: blocks.min(i32::MAX as u64) as u32,
            split: split.min(65535) as u32,
        }
    }
}

/// Threads per block for a kernel that gives each row of `n` elements to one block
/// (softmax, cross-entropy rows): a power of two between 32 and 1024.
pub fn row_threads(n: usize) -> u32 {
    (n.next_power_of_two()).clamp(32, 1024) as u32
}

/// A cuBLAS operand: transpose flag and leading dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmView {
    /// Pass `CUBLAS_OP_T`.
    pub trans: bool,
    /// The leading dimension.
    pub ld: u64,
}

/// How cuBLAS can read a column-major `rows × cols` matrix whose element `(r, c)` sits at
/// `r * sr + c * sc`, or `None` when it cannot (the caller copies the operand). A dim of size
/// 1 may have any stride, so it never prevents a view.
pub fn gemm_view(rows: u64, cols: u64, sr: u64, sc: u64) -> Option<GemmView> {
    // No transpose: (r, c) at r + c * ld.
    if sr == 1 || rows <= 1 {
        let ld = if cols <= 1 { rows.max(1) } else { sc };
        if ld >= rows.max(1) {
            return Some(GemmView { trans: false, ld });
        }
    }
    // Transpose of a stored cols × rows matrix: (r, c) at c + r * ld.
    if sc == 1 || cols <= 1 {
        let ld = if rows <= 1 { cols.max(1) } else { sr };
        if ld >= cols.max(1) {
            return Some(GemmView { trans: true, ld });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;
    use proptest::prelude::*;

    /// Every multi-index of `shape` in row-major order.
    fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
        let n: usize = shape.iter().product();
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

    #[test]
    fn fast_division_matches_plain_division() {
        let divisors = [
            1u32,
            2,
            3,
            5,
            7,
            10,
            64,
            100,
            127,
            255,
            784,
            1000,
            65537,
            1 << 20,
        ]
        .into_iter()
        .chain([(1 << 31) - 1, 1 << 30, 3 << 29, 1 << 31]);
        for d in divisors {
            let f = FastDiv::new(d);
            for n in [
                0u32,
                1,
                d - 1,
                d,
                d.wrapping_add(1),
                12345,
                (1 << 31) - 1,
                (1 << 31) - 2,
            ] {
                if n < 1 << 31 {
                    assert_eq!(f.quotient(n), n / d, "{n} / {d}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn fast_division_random(d in 1u32..=(1 << 31), n in 0u32..(1 << 31)) {
            prop_assert_eq!(FastDiv::new(d).quotient(n), n / d);
        }
    }

    #[test]
    fn collapse_merges_contiguous_and_drops_ones() {
        let l = Layout::contiguous(&[2, 1, 3, 4]);
        let c = collapse(l.shape(), &[l.strides()]);
        assert_eq!(c.shape.as_slice(), &[24]);
        assert_eq!(c.strides[0].as_slice(), &[1]);
        // A transposed operand stops merging across the swapped dims.
        let t = Layout::contiguous(&[4, 3]).transpose(0, 1);
        let o = Layout::contiguous(&[3, 4]);
        let c = collapse(o.shape(), &[o.strides(), t.strides()]);
        assert_eq!(c.shape.as_slice(), &[3, 4]);
        assert_eq!(c.strides[1].as_slice(), &[1, 3]);
        // A broadcast row: stride 0 along dim 0 merges with nothing, the rest merges.
        let b = Layout::contiguous(&[1, 3, 4]).expand(&[5, 3, 4]);
        let o = Layout::contiguous(&[5, 3, 4]);
        let c = collapse(o.shape(), &[o.strides(), b.strides()]);
        assert_eq!(c.shape.as_slice(), &[5, 12]);
        assert_eq!(c.strides[1].as_slice(), &[0, 1]);
        // All-broadcast dims merge with each other (0 == 0 * n).
        let b = Layout::contiguous(&[1]).expand(&[2, 3]);
        let c = collapse(&[2, 3], &[b.strides()]);
        assert_eq!(
            (c.shape.as_slice(), c.strides[0].as_slice()),
            (&[6][..], &[0][..])
        );
        // A scalar.
        let c = collapse(&[], &[&[]]);
        assert!(c.shape.is_empty());
    }

    /// A strided layout of `shape`: optionally sliced with a step, permuted and broadcast.
    fn layout_strategy() -> impl Strategy<Value = Layout> {
        (prop::collection::vec(1usize..5, 0..7), any::<u64>()).prop_map(|(shape, bits)| {
            let nd = shape.len();
            let mut base = shape.clone();
            for (d, b) in base.iter_mut().enumerate() {
                if bits >> d & 1 == 1 {
                    *b = *b * 2 + 1;
                }
            }
            let mut l = Layout::contiguous(&base);
            for d in 0..nd {
                if bits >> d & 1 == 1 {
                    l = l.slice(d, 1, 1 + 2 * shape[d] - 1, 2);
                }
            }
            if nd >= 2 && bits >> 20 & 1 == 1 {
                l = l.transpose(0, nd - 1);
            }
            let mut target = l.shape().to_vec();
            for (d, t) in target.iter_mut().enumerate() {
                if bits >> (30 + d) & 1 == 1 {
                    *t = 1;
                }
            }
            // Broadcast dims: narrow to one element, then expand back.
            let mut v = l.clone();
            for d in 0..nd {
                if target[d] == 1 && v.shape()[d] > 1 {
                    v = v.narrow(d, 0, 1);
                }
            }
            v.expand(l.shape())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Planned offsets (including host-iterated outer dims) visit exactly the positions
        /// `Layout::positions` gives, in row-major order, for every operand.
        #[test]
        fn plan_matches_positions(a in layout_strategy(), seed in any::<u64>()) {
            let shape = a.shape().to_vec();
            let out = Layout::contiguous(&shape);
            // A second operand over the same shape, permuted differently.
            let b = if shape.len() >= 2 && seed & 1 == 1 {
                let nd = shape.len();
                let mut s2 = shape.clone();
                s2.swap(0, nd - 1);
                Layout::contiguous(&s2).transpose(0, nd - 1)
            } else {
                Layout::contiguous(&shape)
            };
            let p = plan(&shape, &[out.strides(), a.strides(), b.strides()]);
            let mut got: Vec<[u64; 3]> = Vec::new();
            for off in &p.launches {
                for i in 0..p.geom.n {
                    let o = p.geom.offsets(i, 3);
                    got.push([o[0] + off[0], o[1] + off[1], o[2] + off[2]]);
                }
            }
            let want: Vec<[u64; 3]> = out
                .positions()
                .zip(a.positions())
                .zip(b.positions())
                .map(|((o, x), y)| [o as u64, (x - a.offset()) as u64, (y - b.offset()) as u64])
                .collect();
            prop_assert_eq!(got, want);
        }

        /// Reduction geometry: the inputs of output `o` are exactly those whose kept
        /// coordinates are `o`'s (row-major over the kept dims).
        #[test]
        fn reduction_matches_positions(a in layout_strategy(), maskbits in any::<u8>()) {
            let shape = a.shape().to_vec();
            let mask: Vec<bool> = (0..shape.len()).map(|d| maskbits >> d & 1 == 1).collect();
            let g = reduction(&shape, a.strides(), &mask).unwrap();
            let kept: Vec<usize> = (0..shape.len()).filter(|&d| !mask[d]).collect();
            let mut want: Vec<Vec<u64>> = vec![Vec::new(); g.m as usize];
            for (idx, pos) in indices(&shape).into_iter().zip(a.positions()) {
                let mut o = 0;
                for &d in &kept {
                    o = o * shape[d] + idx[d];
                }
                want[o].push((pos - a.offset()) as u64);
            }
            for (o, w) in want.iter_mut().enumerate() {
                let (base, _) = g.offsets(o as u64, 0);
                let mut got: Vec<u64> = (0..g.k).map(|r| base + g.offsets(0, r).1).collect();
                got.sort_unstable();
                w.sort_unstable();
                prop_assert_eq!(&got, w);
            }
        }
    }

    #[test]
    fn more_dims_than_a_kernel_takes_are_iterated_on_the_host() {
        // Ten dims of size 2, each operand permuted so nothing merges.
        let shape = [2usize; 10];
        let out = Layout::contiguous(&shape);
        let perm: Vec<usize> = (0..10).rev().collect();
        let t = Layout::contiguous(&shape).permute(&perm);
        let p = plan(&shape, &[out.strides(), t.strides()]);
        assert_eq!(p.geom.ndim as usize, MAX_DIMS);
        assert_eq!(p.launches.len(), 4);
        assert_eq!(p.geom.n, 256);
    }

    #[test]
    fn launch_configurations() {
        assert_eq!(elem_launch(1), (1, ELEM_THREADS));
        assert_eq!(elem_launch(512), (1, ELEM_THREADS));
        assert_eq!(elem_launch(513), (2, ELEM_THREADS));
        assert_eq!(elem_launch(256 << 20).0, (256 << 20) / 512);
        // A full sum of a large vector: one output, split across many blocks.
        let g = reduction(&[1 << 28], &[1], &[true]).unwrap();
        let l = red_launch(&g);
        assert!(l.per_output && l.split > 100 && l.threads == 512, "{l:?}");
        // Row sums of a [4096, 1000] matrix: a block per row, no split.
        let g = reduction(&[4096, 1000], &[1000, 1], &[false, true]).unwrap();
        let l = red_launch(&g);
        assert_eq!((l.per_output, l.split, l.grid_x), (true, 1, 4096));
        // Column sums of the same matrix: a thread per column, split over the rows.
        let g = reduction(&[4096, 1000], &[1000, 1], &[true, false]).unwrap();
        let l = red_launch(&g);
        assert!(!l.per_output && l.grid_x == 8 && l.split > 1, "{l:?}");
        assert_eq!(row_threads(10), 32);
        assert_eq!(row_threads(1000), 1024);
        assert_eq!(row_threads(100_000), 1024);
    }

    #[test]
    fn views_of_strided_operands() {
        // Row-major B[K=3, N=4] read as the column-major N×K matrix (n, k) at n + 4k.
        assert_eq!(
            gemm_view(4, 3, 1, 4),
            Some(GemmView {
                trans: false,
                ld: 4
            })
        );
        // B transposed (a column-major [K, N], i.e. B = Xᵀ for a row-major X[N, K]): (n, k)
        // at 3n + k.
        assert_eq!(gemm_view(4, 3, 3, 1), Some(GemmView { trans: true, ld: 3 }));
        // A row slice of a wider matrix: leading dimension = the row stride.
        assert_eq!(
            gemm_view(4, 3, 1, 10),
            Some(GemmView {
                trans: false,
                ld: 10
            })
        );
        // Sliced with a step in both dims, or broadcast along a dim: cuBLAS cannot read it.
        assert_eq!(gemm_view(4, 3, 2, 8), None);
        assert_eq!(gemm_view(4, 3, 1, 0), None);
        // Vectors: a size-1 dim's stride does not matter.
        assert_eq!(
            gemm_view(1, 5, 0, 7),
            Some(GemmView {
                trans: false,
                ld: 7
            })
        );
        assert_eq!(
            gemm_view(5, 1, 1, 0),
            Some(GemmView {
                trans: false,
                ld: 5
            })
        );
        assert_eq!(gemm_view(5, 1, 3, 0), Some(GemmView { trans: true, ld: 3 }));
        assert_eq!(
            gemm_view(1, 1, 0, 0),
            Some(GemmView {
                trans: false,
                ld: 1
            })
        );
        // A leading dimension smaller than the rows is invalid for cuBLAS.
        assert_eq!(gemm_view(4, 3, 1, 2), None);
    }

    #[test]
    fn argument_struct_sizes_are_stable() {
        // The kernel prelude asserts the same numbers; a change here must change both.
        assert_eq!(std::mem::size_of::<ElemGeom>(), 16 + 64 + 32 + 32 + 256);
        assert_eq!(std::mem::size_of::<RedGeom>(), 24 + 4 * 64);
    }
}
