//! Packing: `kc` rows of B become `⌈n / nr⌉` panels of `kc` rows × `nr` contiguous columns each
//! (the last panel zero-padded), the order in which a microkernel reads them; a column-major A
//! becomes panels of `mr` rows, so its tiles stream from memory instead of touching a new cache
//! line per step.

/// Packs rows `0..kc` of the k×n matrix at `b` (strides `rs`, `cs`) into `out`.
///
/// # Safety
/// Every element `b + p·rs + j·cs` (`p < kc`, `j < n`) is readable and `out` holds at least
/// `⌈n / nr⌉ · nr · kc` values.
pub(super) unsafe fn pack_b(
    kc: usize,
    n: usize,
    nr: usize,
    b: *const f32,
    rs: isize,
    cs: isize,
    out: &mut [f32],
) {
    let panels = n.div_ceil(nr);
    assert!(out.len() >= panels * nr * kc, "pack_b: scratch too small");
    for jp in 0..panels {
        let j0 = jp * nr;
        let w = nr.min(n - j0);
        let panel = &mut out[jp * nr * kc..(jp + 1) * nr * kc];
        if cs == 1 {
            // Rows of B are contiguous: one copy per row of the panel.
            for (p, dst) in panel.chunks_exact_mut(nr).enumerate() {
                // SAFETY: row p, columns j0..j0+w of B are readable (caller).
                let src = unsafe {
                    std::slice::from_raw_parts(b.offset(p as isize * rs + j0 as isize), w)
                };
                dst[..w].copy_from_slice(src);
                dst[w..].fill(0.0);
            }
        } else {
            if w < nr {
                panel.fill(0.0);
            }
            let mut done = 0;
            #[cfg(target_arch = "x86_64")]
            if rs == 1 && super::super::simd::has_avx2_fma() {
                // SAFETY: AVX2 is present; columns j0.. of B are contiguous (rs == 1) and
                // readable for kc rows (caller).
                done =
                    unsafe { transpose_columns(kc, w, nr, b.offset(j0 as isize * cs), cs, panel) };
            }
            // Columns of B are read one at a time (contiguous when `rs == 1`, B transposed) and
            // scattered down the panel, which is small enough to stay in L1.
            for j in done..w {
                // SAFETY: column j0 + j of B exists (caller).
                let col = unsafe { b.offset((j0 + j) as isize * cs) };
                for p in 0..kc {
                    // SAFETY: element [p, j0 + j] of B is readable (caller).
                    panel[p * nr + j] = unsafe { *col.offset(p as isize * rs) };
                }
            }
        }
    }
}

/// Packs the whole 8-column groups of a panel whose columns are contiguous (B transposed, as in
/// a `Linear`'s `x @ w.t()`) by 8×8 transposes in registers; returns how many columns it did
/// (whole groups of 8; rows past the last multiple of 8 included, scalar).
///
/// # Safety
/// AVX2 is present; `col0 + j·cs + p` is readable for `j < w`, `p < kc`; `panel` holds
/// `kc·nr` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn transpose_columns(
    kc: usize,
    w: usize,
    nr: usize,
    col0: *const f32,
    cs: isize,
    panel: &mut [f32],
) -> usize {
    use std::arch::x86_64::*;
    assert!(panel.len() >= kc * nr);
    let groups = w / 8;
    let out = panel.as_mut_ptr();
    for g in 0..groups {
        let j = 8 * g;
        // Written out, not `array::from_fn`: a closure would not inherit this function's target
        // features and the loads would go through memory.
        let mut cols = [col0; 8];
        for (t, c) in cols.iter_mut().enumerate() {
            // SAFETY: column j + t (t < 8 ≤ w - j) exists.
            *c = unsafe { col0.offset((j + t) as isize * cs) };
        }
        let mut p = 0;
        while p + 8 <= kc {
            // SAFETY: (whole block) rows p..p+8 of the 8 columns are readable; the stores write
            // rows p..p+8, columns j..j+8 of the panel (kc·nr values, asserted above).
            unsafe {
                let mut r = [_mm256_setzero_ps(); 8];
                for t in 0..8 {
                    r[t] = _mm256_loadu_ps(cols[t].add(p));
                }
                let t0 = _mm256_unpacklo_ps(r[0], r[1]);
                let t1 = _mm256_unpackhi_ps(r[0], r[1]);
                let t2 = _mm256_unpacklo_ps(r[2], r[3]);
                let t3 = _mm256_unpackhi_ps(r[2], r[3]);
                let t4 = _mm256_unpacklo_ps(r[4], r[5]);
                let t5 = _mm256_unpackhi_ps(r[4], r[5]);
                let t6 = _mm256_unpacklo_ps(r[6], r[7]);
                let t7 = _mm256_unpackhi_ps(r[6], r[7]);
                let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let rows = [
                    _mm256_permute2f128_ps::<0x20>(u0, u4),
                    _mm256_permute2f128_ps::<0x20>(u1, u5),
                    _mm256_permute2f128_ps::<0x20>(u2, u6),
                    _mm256_permute2f128_ps::<0x20>(u3, u7),
                    _mm256_permute2f128_ps::<0x31>(u0, u4),
                    _mm256_permute2f128_ps::<0x31>(u1, u5),
                    _mm256_permute2f128_ps::<0x31>(u2, u6),
                    _mm256_permute2f128_ps::<0x31>(u3, u7),
                ];
                for (q, row) in rows.iter().enumerate() {
                    _mm256_storeu_ps(out.add((p + q) * nr + j), *row);
                }
            }
            p += 8;
        }
        for p in p..kc {
            for (t, col) in cols.iter().enumerate() {
                // SAFETY: row p of column j + t is readable; the panel holds kc·nr values.
                unsafe { *out.add(p * nr + j + t) = *col.add(p) };
            }
        }
    }
    8 * groups
}

/// Packs rows `0..mr_total` (all of an `MC` block) of a column-major A (`rs == 1`) for `kc`
/// steps into panels of `mr` rows: panel `t`, step `p` holds rows `t·mr..t·mr + mr` at
/// `out[t·mr·kc + p·mr..]`, rows past `m` zero.
///
/// # Safety
/// `a + i + p·cs` is readable for `i < m`, `p < kc`; `out` holds `⌈m / mr⌉ · mr · kc` values.
pub(super) unsafe fn pack_a_col_major(
    kc: usize,
    m: usize,
    mr: usize,
    a: *const f32,
    cs: isize,
    out: &mut [f32],
) {
    let tiles = m.div_ceil(mr);
    assert!(out.len() >= tiles * mr * kc, "pack_a: scratch too small");
    for t in 0..tiles {
        let i0 = t * mr;
        let h = mr.min(m - i0);
        let panel = &mut out[t * mr * kc..(t + 1) * mr * kc];
        for (p, dst) in panel.chunks_exact_mut(mr).enumerate() {
            // SAFETY: rows i0..i0+h of column p are contiguous and readable (caller).
            let src =
                unsafe { std::slice::from_raw_parts(a.offset(i0 as isize + p as isize * cs), h) };
            dst[..h].copy_from_slice(src);
            dst[h..].fill(0.0);
        }
    }
}
