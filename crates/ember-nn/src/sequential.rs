//! `Sequential`: modules applied one after the other, built with `add` (children named `0`,
//! `1`, …) or `add_named` / `from_named` (PyTorch's `nn.Sequential(OrderedDict(...))`), reached
//! by position (`model[0]`) or by name (`model["fc1"]`).

use crate::module::{Module, ModuleVisit, TrainFlag, Visitor, VisitorMut};
use ember_autograd::Tensor;
use std::any::Any;
use std::ops::{Index, IndexMut};

/// A chain of modules (`nn.Sequential`): `forward` feeds each module's output to the next.
/// Children added with [`Sequential::add`] are named by position (`0`, `1`, …, so parameters are
/// `0.weight`, `2.bias`); children added with [`Sequential::add_named`] or
/// [`Sequential::from_named`] keep their names (`fc1.weight`), as
/// `nn.Sequential(OrderedDict([...]))` does.
///
/// `model[i]` and `model["fc1"]` are `&dyn Module`: `model[0].weight()` reaches a parameter by
/// name, and `model.get::<Linear>(0)` / `model.get::<Linear>("fc1")` (or
/// `model[0].downcast_ref::<Linear>()`) give the concrete layer.
///
/// ```
/// use ember_nn::{self as nn, Module};
/// let model = nn::Sequential::new()
///     .add(nn::Linear::new(784, 128)).add(nn::ReLU)
///     .add(nn::Linear::new(128, 64)).add(nn::ReLU)
///     .add(nn::Linear::new(64, 10)).add(nn::LogSoftmax::new(1));
/// assert_eq!(model.len(), 6);
/// assert_eq!(model[0].weight().shape(), &[128, 784]);
/// assert_eq!(model.get::<nn::Linear>(4).unwrap().out_features, 10);
/// assert_eq!(model.named_parameters()[2].0, "2.weight");
///
/// // nn.Sequential(OrderedDict([('fc1', nn.Linear(4, 3)), ('relu1', nn.ReLU()), ...]))
/// let named = nn::Sequential::new()
///     .add_named("fc1", nn::Linear::new(4, 3))
///     .add_named("relu1", nn::ReLU)
///     .add_named("fc2", nn::Linear::new(3, 2));
/// assert_eq!(named["fc2"].weight().shape(), &[2, 3]);
/// assert_eq!(named.get::<nn::Linear>("fc1").unwrap().in_features, 4);
/// assert_eq!(named.state_dict()[0].0, "fc1.weight");
/// assert_eq!(
///     named.to_string(),
///     "Sequential(\n  (fc1): Linear(in_features=4, out_features=3, bias=True)\n  (relu1): ReLU()\n  \
///      (fc2): Linear(in_features=3, out_features=2, bias=True)\n)"
/// );
/// ```
#[derive(Default)]
pub struct Sequential {
    layers: Vec<(String, Box<dyn Module>)>,
    training: TrainFlag,
}

/// How a module of a [`Sequential`] is picked: by position (`usize`) or by name (`&str`).
pub trait SequentialKey {
    /// The position of the module this key picks, if there is one.
    fn position(&self, seq: &Sequential) -> Option<usize>;
    /// The panic message when the key picks nothing (PyTorch's wording).
    fn missing(&self, seq: &Sequential) -> String;
}

impl SequentialKey for usize {
    fn position(&self, seq: &Sequential) -> Option<usize> {
        (*self < seq.len()).then_some(*self)
    }
    fn missing(&self, seq: &Sequential) -> String {
        format!(
            "Sequential: index {self} is out of range for {} modules",
            seq.len()
        )
    }
}

impl SequentialKey for &str {
    fn position(&self, seq: &Sequential) -> Option<usize> {
        seq.layers.iter().position(|(n, _)| n == self)
    }
    fn missing(&self, seq: &Sequential) -> String {
        let names: Vec<&str> = seq.names().collect();
        format!("'Sequential' object has no attribute '{self}' (its modules are named {names:?})")
    }
}

impl Sequential {
    /// An empty chain (its forward is the identity).
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// A chain of named modules, in order (`nn.Sequential(OrderedDict([...]))`).
    ///
    /// ```
    /// use ember_nn::{self as nn, Module};
    /// let model = nn::Sequential::from_named([
    ///     ("fc1", Box::new(nn::Linear::new(4, 3)) as Box<dyn Module>),
    ///     ("relu1", Box::new(nn::ReLU)),
    /// ]);
    /// assert_eq!(model.names().collect::<Vec<_>>(), ["fc1", "relu1"]);
    /// ```
    #[track_caller]
    pub fn from_named<N: Into<String>>(
        modules: impl IntoIterator<Item = (N, Box<dyn Module>)>,
    ) -> Sequential {
        let mut s = Sequential::new();
        for (name, m) in modules {
            s.insert_named(name.into(), m);
        }
        s
    }

