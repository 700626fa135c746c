// Elementwise kernels over strided operands: unary ops, binary arithmetic (tensor/tensor,
// tensor/scalar, scalar/tensor, in place), comparisons, where/masked_fill, fill, and casts
// (which are also every strided copy). Operand 0 is the output; the op codes are the
// UOP_/BOP_/CMP_ defines the host generates from its op enums (kernels.rs).

struct UnaryP {
    u32 op;
    u32 flags;  // CLAMP: bit 0 = has a lower bound, bit 1 = has an upper bound
    u64 a;      // op parameter, as bits of the dtype (host-converted)
    u64 b;
};

// Ops every dtype shares.
template <typename T>
__device__ __forceinline__ T unary_common(u32 op, T x, const UnaryP& p, bool& done) {
    done = true;
    switch (op) {
        case UOP_IDENTITY: return x;
        case UOP_NEG: return Num<T>::neg(x);
        case UOP_ABS: return Num<T>::abs(x);
        case UOP_SIGN: return Num<T>::sign(x);
        case UOP_RELU: return is_negative(x) ? (T)0 : x;  // keeps NaN
        case UOP_SQUARE: return Num<T>::mul(x, x);
        case UOP_CLAMP: {
            T y = x;
            if ((p.flags & 1) && y < from_bits<T>(p.a)) y = from_bits<T>(p.a);
            if ((p.flags & 2) && y > from_bits<T>(p.b)) y = from_bits<T>(p.b);
            return y;
        }
        case UOP_INT_POW: return Num<T>::pow(x, from_bits<T>(p.a));
    }
    done = false;
    return x;
}

// Float-only ops (cpu/num.rs `float_unary`, same order of operations).
template <typename T> __device__ __forceinline__ T unary_float(u32 op, T x, const UnaryP& p) {
    T a = from_bits<T>(p.a);
    T b = from_bits<T>(p.b);
    switch (op) {
        case UOP_EXP: return f_exp(x);
        case UOP_LOG: return f_log(x);
        case UOP_LOG1P: return f_log1p(x);
        case UOP_SQRT: return f_sqrt(x);
        case UOP_RSQRT: return (T)1 / f_sqrt(x);
        case UOP_SIN: return f_sin(x);
        case UOP_COS: return f_cos(x);
        case UOP_TANH: return f_tanh(x);
        case UOP_SIGMOID: return sigmoid(x);
        case UOP_RECIPROCAL: return (T)1 / x;
        case UOP_ERF: return f_erf(x);
        // a = 1/√2 in T
        case UOP_GELU_ERF: return (T)0.5 * x * ((T)1 + f_erf(x * a));
        // a = √(2/π), b = 0.044715, both in T
        case UOP_GELU_TANH: return (T)0.5 * x * ((T)1 + f_tanh(a * (x + b * x * x * x)));
        case UOP_SILU: return x * sigmoid(x);
        case UOP_LEAKY_RELU: return x > (T)0 ? x : x * a;
        case UOP_ELU: return x > (T)0 ? x : a * f_expm1(x);
        case UOP_POW2: return x * x;
        case UOP_POW1: return x;
        case UOP_POW_HALF: return f_sqrt(x);
        case UOP_POW3: return x * x * x;
        case UOP_POW: return f_pow(x, a);
        case UOP_RPOW: return f_pow(a, x);
    }
    return x;
}

template <typename T> __device__ __forceinline__ T unary_apply(T x, const UnaryP& p) {
    bool done;
    T y = unary_common<T>(p.op, x, p, done);
    if constexpr (IsFloat<T>::value) {
        if (!done) y = unary_float<T>(p.op, x, p);
    }
    return y;
}

template <typename T>
__device__ __forceinline__ void unary_impl(T* out, const T* x, const ElemGeom& g, u32 contig,
                                           const UnaryP& p) {
    for_each_elem<2>(g, contig, [&](u64, const u64 (&o)[2]) { out[o[0]] = unary_apply<T>(x[o[1]], p); });
}

template <typename T>
__device__ __forceinline__ T binary_apply(u32 op, T a, T b, u64* err) {
    switch (op) {
        case BOP_ADD: return Num<T>::add(a, b);
        case BOP_SUB: return Num<T>::sub(a, b);
        case BOP_MUL: return Num<T>::mul(a, b);
        case BOP_DIV: return Num<T>::div(a, b, err);
        case BOP_POW: return Num<T>::pow(a, b);
        case BOP_MAXIMUM: return Num<T>::max(a, b);
        case BOP_MINIMUM: return Num<T>::min(a, b);
    }
    return a;
}

