//! The `Optimizer` trait, parameter groups, and the machinery every optimizer shares: per-parameter
//! state, `zero_grad`, hyper-parameters by name, and `state_dict` / `load_state_dict`.

use crate::state_dict::{OptimError, StateDict};
use ember_autograd::{no_grad, Tensor};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::fmt::Debug;
use std::path::Path;

/// What every optimizer does (PyTorch's `torch.optim.Optimizer`). Object safe, so schedulers
/// take `&mut dyn Optimizer`.
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_optim::{Optimizer, SGD};
/// let w = Tensor::from_slice(&[1.0f32, 2.0], [2]).requires_grad_(true);
/// let mut opt = SGD::new([w.clone()], 0.1);
/// (&w * &w).sum().backward(); // grad = 2w
/// opt.step();
/// assert_eq!(w.to_vec::<f32>(), vec![0.8, 1.6]);
/// opt.zero_grad();
/// assert!(w.grad().is_none());
/// ```
pub trait Optimizer {
    /// PyTorch's class name (`"SGD"`, `"Adam"`, …).
    fn name(&self) -> &'static str;

    /// One update of every parameter that has a gradient (parameters whose grad is `None` are
    /// skipped), in place and without recording.
    fn step(&mut self);

    /// Clears the gradients: `set_to_none` drops them (PyTorch's default), otherwise they are
    /// zeroed in place.
    fn zero_grad_with(&mut self, set_to_none: bool);

    /// Drops every parameter's gradient (PyTorch's `zero_grad()`, `set_to_none=True`).
    fn zero_grad(&mut self) {
        self.zero_grad_with(true);
    }

    /// Number of parameter groups.
    fn num_param_groups(&self) -> usize;

    /// The parameters of group `group`.
    fn group_params(&self, group: usize) -> &[Tensor];

    /// Adds a group of parameters with the optimizer's default hyper-parameters; returns its index.
    fn add_param_group_defaults(&mut self, params: Vec<Tensor>) -> usize;

    /// Hyper-parameter `name` of group `group` (`"lr"`, `"momentum"`, `"beta1"`, `"eps"`, …;
    /// booleans read as 0 or 1), or `None` when this optimizer has no such hyper-parameter.
    fn hyper(&self, group: usize, name: &str) -> Option<f64>;

    /// Sets hyper-parameter `name` of group `group`; false when there is no such hyper-parameter.
    fn set_hyper(&mut self, group: usize, name: &str, value: f64) -> bool;

    /// The learning rate of group `group`.
    fn lr(&self, group: usize) -> f64 {
        self.hyper(group, "lr").expect("every optimizer has an lr")
    }

    /// Sets the learning rate of group `group`.
    fn set_lr(&mut self, group: usize, lr: f64) {
        self.set_hyper(group, "lr", lr);
    }

    /// The learning rate of every group.
    fn lrs(&self) -> Vec<f64> {
        (0..self.num_param_groups()).map(|g| self.lr(g)).collect()
    }

    /// The group's `initial_lr` (set by the first scheduler attached, as in PyTorch).
    fn initial_lr(&self, group: usize) -> Option<f64>;

    /// Sets the group's `initial_lr`.
    fn set_initial_lr(&mut self, group: usize, lr: f64);

    /// The optimizer's state (per-parameter buffers and step counts) and its groups'
    /// hyper-parameters. Tensors are copies: later steps do not change them.
    fn state_dict(&self) -> StateDict;

    /// Restores a state saved by [`Optimizer::state_dict`] of the same optimizer class over
    /// parameters of the same groups and shapes. Continuing after this is bit-for-bit the same as
    /// never having stopped.
    fn load_state_dict(&mut self, sd: &StateDict) -> Result<(), OptimError>;

    /// Saves [`Optimizer::state_dict`] to a safetensors file (atomically).
    fn save(&self, path: &Path) -> Result<(), OptimError> {
        self.state_dict().save(path)
    }

    /// Loads a file written by [`Optimizer::save`] and restores it.
    fn load(&mut self, path: &Path) -> Result<(), OptimError> {
        let sd = StateDict::load(path)?;
        self.load_state_dict(&sd)
    }
}

/// One optimizer's hyper-parameters, readable and writable by name (how schedulers reach them)
/// and saved as JSON in the state_dict.
pub trait Hyperparams: Clone + Debug + Serialize + DeserializeOwned {
    /// The value of `name` (booleans as 0 or 1), or `None` when there is no such field.
    fn get(&self, name: &str) -> Option<f64>;
    /// Sets `name`; false when there is no such field.
    fn set(&mut self, name: &str, value: f64) -> bool;
    /// Panics with PyTorch's message when a value is out of range.
    fn validate(&self);
}

