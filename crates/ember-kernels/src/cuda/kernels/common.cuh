// Ember CUDA kernels: the prelude every module starts with (types, argument structs, index
// arithmetic, the error slot, per-dtype arithmetic). NVRTC compiles it without any system
// header, so everything used here is a builtin or defined here.
//
// Arithmetic follows the CPU backend (crates/ember-kernels/src/cpu/num.rs) operation for
// operation; modules are compiled with --fmad=false so that `a * b + c` rounds twice, as Rust
// does, and with IEEE division and square root.

typedef unsigned char u8;
typedef unsigned int u32;
typedef long long i64;
typedef unsigned long long u64;

#define MAX_DIMS 8
#define MAX_OPS 4

// Twin of geometry::ElemGeom.
struct ElemGeom {
    u64 n;
    u32 ndim;
    u32 use32;
    u64 shape[MAX_DIMS];
    u32 magic[MAX_DIMS];
    u32 shift[MAX_DIMS];
    u64 strides[MAX_OPS][MAX_DIMS];
};

// Twin of geometry::RedGeom.
struct RedGeom {
    u64 m;
    u64 k;
    u32 nkeep;
    u32 nred;
    u64 keep_shape[MAX_DIMS];
    u64 keep_stride[MAX_DIMS];
    u64 red_shape[MAX_DIMS];
    u64 red_stride[MAX_DIMS];
};

// ---- error slot -------------------------------------------------------------------------
// A kernel that finds bad input (an index out of range, …) records the first error in a
// 4-word slot of device memory; the host reads it at its next synchronisation and panics with
// the message (device.rs), as PyTorch reports device-side asserts.
__device__ __forceinline__ void report(u64* err, u64 code, u64 a, u64 b, u64 c) {
    if (atomicCAS(err, 0ULL, code) == 0ULL) {
        err[1] = a;
        err[2] = b;
        err[3] = c;
    }
}

// ---- index arithmetic -------------------------------------------------------------------

// Storage offsets (in elements, per operand) of logical element `i` of an elementwise launch.
// The 32-bit path (n < 2^31) divides by multiplication; the 64-bit one (huge tensors only) is
// kept out of line-unrolling, since 64-bit division is a long instruction sequence.
template <int N>
__device__ __forceinline__ void elem_offsets(const ElemGeom& g, u64 i, u64 (&off)[N]) {
#pragma unroll
    for (int k = 0; k < N; k++) off[k] = 0;
    if (g.use32) {
        u32 x = (u32)i;
#pragma unroll
        for (int d = 0; d < MAX_DIMS; d++) {
            if (d >= (int)g.ndim) break;
            u32 q = (__umulhi(x, g.magic[d]) + x) >> g.shift[d];
            u32 r = x - q * (u32)g.shape[d];
#pragma unroll
            for (int k = 0; k < N; k++) off[k] += (u64)r * g.strides[k][d];
            x = q;
        }
    } else {
#pragma unroll 1
        for (int d = 0; d < (int)g.ndim; d++) {
            u64 q = i / g.shape[d];
            u64 r = i - q * g.shape[d];
#pragma unroll
            for (int k = 0; k < N; k++) off[k] += r * g.strides[k][d];
            i = q;
        }
    }
}

// Runs f(i, off) for the elements of this thread: ELEM_PER_THREAD of them, `blockDim.x`
// apart so that each round of loads is coalesced. When every operand is contiguous (`contig`)
// the offsets equal the index and the rounds are unrolled, so each thread has several loads
// in flight; the strided path computes offsets per element and stays compact. The grid covers
// `n` in one pass; the outer loop only matters past the grid limit.
#define ELEM_PER_THREAD 4
template <int N, typename F>
__device__ __forceinline__ void for_each_elem(const ElemGeom& g, u32 contig, F f) {
    u64 step = (u64)gridDim.x * blockDim.x * ELEM_PER_THREAD;
    u64 first = (u64)blockIdx.x * blockDim.x * ELEM_PER_THREAD + threadIdx.x;
    if (contig) {
        for (u64 base = first; base < g.n; base += step) {
#pragma unroll
            for (int j = 0; j < ELEM_PER_THREAD; j++) {
                u64 i = base + (u64)j * blockDim.x;
                if (i < g.n) {
                    u64 off[N];
#pragma unroll
                    for (int k = 0; k < N; k++) off[k] = i;
                    f(i, off);
                }
            }
        }
    } else {
        for (u64 base = first; base < g.n; base += step) {
#pragma unroll 1
            for (int j = 0; j < ELEM_PER_THREAD; j++) {
                u64 i = base + (u64)j * blockDim.x;
                if (i < g.n) {
                    u64 off[N];
                    elem_offsets<N>(g, i, off);
                    f(i, off);
                }
            }
        }
    }
}

