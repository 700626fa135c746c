// Reductions over any set of dims: one kernel family driven by a reducer type (how elements
// fold into an accumulator and how the accumulator becomes the output). The host splits the
// input's dims into kept dims (numbering the outputs) and reduced dims (RedGeom). Either a
// block cooperates on each output (reduced elements contiguous) or each thread owns an output;
// with `split > 1` the reduced elements of each output are cut into `split` parts (grid y)
// whose partial accumulators a second kernel (`*_final`) combines in order. Every combination
// order is fixed, so results do not depend on timing.

struct RedP {
    double div;   // the accumulator is divided by this (1 for plain sums, N for means, …)
    double ord;   // the norm's order (red_norm)
    u32 kind;     // the norm's kind (NORM_* defines)
    u32 pad;
};

// Sum of floats, accumulated in f64 (as the CPU backend does).
template <typename T> struct RSum {
    typedef T In;
    typedef double A;
    typedef T Out;
    typedef int C;
    __device__ static A init(const RedP&) { return 0.0; }
    __device__ static C load(const void*, u64) { return 0; }
    __device__ static A step(A a, In x, u64, C, const RedP&) { return a + (double)x; }
    __device__ static A combine(A a, A b, const RedP&) { return a + b; }
    __device__ static void finish(A a, C, u64 o, const RedP& p, Out* out, i64*) { out[o] = (T)(a / p.div); }
};

// Sum of bool/u8/i64 into i64, wrapping.
template <typename T> struct RSumI {
    typedef T In;
    typedef i64 A;
    typedef i64 Out;
    typedef int C;
    __device__ static A init(const RedP&) { return 0; }
    __device__ static C load(const void*, u64) { return 0; }
    __device__ static A step(A a, In x, u64, C, const RedP&) { return Num<i64>::add(a, (i64)x); }
    __device__ static A combine(A a, A b, const RedP&) { return Num<i64>::add(a, b); }
    __device__ static void finish(A a, C, u64 o, const RedP&, Out* out, i64*) { out[o] = a; }
};

// Product of floats in their own dtype.
template <typename T> struct RProd {
    typedef T In;
    typedef T A;
    typedef T Out;
    typedef int C;
    __device__ static A init(const RedP&) { return (T)1; }
    __device__ static C load(const void*, u64) { return 0; }
    __device__ static A step(A a, In x, u64, C, const RedP&) { return a * x; }
    __device__ static A combine(A a, A b, const RedP&) { return a * b; }
    __device__ static void finish(A a, C, u64 o, const RedP&, Out* out, i64*) { out[o] = a; }
};

// Product of bool/u8/i64 into i64, wrapping.
template <typename T> struct RProdI {
    typedef T In;
    typedef i64 A;
    typedef i64 Out;
    typedef int C;
    __device__ static A init(const RedP&) { return 1; }
    __device__ static C load(const void*, u64) { return 0; }
    __device__ static A step(A a, In x, u64, C, const RedP&) { return Num<i64>::mul(a, (i64)x); }
    __device__ static A combine(A a, A b, const RedP&) { return Num<i64>::mul(a, b); }
    __device__ static void finish(A a, C, u64 o, const RedP&, Out* out, i64*) { out[o] = a; }
};

template <typename T, bool MAX> struct RExtreme {
    typedef T In;
    typedef T A;
    typedef T Out;
    typedef int C;
    __device__ static A init(const RedP&) { return MAX ? Num<T>::lowest() : Num<T>::highest(); }
    __device__ static C load(const void*, u64) { return 0; }
    __device__ static A step(A a, In x, u64, C, const RedP&) { return pick<T, MAX>(a, x); }
    __device__ static A combine(A a, A b, const RedP&) { return pick<T, MAX>(a, b); }
    __device__ static void finish(A a, C, u64 o, const RedP&, Out* out, i64*) { out[o] = a; }
};

template <typename T> struct ValIdx {
    T v;
    i64 i;
};

