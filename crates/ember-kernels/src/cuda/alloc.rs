//! A caching allocator in front of a raw device allocator, after PyTorch's
//! `c10/cuda/CUDACachingAllocator.cpp`.
//!
//! `cuMemAlloc`/`cuMemFree` cost tens of microseconds and `cuMemFree` synchronises the device, so
//! a training step that allocated every temporary from the driver would spend its time there.
//! Instead, memory obtained from the driver ("segments") is never returned while the program
//! runs (only by [`CachingAllocator::empty_cache`]), and freed blocks are handed out again:
//!
//! - Every request is rounded up to a multiple of 512 bytes.
//! - Requests of at most 1 MiB come from the *small pool*, carved out of 2 MiB segments; larger
//!   ones from the *large pool*: requests under 10 MiB get a 20 MiB segment to split, larger
//!   ones a segment rounded up to 2 MiB. Keeping the two apart stops small temporaries from
//!   fragmenting the big segments that activations need.
//! - A request takes the smallest free block of its pool (and stream) that fits, splitting off
//!   the rest when the rest is worth keeping (at least 512 bytes in the small pool, more than
//!   1 MiB in the large pool). Freed blocks merge with free neighbours in their segment.
//! - Blocks belong to the stream they were allocated on and are reused only on that stream:
//!   work queued on one stream runs in order, so a block freed by the host while a kernel still
//!   reads it is safe to hand to the *next* kernel of the same stream, never to another stream.
//! - When the driver is out of memory, the cached free segments are released and the
//!   allocation is tried once more.
//!
//! The bookkeeping is generic over [`RawAlloc`], so it is tested here with a counting fake; the
//! CUDA backend plugs in `cuMemAlloc`/`cuMemFree`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// Every request is rounded up to a multiple of this many bytes.
pub const MIN_BLOCK: usize = 512;
/// Requests up to this size use the small pool.
pub const SMALL_SIZE: usize = 1 << 20;
/// Size of a small-pool segment.
pub const SMALL_SEGMENT: usize = 2 << 20;
/// Size of the segment a large request under [`MIN_LARGE_ALLOC`] gets (split for later ones).
pub const LARGE_SEGMENT: usize = 20 << 20;
/// Large requests from this size get a segment of their own size (rounded to [`ROUND_LARGE`]).
pub const MIN_LARGE_ALLOC: usize = 10 << 20;
/// Granularity of large segments.
pub const ROUND_LARGE: usize = 2 << 20;

/// A device address (`CUdeviceptr`).
pub type DevPtr = u64;

/// The raw allocator the cache sits in front of (the driver, or a test fake).
pub trait RawAlloc {
    /// Allocates `bytes` bytes (never 0) or fails (out of memory, or another driver error).
    fn alloc(&mut self, bytes: usize) -> Result<DevPtr, AllocError>;
    /// Returns a segment obtained from [`RawAlloc::alloc`]. Called only when no work can still
    /// use it (see [`CachingAllocator::empty_cache`]).
    fn free(&mut self, ptr: DevPtr, bytes: usize);
}

/// Why an allocation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllocError {
    /// The device has no room for the request, even after the cache was emptied.
    OutOfMemory {
        /// The rounded request, in bytes.
        requested: usize,
        /// Bytes held by live tensors.
        allocated: usize,
        /// Bytes held by the allocator (live and cached).
        reserved: usize,
    },
    /// The raw allocator failed for another reason (its message).
    Driver(String),
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocError::OutOfMemory {
                requested,
                allocated,
                reserved,
            } => write!(
                f,
                "CUDA out of memory. Tried to allocate {}. {} is allocated by tensors and {} is reserved in total by Ember's caching allocator",
                human(*requested),
                human(*allocated),
                human(*reserved)
            ),
            AllocError::Driver(m) => write!(f, "CUDA allocation failed: {m}"),
        }
    }
}

impl std::error::Error for AllocError {}

/// Bytes in PyTorch's style (`20.00 MiB`).
fn human(b: usize) -> String {
    const U: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} bytes")
    } else {
        format!("{v:.2} {}", U[i])
    }
}

