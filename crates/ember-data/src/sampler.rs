//! Samplers: which dataset indices an epoch visits, in which order
//! (`torch.utils.data.{SequentialSampler, RandomSampler, SubsetRandomSampler,
//! WeightedRandomSampler, DistributedSampler}`).
//!
//! A sampler draws all its randomness from the `Generator` the `DataLoader` hands it for the
//! epoch, so a seeded loader gives the same indices on any machine and any number of threads.
//! The exception is [`DistributedSampler`], whose order must agree across processes: it draws
//! from its own `(seed, epoch)`, as PyTorch's does.

use ember_autograd::{DType, Generator, Tensor};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The indices one epoch visits.
pub trait Sampler: Send + Sync {
    /// Number of indices one epoch yields for a dataset of `dataset_len` samples.
    fn num_samples(&self, dataset_len: usize) -> usize;

    /// The indices of one epoch for a dataset of `dataset_len` samples, with any randomness
    /// drawn from `gen`.
    fn indices(&self, dataset_len: usize, gen: &Generator) -> Vec<usize>;

    /// Told the epoch by [`DataLoader::set_epoch`](crate::DataLoader::set_epoch); samplers
    /// with an epoch of their own ([`DistributedSampler`]) follow it, the others ignore it.
    fn set_epoch(&self, _epoch: u64) {}
}

fn to_usize(t: Tensor) -> Vec<usize> {
    t.to_vec::<i64>().into_iter().map(|i| i as usize).collect()
}

fn uniforms(n: usize, gen: &Generator) -> Vec<f64> {
    Tensor::uniform_with([n], 0.0, 1.0, DType::F64, Some(gen)).to_vec::<f64>()
}

/// `0, 1, …, len-1` in order (the default without shuffling).
///
/// ```
/// use ember_data::sampler::{Sampler, SequentialSampler};
/// let g = ember_autograd::Generator::new(0);
/// assert_eq!(SequentialSampler.indices(3, &g), [0, 1, 2]);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SequentialSampler;

impl Sampler for SequentialSampler {
    fn num_samples(&self, dataset_len: usize) -> usize {
        dataset_len
    }
    fn indices(&self, dataset_len: usize, _gen: &Generator) -> Vec<usize> {
        (0..dataset_len).collect()
    }
}

/// A random permutation of the dataset each epoch (what `shuffle(true)` uses), or, with
/// `replacement`, `num_samples` independent uniform draws.
///
/// ```
/// use ember_data::sampler::{RandomSampler, Sampler};
/// let g = ember_autograd::Generator::new(0);
/// let mut idx = RandomSampler::new().indices(5, &g);
/// idx.sort();
/// assert_eq!(idx, [0, 1, 2, 3, 4]);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomSampler {
    replacement: bool,
    num_samples: Option<usize>,
}

impl RandomSampler {
    /// A permutation of the whole dataset each epoch.
    pub fn new() -> RandomSampler {
        RandomSampler::default()
    }

    /// Draws with replacement (indices may repeat).
    pub fn replacement(mut self, replacement: bool) -> RandomSampler {
        self.replacement = replacement;
        self
    }

    /// Yields `n` indices per epoch instead of the dataset's length (without replacement,
    /// successive permutations are concatenated).
    pub fn num_samples(mut self, n: usize) -> RandomSampler {
        self.num_samples = Some(n);
        self
    }
}

impl Sampler for RandomSampler {
    fn num_samples(&self, dataset_len: usize) -> usize {
        self.num_samples.unwrap_or(dataset_len)
    }
    fn indices(&self, dataset_len: usize, gen: &Generator) -> Vec<usize> {
        let k = Sampler::num_samples(self, dataset_len);
        if k == 0 {
            return Vec::new();
        }
        if dataset_len == 0 {
            panic!("RandomSampler: cannot draw {k} samples from an empty dataset");
        }
        if self.replacement {
            return to_usize(Tensor::randint_with(0, dataset_len as i64, [k], Some(gen)));
        }
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let perm = to_usize(Tensor::randperm_with(dataset_len, Some(gen)));
            let take = (k - out.len()).min(dataset_len);
            out.extend_from_slice(&perm[..take]);
        }
        out
    }
}

