//! The CPU's SIMD plumbing, in one place: the AVX2+FMA feature check and the `multiversion!`
//! dispatch every vectorised kernel goes through, the lane count of fixed-width inner loops, and
//! the building blocks those loops share (fused multiply-add, a branch-free `exp` for f32,
//! NaN-propagating max/min, lane folds).

use super::num::Num;

/// Lanes of the fixed-width inner loops: enough independent accumulators to hide add latency.
pub(crate) const L: usize = 16;

/// True when the CPU has AVX2 and FMA. The answer is cached: hot kernels ask once per chunk.
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::atomic::{AtomicU8, Ordering};
        // 0 = not asked yet, 1 = no, 2 = yes.
        static CACHE: AtomicU8 = AtomicU8::new(0);
        match CACHE.load(Ordering::Relaxed) {
            0 => {
                let yes = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
                CACHE.store(1 + yes as u8, Ordering::Relaxed);
                yes
            }
            v => v == 2,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Defines `fn $name<T: Bound>(args)` that runs `$imp::<T, true>` compiled with AVX2+FMA when the
/// CPU has them and `$imp::<T, false>` (baseline SSE2) otherwise. `$imp` must be
/// `#[inline(always)]` so its whole body is compiled for the selected features.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident<$T:ident: $B:path>($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? => $imp:ident) => {
        $(#[$m])*
        $vis fn $name<$T: $B>($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<$T: $B>($($a: $t),*) $(-> $r)? {
                    $imp::<$T, true>($($a),*)
                }
                if $crate::cpu::simd::has_avx2_fma() {
                    // SAFETY: the CPU supports the features `avx2` was compiled for.
                    return unsafe { avx2::<$T>($($a),*) };
                }
            }
            $imp::<$T, false>($($a),*)
        }
    };
}
pub(crate) use multiversion;

