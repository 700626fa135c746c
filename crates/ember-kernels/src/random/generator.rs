//! `torch.Generator` for the CPU: PyTorch's mt19937 engine and the normal sampler's cached
//! second value behind a lock, the process-wide default generator (`torch.manual_seed`), and
//! the byte layout of `torch.get_rng_state()`, so a state moves between Ember and PyTorch.

use super::mt19937::{Mt19937, STATE_LEN};
use super::transforms::{box_muller_f64, scale_f64, unit_f64};
use std::sync::{Mutex, MutexGuard};

/// The seed of a new `Generator::default()` and of the default generator until
/// [`manual_seed`] is called (PyTorch's `default_rng_seed_val`).
pub const DEFAULT_SEED: u64 = 67280421310721;

/// Size of a state from [`Generator::get_state`] (`torch.get_rng_state().numel()`).
pub const STATE_BYTES: usize = 5056;

/// What a random op advances: the engine and the second value of the last Box–Muller pair of
/// the sequential normal sampler (PyTorch's `CPUGeneratorImpl`). Reached through
/// [`Generator::lock`], held for the draws of one op.
#[derive(Clone, Debug)]
pub struct GeneratorState {
    engine: Mt19937,
    next_double_normal: Option<f64>,
    /// Kept only to round-trip PyTorch's state bytes (no CPU kernel caches float normals).
    next_float_normal: Option<f32>,
}

impl GeneratorState {
    const fn new(seed: u64) -> GeneratorState {
        GeneratorState {
            engine: Mt19937::new(seed),
            next_double_normal: None,
            next_float_normal: None,
        }
    }

    /// The next 32-bit word (PyTorch's `random()`).
    #[inline]
    pub fn random(&mut self) -> u32 {
        self.engine.next_u32()
    }

    /// The next 64-bit draw: two words, the first high (PyTorch's `random64()`).
    #[inline]
    pub fn random64(&mut self) -> u64 {
        self.engine.next_u64()
    }

    /// The next `out.len()` words, in order.
    pub fn fill_u32(&mut self, out: &mut [u32]) {
        self.engine.fill_u32(out)
    }

    /// The next `out.len()` 64-bit draws, in order.
    pub fn fill_u64(&mut self, out: &mut [u64]) {
        self.engine.fill_u64(out)
    }

    /// One value of `N(mean, std²)` from the sequential sampler (`at::normal_distribution<double>`,
    /// used for fewer than 16 values or a non-contiguous destination): the cached second value
    /// of the last Box–Muller pair if there is one, otherwise a new pair from two 64-bit draws
    /// whose second value is cached.
    pub fn normal_f64(&mut self, mean: f64, std: f64) -> f64 {
        let z = match self.next_double_normal.take() {
            Some(z) => z,
            None => {
                let u1 = unit_f64(self.random64());
                let u2 = unit_f64(self.random64());
                let (first, second) = box_muller_f64(u1, u2);
                self.next_double_normal = Some(second);
                first
            }
        };
        scale_f64(z, mean, std)
    }
}

/// A seeded random stream, like `torch.Generator()` on the CPU: PyTorch's mt19937 and its
/// transforms, so the same seed gives PyTorch's numbers. Pass one to the `_with` random ops, or
/// let them use the process-wide [`default_generator`]. Thread-safe: an op holds the lock while
/// it draws.
///
/// ```
/// use ember_kernels::random::Generator;
/// let g = Generator::new(42); // torch.Generator().manual_seed(42)
/// let saved = g.get_state();
/// let a = g.lock().random();
/// g.set_state(&saved);
/// assert_eq!(g.lock().random(), a);
/// assert_eq!(g.manual_seed(7).initial_seed(), 7);
/// ```
pub struct Generator {
    state: Mutex<GeneratorState>,
}

impl Generator {
    /// A generator seeded with `seed` (`torch.Generator().manual_seed(seed)`). Only the low 32
    /// bits reach the engine, as in PyTorch.
    pub const fn new(seed: u64) -> Generator {
        Generator {
            state: Mutex::new(GeneratorState::new(seed)),
        }
    }

