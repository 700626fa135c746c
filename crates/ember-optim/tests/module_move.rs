//! An optimizer built *before* `model.double()` / `model.to(device)` keeps updating the model's
//! parameters: `Module::to` and `to_dtype` replace the data in place (`Tensor::set_data`), as
//! PyTorch's `param.data = fn(param)` does. The device half runs on CUDA device 0 when one can be
//! used (a GPU, or the host emulator: `EMBER_CUDA_EMULATE=1` with `--features cuda`), and prints
//! why it skipped otherwise.

use ember_autograd::{manual_seed, DType, Device, Tensor};
use ember_nn::{self as nn, Module};
use ember_optim::{Adam, Optimizer, SGD};

fn mlp() -> nn::Sequential {
    nn::Sequential::new()
        .add(nn::Linear::new(20, 16))
        .add(nn::ReLU)
        .add(nn::Linear::new(16, 5))
}

/// A seeded batch: inputs `[32, 20]` (float32) and class labels `[32]`.
fn batch() -> (Tensor, Tensor) {
    (Tensor::randn([32, 20]), Tensor::randint(0, 5, [32]))
}

/// `steps` training steps of `model` by `opt`, returning each step's loss.
fn train(
    model: &nn::Sequential,
    x: &Tensor,
    y: &Tensor,
    steps: usize,
    opt: &mut dyn Optimizer,
) -> Vec<f64> {
    (0..steps)
        .map(|_| {
            opt.zero_grad();
            let loss = nn::CrossEntropyLoss::new().forward(&model.forward(x), y);
            loss.backward();
            opt.step();
            loss.item()
        })
        .collect()
}

/// The optimizer's handles are the model's parameters, in float64, after `double()`.
fn check_handles(handles: &[Tensor], model: &nn::Sequential, dtype: DType, device: Device) {
    let params = model.parameters();
    assert_eq!(handles.len(), params.len());
    for (h, p) in handles.iter().zip(&params) {
        assert_eq!(h.dtype(), dtype, "the optimizer's handle has the old dtype");
        assert_eq!(
            h.device(),
            device,
            "the optimizer's handle is on the old device"
        );
        assert_eq!(p.dtype(), dtype);
        assert_eq!(p.device(), device);
        assert!(h.shares_storage(p), "the optimizer updates other tensors");
    }
}

fn decreasing(losses: &[f64]) {
    assert!(
        losses.last().unwrap() < losses.first().unwrap(),
        "loss did not decrease: {losses:?}"
    );
}

/// The parameters a run ends with, as float64 host values.
fn values(model: &nn::Sequential) -> Vec<Vec<f64>> {
    model
        .parameters()
        .iter()
        .map(|p| p.to_vec::<f64>())
        .collect()
}

#[test]
fn sgd_momentum_built_before_double_updates_the_model() {
    // Built before the conversion: the old advice was to build it after.
    manual_seed(3);
    let mut model = mlp();
    let (x, y) = batch();
    let mut opt = SGD::new(model.parameters(), 0.1).momentum(0.9);
    model.double();
    let x = x.to_dtype(DType::F64);
    check_handles(opt.group_params(0), &model, DType::F64, Device::Cpu);
    let losses = train(&model, &x, &y, 10, &mut opt);
    decreasing(&losses);
    check_handles(opt.group_params(0), &model, DType::F64, Device::Cpu);
    // The momentum buffers were created by the first step, after the move: float64 too.
    let sd = opt.state_dict();
    let buf = sd
        .tensor("state.0.momentum_buffer")
        .expect("a momentum buffer");
    assert_eq!(buf.dtype(), DType::F64);

    // The same run with the optimizer built after the move (PyTorch's usual order) ends at the
    // same parameters, bit for bit.
    manual_seed(3);
    let mut reference = mlp();
    let (x, y) = batch();
    reference.double();
    let x = x.to_dtype(DType::F64);
    let mut opt = SGD::new(reference.parameters(), 0.1).momentum(0.9);
    train(&reference, &x, &y, 10, &mut opt);
    assert_eq!(values(&model), values(&reference));
}

