//! Random and creation ops on `Storage` (`rand`, `randn`, `randint`, `randperm`, `bernoulli`,
//! `arange`, `linspace`, `eye`), dispatched by device.
//!
//! Random values are PyTorch's CPU numbers: the [`Generator`] is PyTorch's mt19937 stream
//! ([`mt19937`]) and each op turns its words into values with PyTorch's transforms
//! ([`transforms`]), so `manual_seed(s)` followed by the same calls gives what PyTorch gives.

pub mod generator;
pub mod mt19937;
pub mod philox;
pub mod transforms;

pub use generator::{
    default_generator, initial_seed, manual_seed, Generator, GeneratorState, DEFAULT_SEED,
};
pub use philox::PhiloxStream;
#[cfg(feature = "cuda")]
use philox::RandomOp;

use crate::cpu::creation as cpu;
use crate::cpu::random as cpu_random;
#[cfg(feature = "cuda")]
use crate::cuda::CudaStorage;
use crate::device::Device;
use crate::dtype::DType;
use crate::layout::Layout;
use crate::storage::{cuda_arm, Storage};

/// The generator an op draws from: the given one, else the default.
fn pick(gen: Option<&Generator>) -> &Generator {
    gen.unwrap_or(default_generator())
}

/// The Philox blocks for `n` values of `op` on CUDA device `ordinal`, from its default
/// generator. A `Generator` is PyTorch's CPU generator: as PyTorch, it cannot drive a CUDA op.
#[cfg(feature = "cuda")]
fn device_stream(
    gen: Option<&Generator>,
    ordinal: usize,
    n: usize,
    op: RandomOp,
    dtype: DType,
) -> PhiloxStream {
    if gen.is_some() {
        panic!("Expected a 'cuda' device type for generator but found 'cpu'");
    }
    philox::reserve(ordinal, n, op, dtype)
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
    /// `n` values drawn uniformly from `[low, high)` (`torch.rand`, `uniform_`), one generator
    /// word per float32 value and two per float64 value.
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
        match device {
            Device::Cpu => Storage::Cpu(cpu_random::uniform(n, low, high, dtype, pick(gen))),
            Device::Cuda(i) => cuda_arm!(i => {
                let st = device_stream(gen, i, n, RandomOp::Uniform, dtype);
                CudaStorage::uniform(n, low, high, dtype, st, i)
            }),
        }
    }

    /// `n` values drawn from `N(mean, std²)` by Box–Muller (`torch.randn`, `normal_`).
    /// `contiguous` says whether they fill a contiguous tensor: PyTorch draws 16 or more values
    /// for one by its vectorised path and otherwise one pair at a time, which uses the stream
    /// differently, so a non-contiguous `normal_` passes `false` (and wants the values in memory
    /// order).
    pub fn normal(
        n: usize,
        mean: f64,
        std: f64,
        dtype: DType,
        contiguous: bool,
        device: Device,
        gen: Option<&Generator>,
    ) -> Storage {
        check_float("normal", dtype);
        if std.is_nan() || std < 0.0 {
            panic!("normal expects std >= 0.0, but found std {std}");
        }
        match device {
            Device::Cpu => Storage::Cpu(cpu_random::normal(
                n,
                mean,
                std,
                dtype,
                contiguous,
                pick(gen),
            )),
            Device::Cuda(i) => cuda_arm!(i => {
                let st = device_stream(gen, i, n, RandomOp::Normal, dtype);
                CudaStorage::normal(n, mean, std, dtype, st, i)
            }),
        }
    }

    /// 0/1 draws with per-element probabilities `probs` (float, any layout), as a new contiguous
    /// storage of `probs`' dtype (`torch.bernoulli`).
    pub fn bernoulli(probs: &Storage, layout: &Layout, gen: Option<&Generator>) -> Storage {
        check_float("bernoulli", probs.dtype());
        match probs {
            Storage::Cpu(p) => Storage::Cpu(cpu_random::bernoulli(p, layout, pick(gen))),
            #[cfg(feature = "cuda")]
            Storage::Cuda(p) => {
                let (n, d) = (layout.numel(), p.dtype());
                let st = device_stream(gen, p.ordinal(), n, RandomOp::Bernoulli, d);
                Storage::Cuda(CudaStorage::bernoulli(p, layout, st))
            }
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
        match device {
            Device::Cpu => Storage::Cpu(cpu_random::bernoulli_scalar(n, p, dtype, pick(gen))),
            Device::Cuda(i) => cuda_arm!(i => {
                let st = device_stream(gen, i, n, RandomOp::Bernoulli, dtype);
                CudaStorage::bernoulli_scalar(n, p, dtype, st, i)
            }),
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
        match device {
            Device::Cpu => Storage::Cpu(cpu_random::randint(n, low, high, pick(gen))),
            Device::Cuda(i) => cuda_arm!(i => {
                let st = device_stream(gen, i, n, RandomOp::Randint, DType::I64);
                CudaStorage::randint(n, low, high, st, i)
            }),
        }
    }

    /// A random permutation of `0..n` as int64 (`torch.randperm`).
    pub fn randperm(n: usize, device: Device, gen: Option<&Generator>) -> Storage {
        match device {
            Device::Cpu => Storage::Cpu(cpu_random::randperm(n, pick(gen))),
            Device::Cuda(i) => cuda_arm!(i => {
                let st = device_stream(gen, i, n, RandomOp::Randperm, DType::I64);
                CudaStorage::randperm(n, st, i)
            }),
        }
    }

    /// `start, start + step, …` up to but excluding `end` (`torch.arange`); the length is
    /// [`arange_len`], values are `start + i * step` computed in f64 (exact integers for int64).
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType, device: Device) -> Storage {
        let n = arange_len(start, end, step, dtype);
        match device {
            Device::Cpu => Storage::Cpu(cpu::arange(n, start, step, dtype)),
            Device::Cuda(i) => cuda_arm!(i => CudaStorage::arange(n, start, step, dtype, i)),
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
            Device::Cuda(i) => cuda_arm!(i => CudaStorage::linspace(start, end, steps, dtype, i)),
        }
    }

    /// An `n × m` matrix with ones on the diagonal and zeros elsewhere (`torch.eye`), row-major.
    pub fn eye(n: usize, m: usize, dtype: DType, device: Device) -> Storage {
        match device {
            Device::Cpu => Storage::Cpu(cpu::eye(n, m, dtype)),
            Device::Cuda(i) => cuda_arm!(i => CudaStorage::eye(n, m, dtype, i)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::transforms as tf;
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

    /// Whether `a` and `b` are at the same position of their streams.
    fn same_position(a: &Generator, b: &Generator) -> bool {
        a.get_state() == b.get_state()
    }

    #[test]
    fn pytorch_values() {
        // A few of PyTorch 2.15's numbers after `torch.manual_seed(0)` (all of `rng.json` is
        // checked by ember-nn's rng_parity test).
        let g = || Generator::new(0);
        let v = f32s(&Storage::normal(
            5,
            0.0,
            1.0,
            DType::F32,
            true,
            CPU,
            Some(&g()),
        ));
        assert_eq!(v[..3], [1.540_996_1, -0.293_428_9, -2.178_789_4]);
        let v = f32s(&Storage::normal(
            17,
            0.0,
            1.0,
            DType::F32,
            true,
            CPU,
            Some(&g()),
        ));
        assert_eq!(v[..3], [-1.125_839_8, -1.695_931_2, 0.566_650_6]);
        let v = f32s(&Storage::uniform(7, 0.0, 1.0, DType::F32, CPU, Some(&g())));
        assert_eq!(v[..3], [0.496_256_6, 0.768_221_8, 0.088_477_43]);
        assert_eq!(
            i64s(&Storage::randint(8, 0, 10, CPU, Some(&g())))[..3],
            [4, 9, 3]
        );
        assert_eq!(
            i64s(&Storage::randperm(10, CPU, Some(&g()))),
            [4, 1, 7, 5, 3, 9, 0, 8, 6, 2]
        );
    }

    #[test]
    fn same_seed_same_values_and_calls_advance() {
        let (g1, g2) = (Generator::new(42), Generator::new(42));
        let draw =
            |g: &Generator| f32s(&Storage::uniform(1000, 0.0, 1.0, DType::F32, CPU, Some(g)));
        let a = draw(&g1);
        assert_eq!(a, draw(&g2));
        assert!(same_position(&g1, &g2));
        let c = draw(&g1);
        assert_ne!(a, c);
        assert_ne!(a, draw(&Generator::new(43)));
        // Reseeding rewinds; a clone continues identically.
        g1.manual_seed(42);
        assert_eq!(g1.initial_seed(), 42);
        assert_eq!(a, draw(&g1));
        let g3 = g1.clone();
        assert_eq!(
            i64s(&Storage::randperm(50, CPU, Some(&g1))),
            i64s(&Storage::randperm(50, CPU, Some(&g3)))
        );
    }

    /// Every random op, as raw bits, for comparing runs.
    fn draw_all(n: usize, seed: u64) -> Vec<Vec<u64>> {
        let g = Generator::new(seed);
        let probs = Storage::uniform(n, 0.0, 1.0, DType::F64, CPU, Some(&g));
        let pl = Layout::contiguous(&[n]);
        let bits32 = |v: Vec<f32>| v.iter().map(|x| x.to_bits() as u64).collect::<Vec<_>>();
        let bits64 = |v: Vec<f64>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        vec![
            bits32(f32s(&Storage::uniform(
                n,
                -2.0,
                3.0,
                DType::F32,
                CPU,
                Some(&g),
            ))),
            bits64(f64s(&Storage::uniform(
                n,
                -2.0,
                3.0,
                DType::F64,
                CPU,
                Some(&g),
            ))),
            bits32(f32s(&Storage::normal(
                n,
                1.0,
                2.0,
                DType::F32,
                true,
                CPU,
                Some(&g),
            ))),
            bits64(f64s(&Storage::normal(
                n,
                1.0,
                2.0,
                DType::F64,
                true,
                CPU,
                Some(&g),
            ))),
            bits64(f64s(&Storage::bernoulli(&probs, &pl, Some(&g)))),
            bits32(f32s(&Storage::bernoulli_scalar(
                n,
                0.3,
                DType::F32,
                CPU,
                Some(&g),
            ))),
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
        // Large and odd so the transforms split into several chunks and a tail.
        let n = 200_003;
        assert!(n > 4 * crate::cpu::par::ELEMENTWISE_GRAIN.max(crate::cpu::par::NORMAL_GRAIN));
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
        // Like PyTorch, no clamp: a range one ulp wide rounds to either end.
        let hi = 1.0f32 + f32::EPSILON;
        let v = f32s(&Storage::uniform(
            10_000,
            1.0,
            hi as f64,
            DType::F32,
            CPU,
            Some(&g),
        ));
        assert!(v.iter().all(|&x| x == 1.0 || x == hi));
        let v = f64s(&Storage::uniform(10, 2.0, 2.0, DType::F64, CPU, Some(&g)));
        assert_eq!(v, vec![2.0; 10]);
    }

    #[test]
    fn normal_moments() {
        let g = Generator::new(2);
        for dtype in [DType::F32, DType::F64] {
            for contiguous in [true, false] {
                let n = 100_001;
                let s = Storage::normal(n, 0.0, 1.0, dtype, contiguous, CPU, Some(&g));
                let v = s.to_vec::<f64>(&Layout::contiguous(&[n]));
                assert!(v.iter().all(|x| x.is_finite()));
                let (m, sd) = mean_std(&v);
                assert!(m.abs() < 0.015, "{dtype}: mean {m}");
                assert!((sd - 1.0).abs() < 0.015, "{dtype}: std {sd}");
                // Tail mass: P(|z| > 2) = 0.0455.
                let tail = v.iter().filter(|x| x.abs() > 2.0).count() as f64 / n as f64;
                assert!((tail - 0.0455).abs() < 0.004, "{dtype}: tail {tail}");
            }
            let s = Storage::normal(100_000, 3.0, 0.5, dtype, true, CPU, Some(&g));
            let (m, sd) = mean_std(&s.to_vec::<f64>(&Layout::contiguous(&[100_000])));
            assert!(
                (m - 3.0).abs() < 0.01 && (sd - 0.5).abs() < 0.01,
                "{m} {sd}"
            );
        }
        let z = f32s(&Storage::normal(
            7,
            4.0,
            0.0,
            DType::F32,
            true,
            CPU,
            Some(&g),
        ));
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
        // p = 0 and p = 1 still draw (PyTorch's stream moves on).
        for p in [0.0, 1.0] {
            let h = g.clone();
            let v = f32s(&Storage::bernoulli_scalar(
                100,
                p,
                DType::F32,
                CPU,
                Some(&g),
            ));
            assert_eq!(v, vec![p as f32; 100]);
            h.lock().fill_u64(&mut [0; 100]);
            assert!(same_position(&g, &h));
        }
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
    #[should_panic(expected = "normal expects std >= 0.0, but found std -1")]
    fn normal_negative_std() {
        Storage::normal(3, 0.0, -1.0, DType::F32, true, CPU, None);
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
        // Forward swaps with 32-bit words; randint with 32-bit words below 2^28, 64-bit above.
        let g = Generator::new(11);
        let r = g.clone();
        let n = 100;
        let mut want: Vec<i64> = (0..n as i64).collect();
        {
            let mut st = r.lock();
            for i in 0..n - 1 {
                let z = st.random() as usize % (n - i);
                want.swap(i, i + z);
            }
        }
        assert_eq!(i64s(&Storage::randperm(n, CPU, Some(&g))), want);
        for (low, high) in [(10i64, 100i64), (-7, (1 << 28) - 7), (0, 1 << 40)] {
            let range = (high - low) as u64;
            let want: Vec<i64> = {
                let mut st = r.lock();
                (0..77)
                    .map(|_| {
                        let x = if range >= 1 << 28 {
                            st.random64()
                        } else {
                            st.random() as u64
                        };
                        low + (x % range) as i64
                    })
                    .collect()
            };
            assert_eq!(i64s(&Storage::randint(77, low, high, CPU, Some(&g))), want);
        }
        assert!(same_position(&g, &r));
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
        /// the `j`-th draw with the probability at its storage position, a 32-bit word against a
        /// float32 probability and a 64-bit draw against a float64 one.
        #[test]
        fn bernoulli_matches_reference(layout in layouts(), seed in any::<u64>(), f64_probs in any::<bool>()) {
            let extent = layout.storage_extent();
            let g = Generator::new(seed);
            let dtype = if f64_probs { DType::F64 } else { DType::F32 };
            let probs = Storage::uniform(extent, 0.0, 1.0, dtype, CPU, Some(&g));
            let r = g.clone();
            let got = Storage::bernoulli(&probs, &layout, Some(&g));
            prop_assert_eq!(got.dtype(), dtype);
            let p = probs.to_vec::<f64>(&Layout::contiguous(&[extent]));
            let mut st = r.lock();
            let want: Vec<f64> = layout
                .positions()
                .map(|pos| {
                    let hit = if f64_probs {
                        tf::bernoulli_f64(st.random64(), p[pos])
                    } else {
                        tf::bernoulli_f32(st.random(), p[pos] as f32)
                    };
                    f64::from(u8::from(hit))
                })
                .collect();
            drop(st);
            prop_assert_eq!(got.to_vec::<f64>(&Layout::contiguous(layout.shape())), want);
            prop_assert!(same_position(&g, &r));
        }

        /// uniform equals the sequential reference: value `j` from draw `j` of the stream.
        #[test]
        fn uniform_matches_reference(n in 0usize..40_000, seed in any::<u64>(), low in -5.0f64..5.0, width in 0.0f64..10.0) {
            let g = Generator::new(seed);
            let r = g.clone();
            let high = low + width;
            let got = f32s(&Storage::uniform(n, low, high, DType::F32, CPU, Some(&g)));
            let got64 = f64s(&Storage::uniform(n, low, high, DType::F64, CPU, Some(&g)));
            let mut st = r.lock();
            for &v in &got {
                prop_assert_eq!(v, tf::uniform_f32(st.random(), low as f32, high as f32));
            }
            for &v in &got64 {
                prop_assert_eq!(v, tf::uniform_f64(st.random64(), low, high));
            }
            drop(st);
            prop_assert!(same_position(&g, &r));
        }

        /// normal follows PyTorch's two paths: blocks of 16 from `n` uniforms plus a recomputed
        /// tail of 16 for a contiguous fill of at least 16, else the sequential sampler.
        #[test]
        fn normal_matches_reference(n in 0usize..40_000, seed in any::<u64>(), contiguous in any::<bool>(), f64_out in any::<bool>()) {
            let n = if n % 3 == 0 { n % 40 } else { n }; // many short fills too
            let g = Generator::new(seed);
            let r = g.clone();
            let dtype = if f64_out { DType::F64 } else { DType::F32 };
            let got = Storage::normal(n, 0.5, 2.0, dtype, contiguous, CPU, Some(&g))
                .to_vec::<f64>(&Layout::contiguous(&[n]));
            let mut st = r.lock();
            let want: Vec<f64> = if n < 16 || !contiguous {
                (0..n)
                    .map(|_| {
                        let z = st.normal_f64(0.5, 2.0);
                        if f64_out { z } else { z as f32 as f64 }
                    })
                    .collect()
            } else if f64_out {
                let mut u: Vec<f64> = (0..n).map(|_| tf::unit_f64(st.random64())).collect();
                let tail: Vec<f64> = if n % 16 != 0 {
                    (0..16).map(|_| tf::unit_f64(st.random64())).collect()
                } else {
                    Vec::new()
                };
                let mut out = vec![0.0; n];
                for b in 0..n / 16 {
                    let z = tf::normal16_f64(u[16 * b..16 * b + 16].try_into().unwrap(), 0.5, 2.0);
                    out[16 * b..16 * b + 16].copy_from_slice(&z);
                }
                if !tail.is_empty() {
                    u[n - 16..].copy_from_slice(&tail);
                    let z = tf::normal16_f64(u[n - 16..].try_into().unwrap(), 0.5, 2.0);
                    out[n - 16..].copy_from_slice(&z);
                }
                out
            } else {
                let mut u: Vec<f32> = (0..n).map(|_| tf::unit_f32(st.random())).collect();
                let tail: Vec<f32> = if n % 16 != 0 {
                    (0..16).map(|_| tf::unit_f32(st.random())).collect()
                } else {
                    Vec::new()
                };
                let mut out = vec![0.0; n];
                for b in 0..n / 16 {
                    let z = tf::normal16_f32(u[16 * b..16 * b + 16].try_into().unwrap(), 0.5, 2.0);
                    for (o, z) in out[16 * b..16 * b + 16].iter_mut().zip(z) {
                        *o = z as f64;
                    }
                }
                if !tail.is_empty() {
                    u[n - 16..].copy_from_slice(&tail);
                    let z = tf::normal16_f32(u[n - 16..].try_into().unwrap(), 0.5, 2.0);
                    for (o, z) in out[n - 16..].iter_mut().zip(z) {
                        *o = z as f64;
                    }
                }
                out
            };
            drop(st);
            prop_assert_eq!(got, want);
            prop_assert!(same_position(&g, &r));
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
