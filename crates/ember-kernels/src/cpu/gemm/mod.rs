//! Ember's own f32 GEMM for the skinny products of training (a batch of 64 against a 784×128
//! weight, its two gradients, a convolution's patch matrix), where `matrixmultiply` spends much
//! of its time packing.
//!
//! The loops follow BLIS: k is cut into passes of at most [`KC`] steps; in each pass the B block
//! is packed once into panels of `NR` columns (zero-padded), and every `MR`-row tile of A is
//! multiplied against each panel by a register-blocked microkernel (`micro.rs`). A is **not**
//! packed: the kernel broadcasts one element per row and step straight from A's rows (any
//! strides), so a product with few rows pays only for packing B, and a transposed or sliced A is
//! read in place. Tiles at the right and bottom edges go through a small scratch tile, so the
//! kernels always see whole tiles.
//!
//! Every element of C is computed by the same sequence of operations whatever tile it falls in
//! and however the caller splits C into blocks: results do not depend on the thread count.

mod micro;
mod pack;

use micro::{Micro, Portable, Tile, MAX_MR};
use std::cell::RefCell;

/// Steps of k per pass: a packed panel (`KC`×32 f32 = 32 KiB for the AVX-512 kernel) stays in
/// L1 while every row tile of A passes over it.
const KC: usize = 256;

/// Rows of A per block: the block's `MC`×`KC` elements (192 KiB) stay in L2 across the panels.
const MC: usize = 192;

/// The microkernel this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// 8×32 tiles in AVX-512 registers.
    Avx512,
    /// 6×16 tiles in AVX2 registers with FMA.
    Avx2,
    /// 4×8 tiles in plain arrays.
    Portable,
}

impl Isa {
    /// The best kernel this CPU runs (detected once).
    pub(crate) fn detect() -> Isa {
        use std::sync::OnceLock;
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if is_x86_feature_detected!("avx512f") {
                    return Isa::Avx512;
                }
                if super::simd::has_avx2_fma() {
                    return Isa::Avx2;
                }
            }
            Isa::Portable
        })
    }

    /// Every kernel this CPU can run (the tests check each against a reference).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Isa> {
        let mut v = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if super::simd::has_avx2_fma() {
                v.push(Isa::Avx2);
            }
            if is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
            }
        }
        v
    }

    /// The kernel's tile, `(MR, NR)`: callers that split C cut it at multiples of these.
    pub(crate) fn tile(self) -> (usize, usize) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => (micro::Avx512::MR, micro::Avx512::NR),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => (micro::Avx2::MR, micro::Avx2::NR),
            _ => (Portable::MR, Portable::NR),
        }
    }
}

/// A strided f32 matrix: element `[i, j]` at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub(crate) struct MatPtr {
    /// Element `[0, 0]`.
    pub ptr: *const f32,
    /// Row stride.
    pub rs: isize,
    /// Column stride.
    pub cs: isize,
}

/// `C = alpha·A·B + beta·C` for an m×k `a`, a k×n `b` and an m×n `c` with row stride `ldc`
/// and unit column stride, on the calling thread, with the kernel of `isa`. With `beta == 0`,
/// C is only written (it may be uninitialised).
///
/// # Safety
/// `m, k, n > 0`; every element of A's m×k and B's k×n views is readable; C's m×n elements are
/// writable (and readable unless `beta == 0`) and overlap neither A nor B; `isa` runs on this
/// CPU.
pub(crate) unsafe fn sgemm(
    isa: Isa,
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    a: MatPtr,
    b: MatPtr,
    beta: f32,
    c: *mut f32,
    ldc: usize,
) {
    let args = Args {
        m,
        k,
        n,
        alpha,
        a,
        b,
        beta,
        c,
        ldc,
    };
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded from the caller; `isa` says the CPU runs AVX-512.
        Isa::Avx512 => unsafe { blocked::<micro::Avx512>(&args) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded from the caller; `isa` says the CPU runs AVX2+FMA.
        Isa::Avx2 => unsafe { blocked::<micro::Avx2>(&args) },
        // SAFETY: forwarded from the caller; the portable kernel runs anywhere.
        _ => unsafe { blocked::<Portable>(&args) },
    }
}

/// The arguments of one [`sgemm`].
struct Args {
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: MatPtr,
    b: MatPtr,
    beta: f32,
    c: *mut f32,
    ldc: usize,
}

