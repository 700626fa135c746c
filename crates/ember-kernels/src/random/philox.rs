//! Philox4x32-10, the counter-based generator of CUDA tensors (as PyTorch's CUDA generator):
//! each value depends only on `(seed, offset, index)`, so a seed gives the same numbers on every
//! GPU, run and launch configuration. The host side reserves ranges of blocks; the kernels
//! (`cuda/kernels/random.cu`) compute the same blocks.

use crate::dtype::DType;
use std::sync::{Mutex, MutexGuard};

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// The Philox4x32-10 bijection of Salmon et al. (2011): four random words from a 128-bit counter
/// and a 64-bit key.
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = ctr;
    let [mut k0, mut k1] = key;
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(PHILOX_W0);
            k1 = k1.wrapping_add(PHILOX_W1);
        }
        let p0 = PHILOX_M0 as u64 * c0 as u64;
        let p1 = PHILOX_M1 as u64 * c2 as u64;
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);
    }
    [c0, c1, c2, c3]
}

/// A range of Philox blocks reserved from a device generator: block `i` is
/// `philox4x32_10([lo(offset+i), hi(offset+i), 0, 0], [lo(seed), hi(seed)])`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhiloxStream {
    /// The generator's seed (the Philox key).
    pub seed: u64,
    /// The counter of the stream's first block.
    pub offset: u64,
}

impl PhiloxStream {
    /// The four random words of block `i` of this stream.
    pub fn block(&self, i: u64) -> [u32; 4] {
        let c = self.offset.wrapping_add(i);
        philox4x32_10(
            [c as u32, (c >> 32) as u32, 0, 0],
            [self.seed as u32, (self.seed >> 32) as u32],
        )
    }
}

/// The random ops of a device generator, for [`values_per_block`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomOp {
    /// `uniform_` / `rand`
    Uniform,
    /// `normal_` / `randn`
    Normal,
    /// `bernoulli`
    Bernoulli,
    /// `randint`
    Randint,
    /// `randperm` (Fisher–Yates, one 64-bit draw per swap)
    Randperm,
}

/// How many values one Philox block yields: 4 for 32-bit draws (f32 uniform/normal, bernoulli),
/// 2 for 64-bit draws (f64 uniform/normal, randint, randperm). The kernels use the same rule.
pub fn values_per_block(op: RandomOp, dtype: DType) -> usize {
    match op {
        RandomOp::Uniform | RandomOp::Normal if dtype == DType::F32 => 4,
        RandomOp::Uniform | RandomOp::Normal => 2,
        RandomOp::Bernoulli => 4,
        RandomOp::Randint | RandomOp::Randperm => 2,
    }
}

/// Seed and next unreserved block of each CUDA device's default generator.
static DEVICE_GENERATORS: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// The device generators' table; a panic elsewhere never leaves it half-written, so a poisoned
/// lock is taken over.
fn lock() -> MutexGuard<'static, Vec<(u64, u64)>> {
    DEVICE_GENERATORS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reserves the blocks for `n` values of `op` from device `ordinal`'s default generator.
pub fn reserve(ordinal: usize, n: usize, op: RandomOp, dtype: DType) -> PhiloxStream {
    let blocks = n.div_ceil(values_per_block(op, dtype)) as u64;
    let mut gens = lock();
    if gens.len() <= ordinal {
        let seed = super::initial_seed();
        gens.resize(ordinal + 1, (seed, 0));
    }
    let (seed, offset) = gens[ordinal];
    gens[ordinal].1 = offset.wrapping_add(blocks);
    PhiloxStream { seed, offset }
}

/// Reseeds every device generator and rewinds it (part of `manual_seed`, as `torch.manual_seed`
/// seeds the CUDA generators too).
pub fn manual_seed_all(seed: u64) {
    let mut gens = lock();
    for g in gens.iter_mut() {
        *g = (seed, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_known_answers() {
        // Random123's kat_vectors for philox4x32_10.
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn reservations_advance_and_reseed_rewinds() {
        // A high ordinal no other test uses, so parallel tests do not interleave reservations.
        let ord = 57;
        let a = reserve(ord, 10, RandomOp::Uniform, DType::F32);
        let b = reserve(ord, 10, RandomOp::Uniform, DType::F64);
        assert_eq!(b.offset, a.offset + 3);
        let c = reserve(ord, 1, RandomOp::Randint, DType::I64);
        assert_eq!(c.offset, b.offset + 5);
        assert_eq!(a.block(3), b.block(0));
    }
}