// Input offset of output `o` (kept dims) and of reduced element `r`.
__device__ __forceinline__ u64 keep_offset(const RedGeom& g, u64 o) {
    u64 off = 0;
    for (u32 d = 0; d < g.nkeep; d++) {
        u64 q = o / g.keep_shape[d];
        off += (o - q * g.keep_shape[d]) * g.keep_stride[d];
        o = q;
    }
    return off;
}

__device__ __forceinline__ u64 red_offset(const RedGeom& g, u64 r) {
    if (g.nred <= 1) return r * g.red_stride[0];
    u64 off = 0;
    for (u32 d = 0; d < g.nred; d++) {
        u64 q = r / g.red_shape[d];
        off += (r - q * g.red_shape[d]) * g.red_stride[d];
        r = q;
    }
    return off;
}

// ---- values ---------------------------------------------------------------------------

// Scalars travel as 64-bit patterns, already converted to the kernel's dtype on the host
// (with the CPU backend's conversion rules), so the kernels never convert scalars themselves.
template <typename T> __device__ __forceinline__ T from_bits(u64 b);
template <> __device__ __forceinline__ bool from_bits<bool>(u64 b) { return (b & 0xff) != 0; }
template <> __device__ __forceinline__ u8 from_bits<u8>(u64 b) { return (u8)b; }
template <> __device__ __forceinline__ i64 from_bits<i64>(u64 b) { return (i64)b; }
template <> __device__ __forceinline__ float from_bits<float>(u64 b) { return __int_as_float((int)(u32)b); }
template <> __device__ __forceinline__ double from_bits<double>(u64 b) { return __longlong_as_double((i64)b); }

__device__ __forceinline__ float f32_inf() { return __int_as_float(0x7f800000); }
__device__ __forceinline__ double f64_inf() { return __longlong_as_double(0x7ff0000000000000LL); }
__device__ __forceinline__ float f32_nan() { return __int_as_float(0x7fc00000); }
__device__ __forceinline__ double f64_nan() { return __longlong_as_double(0x7ff8000000000000LL); }

// Conversions with the CPU backend's rules (dtype.rs, Element::cast): to a float through f64,
// to an integer through i64 (float → integer truncates, saturating; NaN → 0, as Rust's `as`
// and PTX's cvt.rzi), to bool by `!= 0`.
// Float → i64 saturating with NaN → 0, written out: an out-of-range conversion is undefined
// in C++ (the compiler may assume it away), and x86 hosts (the emulator) give i64::MIN.
template <typename S> __device__ __forceinline__ i64 to_i64(S x) { return (i64)x; }
template <typename S> __device__ __forceinline__ i64 float_to_i64(S x) {
    if (x != x) return 0;
    if (x >= (S)9223372036854775807.0) return 0x7fffffffffffffffLL;  // (S) rounds to 2^63
    if (x < (S)-9223372036854775807.0) return (i64)0x8000000000000000ULL;
    return (i64)x;
}
__device__ __forceinline__ i64 to_i64(float x) { return float_to_i64(x); }
__device__ __forceinline__ i64 to_i64(double x) { return float_to_i64(x); }
template <typename D, typename S> struct Cast {
    __device__ __forceinline__ static D go(S x) { return (D)to_i64(x); }
};
template <typename S> struct Cast<bool, S> {
    __device__ __forceinline__ static bool go(S x) { return x != (S)0; }
};
template <typename S> struct Cast<float, S> {
    __device__ __forceinline__ static float go(S x) { return (float)(double)x; }
};
template <typename S> struct Cast<double, S> {
    __device__ __forceinline__ static double go(S x) { return (double)x; }
};
template <typename D, typename S> __device__ __forceinline__ D cast(S x) { return Cast<D, S>::go(x); }

// `x < 0` without the compiler's pointless-comparison warning for unsigned types.
template <typename T> __device__ __forceinline__ bool is_negative(T x) { return x < (T)0; }
template <> __device__ __forceinline__ bool is_negative<bool>(bool) { return false; }
template <> __device__ __forceinline__ bool is_negative<u8>(u8) { return false; }

