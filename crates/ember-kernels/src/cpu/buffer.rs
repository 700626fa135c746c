//! Host buffers with reuse of large allocations.
//!
//! A fresh 64 MiB `Vec` is `mmap`ed by the allocator and every page faults on first write, which
//! halves the speed of a large elementwise op that returns a new tensor. Large buffers are
//! therefore returned to a small per-type cache on drop and handed out again by `uninit`.
//!
//! The cache holds what recurs, not whatever was freed: capacities are rounded up to size classes
//! (four per power of two, at most 25% over), so a buffer is reused by requests of its own class
//! only; a cached buffer not reused within [`MAX_IDLE_ALLOCS`] pool allocations is freed; and the
//! cached bytes never exceed the peak bytes of large buffers in use at once (the working set,
//! with a floor) nor [`POOL_MAX_BYTES`]. [`empty_cache`] frees it all, [`memory_stats`] counts,
//! as `torch.cuda` does for its cache.

use crate::dtype::Element;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

/// Buffers smaller than this go straight back to the allocator (which already reuses them).
const POOL_MIN_BYTES: usize = 256 << 10;
/// The cache never keeps more than this many bytes alive.
pub const POOL_MAX_BYTES: usize = 256 << 20;
/// The cache may always keep this many bytes, whatever the working set.
const POOL_FLOOR_BYTES: usize = 32 << 20;
/// A cached buffer not handed out again within this many pool allocations (of any type) is
/// freed: a training step makes tens of them, so what a step reuses stays, and what one odd
/// batch (a test pass, the last partial batch) left behind goes.
pub const MAX_IDLE_ALLOCS: u64 = 512;

/// Process-wide counters of the cache (all element types).
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK_LIVE: AtomicUsize = AtomicUsize::new(0);
static CACHED: AtomicUsize = AtomicUsize::new(0);
static CLOCK: AtomicU64 = AtomicU64::new(0);
static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);
static EVICTIONS: AtomicU64 = AtomicU64::new(0);

/// What the host buffer cache holds and has done (`ember::cpu::memory_stats()`), counting only
/// the large buffers it manages (256 KiB and up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostMemoryStats {
    /// Bytes of large buffers now in use by tensors.
    pub live_bytes: usize,
    /// The most `live_bytes` since the start (or [`reset_peak_memory_stats`]).
    pub peak_live_bytes: usize,
    /// Bytes of freed buffers kept for reuse.
    pub cached_bytes: usize,
    /// Requests served from the cache.
    pub hits: u64,
    /// Requests that allocated.
    pub misses: u64,
    /// Cached buffers freed (idle too long, over the cap, or by [`empty_cache`]).
    pub evictions: u64,
}

/// The cache's counters now.
pub fn memory_stats() -> HostMemoryStats {
    HostMemoryStats {
        live_bytes: LIVE.load(Relaxed),
        peak_live_bytes: PEAK_LIVE.load(Relaxed),
        cached_bytes: CACHED.load(Relaxed),
        hits: HITS.load(Relaxed),
        misses: MISSES.load(Relaxed),
        evictions: EVICTIONS.load(Relaxed),
    }
}

/// Restarts `peak_live_bytes` from the bytes in use now.
pub fn reset_peak_memory_stats() {
    PEAK_LIVE.store(LIVE.load(Relaxed), Relaxed);
}

/// Frees every cached buffer (`torch.cuda.empty_cache()` for host memory); buffers in use are
/// untouched.
pub fn empty_cache() {
    clear_all_pools();
}

/// A freed buffer and the pool clock when it was freed.
struct Cached<T> {
    vec: Vec<T>,
    freed_at: u64,
}

/// A per-element-type free list of large buffers.
pub struct Pool<T> {
    free: Mutex<Vec<Cached<T>>>,
}

impl<T> Pool<T> {
    /// An empty pool.
    pub const fn new() -> Self {
        Pool {
            free: Mutex::new(Vec::new()),
        }
    }

