// Counter-based random numbers and creation ops (random.rs, cpu/creation.rs). Value j of a
// random op reads Philox block j / K, lane j % K of its stream — the CPU backend's rule — so a
// draw depends only on (seed, offset, j): the same on every GPU, every run and every launch
// configuration, and (for the ops below except f64 normal, whose log/sin/cos come from CUDA's
// libm) bit-identical to the CPU backend's draw from the same generator state.

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

struct Words {
    u32 w[4];
};

// Philox4x32-10 of block `i` of the stream (seed, offset): counter offset + i, key seed.
__device__ __forceinline__ Words philox(u64 seed, u64 offset, u64 i) {
    u64 ctr = offset + i;
    u32 c0 = (u32)ctr, c1 = (u32)(ctr >> 32), c2 = 0, c3 = 0;
    u32 k0 = (u32)seed, k1 = (u32)(seed >> 32);
#pragma unroll
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        u32 hi0 = __umulhi(PHILOX_M0, c0), lo0 = PHILOX_M0 * c0;
        u32 hi1 = __umulhi(PHILOX_M1, c2), lo1 = PHILOX_M1 * c2;
        u32 n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    Words r;
    r.w[0] = c0;
    r.w[1] = c1;
    r.w[2] = c2;
    r.w[3] = c3;
    return r;
}

#define F32_UNIT (1.0f / 16777216.0f)
#define F64_UNIT (1.0 / 9007199254740992.0)

__device__ __forceinline__ float unit_f32(u32 x) { return (float)(x >> 8) * F32_UNIT; }
__device__ __forceinline__ double unit_f64(u32 lo, u32 hi) {
    return (double)((((u64)hi << 32) | lo) >> 11) * F64_UNIT;
}

// Grid-stride loop over Philox blocks: thread-block b handles values K*b .. K*b+K-1.
#define FOR_EACH_BLOCK(nblocks, b) \
    for (u64 b = (u64)blockIdx.x * blockDim.x + threadIdx.x; b < (nblocks); b += (u64)gridDim.x * blockDim.x)

#ifdef DTYPE_F32
// f32 uniform in [lo, lo + range), capped below `cap` (the largest float under `high`).
extern "C" __global__ void uniform_f32(float* out, u64 n, u64 seed, u64 offset, float lo, float range,
                                       float cap) {
    FOR_EACH_BLOCK((n + 3) / 4, b) {
        Words w = philox(seed, offset, b);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            u64 j = 4 * b + k;
            if (j < n) out[j] = fminf(unit_f32(w.w[k]) * range + lo, cap);
        }
    }
}

#endif

#ifdef DTYPE_F64
extern "C" __global__ void uniform_f64(double* out, u64 n, u64 seed, u64 offset, double lo,
                                       double range, double cap) {
    FOR_EACH_BLOCK((n + 1) / 2, b) {
        Words w = philox(seed, offset, b);
#pragma unroll
        for (int h = 0; h < 2; h++) {
            u64 j = 2 * b + h;
            if (j < n) out[j] = fmin(unit_f64(w.w[2 * h], w.w[2 * h + 1]) * range + lo, cap);
        }
    }
}

#endif

// The CPU backend's branch-free ln and sin/cos (cpu/creation.rs), same operations.
__device__ __forceinline__ float ln_f32(float x) {
    u32 bits = __float_as_uint(x);
    int e = (int)(bits >> 23) - 127;
    float m = __uint_as_float((bits & 0x007fffffu) | 0x3f800000u);
    bool big = m > 1.41421356237309504880f;
    m = big ? m * 0.5f : m;
    e += big ? 1 : 0;
    float s = (m - 1.0f) / (m + 1.0f);
    float s2 = s * s;
    float poly = 1.0f + s2 * (1.0f / 3.0f + s2 * (1.0f / 5.0f + s2 * (1.0f / 7.0f + s2 * (1.0f / 9.0f))));
    return (float)e * 0.693147180559945309417f + 2.0f * s * poly;
}

