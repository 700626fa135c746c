// Convolution and pooling (conv.rs; the CPU twins are cpu/conv.rs and cpu/pool.rs).
//
// A convolution is a GEMM (cuBLAS, launched from conv.rs) over a patch matrix: `im2col` writes
// one entry per thread (row `(c·kh + i)·kw + j` for channel c and kernel tap (i, j), column =
// output position), reading the input through any strides and writing the layout the GEMM
// wants (`ConvP::cs`). `col2im` is the input gradient's gather: one thread per input element
// sums the patch-matrix gradients of the taps that read it, in the CPU's order (taps
// ascending), so no atomics are needed and the result does not depend on timing.
//
// Pooling runs one thread per output (forward) with the windows of `conv::PoolWindows::taps`
// recomputed per thread. Max pooling keeps the first maximum in row-major window order, a NaN
// counting as maximal (PyTorch's `val > max || isnan(val)`); its backward adds each output
// gradient at its recorded index with an atomic add (the kernel is given only the indices, not
// the windows). Average pooling's backward is a gather: one thread per input element sums, in
// the CPU's order (outputs ascending), the divided gradients of the windows that contain it.
//
// Index arithmetic (the divisions splitting a thread's number into coordinates) runs in 32 bits
// when `use32` says the work fits, in 64 bits otherwise; storage offsets are always 64-bit.

// Twin of params::ConvP.
struct ConvP {
    u64 n;
    u64 cin;
    u64 h;
    u64 w;
    u64 oh;
    u64 ow;
    u64 kh;
    u64 kw;
    u64 cg;
    u64 groups;
    u64 xs[4];
    u64 cs[4];
    u64 stride[2];
    u64 pad[2];
    u64 dil[2];
    u64 total;
    u32 use32;
    u32 pad_;
};

// Twin of params::PoolP.
struct PoolP {
    u64 planes;
    u64 c;
    u64 h;
    u64 w;
    u64 oh;
    u64 ow;
    u64 kernel[2];
    u64 stride[2];
    u64 pad[2];
    u64 dil[2];
    u64 s[4];
    u64 si[4];
    u64 divisor;
    u64 total;
    u32 adaptive;
    u32 count_include_pad;
    u32 has_override;
    u32 use32;
};

#define CONV_FOR_EACH(i, total)                                                                \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (total);                      \
         i += (u64)gridDim.x * blockDim.x)

// ---- convolution ------------------------------------------------------------------------

template <typename T, typename I>
__device__ __forceinline__ void im2col_body(const T* x, T* col, const ConvP& p) {
    const I ow = (I)p.ow, kw = (I)p.kw, groups = (I)p.groups;
    const I ohw = (I)(p.oh * p.ow), khw = (I)(p.kh * p.kw);
    const I k = (I)p.cg * khw;
    CONV_FOR_EACH(i, p.total) {
        I j = (I)i;
        I pos = j % ohw;
        I t = j / ohw;
        I row = t % k;
        I ng = t / k;
        I g = ng % groups;
        I s = ng / groups;
        I c = row / khw;
        I ij = row - c * khw;
        I ki = ij / kw;
        I kj = ij - ki * kw;
        I oy = pos / ow;
        I ox = pos - oy * ow;
        i64 ih = (i64)((u64)oy * p.stride[0] + (u64)ki * p.dil[0]) - (i64)p.pad[0];
        i64 iw = (i64)((u64)ox * p.stride[1] + (u64)kj * p.dil[1]) - (i64)p.pad[1];
        T v = (T)0;
        if (ih >= 0 && ih < (i64)p.h && iw >= 0 && iw < (i64)p.w) {
            v = x[(u64)s * p.xs[0] + ((u64)g * p.cg + (u64)c) * p.xs[1] + (u64)ih * p.xs[2] +
                  (u64)iw * p.xs[3]];
        }
        col[(u64)s * p.cs[0] + (u64)g * p.cs[1] + (u64)row * p.cs[2] + (u64)pos * p.cs[3]] = v;
    }
}

