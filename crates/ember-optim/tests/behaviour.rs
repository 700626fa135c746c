//! Optimizer behaviour beyond the update rules: skipped parameters, parameter groups, zero_grad,
//! state_dict contents and errors, validation messages, gradient clipping.

use ember_autograd::Tensor;
use ember_optim::clip::{clip_grad_norm_, clip_grad_value_};
use ember_optim::*;

fn param(v: &[f32]) -> Tensor {
    Tensor::from_slice(v, [v.len()]).requires_grad_(true)
}

fn grad(p: &Tensor, v: &[f32]) {
    p.set_grad(Some(Tensor::from_slice(v, [v.len()])));
}

#[test]
fn parameters_without_grad_are_skipped() {
    let (a, b) = (param(&[1.0, 2.0]), param(&[3.0]));
    let mut opt = Adam::new([a.clone(), b.clone()], 0.1);
    grad(&a, &[1.0, 1.0]);
    opt.step();
    opt.step();
    assert_eq!(b.to_vec::<f32>(), vec![3.0]);
    assert_ne!(a.to_vec::<f32>(), vec![1.0, 2.0]);
    let sd = opt.state_dict();
    assert_eq!(sd.metadata["state"]["0"]["step"], 2);
    assert!(sd.metadata["state"].get("1").is_none());
    assert!(sd.tensor("state.0.exp_avg").is_some());
    assert!(sd.tensor("state.1.exp_avg").is_none());
    // b's first step is Adam's step 1 for b, whatever a's count.
    grad(&b, &[1.0]);
    let before = a.to_vec::<f32>();
    a.set_grad(None);
    opt.step();
    assert_eq!(a.to_vec::<f32>(), before);
    assert!((b.to_vec::<f32>()[0] - 2.9).abs() < 1e-6);
}

#[test]
fn param_groups_have_their_own_hyperparameters() {
    let (a, b) = (param(&[1.0]), param(&[1.0]));
    let mut opt = SGD::new([a.clone()], 0.1);
    let g = opt.add_param_group(
        [b.clone()],
        SgdOptions {
            lr: 0.01,
            ..Default::default()
        },
    );
    assert_eq!(g, 1);
    assert_eq!(opt.lrs(), vec![0.1, 0.01]);
    grad(&a, &[1.0]);
    grad(&b, &[1.0]);
    opt.step();
    assert!((a.to_vec::<f32>()[0] - 0.9).abs() < 1e-7);
    assert!((b.to_vec::<f32>()[0] - 0.99).abs() < 1e-7);
    opt.set_lr(1, 0.5);
    opt.param_groups_mut()[0].options.lr = 0.0;
    opt.step();
    assert!((a.to_vec::<f32>()[0] - 0.9).abs() < 1e-7);
    assert!((b.to_vec::<f32>()[0] - 0.49).abs() < 1e-6);
    assert_eq!(opt.param_groups()[1].params().len(), 1);
    assert_eq!(opt.hyper(1, "lr"), Some(0.5));
    assert_eq!(opt.hyper(0, "momentum"), Some(0.0));
    assert_eq!(opt.hyper(0, "beta1"), None);
    // Through the trait object, as schedulers see it.
    let dynopt: &mut dyn Optimizer = &mut opt;
    assert_eq!(dynopt.num_param_groups(), 2);
    assert!(dynopt.set_hyper(0, "momentum", 0.9));
    assert!(!dynopt.set_hyper(0, "betas", 0.9));
    let c = param(&[0.0]);
    assert_eq!(dynopt.add_param_group_defaults(vec![c]), 2);
    assert_eq!(dynopt.lr(2), 0.1);
}

#[test]
fn zero_grad_drops_or_zeroes() {
    let a = param(&[1.0, 2.0]);
    let mut opt = SGD::new([a.clone()], 0.1);
    grad(&a, &[3.0, 4.0]);
    let g = a.grad().unwrap();
    opt.zero_grad_with(false);
    assert_eq!(a.grad().unwrap().to_vec::<f32>(), vec![0.0, 0.0]);
    assert!(a.grad().unwrap().shares_storage(&g));
    opt.zero_grad();
    assert!(a.grad().is_none());
    opt.zero_grad_with(false); // no grad: nothing to zero
    assert!(a.grad().is_none());
}

#[test]
fn training_a_tiny_model_reduces_the_loss() {
    let w = param(&[0.5, -0.3]);
    let x = Tensor::from_slice(&[1.0f32, 2.0], [2]);
    let y = Tensor::from_slice(&[1.0f32, 2.0], [2]);
    let mut opt = SGD::new([w.clone()], 0.02).momentum(0.9);
    let loss = |w: &Tensor| {
        let d = &(&x * w) - &y;
        (&d * &d).sum()
    };
    let first = loss(&w).item();
    for _ in 0..50 {
        opt.zero_grad();
        loss(&w).backward();
        opt.step();
    }
    assert!(
        loss(&w).item() < first * 0.01,
        "{} -> {}",
        first,
        loss(&w).item()
    );
}

