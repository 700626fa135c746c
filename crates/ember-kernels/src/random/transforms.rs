//! PyTorch's CPU transforms from raw generator words to values: what `torch.rand`, `randn`,
//! `randint`, `bernoulli` and friends compute from each mt19937 draw (ATen's
//! `TransformationHelper.h`, `DistributionsHelper.h` and the normal kernels of
//! `native/cpu/DistributionTemplates.h`). Device-neutral: pure functions of the words.
//!
//! Bit-exactness with PyTorch's x86-64 build needs two details the sources do not show: its
//! compiler fuses `a * b + c` into one rounding wherever the product feeds only that sum (so the
//! formulas below use `mul_add` exactly there), and the vectorised normal path evaluates `ln`,
//! `sin` and `cos` with Cephes polynomials (`avx_mathfun.h`), reproduced here operation by
//! operation.

/// 2⁻²⁴ and 2⁻⁵³: the weight of one unit of a 24- / 53-bit draw.
const F32_UNIT: f32 = 1.0 / (1u32 << 24) as f32;
const F64_UNIT: f64 = 1.0 / (1u64 << 53) as f64;

/// A float in [0, 1) from the **low** 24 bits of a 32-bit word (`uniform_real` for float).
#[inline(always)]
pub fn unit_f32(x: u32) -> f32 {
    (x & 0x00ff_ffff) as f32 * F32_UNIT
}

/// A double in [0, 1) from the low 53 bits of a 64-bit draw (`uniform_real` for double).
#[inline(always)]
pub fn unit_f64(x: u64) -> f64 {
    (x & ((1 << 53) - 1)) as f64 * F64_UNIT
}

/// `torch.rand`/`uniform_(from, to)` in float32: `u·(to − from) + from`, one rounding, from one
/// 32-bit word. Like PyTorch, the result is not clamped below `to`.
#[inline(always)]
pub fn uniform_f32(x: u32, from: f32, to: f32) -> f32 {
    unit_f32(x).mul_add(to - from, from)
}

/// [`uniform_f32`] in float64, from one 64-bit draw.
#[inline(always)]
pub fn uniform_f64(x: u64, from: f64, to: f64) -> f64 {
    unit_f64(x).mul_add(to - from, from)
}

/// Ranges at least this wide draw 64 bits per integer (`randint`, `random_(from, to)`); narrower
/// ones one 32-bit word (PyTorch accepts the modulo bias there: under 5%).
pub const WIDE_RANGE: u64 = 1 << 28;

/// `randint`'s value from a draw: `base + x mod range` (wrapping, as PyTorch's unsigned sum).
#[inline(always)]
pub fn int_from_to(x: u64, range: u64, base: i64) -> i64 {
    base.wrapping_add((x % range) as i64)
}

/// `bernoulli_(p)` with a float64 `p` (scalar `p` always is): a 64-bit draw below `p`.
#[inline(always)]
pub fn bernoulli_f64(x: u64, p: f64) -> bool {
    unit_f64(x) < p
}

/// `bernoulli` with a float32 probability: a 32-bit draw below `p`, compared in float32.
#[inline(always)]
pub fn bernoulli_f32(x: u32, p: f32) -> bool {
    unit_f32(x) < p
}

/// One Box–Muller step of the sequential normal sampler (`at::normal_distribution<double>`):
/// from uniforms `u1`, `u2` (drawn in that order), `(r cos θ, r sin θ)` with
/// `r = √(−2 ln(1 − u2))` and `θ = 2π u1`. PyTorch returns the first and keeps the second in the
/// generator for the next draw.
#[inline]
pub fn box_muller_f64(u1: f64, u2: f64) -> (f64, f64) {
    let r = (-2.0 * (-u2).ln_1p()).sqrt();
    let (sin, cos) = (std::f64::consts::TAU * u1).sin_cos();
    (r * cos, r * sin)
}

/// `z · std + mean` (one rounding), the scaling every normal path ends with.
#[inline(always)]
pub fn scale_f64(z: f64, mean: f64, std: f64) -> f64 {
    z.mul_add(std, mean)
}

