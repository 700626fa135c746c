//! The 32-bit Mersenne Twister (Matsumoto and Nishimura, 1998), in the form PyTorch's CPU
//! generator uses (`at::mt19937`): seeded from the low 32 bits of the seed, with a `left`/`next`
//! pair of counters that PyTorch also writes into `torch.get_rng_state()`.

/// Words of state.
pub const STATE_LEN: usize = 624;
/// The twist's middle offset.
const SHIFT: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER: u32 = 0x8000_0000;
const LOWER: u32 = 0x7fff_ffff;

/// An mt19937 engine: 624 words of state and the position of the next word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mt19937 {
    seed: u64,
    /// Draws left before the next twist, plus one (PyTorch's `left_`: 1 means "twist first").
    left: u32,
    /// Index of the next state word to temper (PyTorch's `next_`).
    next: u32,
    state: [u32; STATE_LEN],
}

impl Mt19937 {
    /// The engine seeded with `seed` (only its low 32 bits enter the state, as in PyTorch, but
    /// [`seed`](Mt19937::seed) reports all 64).
    pub const fn new(seed: u64) -> Mt19937 {
        let mut state = [0u32; STATE_LEN];
        state[0] = seed as u32;
        let mut j = 1;
        while j < STATE_LEN {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(j as u32);
            j += 1;
        }
        Mt19937 {
            seed,
            left: 1,
            next: 0,
            state,
        }
    }

    /// The seed the engine was created with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next 32-bit word (PyTorch's `random()`).
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if self.left <= 1 {
            self.twist();
        }
        self.left -= 1;
        let y = self.state[self.next as usize];
        self.next += 1;
        temper(y)
    }

    /// Two words as one 64-bit value, the first in the high half (PyTorch's `random64()`).
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let hi = self.next_u32() as u64;
        let lo = self.next_u32() as u64;
        hi << 32 | lo
    }

    /// Fills `out` with the next `out.len()` words: the same as calling
    /// [`next_u32`](Mt19937::next_u32) for each, a run of state words at a time.
    pub fn fill_u32(&mut self, out: &mut [u32]) {
        let mut out = out;
        while !out.is_empty() {
            if self.left <= 1 {
                self.twist();
            }
            let (at, avail) = (self.next as usize, self.left as usize - 1);
            let k = avail.min(out.len());
            let (head, rest) = out.split_at_mut(k);
            for (o, &y) in head.iter_mut().zip(&self.state[at..at + k]) {
                *o = temper(y);
            }
            self.next += k as u32;
            self.left -= k as u32;
            out = rest;
        }
    }

    /// Fills `out` with the next `out.len()` 64-bit values ([`next_u64`](Mt19937::next_u64)
    /// each).
    pub fn fill_u64(&mut self, out: &mut [u64]) {
        let mut pair = [0u32; 2];
        for o in out {
            self.fill_u32(&mut pair);
            *o = (pair[0] as u64) << 32 | pair[1] as u64;
        }
    }

    /// Regenerates the 624 words and rewinds to the first, leaving 624 draws.
    fn twist(&mut self) {
        #[inline(always)]
        fn mix(u: u32, v: u32) -> u32 {
            let y = (u & UPPER) | (v & LOWER);
            (y >> 1) ^ if v & 1 != 0 { MATRIX_A } else { 0 }
        }
        let s = &mut self.state;
        // Words below N - M read words not yet regenerated; the rest read regenerated ones.
        for k in 0..STATE_LEN - SHIFT {
            s[k] = s[k + SHIFT] ^ mix(s[k], s[k + 1]);
        }
        for k in STATE_LEN - SHIFT..STATE_LEN - 1 {
            s[k] = s[k + SHIFT - STATE_LEN] ^ mix(s[k], s[k + 1]);
        }
        s[STATE_LEN - 1] = s[SHIFT - 1] ^ mix(s[STATE_LEN - 1], s[0]);
        self.left = STATE_LEN as u32 + 1;
        self.next = 0;
    }

    /// The raw parts `(seed, left, next, state)`, as `torch.get_rng_state()` records them.
    pub fn parts(&self) -> (u64, u32, u32, &[u32; STATE_LEN]) {
        (self.seed, self.left, self.next, &self.state)
    }

    /// An engine from raw parts; `None` unless `1 <= left <= 624` and `next <= 624` (PyTorch's
    /// validity check).
    pub fn from_parts(seed: u64, left: u32, next: u32, state: [u32; STATE_LEN]) -> Option<Self> {
        let ok = (1..=STATE_LEN as u32).contains(&left) && next <= STATE_LEN as u32;
        // A state whose draws would run past the words (left - 1 + next > 624) is not one the
        // engine can reach; reading it would index out of bounds.
        let reachable = ok && (left - 1 + next) as usize <= STATE_LEN;
        reachable.then_some(Mt19937 {
            seed,
            left,
            next,
            state,
        })
    }
}

