"""PyTorch's side of `xtask gpu-bench`: the same workloads, timed the same way (CUDA events
around repeated calls, after a warm-up), printed in the same format."""
import time
import torch

def timed(f, iters):
    f(); torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        f()
    end.record(); torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / iters

dev = torch.device("cuda:0")
n = 4096
a = torch.randn(n, n, device=dev); b = torch.randn(n, n, device=dev)
for tf32 in (False, True):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    t = timed(lambda: a @ b, 20)
    print(f"gemm f32 4096^3 tf32={tf32}: {2 * n**3 / t / 1e12:.1f} TFLOP/s")
torch.backends.cuda.matmul.allow_tf32 = False
m = 256 << 20
x = torch.randn(m, device=dev); y = torch.randn(m, device=dev); z = torch.empty_like(x)
t = timed(lambda: z.copy_(x), 10)
print(f"copy 256M f32: {2 * 4 * m / t / 1e9:.0f} GB/s")
t = timed(lambda: torch.add(x, y, out=z), 10)
print(f"add 256M f32: {3 * 4 * m / t / 1e9:.0f} GB/s")
t = timed(lambda: x.sum(), 10)
print(f"sum 256M f32: {4 * m / t / 1e9:.0f} GB/s")
s1 = torch.randn(8, device=dev); s2 = torch.randn(8, device=dev)
for _ in range(1000):
    s1 + s2
torch.cuda.synchronize()
k = 20000
t0 = time.perf_counter()
for _ in range(k):
    s1 + s2
t1 = time.perf_counter(); torch.cuda.synchronize()
print(f"add 8 f32 host cost: {(t1 - t0) / k * 1e6:.2f} us/call")