/// The counters behind `torch.cuda.memory_allocated()` and friends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes in blocks currently handed out (rounded sizes, as PyTorch counts them).
    pub allocated: usize,
    /// The largest `allocated` since the start or the last [`CachingAllocator::reset_peak`].
    pub max_allocated: usize,
    /// Bytes of all segments obtained from the raw allocator and not yet returned.
    pub reserved: usize,
    /// The largest `reserved` since the start or the last reset.
    pub max_reserved: usize,
    /// Number of calls to [`RawAlloc::alloc`] that succeeded, ever: a computation that is
    /// repeated after warm-up must not increase it.
    pub driver_allocs: u64,
    /// Number of segments returned with [`RawAlloc::free`], ever.
    pub driver_frees: u64,
    /// Number of blocks currently handed out.
    pub active_blocks: usize,
}

/// A stream tag: blocks are reused only on the stream that allocated them.
pub type StreamId = u64;

/// The rounded size every request of `bytes` bytes occupies.
pub fn round_size(bytes: usize) -> usize {
    bytes.max(1).div_ceil(MIN_BLOCK) * MIN_BLOCK
}

/// The size of the segment to obtain from the raw allocator for a rounded request.
pub fn segment_size(rounded: usize) -> usize {
    if rounded <= SMALL_SIZE {
        SMALL_SEGMENT
    } else if rounded < MIN_LARGE_ALLOC {
        LARGE_SEGMENT
    } else {
        rounded.div_ceil(ROUND_LARGE) * ROUND_LARGE
    }
}

/// Whether a free block of `size` bytes should be split to serve a request of `rounded` bytes.
fn should_split(small: bool, size: usize, rounded: usize) -> bool {
    let rest = size - rounded;
    if small {
        rest >= MIN_BLOCK
    } else {
        rest > SMALL_SIZE
    }
}

#[derive(Clone, Copy, Debug)]
struct Block {
    ptr: DevPtr,
    size: usize,
    stream: StreamId,
    small: bool,
    allocated: bool,
    /// The neighbouring blocks of the same segment (block ids), for merging.
    prev: Option<usize>,
    next: Option<usize>,
    /// Start and size of the segment this block belongs to.
    segment: (DevPtr, usize),
}

/// Key of a free block in its pool: the best fit is the first key `>= (stream, rounded, 0, 0)`.
type FreeKey = (StreamId, usize, DevPtr, usize);

/// A caching allocator over a raw allocator `R`. Not thread-safe by itself: the device wraps it
/// in a mutex.
pub struct CachingAllocator<R: RawAlloc> {
    raw: R,
    blocks: Vec<Block>,
    /// Ids in `blocks` that are unused (merged away) and can be recycled.
    spare: Vec<usize>,
    free_small: BTreeSet<FreeKey>,
    free_large: BTreeSet<FreeKey>,
    /// Handed-out blocks by address.
    live: HashMap<DevPtr, usize>,
    stats: MemoryStats,
}

impl<R: RawAlloc> fmt::Debug for CachingAllocator<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingAllocator")
            .field("stats", &self.stats)
            .finish()
    }
}

impl<R: RawAlloc> CachingAllocator<R> {
    /// An empty cache in front of `raw`.
    pub fn new(raw: R) -> Self {
        CachingAllocator {
            raw,
            blocks: Vec::new(),
            spare: Vec::new(),
            free_small: BTreeSet::new(),
            free_large: BTreeSet::new(),
            live: HashMap::new(),
            stats: MemoryStats::default(),
        }
    }

    /// The raw allocator.
    pub fn raw(&self) -> &R {
        &self.raw
    }

    /// The current counters.
    pub fn stats(&self) -> MemoryStats {
        self.stats
    }

    /// Restarts the peak counters from the current values
    /// (`torch.cuda.reset_peak_memory_stats`).
    pub fn reset_peak(&mut self) {
        self.stats.max_allocated = self.stats.allocated;
        self.stats.max_reserved = self.stats.reserved;
    }

