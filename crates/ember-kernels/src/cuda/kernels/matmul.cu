// Integer matrix products (cuBLAS has no wrapping integer GEMM): a thread per output element of
// a contiguous [batch, M, N] result, reading strided operands in place. Wrapping arithmetic in
// the dtype, as the CPU backend: alpha · Σ a·b == Σ (alpha·a)·b exactly.

struct GemmP {
    u64 batch, m, k, n;
    u64 a_batch, a_row, a_col;
    u64 b_batch, b_row, b_col;
    u64 alpha;  // bits of the dtype
    u32 accumulate;
    u32 pad;
};

template <typename T> __device__ __forceinline__ void gemm_int_impl(T* out, const T* a, const T* b, GemmP p) {
    T alpha = from_bits<T>(p.alpha);
    u64 total = p.batch * p.m * p.n;
    for (u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (u64)gridDim.x * blockDim.x) {
        u64 j = idx % p.n;
        u64 i = (idx / p.n) % p.m;
        u64 bi = idx / (p.n * p.m);
        const T* ar = a + bi * p.a_batch + i * p.a_row;
        const T* bc = b + bi * p.b_batch + j * p.b_col;
        T acc = p.accumulate ? out[idx] : (T)0;
        for (u64 q = 0; q < p.k; q++) {
            acc = Num<T>::add(acc, Num<T>::mul(Num<T>::mul(alpha, ar[q * p.a_col]), bc[q * p.b_row]));
        }
        out[idx] = acc;
    }
}

#define INSTANTIATE_MATMUL(T, N)                                                                \
    extern "C" __global__ void gemm_int_##N(T* out, const T* a, const T* b, GemmP p) {         \
        gemm_int_impl<T>(out, a, b, p);                                                         \
    }