    /// Appends `module`, named by its position (builder form: `Sequential::new().add(a).add(b)`,
    /// PyTorch's `append`).
    #[allow(clippy::should_implement_trait)]
    pub fn add<M: Module>(mut self, module: M) -> Sequential {
        self.push(module);
        self
    }

    /// Appends `module` under `name` (builder form, PyTorch's `add_module`): parameters are then
    /// named `name.weight`, … A name already present replaces that module in its position, as
    /// PyTorch does; a name containing `.` or an empty name panics with PyTorch's message.
    #[track_caller]
    pub fn add_named<M: Module>(mut self, name: impl Into<String>, module: M) -> Sequential {
        self.insert_named(name.into(), Box::new(module));
        self
    }

    /// Appends `module` in place, named by its position.
    pub fn push<M: Module>(&mut self, module: M) {
        self.push_boxed(Box::new(module));
    }

    /// Appends an already boxed module, named by its position.
    pub fn push_boxed(&mut self, module: Box<dyn Module>) {
        let name = self.layers.len().to_string();
        self.insert_named(name, module);
    }

    /// Appends (or replaces, when `name` is taken) a named module in place.
    #[track_caller]
    pub fn push_named(&mut self, name: impl Into<String>, module: Box<dyn Module>) {
        self.insert_named(name.into(), module);
    }

    #[track_caller]
    fn insert_named(&mut self, name: String, module: Box<dyn Module>) {
        if name.contains('.') {
            panic!("module name can't contain \".\", got: {name}");
        }
        if name.is_empty() {
            panic!("module name can't be empty string \"\"");
        }
        match self.layers.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = module,
            None => self.layers.push((name, module)),
        }
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when there are no modules.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The modules in order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Module> + '_ {
        self.layers.iter().map(|(_, m)| &**m)
    }

    /// The modules' names in order (`"0"`, `"1"`, … for unnamed ones).
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.layers.iter().map(|(n, _)| n.as_str())
    }

    /// The module at a position or with a name, as its concrete type, if it is a `T`
    /// (`model.get::<Linear>(0)`, `model.get::<Linear>("fc1")`).
    pub fn get<T: Module>(&self, key: impl SequentialKey) -> Option<&T> {
        let i = key.position(self)?;
        self.layers[i].1.as_any().downcast_ref::<T>()
    }

    /// The module at a position or with a name, mutably as its concrete type, if it is a `T`.
    pub fn get_mut<T: Module>(&mut self, key: impl SequentialKey) -> Option<&mut T> {
        let i = key.position(self)?;
        self.layers[i].1.as_any_mut().downcast_mut::<T>()
    }

    #[track_caller]
    fn position_of(&self, key: impl SequentialKey) -> usize {
        match key.position(self) {
            Some(i) => i,
            None => panic!("{}", key.missing(self)),
        }
    }
}

impl Index<usize> for Sequential {
    type Output = dyn Module;
    #[track_caller]
    fn index(&self, index: usize) -> &(dyn Module + 'static) {
        &*self.layers[self.position_of(index)].1
    }
}

impl Index<&str> for Sequential {
    type Output = dyn Module;
    #[track_caller]
    fn index(&self, name: &str) -> &(dyn Module + 'static) {
        &*self.layers[self.position_of(name)].1
    }
}

impl IndexMut<usize> for Sequential {
    #[track_caller]
    fn index_mut(&mut self, index: usize) -> &mut (dyn Module + 'static) {
        let i = self.position_of(index);
        &mut *self.layers[i].1
    }
}

impl IndexMut<&str> for Sequential {
    #[track_caller]
    fn index_mut(&mut self, name: &str) -> &mut (dyn Module + 'static) {
        let i = self.position_of(name);
        &mut *self.layers[i].1
    }
}

impl<'a> IntoIterator for &'a Sequential {
    type Item = &'a dyn Module;
    type IntoIter = Box<dyn Iterator<Item = &'a dyn Module> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl ModuleVisit for Sequential {
    fn visit<'a>(&'a self, v: &mut dyn Visitor<'a>) {
        v.flag(&self.training);
        for (name, m) in &self.layers {
            v.module(name, &**m);
        }
    }
    fn visit_mut(&mut self, v: &mut dyn VisitorMut) {
        for (name, m) in &mut self.layers {
            v.module(name, &mut **m);
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn as_module(&self) -> &dyn Module {
        self
    }
    fn type_name(&self) -> &'static str {
        "Sequential"
    }
}

impl Module for Sequential {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        let mut x = input.clone();
        for (_, m) in &self.layers {
            x = m.forward(&x);
        }
        x
    }
}

impl std::fmt::Display for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repr())
    }
}