/// The given indices in a random order each epoch (`SubsetRandomSampler`).
///
/// ```
/// use ember_data::sampler::{Sampler, SubsetRandomSampler};
/// let g = ember_autograd::Generator::new(0);
/// let mut idx = SubsetRandomSampler::new(vec![7, 3, 5]).indices(10, &g);
/// idx.sort();
/// assert_eq!(idx, [3, 5, 7]);
/// ```
#[derive(Clone, Debug)]
pub struct SubsetRandomSampler {
    indices: Vec<usize>,
}

impl SubsetRandomSampler {
    /// Samples exactly `indices`, shuffled each epoch.
    pub fn new(indices: Vec<usize>) -> SubsetRandomSampler {
        SubsetRandomSampler { indices }
    }
}

impl Sampler for SubsetRandomSampler {
    fn num_samples(&self, _dataset_len: usize) -> usize {
        self.indices.len()
    }
    fn indices(&self, _dataset_len: usize, gen: &Generator) -> Vec<usize> {
        to_usize(Tensor::randperm_with(self.indices.len(), Some(gen)))
            .into_iter()
            .map(|i| self.indices[i])
            .collect()
    }
}

/// `num_samples` indices drawn with probability proportional to `weights[i]`
/// (`WeightedRandomSampler`), with or without replacement. Useful to rebalance classes.
///
/// ```
/// use ember_data::sampler::{Sampler, WeightedRandomSampler};
/// let g = ember_autograd::Generator::new(0);
/// // Index 1 has weight 0, so it is never drawn.
/// let idx = WeightedRandomSampler::new(vec![1.0, 0.0, 3.0], 100, true).indices(3, &g);
/// assert!(idx.len() == 100 && idx.iter().all(|&i| i != 1));
/// ```
#[derive(Clone, Debug)]
pub struct WeightedRandomSampler {
    weights: Vec<f64>,
    num_samples: usize,
    replacement: bool,
}

impl WeightedRandomSampler {
    /// Draws `num_samples` indices of `0..weights.len()` per epoch; panics unless the weights
    /// are finite, non-negative and not all zero, or when drawing without replacement asks
    /// for more samples than there are positive weights.
    pub fn new(weights: Vec<f64>, num_samples: usize, replacement: bool) -> WeightedRandomSampler {
        if let Some(w) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
            panic!("WeightedRandomSampler: weights must be finite and non-negative, got {w}");
        }
        let positive = weights.iter().filter(|&&w| w > 0.0).count();
        if positive == 0 && num_samples > 0 {
            panic!("WeightedRandomSampler: the weights sum to zero");
        }
        if !replacement && num_samples > positive {
            panic!(
                "WeightedRandomSampler: cannot draw {num_samples} samples without replacement \
                 from {positive} indices of positive weight"
            );
        }
        WeightedRandomSampler {
            weights,
            num_samples,
            replacement,
        }
    }
}

impl Sampler for WeightedRandomSampler {
    fn num_samples(&self, _dataset_len: usize) -> usize {
        self.num_samples
    }
    fn indices(&self, dataset_len: usize, gen: &Generator) -> Vec<usize> {
        if self.weights.len() > dataset_len {
            panic!(
                "WeightedRandomSampler: {} weights for a dataset of {dataset_len} samples",
                self.weights.len()
            );
        }
        let n = self.weights.len();
        if self.replacement {
            // Inverse CDF: the first index whose cumulative weight exceeds u · total.
            let mut cum = Vec::with_capacity(n);
            let mut total = 0.0;
            for &w in &self.weights {
                total += w;
                cum.push(total);
            }
            let last = self.weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
            uniforms(self.num_samples, gen)
                .into_iter()
                .map(|u| cum.partition_point(|&c| c <= u * total).min(last))
                .collect()
        } else {
            // Efraimidis–Spirakis: the k largest keys ln(u) / w are a weighted sample without
            // replacement.
            let u = uniforms(n, gen);
            let mut keyed: Vec<(f64, usize)> = self
                .weights
                .iter()
                .zip(&u)
                .enumerate()
                .filter(|(_, (w, _))| **w > 0.0)
                .map(|(i, (w, u))| (u.ln() / w, i))
                .collect();
            keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            keyed.truncate(self.num_samples);
            keyed.into_iter().map(|(_, i)| i).collect()
        }
    }
}

