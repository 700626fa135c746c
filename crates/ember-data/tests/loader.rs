//! DataLoader, samplers, TensorDataset, Subset and random_split.

use ember_autograd::Tensor;
use ember_data::sampler::{RandomSampler, SubsetRandomSampler, WeightedRandomSampler};
use ember_data::{
    random_split, random_split_fractions, DataLoader, Dataset, Subset, TensorDataset,
};
use proptest::prelude::*;
use std::sync::Arc;

/// A dataset whose sample `i` is the index `i` itself (int64), in two tensors.
fn ids(n: usize) -> TensorDataset<(Tensor, Tensor)> {
    let x = Tensor::arange(n as i64);
    let x2 = Tensor::arange(2 * n as i64).view([n as i64, 2]);
    TensorDataset::new((x, x2))
}

/// Every epoch's batches as index lists.
fn epoch(loader: &DataLoader<TensorDataset<(Tensor, Tensor)>>) -> Vec<Vec<i64>> {
    loader
        .iter()
        .map(|(x, x2)| {
            let v = x.to_vec::<i64>();
            // The second tensor was gathered with the same indices.
            let w = x2.to_vec::<i64>();
            assert_eq!(x2.shape(), &[v.len(), 2]);
            for (k, &i) in v.iter().enumerate() {
                assert_eq!((w[2 * k], w[2 * k + 1]), (2 * i, 2 * i + 1));
            }
            v
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// One epoch visits every index exactly once (or, with drop_last, all but a remainder
    /// smaller than a batch), in full batches but the last, and `len()` counts them.
    #[test]
    fn epoch_covers_every_index_once(
        n in 0usize..150,
        bs in 1usize..40,
        shuffle: bool,
        drop_last: bool,
        prefetch in 0usize..3,
        seed in 0u64..1000,
    ) {
        let loader = DataLoader::new(ids(n), bs)
            .shuffle(shuffle)
            .drop_last(drop_last)
            .prefetch(prefetch)
            .seed(seed);
        for _ in 0..2 {
            let batches = epoch(&loader);
            prop_assert_eq!(batches.len(), loader.len());
            let full = n / bs;
            for b in &batches[..full.min(batches.len())] {
                prop_assert_eq!(b.len(), bs);
            }
            let mut seen: Vec<i64> = batches.concat();
            if drop_last {
                prop_assert_eq!(batches.len(), full);
                prop_assert_eq!(seen.len(), full * bs);
            } else {
                prop_assert_eq!(batches.len(), n.div_ceil(bs));
                prop_assert_eq!(seen.len(), n);
            }
            if !shuffle {
                prop_assert_eq!(&seen, &(0..seen.len() as i64).collect::<Vec<_>>());
            }
            seen.sort();
            seen.dedup();
            prop_assert_eq!(seen.len(), if drop_last { full * bs } else { n });
            prop_assert!(seen.iter().all(|&i| (i as usize) < n));
        }
    }
}

#[test]
fn same_seed_same_order_new_order_each_epoch() {
    let a = DataLoader::new(ids(100), 10).shuffle(true).seed(7);
    let b = DataLoader::new(ids(100), 10).shuffle(true).seed(7);
    let (a0, a1) = (epoch(&a), epoch(&a));
    let (b0, b1) = (epoch(&b), epoch(&b));
    assert_eq!(a0, b0);
    assert_eq!(a1, b1);
    assert_ne!(a0, a1, "each epoch must draw a new order");
    let c = DataLoader::new(ids(100), 10).shuffle(true).seed(8);
    assert_ne!(epoch(&c), a0, "another seed gives another order");
    // Replaying an epoch (to resume training) gives the order an uninterrupted run had.
    assert_eq!(a.epoch(), 2);
    a.set_epoch(1);
    assert_eq!(epoch(&a), a1);
    assert_eq!(a.epoch(), 2);
}

#[test]
fn prefetch_does_not_change_batches() {
    let on = DataLoader::new(ids(97), 8)
        .shuffle(true)
        .seed(3)
        .prefetch(4);
    let off = DataLoader::new(ids(97), 8)
        .shuffle(true)
        .seed(3)
        .prefetch(0);
    for _ in 0..3 {
        assert_eq!(epoch(&on), epoch(&off));
    }
}

#[test]
fn order_is_independent_of_thread_count() {
    let order = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            // Large enough that randperm could use several threads.
            let loader = DataLoader::new(TensorDataset::new(Tensor::arange(100_000)), 1000)
                .shuffle(true)
                .seed(0);
            let e0: Vec<usize> = loader.epoch_indices();
            let e1: Vec<usize> = loader.epoch_indices();
            (e0, e1)
        })
    };
    let one = order(1);
    assert_eq!(one, order(2));
    assert_eq!(one, order(4));
}

