//! Device-parametrised tests: each body runs on the CPU and, when a GPU can be used, on CUDA
//! device 0, comparing with the CPU result. Without a GPU the CUDA half prints why it skipped
//! (`cargo xtask gpu-check` runs them on a GPU machine).

use ember::nn::{self, Module};
use ember::optim::SGD;
use ember::{Device, Tensor};

/// `mod $name { fn cpu(); fn cuda(); }` running `$body(device)` on each device.
macro_rules! test_device {
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn cpu() {
                super::$body(ember::Device::Cpu)
            }
            #[test]
            fn cuda() {
                match ember::cuda::unavailable_reason() {
                    None => {
                        let _one_at_a_time = super::device_lock();
                        super::$body(ember::Device::Cuda(0))
                    }
                    Some(why) => eprintln!("{}::cuda skipped: {why}", stringify!($name)),
                }
            }
        }
    };
}

/// Held by every test while it uses the CUDA device: the allocator's counters are per process,
/// so a test that counts driver allocations must not see another test's.
fn device_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn close(what: &str, a: &Tensor, b: &Tensor, tol: f64) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    let (a, b) = (a.to_vec::<f64>(), b.to_vec::<f64>());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// Three SGD-momentum steps of an MLP on `device` end where the same steps on the CPU end.
fn mlp_steps(device: Device) {
    let run = |device: Device| {
        ember::manual_seed(7);
        let mut model = nn::Sequential::new()
            .add(nn::Linear::new(20, 16))
            .add(nn::ReLU)
            .add(nn::Linear::new(16, 5));
        model.to(device);
        let x = Tensor::randn([32, 20]).to_device(device);
        let y = Tensor::randint(0, 5, [32]).to_device(device);
        let mut opt = SGD::new(model.parameters(), 0.1).momentum(0.9);
        let mut losses = vec![];
        for _ in 0..3 {
            opt.zero_grad();
            let loss = nn::CrossEntropyLoss::new().forward(&model.forward(&x), &y);
            loss.backward();
            opt.step();
            losses.push(loss.item());
        }
        for p in model.parameters() {
            assert_eq!(p.device(), device, "parameter left on the wrong device");
        }
        let params: Vec<Tensor> = model.parameters().iter().map(|p| p.cpu()).collect();
        (losses, params)
    };
    let (want_losses, want) = run(Device::Cpu);
    let (losses, got) = run(device);
    for (l, w) in losses.iter().zip(&want_losses) {
        assert!((l - w).abs() < 1e-4, "loss {l} vs {w}");
    }
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        close(&format!("parameter {k}"), g, w, 1e-4);
    }
}
test_device!(mlp_training_matches_cpu, mlp_steps);

/// An op of two tensors, as a test case.
type BinaryCase = Box<dyn Fn(&Tensor, &Tensor) -> Tensor>;

/// Reductions, softmax, matmul of a transposed operand and broadcasting on strided views.
fn ops_on_views(device: Device) {
    ember::manual_seed(3);
    let a = Tensor::randn([6, 8]).double();
    let b = Tensor::randn([8, 6]).double();
    let on = |t: &Tensor| t.to_device(device);
    let cases: Vec<(&str, BinaryCase)> = vec![
        (
            "matmul of a transpose",
            Box::new(|a, b| a.t().matmul(&b.t())),
        ),
        (
            "broadcast add",
            Box::new(|a, b| a + &b.t().sum_dim(0, true)),
        ),
        ("softmax", Box::new(|a, _| a.softmax(1))),
        (
            "log_softmax of a view",
            Box::new(|a, _| a.t().log_softmax(0)),
        ),
        ("var", Box::new(|a, _| a.var(1, true, false))),
        ("max", Box::new(|a, _| a.max_dim(0, false).0)),
        ("argmax", Box::new(|a, _| a.argmax(Some(1), false).double())),
        (
            "where",
            Box::new(|a, b| Tensor::where_cond(&a.gt(0.0), a, &b.t())),
        ),
    ];
    for (what, f) in &cases {
        let want = f(&a, &b);
        let got = f(&on(&a), &on(&b));
        assert_eq!(got.device(), device, "{what}: device");
        close(what, &got.cpu(), &want, 1e-12);
    }
}
test_device!(ops_match_cpu, ops_on_views);