#[test]
fn adam_built_before_double_and_back_to_float_updates_the_model() {
    manual_seed(4);
    let mut model = mlp();
    let (x, y) = batch();
    let handles = model.parameters();
    let mut opt = Adam::new(model.parameters(), 0.01);
    model.double();
    let x64 = x.to_dtype(DType::F64);
    let losses = train(&model, &x64, &y, 10, &mut opt);
    decreasing(&losses);
    check_handles(opt.group_params(0), &model, DType::F64, Device::Cpu);
    // Handles the caller took before follow too.
    check_handles(&handles, &model, DType::F64, Device::Cpu);
    let sd = opt.state_dict();
    assert_eq!(sd.tensor("state.0.exp_avg").unwrap().dtype(), DType::F64);
    // Gradients move with the parameters.
    model.float();
    for p in model.parameters() {
        assert_eq!(p.dtype(), DType::F32);
        assert_eq!(p.grad().expect("a gradient").dtype(), DType::F32);
        assert!(p.requires_grad() && p.is_leaf());
    }
    check_handles(&handles, &model, DType::F32, Device::Cpu);
}

#[test]
#[should_panic(expected = "set_data: the new data has shape [4] but the tensor has shape [16]")]
fn a_conversion_of_another_shape_panics_naming_set_data() {
    let model = mlp();
    let bias = model.parameters()[1].clone();
    bias.set_data(&Tensor::zeros([4]));
}

/// Held by the CUDA test while it uses the device (the allocator's counters are per process).
fn device_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds the MLP and an SGD-momentum optimizer on the CPU, then moves the model to `device`
/// (after the optimizer exists, before its first step) and trains three steps there.
fn moved_run(device: Device) -> (Vec<f64>, Vec<Vec<f64>>) {
    manual_seed(7);
    let mut model = mlp();
    let (x, y) = batch();
    let mut opt = SGD::new(model.parameters(), 0.1).momentum(0.9);
    model.to(device);
    let (x, y) = (x.to_device(device), y.to_device(device));
    let losses = train(&model, &x, &y, 3, &mut opt);
    check_handles(opt.group_params(0), &model, DType::F32, device);
    let sd = opt.state_dict();
    let buf = sd
        .tensor("state.0.momentum_buffer")
        .expect("a momentum buffer");
    assert_eq!(
        buf.device(),
        device,
        "momentum made after the move is on the device"
    );
    (losses, values(&model))
}

#[test]
fn sgd_built_before_a_move_to_the_cpu_trains_there() {
    let (losses, _) = moved_run(Device::Cpu);
    decreasing(&losses);
}

#[test]
fn sgd_built_before_the_move_to_cuda_trains_on_the_device() {
    if let Some(why) = ember_kernels::cuda::unavailable_reason() {
        eprintln!("sgd_built_before_the_move_to_cuda_trains_on_the_device skipped: {why}");
        return;
    }
    let _one_at_a_time = device_lock();
    let (want_losses, want) = moved_run(Device::Cpu);
    let (losses, got) = moved_run(Device::Cuda(0));
    for (l, w) in losses.iter().zip(&want_losses) {
        assert!((l - w).abs() < 1e-4, "loss {l} vs {w}");
    }
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "parameter {k}[{i}]: {a} on cuda vs {b} on cpu"
            );
        }
    }
}

/// State an optimizer made before the move stays where it was (as in PyTorch), and its next step
/// says so instead of mixing dtypes.
#[test]
#[should_panic(expected = "state buffers must have the parameter's dtype")]
fn state_made_before_the_move_stays_where_it_was() {
    manual_seed(5);
    let mut model = mlp();
    let (x, y) = batch();
    let mut opt = SGD::new(model.parameters(), 0.1).momentum(0.9);
    train(&model, &x, &y, 1, &mut opt);
    model.double();
    train(&model, &x.to_dtype(DType::F64), &y, 1, &mut opt);
}
