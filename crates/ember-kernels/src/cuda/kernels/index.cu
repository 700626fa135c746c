// Indexing kernels (cpu/index.rs): gather (also index_select, whose 1-D index the host
// expands to the output's shape), scatter / scatter_add, one_hot. They walk an ElemGeom whose
// operand strides the host prepares: for gather, operand 0 is the output, 1 the source with
// stride 0 along `dim` (the index supplies that coordinate: + v * sd), 2 the index. Index
// values are range-checked; a bad one is reported through the error slot with the op's code.

template <typename T, typename I>
__device__ __forceinline__ void gather_impl(T* out, const T* src, const I* idx, const ElemGeom& g, u32 contig,
                                            u64 sd, u64 size, u64 dim, u64 code, u64* err) {
    for_each_elem<3>(g, contig, [&](u64, const u64 (&o)[3]) {
        i64 v = (i64)idx[o[2]];
        if (v < 0 || (u64)v >= size) {
            report(err, code, (u64)v, dim, size);
            return;
        }
        out[o[0]] = src[o[1] + (u64)v * sd];
    });
}

// Atomic `*p += v` for every dtype (bool: or; u8: a compare-and-swap on its 32-bit word).
__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(i64* p, i64 v) { atomicAdd((u64*)p, (u64)v); }
__device__ __forceinline__ void atomic_add(u8* p, u8 v) {
    u32* word = (u32*)((u64)p & ~(u64)3);
    u32 shift = ((u32)((u64)p & 3)) * 8;
    u32 old = *word, assumed;
    do {
        assumed = old;
        u32 byte = ((assumed >> shift) + v) & 0xff;
        old = atomicCAS(word, assumed, (assumed & ~(0xffu << shift)) | (byte << shift));
    } while (assumed != old);
}
__device__ __forceinline__ void atomic_add(bool* p, bool v) {
    if (!v) return;
    u32* word = (u32*)((u64)p & ~(u64)3);
    u32 shift = ((u32)((u64)p & 3)) * 8;
    atomicOr(word, 1u << shift);
}

// Over the index's shape: operand 0 is the destination with stride 0 along `dim`, 1 the index,
// 2 the source. Duplicate indices: scatter_add adds all (atomically, so float sums depend on
// the order the hardware applies them, as PyTorch's CUDA scatter_add); plain scatter keeps one
// of the writes.
template <typename T, typename I>
__device__ __forceinline__ void scatter_impl(T* dst, const I* idx, const T* src, const ElemGeom& g, u32 contig,
                                             u64 sd, u64 size, u64 dim, u32 add, u64 code, u64* err) {
    for_each_elem<3>(g, contig, [&](u64, const u64 (&o)[3]) {
        i64 v = (i64)idx[o[1]];
        if (v < 0 || (u64)v >= size) {
            report(err, code, (u64)v, dim, size);
            return;
        }
        T* p = dst + o[0] + (u64)v * sd;
        if (add) atomic_add(p, src[o[2]]);
        else *p = src[o[2]];
    });
}

// `out` (n × C, zeroed) gets a 1 at each index; operand 0 walks the index tensor.
__device__ __forceinline__ void one_hot_impl(i64* out, const i64* idx, const ElemGeom& g, u32 contig, u64 C,
                                             u64* err) {
    for_each_elem<1>(g, contig, [&](u64 i, const u64 (&o)[1]) {
        i64 v = idx[o[0]];
        if (v < 0) {
            report(err, ERR_ONE_HOT_NEGATIVE, (u64)v, C, 0);
        } else if ((u64)v >= C) {
            report(err, ERR_ONE_HOT_TOO_LARGE, (u64)v, C, 0);
        } else {
            out[i * C + (u64)v] = 1;
        }
    });
}

#define INSTANTIATE_ONE_HOT                                                                     \
    extern "C" __global__ void one_hot(i64* out, const i64* idx, ElemGeom g, u32 contig, u64 C, \
                                       u64* err) {                                              \
        one_hot_impl(out, idx, g, contig, C, err);                                              \
    }

#define INSTANTIATE_INDEX(T, N, I, IN)                                                          \
    extern "C" __global__ void gather_##N##_##IN(T* out, const T* src, const I* idx, ElemGeom g, \
                                                 u32 contig, u64 sd, u64 size, u64 dim,         \
                                                 u64 code, u64* err) {                          \
        gather_impl<T, I>(out, src, idx, g, contig, sd, size, dim, code, err);                  \
    }                                                                                           \
    extern "C" __global__ void scatter_##N##_##IN(T* dst, const I* idx, const T* src,           \
                                                  ElemGeom g, u32 contig, u64 sd, u64 size,     \
                                                  u64 dim, u32 add, u64 code, u64* err) {       \
        scatter_impl<T, I>(dst, idx, src, g, contig, sd, size, dim, add, code, err);            \
    }