    /// The state, locked for one op's draws.
    pub fn lock(&self) -> MutexGuard<'_, GeneratorState> {
        // A panic while holding the lock cannot leave the state half-written: every draw
        // completes or does not start.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reseeds (and forgets any cached normal), returning the generator
    /// (`Generator.manual_seed`).
    pub fn manual_seed(&self, seed: u64) -> &Generator {
        *self.lock() = GeneratorState::new(seed);
        self
    }

    /// The seed last set (`Generator.initial_seed`).
    pub fn initial_seed(&self) -> u64 {
        self.lock().engine.seed()
    }

    /// The whole state as PyTorch's bytes (`Generator.get_state()`, `torch.get_rng_state()`):
    /// [`STATE_BYTES`] bytes that [`set_state`](Generator::set_state) — here or in PyTorch —
    /// restores.
    pub fn get_state(&self) -> Vec<u8> {
        let st = self.lock();
        let (seed, left, next, words) = st.engine.parts();
        let mut b = Vec::with_capacity(STATE_BYTES);
        // The legacy POD: seed, left, seeded, next, the state as u64s, the legacy normal
        // fields (x, y, rho, valid), padding; then the float normal and its flag, padding.
        b.extend_from_slice(&seed.to_le_bytes());
        b.extend_from_slice(&(left as i32).to_le_bytes());
        b.extend_from_slice(&1i32.to_le_bytes());
        b.extend_from_slice(&(next as u64).to_le_bytes());
        for &w in words {
            b.extend_from_slice(&(w as u64).to_le_bytes());
        }
        b.extend_from_slice(&0f64.to_le_bytes());
        b.extend_from_slice(&st.next_double_normal.unwrap_or(0.0).to_le_bytes());
        b.extend_from_slice(&0f64.to_le_bytes());
        b.extend_from_slice(&(st.next_double_normal.is_some() as i32).to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&st.next_float_normal.unwrap_or(0.0).to_le_bytes());
        b.push(st.next_float_normal.is_some() as u8);
        b.resize(STATE_BYTES, 0);
        b
    }

    /// Restores a state from [`get_state`](Generator::get_state) or `torch.get_rng_state()`
    /// (`Generator.set_state`). Panics, with PyTorch's message, on a state of the wrong size or
    /// an engine position no generator can reach.
    pub fn set_state(&self, bytes: &[u8]) {
        if bytes.len() != STATE_BYTES {
            panic!(
                "Expected a CPUGeneratorImplState of size {STATE_BYTES} but found the input RNG \
                 state size to be {}",
                bytes.len()
            );
        }
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
        let i32_at = |o: usize| i32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
        let mut words = [0u32; STATE_LEN];
        for (k, w) in words.iter_mut().enumerate() {
            *w = u64_at(24 + 8 * k) as u32;
        }
        let (left, seeded, next) = (i32_at(8), i32_at(12), u64_at(16));
        let engine = (seeded != 0 && left > 0 && next <= STATE_LEN as u64)
            .then(|| Mt19937::from_parts(u64_at(0), left as u32, next as u32, words))
            .flatten()
            .unwrap_or_else(|| panic!("Invalid mt19937 state"));
        let double_at = 5016 + 8;
        let float_at = 5048;
        let state = GeneratorState {
            engine,
            next_double_normal: (i32_at(5040) != 0)
                .then(|| f64::from_le_bytes(bytes[double_at..double_at + 8].try_into().unwrap())),
            next_float_normal: (bytes[float_at + 4] != 0)
                .then(|| f32::from_le_bytes(bytes[float_at..float_at + 4].try_into().unwrap())),
        };
        *self.lock() = state;
    }
}

impl Default for Generator {
    /// A generator with [`DEFAULT_SEED`] (`torch.Generator()`).
    fn default() -> Self {
        Generator::new(DEFAULT_SEED)
    }
}