template <typename T> __device__ __forceinline__ bool is_nan(T x) { return x != x; }
template <> __device__ __forceinline__ bool is_nan<bool>(bool) { return false; }
template <> __device__ __forceinline__ bool is_nan<u8>(u8) { return false; }
template <> __device__ __forceinline__ bool is_nan<i64>(i64) { return false; }

// ---- arithmetic per dtype (twin of cpu/num.rs `Num`) --------------------------------------

template <typename T> struct Num;

template <> struct Num<bool> {
    __device__ static bool lowest() { return false; }
    __device__ static bool highest() { return true; }
    __device__ static bool add(bool a, bool b) { return a | b; }
    __device__ static bool sub(bool a, bool b) { return a ^ b; }
    __device__ static bool mul(bool a, bool b) { return a & b; }
    __device__ static bool div(bool a, bool, u64*) { return a; }
    __device__ static bool pow(bool a, bool b) { return a | !b; }
    __device__ static bool neg(bool a) { return a; }
    __device__ static bool abs(bool a) { return a; }
    __device__ static bool sign(bool a) { return a; }
    __device__ static bool max(bool a, bool b) { return a | b; }
    __device__ static bool min(bool a, bool b) { return a & b; }
};


template <> struct Num<u8> {
    __device__ static u8 lowest() { return 0; }
    __device__ static u8 highest() { return 255; }
    __device__ static u8 add(u8 a, u8 b) { return (u8)(a + b); }
    __device__ static u8 sub(u8 a, u8 b) { return (u8)(a - b); }
    __device__ static u8 mul(u8 a, u8 b) { return (u8)(a * b); }
    __device__ __noinline__ static u8 div(u8 a, u8 b, u64* err) {
        if (b == 0) {
            report(err, ERR_ZERO_DIVISION, 0, 0, 0);
            return 0;
        }
        return (u8)(a / b);
    }
    __device__ __noinline__ static u8 pow(u8 a, u8 b) {
        u8 r = 1, x = a;
        u32 e = b;
        while (e) {
            if (e & 1) r = (u8)(r * x);
            x = (u8)(x * x);
            e >>= 1;
        }
        return r;
    }
    __device__ static u8 neg(u8 a) { return (u8)(0 - a); }
    __device__ static u8 abs(u8 a) { return a; }
    __device__ static u8 sign(u8 a) { return a == 0 ? 0 : 1; }
    __device__ static u8 max(u8 a, u8 b) { return a >= b ? a : b; }
    __device__ static u8 min(u8 a, u8 b) { return a <= b ? a : b; }
};

template <> struct Num<i64> {
    __device__ static i64 lowest() { return (i64)0x8000000000000000ULL; }
    __device__ static i64 highest() { return 0x7fffffffffffffffLL; }
    // Wrapping arithmetic through u64 (signed overflow is undefined in C++).
    __device__ static i64 add(i64 a, i64 b) { return (i64)((u64)a + (u64)b); }
    __device__ static i64 sub(i64 a, i64 b) { return (i64)((u64)a - (u64)b); }
    __device__ static i64 mul(i64 a, i64 b) { return (i64)((u64)a * (u64)b); }
    __device__ __noinline__ static i64 div(i64 a, i64 b, u64* err) {
        if (b == 0) {
            report(err, ERR_ZERO_DIVISION, 0, 0, 0);
            return 0;
        }
        if (b == -1) return (i64)(0 - (u64)a);  // i64::MIN / -1 wraps to i64::MIN
        return a / b;
    }
    __device__ __noinline__ static i64 pow(i64 a, i64 b) {
        if (b < 0) {
            // Only ±1 have integer reciprocals (cpu/num.rs).
            if (a == 1) return 1;
            if (a == -1) return (b % 2 == 0) ? 1 : a;
            return 0;
        }
        // Rust's `wrapping_pow(b as u32)`: the exponent's low 32 bits.
        u32 e = (u32)b;
        u64 r = 1, x = (u64)a;
        while (e) {
            if (e & 1) r *= x;
            x *= x;
            e >>= 1;
        }
        return (i64)r;
    }
    __device__ static i64 neg(i64 a) { return (i64)(0 - (u64)a); }
    __device__ static i64 abs(i64 a) { return a < 0 ? (i64)(0 - (u64)a) : a; }
    __device__ static i64 sign(i64 a) { return a == 0 ? 0 : (a < 0 ? -1 : 1); }
    __device__ static i64 max(i64 a, i64 b) { return a >= b ? a : b; }
    __device__ static i64 min(i64 a, i64 b) { return a <= b ? a : b; }
};

