//! `train-mnist --distributed` (run under `mpirun -np N`) and `bench distributed`.
//!
//! [`Dist`] is what the training loop asks about the job: whether this rank is the one that
//! prints and writes files, which samples it trains on, and how its model is wrapped. Without
//! `--distributed` it is a job of one process and changes nothing.

use crate::train::MnistSet;
use anyhow::{bail, Context, Result};
use ember::data::DataLoader;
use ember::nn;
use ember::Tensor;
use std::path::PathBuf;
use std::process::Command;

/// The job this process belongs to.
pub struct Dist {
    #[cfg(feature = "mpi")]
    group: Option<ember::distributed::ProcessGroup>,
}

/// The model being trained: plain, or wrapped in `DistributedDataParallel`. It derefs to the
/// `Sequential` for everything but the training step.
pub enum Model {
    /// One process.
    Plain(nn::Sequential),
    /// Data-parallel across the ranks.
    #[cfg(feature = "mpi")]
    Ddp(ember::distributed::DistributedDataParallel<nn::Sequential>),
}

impl std::ops::Deref for Model {
    type Target = nn::Sequential;
    fn deref(&self) -> &nn::Sequential {
        match self {
            Model::Plain(m) => m,
            #[cfg(feature = "mpi")]
            Model::Ddp(d) => d.module(),
        }
    }
}

impl Model {
    /// The training forward (DDP's, which also syncs buffers).
    pub fn forward_train(&self, x: &Tensor) -> Result<Tensor> {
        use ember::nn::Module;
        match self {
            Model::Plain(m) => Ok(m.forward(x)),
            #[cfg(feature = "mpi")]
            Model::Ddp(d) => Ok(d.forward(x)?),
        }
    }

    /// `loss.backward()`, with the gradients averaged across the ranks when distributed.
    pub fn backward(&self, loss: &Tensor) -> Result<()> {
        match self {
            Model::Plain(_) => {
                loss.backward();
                Ok(())
            }
            #[cfg(feature = "mpi")]
            Model::Ddp(d) => Ok(d.backward(loss)?),
        }
    }

    /// The trained `Sequential`.
    pub fn into_inner(self) -> nn::Sequential {
        match self {
            Model::Plain(m) => m,
            #[cfg(feature = "mpi")]
            Model::Ddp(d) => d.into_module(),
        }
    }
}

impl Dist {
    /// Joins the MPI job when `distributed`, else a job of one.
    pub fn init(distributed: bool) -> Result<Dist> {
        if !distributed {
            return Ok(Dist {
                #[cfg(feature = "mpi")]
                group: None,
            });
        }
        #[cfg(feature = "mpi")]
        {
            use ember::distributed::{init_process_group, Backend};
            let group = init_process_group(Backend::Mpi).context("--distributed")?;
            Ok(Dist { group: Some(group) })
        }
        #[cfg(not(feature = "mpi"))]
        {
            relaunch_with_mpi()?;
            bail!(
                "--distributed: this process was not started by mpirun; run `mpirun -np N cargo \
                 xtask train-mnist --distributed` (Open MPI must be installed: apt-get install \
                 libopenmpi-dev openmpi-bin libclang-dev)"
            )
        }
    }

    /// This process's rank (0 without `--distributed`).
    pub fn rank(&self) -> usize {
        #[cfg(feature = "mpi")]
        if let Some(g) = &self.group {
            return g.rank();
        }
        0
    }

    /// The number of ranks (1 without `--distributed`).
    pub fn world_size(&self) -> usize {
        #[cfg(feature = "mpi")]
        if let Some(g) = &self.group {
            return g.world_size();
        }
        1
    }

    /// True on the rank that prints, checkpoints and writes metrics.
    pub fn is_main(&self) -> bool {
        self.rank() == 0
    }

    /// Compute threads per rank: the cores divided among the ranks of this host (`None`: all).
    pub fn threads(&self) -> Option<usize> {
        if self.world_size() == 1 {
            return None;
        }
        let local: usize = std::env::var("OMPI_COMM_WORLD_LOCAL_SIZE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.world_size());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Some((cores / local.max(1)).max(1))
    }

    /// The training loader: shuffled from `seed`; when distributed, this rank's share of the
    /// single process's order ([`RankShard`]) in batches of `batch / world_size`, so that the
    /// global batch stays `batch` and, when `world_size` divides it, the ranks' step `k`
    /// trains on exactly the samples of the single process's step `k`.
    pub fn loader(&self, train: MnistSet, batch: usize, seed: u64) -> Result<DataLoader<MnistSet>> {
        let n = self.world_size();
        if n == 1 {
            return Ok(DataLoader::new(train, batch).shuffle(true).seed(seed));
        }
        let per_rank = batch / n;
        if per_rank == 0 {
            bail!("--batch-size {batch} is the global batch: it cannot be split among {n} ranks");
        }
        if self.is_main() {
            println!(
                "distributed: {n} ranks x batch {per_rank} (global batch {})",
                per_rank * n
            );
        }
        let shard = RankShard {
            rank: self.rank(),
            world_size: n,
        };
        Ok(DataLoader::new(train, per_rank).sampler(shard).seed(seed))
    }

    /// Wraps `model` for data-parallel training when distributed (rank 0's weights are
    /// copied to the others).
    pub fn wrap(&self, model: nn::Sequential) -> Result<Model> {
        #[cfg(feature = "mpi")]
        if self.group.is_some() {
            return Ok(Model::Ddp(
                ember::distributed::DistributedDataParallel::new(model)?,
            ));
        }
        Ok(Model::Plain(model))
    }

    /// `x` averaged over the ranks (the epoch's training loss).
    pub fn mean(&self, x: f64) -> Result<f64> {
        #[cfg(feature = "mpi")]
        if let Some(g) = &self.group {
            let t = Tensor::from_slice(&[x], [1]);
            g.all_reduce(&t, ember::distributed::ReduceOp::Avg)?;
            return Ok(t.item());
        }
        Ok(x)
    }
}

/// One rank's share of the order a single process trains in: the epoch's permutation that
/// `shuffle(true)` draws from the same seeded loader's generator, padded with its first indices
/// to a multiple of the world size (as `DistributedSampler` pads), positions `rank, rank + n, …`.
/// PyTorch's `DistributedSampler` permutes from `seed + epoch` instead, an order no single
/// process uses; sharing the single process's order makes `--distributed` a faithful
/// replacement of the one-process run (same samples per step, the same weights up to the
/// summation order), which `tests/distributed.rs` checks.
struct RankShard {
    rank: usize,
    world_size: usize,
}

impl ember::data::sampler::Sampler for RankShard {
    fn num_samples(&self, dataset_len: usize) -> usize {
        dataset_len.div_ceil(self.world_size)
    }