impl Clone for Generator {
    /// An independent generator in the same state: the two then draw the same values.
    fn clone(&self) -> Self {
        Generator {
            state: Mutex::new(self.lock().clone()),
        }
    }
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("initial_seed", &self.initial_seed())
            .finish_non_exhaustive()
    }
}

static DEFAULT_GENERATOR: Generator = Generator::new(DEFAULT_SEED);

/// The process-wide generator used when an op gets no explicit generator
/// (`torch.default_generator`).
pub fn default_generator() -> &'static Generator {
    &DEFAULT_GENERATOR
}

/// Seeds the default generator (`torch.manual_seed`).
pub fn manual_seed(seed: u64) {
    DEFAULT_GENERATOR.manual_seed(seed);
    super::philox::manual_seed_all(seed);
}

/// The default generator's seed (`torch.initial_seed`).
pub fn initial_seed() -> u64 {
    DEFAULT_GENERATOR.initial_seed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a, to compare a whole state with PyTorch's in one number.
    fn fnv(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    #[test]
    fn state_bytes_match_pytorch() {
        // PyTorch 2.15: `torch.manual_seed(0); torch.randn(3)` leaves left 617, next 8 and a
        // cached normal; `torch.manual_seed(7); torch.rand(700)` leaves left 549, next 76.
        // The hashes are FNV-1a of `torch.get_rng_state()`'s 5056 bytes.
        let g = Generator::new(0);
        {
            let mut st = g.lock();
            for _ in 0..3 {
                st.normal_f64(0.0, 1.0);
            }
        }
        let b = g.get_state();
        assert_eq!(b.len(), STATE_BYTES);
        assert_eq!(i32::from_le_bytes(b[8..12].try_into().unwrap()), 617);
        assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 8);
        assert_eq!(fnv(&b), 0xe261_32cc_fee7_865d);
        let g = Generator::new(7);
        let mut words = vec![0; 700];
        g.lock().fill_u32(&mut words);
        assert_eq!(fnv(&g.get_state()), 0x4bf5_7468_12a6_8df1);
    }

    #[test]
    fn set_state_restores_engine_and_cache() {
        let g = Generator::new(3);
        g.lock().normal_f64(0.0, 1.0); // leaves a cached value
        let saved = g.get_state();
        let a: Vec<f64> = (0..5).map(|_| g.lock().normal_f64(0.0, 1.0)).collect();
        let h = Generator::default();
        h.set_state(&saved);
        let b: Vec<f64> = (0..5).map(|_| h.lock().normal_f64(0.0, 1.0)).collect();
        assert_eq!(a, b);
        assert_eq!(h.initial_seed(), 3);
        assert_eq!(h.get_state(), g.get_state());
        // manual_seed forgets the cache; a clone continues identically.
        let c = g.clone();
        assert_eq!(c.lock().random64(), g.lock().random64());
        g.manual_seed(3);
        let fresh = Generator::new(3);
        assert_eq!(
            g.lock().normal_f64(0.0, 1.0),
            fresh.lock().normal_f64(0.0, 1.0)
        );
        assert_eq!(format!("{g:?}"), "Generator { initial_seed: 3, .. }");
    }

    #[test]
    #[should_panic(expected = "Expected a CPUGeneratorImplState of size 5056")]
    fn set_state_checks_size() {
        Generator::default().set_state(&[0; 10]);
    }

    #[test]
    #[should_panic(expected = "Invalid mt19937 state")]
    fn set_state_checks_engine() {
        let mut b = Generator::default().get_state();
        b[8..12].copy_from_slice(&0i32.to_le_bytes()); // left = 0
        Generator::default().set_state(&b);
    }

    #[test]
    fn default_generator_seeding() {
        // The only unit test touching the process-wide generator (tests run concurrently).
        manual_seed(7);
        assert_eq!(initial_seed(), 7);
        let a = default_generator().lock().random();
        manual_seed(7);
        assert_eq!(default_generator().lock().random(), a);
        assert_eq!(Generator::default().initial_seed(), DEFAULT_SEED);
    }
}