/// A group of parameters sharing hyper-parameters (`optimizer.param_groups[i]` in PyTorch).
#[derive(Clone, Debug)]
pub struct ParamGroup<O> {
    params: Vec<Tensor>,
    /// The group's hyper-parameters; change them freely between steps.
    pub options: O,
    /// The learning rate the first scheduler found (PyTorch's `group["initial_lr"]`).
    pub initial_lr: Option<f64>,
}

impl<O> ParamGroup<O> {
    /// The group's parameters.
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }
}

/// Per-parameter state: the step count and up to three buffers (named by the algorithm).
#[derive(Clone, Debug, Default)]
pub(crate) struct ParamState {
    pub step: u64,
    pub bufs: [Option<Tensor>; 3],
}

impl ParamState {
    fn is_empty(&self) -> bool {
        self.step == 0 && self.bufs.iter().all(Option::is_none)
    }
}

/// A zero-filled contiguous buffer with `p`'s shape, dtype and device.
pub(crate) fn zeros_for(p: &Tensor) -> Tensor {
    p.zeros_like()
}

/// One optimization algorithm: its options and its per-parameter update.
pub(crate) trait Algorithm {
    /// PyTorch's class name.
    const NAME: &'static str;
    /// Names of the state buffers, in `ParamState::bufs` order.
    const BUFFERS: &'static [&'static str];
    /// Whether the state has a step count.
    const HAS_STEP: bool;
    /// The hyper-parameters.
    type Options: Hyperparams;
    /// Checks hyper-parameter combinations before a step (single values are checked when set).
    fn check(_o: &Self::Options) {}
    /// Updates `p` in place from `g` (called under no-grad, only for parameters with a grad).
    fn update(p: &Tensor, g: &Tensor, o: &Self::Options, st: &mut ParamState);
}

/// The shared body of every optimizer.
pub(crate) struct Core<A: Algorithm> {
    pub defaults: A::Options,
    pub groups: Vec<ParamGroup<A::Options>>,
    pub state: Vec<Vec<ParamState>>,
}

impl<A: Algorithm> Core<A> {
    pub fn new(params: impl IntoIterator<Item = Tensor>, defaults: A::Options) -> Self {
        defaults.validate();
        let mut core = Core {
            defaults: defaults.clone(),
            groups: Vec::new(),
            state: Vec::new(),
        };
        let params: Vec<Tensor> = params.into_iter().collect();
        if params.is_empty() {
            panic!("optimizer got an empty parameter list");
        }
        core.add_group(params, defaults);
        core
    }

    pub fn add_group(&mut self, params: Vec<Tensor>, options: A::Options) -> usize {
        options.validate();
        for (i, p) in params.iter().enumerate() {
            if !p.is_leaf() {
                panic!("can't optimize a non-leaf Tensor");
            }
            let same = |q: &Tensor| q.shares_storage(p) && q.layout() == p.layout();
            if params[..i].iter().any(same) || self.groups.iter().any(|g| g.params.iter().any(same))
            {
                panic!("some parameters appear in more than one parameter group");
            }
        }
        self.state
            .push((0..params.len()).map(|_| ParamState::default()).collect());
        self.groups.push(ParamGroup {
            params,
            options,
            initial_lr: None,
        });
        self.groups.len() - 1
    }

    /// Applies `f` to the defaults and to every group's options (builder methods).
    pub fn set_all(&mut self, f: impl Fn(&mut A::Options)) {
        f(&mut self.defaults);
        self.defaults.validate();
        for g in &mut self.groups {
            f(&mut g.options);
            g.options.validate();
        }
    }

    pub fn step(&mut self) {
        let _guard = no_grad();
        for (group, states) in self.groups.iter().zip(&mut self.state) {
            A::check(&group.options);
            for (p, st) in group.params.iter().zip(states.iter_mut()) {
                if let Some(g) = p.grad() {
                    A::update(p, &g, &group.options, st);
                }
            }
        }
    }

    pub fn zero_grad(&mut self, set_to_none: bool) {
        let _guard = no_grad();
        for p in self.groups.iter().flat_map(|g| &g.params) {
            if set_to_none {
                p.set_grad(None);
            } else if let Some(g) = p.grad() {
                if g.grad_fn().is_some() {
                    // PyTorch's grad.detach_() before zeroing a grad that is part of a graph.
                    let d = g.detach();
                    d.zero_();
                    p.set_grad(Some(d));
                } else {
                    g.zero_();
                }
            }
        }
    }

    fn group(&self, group: usize) -> &ParamGroup<A::Options> {
        self.groups.get(group).unwrap_or_else(|| {
            panic!(
                "param group {group} is out of range: the optimizer has {} groups",
                self.groups.len()
            )
        })
    }

    pub fn group_params(&self, group: usize) -> &[Tensor] {
        &self.group(group).params
    }

