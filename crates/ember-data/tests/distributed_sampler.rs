//! `DistributedSampler`: PyTorch's shard, padding and `drop_last` rules against a naive
//! transcription of `torch.utils.data.distributed.DistributedSampler.__iter__`, disjoint shards,
//! per-epoch reshuffling, and its use through `DataLoader`.

use ember_autograd::{Generator, Tensor};
use ember_data::sampler::{DistributedSampler, Sampler};
use ember_data::{DataLoader, TensorDataset};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// PyTorch's `__iter__`, line by line, over a given base order.
fn pytorch_shard(base: Vec<usize>, replicas: usize, rank: usize, drop_last: bool) -> Vec<usize> {
    let len = base.len();
    let num_samples = if drop_last && !len.is_multiple_of(replicas) {
        // math.ceil((len - r) / r), which is 0 for len < r (Python's ceil of a negative fraction)
        len.saturating_sub(replicas).div_ceil(replicas)
    } else {
        len.div_ceil(replicas)
    };
    let total_size = num_samples * replicas;
    let mut indices = base;
    if !drop_last {
        let padding_size = total_size - indices.len();
        if padding_size <= indices.len() {
            let head = indices[..padding_size].to_vec();
            indices.extend(head);
        } else {
            let reps = padding_size.div_ceil(indices.len());
            let repeated: Vec<usize> = (0..reps).flat_map(|_| indices.clone()).collect();
            indices.extend_from_slice(&repeated[..padding_size]);
        }
    } else {
        indices.truncate(total_size);
    }
    assert_eq!(indices.len(), total_size);
    indices.into_iter().skip(rank).step_by(replicas).collect()
}

fn perm(len: usize, seed: u64) -> Vec<usize> {
    Tensor::randperm_with(len, Some(&Generator::new(seed)))
        .to_vec::<i64>()
        .into_iter()
        .map(|i| i as usize)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shards_follow_pytorch_and_cover_the_dataset(
        len in 1usize..120,
        replicas in 1usize..7,
        shuffle in any::<bool>(),
        drop_last in any::<bool>(),
        seed in 0u64..1000,
        epoch in 0u64..5,
    ) {
        let g = Generator::new(12345); // the loader's generator: ignored
        let base = if shuffle { perm(len, seed + epoch) } else { (0..len).collect() };
        let mut seen = Vec::new();
        for rank in 0..replicas {
            let s = DistributedSampler::new(replicas, rank)
                .shuffle(shuffle)
                .seed(seed)
                .drop_last(drop_last);
            s.set_epoch(epoch);
            let idx = s.indices(len, &g);
            prop_assert_eq!(idx.len(), s.num_samples(len));
            prop_assert_eq!(&idx, &pytorch_shard(base.clone(), replicas, rank, drop_last));
            seen.extend(idx);
        }
        let distinct: BTreeSet<usize> = seen.iter().copied().collect();
        if drop_last {
            // Disjoint shards, the tail smaller than `replicas` left out.
            prop_assert_eq!(distinct.len(), seen.len());
            prop_assert_eq!(seen.len(), len / replicas * replicas);
        } else if len >= replicas {
            // Every sample visited, fewer than `replicas` of them twice (the padding).
            prop_assert_eq!(distinct.len(), len);
            prop_assert!(seen.len() - len < replicas);
        } else {
            prop_assert_eq!(distinct.len(), len);
        }
    }
}

#[test]
fn small_dataset_is_padded_by_repetition() {
    let g = Generator::new(0);
    // 2 samples over 5 ranks: [0, 1, 0, 1, 0].
    let got: Vec<Vec<usize>> = (0..5)
        .map(|r| DistributedSampler::new(5, r).shuffle(false).indices(2, &g))
        .collect();
    assert_eq!(got, [vec![0], vec![1], vec![0], vec![1], vec![0]]);
    assert!(DistributedSampler::new(3, 1).indices(0, &g).is_empty());
}

#[test]
fn epoch_reshuffles_and_clones_share_it() {
    let g = Generator::new(0);
    let s = DistributedSampler::new(2, 1).seed(7);
    let e0 = s.indices(100, &g);
    assert_eq!(e0, s.indices(100, &g), "same epoch, same order");
    let clone = s.clone();
    clone.set_epoch(1);
    assert_eq!(s.epoch(), 1);
    let e1 = s.indices(100, &g);
    assert_ne!(e0, e1, "a new epoch reshuffles");
    s.set_epoch(0);
    assert_eq!(s.indices(100, &g), e0, "epoch 0 replays");
    assert_ne!(
        DistributedSampler::new(2, 1).seed(8).indices(100, &g),
        e0,
        "the seed matters"
    );
}

#[test]
fn data_loader_takes_a_distributed_sampler() {
    let n = 10;
    let ds = || TensorDataset::new((Tensor::arange(n as i64),));
    let mut union = Vec::new();
    for rank in 0..2 {
        let loader = DataLoader::new(ds(), 2).sampler(DistributedSampler::new(2, rank).seed(3));
        assert_eq!(loader.len(), 3, "5 samples per rank in batches of 2");
        loader.set_epoch(4); // forwarded to the sampler
        let mine: Vec<i64> = loader.iter().flat_map(|(x,)| x.to_vec::<i64>()).collect();
        let expect = pytorch_shard(perm(n, 3 + 4), 2, rank, false);
        assert_eq!(mine, expect.iter().map(|&i| i as i64).collect::<Vec<_>>());
        union.extend(mine);
    }
    union.sort();
    assert_eq!(union, (0..n as i64).collect::<Vec<_>>());
}

#[test]
#[should_panic(expected = "Invalid rank 2, rank should be in the interval [0, 1]")]
fn rank_out_of_range() {
    DistributedSampler::new(2, 2);
}