__device__ __forceinline__ void sin_cos_turns_f32(float u, float* sn, float* cs) {
    float t = u * 4.0f;
    int qi = (int)(t + 0.5f);
    float a = (t - (float)qi) * 1.57079632679489661923f;
    float a2 = a * a;
    float s = a * (1.0f + a2 * (-1.0f / 6.0f + a2 * (1.0f / 120.0f + a2 * (-1.0f / 5040.0f + a2 * (1.0f / 362880.0f)))));
    float c = 1.0f + a2 * (-0.5f + a2 * (1.0f / 24.0f + a2 * (-1.0f / 720.0f + a2 * (1.0f / 40320.0f + a2 * (-1.0f / 3628800.0f)))));
    u32 q = (u32)qi & 3;
    float x = (q & 1) ? c : s;
    float y = (q & 1) ? s : c;
    *sn = __uint_as_float(__float_as_uint(x) ^ ((q & 2) << 30));
    *cs = __uint_as_float(__float_as_uint(y) ^ (((q + 1) & 2) << 30));
}

#ifdef DTYPE_F32
// Box–Muller: words (a, b) give r·cos θ and r·sin θ with r = √(-2 ln(1 - u(a))), θ = 2π u(b).
extern "C" __global__ void normal_f32(float* out, u64 n, u64 seed, u64 offset, float mean, float std) {
    FOR_EACH_BLOCK((n + 3) / 4, b) {
        Words w = philox(seed, offset, b);
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float r = sqrtf(-2.0f * ln_f32(1.0f - unit_f32(w.w[2 * h])));
            float s, c;
            sin_cos_turns_f32(unit_f32(w.w[2 * h + 1]), &s, &c);
            u64 j = 4 * b + 2 * h;
            if (j < n) out[j] = r * c * std + mean;
            if (j + 1 < n) out[j + 1] = r * s * std + mean;
        }
    }
}

#endif

#ifdef DTYPE_F64
extern "C" __global__ void normal_f64(double* out, u64 n, u64 seed, u64 offset, double mean, double std) {
    FOR_EACH_BLOCK((n + 1) / 2, b) {
        Words w = philox(seed, offset, b);
        double r = sqrt(-2.0 * log(1.0 - unit_f64(w.w[0], w.w[1])));
        double s, c;
        sincos(6.283185307179586476925 * unit_f64(w.w[2], w.w[3]), &s, &c);
        u64 j = 2 * b;
        if (j < n) out[j] = r * c * std + mean;
        if (j + 1 < n) out[j + 1] = r * s * std + mean;
    }
}

#endif

// A success when the 32-bit draw is below p·2³² (exact at p = 0 and p = 1).
__device__ __forceinline__ u64 threshold(double p) { return (u64)(p * 4294967296.0); }

// Per-element probabilities (contiguous, float); a probability outside [0, 1] is an error.
template <typename T>
__device__ __forceinline__ void bernoulli_impl(T* out, const T* probs, u64 n, u64 seed, u64 offset, u64* err) {
    FOR_EACH_BLOCK((n + 3) / 4, b) {
        Words w = philox(seed, offset, b);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            u64 j = 4 * b + k;
            if (j < n) {
                double p = (double)probs[j];
                if (!(p >= 0.0 && p <= 1.0)) report(err, ERR_BERNOULLI_PROB, __double_as_longlong(p), 0, 0);
                out[j] = ((u64)w.w[k] < threshold(p)) ? (T)1 : (T)0;
            }
        }
    }
}

// 1 with probability p: 32-bit draws below `t` (or always when `always`).
template <typename T>
__device__ __forceinline__ void bernoulli_scalar_impl(T* out, u64 n, u64 seed, u64 offset, u32 t, u32 always) {
    FOR_EACH_BLOCK((n + 3) / 4, b) {
        Words w = philox(seed, offset, b);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            u64 j = 4 * b + k;
            if (j < n) out[j] = (always || w.w[k] < t) ? (T)1 : (T)0;
        }
    }
}

