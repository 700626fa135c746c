// Fused optimizer updates (cpu/optim.rs): one pass over contiguous parameter, gradient and
// state buffers, with the CPU's per-element formulas in the same order of operations. The
// module is compiled without FMA contraction, so every product and sum rounds as on the CPU
// and trajectories match it bit for bit (sqrt and division are IEEE on both sides).
// Constants arrive as f64 and are rounded to T once (`T::of` on the CPU).

struct SgdP {
    double nlr, wd, sign, mom, damp1;
    u32 wd_on, momentum, first, nesterov;
};

template <typename T>
__device__ __forceinline__ void sgd_impl(T* p, const T* g, T* b, u64 n, SgdP c) {
    T nlr = (T)c.nlr, wd = (T)c.wd, sign = (T)c.sign, mom = (T)c.mom, damp1 = (T)c.damp1;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        T pi = p[i];
        T d = g[i] * sign;
        if (c.wd_on) d = d + wd * pi;
        if (c.momentum) {
            T bi = c.first ? d : b[i] * mom + damp1 * d;
            b[i] = bi;
            T u = c.nesterov ? d + mom * bi : bi;
            p[i] = pi + nlr * u;
        } else {
            p[i] = pi + nlr * d;
        }
    }
}

struct AdamP {
    double sign, wd, decay, w, w1, b2, c2, bc2s, eps, nss;
    u32 wd_mode;  // 0 none, 1 L2 penalty, 2 decoupled (AdamW)
    u32 amsgrad;
    u32 lerp_small;
    u32 pad;
};

template <typename T>
__device__ __forceinline__ void adam_impl(T* p, const T* g, T* m, T* v, T* vmax, u64 n, AdamP c) {
    T sign = (T)c.sign, wd = (T)c.wd, decay = (T)c.decay, w = (T)c.w, w1 = (T)c.w1, b2 = (T)c.b2,
      c2 = (T)c.c2, bc2s = (T)c.bc2s, eps = (T)c.eps, nss = (T)c.nss;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        T pi = p[i];
        T d = g[i] * sign;
        if (c.wd_mode == 1) d = d + wd * pi;
        // PyTorch's lerp: the form chosen by the weight keeps it exact at the ends.
        T mi = m[i];
        mi = c.lerp_small ? mi + w * (d - mi) : d - (d - mi) * w1;
        m[i] = mi;
        T vi = v[i] * b2 + c2 * d * d;
        v[i] = vi;
        if (c.amsgrad) {
            T vm = vmax[i];
            T x = ((vi > vm) | (vi != vi)) ? vi : vm;  // torch.maximum: NaN wins
            vmax[i] = x;
            vi = x;
        }
        T denom = f_sqrt(vi) / bc2s + eps;
        if (c.wd_mode == 2) pi = pi * decay;
        p[i] = pi + nss * mi / denom;
    }
}

struct RmsP {
    double sign, wd, alpha, c1, w, w1, eps, mom, nlr;
    u32 wd_on, centered, momentum, lerp_small;
};

template <typename T>
__device__ __forceinline__ void rmsprop_impl(T* p, const T* g, T* sq, T* buf, T* ga, u64 n, RmsP c) {
    T sign = (T)c.sign, wd = (T)c.wd, alpha = (T)c.alpha, c1 = (T)c.c1, w = (T)c.w, w1 = (T)c.w1,
      eps = (T)c.eps, mom = (T)c.mom, nlr = (T)c.nlr;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        T pi = p[i];
        T d = g[i] * sign;
        if (c.wd_on) d = d + wd * pi;
        T s = sq[i] * alpha + c1 * d * d;
        sq[i] = s;
        T avg;
        if (c.centered) {
            T a = ga[i];
            a = c.lerp_small ? a + w * (d - a) : d - (d - a) * w1;
            ga[i] = a;
            avg = f_sqrt(s + -a * a);  // addcmul(ga, ga, value=-1)
        } else {
            avg = f_sqrt(s);
        }
        avg = avg + eps;
        if (c.momentum) {
            T b = buf[i] * mom + d / avg;
            buf[i] = b;
            p[i] = pi + nlr * b;
        } else {
            p[i] = pi + nlr * d / avg;
        }
    }
}

struct AdagradP {
    double sign, wd, eps, nclr;
    u32 wd_on, pad;
};

template <typename T>
__device__ __forceinline__ void adagrad_impl(T* p, const T* g, T* sum, u64 n, AdagradP c) {
    T sign = (T)c.sign, wd = (T)c.wd, eps = (T)c.eps, nclr = (T)c.nclr;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        T pi = p[i];
        T d = g[i] * sign;
        if (c.wd_on) d = d + wd * pi;
        T s = sum[i] + d * d;  // addcmul_(grad, grad, value=1)
        sum[i] = s;
        p[i] = pi + nclr * d / (f_sqrt(s) + eps);
    }
}

#define INSTANTIATE_OPTIM(T, N)                                                                 \
    extern "C" __global__ void sgd_##N(T* p, const T* g, T* b, u64 n, SgdP c) {                 \
        sgd_impl<T>(p, g, b, n, c);                                                             \
    }                                                                                           \
    extern "C" __global__ void adam_##N(T* p, const T* g, T* m, T* v, T* vmax, u64 n, AdamP c) { \
        adam_impl<T>(p, g, m, v, vmax, n, c);                                                   \
    }                                                                                           \
    extern "C" __global__ void rmsprop_##N(T* p, const T* g, T* sq, T* buf, T* ga, u64 n,       \
                                           RmsP c) {                                            \
        rmsprop_impl<T>(p, g, sq, buf, ga, n, c);                                               \
    }                                                                                           \
    extern "C" __global__ void adagrad_##N(T* p, const T* g, T* sum, u64 n, AdagradP c) {       \
        adagrad_impl<T>(p, g, sum, n, c);                                                       \
    }
