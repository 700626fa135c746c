//! `Sequential`: modules applied one after the other, built with `add`, indexed with `model[i]`.

use crate::module::{Module, ModuleVisit, TrainFlag, Visitor, VisitorMut};
use ember_autograd::Tensor;
use std::any::Any;
use std::ops::Index;

/// A chain of modules (`nn.Sequential`): `forward` feeds each module's output to the next.
/// Children are named `0`, `1`, … so parameters are `0.weight`, `2.bias`, as in PyTorch.
///
/// `model[i]` is a `&dyn Module`: `model[0].weight()` reaches a parameter by name, and
/// `model.get::<Linear>(0)` (or `model[0].downcast_ref::<Linear>()`) gives the concrete layer.
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
/// ```
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
    training: TrainFlag,
}

impl Sequential {
    /// An empty chain (its forward is the identity).
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends `module` (builder form: `Sequential::new().add(a).add(b)`).
    pub fn add<M: Module>(mut self, module: M) -> Sequential {
        self.push(module);
        self
    }

    /// Appends `module` in place.
    pub fn push<M: Module>(&mut self, module: M) {
        self.layers.push(Box::new(module));
    }

    /// Appends an already boxed module.
    pub fn push_boxed(&mut self, module: Box<dyn Module>) {
        self.layers.push(module);
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
        self.layers.iter().map(|m| &**m)
    }

    /// Module `index` as its concrete type, if it is a `T`.
    pub fn get<T: Module>(&self, index: usize) -> Option<&T> {
        self.layers.get(index)?.as_any().downcast_ref::<T>()
    }

    /// Module `index` mutably as its concrete type, if it is a `T`.
    pub fn get_mut<T: Module>(&mut self, index: usize) -> Option<&mut T> {
        self.layers.get_mut(index)?.as_any_mut().downcast_mut::<T>()
    }
}

impl Index<usize> for Sequential {
    type Output = dyn Module;
    fn index(&self, index: usize) -> &(dyn Module + 'static) {
        match self.layers.get(index) {
            Some(m) => &**m,
            None => panic!(
                "Sequential: index {index} is out of range for {} modules",
                self.layers.len()
            ),
        }
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
        for (i, m) in self.layers.iter().enumerate() {
            v.module(&i.to_string(), &**m);
        }
    }
    fn visit_mut(&mut self, v: &mut dyn VisitorMut) {
        for (i, m) in self.layers.iter_mut().enumerate() {
            v.module(&i.to_string(), &mut **m);
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
    fn forward(&self, input: &Tensor) -> Tensor {
        let mut x = input.clone();
        for m in &self.layers {
            x = m.forward(&x);
        }
        x
    }
}