#[test]
fn state_dict_errors_are_reported() {
    let a = param(&[1.0]);
    let mut sgd = SGD::new([a.clone()], 0.1).momentum(0.9);
    grad(&a, &[1.0]);
    sgd.step();
    let mut adam = Adam::new([a.clone()], 0.1);
    assert!(matches!(
        adam.load_state_dict(&sgd.state_dict()),
        Err(OptimError::Mismatch(_))
    ));
    let b = param(&[1.0]);
    let mut two = SGD::new([a.clone(), b], 0.1);
    let e = two.load_state_dict(&sgd.state_dict()).unwrap_err();
    assert!(e.to_string().contains("doesn't match the size"), "{e}");
    let missing =
        StateDict::load(std::env::temp_dir().join("ember-optim-no-such-file.safetensors"));
    assert!(matches!(missing, Err(OptimError::Io(_))));
}

#[test]
fn state_dict_restores_hyperparameters() {
    let a = param(&[1.0]);
    let mut opt = RMSprop::new([a.clone()], 0.1).momentum(0.5).centered(true);
    grad(&a, &[1.0]);
    opt.step();
    let path =
        std::env::temp_dir().join(format!("ember-optim-hp-{}.safetensors", std::process::id()));
    Optimizer::save(&opt, &path).unwrap();
    let mut fresh = RMSprop::new([param(&[1.0])], 1.0);
    Optimizer::load(&mut fresh, &path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        fresh.param_groups()[0].options,
        opt.param_groups()[0].options
    );
    let sd = fresh.state_dict();
    for name in ["square_avg", "momentum_buffer", "grad_avg"] {
        assert!(sd.tensor(&format!("state.0.{name}")).is_some(), "{name}");
    }
}

#[test]
#[should_panic(expected = "optimizer got an empty parameter list")]
fn empty_parameter_list_panics() {
    SGD::new(Vec::<Tensor>::new(), 0.1);
}

#[test]
#[should_panic(expected = "Invalid learning rate: -1")]
fn negative_lr_panics() {
    Adam::new([param(&[1.0])], -1.0);
}

#[test]
#[should_panic(expected = "Invalid beta parameter at index 1: 1")]
fn bad_beta_panics() {
    Adam::new([param(&[1.0])], 0.1).betas(0.9, 1.0);
}

#[test]
#[should_panic(expected = "Nesterov momentum requires a momentum and zero dampening")]
fn nesterov_without_momentum_panics() {
    let a = param(&[1.0]);
    let mut opt = SGD::new([a.clone()], 0.1).nesterov(true);
    grad(&a, &[1.0]);
    opt.step();
}

#[test]
#[should_panic(expected = "some parameters appear in more than one parameter group")]
fn duplicate_parameters_panic() {
    let a = param(&[1.0]);
    let mut opt = SGD::new([a.clone()], 0.1);
    opt.add_param_group([a], SgdOptions::default());
}

#[test]
fn clip_grad_norm_scales_like_pytorch() {
    let (a, b, c) = (param(&[0.0, 0.0]), param(&[0.0]), param(&[0.0]));
    grad(&a, &[3.0, 0.0]);
    grad(&b, &[-4.0]);
    // c has no grad: ignored
    let params = vec![a.clone(), b.clone(), c.clone()];
    let total = clip_grad_norm_(&params, 1.0, 2.0);
    assert_eq!(total.item(), 5.0);
    let coef = 1.0f32 / (5.0f32 + 1e-6);
    assert_eq!(a.grad().unwrap().to_vec::<f32>(), vec![3.0 * coef, 0.0]);
    assert_eq!(b.grad().unwrap().to_vec::<f32>(), vec![-4.0 * coef]);
    assert!(c.grad().is_none());
    // Below the limit nothing changes; the inf-norm is the largest magnitude.
    grad(&a, &[0.3, 0.1]);
    grad(&b, &[-0.4]);
    assert!((clip_grad_norm_(&params, 10.0, f64::INFINITY).item() - 0.4).abs() < 1e-7);
    assert_eq!(a.grad().unwrap().to_vec::<f32>(), vec![0.3, 0.1]);
    let total = clip_grad_norm_(&params, 0.2, 1.0).item();
    assert!((total - 0.8).abs() < 1e-6);
    let s: f32 = [
        a.grad().unwrap().to_vec::<f32>(),
        b.grad().unwrap().to_vec::<f32>(),
    ]
    .concat()
    .iter()
    .map(|x| x.abs())
    .sum();
    assert!((s - 0.2).abs() < 1e-5);
    assert_eq!(clip_grad_norm_(&[c], 1.0, 2.0).item(), 0.0);
}

#[test]
fn clip_grad_value_clamps() {
    let a = param(&[0.0, 0.0, 0.0]);
    grad(&a, &[-2.0, 0.25, 7.0]);
    clip_grad_value_([a.clone()], 0.5);
    assert_eq!(a.grad().unwrap().to_vec::<f32>(), vec![-0.5, 0.25, 0.5]);
}
