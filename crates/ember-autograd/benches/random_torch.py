"""PyTorch's times for the calls of random.rs, measured the same way (best-of-5 mean after
calibration, as pytorch_reference.py's bench). Usage: python random_torch.py"""
import time

import torch


def best_of(f, min_time=1.0, reps=5):
    for _ in range(10):
        f()
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            f()
        dt = time.perf_counter() - t
        if dt > min_time / reps / 4:
            break
        n *= 2
    n = max(1, int(n * (min_time / reps) / max(dt, 1e-9)))
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter() - t) / n)
    return best


torch.manual_seed(0)
n = 1 << 20
cases = [
    ("rand 1M f32", lambda: torch.rand(n)),
    ("randn 1M f32", lambda: torch.randn(n)),
    ("randn 1M f64", lambda: torch.randn(n, dtype=torch.float64)),
    ("randint 1M", lambda: torch.randint(0, 10, (n,))),
    ("randperm 100K", lambda: torch.randperm(100_000)),
    ("bernoulli_(0.5) 1M f32", lambda: torch.zeros(n).bernoulli_(0.5)),
    ("randn 100 f32", lambda: torch.randn(100)),
]
for name, f in cases:
    print(f"{name:<24} {best_of(f) * 1e6:>10.1} us")
