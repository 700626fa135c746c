//! `xtask gpu-bench` (built with the `cuda` feature; run by the GPU check): Ember's side of the
//! GPU benchmarks of `xtask/gpu/pytorch_gpu.py`, the same workloads timed the same way.

use anyhow::{bail, Result};
use ember::{no_grad, Device, Tensor};
use std::time::Instant;

/// Seconds per call of `f` over `iters` calls after a warm-up, waiting for the device at the end.
fn timed(f: &dyn Fn(), iters: usize) -> f64 {
    f();
    ember::cuda::synchronize();
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    ember::cuda::synchronize();
    t.elapsed().as_secs_f64() / iters as f64
}

/// Runs the benchmarks on CUDA device 0 and prints one line per figure.
pub fn run() -> Result<()> {
    if let Some(why) = ember::cuda::unavailable_reason() {
        bail!("no usable GPU: {why}");
    }
    let _g = no_grad();
    let dev = Device::Cuda(0);
    let n = 4096;
    let a = Tensor::randn([n, n]).to_device(dev);
    let b = Tensor::randn([n, n]).to_device(dev);
    for tf32 in [false, true] {
        ember::cuda::set_allow_tf32(tf32);
        let t = timed(&|| drop(a.matmul(&b)), 20);
        println!(
            "gemm f32 4096^3 tf32={tf32}: {:.1} TFLOP/s",
            2.0 * (n as f64).powi(3) / t / 1e12
        );
    }
    ember::cuda::set_allow_tf32(false);
    drop((a, b));
    let m = 256usize << 20;
    let x = Tensor::randn([m]).to_device(dev);
    let y = Tensor::randn([m]).to_device(dev);
    let z = Tensor::zeros([m]).to_device(dev);
    let t = timed(
        &|| {
            z.copy_(&x);
        },
        10,
    );
    println!("copy 256M f32: {:.0} GB/s", 2.0 * 4.0 * m as f64 / t / 1e9);
    let t = timed(&|| drop(&x + &y), 10);
    println!("add 256M f32: {:.0} GB/s", 3.0 * 4.0 * m as f64 / t / 1e9);
    let t = timed(&|| drop(x.sum()), 10);
    println!("sum 256M f32: {:.0} GB/s", 4.0 * m as f64 / t / 1e9);
    drop((x, y, z));
    let s1 = Tensor::randn([8]).to_device(dev);
    let s2 = Tensor::randn([8]).to_device(dev);
    for _ in 0..1000 {
        drop(&s1 + &s2);
    }
    ember::cuda::synchronize();
    let k = 20000;
    let t = Instant::now();
    for _ in 0..k {
        drop(&s1 + &s2);
    }
    let host = t.elapsed().as_secs_f64() / k as f64;
    ember::cuda::synchronize();
    println!("add 8 f32 host cost: {:.2} us/call", host * 1e6);
    Ok(())
}