// Arg max/min along one dim: ties and NaNs resolve to the lowest index; a NaN beats any
// number. The comparison is symmetric, so any combination order gives the same answer.
template <typename T, bool MAX> struct RArg {
    typedef T In;
    typedef ValIdx<T> A;
    typedef T Out;
    typedef int C;
    __device__ static bool better(T v, T b) {
        return (MAX ? v > b : v < b) || (is_nan(v) && !is_nan(b));
    }
    __device__ static A init(const RedP&) {
        A a;
        a.v = MAX ? Num<T>::lowest() : Num<T>::highest();
        a.i = 0x7fffffffffffffffLL;
        return a;
    }
    __device__ static C load(const void*, u64) { return 0; }
    __device__ static A step(A a, In x, u64 r, C, const RedP& p) {
        A b;
        b.v = x;
        b.i = (i64)r;
        return combine(a, b, p);
    }
    __device__ static A combine(A a, A b, const RedP&) {
        if (better(b.v, a.v)) return b;
        if (better(a.v, b.v)) return a;
        return b.i < a.i ? b : a;
    }
    __device__ static void finish(A a, C, u64 o, const RedP&, Out* out, i64* idx) {
        out[o] = a.v;
        idx[o] = a.i;
    }
};

// Σ (x - mean)², the second pass of var (ctx: the mean per output, in T).
template <typename T> struct RSqDev {
    typedef T In;
    typedef double A;
    typedef T Out;
    typedef T C;
    __device__ static A init(const RedP&) { return 0.0; }
    __device__ static C load(const void* c, u64 o) { return ((const T*)c)[o]; }
    __device__ static A step(A a, In x, u64, C m, const RedP&) {
        T d = x - m;
        return a + (double)(d * d);
    }
    __device__ static A combine(A a, A b, const RedP&) { return a + b; }
    __device__ static void finish(A a, C, u64 o, const RedP& p, Out* out, i64*) { out[o] = (T)(a / p.div); }
};

// log Σ e^(x - s) + s, the second pass of logsumexp (ctx: the max per output; an infinite max
// shifts by 0 instead, so that inf - inf never appears).
template <typename T> struct RLse {
    typedef T In;
    typedef double A;
    typedef T Out;
    typedef T C;
    __device__ static A init(const RedP&) { return 0.0; }
    __device__ static C load(const void* c, u64 o) {
        T m = ((const T*)c)[o];
        return (m == Num<T>::lowest() || m == Num<T>::highest()) ? (T)0 : m;
    }
    __device__ static A step(A a, In x, u64, C s, const RedP&) { return a + (double)f_exp(x - s); }
    __device__ static A combine(A a, A b, const RedP&) { return a + b; }
    __device__ static void finish(A a, C s, u64 o, const RedP&, Out* out, i64*) {
        out[o] = (T)(log(a) + (double)s);
    }
};

__device__ __forceinline__ double nan_max(double a, double b) { return (is_nan(a) || a > b) ? a : b; }
__device__ __forceinline__ double nan_min(double a, double b) { return (is_nan(a) || a < b) ? a : b; }

// The un-rooted vector norm (cpu/optim.rs `norm_pow_sum`), in f64.
template <typename T> struct RNorm {
    typedef T In;
    typedef double A;
    typedef double Out;
    typedef int C;
    __device__ static A init(const RedP& p) { return p.kind == NORM_MIN ? f64_inf() : 0.0; }
    __device__ static C load(const void*, u64) { return 0; }
    __device__ static A step(A a, In x, u64, C, const RedP& p) {
        double v = (double)x;
        switch (p.kind) {
            case NORM_SQ: return a + v * v;
            case NORM_ABS: return a + fabs(v);
            case NORM_NONZERO: return a + (v != 0.0 ? 1.0 : 0.0);
            case NORM_POW: return a + pow(fabs(v), p.ord);
            case NORM_MAX: return nan_max(fabs(v), a);
            case NORM_MIN: return nan_min(fabs(v), a);
        }
        return a;
    }
    __device__ static A combine(A a, A b, const RedP& p) {
        if (p.kind == NORM_MAX) return nan_max(a, b);
        if (p.kind == NORM_MIN) return nan_min(a, b);
        return a + b;
    }
    __device__ static void finish(A a, C, u64 o, const RedP&, Out* out, i64*) { out[o] = a; }
};