// mode 0: out = a op b; 1: out = a op s; 2: out = s op a. (In place: out is a.)
template <typename T>
__device__ __forceinline__ void binary_impl(T* out, const T* a, const T* b, const ElemGeom& g,
                                            u32 contig, u32 op, u32 mode, u64 sbits, u64* err) {
    T s = from_bits<T>(sbits);
    if (mode == 0) {
        for_each_elem<3>(g, contig, [&](u64, const u64 (&o)[3]) {
            out[o[0]] = binary_apply<T>(op, a[o[1]], b[o[2]], err);
        });
    } else if (mode == 1) {
        for_each_elem<2>(g, contig, [&](u64, const u64 (&o)[2]) {
            out[o[0]] = binary_apply<T>(op, a[o[1]], s, err);
        });
    } else {
        for_each_elem<2>(g, contig, [&](u64, const u64 (&o)[2]) {
            out[o[0]] = binary_apply<T>(op, s, a[o[1]], err);
        });
    }
}

template <typename T> __device__ __forceinline__ bool cmp_apply(u32 op, T a, T b) {
    switch (op) {
        case CMP_EQ: return a == b;
        case CMP_NE: return a != b;
        case CMP_LT: return a < b;
        case CMP_LE: return a <= b;
        case CMP_GT: return a > b;
        case CMP_GE: return a >= b;
    }
    return false;
}

// mode 0: a op b; 1: a op s (s in T); 2: (f64)a op s (s an f64: an integer tensor against a
// float scalar is compared in f64, as the CPU backend does).
template <typename T>
__device__ __forceinline__ void cmp_impl(bool* out, const T* a, const T* b, const ElemGeom& g,
                                         u32 contig, u32 op, u32 mode, u64 sbits) {
    if (mode == 0) {
        for_each_elem<3>(g, contig, [&](u64, const u64 (&o)[3]) { out[o[0]] = cmp_apply<T>(op, a[o[1]], b[o[2]]); });
    } else if (mode == 1) {
        T s = from_bits<T>(sbits);
        for_each_elem<2>(g, contig, [&](u64, const u64 (&o)[2]) { out[o[0]] = cmp_apply<T>(op, a[o[1]], s); });
    } else {
        double s = from_bits<double>(sbits);
        for_each_elem<2>(g, contig, [&](u64, const u64 (&o)[2]) {
            out[o[0]] = cmp_apply<double>(op, cast<double>(a[o[1]]), s);
        });
    }
}

// out = cond ? a : b. mode bit 0: `a` is the scalar `sbits` (masked_fill: where(mask, v, x)).
template <typename T>
__device__ __forceinline__ void where_impl(T* out, const bool* c, const T* a, const T* b,
                                           const ElemGeom& g, u32 contig, u32 mode, u64 sbits) {
    if (mode == 0) {
        for_each_elem<4>(g, contig, [&](u64, const u64 (&o)[4]) { out[o[0]] = c[o[1]] ? a[o[2]] : b[o[3]]; });
    } else {
        T s = from_bits<T>(sbits);
        // Operand 2 is b here (the host passes b's strides in slot 2).
        for_each_elem<3>(g, contig, [&](u64, const u64 (&o)[3]) { out[o[0]] = c[o[1]] ? s : b[o[2]]; });
    }
}

template <typename T>
__device__ __forceinline__ void fill_impl(T* out, const ElemGeom& g, u32 contig, u64 sbits) {
    T s = from_bits<T>(sbits);
    for_each_elem<1>(g, contig, [&](u64, const u64 (&o)[1]) { out[o[0]] = s; });
}

template <typename D, typename S>
__device__ __forceinline__ void cast_impl(D* out, const S* x, const ElemGeom& g, u32 contig) {
    for_each_elem<2>(g, contig, [&](u64, const u64 (&o)[2]) { out[o[0]] = cast<D, S>(x[o[1]]); });
}

#define INSTANTIATE_ELEMENTWISE(T, N)                                                           \
    extern "C" __global__ void unary_##N(T* out, const T* x, ElemGeom g, u32 contig, UnaryP p) { \
        unary_impl<T>(out, x, g, contig, p);                                                    \
    }                                                                                           \
    extern "C" __global__ void binary_##N(T* out, const T* a, const T* b, ElemGeom g,          \
                                          u32 contig, u32 op, u32 mode, u64 s, u64* err) {     \
        binary_impl<T>(out, a, b, g, contig, op, mode, s, err);                                 \
    }                                                                                           \
    extern "C" __global__ void cmp_##N(bool* out, const T* a, const T* b, ElemGeom g,          \
                                       u32 contig, u32 op, u32 mode, u64 s) {                  \
        cmp_impl<T>(out, a, b, g, contig, op, mode, s);                                         \
    }                                                                                           \
    extern "C" __global__ void where_##N(T* out, const bool* c, const T* a, const T* b,        \
                                         ElemGeom g, u32 contig, u32 mode, u64 s) {            \
        where_impl<T>(out, c, a, b, g, contig, mode, s);                                        \
    }                                                                                           \
    extern "C" __global__ void fill_##N(T* out, ElemGeom g, u32 contig, u64 s) {               \
        fill_impl<T>(out, g, contig, s);                                                        \
    }

#define INSTANTIATE_CAST(S, SN, D, DN)                                                          \
    extern "C" __global__ void cast_##SN##_##DN(D* out, const S* x, ElemGeom g, u32 contig) {  \
        cast_impl<D, S>(out, x, g, contig);                                                     \
    }
