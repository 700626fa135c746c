//! Random and range creation functions (`torch.rand`, `randn`, `arange`, …) and the in-place
//! random fills (`normal_`, `uniform_`, `bernoulli_`). Random numbers are PyTorch's CPU numbers:
//! after `manual_seed(s)` the same calls give the same values as in PyTorch, on any machine and
//! any number of threads. Each function has a `_with` form taking an explicit [`Generator`].

use crate::shape_arg::IntoShape;
use crate::tensor::Tensor;
use ember_kernels::random::{default_generator, Generator};
use ember_kernels::{DType, Device, Storage};

fn dims(shape: impl IntoShape, op: &str) -> Vec<usize> {
    shape.to_dims(op).to_vec()
}

impl Tensor {
    /// Uniform samples in `[0, 1)`, float32 (`torch.rand`).
    pub fn rand(shape: impl IntoShape) -> Tensor {
        Tensor::uniform_with(shape, 0.0, 1.0, DType::F32, None)
    }

    /// Standard normal samples, float32 (`torch.randn`).
    pub fn randn(shape: impl IntoShape) -> Tensor {
        Tensor::normal_with(shape, 0.0, 1.0, DType::F32, None)
    }

    /// Uniform samples in `[low, high)` of `dtype` from `gen` (the default generator when `None`).
    pub fn uniform_with(
        shape: impl IntoShape,
        low: f64,
        high: f64,
        dtype: DType,
        gen: Option<&Generator>,
    ) -> Tensor {
        let s = dims(shape, "uniform");
        Tensor::from_storage(
            Storage::uniform(s.iter().product(), low, high, dtype, Device::Cpu, gen),
            &s,
        )
    }

    /// Uniform float32 samples in `[low, high)`.
    pub fn uniform(shape: impl IntoShape, low: f64, high: f64) -> Tensor {
        Tensor::uniform_with(shape, low, high, DType::F32, None)
    }

    /// Normal samples `N(mean, std²)` of `dtype` from `gen` (the default generator when `None`).
    pub fn normal_with(
        shape: impl IntoShape,
        mean: f64,
        std: f64,
        dtype: DType,
        gen: Option<&Generator>,
    ) -> Tensor {
        let s = dims(shape, "normal");
        Tensor::from_storage(
            Storage::normal(s.iter().product(), mean, std, dtype, true, Device::Cpu, gen),
            &s,
        )
    }

    /// Normal float32 samples `N(mean, std²)`.
    pub fn normal(shape: impl IntoShape, mean: f64, std: f64) -> Tensor {
        Tensor::normal_with(shape, mean, std, DType::F32, None)
    }

    /// 0/1 samples with the probabilities in `self` (`torch.bernoulli`), same dtype.
    pub fn bernoulli(&self) -> Tensor {
        self.bernoulli_with(None)
    }

    /// `bernoulli` drawing from `gen`.
    pub fn bernoulli_with(&self, gen: Option<&Generator>) -> Tensor {
        Tensor::from_storage(
            Storage::bernoulli(&self.storage(), self.layout(), gen),
            self.shape(),
        )
    }

    /// 0/1 samples with probability `p`, of `dtype` (used by dropout masks).
    pub fn bernoulli_scalar(
        shape: impl IntoShape,
        p: f64,
        dtype: DType,
        gen: Option<&Generator>,
    ) -> Tensor {
        let s = dims(shape, "bernoulli");
        Tensor::from_storage(
            Storage::bernoulli_scalar(s.iter().product(), p, dtype, Device::Cpu, gen),
            &s,
        )
    }

    /// Integers uniform in `[low, high)`, int64 (`torch.randint`).
    pub fn randint(low: i64, high: i64, shape: impl IntoShape) -> Tensor {
        Tensor::randint_with(low, high, shape, None)
    }

    /// `randint` drawing from `gen`.
    pub fn randint_with(
        low: i64,
        high: i64,
        shape: impl IntoShape,
        gen: Option<&Generator>,
    ) -> Tensor {
        let s = dims(shape, "randint");
        Tensor::from_storage(
            Storage::randint(s.iter().product(), low, high, Device::Cpu, gen),
            &s,
        )
    }

    /// A random permutation of `0..n`, int64 (`torch.randperm`).
    pub fn randperm(n: usize) -> Tensor {
        Tensor::randperm_with(n, None)
    }

    /// `randperm` drawing from `gen`.
    pub fn randperm_with(n: usize, gen: Option<&Generator>) -> Tensor {
        Tensor::from_storage(Storage::randperm(n, Device::Cpu, gen), &[n])
    }