    fn pool(&mut self, small: bool) -> &mut BTreeSet<FreeKey> {
        if small {
            &mut self.free_small
        } else {
            &mut self.free_large
        }
    }

    fn key(&self, id: usize) -> FreeKey {
        let b = &self.blocks[id];
        (b.stream, b.size, b.ptr, id)
    }

    fn new_block(&mut self, b: Block) -> usize {
        match self.spare.pop() {
            Some(id) => {
                self.blocks[id] = b;
                id
            }
            None => {
                self.blocks.push(b);
                self.blocks.len() - 1
            }
        }
    }

    /// Allocates at least `bytes` bytes for work on `stream`; returns the address and the
    /// rounded size actually reserved for the block. Never call with 0 bytes (callers represent
    /// empty buffers without memory).
    pub fn alloc(&mut self, bytes: usize, stream: StreamId) -> Result<(DevPtr, usize), AllocError> {
        let rounded = round_size(bytes);
        let small = rounded <= SMALL_SIZE;
        let id = match self.best_fit(small, rounded, stream) {
            Some(id) => id,
            None => self.new_segment(small, rounded, stream)?,
        };
        let key = self.key(id);
        self.pool(small).remove(&key);
        let size = self.blocks[id].size;
        if should_split(small, size, rounded) {
            // The tail becomes a free block of its own, right after this one.
            let b = self.blocks[id];
            let tail = self.new_block(Block {
                ptr: b.ptr + rounded as u64,
                size: size - rounded,
                allocated: false,
                prev: Some(id),
                next: b.next,
                ..b
            });
            if let Some(n) = b.next {
                self.blocks[n].prev = Some(tail);
            }
            self.blocks[id].next = Some(tail);
            self.blocks[id].size = rounded;
            let k = self.key(tail);
            self.pool(small).insert(k);
        }
        let b = &mut self.blocks[id];
        b.allocated = true;
        let (ptr, size) = (b.ptr, b.size);
        self.live.insert(ptr, id);
        self.stats.allocated += size;
        self.stats.max_allocated = self.stats.max_allocated.max(self.stats.allocated);
        self.stats.active_blocks += 1;
        Ok((ptr, size))
    }

    /// The smallest free block of the pool on `stream` holding `rounded` bytes.
    fn best_fit(&self, small: bool, rounded: usize, stream: StreamId) -> Option<usize> {
        let pool = if small {
            &self.free_small
        } else {
            &self.free_large
        };
        pool.range((stream, rounded, 0, 0)..)
            .next()
            .filter(|k| k.0 == stream)
            .map(|k| k.3)
    }

    /// Obtains a segment from the raw allocator (emptying the cache and retrying once when it
    /// is out of memory) and registers it as one free block.
    fn new_segment(
        &mut self,
        small: bool,
        rounded: usize,
        stream: StreamId,
    ) -> Result<usize, AllocError> {
        let size = segment_size(rounded);
        let ptr = match self.raw.alloc(size) {
            Ok(p) => p,
            Err(AllocError::OutOfMemory { .. }) => {
                self.empty_cache();
                self.raw.alloc(size).map_err(|e| match e {
                    AllocError::OutOfMemory { .. } => AllocError::OutOfMemory {
                        requested: rounded,
                        allocated: self.stats.allocated,
                        reserved: self.stats.reserved,
                    },
                    other => other,
                })?
            }
            Err(e) => return Err(e),
        };
        self.stats.driver_allocs += 1;
        self.stats.reserved += size;
        self.stats.max_reserved = self.stats.max_reserved.max(self.stats.reserved);
        let id = self.new_block(Block {
            ptr,
            size,
            stream,
            small,
            allocated: false,
            prev: None,
            next: None,
            segment: (ptr, size),
        });
        let k = self.key(id);
        self.pool(small).insert(k);
        Ok(id)
    }

