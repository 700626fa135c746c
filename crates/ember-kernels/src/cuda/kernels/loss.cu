// Fused cross-entropy and NLL (cpu/loss.rs). The input is contiguous (N, C, d1, …) or (C); a
// row is one position (n, d1, …): its C scores sit `inner` apart from
// base(r) = (r / inner) * C * inner + r % inner. A block handles one row at a time. Targets are
// contiguous int64 class indices or (probability targets) contiguous values of the input's
// dtype; `w` is the per-class weight (contiguous, input dtype) or null.
//
// The forward writes per-row losses, per-row logsumexp (saved for the backward) and per-row
// weights (w[y], 0 for ignored rows); `loss_reduce` then forms the mean/sum and the total weight
// on the device, so nothing here waits for the host.


__device__ __forceinline__ u64 row_base(u64 r, u64 C, u64 inner) {
    return (r / inner) * C * inner + r % inner;
}

struct CeP {
    u64 rows;
    u64 classes;
    u64 inner;
    i64 ignore;
    double keep;    // 1 - label_smoothing
    double smooth;  // label_smoothing / C
    u64 err_code;   // reported with a = target, b = classes, c = ignore_index
};

template <typename T> __device__ __forceinline__ T weight_of(const T* w, u64 c) { return w ? w[c] : (T)1; }

// max and logsumexp of a row: z = m + ln Σ e^(x - m). For rows with inner > 1, the CPU's
// row_lse special cases apply: a NaN anywhere gives NaN, an infinite max gives the max.
template <typename T>
__device__ __forceinline__ T row_lse(const T* xr, u64 C, u64 inner, T* sh) {
    T m = Num<T>::lowest();
    bool nan = false;
    for (u64 c = threadIdx.x; c < C; c += blockDim.x) {
        T v = xr[c * inner];
        nan |= is_nan(v);
        m = max_plain(m, v);
    }
    m = block_reduce(m, sh, [](T a, T b) { return max_plain(a, b); });
    T anynan = block_reduce(nan ? (T)1 : (T)0, sh, [](T a, T b) { return a + b; });
    T s = (T)0;
    for (u64 c = threadIdx.x; c < C; c += blockDim.x) s += f_exp(xr[c * inner] - m);
    s = block_reduce(s, sh, [](T a, T b) { return a + b; });
    if (inner > 1) {
        if (anynan > (T)0) return (T)f64_nan();
        if (m == Num<T>::lowest() || m == Num<T>::highest()) return m;
    }
    return m + f_log(s);
}

template <typename T>
__device__ __forceinline__ void ce_fwd_index(const T* x, const i64* t, const T* w, T* loss, T* lse,
                                             double* rw, CeP p, u64* err) {
    extern __shared__ __align__(16) unsigned char smem[];
    T* sh = (T*)smem;
    T keep = (T)p.keep, smooth = (T)p.smooth;
    for (u64 r = blockIdx.x; r < p.rows; r += gridDim.x) {
        i64 y = t[r];
        if (y == p.ignore) {
            if (threadIdx.x == 0) {
                loss[r] = (T)0;
                lse[r] = (T)0;
                rw[r] = 0.0;
            }
            continue;
        }
        if (y < 0 || (u64)y >= p.classes) {
            if (threadIdx.x == 0) {
                report(err, p.err_code, (u64)y, p.classes, (u64)p.ignore);
                loss[r] = (T)0;
                lse[r] = (T)0;
                rw[r] = 0.0;
            }
            continue;
        }
        const T* xr = x + row_base(r, p.classes, p.inner);
        T z = row_lse(xr, p.classes, p.inner, sh);
        T wy = weight_of(w, (u64)y);
        T l = keep * wy * (z - xr[(u64)y * p.inner]);
        if (p.smooth > 0.0) {
            // Σ_c w_c (z - x_c) = z Σ w - Σ w x.
            T sw = (T)0, swx = (T)0;
            for (u64 c = threadIdx.x; c < p.classes; c += blockDim.x) {
                T wc = weight_of(w, c);
                sw += wc;
                swx += wc * xr[c * p.inner];
            }
            sw = block_reduce(sw, sh, [](T a, T b) { return a + b; });
            swx = block_reduce(swx, sh, [](T a, T b) { return a + b; });
            l = l + smooth * (z * sw - swx);
        }
        if (threadIdx.x == 0) {
            loss[r] = l;
            lse[r] = z;
            rw[r] = (double)wy;
        }
    }
}