/// Random draws on a device follow the seed: the same seed gives the same numbers.
fn seeded_draws(device: Device) {
    let draw = || {
        ember::manual_seed(11);
        let x = Tensor::randn([1000]).to_device(device);
        let u = Tensor::rand([1000]).to_device(device);
        (x.cpu().to_vec::<f32>(), u.cpu().to_vec::<f32>())
    };
    assert_eq!(draw(), draw());
}
test_device!(random_follows_the_seed, seeded_draws);

/// MNIST on a device: the pixels uploaded once, each shuffled batch gathered and normalised
/// there, equal to the host dataset's batches bit for bit; a few training steps on them end
/// where the same steps on the CPU end.
fn mnist_on_device(device: Device) {
    use ember::data::{DataLoader, Mnist};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../datasets/mnist");
    let host = Mnist::test(dir).unwrap().normalize(0.1307, 0.3081);
    let on_device = host.to_device(device);
    let a = DataLoader::new(host, 64).shuffle(true).seed(3);
    let b = DataLoader::new(on_device, 64).shuffle(true).seed(3);
    let (want, got) = (mnist_steps(&a, Device::Cpu), mnist_steps(&b, device));
    for ((x, l, loss), (y, m, loss_d)) in want.iter().zip(&got) {
        let bits =
            |t: &Tensor| -> Vec<u32> { t.to_vec::<f32>().iter().map(|v| v.to_bits()).collect() };
        assert_eq!(bits(x), bits(y), "pixels");
        assert_eq!(l.to_vec::<i64>(), m.to_vec::<i64>(), "labels");
        assert!(
            (loss - loss_d).abs() <= 1e-4 * (1.0 + loss.abs()),
            "loss {loss} vs {loss_d}"
        );
    }
}
test_device!(mnist_batches_on_the_device, mnist_on_device);

/// Three SGD steps of a small MLP on `loader`'s first batches: each batch (on the CPU) and loss.
fn mnist_steps<D>(loader: &ember::data::DataLoader<D>, device: Device) -> Vec<(Tensor, Tensor, f64)>
where
    D: ember::data::Dataset<Sample = (Tensor, Tensor)> + 'static,
{
    ember::manual_seed(0);
    let mut model = nn::Sequential::new()
        .add(nn::Flatten::new())
        .add(nn::Linear::new(784, 32))
        .add(nn::ReLU)
        .add(nn::Linear::new(32, 10));
    model.to(device);
    let mut opt = SGD::new(model.parameters(), 0.05);
    let mut batches = Vec::new();
    for (images, labels) in loader.into_iter().take(3) {
        assert_eq!((images.device(), labels.device()), (device, device));
        opt.zero_grad();
        let loss = nn::CrossEntropyLoss::new().forward(&model.forward(&images), &labels);
        loss.backward();
        opt.step();
        batches.push((images.cpu(), labels.cpu(), loss.item()));
    }
    batches
}

#[test]
fn cuda_request_is_clear_or_works() {
    let _one_at_a_time = device_lock();
    let r = std::panic::catch_unwind(|| Tensor::ones([2]).cuda().sum().item());
    match (ember::cuda::is_available(), r) {
        (true, Ok(v)) => assert_eq!(v, 2.0),
        (false, Err(e)) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            assert!(msg.contains("CUDA"), "unclear message: {msg}");
        }
        (avail, r) => panic!("is_available() = {avail} but .cuda() gave {:?}", r.is_ok()),
    }
}

#[test]
fn mixed_devices_name_both() {
    if !ember::cuda::is_available() {
        eprintln!(
            "mixed_devices_name_both skipped: {}",
            ember::cuda::unavailable_reason().unwrap_or_default()
        );
        return;
    }
    let _one_at_a_time = device_lock();
    let r = std::panic::catch_unwind(|| &Tensor::ones([2]) + &Tensor::ones([2]).cuda());
    let e = r.expect_err("adding a CPU and a CUDA tensor must panic");
    let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("cpu") && msg.contains("cuda:0"), "{msg}");
}

#[cfg(feature = "cuda")]
#[test]
fn allocator_reuses_memory_after_warm_up() {
    if !ember::cuda::is_available() {
        eprintln!("allocator_reuses_memory_after_warm_up skipped: no usable GPU");
        return;
    }
    let _one_at_a_time = device_lock();
    let x = Tensor::randn([256, 256]).cuda();
    let step = || {
        let _g = ember::no_grad();
        (&x.matmul(&x) + 1.0).relu().sum().item()
    };
    step();
    let before = ember::cuda::memory_stats(0).driver_allocs;
    for _ in 0..10 {
        step();
    }
    assert_eq!(ember::cuda::memory_stats(0).driver_allocs, before);
}
