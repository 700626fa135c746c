// Softmax and log-softmax along one dim of a contiguous [outer, n, inner] tensor, forward and
// fused backward (cpu/softmax.rs). Rows (inner == 1): a block per row, its threads striding over
// the n elements, with block-wide max and sums. Columns (inner > 1): a thread per (outer, inner)
// column walking its n elements `inner` apart (adjacent threads read adjacent addresses).

// Forward of one row/column: `at(j)` is element j's position.
template <typename T>
__device__ __forceinline__ void softmax_rows(const T* x, T* y, u64 outer, u64 n, u32 log_) {
    extern __shared__ __align__(16) unsigned char smem[];
    T* sh = (T*)smem;
    for (u64 r = blockIdx.x; r < outer; r += gridDim.x) {
        const T* xr = x + r * n;
        T* yr = y + r * n;
        T m = Num<T>::lowest();
        for (u64 j = threadIdx.x; j < n; j += blockDim.x) m = max_plain(m, xr[j]);
        m = block_reduce(m, sh, [](T a, T b) { return max_plain(a, b); });
        T s = (T)0;
        for (u64 j = threadIdx.x; j < n; j += blockDim.x) s += f_exp(xr[j] - m);
        s = block_reduce(s, sh, [](T a, T b) { return a + b; });
        if (log_) {
            T ls = f_log(s);
            for (u64 j = threadIdx.x; j < n; j += blockDim.x) yr[j] = (xr[j] - m) - ls;
        } else {
            T inv = (T)1 / s;
            for (u64 j = threadIdx.x; j < n; j += blockDim.x) yr[j] = f_exp(xr[j] - m) * inv;
        }
    }
}

template <typename T>
__device__ __forceinline__ void softmax_cols(const T* x, T* y, u64 outer, u64 n, u64 inner, u32 log_) {
    u64 cols = outer * inner;
    for (u64 col = (u64)blockIdx.x * blockDim.x + threadIdx.x; col < cols;
         col += (u64)gridDim.x * blockDim.x) {
        u64 o = col / inner, c = col - o * inner;
        const T* xc = x + o * n * inner + c;
        T* yc = y + o * n * inner + c;
        T m = Num<T>::lowest();
        for (u64 j = 0; j < n; j++) m = pick<T, true>(m, xc[j * inner]);
        double s = 0.0;
        for (u64 j = 0; j < n; j++) s += (double)f_exp(xc[j * inner] - m);
        T k = (T)(log_ ? log(s) : 1.0 / s);
        for (u64 j = 0; j < n; j++) {
            T v = xc[j * inner] - m;
            yc[j * inner] = log_ ? v - k : f_exp(v) * k;
        }
    }
}

// Backward: softmax `y * (g - Σ g y)`, log-softmax `g - e^y Σ g` (y is the forward output).
template <typename T>
__device__ __forceinline__ void softmax_bwd_rows(const T* g, const T* y, T* out, u64 outer, u64 n, u32 log_) {
    extern __shared__ __align__(16) unsigned char smem[];
    T* sh = (T*)smem;
    for (u64 r = blockIdx.x; r < outer; r += gridDim.x) {
        const T* gr = g + r * n;
        const T* yr = y + r * n;
        T* o = out + r * n;
        T s = (T)0;
        for (u64 j = threadIdx.x; j < n; j += blockDim.x) s += log_ ? gr[j] : gr[j] * yr[j];
        s = block_reduce(s, sh, [](T a, T b) { return a + b; });
        for (u64 j = threadIdx.x; j < n; j += blockDim.x) {
            o[j] = log_ ? gr[j] - f_exp(yr[j]) * s : yr[j] * (gr[j] - s);
        }
    }
}

template <typename T>
__device__ __forceinline__ void softmax_bwd_cols(const T* g, const T* y, T* out, u64 outer, u64 n,
                                                 u64 inner, u32 log_) {
    u64 cols = outer * inner;
    for (u64 col = (u64)blockIdx.x * blockDim.x + threadIdx.x; col < cols;
         col += (u64)gridDim.x * blockDim.x) {
        u64 o = col / inner, c = col - o * inner;
        u64 base = o * n * inner + c;
        double s = 0.0;
        for (u64 j = 0; j < n; j++) {
            u64 p = base + j * inner;
            s += log_ ? (double)g[p] : (double)(g[p] * y[p]);
        }
        T st = (T)s;
        for (u64 j = 0; j < n; j++) {
            u64 p = base + j * inner;
            out[p] = log_ ? g[p] - f_exp(y[p]) * st : y[p] * (g[p] - st);
        }
    }
}

#define INSTANTIATE_SOFTMAX(T, N)                                                               \
    extern "C" __global__ void softmax_##N(const T* x, T* y, u64 outer, u64 n, u64 inner,       \
                                           u32 log_) {                                          \
        if (inner == 1) softmax_rows<T>(x, y, outer, n, log_);                                  \
        else softmax_cols<T>(x, y, outer, n, inner, log_);                                      \
    }                                                                                           \
    extern "C" __global__ void softmax_bwd_##N(const T* g, const T* y, T* out, u64 outer,       \
                                               u64 n, u64 inner, u32 log_) {                    \
        if (inner == 1) softmax_bwd_rows<T>(g, y, out, outer, n, log_);                         \
        else softmax_bwd_cols<T>(g, y, out, outer, n, inner, log_);                             \
    }