    pub fn hyper(&self, group: usize, name: &str) -> Option<f64> {
        self.group(group).options.get(name)
    }

    pub fn set_hyper(&mut self, group: usize, name: &str, value: f64) -> bool {
        self.group(group);
        let o = &mut self.groups[group].options;
        let ok = o.set(name, value);
        o.validate();
        ok
    }

    pub fn initial_lr(&self, group: usize) -> Option<f64> {
        self.group(group).initial_lr
    }

    pub fn set_initial_lr(&mut self, group: usize, lr: f64) {
        self.group(group);
        self.groups[group].initial_lr = Some(lr);
    }

    pub fn state_dict(&self) -> StateDict {
        let _guard = no_grad();
        let mut tensors = Vec::new();
        let mut state = Map::new();
        let mut groups = Vec::new();
        let mut idx = 0usize;
        for (group, states) in self.groups.iter().zip(&self.state) {
            let first = idx;
            for st in states {
                if !st.is_empty() {
                    let mut entry = Map::new();
                    if A::HAS_STEP {
                        entry.insert("step".into(), json!(st.step));
                    }
                    let mut names = Vec::new();
                    for (b, name) in st.bufs.iter().zip(A::BUFFERS) {
                        if let Some(t) = b {
                            tensors.push((format!("state.{idx}.{name}"), t.copy()));
                            names.push(json!(name));
                        }
                    }
                    entry.insert("buffers".into(), Value::Array(names));
                    state.insert(idx.to_string(), Value::Object(entry));
                }
                idx += 1;
            }
            groups.push(json!({
                "options": serde_json::to_value(&group.options).expect("options serialize"),
                "initial_lr": group.initial_lr,
                "params": (first..idx).collect::<Vec<_>>(),
            }));
        }
        StateDict {
            tensors,
            metadata: json!({
                "optimizer": A::NAME,
                "param_groups": groups,
                "state": state,
            }),
        }
    }

    pub fn load_state_dict(&mut self, sd: &StateDict) -> Result<(), OptimError> {
        let bad = |m: String| Err(OptimError::Mismatch(m));
        let meta = &sd.metadata;
        let name = meta["optimizer"].as_str().unwrap_or("?");
        if name != A::NAME {
            return bad(format!(
                "the state_dict is from a {name} optimizer, not {}",
                A::NAME
            ));
        }
        let Some(groups) = meta["param_groups"].as_array() else {
            return bad("the state_dict has no param_groups".into());
        };
        if groups.len() != self.groups.len() {
            return bad(format!(
                "loaded state dict has {} parameter groups but the optimizer has {}",
                groups.len(),
                self.groups.len()
            ));
        }
        let mut options = Vec::new();
        for (i, (g, mine)) in groups.iter().zip(&self.groups).enumerate() {
            let n = g["params"].as_array().map_or(0, Vec::len);
            if n != mine.params.len() {
                return bad(format!("loaded state dict contains a parameter group that doesn't match the size of optimizer's group (group {i}: {n} vs {})", mine.params.len()));
            }
            let o: A::Options = serde_json::from_value(g["options"].clone())
                .map_err(|e| OptimError::Format(format!("param group {i} options: {e}")))?;
            options.push((o, g["initial_lr"].as_f64()));
        }
        // Build the whole new state before touching self, so a failed load changes nothing.
        let mut new_state = Vec::new();
        let empty = Map::new();
        let st_meta = meta["state"].as_object().unwrap_or(&empty);
        let mut idx = 0usize;
        for group in &self.groups {
            let mut states = Vec::new();
            for p in &group.params {
                let mut st = ParamState::default();
                if let Some(entry) = st_meta.get(&idx.to_string()) {
                    st.step = entry["step"].as_u64().unwrap_or(0);
                    for (k, name) in A::BUFFERS.iter().enumerate() {
                        let key = format!("state.{idx}.{name}");
                        let Some((_, t)) = sd.tensors.iter().find(|(n, _)| *n == key) else {
                            continue;
                        };
                        if t.shape() != p.shape() {
                            return bad(format!(
                                "state '{key}' has shape {:?} but the parameter has shape {:?}",
                                t.shape(),
                                p.shape()
                            ));
                        }
                        let _guard = no_grad();
                        // A private copy in the parameter's dtype and device (as PyTorch casts
                        // floating state to the parameter's dtype).
                        let t = t.to_device(p.device()).to_dtype(p.dtype()).copy();
                        st.bufs[k] = Some(t);
                    }
                }
                states.push(st);
                idx += 1;
            }
            new_state.push(states);
        }
        for (group, (o, init)) in self.groups.iter_mut().zip(options) {
            o.validate();
            group.options = o;
            group.initial_lr = init;
        }
        self.state = new_state;
        Ok(())
    }
}

