//! Seeded random numbers and creation ops (arange, linspace, eye, uniform, normal, …).
//!
//! Random values come from Philox4x32-10, a counter-based generator: block `i` of a stream is
//! `philox(counter = offset + i, key = seed)`, four 32-bit words computed from `(seed, offset + i)`
//! alone. Element `j` of an op's output always reads block `j / K` (lane `j % K`) for a per-op
//! constant `K` (see [`values_per_block`]), so any chunking across threads — and a future GPU
//! kernel — produces the same values. A [`Generator`] holds `(seed, offset)`; each op reserves the
//! blocks it reads by advancing the offset, so successive calls draw fresh numbers.

use crate::cpu::creation as cpu;
use crate::device::Device;
use crate::dtype::DType;
use crate::layout::Layout;
use crate::storage::Storage;
use std::sync::Mutex;

/// The seed of the default generator until [`manual_seed`] is called (PyTorch's default too).
pub const DEFAULT_SEED: u64 = 67280421310721;

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// The Philox4x32-10 bijection of Salmon et al. (2011): four random words from a 128-bit counter
/// and a 64-bit key.
#[inline(always)]
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

/// A range of Philox blocks reserved from a generator: block `i` is
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
    #[inline(always)]
    pub fn block(&self, i: u64) -> [u32; 4] {
        let c = self.offset.wrapping_add(i);
        philox4x32_10(
            [c as u32, (c >> 32) as u32, 0, 0],
            [self.seed as u32, (self.seed >> 32) as u32],
        )
    }

    /// Blocks `first .. first + B` at once, word-major (`out[w][i]` is word `w` of block
    /// `first + i`): the rounds run over arrays of lanes, which LLVM vectorises.
    #[inline(always)]
    pub fn blocks<const B: usize>(&self, first: u64) -> [[u32; B]; 4] {
        let base = self.offset.wrapping_add(first);
        let mut c0: [u32; B] = std::array::from_fn(|i| base.wrapping_add(i as u64) as u32);
        let mut c1: [u32; B] = std::array::from_fn(|i| (base.wrapping_add(i as u64) >> 32) as u32);
        let mut c2 = [0u32; B];
        let mut c3 = [0u32; B];
        let (mut k0, mut k1) = (self.seed as u32, (self.seed >> 32) as u32);
        for round in 0..10 {
            if round > 0 {
                k0 = k0.wrapping_add(PHILOX_W0);
                k1 = k1.wrapping_add(PHILOX_W1);
            }
            for i in 0..B {
                let p0 = PHILOX_M0 as u64 * c0[i] as u64;
                let p1 = PHILOX_M1 as u64 * c2[i] as u64;
                let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
                let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
                (c0[i], c1[i], c2[i], c3[i]) = (hi1 ^ c1[i] ^ k0, lo1, hi0 ^ c3[i] ^ k1, lo0);
            }
        }
        [c0, c1, c2, c3]
    }
}

/// How many output values one Philox block yields for each random op: 4 for 32-bit draws (f32
/// uniform/normal, bernoulli), 2 for 64-bit draws (f64 uniform/normal, randint, randperm).
pub fn values_per_block(op: RandomOp, dtype: DType) -> usize {
    match op {
        RandomOp::Uniform | RandomOp::Normal if dtype == DType::F32 => 4,
        RandomOp::Uniform | RandomOp::Normal => 2,
        RandomOp::Bernoulli => 4,
        RandomOp::Randint | RandomOp::Randperm => 2,
    }
}

/// The random ops, for [`values_per_block`].
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
    /// `randperm` (Fisher–Yates, one draw per swap)
    Randperm,
}

#[derive(Clone, Copy, Debug)]
struct GenState {
    seed: u64,
    offset: u64,
}

/// A seeded random stream `(seed, offset)`, like `torch.Generator`. Thread-safe: ops take
/// `&Generator` and reserve their blocks under a lock.
#[derive(Debug)]
pub struct Generator {
    state: Mutex<GenState>,
}