/// Each of `num_replicas` processes gets a disjoint shard of the dataset
/// (`torch.utils.data.distributed.DistributedSampler`), for data-parallel training: give every
/// rank a `DistributedSampler::new(world_size, rank)` and the ranks together visit each sample
/// once per epoch.
///
/// PyTorch's rules: with `shuffle` (the default) the dataset is permuted from
/// `seed + epoch`, the same permutation on every rank; the list is padded by repeating its
/// first indices until it divides evenly (or, with `drop_last`, cut to a multiple of
/// `num_replicas`), and rank `r` takes positions `r, r + num_replicas, …`. Every rank thus gets
/// `ceil(len / num_replicas)` indices (`floor` with `drop_last`).
///
/// The order changes only when the epoch changes: call [`set_epoch`](Self::set_epoch) at the
/// start of every epoch (as in PyTorch; [`DataLoader::set_epoch`](crate::DataLoader::set_epoch)
/// forwards to it). Clones share the epoch, so keep a clone of the sampler you hand to the
/// loader if you set it directly.
///
/// ```
/// use ember_data::sampler::{DistributedSampler, Sampler};
/// let g = ember_autograd::Generator::new(0);
/// // 10 samples over 3 ranks: padded to 12, 4 per rank.
/// let shards: Vec<Vec<usize>> = (0..3)
///     .map(|r| DistributedSampler::new(3, r).shuffle(false).indices(10, &g))
///     .collect();
/// assert_eq!(shards, [vec![0, 3, 6, 9], vec![1, 4, 7, 0], vec![2, 5, 8, 1]]);
/// ```
#[derive(Clone, Debug)]
pub struct DistributedSampler {
    num_replicas: usize,
    rank: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
    epoch: Arc<AtomicU64>,
}

impl DistributedSampler {
    /// The shard of process `rank` among `num_replicas`; shuffled, seed 0, no `drop_last`.
    /// Panics, as PyTorch does, when `rank` is not in `0..num_replicas`.
    pub fn new(num_replicas: usize, rank: usize) -> DistributedSampler {
        if num_replicas == 0 {
            panic!("DistributedSampler: num_replicas should be a positive integer, got 0");
        }
        if rank >= num_replicas {
            panic!(
                "Invalid rank {rank}, rank should be in the interval [0, {}]",
                num_replicas - 1
            );
        }
        DistributedSampler {
            num_replicas,
            rank,
            shuffle: true,
            seed: 0,
            drop_last: false,
            epoch: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Permutes the dataset each epoch (default true); the permutation is the same on all ranks.
    pub fn shuffle(mut self, shuffle: bool) -> DistributedSampler {
        self.shuffle = shuffle;
        self
    }

    /// The seed of the permutations (default 0); it must be the same on all ranks.
    pub fn seed(mut self, seed: u64) -> DistributedSampler {
        self.seed = seed;
        self
    }

    /// Drops the tail that does not divide evenly among the ranks instead of padding it with
    /// repeated samples (default false).
    pub fn drop_last(mut self, drop_last: bool) -> DistributedSampler {
        self.drop_last = drop_last;
        self
    }

    /// Sets the epoch, which with `seed` decides the permutation (PyTorch's `set_epoch`).
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// The number of processes sharing the dataset.
    pub fn num_replicas(&self) -> usize {
        self.num_replicas
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }
}

impl Sampler for DistributedSampler {
    fn num_samples(&self, dataset_len: usize) -> usize {
        let r = self.num_replicas;
        if self.drop_last {
            // PyTorch's ceil((len - r) / r), which is floor(len / r).
            dataset_len / r
        } else {
            dataset_len.div_ceil(r)
        }
    }

    fn indices(&self, dataset_len: usize, _gen: &Generator) -> Vec<usize> {
        let per_rank = Sampler::num_samples(self, dataset_len);
        let total = per_rank * self.num_replicas;
        let mut all: Vec<usize> = if self.shuffle {
            let gen = Generator::new(self.seed.wrapping_add(self.epoch()));
            to_usize(Tensor::randperm_with(dataset_len, Some(&gen)))
        } else {
            (0..dataset_len).collect()
        };
        if all.len() < total {
            // Pad with the list's own beginning, repeated as often as needed.
            let n = all.len();
            let pad: Vec<usize> = (0..total - n).map(|i| all[i % n]).collect();
            all.extend(pad);
        }
        all.truncate(total);
        all.into_iter()
            .skip(self.rank)
            .step_by(self.num_replicas)
            .collect()
    }

    fn set_epoch(&self, epoch: u64) {
        DistributedSampler::set_epoch(self, epoch);
    }
}