/// The tempering transform applied to each state word on output.
#[inline(always)]
fn temper(mut y: u32) -> u32 {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c_5680;
    y ^= (y << 15) & 0xefc6_0000;
    y ^ (y >> 18)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_outputs() {
        // The C++ standard's check: the 10000th output of std::mt19937 with its default seed.
        let mut g = Mt19937::new(5489);
        let mut last = 0;
        for _ in 0..10_000 {
            last = g.next_u32();
        }
        assert_eq!(last, 4_123_659_995);
        // Seed 0: `torch.manual_seed(0); torch.randint(0, 2**16, (3,))` is these modulo 2¹⁶.
        let mut g = Mt19937::new(0);
        let first: [u32; 3] = std::array::from_fn(|_| g.next_u32());
        assert_eq!(first, [2_357_136_044, 2_546_248_239, 3_071_714_933]);
        assert_eq!(first.map(|x| x % (1 << 16)), [2732, 43567, 42613]);
    }

    #[test]
    fn only_the_low_32_bits_of_the_seed_matter() {
        let (mut a, mut b) = (Mt19937::new(5), Mt19937::new((1 << 32) + 5));
        assert_eq!(b.seed(), (1 << 32) + 5);
        for _ in 0..1000 {
            assert_eq!(a.next_u32(), b.next_u32());
        }
    }

    #[test]
    fn bulk_fill_equals_single_draws() {
        for (skip, n) in [
            (0usize, 0usize),
            (0, 1),
            (3, 623),
            (623, 2),
            (1, 5000),
            (700, 1248),
        ] {
            let mut a = Mt19937::new(42);
            let mut b = a.clone();
            for _ in 0..skip {
                a.next_u32();
                b.next_u32();
            }
            let want: Vec<u32> = (0..n).map(|_| a.next_u32()).collect();
            let mut got = vec![0; n];
            b.fill_u32(&mut got);
            assert_eq!(got, want, "skip {skip}, n {n}");
            assert_eq!(a, b);
        }
        let mut a = Mt19937::new(9);
        let mut b = a.clone();
        let want: Vec<u64> = (0..777).map(|_| a.next_u64()).collect();
        let mut got = vec![0; 777];
        b.fill_u64(&mut got);
        assert_eq!(got, want);
    }

    #[test]
    fn parts_round_trip_and_validation() {
        let mut g = Mt19937::new(3);
        for _ in 0..100 {
            g.next_u32();
        }
        let (seed, left, next, state) = g.parts();
        assert_eq!((seed, left, next), (3, 525, 100));
        let mut h = Mt19937::from_parts(seed, left, next, *state).unwrap();
        assert_eq!(h.next_u32(), g.next_u32());
        assert!(Mt19937::from_parts(0, 0, 0, [0; STATE_LEN]).is_none());
        assert!(Mt19937::from_parts(0, 625, 0, [0; STATE_LEN]).is_none());
        assert!(Mt19937::from_parts(0, 1, 625, [0; STATE_LEN]).is_none());
        assert!(Mt19937::from_parts(0, 300, 400, [0; STATE_LEN]).is_none());
        // A fresh engine (left 1, next 0) and an exhausted one (left 1, next 624) both twist.
        let fresh = Mt19937::new(1);
        let (_, l, n, st) = fresh.parts();
        assert_eq!((l, n), (1, 0));
        let mut spent = Mt19937::from_parts(1, 1, 624, *st).unwrap();
        assert_eq!(spent.next_u32(), Mt19937::new(1).next_u32());
    }
}