impl Generator {
    /// A generator seeded with `seed`, at offset 0.
    pub const fn new(seed: u64) -> Generator {
        Generator {
            state: Mutex::new(GenState { seed, offset: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GenState> {
        // A panic while holding the lock cannot leave the state inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reseeds and rewinds to offset 0 (`Generator.manual_seed`).
    pub fn manual_seed(&self, seed: u64) {
        *self.lock() = GenState { seed, offset: 0 };
    }

    /// The seed (`Generator.initial_seed`).
    pub fn initial_seed(&self) -> u64 {
        self.lock().seed
    }

    /// The counter of the next unreserved block (`Generator.get_offset`).
    pub fn offset(&self) -> u64 {
        self.lock().offset
    }

    /// Moves to block counter `offset` (`Generator.set_offset`), e.g. to replay a stream.
    pub fn set_offset(&self, offset: u64) {
        self.lock().offset = offset;
    }

    /// Reserves `blocks` consecutive blocks and returns them as a stream.
    pub fn reserve(&self, blocks: u64) -> PhiloxStream {
        let mut s = self.lock();
        let stream = PhiloxStream {
            seed: s.seed,
            offset: s.offset,
        };
        s.offset = s.offset.wrapping_add(blocks);
        stream
    }

    /// One random 64-bit value (one block reserved).
    pub fn next_u64(&self) -> u64 {
        let b = self.reserve(1).block(0);
        b[0] as u64 | (b[1] as u64) << 32
    }
}

impl Default for Generator {
    /// A generator with [`DEFAULT_SEED`].
    fn default() -> Self {
        Generator::new(DEFAULT_SEED)
    }
}

impl Clone for Generator {
    /// A generator at the same seed and offset (later draws of the two are identical).
    fn clone(&self) -> Self {
        let s = *self.lock();
        Generator {
            state: Mutex::new(s),
        }
    }
}

static DEFAULT_GENERATOR: Generator = Generator::new(DEFAULT_SEED);

/// The process-wide generator used when an op gets no explicit generator.
pub fn default_generator() -> &'static Generator {
    &DEFAULT_GENERATOR
}

/// Seeds the default generator and rewinds it (`torch.manual_seed`).
pub fn manual_seed(seed: u64) {
    DEFAULT_GENERATOR.manual_seed(seed);
}

/// The default generator's seed (`torch.initial_seed`).
pub fn initial_seed() -> u64 {
    DEFAULT_GENERATOR.initial_seed()
}

/// Reserves the blocks for `n` values at `per_block` values per block.
fn reserve(gen: Option<&Generator>, n: usize, per_block: usize) -> PhiloxStream {
    gen.unwrap_or(&DEFAULT_GENERATOR)
        .reserve(n.div_ceil(per_block) as u64)
}

fn check_float(op: &str, dtype: DType) {
    if !dtype.is_float() {
        panic!("{op}: expected a floating-point dtype, got {dtype}");
    }
}

/// Number of elements of `arange(start, end, step)` in `dtype`, with PyTorch's rules: integer
/// dtypes truncate the bounds and step to integers and count exactly, float dtypes use
/// `ceil((end - start) / step)` in f64.
pub fn arange_len(start: f64, end: f64, step: f64, dtype: DType) -> usize {
    if dtype == DType::Bool {
        panic!("arange: not implemented for dtype torch.bool");
    }
    if !start.is_finite() || !end.is_finite() {
        panic!("arange: unsupported range: {start} -> {end}");
    }
    let int = dtype == DType::I64;
    let (s, e, st) = if int {
        (start.trunc(), end.trunc(), step.trunc())
    } else {
        (start, end, step)
    };
    if st == 0.0 || st.is_nan() {
        panic!("arange: step must be nonzero");
    }
    if !((st > 0.0 && e >= s) || (st < 0.0 && e <= s)) {
        panic!(
            "arange: upper bound and larger bound inconsistent with step sign (start={start}, end={end}, step={step})"
        );
    }
    if int {
        let (s, e, st) = (s as i64 as i128, e as i64 as i128, st as i64 as i128);
        let sgn = st.signum();
        // Integer division of non-negative quotients equals ceil((e - s) / st).
        ((e - s + st - sgn) / st) as usize
    } else {
        let n = ((e - s) / st).ceil();
        if !(0.0..=i64::MAX as f64).contains(&n) {
            panic!("arange: invalid size {n}, possible overflow?");
        }
        n as usize
    }
}

impl Storage {
    /// `n` values drawn uniformly from `[low, high)` (`torch.rand`, `uniform_`); f32 values use 24
    /// random bits and f64 values 53, so they never reach `high`.
    pub fn uniform(
        n: usize,
        low: f64,
        high: f64,
        dtype: DType,
        device: Device,
        gen: Option<&Generator>,
    ) -> Storage {
        check_float("uniform", dtype);
        if low > high || low.is_nan() || high.is_nan() {
            panic!(
                "uniform_ expects to return a [from, to) range, but found from={low} > to={high}"
            );
        }
        if !(high - low).is_finite() || (dtype == DType::F32 && high - low > f32::MAX as f64) {
            panic!(
                "uniform_ expects to-from <= std::numeric_limits<{}>::max(), but found to={high} and from={low} which result in to-from to exceed the limit",
                if dtype == DType::F32 { "float" } else { "double" }
            );
        }
        let stream = reserve(gen, n, values_per_block(RandomOp::Uniform, dtype));
        match device {
            Device::Cpu => Storage::Cpu(cpu::uniform(n, low, high, dtype, stream)),
            Device::Cuda(_) => cuda_unavailable(),
        }
    }

    /// `n` values drawn from `N(mean, std²)` by Box–Muller (`torch.randn`, `normal_`).
    pub fn normal(
        n: usize,
        mean: f64,
        std: f64,
        dtype: DType,
        device: Device,
        gen: Option<&Generator>,
    ) -> Storage {
        check_float("normal", dtype);
        if std.is_nan() || std < 0.0 {
            panic!("normal expects std >= 0.0, but found std {std}");
        }
        let stream = reserve(gen, n, values_per_block(RandomOp::Normal, dtype));
        match device {
            Device::Cpu => Storage::Cpu(cpu::normal(n, mean, std, dtype, stream)),
            Device::Cuda(_) => cuda_unavailable(),
        }
    }

    /// 0/1 draws with per-element probabilities `probs` (float, any layout), as a new contiguous
    /// storage of `probs`' dtype (`torch.bernoulli`).
    pub fn bernoulli(probs: &Storage, layout: &Layout, gen: Option<&Generator>) -> Storage {
        check_float("bernoulli", probs.dtype());
        let stream = reserve(
            gen,
            layout.numel(),
            values_per_block(RandomOp::Bernoulli, probs.dtype()),
        );
        match probs {
            Storage::Cpu(p) => Storage::Cpu(cpu::bernoulli(p, layout, stream)),
        }
    }

    /// `n` draws that are 1 with probability `p` and 0 otherwise, in `dtype` (`bernoulli_(p)`,
    /// dropout masks).
    pub fn bernoulli_scalar(
        n: usize,
        p: f64,
        dtype: DType,
        device: Device,
        gen: Option<&Generator>,
    ) -> Storage {
        if !(0.0..=1.0).contains(&p) {
            panic!("bernoulli_ expects p to be in [0, 1], but got p={p}");
        }
        let stream = reserve(gen, n, values_per_block(RandomOp::Bernoulli, dtype));
        match device {
            Device::Cpu => Storage::Cpu(cpu::bernoulli_scalar(n, p, dtype, stream)),
            Device::Cuda(_) => cuda_unavailable(),
        }
    }

    /// `n` int64 values drawn uniformly from `[low, high)` (`torch.randint`).
    pub fn randint(
        n: usize,
        low: i64,
        high: i64,
        device: Device,
        gen: Option<&Generator>,
    ) -> Storage {
        if low >= high {
            panic!("random_ expects 'from' to be less than 'to', but got from={low} >= to={high}");
        }
        let stream = reserve(gen, n, values_per_block(RandomOp::Randint, DType::I64));
        match device {
            Device::Cpu => Storage::Cpu(cpu::randint(n, low, high, stream)),
            Device::Cuda(_) => cuda_unavailable(),
        }
    }

    /// A random permutation of `0..n` as int64 (`torch.randperm`).
    pub fn randperm(n: usize, device: Device, gen: Option<&Generator>) -> Storage {
        let stream = reserve(
            gen,
            n.saturating_sub(1),
            values_per_block(RandomOp::Randperm, DType::I64),
        );
        match device {
            Device::Cpu => Storage::Cpu(cpu::randperm(n, stream)),
            Device::Cuda(_) => cuda_unavailable(),
        }
    }

    /// `start, start + step, …` up to but excluding `end` (`torch.arange`); the length is
    /// [`arange_len`], values are `start + i * step` computed in f64 (exact integers for int64).
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType, device: Device) -> Storage {
        let n = arange_len(start, end, step, dtype);
        match device {
            Device::Cpu => Storage::Cpu(cpu::arange(n, start, step, dtype)),
            Device::Cuda(_) => cuda_unavailable(),
        }
    }

    /// `steps` evenly spaced values from `start` to `end` inclusive (`torch.linspace`): the first
    /// half counts up from `start`, the second half down from `end`, so both ends are exact.
    pub fn linspace(start: f64, end: f64, steps: usize, dtype: DType, device: Device) -> Storage {
        if dtype == DType::Bool {
            panic!("linspace: not implemented for dtype torch.bool");
        }
        match device {
            Device::Cpu => Storage::Cpu(cpu::linspace(start, end, steps, dtype)),
            Device::Cuda(_) => cuda_unavailable(),
        }
    }

    /// An `n × m` matrix with ones on the diagonal and zeros elsewhere (`torch.eye`), row-major.
    pub fn eye(n: usize, m: usize, dtype: DType, device: Device) -> Storage {
        match device {
            Device::Cpu => Storage::Cpu(cpu::eye(n, m, dtype)),
            Device::Cuda(_) => cuda_unavailable(),
        }
    }
}

fn cuda_unavailable() -> ! {
    panic!("CUDA storage is not available in this build of Ember (the CUDA backend is not implemented yet)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CPU: Device = Device::Cpu;

    fn f32s(s: &Storage) -> Vec<f32> {
        s.as_cpu().unwrap().as_slice::<f32>().to_vec()
    }
    fn f64s(s: &Storage) -> Vec<f64> {
        s.as_cpu().unwrap().as_slice::<f64>().to_vec()
    }
    fn i64s(s: &Storage) -> Vec<i64> {
        s.as_cpu().unwrap().as_slice::<i64>().to_vec()
    }

    fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(f)
    }

    fn mean_std(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
        (m, var.sqrt())
    }

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
    fn same_seed_same_values_and_calls_advance() {
        let (g1, g2) = (Generator::new(42), Generator::new(42));
        let a = f32s(&Storage::uniform(
            1000,
            0.0,
            1.0,
            DType::F32,
            CPU,
            Some(&g1),
        ));
        let b = f32s(&Storage::uniform(
            1000,
            0.0,
            1.0,
            DType::F32,
            CPU,
            Some(&g2),
        ));
        assert_eq!(a, b);
        assert_eq!(g1.offset(), 250);
        let c = f32s(&Storage::uniform(
            1000,
            0.0,
            1.0,
            DType::F32,
            CPU,
            Some(&g1),
        ));
        assert_ne!(a, c);
        let d = f32s(&Storage::uniform(
            1000,
            0.0,
            1.0,
            DType::F32,
            CPU,
            Some(&Generator::new(43)),
        ));
        assert_ne!(a, d);
        // Reseeding rewinds; a clone continues identically.
        g1.manual_seed(42);
        assert_eq!(g1.initial_seed(), 42);
        let e = f32s(&Storage::uniform(
            1000,
            0.0,
            1.0,
            DType::F32,
            CPU,
            Some(&g1),
        ));
        assert_eq!(a, e);
        let g3 = g1.clone();
        assert_eq!(
            i64s(&Storage::randperm(50, CPU, Some(&g1))),
            i64s(&Storage::randperm(50, CPU, Some(&g3)))
        );
        assert_ne!(g1.next_u64(), g1.next_u64());
    }

    #[test]
    fn default_generator_seeding() {
        // The only test touching the process-wide generator (tests run concurrently).
        manual_seed(7);
        assert_eq!(initial_seed(), 7);
        let a = f64s(&Storage::normal(100, 0.0, 1.0, DType::F64, CPU, None));
        let b = f64s(&Storage::normal(100, 0.0, 1.0, DType::F64, CPU, None));
        assert_ne!(a, b);
        manual_seed(7);
        let c = f64s(&Storage::normal(100, 0.0, 1.0, DType::F64, CPU, None));
        assert_eq!(a, c);
        assert_eq!(default_generator().offset(), 50);
        assert_eq!(Generator::default().initial_seed(), DEFAULT_SEED);
    }

    /// Every random op, as raw bits, for comparing runs.
    fn draw_all(n: usize, seed: u64) -> Vec<Vec<u64>> {
        let g = Generator::new(seed);
        let probs = Storage::uniform(n, 0.0, 1.0, DType::F64, CPU, Some(&g));
        let pl = Layout::contiguous(&[n]);
        vec![
            f32s(&Storage::uniform(n, -2.0, 3.0, DType::F32, CPU, Some(&g)))
                .iter()
                .map(|x| x.to_bits() as u64)
                .collect(),
            f64s(&Storage::uniform(n, -2.0, 3.0, DType::F64, CPU, Some(&g)))
                .iter()
                .map(|x| x.to_bits())
                .collect(),
            f32s(&Storage::normal(n, 1.0, 2.0, DType::F32, CPU, Some(&g)))
                .iter()
                .map(|x| x.to_bits() as u64)
                .collect(),
            f64s(&Storage::normal(n, 1.0, 2.0, DType::F64, CPU, Some(&g)))
                .iter()
                .map(|x| x.to_bits())
                .collect(),
            f64s(&Storage::bernoulli(&probs, &pl, Some(&g)))
                .iter()
                .map(|x| x.to_bits())
                .collect(),
            f32s(&Storage::bernoulli_scalar(
                n,
                0.3,
                DType::F32,
                CPU,
                Some(&g),
            ))
            .iter()
            .map(|x| x.to_bits() as u64)
            .collect(),
            i64s(&Storage::randint(n, -5, 1000, CPU, Some(&g)))
                .iter()
                .map(|&x| x as u64)
                .collect(),
            i64s(&Storage::randperm(1000, CPU, Some(&g)))
                .iter()
                .map(|&x| x as u64)
                .collect(),
        ]
    }

    #[test]
    fn independent_of_thread_count() {
        // Large and odd so the fills split into several chunks that straddle blocks.
        let n = 200_003;
        assert!(n > 4 * crate::cpu::creation::RANDOM_GRAIN);
        let one = in_pool(1, || draw_all(n, 5));
        let two = in_pool(2, || draw_all(n, 5));
        let three = in_pool(3, || draw_all(n, 5));
        assert!(one == two, "1 vs 2 threads differ");
        assert!(one == three, "1 vs 3 threads differ");
    }

    #[test]
    fn uniform_range_and_moments() {
        let g = Generator::new(1);
        let v = f32s(&Storage::uniform(
            100_000,
            0.0,
            1.0,
            DType::F32,
            CPU,
            Some(&g),
        ));
        assert!(v.iter().all(|&x| (0.0..1.0).contains(&x)));
        let (m, s) = mean_std(&v.iter().map(|&x| x as f64).collect::<Vec<_>>());
        assert!((m - 0.5).abs() < 0.01, "mean {m}");
        assert!((s - (1.0f64 / 12.0).sqrt()).abs() < 0.01, "std {s}");
        let v = f64s(&Storage::uniform(
            100_000,
            -3.0,
            5.0,
            DType::F64,
            CPU,
            Some(&g),
        ));
        assert!(v.iter().all(|&x| (-3.0..5.0).contains(&x)));
        let (m, _) = mean_std(&v);
        assert!((m - 1.0).abs() < 0.05, "mean {m}");
        // A range one ulp wide: rounding must never produce `high`.
        let hi = 1.0f32 + f32::EPSILON;
        let v = f32s(&Storage::uniform(
            10_000,
            1.0,
            hi as f64,
            DType::F32,
            CPU,
            Some(&g),
        ));
        assert!(v.iter().all(|&x| x == 1.0));
        let v = f64s(&Storage::uniform(10, 2.0, 2.0, DType::F64, CPU, Some(&g)));
        assert_eq!(v, vec![2.0; 10]);
    }

    #[test]
    fn normal_moments() {
        let g = Generator::new(2);
        for dtype in [DType::F32, DType::F64] {
            let s = Storage::normal(100_001, 0.0, 1.0, dtype, CPU, Some(&g));
            let v = s.to_vec::<f64>(&Layout::contiguous(&[100_001]));
            assert!(v.iter().all(|x| x.is_finite()));
            let (m, sd) = mean_std(&v);
            assert!(m.abs() < 0.015, "{dtype}: mean {m}");
            assert!((sd - 1.0).abs() < 0.015, "{dtype}: std {sd}");
            // Tail mass: P(|z| > 2) = 0.0455.
            let tail = v.iter().filter(|x| x.abs() > 2.0).count() as f64 / v.len() as f64;
            assert!((tail - 0.0455).abs() < 0.004, "{dtype}: tail {tail}");
            let s = Storage::normal(100_000, 3.0, 0.5, dtype, CPU, Some(&g));
            let (m, sd) = mean_std(&s.to_vec::<f64>(&Layout::contiguous(&[100_000])));
            assert!(
                (m - 3.0).abs() < 0.01 && (sd - 0.5).abs() < 0.01,
                "{m} {sd}"
            );
        }
        let z = f32s(&Storage::normal(7, 4.0, 0.0, DType::F32, CPU, Some(&g)));
        assert_eq!(z, vec![4.0; 7]);
    }

    #[test]
    fn bernoulli_rates_and_extremes() {
        let g = Generator::new(3);
        let n = 100_000;
        for dtype in DType::ALL {
            let v = Storage::bernoulli_scalar(n, 0.3, dtype, CPU, Some(&g))
                .to_vec::<f64>(&Layout::contiguous(&[n]));
            assert!(v.iter().all(|&x| x == 0.0 || x == 1.0));
            let rate = v.iter().sum::<f64>() / n as f64;
            assert!((rate - 0.3).abs() < 0.01, "{dtype}: rate {rate}");
        }
        let ones = f32s(&Storage::bernoulli_scalar(
            100,
            1.0,
            DType::F32,
            CPU,
            Some(&g),
        ));
        assert_eq!(ones, vec![1.0; 100]);
        let zeros = f32s(&Storage::bernoulli_scalar(
            100,
            0.0,
            DType::F32,
            CPU,
            Some(&g),
        ));
        assert_eq!(zeros, vec![0.0; 100]);
        let p = Storage::full(n, crate::Scalar::Float(0.75), DType::F32, CPU);
        let v = f32s(&Storage::bernoulli(&p, &Layout::contiguous(&[n]), Some(&g)));
        let rate = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        assert!((rate - 0.75).abs() < 0.01, "rate {rate}");
    }

    #[test]
    #[should_panic(expected = "bernoulli: expected all probabilities in [0, 1]")]
    fn bernoulli_bad_prob() {
        let p = Storage::full(3, crate::Scalar::Float(1.5), DType::F32, CPU);
        Storage::bernoulli(&p, &Layout::contiguous(&[3]), None);
    }

    #[test]
    #[should_panic(expected = "bernoulli: expected a floating-point dtype")]
    fn bernoulli_int_probs() {
        let p = Storage::full(3, crate::Scalar::Int(1), DType::I64, CPU);
        Storage::bernoulli(&p, &Layout::contiguous(&[3]), None);
    }

    #[test]
    fn randint_range_and_coverage() {
        let g = Generator::new(4);
        let v = i64s(&Storage::randint(100_000, -3, 7, CPU, Some(&g)));
        assert!(v.iter().all(|&x| (-3..7).contains(&x)));
        let mut counts = [0usize; 10];
        for &x in &v {
            counts[(x + 3) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
        let big = i64s(&Storage::randint(1000, i64::MIN, i64::MAX, CPU, Some(&g)));
        assert!(big.iter().any(|&x| x < 0) && big.iter().any(|&x| x > 0));
        assert_eq!(i64s(&Storage::randint(5, 9, 10, CPU, Some(&g))), vec![9; 5]);
    }

    #[test]
    #[should_panic(
        expected = "random_ expects 'from' to be less than 'to', but got from=5 >= to=5"
    )]
    fn randint_empty_range() {
        Storage::randint(3, 5, 5, CPU, None);
    }

    #[test]
    fn randperm_is_a_permutation() {
        let g = Generator::new(5);
        for n in [0usize, 1, 2, 3, 10, 1000] {
            let mut v = i64s(&Storage::randperm(n, CPU, Some(&g)));
            v.sort_unstable();
            assert_eq!(v, (0..n as i64).collect::<Vec<_>>());
        }
        let a = i64s(&Storage::randperm(1000, CPU, Some(&g)));
        assert_ne!(a, (0..1000).collect::<Vec<i64>>());
        // Position 0 takes every value about equally often.
        let mut first = [0usize; 4];
        for _ in 0..4000 {
            first[i64s(&Storage::randperm(4, CPU, Some(&g)))[0] as usize] += 1;
        }
        assert!(first.iter().all(|&c| (850..1150).contains(&c)), "{first:?}");
    }

    #[test]
    fn randperm_and_randint_match_reference() {
        // Fisher–Yates with draw t from block t / 2, words 2(t % 2) and 2(t % 2) + 1.
        let g = Generator::new(11);
        let n = 100;
        let stream = PhiloxStream {
            seed: 11,
            offset: 0,
        };
        let mut want: Vec<i64> = (0..n as i64).collect();
        for t in 0..n - 1 {
            let b = stream.block((t / 2) as u64);
            let x = b[2 * (t % 2)] as u64 | (b[2 * (t % 2) + 1] as u64) << 32;
            let i = n - 1 - t;
            let j = ((x as u128 * (i as u128 + 1)) >> 64) as usize;
            want.swap(i, j);
        }
        assert_eq!(i64s(&Storage::randperm(n, CPU, Some(&g))), want);
        assert_eq!(g.offset(), 50);
        let stream = PhiloxStream {
            seed: 11,
            offset: 50,
        };
        let want: Vec<i64> = (0..77)
            .map(|k| {
                let b = stream.block(k / 2);
                let l = 2 * (k % 2) as usize;
                let x = b[l] as u64 | (b[l + 1] as u64) << 32;
                10 + ((x as u128 * 90) >> 64) as i64
            })
            .collect();
        assert_eq!(i64s(&Storage::randint(77, 10, 100, CPU, Some(&g))), want);
    }

    #[test]
    fn arange_lengths_and_values() {
        assert_eq!(arange_len(0.0, 1.0, 0.1, DType::F32), 10);
        assert_eq!(arange_len(1.0, 1.3, 0.1, DType::F32), 4); // (1.3-1)/0.1 = 3.0000000000000004
        assert_eq!(arange_len(-1.0, 1.0, 0.3, DType::F64), 7);
        assert_eq!(arange_len(5.0, 5.0, 1.0, DType::I64), 0);
        let a = f32s(&Storage::arange(0.0, 1.0, 0.1, DType::F32, CPU));
        assert_eq!(a.len(), 10);
        assert_eq!(a[0], 0.0);
        assert_eq!(a[9], (0.1f64 * 9.0) as f32);
        let a = i64s(&Storage::arange(0.0, 10.0, 3.0, DType::I64, CPU));
        assert_eq!(a, vec![0, 3, 6, 9]);
        let a = i64s(&Storage::arange(10.0, 0.0, -3.0, DType::I64, CPU));
        assert_eq!(a, vec![10, 7, 4, 1]);
        let a = i64s(&Storage::arange(0.0, 5.0, 1.0, DType::I64, CPU));
        assert_eq!(a, vec![0, 1, 2, 3, 4]);
        let a = f64s(&Storage::arange(1.0, 2.5, 0.5, DType::F64, CPU));
        assert_eq!(a, vec![1.0, 1.5, 2.0]);
        let a = Storage::arange(0.0, 4.0, 1.0, DType::U8, CPU);
        assert_eq!(a.as_cpu().unwrap().as_slice::<u8>(), &[0, 1, 2, 3]);
        // Large: exact integers and f64 values across parallel chunks.
        let n = 100_000;
        let a = i64s(&Storage::arange(-7.0, n as f64 - 7.0, 1.0, DType::I64, CPU));
        assert!(a.iter().enumerate().all(|(i, &x)| x == i as i64 - 7));
    }

    #[test]
    #[should_panic(expected = "arange: step must be nonzero")]
    fn arange_zero_step() {
        Storage::arange(0.0, 1.0, 0.0, DType::F32, CPU);
    }

    #[test]
    #[should_panic(expected = "arange: step must be nonzero")]
    fn arange_int_step_truncates_to_zero() {
        Storage::arange(0.0, 1.0, 0.5, DType::I64, CPU);
    }

    #[test]
    #[should_panic(expected = "upper bound and larger bound inconsistent with step sign")]
    fn arange_wrong_sign() {
        Storage::arange(0.0, 1.0, -1.0, DType::F32, CPU);
    }

    #[test]
    fn linspace_values() {
        assert_eq!(
            f32s(&Storage::linspace(0.0, 1.0, 5, DType::F32, CPU)),
            vec![0.0, 0.25, 0.5, 0.75, 1.0]
        );
        assert_eq!(
            f64s(&Storage::linspace(-10.0, 10.0, 5, DType::F64, CPU)),
            vec![-10.0, -5.0, 0.0, 5.0, 10.0]
        );
        assert_eq!(
            f32s(&Storage::linspace(3.0, 10.0, 1, DType::F32, CPU)),
            vec![3.0]
        );
        assert!(Storage::linspace(3.0, 10.0, 0, DType::F32, CPU).is_empty());
        assert_eq!(
            i64s(&Storage::linspace(0.0, 10.0, 4, DType::I64, CPU)),
            vec![0, 3, 6, 10]
        );
        // Both endpoints exact, values monotone, even for awkward steps.
        for steps in [2usize, 3, 7, 100, 100_001] {
            let v = f32s(&Storage::linspace(0.1, 0.3, steps, DType::F32, CPU));
            assert_eq!(v[0], 0.1f32);
            assert_eq!(v[steps - 1], 0.3f32);
            assert!(v.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn eye_matrices() {
        assert_eq!(
            f32s(&Storage::eye(2, 3, DType::F32, CPU)),
            vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        );
        assert_eq!(
            i64s(&Storage::eye(3, 2, DType::I64, CPU)),
            vec![1, 0, 0, 1, 0, 0]
        );
        let b = Storage::eye(2, 2, DType::Bool, CPU);
        assert_eq!(
            b.as_cpu().unwrap().as_slice::<bool>(),
            &[true, false, false, true]
        );
        assert!(Storage::eye(0, 3, DType::F32, CPU).is_empty());
    }

    /// A random layout over a storage of `extent` elements: contiguous, transposed, sliced with a
    /// step, or expanded.
    fn layouts() -> impl Strategy<Value = Layout> {
        (
            prop::collection::vec(1usize..5, 1..4),
            0usize..4,
            any::<bool>(),
        )
            .prop_map(|(shape, kind, flag)| {
                let base = Layout::contiguous(&shape);
                let last = shape.len() - 1;
                match kind {
                    0 => base,
                    1 => base.transpose(0, last),
                    2 => {
                        let mut big = shape.clone();
                        big[0] = shape[0] * 2 + usize::from(flag);
                        Layout::contiguous(&big).slice(0, usize::from(flag), big[0], 2)
                    }
                    _ => {
                        let mut one = shape.clone();
                        one[last] = 1;
                        Layout::contiguous(&one).expand(&shape)
                    }
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// bernoulli on any layout equals the naive reference: element `j` (row-major) compares
        /// lane `j % 4` of block `j / 4` with the probability at its storage position.
        #[test]
        fn bernoulli_matches_reference(layout in layouts(), seed in any::<u64>(), f64_probs in any::<bool>()) {
            let extent = layout.storage_extent();
            let g = Generator::new(seed);
            let dtype = if f64_probs { DType::F64 } else { DType::F32 };
            let probs = Storage::uniform(extent, 0.0, 1.0, dtype, CPU, Some(&g));
            let stream = PhiloxStream { seed, offset: g.offset() };
            let got = Storage::bernoulli(&probs, &layout, Some(&g));
            prop_assert_eq!(got.dtype(), dtype);
            let p = probs.to_vec::<f64>(&Layout::contiguous(&[extent]));
            let want: Vec<f64> = layout
                .positions()
                .enumerate()
                .map(|(j, pos)| {
                    let x = stream.block((j / 4) as u64)[j % 4] as u64;
                    f64::from(u8::from(x < (p[pos] * 4294967296.0) as u64))
                })
                .collect();
            prop_assert_eq!(got.to_vec::<f64>(&Layout::contiguous(layout.shape())), want);
        }

        /// uniform equals the sequential reference built from the stream, and a longer draw from
        /// the same state extends a shorter one (prefix property: values depend only on index).
        #[test]
        fn uniform_matches_reference(n in 0usize..40_000, seed in any::<u64>(), skip in 0u64..5) {
            let g = Generator::new(seed);
            g.set_offset(skip);
            let got = f32s(&Storage::uniform(n, -1.0, 1.0, DType::F32, CPU, Some(&g)));
            prop_assert_eq!(g.offset(), skip + n.div_ceil(4) as u64);
            let stream = PhiloxStream { seed, offset: skip };
            for (j, &v) in got.iter().enumerate() {
                let x = stream.block((j / 4) as u64)[j % 4];
                let want = ((x >> 8) as f32 / 16777216.0) * 2.0 - 1.0;
                prop_assert_eq!(v, want);
            }
            g.set_offset(skip);
            let longer = f32s(&Storage::uniform(n + 9, -1.0, 1.0, DType::F32, CPU, Some(&g)));
            prop_assert_eq!(&longer[..n], &got[..]);
        }

        /// arange length follows ceil((end - start) / step) and values follow start + i * step.
        #[test]
        fn arange_matches_formula(start in -50i32..50, len in 0i32..60, step in 1i32..7, neg in any::<bool>()) {
            let (start, step) = (start as f64 / 4.0, if neg { -(step as f64) / 8.0 } else { step as f64 / 8.0 });
            let end = start + step * len as f64 * 0.9;
            let v = f64s(&Storage::arange(start, end, step, DType::F64, CPU));
            prop_assert_eq!(v.len(), ((end - start) / step).ceil() as usize);
            for (i, &x) in v.iter().enumerate() {
                prop_assert_eq!(x, start + step * i as f64);
            }
        }
    }
}
