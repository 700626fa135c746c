//! Every scheduler's `state_dict` lets a run resume mid-schedule: stepping k times, saving the
//! optimizer and scheduler, and continuing in fresh objects gives the same learning rates, bit for
//! bit, as never stopping.

use ember_autograd::Tensor;
use ember_optim::lr_scheduler::*;
use ember_optim::{Adam, Optimizer, SGD};
use serde_json::Value;

type Build = fn(&mut dyn Optimizer) -> Box<dyn LRScheduler>;

fn sgd() -> SGD {
    SGD::new([Tensor::zeros([2]).requires_grad_(true)], 0.1).momentum(0.9)
}

/// `total` steps, interrupted after `stop` of them: the state crosses a JSON string as it would
/// through a checkpoint file.
fn resume_matches_straight(name: &str, build: Build, total: usize, stop: usize) {
    let mut opt = sgd();
    let mut sched = build(&mut opt);
    let mut straight = Vec::new();
    for _ in 0..total {
        opt.step();
        sched.step(&mut opt);
        straight.push(sched.get_last_lr()[0]);
    }

    let mut opt = sgd();
    let mut sched = build(&mut opt);
    let mut resumed = Vec::new();
    for _ in 0..stop {
        opt.step();
        sched.step(&mut opt);
        resumed.push(sched.get_last_lr()[0]);
    }
    let (opt_state, sched_state) = (opt.state_dict(), sched.state_dict().to_string());
    let state: Value = serde_json::from_str(&sched_state).unwrap();
    assert_eq!(state["last_epoch"], Value::from(stop as i64), "{name}");
    assert!(state.get("_last_lr").is_some() && state.get("base_lrs").is_some());

    let mut opt = sgd();
    let mut sched = build(&mut opt);
    opt.load_state_dict(&opt_state).unwrap();
    sched.load_state_dict(&state).unwrap();
    for _ in stop..total {
        opt.step();
        sched.step(&mut opt);
        resumed.push(sched.get_last_lr()[0]);
    }
    assert_eq!(
        straight.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        resumed.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        "{name}: {straight:?} vs {resumed:?}"
    );
}

#[test]
fn every_epoch_scheduler_resumes_mid_schedule() {
    let cases: [(&str, Build); 6] = [
        ("StepLR", |o| Box::new(StepLR::new(o, 3, 0.5))),
        ("MultiStepLR", |o| {
            Box::new(MultiStepLR::new(o, &[2, 5, 5], 0.3))
        }),
        ("ExponentialLR", |o| Box::new(ExponentialLR::new(o, 0.9))),
        ("CosineAnnealingLR", |o| {
            Box::new(CosineAnnealingLR::new(o, 7, 0.001))
        }),
        ("LinearLR", |o| Box::new(LinearLR::new(o, 0.25, 1.0, 6))),
        ("OneCycleLR", |o| {
            Box::new(OneCycleLR::with_options(
                o,
                &[1.0],
                12,
                OneCycleOptions {
                    three_phase: true,
                    ..OneCycleOptions::default()
                },
            ))
        }),
    ];
    for (name, build) in cases {
        for stop in [0, 1, 5, 11] {
            resume_matches_straight(name, build, 12, stop);
        }
    }
}

#[test]
fn one_cycle_state_keeps_the_cycled_momentum_key() {
    let mut opt = Adam::new([Tensor::zeros([2]).requires_grad_(true)], 0.01);
    let mut sched = OneCycleLR::new(&mut opt, 0.1, 10);
    sched.step(&mut opt);
    let state = sched.state_dict();
    assert_eq!(state["use_beta1"], Value::Bool(true));
    assert_eq!(state["anneal_strategy"], Value::from("cos"));
    let mut other = Adam::new([Tensor::zeros([2]).requires_grad_(true)], 0.01);
    let mut again = OneCycleLR::new(&mut other, 0.5, 3);
    again.load_state_dict(&state).unwrap();
    assert_eq!(again.state_dict(), state);
}

#[test]
fn plateau_resumes_with_its_best_value_even_when_infinite() {
    let metrics = [
        1.0, 0.9, 0.95, 0.97, 0.99, 0.98, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
    ];
    let opts = || PlateauOptions {
        patience: 1,
        cooldown: 1,
        ..PlateauOptions::default()
    };
    let run = |stop: usize| {
        let mut opt = sgd();
        let mut sched = ReduceLROnPlateau::new(&mut opt, opts());
        let mut lrs = Vec::new();
        for &m in &metrics[..stop] {
            sched.step(&mut opt, m);
            lrs.push(opt.lrs()[0]);
        }
        let (os, ss) = (opt.state_dict(), sched.state_dict().to_string());
        let mut opt = sgd();
        let mut sched = ReduceLROnPlateau::new(&mut opt, opts());
        opt.load_state_dict(&os).unwrap();
        sched
            .load_state_dict(&serde_json::from_str(&ss).unwrap())
            .unwrap();
        for &m in &metrics[stop..] {
            sched.step(&mut opt, m);
            lrs.push(opt.lrs()[0]);
        }
        lrs
    };
    let straight = run(metrics.len());
    for stop in [0, 3, 7] {
        assert_eq!(run(stop), straight, "stopped after {stop}");
    }
    // Before any metric the best is +inf: stored as a string JSON can hold.
    let mut opt = sgd();
    let fresh = ReduceLROnPlateau::new(&mut opt, opts()).state_dict();
    assert_eq!(fresh["best"], Value::from("inf"));
}

#[test]
fn a_state_for_other_groups_or_another_scheduler_is_refused() {
    let mut opt = sgd();
    let sched = StepLR::new(&mut opt, 2, 0.5);
    let mut state = sched.state_dict();
    state["base_lrs"] = serde_json::json!([0.1, 0.2]);
    let mut other = StepLR::new(&mut opt, 2, 0.5);
    let err = other.load_state_dict(&state).unwrap_err().to_string();
    assert!(
        err.contains("2 parameter groups, this scheduler 1"),
        "{err}"
    );
    let mut cosine = CosineAnnealingLR::new(&mut opt, 5, 0.0);
    let err = cosine
        .load_state_dict(&sched.state_dict())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a CosineAnnealingLR state"), "{err}");
}