    fn indices(&self, dataset_len: usize, gen: &ember::Generator) -> Vec<usize> {
        use ember::data::sampler::RandomSampler;
        let mut all = RandomSampler::new().indices(dataset_len, gen);
        let total = self.num_samples(dataset_len) * self.world_size;
        let pad: Vec<usize> = (0..total - all.len())
            .map(|i| all[i % dataset_len])
            .collect();
        all.extend(pad);
        all.into_iter()
            .skip(self.rank)
            .step_by(self.world_size)
            .collect()
    }
}

/// Under mpirun, an xtask built without MPI replaces itself (same process, so mpirun keeps
/// track of it) by the one built with its `mpi` feature, so that `mpirun -np N cargo xtask
/// train-mnist --distributed` works as written. Returns only when it cannot.
#[cfg(not(feature = "mpi"))]
fn relaunch_with_mpi() -> Result<()> {
    use std::os::unix::process::CommandExt;
    let under_mpirun = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    let Some(cargo) = std::env::var_os("CARGO").filter(|_| under_mpirun) else {
        return Ok(());
    };
    let err = Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "xtask",
            "--features",
            "mpi",
            "--",
        ])
        .args(std::env::args_os().skip(1))
        .exec();
    Err(err).context("relaunching xtask with its mpi feature")
}

/// `cargo xtask bench distributed`: PyTorch's DDP reference on 2 local ranks (gloo) when
/// `python` has torch, then the benchmark, built with the `mpi` feature, on 2 local ranks with
/// PyTorch's figures beside its own.
pub fn bench(python: Option<&std::path::Path>) -> Result<()> {
    if Command::new("mpirun").arg("--version").output().is_err() {
        println!(
            "== distributed: skipped, mpirun not found (apt-get install libopenmpi-dev \
             openmpi-bin libclang-dev)"
        );
        return Ok(());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args([
            "bench",
            "-q",
            "-p",
            "ember-distributed",
            "--features",
            "mpi",
            "--bench",
            "distributed",
            "--no-run",
            "--message-format=json",
        ])
        .output()
        .context("building the distributed benchmark")?;
    if !out.status.success() {
        bail!(
            "building the distributed benchmark failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"]["name"] == "distributed")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .context("no executable for the distributed benchmark in cargo's output")?;
    let mut torch_json = None;
    if let Some(py) = python {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../crates/ember-distributed/benches/pytorch_ddp.py"
        );
        println!("== PyTorch DDP reference ({}): {script}", py.display());
        let out = Command::new(py).arg(script).output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            let path = PathBuf::from("target/pytorch_ddp.json");
            ember::io::atomic_write(&path, text.as_bytes())?;
            torch_json = Some(path.canonicalize()?);
        } else {
            println!(
                "PyTorch DDP reference failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    println!("== mpirun -np 2 {}", exe.display());
    let mut cmd = Command::new("mpirun");
    cmd.args(["--oversubscribe", "--allow-run-as-root", "-np", "2"])
        .args(["-x", "RAYON_NUM_THREADS=1"]);
    if let Some(j) = &torch_json {
        cmd.args(["-x", &format!("EMBER_TORCH_DDP_JSON={}", j.display())]);
    }
    let status = cmd.arg(&exe).status()?;
    if !status.success() {
        bail!("the distributed benchmark failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember::data::sampler::{RandomSampler, Sampler};

    /// The ranks' batches `k` together are the single process's batch `k`, and a length that
    /// does not divide evenly is padded so every rank gets as many indices.
    #[test]
    fn rank_shards_split_the_single_process_order() {
        let (len, batch, n) = (103, 8, 2);
        let gen = || ember::Generator::new(11);
        let single = RandomSampler::new().indices(len, &gen());
        let shards: Vec<Vec<usize>> = (0..n)
            .map(|rank| {
                RankShard {
                    rank,
                    world_size: n,
                }
                .indices(len, &gen())
            })
            .collect();
        assert!(shards.iter().all(|s| s.len() == len.div_ceil(n)));
        for (k, want) in single.chunks(batch).enumerate() {
            let mut got: Vec<usize> = shards
                .iter()
                .flat_map(|s| s.chunks(batch / n).nth(k).unwrap().iter().copied())
                .collect();
            got.sort_unstable();
            let mut want = want.to_vec();
            // The last batch is padded with the order's first index.
            if want.len() % n != 0 {
                want.push(single[0]);
            }
            want.sort_unstable();
            assert_eq!(got, want, "batch {k}");
        }
    }
}
