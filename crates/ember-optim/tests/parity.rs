//! Every optimizer trajectory and scheduler LR sequence of `parity/optim.json` and
//! `parity/schedulers.json` (computed by PyTorch) within `parity/README.md`'s tolerances.

use ember_autograd::Tensor;
use ember_optim::lr_scheduler::{
    CosineAnnealingLR, ExponentialLR, LRScheduler, LinearLR, MultiStepLR, OneCycleLR, PlateauMode,
    PlateauOptions, ReduceLROnPlateau, StepLR,
};
use ember_optim::*;
use ember_testkit::{assert_close, cases, reduction_tol, tensor};
use serde_json::Value;

fn f(args: &Value, k: &str) -> Option<f64> {
    args.get(k).and_then(Value::as_f64)
}

fn b(args: &Value, k: &str) -> bool {
    args.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn build(op: &str, args: &Value, params: Vec<Tensor>) -> Box<dyn Optimizer> {
    let lr = f(args, "lr").unwrap();
    match op {
        "SGD" => Box::new(
            SGD::new(params, lr)
                .momentum(f(args, "momentum").unwrap_or(0.0))
                .dampening(f(args, "dampening").unwrap_or(0.0))
                .weight_decay(f(args, "weight_decay").unwrap_or(0.0))
                .nesterov(b(args, "nesterov"))
                .maximize(b(args, "maximize")),
        ),
        "Adam" | "AdamW" => {
            let d = AdamOptions::default();
            let betas = args
                .get("betas")
                .and_then(Value::as_array)
                .map_or(d.betas, |v| {
                    (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
                });
            let o = AdamOptions {
                lr,
                betas,
                eps: f(args, "eps").unwrap_or(d.eps),
                weight_decay: f(args, "weight_decay").unwrap_or(if op == "AdamW" {
                    1e-2
                } else {
                    0.0
                }),
                amsgrad: b(args, "amsgrad"),
                maximize: b(args, "maximize"),
            };
            if op == "Adam" {
                Box::new(Adam::with_options(params, o))
            } else {
                Box::new(AdamW::with_options(params, o))
            }
        }
        "RMSprop" => {
            let d = RMSpropOptions::default();
            Box::new(RMSprop::with_options(
                params,
                RMSpropOptions {
                    lr,
                    alpha: f(args, "alpha").unwrap_or(d.alpha),
                    eps: f(args, "eps").unwrap_or(d.eps),
                    weight_decay: f(args, "weight_decay").unwrap_or(0.0),
                    momentum: f(args, "momentum").unwrap_or(0.0),
                    centered: b(args, "centered"),
                    maximize: b(args, "maximize"),
                },
            ))
        }
        "Adagrad" => {
            let d = AdagradOptions::default();
            Box::new(Adagrad::with_options(
                params,
                AdagradOptions {
                    lr,
                    lr_decay: f(args, "lr_decay").unwrap_or(0.0),
                    weight_decay: f(args, "weight_decay").unwrap_or(0.0),
                    initial_accumulator_value: f(args, "initial_accumulator_value").unwrap_or(0.0),
                    eps: f(args, "eps").unwrap_or(d.eps),
                    maximize: b(args, "maximize"),
                },
            ))
        }
        other => panic!("no optimizer {other}"),
    }
}

#[test]
fn optimizer_trajectories_match_pytorch() {
    let cs = cases("optim");
    assert!(cs.len() >= 13);
    for c in &cs {
        let name = c["name"].as_str().unwrap();
        let params: Vec<Tensor> = c["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| tensor(p).requires_grad_(true))
            .collect();
        let mut opt = build(c["op"].as_str().unwrap(), &c["args"], params.clone());
        let steps = c["grads"].as_array().unwrap();
        for (k, grads) in steps.iter().enumerate() {
            for (p, g) in params.iter().zip(grads.as_array().unwrap()) {
                p.set_grad(Some(tensor(g)));
            }
            opt.step();
            for (i, (p, want)) in params
                .iter()
                .zip(c["after_each_step"][k].as_array().unwrap())
                .enumerate()
            {
                let (atol, rtol) = reduction_tol(p.dtype());
                assert_close(&format!("{name} step {k} param {i}"), p, want, atol, rtol);
            }
        }
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 + 1e-10 * b.abs()
}

#[test]
fn scheduler_sequences_match_pytorch() {
    for c in cases("schedulers") {
        let name = c["name"].as_str().unwrap();
        let args = &c["args"];
        let base_lr = c["base_lr"].as_f64().unwrap();
        let w = Tensor::zeros([2]).requires_grad_(true);
        let mut opt = SGD::new([w.clone()], base_lr);
        let usize_arg = |k: &str| args[k].as_u64().unwrap() as usize;
        let want: Vec<f64> = c["lr_after_each_step"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let mut got = Vec::new();
        if c["op"] == "ReduceLROnPlateau" {
            let o = PlateauOptions {
                mode: if args["mode"] == "max" {
                    PlateauMode::Max
                } else {
                    PlateauMode::Min
                },
                factor: f(args, "factor").unwrap(),
                patience: usize_arg("patience"),
                ..Default::default()
            };
            let mut s = ReduceLROnPlateau::new(&mut opt, o);
            for m in c["metrics"].as_array().unwrap() {
                w.set_grad(Some(Tensor::ones([2])));
                opt.step();
                s.step(&mut opt, m.as_f64().unwrap());
                got.push(s.get_last_lr()[0]);
                assert_eq!(s.get_last_lr()[0], opt.lr(0));
            }
        } else {
            let mut s: Box<dyn LRScheduler> = match c["op"].as_str().unwrap() {
                "StepLR" => Box::new(StepLR::new(
                    &mut opt,
                    usize_arg("step_size"),
                    f(args, "gamma").unwrap(),
                )),
                "MultiStepLR" => {
                    let ms: Vec<usize> = args["milestones"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_u64().unwrap() as usize)
                        .collect();
                    Box::new(MultiStepLR::new(&mut opt, &ms, f(args, "gamma").unwrap()))
                }
                "ExponentialLR" => {
                    Box::new(ExponentialLR::new(&mut opt, f(args, "gamma").unwrap()))
                }
                "CosineAnnealingLR" => Box::new(CosineAnnealingLR::new(
                    &mut opt,
                    usize_arg("T_max"),
                    f(args, "eta_min").unwrap_or(0.0),
                )),
                "LinearLR" => Box::new(LinearLR::new(
                    &mut opt,
                    f(args, "start_factor").unwrap(),
                    f(args, "end_factor").unwrap(),
                    usize_arg("total_iters"),
                )),
                "OneCycleLR" => Box::new(OneCycleLR::new(
                    &mut opt,
                    f(args, "max_lr").unwrap(),
                    usize_arg("total_steps"),
                )),
                other => panic!("no scheduler {other}"),
            };
            for _ in 0..want.len() {
                w.set_grad(Some(Tensor::ones([2])));
                opt.step();
                s.step(&mut opt);
                got.push(s.get_last_lr()[0]);
                assert_eq!(s.get_last_lr()[0], opt.lr(0));
            }
        }
        assert_eq!(got.len(), want.len(), "{name}");
        for (k, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!(close(*g, *e), "{name}: step {k}: lr {g}, PyTorch {e}");
        }
    }
}