    /// Frees what the pool holds.
    fn clear(&self) {
        if let Ok(mut free) = self.free.lock() {
            for c in free.drain(..) {
                forget_cached::<T>(&c.vec);
            }
        }
    }
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Accounts for a cached buffer leaving the cache for the allocator.
fn forget_cached<T>(v: &Vec<T>) {
    CACHED.fetch_sub(bytes::<T>(v.capacity()), Relaxed);
    EVICTIONS.fetch_add(1, Relaxed);
}

/// Frees the buffers idle for more than [`MAX_IDLE_ALLOCS`] allocations, then the oldest ones
/// while the cache is over its cap.
fn evict<T>(free: &mut Vec<Cached<T>>, now: u64) {
    free.retain(|c| {
        let keep = now.saturating_sub(c.freed_at) <= MAX_IDLE_ALLOCS;
        if !keep {
            forget_cached::<T>(&c.vec);
        }
        keep
    });
    let cap = PEAK_LIVE
        .load(Relaxed)
        .clamp(POOL_FLOOR_BYTES, POOL_MAX_BYTES);
    while CACHED.load(Relaxed) > cap && !free.is_empty() {
        // Entries are pushed in freeing order: the first is the oldest.
        let c = free.remove(0);
        forget_cached::<T>(&c.vec);
    }
}

/// The capacity (in elements) of `n`'s size class: bytes rounded up to a quarter of the power of
/// two below them.
fn class_len<T>(n: usize) -> usize {
    let size = std::mem::size_of::<T>().max(1);
    let b = bytes::<T>(n).max(1);
    let step = (1usize << (usize::BITS - 1 - (b - 1).max(1).leading_zeros())) / 4;
    let step = step.max(size).next_multiple_of(size);
    b.next_multiple_of(step) / size
}

/// An element type that can live in a pooled host buffer.
pub trait PoolElement: Element {
    /// The process-wide pool of this type.
    fn pool() -> &'static Pool<Self>;
    /// What debug builds fill "uninitialised" buffers with: NaN for floats, an implausible value
    /// for integers, so a kernel that forgets to write an element fails the tests instead of
    /// returning stale (or zero) numbers that look right.
    const POISON: Self;
}

macro_rules! pool_element {
    ($($t:ty => $poison:expr),*) => {
        $(
            impl PoolElement for $t {
                fn pool() -> &'static Pool<Self> {
                    static POOL: Pool<$t> = Pool::new();
                    &POOL
                }
                const POISON: Self = $poison;
            }
        )*
        /// Clears every element type's pool.
        fn clear_all_pools() {
            $(<$t as PoolElement>::pool().clear();)*
        }
    };
}
pool_element!(
    bool => true,
    u8 => 0xA5,
    i64 => 0x5A5A_5A5A_5A5A_5A5A,
    f32 => f32::NAN,
    f64 => f64::NAN
);

fn bytes<T>(n: usize) -> usize {
    n * std::mem::size_of::<T>()
}

/// Counts a large buffer handed to a tensor.
fn track_live<T>(v: &Vec<T>) {
    let b = bytes::<T>(v.capacity());
    if b >= POOL_MIN_BYTES {
        let live = LIVE.fetch_add(b, Relaxed) + b;
        PEAK_LIVE.fetch_max(live, Relaxed);
    }
}

/// Counts a large buffer given back by a tensor.
fn untrack_live<T>(v: &Vec<T>) {
    let b = bytes::<T>(v.capacity());
    if b >= POOL_MIN_BYTES {
        LIVE.fetch_sub(b, Relaxed);
    }
}

/// An owned host buffer of elements; large ones are recycled through [`Pool`] when dropped.
pub struct Buffer<T: PoolElement> {
    vec: Vec<T>,
}

impl<T: PoolElement> Buffer<T> {
    /// Wraps an existing vector.
    pub fn from_vec(vec: Vec<T>) -> Self {
        track_live(&vec);
        Buffer { vec }
    }

    /// A buffer of `n` elements whose contents are unspecified (old values or zeros; in debug
    /// builds always [`PoolElement::POISON`]): callers must write every element before reading it.
    /// Reuses a cached allocation of the same size class when there is one.
    pub fn uninit(n: usize) -> Self {
        let mut b = Self::uninit_any(n);
        if cfg!(debug_assertions) {
            b.vec.fill(T::POISON);
        }
        b
    }