#ifdef DTYPE_I64
// int64 uniform in [low, low + range): a 64-bit draw times range, high half (multiply-shift).
extern "C" __global__ void randint_i64(i64* out, u64 n, u64 seed, u64 offset, i64 low, u64 range) {
    FOR_EACH_BLOCK((n + 1) / 2, b) {
        Words w = philox(seed, offset, b);
#pragma unroll
        for (int h = 0; h < 2; h++) {
            u64 j = 2 * b + h;
            u64 x = ((u64)w.w[2 * h + 1] << 32) | w.w[2 * h];
            if (j < n) out[j] = (i64)((u64)low + __umul64hi(x, range));
        }
    }
}

#endif

// ---- creation ---------------------------------------------------------------------------

#define FOR_EACH_INDEX(n, i) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

// arange: floats as start + step·i in f64 (then rounded to T); integers in exact wrapping
// integer arithmetic of the truncated start and step.
template <typename T> __device__ __forceinline__ void arange_float(T* out, u64 n, double start, double step) {
    FOR_EACH_INDEX(n, i) out[i] = (T)(start + step * (double)i);
}
template <typename T> __device__ __forceinline__ void arange_int(T* out, u64 n, i64 start, i64 step) {
    FOR_EACH_INDEX(n, i) out[i] = (T)(i64)((u64)start + (u64)step * i);
}

// linspace: the first half counts up from start, the second half down from end.
template <typename T>
__device__ __forceinline__ void linspace_float(T* out, u64 n, T s, T e, T step) {
    u64 half = n / 2;
    FOR_EACH_INDEX(n, i) out[i] = i < half ? s + step * (T)(double)i : e - step * (T)(double)(n - 1 - i);
}
template <typename T>
__device__ __forceinline__ void linspace_int(T* out, u64 n, double s, double e, double step) {
    u64 half = n / 2;
    FOR_EACH_INDEX(n, i) {
        double v = i < half ? s + step * (double)i : e - step * (double)(n - 1 - i);
        out[i] = (T)(i64)v;
    }
}

// Ones on the diagonal of an n × m matrix that arrives zeroed.
template <typename T> __device__ __forceinline__ void eye_impl(T* out, u64 diag, u64 m) {
    FOR_EACH_INDEX(diag, i) out[i * m + i] = (T)1;
}

#define INSTANTIATE_RANDOM(T, N)                                                                \
    extern "C" __global__ void bernoulli_scalar_##N(T* out, u64 n, u64 seed, u64 offset, u32 t, \
                                                    u32 always) {                               \
        bernoulli_scalar_impl<T>(out, n, seed, offset, t, always);                              \
    }                                                                                           \
    extern "C" __global__ void eye_##N(T* out, u64 diag, u64 m) { eye_impl<T>(out, diag, m); }

#define INSTANTIATE_RANDOM_FLOAT(T, N)                                                          \
    extern "C" __global__ void bernoulli_##N(T* out, const T* probs, u64 n, u64 seed,           \
                                             u64 offset, u64* err) {                            \
        bernoulli_impl<T>(out, probs, n, seed, offset, err);                                    \
    }                                                                                           \
    extern "C" __global__ void arange_##N(T* out, u64 n, double start, double step) {           \
        arange_float<T>(out, n, start, step);                                                   \
    }                                                                                           \
    extern "C" __global__ void linspace_##N(T* out, u64 n, T s, T e, T step) {                  \
        linspace_float<T>(out, n, s, e, step);                                                  \
    }

#define INSTANTIATE_RANDOM_INT(T, N)                                                            \
    extern "C" __global__ void arange_##N(T* out, u64 n, i64 start, i64 step) {                 \
        arange_int<T>(out, n, start, step);                                                     \
    }                                                                                           \
    extern "C" __global__ void linspace_##N(T* out, u64 n, double s, double e, double step) {   \
        linspace_int<T>(out, n, s, e, step);                                                    \
    }
