"""PyTorch's side of `cargo xtask bench distributed`: the same measurements on 2 local ranks
with torch.distributed's CPU backend (gloo, over loopback TCP), one compute thread per rank as
the Ember run uses.

* all_reduce of 1, 16 and 64 MB of float32: bus bandwidth (median of timed runs, the slowest
  rank's);
* one DistributedDataParallel step of the MNIST MLP 784-128-64-10 at global batch 256
  (128 per rank), SGD with momentum: median of 50 steps after 10 warm-up steps.

Prints one JSON object on the last line.
"""

import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn


def median(v):
    v = sorted(v)
    return v[len(v) // 2]


def slowest(x):
    t = torch.tensor([x], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item()


def rank_main(rank, world, port, out):
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    results = {"all_reduce": {}}
    for mb in (1, 16, 64):
        n = mb * (1 << 20) // 4
        t = torch.ones(n)
        reps = 6 if mb >= 64 else (10 if mb >= 16 else 40)
        dist.all_reduce(t)
        times = []
        for _ in range(reps):
            dist.barrier()
            s = time.perf_counter()
            dist.all_reduce(t)
            times.append(time.perf_counter() - s)
        secs = slowest(median(times))
        busbw = n * 4 / secs / 1e9 * 2 * (world - 1) / world
        results["all_reduce"][str(mb)] = {"seconds": secs, "busbw_gbs": busbw}

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    crit = nn.CrossEntropyLoss()
    torch.manual_seed(1 + rank)
    per_rank = 256 // world
    x = torch.randn(per_rank, 784)
    y = torch.randint(0, 10, (per_rank,))
    steps = []
    for i in range(60):
        dist.barrier()
        s = time.perf_counter()
        opt.zero_grad()
        loss = crit(ddp(x), y)
        loss.backward()
        opt.step()
        if i >= 10:
            steps.append(time.perf_counter() - s)
    results["ddp_step_seconds"] = slowest(median(steps))
    if rank == 0:
        with open(out, "w") as f:
            json.dump(results, f)
    dist.barrier()
    dist.destroy_process_group()


def main():
    world = 2
    port = 29500 + os.getpid() % 1000
    out = f"/tmp/ember_pytorch_ddp_{os.getpid()}.json"
    mp.spawn(rank_main, args=(world, port, out), nprocs=world, join=True)
    with open(out) as f:
        results = json.load(f)
    os.remove(out)
    results["torch"] = torch.__version__
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