    fn uninit_any(n: usize) -> Self {
        if bytes::<T>(n) < POOL_MIN_BYTES {
            return Self::from_vec(vec![T::default(); n]);
        }
        let cap = class_len::<T>(n);
        let now = CLOCK.fetch_add(1, Relaxed) + 1;
        let reused = T::pool().free.lock().ok().and_then(|mut free| {
            evict(&mut free, now);
            let i = free.iter().rposition(|c| c.vec.capacity() == cap)?;
            Some(free.swap_remove(i).vec)
        });
        let vec = match reused {
            Some(mut v) => {
                CACHED.fetch_sub(bytes::<T>(v.capacity()), Relaxed);
                HITS.fetch_add(1, Relaxed);
                if v.len() < n {
                    v.resize(n, T::default());
                }
                v.truncate(n);
                v
            }
            None => {
                MISSES.fetch_add(1, Relaxed);
                // Zero-filled allocations come from calloc, whose pages are untouched until
                // written; the whole class is allocated so the buffer can serve its class later.
                let mut v = vec![T::default(); cap];
                v.truncate(n);
                v
            }
        };
        Self::from_vec(vec)
    }

    /// A buffer of `n` copies of `value`.
    pub fn filled(n: usize, value: T) -> Self {
        let mut b = Self::uninit(n);
        b.vec.fill(value);
        b
    }

    /// Takes the vector out (it is not returned to the pool).
    pub fn into_vec(mut self) -> Vec<T> {
        let v = std::mem::take(&mut self.vec);
        untrack_live(&v);
        v
    }
}

impl<T: PoolElement> Drop for Buffer<T> {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.vec);
        untrack_live(&v);
        let cap = bytes::<T>(v.capacity());
        // Only whole size classes are cached: another capacity would never be asked for again.
        if !(POOL_MIN_BYTES..=POOL_MAX_BYTES).contains(&cap)
            || class_len::<T>(v.capacity()) != v.capacity()
        {
            return;
        }
        if let Ok(mut free) = T::pool().free.lock() {
            CACHED.fetch_add(cap, Relaxed);
            free.push(Cached {
                vec: v,
                freed_at: CLOCK.load(Relaxed),
            });
            evict(&mut free, CLOCK.load(Relaxed));
        }
    }
}

impl<T: PoolElement> Deref for Buffer<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.vec
    }
}

impl<T: PoolElement> DerefMut for Buffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.vec
    }
}

impl<T: PoolElement> Clone for Buffer<T> {
    fn clone(&self) -> Self {
        let mut b = Self::uninit(self.len());
        b.copy_from_slice(self);
        b
    }
}

impl<T: PoolElement> std::fmt::Debug for Buffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.vec.iter().take(16)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_reused() {
        let n = 1 << 20;
        let a = Buffer::<f64>::filled(n, 1.5);
        let ptr = a.as_ptr();
        drop(a);
        let b = Buffer::<f64>::uninit(n);
        assert_eq!(b.len(), n);
        // Another test may race for the pooled buffer; only check when we got one back.
        if b.as_ptr() == ptr {
            if cfg!(debug_assertions) {
                assert!(b[0].is_nan(), "debug builds poison reused buffers");
            } else {
                assert_eq!(b[0], 1.5);
            }
        }
    }

    #[test]
    fn debug_builds_poison_every_uninitialised_buffer() {
        if !cfg!(debug_assertions) {
            return; // release builds hand out whatever the allocation held
        }
        assert!(Buffer::<f32>::uninit(3).iter().all(|v| v.is_nan()));
        assert!(Buffer::<f64>::uninit(1 << 16).iter().all(|v| v.is_nan()));
        assert!(Buffer::<i64>::uninit(5).iter().all(|&v| v == i64::POISON));
        assert!(Buffer::<u8>::uninit(5).iter().all(|&v| v == u8::POISON));
    }
}