    /// `0, 1, …, end-1` as int64 (`torch.arange(end)`).
    pub fn arange(end: i64) -> Tensor {
        Tensor::arange_step(0.0, end as f64, 1.0, DType::I64)
    }

    /// `start, start+step, …` below `end` in `dtype` (`torch.arange(start, end, step)`).
    pub fn arange_step(start: f64, end: f64, step: f64, dtype: DType) -> Tensor {
        let s = Storage::arange(start, end, step, dtype, Device::Cpu);
        let n = s.len();
        Tensor::from_storage(s, &[n])
    }

    /// `steps` evenly spaced float32 values from `start` to `end` inclusive (`torch.linspace`).
    pub fn linspace(start: f64, end: f64, steps: usize) -> Tensor {
        Tensor::from_storage(
            Storage::linspace(start, end, steps, DType::F32, Device::Cpu),
            &[steps],
        )
    }

    /// The `n`×`n` float32 identity matrix (`torch.eye`).
    pub fn eye(n: usize) -> Tensor {
        Tensor::from_storage(Storage::eye(n, n, DType::F32, Device::Cpu), &[n, n])
    }

    /// Uniform samples with this tensor's shape and dtype (`torch.rand_like`).
    pub fn rand_like(&self) -> Tensor {
        Tensor::uniform_with(self.shape(), 0.0, 1.0, self.dtype().to_float(), None)
    }

    /// Normal samples with this tensor's shape and dtype (`torch.randn_like`).
    pub fn randn_like(&self) -> Tensor {
        Tensor::normal_with(self.shape(), 0.0, 1.0, self.dtype().to_float(), None)
    }

    /// Fills the tensor in place with samples of `N(mean, std²)` (`Tensor.normal_`).
    pub fn normal_(&self, mean: f64, std: f64) -> &Tensor {
        self.normal_with_(mean, std, None)
    }

    /// [`normal_`](Tensor::normal_) drawing from `gen` (the default generator when `None`).
    pub fn normal_with_(&self, mean: f64, std: f64, gen: Option<&Generator>) -> &Tensor {
        let (n, dtype, contiguous) = (self.numel(), self.dtype(), self.is_contiguous());
        self.overwrite_random_("normal_", "NormalBackward0", || {
            Storage::normal(n, mean, std, dtype, contiguous, self.device(), gen)
        })
    }

    /// Fills the tensor in place with samples uniform in `[from, to)` (`Tensor.uniform_`).
    pub fn uniform_(&self, from: f64, to: f64) -> &Tensor {
        self.uniform_with_(from, to, None)
    }

    /// [`uniform_`](Tensor::uniform_) drawing from `gen` (the default generator when `None`).
    pub fn uniform_with_(&self, from: f64, to: f64, gen: Option<&Generator>) -> &Tensor {
        let (n, dtype) = (self.numel(), self.dtype());
        self.overwrite_random_("uniform_", "UniformBackward0", || {
            Storage::uniform(n, from, to, dtype, self.device(), gen)
        })
    }

    /// Fills the tensor in place with 1 (probability `p`) or 0 (`Tensor.bernoulli_(p)`).
    pub fn bernoulli_(&self, p: f64) -> &Tensor {
        self.bernoulli_with_(p, None)
    }

    /// [`bernoulli_`](Tensor::bernoulli_) drawing from `gen` (the default generator when `None`).
    pub fn bernoulli_with_(&self, p: f64, gen: Option<&Generator>) -> &Tensor {
        let (n, dtype) = (self.numel(), self.dtype());
        self.overwrite_random_("bernoulli_", "BernoulliBackward0", || {
            Storage::bernoulli_scalar(n, p, dtype, self.device(), gen)
        })
    }
}

/// The default generator's state as PyTorch's bytes, a uint8 tensor (`torch.get_rng_state()`):
/// `set_rng_state` restores it, here or in PyTorch.
pub fn get_rng_state() -> Tensor {
    let bytes = default_generator().get_state();
    let n = bytes.len();
    Tensor::from_vec(bytes, [n])
}

/// Restores the default generator from a state of [`get_rng_state`] or PyTorch's
/// (`torch.set_rng_state`); panics on a tensor that is not a valid uint8 state.
pub fn set_rng_state(state: &Tensor) {
    if state.dtype() != DType::U8 {
        panic!(
            "set_rng_state: expected a torch.uint8 tensor, got {}",
            state.dtype().name()
        );
    }
    default_generator().set_state(&state.to_vec::<u8>());
}