#[test]
fn early_break_stops_the_prefetch_thread() {
    let loader = DataLoader::new(ids(1000), 1).prefetch(2);
    for _ in 0..5 {
        let first: Vec<_> = loader
            .iter()
            .take(3)
            .map(|(x, _)| x.to_vec::<i64>())
            .collect();
        assert_eq!(first, [[0], [1], [2]]);
    }
}

/// Sample `i`; panics at `bad`.
struct Fragile {
    bad: usize,
}

impl Dataset for Fragile {
    type Sample = Tensor;
    fn len(&self) -> usize {
        10
    }
    fn get(&self, i: usize) -> Tensor {
        if i == self.bad {
            panic!("Fragile: sample {i} is broken");
        }
        Tensor::scalar(i as i64)
    }
}

#[test]
#[should_panic(expected = "sample 6 is broken")]
fn a_panic_while_prefetching_reaches_the_caller() {
    let loader = DataLoader::new(Fragile { bad: 6 }, 2).prefetch(2);
    for _ in &loader {}
}

#[test]
fn default_get_batch_stacks_samples() {
    // `Fragile` has no get_batch of its own: the default stacks get(i).
    let loader = DataLoader::new(Fragile { bad: 99 }, 4);
    let batches: Vec<Vec<i64>> = loader.iter().map(|b| b.to_vec::<i64>()).collect();
    assert_eq!(batches, [vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
}

#[test]
fn get_batch_equals_stacked_samples() {
    let x = Tensor::randn([7, 3, 2]);
    let y = Tensor::arange(7);
    let ds = TensorDataset::new(vec![x, y]);
    let idx = [4, 0, 6, 4];
    let batch = ds.get_batch(&idx);
    let stacked = ember_data::Collate::collate(idx.iter().map(|&i| ds.get(i)).collect());
    for (a, b) in batch.iter().zip(&stacked) {
        assert_eq!(a.shape(), b.shape());
        assert_eq!(a.to_vec::<f64>(), b.to_vec::<f64>());
    }
    assert_eq!(batch[0].shape(), &[4, 3, 2]);
}

#[test]
fn tensor_dataset_size_mismatch_is_a_clear_error() {
    let err = TensorDataset::try_new((Tensor::zeros([5, 3]), Tensor::zeros([4])))
        .err()
        .expect("mismatched first dims must be rejected");
    let msg = err.to_string();
    assert!(msg.contains("size mismatch"), "{msg}");
    assert!(msg.contains("[5, 3]") && msg.contains("[4]"), "{msg}");
    assert!(TensorDataset::try_new(Vec::<Tensor>::new()).is_err());
    assert!(TensorDataset::try_new(Tensor::scalar(1.0f32)).is_err());
    let r =
        std::panic::catch_unwind(|| TensorDataset::new((Tensor::zeros([2]), Tensor::zeros([3]))));
    assert!(r.is_err());
}

#[test]
fn custom_collate() {
    let loader = DataLoader::new(ids(5), 2).collate(|samples: Vec<(Tensor, Tensor)>| {
        samples.iter().map(|(x, _)| x.item() as i64).sum::<i64>()
    });
    assert_eq!(loader.iter().collect::<Vec<_>>(), [1, 5, 4]);
    assert_eq!(loader.len(), 3);
}

#[test]
fn weighted_sampler_follows_the_weights() {
    let n = 20_000;
    let loader = DataLoader::new(TensorDataset::new(Tensor::arange(4)), 1000)
        .sampler(WeightedRandomSampler::new(
            vec![1.0, 0.0, 3.0, 4.0],
            n,
            true,
        ))
        .seed(1);
    assert_eq!(loader.len(), 20);
    let mut counts = [0usize; 4];
    for b in &loader {
        for i in b.to_vec::<i64>() {
            counts[i as usize] += 1;
        }
    }
    assert_eq!(counts[1], 0);
    for (i, w) in [(0, 1.0), (2, 3.0), (3, 4.0)] {
        let p = counts[i] as f64 / n as f64;
        assert!((p - w / 8.0).abs() < 0.02, "index {i}: {p} vs {}", w / 8.0);
    }
    // Without replacement: distinct indices of positive weight.
    let idx = DataLoader::new(TensorDataset::new(Tensor::arange(6)), 2)
        .sampler(WeightedRandomSampler::new(
            vec![1.0, 0.0, 5.0, 1.0, 2.0, 0.5],
            5,
            false,
        ))
        .seed(2)
        .epoch_indices();
    let mut sorted = idx.clone();
    sorted.sort();
    assert_eq!(sorted, [0, 2, 3, 4, 5]);
}

#[test]
fn random_sampler_with_replacement_and_subset_sampler() {
    let loader = DataLoader::new(ids(10), 4)
        .sampler(RandomSampler::new().replacement(true).num_samples(25))
        .seed(0);
    assert_eq!(loader.len(), 7);
    let seen: Vec<i64> = epoch(&loader).concat();
    assert_eq!(seen.len(), 25);
    assert!(seen.iter().all(|&i| (0..10).contains(&i)));
    let sub = DataLoader::new(ids(10), 3)
        .sampler(SubsetRandomSampler::new(vec![1, 3, 5, 7]))
        .seed(0);
    let mut seen: Vec<i64> = epoch(&sub).concat();
    seen.sort();
    assert_eq!(seen, [1, 3, 5, 7]);
}

#[test]
#[should_panic(expected = "mutually exclusive")]
fn sampler_and_shuffle_conflict() {
    let _ = DataLoader::new(ids(4), 2)
        .shuffle(true)
        .sampler(RandomSampler::new());
}

#[test]
fn random_split_is_a_seeded_partition() {
    let parts = random_split(ids(50), &[30, 15, 5], 11);
    let again = random_split(ids(50), &[30, 15, 5], 11);
    let mut all = Vec::new();
    for (p, q) in parts.iter().zip(&again) {
        assert_eq!(p.indices(), q.indices());
        all.extend_from_slice(p.indices());
    }
    all.sort();
    assert_eq!(all, (0..50).collect::<Vec<_>>());
    assert_ne!(
        random_split(ids(50), &[30, 15, 5], 12)[0].indices(),
        parts[0].indices()
    );
    // A subset's batch is the underlying dataset's batch at the mapped indices.
    let s = &parts[1];
    let (x, _) = s.get_batch(&[0, 2]);
    assert_eq!(
        x.to_vec::<i64>(),
        [s.indices()[0] as i64, s.indices()[2] as i64]
    );
    let loader = DataLoader::new(s.clone(), 4);
    let seen: Vec<i64> = loader.iter().flat_map(|(x, _)| x.to_vec::<i64>()).collect();
    assert_eq!(
        seen,
        s.indices().iter().map(|&i| i as i64).collect::<Vec<_>>()
    );
    let f = random_split_fractions(ids(11), &[0.5, 0.3, 0.2], 0);
    assert_eq!(f.iter().map(|p| p.len()).collect::<Vec<_>>(), [6, 3, 2]);
}

#[test]
#[should_panic(expected = "does not equal the length")]
fn random_split_lengths_must_add_up() {
    random_split(ids(10), &[3, 3], 0);
}

#[test]
fn subset_of_shared_dataset() {
    let ds = Arc::new(ids(10));
    let s = Subset::new(ds.clone(), vec![9, 0]);
    assert_eq!(s.get(0).0.item(), 9.0);
    assert_eq!(s.dataset().len(), 10);
}

#[test]
fn seeded_order_is_pinned() {
    // The same on every machine: randperm from a generator seeded by the mix of (seed 0, k).
    let loader = DataLoader::new(ids(10), 10).shuffle(true).seed(0);
    let e0 = loader.epoch_indices();
    let e1 = loader.epoch_indices();
    assert_eq!(e0, PINNED_E0);
    assert_eq!(e1, PINNED_E1);
}
const PINNED_E0: [usize; 10] = [1, 5, 0, 4, 9, 7, 8, 3, 6, 2];
const PINNED_E1: [usize; 10] = [0, 8, 7, 9, 1, 5, 4, 2, 3, 6];