template <typename T> struct FloatNum {
    __device__ static T add(T a, T b) { return a + b; }
    __device__ static T sub(T a, T b) { return a - b; }
    __device__ static T mul(T a, T b) { return a * b; }
    __device__ static T div(T a, T b, u64*) { return a / b; }
    __device__ static T neg(T a) { return -a; }
    __device__ static T sign(T a) { return a > (T)0 ? (T)1 : (a < (T)0 ? (T)-1 : a * (T)0); }
    // NaN-propagating (torch.maximum): a NaN operand wins.
    __device__ static T max(T a, T b) {
        if (is_nan(a) || a > b) return a;
        if (is_nan(b)) return b;
        return b >= a ? b : a;
    }
    __device__ static T min(T a, T b) {
        if (is_nan(a) || a < b) return a;
        if (is_nan(b)) return b;
        return b <= a ? b : a;
    }
};

template <> struct Num<float> : FloatNum<float> {
    __device__ static float lowest() { return -f32_inf(); }
    __device__ static float highest() { return f32_inf(); }
    __device__ static float pow(float a, float b) { return powf(a, b); }
    __device__ static float abs(float a) { return fabsf(a); }
};

template <> struct Num<double> : FloatNum<double> {
    __device__ static double lowest() { return -f64_inf(); }
    __device__ static double highest() { return f64_inf(); }
    __device__ static double pow(double a, double b) { return ::pow(a, b); }
    __device__ static double abs(double a) { return fabs(a); }
};

// Transcendentals of f32 and f64 by overloading.
__device__ __forceinline__ float f_exp(float x) { return expf(x); }
__device__ __forceinline__ double f_exp(double x) { return exp(x); }
__device__ __forceinline__ float f_log(float x) { return logf(x); }
__device__ __forceinline__ double f_log(double x) { return log(x); }
__device__ __forceinline__ float f_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double f_log1p(double x) { return log1p(x); }
__device__ __forceinline__ float f_expm1(float x) { return expm1f(x); }
__device__ __forceinline__ double f_expm1(double x) { return expm1(x); }
__device__ __forceinline__ float f_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double f_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float f_sin(float x) { return sinf(x); }
__device__ __forceinline__ double f_sin(double x) { return sin(x); }
__device__ __forceinline__ float f_cos(float x) { return cosf(x); }
__device__ __forceinline__ double f_cos(double x) { return cos(x); }
__device__ __forceinline__ float f_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double f_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float f_erf(float x) { return erff(x); }
__device__ __forceinline__ double f_erf(double x) { return erf(x); }
__device__ __forceinline__ float f_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double f_pow(double x, double y) { return pow(x, y); }
__device__ __forceinline__ float f_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double f_abs(double x) { return fabs(x); }

// `1 / (1 + e^-x)` without overflow (cpu/num.rs `sigmoid`).
template <typename T> __device__ __forceinline__ T sigmoid(T x) {
    if (x >= (T)0) return (T)1 / ((T)1 + f_exp(-x));
    T e = f_exp(x);
    return e / ((T)1 + e);
}

// The larger of two ignoring NaN in `x` (softmax's row max; NaN still propagates through
// the exponentials).
template <typename T> __device__ __forceinline__ T max_plain(T a, T x) { return x > a ? x : a; }

template <typename T> struct IsFloat { static const bool value = false; };
template <> struct IsFloat<float> { static const bool value = true; };
template <> struct IsFloat<double> { static const bool value = true; };

// Largest/smallest value, NaN propagating (cpu/softmax.rs `Pick`).
template <typename T, bool MAX> __device__ __forceinline__ T pick(T a, T x) {
    if constexpr (IsFloat<T>::value) {
        if (is_nan(a) || is_nan(x)) return a + x;
    }
    if constexpr (MAX) return Num<T>::max(a, x);
    else return Num<T>::min(a, x);
}

// ---- block reductions -------------------------------------------------------------------

// Combines one value per thread of the block with `comb` in a fixed tree (so the result does
// not depend on timing); every thread receives the result. `sh` holds blockDim.x values.
template <typename A, typename C>
__device__ __forceinline__ A block_reduce(A v, A* sh, C comb) {
    u32 t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (u32 s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] = comb(sh[t], sh[t + s]);
        __syncthreads();
    }
    A r = sh[0];
    __syncthreads();
    return r;
}
