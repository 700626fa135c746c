// Host emulation of the CUDA dialect the kernels use, so that the same kernel sources compile
// with a host C++ compiler and run on the CPU (test-only: `EMBER_CUDA_EMULATE=1`, see
// emulate.rs). A launch runs the grid's blocks one after another, each block's threads as real
// threads sharing one barrier (`__syncthreads`) and one dynamic shared-memory buffer; launches
// are serialised. Atomics are real atomics; math functions are the host's libm.

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstring>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __shared__
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
    unsigned x, y, z;
};

static thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;
static thread_local std::barrier<>* emu_barrier;
// The dynamic shared memory of the running block (launches are serialised).
alignas(16) unsigned char smem[1 << 16];

#define __syncthreads() emu_barrier->arrive_and_wait()

static inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
static inline unsigned __umulhi(unsigned a, unsigned b) {
    return (unsigned)(((unsigned long long)a * b) >> 32);
}
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
template <typename To, typename From> static inline To emu_bits(From f) {
    To t;
    std::memcpy(&t, &f, sizeof t);
    return t;
}
static inline float __int_as_float(int x) { return emu_bits<float>(x); }
static inline float __uint_as_float(unsigned x) { return emu_bits<float>(x); }
static inline unsigned __float_as_uint(float x) { return emu_bits<unsigned>(x); }
static inline double __longlong_as_double(long long x) { return emu_bits<double>(x); }
static inline long long __double_as_longlong(double x) { return emu_bits<long long>(x); }

static inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long cmp,
                                           unsigned long long val) {
    __atomic_compare_exchange_n(p, &cmp, val, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return cmp;
}
static inline unsigned atomicCAS(unsigned* p, unsigned cmp, unsigned val) {
    __atomic_compare_exchange_n(p, &cmp, val, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return cmp;
}
static inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
static inline unsigned atomicOr(unsigned* p, unsigned v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }
template <typename F, typename B> static inline F emu_atomic_add_float(F* p, F v) {
    B* w = (B*)p;
    B old = __atomic_load_n(w, __ATOMIC_SEQ_CST);
    while (!__atomic_compare_exchange_n(w, &old, emu_bits<B>(emu_bits<F>(old) + v), false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
    return emu_bits<F>(old);
}
static inline float atomicAdd(float* p, float v) { return emu_atomic_add_float<float, unsigned>(p, v); }
static inline double atomicAdd(double* p, double v) {
    return emu_atomic_add_float<double, unsigned long long>(p, v);
}

// Calls a kernel with its arguments given as an array of pointers to values (cuLaunchKernel's
// convention).
template <typename... A, std::size_t... I>
static void emu_call_impl(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*(std::remove_cv_t<std::remove_reference_t<A>>*)args[I]...);
}
template <typename... A> static void emu_call(void (*f)(A...), void** args) {
    emu_call_impl(f, args, std::index_sequence_for<A...>{});
}

// Runs `kernel()` for every thread of a gx × gy × gz grid of blocks of bx threads: blocks in
// order, each block's threads concurrently (a thread per CUDA thread, one barrier per block).
// Launches of one module are serialised (they share `smem`).
template <typename K>
static void emu_run(K kernel, unsigned gx, unsigned gy, unsigned gz, unsigned bx) {
    static std::mutex serial;
    std::lock_guard<std::mutex> lock(serial);
    std::barrier<> bar(bx);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < bx; t++) {
        threads.emplace_back([=, &bar, &kernel] {
            emu_barrier = &bar;
            threadIdx = dim3{t, 0, 0};
            blockDim = dim3{bx, 1, 1};
            gridDim = dim3{gx, gy, gz};
            for (unsigned z = 0; z < gz; z++)
                for (unsigned y = 0; y < gy; y++)
                    for (unsigned x = 0; x < gx; x++) {
                        blockIdx = dim3{x, y, z};
                        kernel();
                        // The block's threads finish before the next block reuses `smem`.
                        bar.arrive_and_wait();
                    }
        });
    }
    for (auto& th : threads) th.join();
}

// A kernel's host launcher: (grid x, y, z, block x, argument pointers).
typedef void (*emu_launcher)(unsigned, unsigned, unsigned, unsigned, void**);
#define EMU_KERNEL(name)                                                                       \
    if (!std::strcmp(want, #name))                                                             \
        return (void*)+[](unsigned gx, unsigned gy, unsigned gz, unsigned bx, void** args) {  \
            emu_run([args] { emu_call(&name, args); }, gx, gy, gz, bx);                        \
        };