    /// Returns a block obtained from [`CachingAllocator::alloc`] to the cache. Work already
    /// queued on the block's stream may still use it; later allocations on that stream are
    /// ordered after that work, so reuse is safe.
    ///
    /// Panics when `ptr` is not a live block (a double free is a bug in the caller).
    pub fn free(&mut self, ptr: DevPtr) {
        let id = self
            .live
            .remove(&ptr)
            .unwrap_or_else(|| panic!("CUDA caching allocator: free of unknown address {ptr:#x}"));
        let size = self.blocks[id].size;
        self.stats.allocated -= size;
        self.stats.active_blocks -= 1;
        self.blocks[id].allocated = false;
        let mut id = id;
        // Merge with a free previous neighbour, then a free next one.
        if let Some(p) = self.blocks[id].prev.filter(|&p| !self.blocks[p].allocated) {
            id = self.merge(p, id);
        }
        if let Some(n) = self.blocks[id].next.filter(|&n| !self.blocks[n].allocated) {
            id = self.merge(id, n);
        }
        let small = self.blocks[id].small;
        let k = self.key(id);
        self.pool(small).insert(k);
    }

    /// Joins free block `b` into its free predecessor `a` (removing both from the pool); returns
    /// `a`, no longer in the pool.
    fn merge(&mut self, a: usize, b: usize) -> usize {
        let small = self.blocks[a].small;
        for id in [a, b] {
            let k = self.key(id);
            self.pool(small).remove(&k);
        }
        let next = self.blocks[b].next;
        self.blocks[a].size += self.blocks[b].size;
        self.blocks[a].next = next;
        if let Some(n) = next {
            self.blocks[n].prev = Some(a);
        }
        self.spare.push(b);
        a
    }