/// The vectorised normal path for float32 (`normal_fill_16_AVX2`): 16 uniforms in [0, 1) become
/// 16 normals, lane `j < 8` pairing `u[j]` (radius, from `1 − u[j]`) with `u[j + 8]` (angle) into
/// `out[j] = r cos θ`, `out[j + 8] = r sin θ`, each scaled as `z · std + mean`.
#[inline(always)]
pub fn normal16_f32(u: &[f32; 16], mean: f32, std: f32) -> [f32; 16] {
    // 2π rounded to float32 from the double product, as the kernel's constant is.
    const TWO_PI: f32 = std::f64::consts::TAU as f32;
    let mut out = [0f32; 16];
    for j in 0..8 {
        let r = (-2.0 * ln_cephes(1.0 - u[j])).sqrt();
        let (sin, cos) = sin_cos_cephes(TWO_PI * u[j + 8]);
        out[j] = (r * cos).mul_add(std, mean);
        out[j + 8] = (r * sin).mul_add(std, mean);
    }
    out
}

/// The vectorised normal path for float64 (`normal_fill_16<double>`), pairing lanes as
/// [`normal16_f32`] with the platform's `ln`, `sin` and `cos`.
#[inline(always)]
pub fn normal16_f64(u: &[f64; 16], mean: f64, std: f64) -> [f64; 16] {
    let mut out = [0f64; 16];
    for j in 0..8 {
        let r = (-2.0 * (1.0 - u[j]).ln()).sqrt();
        let (sin, cos) = (std::f64::consts::TAU * u[j + 8]).sin_cos();
        out[j] = (r * cos).mul_add(std, mean);
        out[j + 8] = (r * sin).mul_add(std, mean);
    }
    out
}

/// ln x by Cephes' `logf` as `avx_mathfun.h`'s `log256_ps` evaluates it, for `x` in
/// [2⁻²⁴, 1] (the values `1 − u` takes): `x = m·2ᵉ` with `m` in [√½, √2), then
/// `ln x = e ln 2 + (m − 1) − (m − 1)²/2 + (m − 1)³ P(m − 1)`, ln 2 split in two parts.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' published constants, rounded by the compiler
pub fn ln_cephes(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    const P: [f32; 9] = [
        7.0376836292E-2,
        -1.1514610310E-1,
        1.1676998740E-1,
        -1.2420140846E-1,
        1.4249322787E-1,
        -1.6668057665E-1,
        2.0000714765E-1,
        -2.4999993993E-1,
        3.3333331174E-1,
    ];
    const LN2_LO: f32 = -2.12194440e-4;
    const LN2_HI: f32 = 0.693359375;
    let bits = x.to_bits();
    // The mantissa with the exponent of 0.5, so m is in [0.5, 1), and e counted to match.
    let m = f32::from_bits((bits & !0x7f80_0000) | 0.5f32.to_bits());
    let mut e = ((bits >> 23) as i32 - 0x7f) as f32 + 1.0;
    let small = m < SQRT_HALF;
    // m < √½: use 2m − 1 and e − 1, keeping the argument near zero.
    let mut x = m - 1.0;
    if small {
        e -= 1.0;
        x += m;
    }
    let z = x * x;
    let mut y = P[0].mul_add(x, P[1]);
    for &p in &P[2..] {
        y = y.mul_add(x, p);
    }
    y *= x;
    y = y.mul_add(z, e * LN2_LO);
    y = (-z).mul_add(0.5, y);
    e.mul_add(LN2_HI, x + y)
}