/// Implements `Optimizer` and the shared inherent methods for an optimizer struct wrapping
/// `core: Core<$algo>`.
macro_rules! optimizer_impl {
    ($ty:ident, $algo:ty, $opts:ty) => {
        impl $ty {
            /// One update of every parameter that has a gradient (see [`Optimizer::step`]).
            pub fn step(&mut self) {
                self.core.step()
            }

            /// Drops every parameter's gradient (PyTorch's default `set_to_none=True`).
            pub fn zero_grad(&mut self) {
                self.core.zero_grad(true)
            }

            /// Clears gradients, dropping them or zeroing them in place.
            pub fn zero_grad_with(&mut self, set_to_none: bool) {
                self.core.zero_grad(set_to_none)
            }

            /// The parameter groups (PyTorch's `optimizer.param_groups`).
            pub fn param_groups(&self) -> &[ParamGroup<$opts>] {
                &self.core.groups
            }

            /// The parameter groups, to change their hyper-parameters between steps.
            pub fn param_groups_mut(&mut self) -> &mut [ParamGroup<$opts>] {
                &mut self.core.groups
            }

            /// The defaults that new groups start from.
            pub fn defaults(&self) -> &$opts {
                &self.core.defaults
            }

            /// Adds a group of parameters with its own hyper-parameters; returns its index.
            pub fn add_param_group(
                &mut self,
                params: impl IntoIterator<Item = Tensor>,
                options: $opts,
            ) -> usize {
                self.core.add_group(params.into_iter().collect(), options)
            }

            /// The learning rate of group `group`.
            pub fn lr(&self, group: usize) -> f64 {
                Optimizer::lr(self, group)
            }

            /// Sets the learning rate of group `group`.
            pub fn set_lr(&mut self, group: usize, lr: f64) {
                Optimizer::set_lr(self, group, lr)
            }

            /// See [`Optimizer::state_dict`].
            pub fn state_dict(&self) -> StateDict {
                self.core.state_dict()
            }

            /// See [`Optimizer::load_state_dict`].
            pub fn load_state_dict(&mut self, sd: &StateDict) -> Result<(), OptimError> {
                self.core.load_state_dict(sd)
            }
        }

        impl Optimizer for $ty {
            fn name(&self) -> &'static str {
                <$algo as Algorithm>::NAME
            }
            fn step(&mut self) {
                self.core.step()
            }
            fn zero_grad_with(&mut self, set_to_none: bool) {
                self.core.zero_grad(set_to_none)
            }
            fn num_param_groups(&self) -> usize {
                self.core.groups.len()
            }
            fn group_params(&self, group: usize) -> &[Tensor] {
                self.core.group_params(group)
            }
            fn add_param_group_defaults(&mut self, params: Vec<Tensor>) -> usize {
                let o = self.core.defaults.clone();
                self.core.add_group(params, o)
            }
            fn hyper(&self, group: usize, name: &str) -> Option<f64> {
                self.core.hyper(group, name)
            }
            fn set_hyper(&mut self, group: usize, name: &str, value: f64) -> bool {
                self.core.set_hyper(group, name, value)
            }
            fn initial_lr(&self, group: usize) -> Option<f64> {
                self.core.initial_lr(group)
            }
            fn set_initial_lr(&mut self, group: usize, lr: f64) {
                self.core.set_initial_lr(group, lr)
            }
            fn state_dict(&self) -> StateDict {
                self.core.state_dict()
            }
            fn load_state_dict(&mut self, sd: &StateDict) -> Result<(), OptimError> {
                self.core.load_state_dict(sd)
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct(stringify!($ty));
                for (i, g) in self.core.groups.iter().enumerate() {
                    d.field(&format!("group{i}"), &g.options);
                }
                d.finish()
            }
        }
    };
}
pub(crate) use optimizer_impl;

/// Implements `Hyperparams::get`/`set` over named f64 and bool fields.
macro_rules! hyper_fields {
    (f64: [$($f:ident),*], bool: [$($b:ident),*]) => {
        fn get(&self, name: &str) -> Option<f64> {
            match name {
                $(stringify!($f) => Some(self.$f),)*
                $(stringify!($b) => Some(self.$b as u8 as f64),)*
                _ => None,
            }
        }
        fn set(&mut self, name: &str, value: f64) -> bool {
            match name {
                $(stringify!($f) => self.$f = value,)*
                $(stringify!($b) => self.$b = value != 0.0,)*
                _ => return false,
            }
            true
        }
    };
}
pub(crate) use hyper_fields;

/// PyTorch's range checks: `$v >= 0` (`Invalid {what} value: {v}` otherwise).
pub(crate) fn check_nonneg(what: &str, v: f64) {
    if v.is_nan() || v < 0.0 {
        if what == "learning rate" {
            panic!("Invalid learning rate: {v}");
        }
        panic!("Invalid {what} value: {v}");
    }
}