template <typename T>
__device__ __forceinline__ void ce_fwd_prob(const T* x, const T* t, const T* w, T* loss, T* lse,
                                            double* rw, CeP p) {
    extern __shared__ __align__(16) unsigned char smem[];
    T* sh = (T*)smem;
    T keep = (T)p.keep, smooth = (T)p.smooth;
    for (u64 r = blockIdx.x; r < p.rows; r += gridDim.x) {
        u64 base = row_base(r, p.classes, p.inner);
        const T* xr = x + base;
        T z = row_lse(xr, p.classes, p.inner, sh);
        T l = (T)0;
        for (u64 c = threadIdx.x; c < p.classes; c += blockDim.x) {
            u64 k = c * p.inner;
            T tc = keep * t[base + k] + smooth;
            l += weight_of(w, c) * tc * (z - xr[k]);
        }
        l = block_reduce(l, sh, [](T a, T b) { return a + b; });
        if (threadIdx.x == 0) {
            loss[r] = l;
            lse[r] = z;
            rw[r] = 1.0;
        }
    }
}

template <typename T>
__device__ __forceinline__ void nll_fwd(const T* x, const i64* t, const T* w, T* loss, double* rw,
                                        CeP p, u64* err) {
    for (u64 r = (u64)blockIdx.x * blockDim.x + threadIdx.x; r < p.rows; r += (u64)gridDim.x * blockDim.x) {
        i64 y = t[r];
        if (y == p.ignore) {
            loss[r] = (T)0;
            rw[r] = 0.0;
        } else if (y < 0 || (u64)y >= p.classes) {
            report(err, p.err_code, (u64)y, p.classes, (u64)p.ignore);
            loss[r] = (T)0;
            rw[r] = 0.0;
        } else {
            T wy = weight_of(w, (u64)y);
            loss[r] = -(wy * x[row_base(r, p.classes, p.inner) + (u64)y * p.inner]);
            rw[r] = (double)wy;
        }
    }
}

// One block: total = Σ loss (f64), wsum = Σ row weights; out = total / wsum (mean) or total
// (sum); `wsum_out` keeps the divisor for the backward.
template <typename T>
__device__ __forceinline__ void loss_reduce(const T* loss, const double* rw, u64 rows, u32 mean, T* out,
                                            double* wsum_out) {
    extern __shared__ __align__(16) unsigned char smem[];
    double* sh = (double*)smem;
    double total = 0.0, ws = 0.0;
    for (u64 r = threadIdx.x; r < rows; r += blockDim.x) {
        total += (double)loss[r];
        ws += rw[r];
    }
    total = block_reduce(total, sh, [](double a, double b) { return a + b; });
    ws = block_reduce(ws, sh, [](double a, double b) { return a + b; });
    if (threadIdx.x == 0) {
        if (out) out[0] = (T)(mean ? total / ws : total);
        wsum_out[0] = ws;
    }
}

// The upstream gradient of row r: per row, or one value times `factor` (and divided by the
// device-side weight sum when `wsum` is given).
struct GradP {
    u32 per_row;
    u32 pad;
    double factor;
};

template <typename T>
__device__ __forceinline__ T row_grad(const T* g, GradP gp, const double* wsum, u64 r) {
    if (gp.per_row) return g[r];
    double f = gp.factor;
    if (wsum) f = f * (1.0 / wsum[0]);
    return (T)((double)g[0] * f);
}

template <typename T>
__device__ __forceinline__ void ce_bwd_index(const T* x, const i64* t, const T* w, const T* lse, const T* g,
                                             GradP gp, const double* wsum, T* out, CeP p) {
    extern __shared__ __align__(16) unsigned char smem[];
    T* sh = (T*)smem;
    T keep = (T)p.keep, smooth = (T)p.smooth;
    // Σ w (C without weights), the same for every row.
    T sw = (T)0;
    if (w) {
        for (u64 c = threadIdx.x; c < p.classes; c += blockDim.x) sw += w[c];
        sw = block_reduce(sw, sh, [](T a, T b) { return a + b; });
    } else {
        sw = (T)(double)p.classes;
    }
    for (u64 r = blockIdx.x; r < p.rows; r += gridDim.x) {
        u64 base = row_base(r, p.classes, p.inner);
        i64 y = t[r];
        if (y == p.ignore || y < 0 || (u64)y >= p.classes) {
            for (u64 c = threadIdx.x; c < p.classes; c += blockDim.x) out[base + c * p.inner] = (T)0;
            continue;
        }
        T gr = row_grad(g, gp, wsum, r);
        T wy = keep * weight_of(w, (u64)y);
        T coef = wy + smooth * sw;
        T z = lse[r];
        for (u64 c = threadIdx.x; c < p.classes; c += blockDim.x) {
            u64 k = base + c * p.inner;
            T pr = f_exp(x[k] - z);
            T d = coef * pr - smooth * weight_of(w, c);
            if (c == (u64)y) d = d - wy;
            out[k] = gr * d;
        }
    }
}