    /// Returns every cached segment with nothing allocated in it to the raw allocator
    /// (`torch.cuda.empty_cache`). The caller must make sure no queued work still uses freed
    /// blocks (the CUDA backend synchronises the device first).
    pub fn empty_cache(&mut self) {
        for small in [true, false] {
            let pool = if small {
                &self.free_small
            } else {
                &self.free_large
            };
            let whole: Vec<FreeKey> = pool
                .iter()
                .copied()
                .filter(|&(_, size, ptr, id)| {
                    let b = &self.blocks[id];
                    b.segment == (ptr, size) && b.prev.is_none() && b.next.is_none()
                })
                .collect();
            for k in whole {
                self.pool(small).remove(&k);
                let (_, size, ptr, id) = k;
                self.raw.free(ptr, size);
                self.spare.push(id);
                self.stats.reserved -= size;
                self.stats.driver_frees += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A raw allocator handing out increasing addresses, with an optional capacity.
    #[derive(Default)]
    struct Counting {
        next: u64,
        live: HashMap<u64, usize>,
        in_use: usize,
        capacity: Option<usize>,
        allocs: usize,
        frees: usize,
    }

    impl RawAlloc for Counting {
        fn alloc(&mut self, bytes: usize) -> Result<DevPtr, AllocError> {
            if self.capacity.is_some_and(|c| self.in_use + bytes > c) {
                return Err(AllocError::OutOfMemory {
                    requested: bytes,
                    allocated: 0,
                    reserved: 0,
                });
            }
            // Leave a gap so that segments are never adjacent (blocks must not merge across).
            let p = self.next + 4096;
            self.next = p + bytes as u64;
            self.live.insert(p, bytes);
            self.in_use += bytes;
            self.allocs += 1;
            Ok(p)
        }
        fn free(&mut self, ptr: DevPtr, bytes: usize) {
            assert_eq!(self.live.remove(&ptr), Some(bytes), "bad raw free");
            self.in_use -= bytes;
            self.frees += 1;
        }
    }

    fn cache() -> CachingAllocator<Counting> {
        CachingAllocator::new(Counting::default())
    }

    #[test]
    fn size_classes() {
        assert_eq!(round_size(1), 512);
        assert_eq!(round_size(512), 512);
        assert_eq!(round_size(513), 1024);
        assert_eq!(segment_size(512), SMALL_SEGMENT);
        assert_eq!(segment_size(SMALL_SIZE), SMALL_SEGMENT);
        assert_eq!(segment_size(SMALL_SIZE + 512), LARGE_SEGMENT);
        assert_eq!(segment_size(MIN_LARGE_ALLOC - 512), LARGE_SEGMENT);
        assert_eq!(segment_size(MIN_LARGE_ALLOC), MIN_LARGE_ALLOC);
        assert_eq!(
            segment_size(MIN_LARGE_ALLOC + 1),
            MIN_LARGE_ALLOC + ROUND_LARGE
        );
    }

    #[test]
    fn small_requests_share_a_segment_and_are_reused() {
        let mut a = cache();
        let (p1, s1) = a.alloc(100, 0).unwrap();
        let (p2, s2) = a.alloc(1000, 0).unwrap();
        assert_eq!((s1, s2), (512, 1024));
        assert_eq!(p2, p1 + 512, "packed into the same 2 MiB segment");
        assert_eq!(a.stats().driver_allocs, 1);
        assert_eq!(a.stats().reserved, SMALL_SEGMENT);
        assert_eq!(a.stats().allocated, 1536);
        a.free(p1);
        let (p3, _) = a.alloc(300, 0).unwrap();
        assert_eq!(p3, p1, "the freed block is the best fit");
        assert_eq!(a.stats().driver_allocs, 1);
    }

    #[test]
    fn blocks_stay_on_their_stream() {
        let mut a = cache();
        let (p, _) = a.alloc(4096, 1).unwrap();
        a.free(p);
        let (q, _) = a.alloc(4096, 2).unwrap();
        assert_ne!(p, q);
        assert_eq!(a.stats().driver_allocs, 2, "stream 2 gets its own segment");
        let (r, _) = a.alloc(4096, 1).unwrap();
        assert_eq!(r, p);
    }

    #[test]
    fn large_pool_splits_and_merges() {
        let mut a = cache();
        let mb = 1 << 20;
        let (p1, s1) = a.alloc(3 * mb, 0).unwrap();
        assert_eq!(s1, 3 * mb);
        assert_eq!(a.stats().reserved, LARGE_SEGMENT);
        let (p2, _) = a.alloc(4 * mb, 0).unwrap();
        assert_eq!(p2, p1 + 3 * mb as u64, "split from the 20 MiB segment");
        assert_eq!(a.stats().driver_allocs, 1);
        a.free(p1);
        a.free(p2);
        // Everything merged back: a 20 MiB request fits the segment without a new allocation.
        let (p3, s3) = a.alloc(20 * mb, 0).unwrap();
        assert_eq!((p3, s3), (p1, 20 * mb));
        assert_eq!(a.stats().driver_allocs, 1);
        a.free(p3);
        // A tail of exactly 1 MiB is not worth splitting off in the large pool.
        let (p4, s4) = a.alloc(19 * mb, 0).unwrap();
        assert_eq!((p4, s4), (p1, 20 * mb));
    }

    #[test]
    fn big_requests_get_their_own_rounded_segment() {
        let mut a = cache();
        let (_, s) = a.alloc(11 << 20, 0).unwrap();
        assert_eq!(s, 12 << 20);
        assert_eq!(a.stats().reserved, 12 << 20);
    }

    #[test]
    fn empty_cache_returns_only_unused_segments() {
        let mut a = cache();
        let (p1, _) = a.alloc(100, 0).unwrap();
        let (p2, _) = a.alloc(5 << 20, 0).unwrap();
        let (p3, _) = a.alloc(30 << 20, 0).unwrap();
        a.free(p2);
        a.free(p3);
        a.empty_cache();
        assert_eq!(
            a.stats().reserved,
            SMALL_SEGMENT,
            "the small segment is still in use"
        );
        assert_eq!(a.stats().driver_frees, 2);
        assert_eq!(a.raw().frees, 2);
        a.free(p1);
        a.empty_cache();
        assert_eq!(a.stats().reserved, 0);
        assert_eq!(a.raw().in_use, 0);
    }

    #[test]
    fn out_of_memory_empties_the_cache_and_retries() {
        let mut a = CachingAllocator::new(Counting {
            capacity: Some(40 << 20),
            ..Default::default()
        });
        let (p, _) = a.alloc(30 << 20, 1).unwrap();
        a.free(p);
        // 30 MiB are cached for stream 1; 20 MiB for stream 0 do not fit next to them, but fit
        // once they are released.
        let (_, s) = a.alloc(20 << 20, 0).unwrap();
        assert_eq!(s, 20 << 20);
        assert_eq!(a.stats().driver_frees, 1);
        let err = a.alloc(30 << 20, 0).unwrap_err();
        assert!(matches!(err, AllocError::OutOfMemory { requested, .. } if requested == 30 << 20));
        assert!(err
            .to_string()
            .starts_with("CUDA out of memory. Tried to allocate 30.00 MiB"));
    }

    #[test]
    fn repeated_computation_allocates_nothing_after_warm_up() {
        let mut a = cache();
        let sizes = [64usize, 4096, 784 * 128 * 4, 3 << 20, 12 << 20, 100];
        let step = |a: &mut CachingAllocator<Counting>| {
            let ptrs: Vec<_> = sizes.iter().map(|&s| a.alloc(s, 0).unwrap().0).collect();
            // Free in a different order than allocated.
            for &p in ptrs.iter().rev().step_by(2).chain(ptrs.iter().step_by(2)) {
                a.free(p);
            }
        };
        step(&mut a);
        let warm = a.stats().driver_allocs;
        for _ in 0..50 {
            step(&mut a);
        }
        assert_eq!(a.stats().driver_allocs, warm);
        assert_eq!(a.stats().allocated, 0);
        assert_eq!(a.stats().active_blocks, 0);
        assert!(a.stats().max_allocated >= sizes.iter().map(|&s| round_size(s)).sum::<usize>());
    }

    #[test]
    #[should_panic(expected = "free of unknown address")]
    fn double_free_panics() {
        let mut a = cache();
        let (p, _) = a.alloc(10, 0).unwrap();
        a.free(p);
        a.free(p);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Random interleavings of allocations and frees: live blocks never overlap, stay inside
        /// their segments, and the counters add up; freeing everything leaves whole segments.
        #[test]
        fn invariants_hold(ops in prop::collection::vec((0usize..6, 1usize..(24 << 20), any::<bool>()), 1..120)) {
            let mut a = cache();
            let mut live: Vec<(DevPtr, usize, usize)> = Vec::new();
            for (kind, size, stream) in ops {
                if kind < 2 && !live.is_empty() {
                    let (p, _, _) = live.swap_remove(size % live.len());
                    a.free(p);
                } else {
                    // Mostly small sizes, some large.
                    let bytes = if kind == 5 { size } else { size % 70_000 + 1 };
                    let (p, s) = a.alloc(bytes, stream as u64).unwrap();
                    prop_assert!(s >= bytes && s % MIN_BLOCK == 0);
                    live.push((p, s, bytes));
                }
                let mut spans: Vec<(u64, u64)> = live.iter().map(|&(p, s, _)| (p, p + s as u64)).collect();
                spans.sort();
                for w in spans.windows(2) {
                    prop_assert!(w[0].1 <= w[1].0, "overlap {:?}", w);
                }
                let total: usize = live.iter().map(|l| l.1).sum();
                prop_assert_eq!(a.stats().allocated, total);
                prop_assert_eq!(a.stats().reserved, a.raw().in_use);
                for &(p, s, _) in &live {
                    let id = a.live[&p];
                    let (sp, ss) = a.blocks[id].segment;
                    prop_assert!(p >= sp && p + s as u64 <= sp + ss as u64);
                }
            }
            for (p, _, _) in live.drain(..) {
                a.free(p);
            }
            prop_assert_eq!(a.stats().allocated, 0);
            a.empty_cache();
            prop_assert_eq!(a.stats().reserved, 0);
            prop_assert_eq!(a.raw().in_use, 0);
        }
    }
}