// `gx` is the chunk's contiguous (n, cin, h, w) input gradient.
template <typename T, typename I>
__device__ __forceinline__ void col2im_body(const T* col, T* gx, const ConvP& p) {
    const I w = (I)p.w, h = (I)p.h, cin = (I)p.cin, cg = (I)p.cg;
    const i64 sh = (i64)p.stride[0], sw = (i64)p.stride[1];
    CONV_FOR_EACH(i, p.total) {
        I j = (I)i;
        I ix = j % w;
        I t = j / w;
        I iy = t % h;
        t = t / h;
        I c = t % cin;
        I s = t / cin;
        I g = c / cg;
        I cl = c - g * cg;
        const T* base = col + (u64)s * p.cs[0] + (u64)g * p.cs[1];
        T sum = (T)0;
        for (u64 ki = 0; ki < p.kh; ki++) {
            i64 th = (i64)iy + (i64)p.pad[0] - (i64)(ki * p.dil[0]);
            if (th < 0) break;
            if (th % sh != 0) continue;
            i64 oy = th / sh;
            if (oy >= (i64)p.oh) continue;
            for (u64 kj = 0; kj < p.kw; kj++) {
                i64 tw = (i64)ix + (i64)p.pad[1] - (i64)(kj * p.dil[1]);
                if (tw < 0) break;
                if (tw % sw != 0) continue;
                i64 ox = tw / sw;
                if (ox >= (i64)p.ow) continue;
                u64 row = ((u64)cl * p.kh + ki) * p.kw + kj;
                u64 pos = (u64)oy * p.ow + (u64)ox;
                sum += base[row * p.cs[2] + pos * p.cs[3]];
            }
        }
        gx[i] = sum;
    }
}

// ---- pooling ----------------------------------------------------------------------------

// The input positions one window reads along one dim (twin of conv::Taps).
struct Taps {
    i64 start;
    i64 end;
    i64 step;
    i64 padded;
};

__device__ __forceinline__ i64 taps_count(const Taps& t) {
    return t.end > t.start ? (t.end - t.start + t.step - 1) / t.step : 0;
}

// Twin of `PoolWindows::taps`: output `o` of `out` along dim `d` of an input of size `len`.
__device__ __forceinline__ Taps pool_taps(const PoolP& p, int d, i64 o, i64 out, i64 len) {
    Taps t;
    if (p.adaptive) {
        t.start = (o * len) / out;
        t.end = ((o + 1) * len + out - 1) / out;
        t.step = 1;
        t.padded = t.end - t.start;
        return t;
    }
    i64 k = (i64)p.kernel[d], s = (i64)p.stride[d], pad = (i64)p.pad[d], dil = (i64)p.dil[d];
    i64 raw = o * s - pad;
    i64 raw_end = raw + (k - 1) * dil + 1;
    i64 padded_end = raw_end < len + pad ? raw_end : len + pad;
    // The first tap inside the input: skip whole dilation steps over the padding.
    i64 start = raw < 0 ? raw + ((-raw + dil - 1) / dil) * dil : raw;
    t.start = start > 0 ? start : 0;
    t.end = raw_end < 0 ? 0 : (raw_end > len ? len : raw_end);
    t.step = dil;
    t.padded = padded_end - raw > 0 ? padded_end - raw : 0;
    return t;
}

// Twin of `AvgDivisor::of` (the host folds "sliding windows only" into the flags).
__device__ __forceinline__ i64 pool_divisor(const PoolP& p, const Taps& th, const Taps& tw) {
    if (p.has_override) return (i64)p.divisor;
    if (p.count_include_pad) return th.padded * tw.padded;
    return taps_count(th) * taps_count(tw);
}

