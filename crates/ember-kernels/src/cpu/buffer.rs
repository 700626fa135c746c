//! Host buffers with reuse of large allocations.
//!
//! A fresh 64 MiB `Vec` is `mmap`ed by the allocator and every page faults on first write, which
//! halves the speed of a large elementwise op that returns a new tensor. Large buffers are
//! therefore returned to a small per-type pool on drop and handed out again by `uninit`.

use crate::dtype::Element;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Buffers smaller than this go straight back to the allocator (which already reuses them).
const POOL_MIN_BYTES: usize = 256 << 10;
/// The pool never keeps more than this many bytes alive.
const POOL_MAX_BYTES: usize = 256 << 20;

/// A per-element-type free list of large buffers.
pub struct Pool<T> {
    free: Mutex<(Vec<Vec<T>>, usize)>,
}

impl<T> Pool<T> {
    /// An empty pool.
    pub const fn new() -> Self {
        Pool {
            free: Mutex::new((Vec::new(), 0)),
        }
    }
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Self::new()
    }
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
    ($($t:ty => $poison:expr),*) => {$(
        impl PoolElement for $t {
            fn pool() -> &'static Pool<Self> {
                static POOL: Pool<$t> = Pool::new();
                &POOL
            }
            const POISON: Self = $poison;
        }
    )*};
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

/// An owned host buffer of elements; large ones are recycled through [`Pool`] when dropped.
pub struct Buffer<T: PoolElement> {
    vec: Vec<T>,
}

impl<T: PoolElement> Buffer<T> {
    /// Wraps an existing vector.
    pub fn from_vec(vec: Vec<T>) -> Self {
        Buffer { vec }
    }

    /// A buffer of `n` elements whose contents are unspecified (old values or zeros; in debug
    /// builds always [`PoolElement::POISON`]): callers must write every element before reading it.
    /// Reuses a pooled allocation when one fits.
    pub fn uninit(n: usize) -> Self {
        let mut b = Self::uninit_any(n);
        if cfg!(debug_assertions) {
            b.vec.fill(T::POISON);
        }
        b
    }

    fn uninit_any(n: usize) -> Self {
        if bytes::<T>(n) >= POOL_MIN_BYTES {
            let mut guard = T::pool().free.lock().unwrap();
            let (free, total) = &mut *guard;
            if let Some(i) = free
                .iter()
                .position(|v| v.capacity() >= n && v.capacity() < 2 * n)
            {
                let mut v = free.swap_remove(i);
                *total -= bytes::<T>(v.capacity());
                drop(guard);
                if v.len() < n {
                    v.resize(n, T::default());
                }
                v.truncate(n);
                return Buffer { vec: v };
            }
        }
        // Zero-filled allocations come from calloc, whose pages are untouched until written.
        Buffer {
            vec: vec![T::default(); n],
        }
    }

    /// A buffer of `n` copies of `value`.
    pub fn filled(n: usize, value: T) -> Self {
        let mut b = Self::uninit(n);
        b.vec.fill(value);
        b
    }

    /// Takes the vector out (it is not returned to the pool).
    pub fn into_vec(mut self) -> Vec<T> {
        std::mem::take(&mut self.vec)
    }
}

impl<T: PoolElement> Drop for Buffer<T> {
    fn drop(&mut self) {
        let cap = bytes::<T>(self.vec.capacity());
        if cap < POOL_MIN_BYTES {
            return;
        }
        let v = std::mem::take(&mut self.vec);
        if let Ok(mut guard) = T::pool().free.lock() {
            let (free, total) = &mut *guard;
            // Evict the oldest buffers to stay under the cap.
            while *total + cap > POOL_MAX_BYTES && !free.is_empty() {
                let old = free.remove(0);
                *total -= bytes::<T>(old.capacity());
            }
            if cap <= POOL_MAX_BYTES {
                *total += cap;
                free.push(v);
            }
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
