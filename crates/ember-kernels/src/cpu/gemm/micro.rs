//! The register-blocked microkernels: each computes one `MR`×`NR` tile of C from `kc` columns of
//! A (read in place, one broadcast per row and step) and a packed `kc`×`NR` panel of B (one
//! vector load per `NR / lanes` columns and step), keeping the whole tile in registers.
//!
//! One kernel per instruction set, chosen once per process (`super::Isa`): AVX-512 8×32 (16 zmm
//! accumulators, 10 loads per 16 FMAs, so the FMA ports, not the load ports, set the pace), AVX2
//! 6×16 (BLIS's Haswell shape: 12 ymm accumulators) and a portable 4×8 one.

/// The most rows any kernel's tile has (the length of the row-offset array).
pub(super) const MAX_MR: usize = 8;

/// Where one tile reads A and writes C.
///
/// Row `i < MR` of A starts at `a + rows[i]` and advances by `csa` per step of k; C's row `i`
/// starts at `c + i * ldc` and is unit-stride.
#[derive(Clone, Copy)]
pub(super) struct Tile {
    /// Steps of k in this pass.
    pub kc: usize,
    /// Scale of the product.
    pub alpha: f32,
    /// A's element `[0, 0]` of the tile.
    pub a: *const f32,
    /// Offsets of A's rows from `a` (rows past the tile's last real row repeat row 0: their
    /// results are computed and dropped, so every read stays inside A).
    pub rows: [isize; MAX_MR],
    /// A's stride along k.
    pub csa: isize,
    /// The packed B panel: `kc` rows of `NR` contiguous values.
    pub b: *const f32,
    /// `C = alpha·AB + beta·C`; with `beta == 0` C is not read (it may be uninitialised).
    pub beta: f32,
    /// C's element `[0, 0]` of the tile.
    pub c: *mut f32,
    /// C's row stride.
    pub ldc: usize,
}

/// A microkernel of one instruction set.
pub(super) trait Micro {
    /// Rows of a tile.
    const MR: usize;
    /// Columns of a tile (the width of a packed B panel).
    const NR: usize;

    /// Computes one tile.
    ///
    /// # Safety
    /// The CPU has the kernel's instruction set; `t.kc > 0`; A's elements `t.a + rows[i] + p·csa`
    /// (`i < MR`, `p < kc`) are readable, the panel holds `kc·NR` values, and C's `MR`×`NR`
    /// elements at `t.c` (row stride `ldc`) are writable, readable unless `beta == 0`, and
    /// alias neither A nor the panel.
    unsafe fn tile(t: &Tile);

    /// Whether [`Micro::half_tile`] computes a half-width tile.
    const HALF: bool = false;

    /// Computes the first `NR / 2` columns of a tile from the same full-width panel, for the last
    /// panel of a product whose width leaves at most half a panel there (n = 196 is six panels
    /// of 32 and 4 columns): half the multiply-adds of a whole tile. Every element sees the
    /// same operations as in [`Micro::tile`], so results do not depend on which one ran.
    ///
    /// # Safety
    /// As [`Micro::tile`], with only C's `MR`×`NR / 2` elements at `t.c` needed; only kernels
    /// with `HALF` implement it.
    unsafe fn half_tile(t: &Tile) {
        // SAFETY: forwarded; without `HALF` callers never come here, and the whole tile is
        // the caller's to give.
        unsafe { Self::tile(t) }
    }
}

/// The portable kernel: 4×8 in plain arrays (the compiler vectorises the column loop).
pub(super) struct Portable;

impl Micro for Portable {
    const MR: usize = 4;
    const NR: usize = 8;

    unsafe fn tile(t: &Tile) {
        const MR: usize = Portable::MR;
        const NR: usize = Portable::NR;
        let mut acc = [[0f32; NR]; MR];
        let (mut ap, mut bp) = (t.a, t.b);
        for _ in 0..t.kc {
            // SAFETY: the caller guarantees these A and panel elements are readable.
            let bv: [f32; NR] = unsafe { *(bp as *const [f32; NR]) };
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let av = unsafe { *ap.offset(t.rows[i]) };
                for (r, &bj) in row.iter_mut().zip(&bv) {
                    *r += av * bj;
                }
            }
            // SAFETY: one step along k stays within (or one past) A's rows and the panel.
            unsafe {
                ap = ap.offset(t.csa);
                bp = bp.add(NR);
            }
        }
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: the caller guarantees C's tile is writable (and readable unless beta == 0).
            let c = unsafe { std::slice::from_raw_parts_mut(t.c.add(i * t.ldc), NR) };
            for (cj, &r) in c.iter_mut().zip(row) {
                *cj = if t.beta == 0.0 {
                    t.alpha * r
                } else {
                    t.alpha * r + t.beta * *cj
                };
            }
        }
    }
}