// The outputs `[lo, hi)` along dim `d` whose windows may contain input position `x`: exact for
// adaptive windows (PyTorch's start_index/end_index of the inverse map), a superset for sliding
// ones; callers check each window.
__device__ __forceinline__ void pool_outputs(const PoolP& p, int d, i64 x, i64 out, i64 len,
                                             i64* lo, i64* hi) {
    if (p.adaptive) {
        *lo = (x * out) / len;
        *hi = ((x + 1) * out + len - 1) / len;
    } else {
        i64 s = (i64)p.stride[d], pad = (i64)p.pad[d];
        i64 span = ((i64)p.kernel[d] - 1) * (i64)p.dil[d] + 1;
        i64 past = x + pad - span;
        *lo = past < 0 ? 0 : past / s + 1;
        *hi = (x + pad) / s + 1;
    }
    if (*hi > out) *hi = out;
}

template <typename T, typename I>
__device__ __forceinline__ void max_pool_body(const T* x, T* y, i64* idx, const PoolP& p) {
    const I ow = (I)p.ow, oh = (I)p.oh, c = (I)p.c;
    const i64 w = (i64)p.w;
    CONV_FOR_EACH(i, p.total) {
        I j = (I)i;
        I ox = j % ow;
        I t = j / ow;
        I oy = t % oh;
        I pl = t / oh;
        I n = pl / c;
        I ch = pl - n * c;
        const T* base = x + (u64)n * p.s[0] + (u64)ch * p.s[1];
        Taps th = pool_taps(p, 0, (i64)oy, (i64)p.oh, (i64)p.h);
        Taps tw = pool_taps(p, 1, (i64)ox, (i64)p.ow, w);
        T best = Num<T>::lowest();
        i64 at = th.start * w + tw.start;
        for (i64 ih = th.start; ih < th.end; ih += th.step) {
            const T* row = base + (u64)ih * p.s[2];
            for (i64 iw = tw.start; iw < tw.end; iw += tw.step) {
                T v = row[(u64)iw * p.s[3]];
                if (v > best || is_nan(v)) {
                    best = v;
                    at = ih * w + iw;
                }
            }
        }
        y[i] = best;
        idx[i] = at;
    }
}

// One thread per output gradient; `gx` is the zeroed contiguous (N, C, h, w) gradient.
template <typename T, typename I>
__device__ __forceinline__ void max_pool_bwd_body(const T* g, const i64* idx, T* gx,
                                                  const PoolP& p) {
    const I ow = (I)p.ow, oh = (I)p.oh, c = (I)p.c;
    const i64 hw = (i64)(p.h * p.w);
    CONV_FOR_EACH(i, p.total) {
        I j = (I)i;
        I ox = j % ow;
        I t = j / ow;
        I oy = t % oh;
        I pl = t / oh;
        I n = pl / c;
        I ch = pl - n * c;
        i64 at = idx[(u64)n * p.si[0] + (u64)ch * p.si[1] + (u64)oy * p.si[2] + (u64)ox * p.si[3]];
        // A window that read no input holds an index past its plane: its gradient reaches
        // nothing (cpu/pool.rs).
        if (at >= 0 && at < hw) {
            T v = g[(u64)n * p.s[0] + (u64)ch * p.s[1] + (u64)oy * p.s[2] + (u64)ox * p.s[3]];
            atomicAdd(gx + (u64)pl * (u64)hw + (u64)at, v);
        }
    }
}

template <typename T, typename I>
__device__ __forceinline__ void avg_pool_body(const T* x, T* y, const PoolP& p) {
    const I ow = (I)p.ow, oh = (I)p.oh, c = (I)p.c;
    CONV_FOR_EACH(i, p.total) {
        I j = (I)i;
        I ox = j % ow;
        I t = j / ow;
        I oy = t % oh;
        I pl = t / oh;
        I n = pl / c;
        I ch = pl - n * c;
        const T* base = x + (u64)n * p.s[0] + (u64)ch * p.s[1];
        Taps th = pool_taps(p, 0, (i64)oy, (i64)p.oh, (i64)p.h);
        Taps tw = pool_taps(p, 1, (i64)ox, (i64)p.ow, (i64)p.w);
        T v = (T)0;
        if (taps_count(th) * taps_count(tw) != 0) {
            T sum = (T)0;
            // Every position of the window (average pooling has no dilation), as cpu/pool.rs.
            for (i64 ih = th.start; ih < th.end; ih++) {
                const T* row = base + (u64)ih * p.s[2];
                for (i64 iw = tw.start; iw < tw.end; iw++) sum += row[(u64)iw * p.s[3]];
            }
            v = sum / (T)(double)pool_divisor(p, th, tw);
        }
        y[i] = v;
    }
}