template <typename T>
__device__ __forceinline__ void ce_bwd_prob(const T* x, const T* t, const T* w, const T* lse, const T* g,
                                            GradP gp, T* out, T* tgrad, CeP p) {
    extern __shared__ __align__(16) unsigned char smem[];
    T* sh = (T*)smem;
    T keep = (T)p.keep, smooth = (T)p.smooth;
    for (u64 r = blockIdx.x; r < p.rows; r += gridDim.x) {
        u64 base = row_base(r, p.classes, p.inner);
        T gr = row_grad(g, gp, (const double*)0, r);
        T z = lse[r];
        T total = (T)0;
        for (u64 c = threadIdx.x; c < p.classes; c += blockDim.x) {
            total += weight_of(w, c) * (keep * t[base + c * p.inner] + smooth);
        }
        total = block_reduce(total, sh, [](T a, T b) { return a + b; });
        for (u64 c = threadIdx.x; c < p.classes; c += blockDim.x) {
            u64 k = base + c * p.inner;
            T wc = weight_of(w, c);
            T wt = wc * (keep * t[k] + smooth);
            T pr = f_exp(x[k] - z);
            out[k] = gr * (pr * total - wt);
            if (tgrad) tgrad[k] = -(gr * keep * wc * (x[k] - z));
        }
    }
}

// NLL backward: `out` arrives zeroed; -w[y] * g at each row's target.
template <typename T>
__device__ __forceinline__ void nll_bwd(const i64* t, const T* w, const T* g, GradP gp, const double* wsum,
                                        T* out, CeP p) {
    for (u64 r = (u64)blockIdx.x * blockDim.x + threadIdx.x; r < p.rows; r += (u64)gridDim.x * blockDim.x) {
        i64 y = t[r];
        if (y == p.ignore || y < 0 || (u64)y >= p.classes) continue;
        out[row_base(r, p.classes, p.inner) + (u64)y * p.inner] = -(weight_of(w, (u64)y) * row_grad(g, gp, wsum, r));
    }
}

#define INSTANTIATE_LOSS(T, N)                                                                  \
    extern "C" __global__ void ce_fwd_index_##N(const T* x, const i64* t, const T* w, T* loss,  \
                                                T* lse, double* rw, CeP p, u64* err) {          \
        ce_fwd_index<T>(x, t, w, loss, lse, rw, p, err);                                        \
    }                                                                                           \
    extern "C" __global__ void ce_fwd_prob_##N(const T* x, const T* t, const T* w, T* loss,     \
                                               T* lse, double* rw, CeP p) {                     \
        ce_fwd_prob<T>(x, t, w, loss, lse, rw, p);                                              \
    }                                                                                           \
    extern "C" __global__ void nll_fwd_##N(const T* x, const i64* t, const T* w, T* loss,       \
                                           double* rw, CeP p, u64* err) {                       \
        nll_fwd<T>(x, t, w, loss, rw, p, err);                                                  \
    }                                                                                           \
    extern "C" __global__ void loss_reduce_##N(const T* loss, const double* rw, u64 rows,       \
                                               u32 mean, T* out, double* wsum_out) {            \
        loss_reduce<T>(loss, rw, rows, mean, out, wsum_out);                                    \
    }                                                                                           \
    extern "C" __global__ void ce_bwd_index_##N(const T* x, const i64* t, const T* w,           \
                                                const T* lse, const T* g, GradP gp,             \
                                                const double* wsum, T* out, CeP p) {            \
        ce_bwd_index<T>(x, t, w, lse, g, gp, wsum, out, p);                                     \
    }                                                                                           \
    extern "C" __global__ void ce_bwd_prob_##N(const T* x, const T* t, const T* w,              \
                                               const T* lse, const T* g, GradP gp, T* out,      \
                                               T* tgrad, CeP p) {                               \
        ce_bwd_prob<T>(x, t, w, lse, g, gp, out, tgrad, p);                                     \
    }                                                                                           \
    extern "C" __global__ void nll_bwd_##N(const i64* t, const T* w, const T* g, GradP gp,      \
                                           const double* wsum, T* out, CeP p) {                 \
        nll_bwd<T>(t, w, g, gp, wsum, out, p);                                                  \
    }