/// `a * b + c`, fused when `F` (only inside AVX2+FMA code, where it is one instruction; the
/// baseline build would call a slow software fma).
#[inline(always)]
pub(crate) fn fmadd<const F: bool>(a: f32, b: f32, c: f32) -> f32 {
    if F {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `e^x` for f32 without branches or calls, so loops over slices vectorise: range reduction
/// `x = n ln2 + r` (|r| <= ln2/2, ln2 in two parts), a degree-6 polynomial for `e^r` (fitted
/// for minimal relative error; 6 FMAs by Horner), then scaling by `2^n` in two halves so
/// subnormal results and results near overflow are exact. Within 1 ulp of the correctly rounded
/// value (tested); `-inf` gives 0, `+inf` and large inputs give `inf`, NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_f32<const F: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // Adding 1.5 * 2^23 rounds to an integer held in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const C2: f32 = 4.999_999_4e-1;
    const C3: f32 = 1.666_643_2e-1;
    const C4: f32 = 4.166_8e-2;
    const C5: f32 = 8.374_156e-3;
    const C6: f32 = 1.384_364_6e-3;
    // e^-104 rounds to 0 and e^89 overflows, so clamping keeps n in range; NaN compares false
    // and passes through.
    let x = if x < -104.0 { -104.0 } else { x };
    let x = if x > 89.0 { 89.0 } else { x };
    let t = fmadd::<F>(x, LOG2E, SHIFTER);
    let n = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    let nf = t - SHIFTER;
    let r = fmadd::<F>(nf, -LN2_HI, x);
    let r = fmadd::<F>(nf, -LN2_LO, r);
    let mut p = fmadd::<F>(C6, r, C5);
    p = fmadd::<F>(p, r, C4);
    p = fmadd::<F>(p, r, C3);
    p = fmadd::<F>(p, r, C2);
    p = fmadd::<F>(p, r, 1.0);
    let y = fmadd::<F>(p, r, 1.0);
    let n1 = n >> 1;
    let n2 = n.wrapping_sub(n1);
    let s1 = f32::from_bits((n1.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((n2.wrapping_add(127) as u32) << 23);
    y * s1 * s2
}

/// Runs `$imp::<generics>(args)` compiled for AVX2+FMA where the CPU has them (8-wide vectors),
/// else for the baseline target: [`multiversion!`]'s dispatch inline, for any generics. The update loops are `#[inline(always)]` into a `target_feature`
/// function; Rust never contracts `a * b + c` into an FMA, so both builds give the same bits.
macro_rules! with_avx2 {
    ($imp:ident::<$($g:ident),*>[$($gd:tt)*]($($a:ident: $t:ty),*)) => {
        with_avx2!($imp::<$($g),*>[$($gd)*]($($a: $t),*) -> ())
    };
    ($imp:ident::<$($g:ident),*>[$($gd:tt)*]($($a:ident: $t:ty),*) -> $ret:ty) => {{
        #[cfg(target_arch = "x86_64")]
        if $crate::cpu::simd::has_avx2_fma() {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<$($gd)*>($($a: $t),*) -> $ret {
                $imp::<$($g),*>($($a),*)
            }
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { avx2::<$($g),*>($($a),*) };
        }
        $imp::<$($g),*>($($a),*)
    }};
}
pub(crate) use with_avx2;

/// Per-element max/min, NaN propagating, written so that loops like
/// `acc[k] = pmax(acc[k], x[k])` vectorise into plain max/blend code. (A select whose other arm
/// is the old value becomes a masked store, which is very slow on AMD CPUs.)
pub(crate) trait Pick: Num {
    /// The larger of two; NaN if either is NaN.
    fn pmax(a: Self, x: Self) -> Self;
    /// The smaller of two; NaN if either is NaN.
    fn pmin(a: Self, x: Self) -> Self;
}

macro_rules! pick_float {
    ($($t:ty),*) => {$(
        impl Pick for $t {
            #[inline(always)]
            fn pmax(a: Self, x: Self) -> Self {
                let m = a.max(x);
                // `a + x` is NaN exactly when one of them is.
                if a.is_nan() | x.is_nan() { a + x } else { m }
            }
            #[inline(always)]
            fn pmin(a: Self, x: Self) -> Self {
                let m = a.min(x);
                if a.is_nan() | x.is_nan() { a + x } else { m }
            }
        }
    )*};
}
pick_float!(f32, f64);

macro_rules! pick_int {
    ($($t:ty),*) => {$(
        impl Pick for $t {
            #[inline(always)]
            fn pmax(a: Self, x: Self) -> Self {
                std::cmp::max(a, x)
            }
            #[inline(always)]
            fn pmin(a: Self, x: Self) -> Self {
                std::cmp::min(a, x)
            }
        }
    )*};
}
pick_int!(u8, i64);

impl Pick for bool {
    #[inline(always)]
    fn pmax(a: Self, x: Self) -> Self {
        a | x
    }
    #[inline(always)]
    fn pmin(a: Self, x: Self) -> Self {
        a & x
    }
}

/// Folds `xs` with `f` into `L` independent lanes (so the loop vectorises), then combines the
/// lanes pairwise with `g`.
#[inline(always)]
pub(crate) fn lanes_fold<A: Copy, X: Copy>(
    xs: &[X],
    init: A,
    f: impl Fn(A, X) -> A,
    g: impl Fn(A, A) -> A,
) -> A {
    let mut lanes = [init; L];
    let mut it = xs.chunks_exact(L);
    for c in &mut it {
        let c: &[X; L] = c.try_into().unwrap();
        for j in 0..L {
            lanes[j] = f(lanes[j], c[j]);
        }
    }
    let mut tail = init;
    for &x in it.remainder() {
        tail = f(tail, x);
    }
    let mut w = L;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            lanes[j] = g(lanes[j], lanes[j + w]);
        }
    }
    g(lanes[0], tail)
}