// One thread per element of the contiguous (N, C, h, w) input gradient `gx`.
template <typename T, typename I>
__device__ __forceinline__ void avg_pool_bwd_body(const T* g, T* gx, const PoolP& p) {
    const I w = (I)p.w, h = (I)p.h, c = (I)p.c;
    CONV_FOR_EACH(i, p.total) {
        I j = (I)i;
        I ix = j % w;
        I t = j / w;
        I iy = t % h;
        I pl = t / h;
        I n = pl / c;
        I ch = pl - n * c;
        const T* base = g + (u64)n * p.s[0] + (u64)ch * p.s[1];
        i64 lo0, hi0, lo1, hi1;
        pool_outputs(p, 0, (i64)iy, (i64)p.oh, (i64)p.h, &lo0, &hi0);
        pool_outputs(p, 1, (i64)ix, (i64)p.ow, (i64)p.w, &lo1, &hi1);
        T sum = (T)0;
        for (i64 oy = lo0; oy < hi0; oy++) {
            Taps th = pool_taps(p, 0, oy, (i64)p.oh, (i64)p.h);
            if ((i64)iy < th.start || (i64)iy >= th.end) continue;
            for (i64 ox = lo1; ox < hi1; ox++) {
                Taps tw = pool_taps(p, 1, ox, (i64)p.ow, (i64)p.w);
                if ((i64)ix < tw.start || (i64)ix >= tw.end) continue;
                if (taps_count(th) * taps_count(tw) == 0) continue;
                T v = base[(u64)oy * p.s[2] + (u64)ox * p.s[3]];
                sum += v / (T)(double)pool_divisor(p, th, tw);
            }
        }
        gx[i] = sum;
    }
}

#define INSTANTIATE_CONV(T, N)                                                                 \
    extern "C" __global__ void im2col_##N(const T* x, T* col, ConvP p) {                       \
        if (p.use32) im2col_body<T, u32>(x, col, p);                                           \
        else im2col_body<T, u64>(x, col, p);                                                   \
    }                                                                                          \
    extern "C" __global__ void col2im_##N(const T* col, T* gx, ConvP p) {                      \
        if (p.use32) col2im_body<T, u32>(col, gx, p);                                          \
        else col2im_body<T, u64>(col, gx, p);                                                  \
    }                                                                                          \
    extern "C" __global__ void max_pool_##N(const T* x, T* y, i64* idx, PoolP p) {             \
        if (p.use32) max_pool_body<T, u32>(x, y, idx, p);                                      \
        else max_pool_body<T, u64>(x, y, idx, p);                                              \
    }                                                                                          \
    extern "C" __global__ void max_pool_bwd_##N(const T* g, const i64* idx, T* gx, PoolP p) {  \
        if (p.use32) max_pool_bwd_body<T, u32>(g, idx, gx, p);                                 \
        else max_pool_bwd_body<T, u64>(g, idx, gx, p);                                         \
    }                                                                                          \
    extern "C" __global__ void avg_pool_##N(const T* x, T* y, PoolP p) {                       \
        if (p.use32) avg_pool_body<T, u32>(x, y, p);                                           \
        else avg_pool_body<T, u64>(x, y, p);                                                   \
    }                                                                                          \
    extern "C" __global__ void avg_pool_bwd_##N(const T* g, T* gx, PoolP p) {                  \
        if (p.use32) avg_pool_bwd_body<T, u32>(g, gx, p);                                      \
        else avg_pool_bwd_body<T, u64>(g, gx, p);                                              \
    }