/// (sin x, cos x) by Cephes' `sinf`/`cosf` as `avx_mathfun.h`'s `sincos256_ps` evaluates them,
/// for `x` in [0, 2π] (the Box–Muller angle): reduction by π/4 in three parts (extended
/// precision), then one polynomial per function on [−π/4, π/4], swapped and signed by octant.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' published constants, rounded by the compiler
pub fn sin_cos_cephes(x: f32) -> (f32, f32) {
    const FOUR_OVER_PI: f32 = 1.27323954473516;
    const DP: [f32; 3] = [
        -0.78515625,
        -2.4187564849853515625e-4,
        -3.77489497744594108e-8,
    ];
    const SIN: [f32; 3] = [-1.9515295891E-4, 8.3321608736E-3, -1.6666654611E-1];
    const COS: [f32; 3] = [
        2.443315711809948E-005,
        -1.388731625493765E-003,
        4.166664568298827E-002,
    ];
    let sign_sin = x.to_bits() & 0x8000_0000;
    let mut x = x.abs();
    // The octant, rounded up to even (`j = (j + 1) & !1`), as an integer and a float.
    let j = ((x * FOUR_OVER_PI) as i32 + 1) & !1;
    let y = j as f32;
    let sin_flip = ((j & 4) as u32) << 29;
    let cos_flip = ((!(j - 2) & 4) as u32) << 29;
    // Octants 0 and 3 mod 4 evaluate sin with the sine polynomial, 1 and 2 with the cosine one.
    let sine_poly = j & 2 == 0;
    for dp in DP {
        x = y.mul_add(dp, x);
    }
    let z = x * x;
    let mut c = COS[0].mul_add(z, COS[1]);
    c = c.mul_add(z, COS[2]);
    c *= z;
    c = c.mul_add(z, -(z * 0.5));
    c += 1.0;
    let mut s = SIN[0].mul_add(z, SIN[1]);
    s = s.mul_add(z, SIN[2]);
    s *= z;
    s = s.mul_add(x, x);
    // The masked select and sums of the vector code (they turn −0 into +0).
    let (from_c, from_s) = if sine_poly { (0.0, s) } else { (c, 0.0) };
    let sin = from_c + from_s;
    let cos = (c - from_c) + (s - from_s);
    (
        f32::from_bits(sin.to_bits() ^ sign_sin ^ sin_flip),
        f32::from_bits(cos.to_bits() ^ cos_flip),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_use_the_low_bits() {
        assert_eq!(unit_f32(0xff00_0000), 0.0);
        assert_eq!(unit_f32(0x00ff_ffff), 1.0 - F32_UNIT);
        assert_eq!(unit_f64(u64::MAX << 53), 0.0);
        assert_eq!(unit_f64(u64::MAX), 1.0 - F64_UNIT);
        assert_eq!(uniform_f32(0, -3.0, 3.0), -3.0);
        // One rounding: 2⁻²⁴·6 − 3 rounds once to the float nearest −3 + 6·2⁻²⁴.
        assert_eq!(uniform_f32(1, -3.0, 3.0), -3.0 + 6.0 * F32_UNIT);
        assert_eq!(int_from_to(17, 5, -2), 0);
        assert_eq!(int_from_to(u64::MAX, u64::MAX, i64::MIN), i64::MIN);
        assert!(bernoulli_f64(0, 1e-300) && !bernoulli_f64(0, 0.0));
        assert!(bernoulli_f32(u32::MAX, 1.0));
    }

    #[test]
    fn cephes_ln_and_sin_cos_are_accurate() {
        let mut worst = 0f64;
        for k in 1..=(1u32 << 24) {
            let x = k as f32 * F32_UNIT;
            let err = (ln_cephes(x) as f64 - (x as f64).ln()).abs();
            worst = worst.max(err / (x as f64).ln().abs().max(1.0));
        }
        assert!(worst < 3e-7, "ln error {worst}");
        let mut worst = 0f64;
        for k in (0..(1u32 << 24)).step_by(7) {
            let a = (k as f32 * F32_UNIT) * std::f64::consts::TAU as f32;
            let (s, c) = sin_cos_cephes(a);
            worst = worst
                .max((s as f64 - (a as f64).sin()).abs())
                .max((c as f64 - (a as f64).cos()).abs());
        }
        assert!(worst < 3e-7, "sin/cos error {worst}");
        assert_eq!(ln_cephes(1.0), 0.0);
        assert_eq!(sin_cos_cephes(0.0), (0.0, 1.0));
    }

    #[test]
    fn box_muller_lanes() {
        // u = 0 in every lane: radius 0 (ln 1), angle 0, so every value is the mean.
        assert_eq!(normal16_f32(&[0.0; 16], 2.5, 3.0), [2.5; 16]);
        assert_eq!(normal16_f64(&[0.0; 16], -1.0, 0.5), [-1.0; 16]);
        // Lane 0 radius from u[0], angle from u[8]: a quarter turn puts it all in the sine.
        let mut u = [0.0; 16];
        u[0] = 1.0 - (-0.5f64).exp(); // r = 1
        u[8] = 0.25;
        let z = normal16_f64(&u, 0.0, 1.0);
        assert!(z[0].abs() < 1e-15 && (z[8] - 1.0).abs() < 1e-15, "{z:?}");
        let (c, s) = box_muller_f64(0.25, 1.0 - (-0.5f64).exp());
        assert!(c.abs() < 1e-15 && (s - 1.0).abs() < 1e-15);
        assert_eq!(scale_f64(1.5, 1.0, 2.0), 4.0);
    }
}
