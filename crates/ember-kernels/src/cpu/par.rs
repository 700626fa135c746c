//! When and how CPU kernels go parallel: the measured size thresholds of every kernel family and
//! the chunking helpers. Spawning rayon work costs a few microseconds, so work below a
//! threshold stays on the calling thread.

use rayon::prelude::*;

/// Elementwise ops on fewer elements than this run on one thread (measured with the kernels
/// benchmark: below ~32K f32 elements the split costs more than it saves on 2 cores).
pub const ELEMENTWISE_GRAIN: usize = 1 << 15;

/// Normal fills turn fewer words than this into values on one thread: the vectorised
/// Box–Muller path costs about 1 ns per value, so 16K values take as long as waking rayon.
pub const NORMAL_GRAIN: usize = 1 << 14;

/// Reductions over fewer input elements than this run on one thread: a vectorised sum reads
/// 128K cached f32 in a few microseconds, about what handing work to rayon costs.
pub const REDUCE_GRAIN: usize = 1 << 17;

/// Float GEMMs with at least this many multiply-adds are split across rayon. Waking the pool
/// costs 5-8 µs, so below ~1M multiply-adds (64×128×64 included) one thread is faster; at
/// 16×784×128 two already win (measured with single-threaded matrixmultiply calls).
pub const GEMM_GRAIN: usize = 1 << 20;

/// Convolutions of at least this many multiply-adds (per GEMM pass) run their samples (and
/// channel groups) in parallel, each worker building its own patch matrices; smaller ones run on
/// the calling thread, where a single large product may still split its GEMM.
pub const CONV_GRAIN: usize = 1 << 20;

/// Pooling over at least this many input elements splits its (sample, channel) planes across
/// rayon.
pub const POOL_GRAIN: usize = 1 << 15;

/// Integer GEMMs (a plain loop, far slower per multiply-add) split their rows across rayon from
/// this many multiply-adds.
pub const INT_GEMM_GRAIN: usize = 1 << 16;

/// Number of chunks to split parallel work into.
pub fn n_chunks(n: usize, grain: usize) -> usize {
    if n < grain {
        1
    } else {
        (rayon::current_num_threads() * 4)
            .min(n / (grain / 4).max(1))
            .max(1)
    }
}

/// Calls `f(start, chunk)` over `out` split into parallel chunks (one chunk when small).
pub fn for_each_chunk_mut<T: Send>(
    out: &mut [T],
    grain: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let n = out.len();
    let chunks = n_chunks(n, grain);
    if chunks <= 1 {
        f(0, out);
        return;
    }
    let size = n.div_ceil(chunks);
    out.par_chunks_mut(size)
        .enumerate()
        .for_each(|(i, c)| f(i * size, c));
}

/// Calls `f(start, end)` over `0..n` split into parallel ranges (one range when small).
pub fn for_each_range(n: usize, grain: usize, f: impl Fn(usize, usize) + Sync) {
    let chunks = n_chunks(n, grain);
    if chunks <= 1 {
        f(0, n);
        return;
    }
    let size = n.div_ceil(chunks);
    (0..chunks).into_par_iter().for_each(|i| {
        let s = i * size;
        if s < n {
            f(s, (s + size).min(n));
        }
    });
}