thread_local! {
    /// The packed B block of this thread's current GEMM, kept between calls so a training step
    /// packs into memory it already has.
    static PACKED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The packed A block, for a column-major A.
    static PACKED_A: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Floats of slack a packed buffer carries so that its used part can start on a cache line.
const ALIGN: usize = 16;

/// The offset (in floats, below [`ALIGN`]) at which `v` reaches a 64-byte boundary: a vector load
/// of a panel that straddles two cache lines costs two, so panels start on a line.
fn aligned(v: &[f32]) -> usize {
    v.as_ptr().align_offset(64).min(ALIGN)
}

/// The BLIS loops around the microkernel `K`.
///
/// # Safety
/// As [`sgemm`], with `K`'s instruction set on this CPU.
unsafe fn blocked<K: Micro>(g: &Args) {
    let (m, k, n) = (g.m, g.k, g.n);
    debug_assert!(m > 0 && k > 0 && n > 0 && K::MR <= MAX_MR);
    let panels = n.div_ceil(K::NR);
    // Passes of equal depth (784 = 4 × 196, not 3 × 256 + 16).
    let passes = k.div_ceil(KC);
    let depth = k.div_ceil(passes);
    // Taken out of the thread-local slot (not borrowed) so nothing is held across the kernels.
    let mut packed = PACKED.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let packed_len = panels * K::NR * depth;
    packed.resize(packed_len + ALIGN, 0.0);
    let off = aligned(&packed);
    // A column-major A (a transposed gradient, `g.t() @ x`) is packed: read in place, each step
    // of a tile would touch a new cache line and use half of it.
    let pack_a = g.a.rs == 1 && g.a.cs != 1;
    let mut packed_a = Vec::new();
    let mut off_a = 0;
    if pack_a {
        packed_a = PACKED_A.with(|p| std::mem::take(&mut *p.borrow_mut()));
        packed_a.resize(MC.min(m).div_ceil(K::MR) * K::MR * depth + ALIGN, 0.0);
        off_a = aligned(&packed_a);
    }
    let mut pc = 0;
    while pc < k {
        let kc = depth.min(k - pc);
        // The first pass applies the caller's beta; later ones add to what it wrote.
        let beta = if pc == 0 { g.beta } else { 1.0 };
        // SAFETY: rows pc..pc+kc of B's k×n view are readable (caller).
        let b0 = unsafe { g.b.ptr.offset(pc as isize * g.b.rs) };
        // SAFETY: as just said; `packed` holds panels·NR·kc values.
        unsafe {
            pack::pack_b(
                kc,
                n,
                K::NR,
                b0,
                g.b.rs,
                g.b.cs,
                &mut packed[off..off + packed_len],
            )
        };
        for ic in (0..m).step_by(MC) {
            let mc = MC.min(m - ic);
            if pack_a {
                // SAFETY: rows ic..ic+mc, columns pc..pc+kc of A are readable (caller), and
                // `packed_a` holds ⌈MC / MR⌉·MR·depth values.
                unsafe {
                    let a0 = g.a.ptr.offset(ic as isize + pc as isize * g.a.cs);
                    pack::pack_a_col_major(kc, mc, K::MR, a0, g.a.cs, &mut packed_a[off_a..]);
                }
            }
            for jp in 0..panels {
                let j0 = jp * K::NR;
                let nr = K::NR.min(n - j0);
                let panel = packed[off + jp * K::NR * kc..].as_ptr();
                for i0 in (ic..ic + mc).step_by(K::MR) {
                    let mr = K::MR.min(ic + mc - i0);
                    let mut rows = [0isize; MAX_MR];
                    let (a, rs, csa) = if pack_a {
                        let t = (i0 - ic) / K::MR;
                        (
                            packed_a[off_a + t * K::MR * kc..].as_ptr(),
                            1,
                            K::MR as isize,
                        )
                    } else {
                        // SAFETY: element [i0, pc] of A's m×k view (i0 < m, pc < k).
                        let a0 =
                            unsafe { g.a.ptr.offset(i0 as isize * g.a.rs + pc as isize * g.a.cs) };
                        (a0, g.a.rs, g.a.cs)
                    };
                    for (i, r) in rows.iter_mut().enumerate().take(mr) {
                        *r = i as isize * rs;
                    }
                    let tile = Tile {
                        kc,
                        alpha: g.alpha,
                        a,
                        rows,
                        csa,
                        b: panel,
                        beta,
                        // SAFETY: element [i0, j0] of C's m×n block (i0 < m, j0 < n).
                        c: unsafe { g.c.add(i0 * g.ldc + j0) },
                        ldc: g.ldc,
                    };
                    // A last panel of at most half a tile's width takes the half kernel.
                    let half = K::HALF && nr <= K::NR / 2;
                    let width = if half { K::NR / 2 } else { K::NR };
                    // SAFETY: rows i0..i0+mr of A and columns j0..j0+nr of C exist; the rows
                    // past `mr` repeat row 0; the panel holds kc·NR values; the kernel writes
                    // `width` columns, and the edge path gives it a whole scratch tile.
                    unsafe {
                        if mr == K::MR && nr == width {
                            run_tile::<K>(&tile, half);
                        } else {
                            edge_tile::<K>(&tile, mr, nr, half);
                        }
                    }
                }
            }
        }
        pc += kc;
    }
    PACKED.with(|p| *p.borrow_mut() = packed);
    if pack_a {
        PACKED_A.with(|p| *p.borrow_mut() = packed_a);
    }
}

/// Runs `K`'s whole tile, or its half-width one when `half`.
///
/// # Safety
/// As [`Micro::tile`] (or [`Micro::half_tile`] when `half`, which needs `K::HALF`).
unsafe fn run_tile<K: Micro>(t: &Tile, half: bool) {
    // SAFETY: forwarded from the caller.
    unsafe {
        if half {
            K::half_tile(t)
        } else {
            K::tile(t)
        }
    }
}

/// A tile with only `mr` rows or `nr` columns inside C: the kernel (the half-width one when
/// `half`) computes a whole tile in scratch memory, holding C's current values when it reads
/// them, and the real part is copied back. Each element sees exactly the operations it would
/// in a whole tile.
///
/// # Safety
/// As [`run_tile`], except that only C's `mr`×`nr` elements at `t.c` need exist.
unsafe fn edge_tile<K: Micro>(t: &Tile, mr: usize, nr: usize, half: bool) {
    let mut scratch = [0f32; MAX_MR * 64];
    debug_assert!(K::MR * K::NR <= scratch.len());
    let ldc = K::NR;
    if t.beta != 0.0 {
        for i in 0..mr {
            // SAFETY: C's row i holds nr readable elements (caller).
            let row = unsafe { std::slice::from_raw_parts(t.c.add(i * t.ldc), nr) };
            scratch[i * ldc..i * ldc + nr].copy_from_slice(row);
        }
    }
    let inner = Tile {
        c: scratch.as_mut_ptr(),
        ldc,
        ..*t
    };
    // SAFETY: the scratch tile is MR×NR writable and readable floats of our own; A and the
    // panel are as the caller guarantees.
    unsafe { run_tile::<K>(&inner, half) };
    for i in 0..mr {
        // SAFETY: C's row i holds nr writable elements (caller).
        let row = unsafe { std::slice::from_raw_parts_mut(t.c.add(i * t.ldc), nr) };
        row.copy_from_slice(&scratch[i * ldc..i * ldc + nr]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `alpha·A·B + beta·C` in f64 from the strided views.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        (m, k, n): (usize, usize, usize),
        alpha: f32,
        a: &[f32],
        (ao, ars, acs): (usize, usize, usize),
        b: &[f32],
        (bo, brs, bcs): (usize, usize, usize),
        beta: f32,
        c: &[f32],
    ) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|p| a[ao + i * ars + p * acs] as f64 * b[bo + p * brs + j * bcs] as f64)
                    .sum();
                let old = if beta == 0.0 {
                    0.0
                } else {
                    beta as f64 * c[i * n + j] as f64
                };
                out[i * n + j] = alpha as f64 * s + old;
            }
        }
        out
    }

    /// Runs one product with `isa` on views of `a` and `b` laid out row- or column-major with
    /// padding, returning C.
    fn run(
        isa: Isa,
        mkn: (usize, usize, usize),
        a_t: bool,
        b_t: bool,
        pad: usize,
        beta: f32,
        seed: u64,
    ) -> (Vec<f32>, Vec<f64>) {
        let (m, k, n) = mkn;
        let mut x = seed | 1;
        let mut draw = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        // Row-major with `pad` extra columns, or column-major with `pad` extra rows.
        let view = |rows: usize, cols: usize, t: bool| {
            if t {
                (pad, 1, rows + pad)
            } else {
                (pad, cols + pad, 1)
            }
        };
        let (av, bv) = (view(m, k, a_t), view(k, n, b_t));
        let a: Vec<f32> = (0..pad + (m + pad) * (k + pad)).map(|_| draw()).collect();
        let b: Vec<f32> = (0..pad + (k + pad) * (n + pad)).map(|_| draw()).collect();
        let c0: Vec<f32> = (0..m * n).map(|_| draw()).collect();
        let alpha = 0.75;
        let want = reference(mkn, alpha, &a, av, &b, bv, beta, &c0);
        let mut c = if beta == 0.0 {
            vec![f32::NAN; m * n]
        } else {
            c0
        };
        let sa = MatPtr {
            ptr: a[av.0..].as_ptr(),
            rs: av.1 as isize,
            cs: av.2 as isize,
        };
        let sb = MatPtr {
            ptr: b[bv.0..].as_ptr(),
            rs: bv.1 as isize,
            cs: bv.2 as isize,
        };
        // SAFETY: the views lie inside `a` and `b` (sized for them above), `c` is m×n of our
        // own, and `isa` comes from `Isa::available`.
        unsafe { sgemm(isa, mkn, alpha, sa, sb, beta, c.as_mut_ptr(), n) };
        (c, want)
    }

    fn assert_close(got: &[f32], want: &[f64], k: usize) {
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let tol = 1e-5 * (k as f64).sqrt() * (1.0 + w.abs()) * 4.0;
            assert!((g as f64 - w).abs() <= tol, "element {i}: {g} vs {w}");
        }
    }

    #[test]
    fn training_shapes_match_the_reference_on_every_kernel() {
        for isa in Isa::available() {
            for mkn in [
                (64, 784, 128),
                (784, 64, 128),
                (64, 128, 64),
                (128, 64, 784),
                // A convolution's (last panel of 4 columns: the half kernel) and a classifier's.
                (64, 288, 196),
                (64, 128, 10),
                (1, 1, 1),
            ] {
                for (a_t, b_t) in [(false, false), (false, true), (true, false), (true, true)] {
                    let (got, want) = run(isa, mkn, a_t, b_t, 0, 0.0, 7);
                    assert_close(&got, &want, mkn.1);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Random shapes (edges of every tile size, several k passes), layouts, padding and
        /// beta, on every kernel the CPU runs.
        #[test]
        fn random_products_match_the_reference(
            m in 1usize..40, k in 1usize..600, n in 1usize..70,
            a_t: bool, b_t: bool, pad in 0usize..3, beta in prop::sample::select(vec![0.0f32, 1.0, -0.5]),
            seed: u64,
        ) {
            for isa in Isa::available() {
                let (got, want) = run(isa, (m, k, n), a_t, b_t, pad, beta, seed);
                assert_close(&got, &want, k);
            }
        }
    }

    /// A row-major view with row stride `ld` starting at `ptr`.
    fn row_major(ptr: *const f32, ld: usize) -> MatPtr {
        MatPtr {
            ptr,
            rs: ld as isize,
            cs: 1,
        }
    }

    #[test]
    fn splitting_c_into_blocks_changes_no_bit() {
        // The product computed whole, and as two column blocks and two row blocks cut off tile
        // boundaries: every element must be bit-identical. Columns 32..53 are one 21-wide
        // edge of the whole kernel in the whole product, and two half-kernel tiles (32..40,
        // 40..53) in the split one.
        let (m, k, n) = (37, 300, 53);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104729) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        for isa in Isa::available() {
            let whole = |c: &mut [f32]| {
                let sa = row_major(a.as_ptr(), k);
                let sb = row_major(b.as_ptr(), n);
                // SAFETY: row-major views of our own buffers; `c` is m×n.
                unsafe { sgemm(isa, (m, k, n), 1.0, sa, sb, 0.0, c.as_mut_ptr(), n) };
            };
            let mut c1 = vec![0f32; m * n];
            whole(&mut c1);
            let mut c2 = vec![0f32; m * n];
            for (j0, j1) in [(0, 40), (40, n)] {
                let sa = row_major(a.as_ptr(), k);
                let sb = row_major(b[j0..].as_ptr(), n);
                // SAFETY: columns j0..j1 of B and of C, inside our buffers.
                unsafe {
                    sgemm(
                        isa,
                        (m, k, j1 - j0),
                        1.0,
                        sa,
                        sb,
                        0.0,
                        c2[j0..].as_mut_ptr(),
                        n,
                    )
                };
            }
            let mut c3 = vec![0f32; m * n];
            for (i0, i1) in [(0, 13), (13, m)] {
                let sa = row_major(a[i0 * k..].as_ptr(), k);
                let sb = row_major(b.as_ptr(), n);
                // SAFETY: rows i0..i1 of A and of C, inside our buffers.
                unsafe {
                    sgemm(
                        isa,
                        (i1 - i0, k, n),
                        1.0,
                        sa,
                        sb,
                        0.0,
                        c3[i0 * n..].as_mut_ptr(),
                        n,
                    )
                };
            }
            assert_eq!(c1, c2, "{isa:?}: column split");
            assert_eq!(c1, c3, "{isa:?}: row split");
        }
    }
}