template <typename R>
__device__ __forceinline__ void reduce_pass(const typename R::In* x, const RedGeom& g,
                                            u32 per_output, u32 split, typename R::A* partial,
                                            typename R::Out* out, i64* oidx, const void* ctx,
                                            const RedP& p) {
    typedef typename R::A A;
    extern __shared__ __align__(16) unsigned char smem[];
    A* sh = (A*)smem;
    u32 s = blockIdx.y;
    u64 chunk = (g.k + split - 1) / split;
    u64 r0 = (u64)s * chunk;
    u64 r1 = r0 + chunk < g.k ? r0 + chunk : g.k;
    if (per_output) {
        for (u64 o = blockIdx.x; o < g.m; o += gridDim.x) {
            u64 base = keep_offset(g, o);
            typename R::C c = R::load(ctx, o);
            A acc = R::init(p);
            for (u64 r = r0 + threadIdx.x; r < r1; r += blockDim.x) {
                acc = R::step(acc, x[base + red_offset(g, r)], r, c, p);
            }
            acc = block_reduce(acc, sh, [&](A a, A b) { return R::combine(a, b, p); });
            if (threadIdx.x == 0) {
                if (split == 1) R::finish(acc, c, o, p, out, oidx);
                else partial[o * split + s] = acc;
            }
        }
    } else {
        for (u64 o = (u64)blockIdx.x * blockDim.x + threadIdx.x; o < g.m;
             o += (u64)gridDim.x * blockDim.x) {
            u64 base = keep_offset(g, o);
            typename R::C c = R::load(ctx, o);
            A acc = R::init(p);
            for (u64 r = r0; r < r1; r++) {
                acc = R::step(acc, x[base + red_offset(g, r)], r, c, p);
            }
            if (split == 1) R::finish(acc, c, o, p, out, oidx);
            else partial[o * split + s] = acc;
        }
    }
}

template <typename R>
__device__ __forceinline__ void reduce_final(const typename R::A* partial, u64 m, u32 split,
                                             typename R::Out* out, i64* oidx, const void* ctx,
                                             const RedP& p) {
    for (u64 o = (u64)blockIdx.x * blockDim.x + threadIdx.x; o < m; o += (u64)gridDim.x * blockDim.x) {
        typename R::A acc = partial[o * split];
        for (u32 s = 1; s < split; s++) acc = R::combine(acc, partial[o * split + s], p);
        R::finish(acc, R::load(ctx, o), o, p, out, oidx);
    }
}

#define INSTANTIATE_REDUCER(NAME, R)                                                            \
    extern "C" __global__ void NAME(const R::In* x, RedGeom g, u32 per_output, u32 split,       \
                                    R::A* partial, R::Out* out, i64* oidx, const void* ctx,     \
                                    RedP p) {                                                   \
        reduce_pass<R>(x, g, per_output, split, partial, out, oidx, ctx, p);                    \
    }                                                                                           \
    extern "C" __global__ void NAME##_final(const R::A* partial, u64 m, u32 split, R::Out* out, \
                                            i64* oidx, const void* ctx, RedP p) {               \
        reduce_final<R>(partial, m, split, out, oidx, ctx, p);                                  \
    }

#define COMMA ,

// Every dtype: extremes and arg extremes.
#define INSTANTIATE_REDUCE(T, N)                                   \
    INSTANTIATE_REDUCER(red_max_##N, RExtreme<T COMMA true>)       \
    INSTANTIATE_REDUCER(red_min_##N, RExtreme<T COMMA false>)      \
    INSTANTIATE_REDUCER(red_argmax_##N, RArg<T COMMA true>)        \
    INSTANTIATE_REDUCER(red_argmin_##N, RArg<T COMMA false>)

#define INSTANTIATE_REDUCE_INT(T, N)             \
    INSTANTIATE_REDUCER(red_sum_##N, RSumI<T>)   \
    INSTANTIATE_REDUCER(red_prod_##N, RProdI<T>)

#define INSTANTIATE_REDUCE_FLOAT(T, N)            \
    INSTANTIATE_REDUCER(red_sum_##N, RSum<T>)     \
    INSTANTIATE_REDUCER(red_prod_##N, RProd<T>)   \
    INSTANTIATE_REDUCER(red_sqdev_##N, RSqDev<T>) \
    INSTANTIATE_REDUCER(red_lse_##N, RLse<T>)     \
    INSTANTIATE_REDUCER(red_norm_##N, RNorm<T>)