/// The AVX2+FMA kernel, 6×16.
#[cfg(target_arch = "x86_64")]
pub(super) struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Micro for Avx2 {
    const MR: usize = 6;
    const NR: usize = 16;

    unsafe fn tile(t: &Tile) {
        // SAFETY: forwarded: the caller guarantees AVX2+FMA and the memory of the tile.
        unsafe { avx2_tile::<2>(t) }
    }

    const HALF: bool = true;

    unsafe fn half_tile(t: &Tile) {
        // SAFETY: forwarded: AVX2+FMA, and C's first 8 columns of the tile.
        unsafe { avx2_tile::<1>(t) }
    }
}

#[cfg(target_arch = "x86_64")]
/// `V` vectors of 8 columns per row: 2 for the whole tile, 1 for the half.
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_tile<const V: usize>(t: &Tile) {
    use std::arch::x86_64::*;
    const MR: usize = Avx2::MR;
    let mut acc = [_mm256_setzero_ps(); 2 * MR];
    let rows = t.rows;
    let (mut ap, mut bp) = (t.a, t.b);
    for _ in 0..t.kc {
        // SAFETY: (whole block) the caller guarantees the A elements and the panel's 16 values
        // of this step are readable; one step along k stays within (or one past) them.
        unsafe {
            let b = [_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8 * (V - 1)))];
            for i in 0..MR {
                let av = _mm256_broadcast_ss(&*ap.offset(rows[i]));
                for h in 0..V {
                    acc[2 * i + h] = _mm256_fmadd_ps(av, b[h], acc[2 * i + h]);
                }
            }
            ap = ap.offset(t.csa);
            bp = bp.add(16);
        }
    }
    let alpha = _mm256_set1_ps(t.alpha);
    let beta = _mm256_set1_ps(t.beta);
    for i in 0..MR {
        // SAFETY: the caller guarantees C's row i (8·V values) is writable, and readable
        // unless beta == 0.
        unsafe {
            let c = t.c.add(i * t.ldc);
            for h in 0..V {
                let ch = c.add(8 * h);
                let v = if t.beta == 0.0 {
                    _mm256_mul_ps(alpha, acc[2 * i + h])
                } else {
                    _mm256_fmadd_ps(
                        alpha,
                        acc[2 * i + h],
                        _mm256_mul_ps(beta, _mm256_loadu_ps(ch)),
                    )
                };
                _mm256_storeu_ps(ch, v);
            }
        }
    }
}

/// The AVX-512 kernel, 8×32.
#[cfg(target_arch = "x86_64")]
pub(super) struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Micro for Avx512 {
    const MR: usize = 8;
    const NR: usize = 32;

    unsafe fn tile(t: &Tile) {
        // SAFETY: forwarded: the caller guarantees AVX-512F and the memory of the tile.
        unsafe { avx512_tile::<2>(t) }
    }

    const HALF: bool = true;

    unsafe fn half_tile(t: &Tile) {
        // SAFETY: forwarded: AVX-512F, and C's first 16 columns of the tile.
        unsafe { avx512_tile::<1>(t) }
    }
}

#[cfg(target_arch = "x86_64")]
/// `V` vectors of 16 columns per row: 2 for the whole tile, 1 for the half.
#[target_feature(enable = "avx512f")]
unsafe fn avx512_tile<const V: usize>(t: &Tile) {
    use std::arch::x86_64::*;
    const MR: usize = Avx512::MR;
    let mut acc = [_mm512_setzero_ps(); 2 * MR];
    let rows = t.rows;
    let (mut ap, mut bp) = (t.a, t.b);
    for _ in 0..t.kc {
        // SAFETY: (whole block) the caller guarantees the A elements and the panel's 32 values
        // of this step are readable; one step along k stays within (or one past) them.
        unsafe {
            let b = [_mm512_loadu_ps(bp), _mm512_loadu_ps(bp.add(16 * (V - 1)))];
            for i in 0..MR {
                let av = _mm512_set1_ps(*ap.offset(rows[i]));
                for h in 0..V {
                    acc[2 * i + h] = _mm512_fmadd_ps(av, b[h], acc[2 * i + h]);
                }
            }
            ap = ap.offset(t.csa);
            bp = bp.add(32);
        }
    }
    let alpha = _mm512_set1_ps(t.alpha);
    let beta = _mm512_set1_ps(t.beta);
    for i in 0..MR {
        // SAFETY: the caller guarantees C's row i (16·V values) is writable, and readable
        // unless beta == 0.
        unsafe {
            let c = t.c.add(i * t.ldc);
            for h in 0..V {
                let ch = c.add(16 * h);
                let v = if t.beta == 0.0 {
                    _mm512_mul_ps(alpha, acc[2 * i + h])
                } else {
                    _mm512_fmadd_ps(
                        alpha,
                        acc[2 * i + h],
                        _mm512_mul_ps(beta, _mm512_loadu_ps(ch)),
                    )
                };
                _mm512_storeu_ps(ch, v);
            }
        }
    }
}
