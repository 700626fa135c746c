//! The `Module` trait and the one mechanism that gives every module its parameters, buffers,
//! submodules and PyTorch's dotted names: a visitor over the struct's members.
//!
//! A module's structure is described by [`ModuleVisit`], which `#[derive(Module)]` writes from the
//! struct's fields (each field is a [`Member`]: a [`Parameter`], a [`Buffer`], a [`TrainFlag`], a
//! submodule, or an `Option`/`Vec` of those; plain data is skipped). Everything else —
//! `parameters()`, `named_parameters()`, `state_dict()`, `train()`/`eval()`, `to(device)`, … — is a
//! provided method of [`Module`] that walks that description, so a user's model only writes
//! `forward`.

use crate::state::{self, IncompatibleKeys, LoadError, NnError, StateDict};
use ember_autograd::{no_grad, DType, Device, Tensor};
use std::any::Any;
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

// ----- members: parameters, buffers, the training flag -----

/// A tensor registered as a learnable parameter of a module: it requires grad, is listed by
/// `parameters()` and saved in the `state_dict`. It dereferences to its [`Tensor`], a handle that
/// shares storage and autograd state with every clone (an optimizer holding `parameters()`
/// updates the module in place, and follows it through `to(device)` / `to_dtype`, which replace
/// the data in place with [`Tensor::set_data`]).
#[derive(Clone)]
pub struct Parameter(Tensor);

impl Parameter {
    /// Registers `t`'s values as a parameter: a leaf (detached from any graph) that requires grad.
    /// `t` must have a floating-point dtype.
    pub fn new(t: Tensor) -> Parameter {
        Parameter(t.detach().requires_grad_(true))
    }

    /// The parameter's tensor (a handle sharing its storage and gradient).
    pub fn tensor(&self) -> &Tensor {
        &self.0
    }

    /// Replaces the tensor with another one: `t`'s values as a leaf (detached), requiring grad
    /// when `t` does. Handles taken before (an optimizer's) keep the old tensor; to change the
    /// values, dtype or device under them, use [`Tensor::set_data`] on the parameter instead.
    pub fn set(&mut self, t: Tensor) {
        let rg = t.requires_grad();
        self.0 = t.detach();
        if rg {
            self.0.requires_grad_(true);
        }
    }
}

impl Deref for Parameter {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        &self.0
    }
}

impl std::fmt::Debug for Parameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Parameter containing:\n{}", self.0)
    }
}

/// A tensor that is part of a module's state but not learned (BatchNorm's running statistics):
/// saved in the `state_dict`, moved by `to(device)`, never given to an optimizer.
#[derive(Clone)]
pub struct Buffer(Tensor);

impl Buffer {
    /// Registers `t` (detached) as a buffer.
    pub fn new(t: Tensor) -> Buffer {
        Buffer(t.detach())
    }

    /// The buffer's tensor (a handle sharing its storage).
    pub fn tensor(&self) -> &Tensor {
        &self.0
    }

    /// Replaces the tensor with `t` (detached). Handles taken before keep the old tensor; use
    /// [`Tensor::set_data`] to change the data under them.
    pub fn set(&mut self, t: Tensor) {
        self.0 = t.detach();
    }
}

impl Deref for Buffer {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        &self.0
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A module's training-mode flag (PyTorch's `module.training`), set by `train()` / `eval()` on the
/// whole tree. Modules whose forward depends on the mode (Dropout, BatchNorm) hold one; a user's
/// module may hold one too and read it with [`TrainFlag::get`].
#[derive(Debug)]
pub struct TrainFlag(AtomicBool);

impl TrainFlag {
    /// A flag in training mode (PyTorch's default).
    pub fn new() -> TrainFlag {
        TrainFlag(AtomicBool::new(true))
    }
    /// True in training mode.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    /// Sets training mode on or off.
    pub fn set(&self, training: bool) {
        self.0.store(training, Ordering::Relaxed)
    }
}

impl Default for TrainFlag {
    fn default() -> Self {
        TrainFlag::new()
    }
}

impl Clone for TrainFlag {
    fn clone(&self) -> Self {
        TrainFlag(AtomicBool::new(self.get()))
    }
}

// ----- the visitor -----

/// Receives a module's direct members, in declaration order, with their names.
pub trait Visitor<'a> {
    /// A parameter named `name` (relative to the visited module).
    fn parameter(&mut self, name: &str, p: &'a Parameter) {
        let _ = (name, p);
    }
    /// A buffer named `name`.
    fn buffer(&mut self, name: &str, b: &'a Buffer) {
        let _ = (name, b);
    }
    /// A direct submodule named `name`.
    fn module(&mut self, name: &str, m: &'a dyn Module) {
        let _ = (name, m);
    }
    /// The module's training flag.
    fn flag(&mut self, f: &'a TrainFlag) {
        let _ = f;
    }
}

/// Receives a module's direct members mutably (for `to(device)` / `to_dtype`).
pub trait VisitorMut {
    /// A parameter named `name`.
    fn parameter(&mut self, name: &str, p: &mut Parameter) {
        let _ = (name, p);
    }
    /// A buffer named `name`.
    fn buffer(&mut self, name: &str, b: &mut Buffer) {
        let _ = (name, b);
    }
    /// A direct submodule named `name`.
    fn module(&mut self, name: &str, m: &mut dyn Module) {
        let _ = (name, m);
    }
}

/// The structure of a module: its direct members for the visitors. Written by
/// `#[derive(Module)]` (or by hand for unusual containers such as [`crate::Sequential`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not describe its parameters and submodules",
    label = "add `#[derive(Module)]` to the definition of `{Self}`"
)]
pub trait ModuleVisit: Any {
    /// Calls `visitor` for each direct member (parameters, buffers, submodules, the training
    /// flag) in declaration order.
    fn visit<'a>(&'a self, visitor: &mut dyn Visitor<'a>);
    /// Calls `visitor` for each direct member, mutably.
    fn visit_mut(&mut self, visitor: &mut dyn VisitorMut);
    /// `self` as `Any`, for downcasting a `&dyn Module` to its concrete type.
    fn as_any(&self) -> &dyn Any;
    /// `self` as mutable `Any`.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// `self` as a module trait object.
    fn as_module(&self) -> &dyn Module;
    /// The type's name as PyTorch prints it (`Linear`, `Sequential`, `FizBuzNet`).
    fn type_name(&self) -> &'static str;
}

/// A struct field as `#[derive(Module)]` sees it: a parameter, buffer, flag or submodule reports
/// itself to the visitor under the field's name; containers report their elements; plain data
/// (numbers, strings, dtypes) reports nothing.
#[diagnostic::on_unimplemented(
    message = "field type `{Self}` is not a parameter, buffer or submodule",
    label = "wrap tensors in `Parameter` or `Buffer`, or mark the field `#[module(skip)]`"
)]
pub trait Member {
    /// Reports this member (named `name`) to `visitor`.
    fn visit_member<'a>(&'a self, name: &str, visitor: &mut dyn Visitor<'a>);
    /// Reports this member (named `name`) to `visitor`, mutably.
    fn visit_member_mut(&mut self, name: &str, visitor: &mut dyn VisitorMut);
}

impl Member for Parameter {
    fn visit_member<'a>(&'a self, name: &str, v: &mut dyn Visitor<'a>) {
        v.parameter(name, self)
    }
    fn visit_member_mut(&mut self, name: &str, v: &mut dyn VisitorMut) {
        v.parameter(name, self)
    }
}

impl Member for Buffer {
    fn visit_member<'a>(&'a self, name: &str, v: &mut dyn Visitor<'a>) {
        v.buffer(name, self)
    }
    fn visit_member_mut(&mut self, name: &str, v: &mut dyn VisitorMut) {
        v.buffer(name, self)
    }
}

impl Member for TrainFlag {
    fn visit_member<'a>(&'a self, _: &str, v: &mut dyn Visitor<'a>) {
        v.flag(self)
    }
    fn visit_member_mut(&mut self, _: &str, _: &mut dyn VisitorMut) {}
}

impl<M: Module> Member for M {
    fn visit_member<'a>(&'a self, name: &str, v: &mut dyn Visitor<'a>) {
        v.module(name, self)
    }
    fn visit_member_mut(&mut self, name: &str, v: &mut dyn VisitorMut) {
        v.module(name, self)
    }
}

impl Member for Box<dyn Module> {
    fn visit_member<'a>(&'a self, name: &str, v: &mut dyn Visitor<'a>) {
        v.module(name, &**self)
    }
    fn visit_member_mut(&mut self, name: &str, v: &mut dyn VisitorMut) {
        v.module(name, &mut **self)
    }
}

impl<T: Member> Member for Option<T> {
    fn visit_member<'a>(&'a self, name: &str, v: &mut dyn Visitor<'a>) {
        if let Some(m) = self {
            m.visit_member(name, v)
        }
    }
    fn visit_member_mut(&mut self, name: &str, v: &mut dyn VisitorMut) {
        if let Some(m) = self {
            m.visit_member_mut(name, v)
        }
    }
}

/// Elements are named `field.0`, `field.1`, … (PyTorch's `ModuleList` / `ParameterList` names).
impl<T: Member> Member for Vec<T> {
    fn visit_member<'a>(&'a self, name: &str, v: &mut dyn Visitor<'a>) {
        for (i, m) in self.iter().enumerate() {
            m.visit_member(&format!("{name}.{i}"), v)
        }
    }
    fn visit_member_mut(&mut self, name: &str, v: &mut dyn VisitorMut) {
        for (i, m) in self.iter_mut().enumerate() {
            m.visit_member_mut(&format!("{name}.{i}"), v)
        }
    }
}

macro_rules! plain_members {
    ($($t:ty),*) => {$(
        impl Member for $t {
            fn visit_member<'a>(&'a self, _: &str, _: &mut dyn Visitor<'a>) {}
            fn visit_member_mut(&mut self, _: &str, _: &mut dyn VisitorMut) {}
        }
    )*};
}
plain_members!(
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    usize,
    i8,
    i16,
    i32,
    i64,
    isize,
    f32,
    f64,
    String,
    &'static str,
    DType,
    Device,
    [usize; 2],
    ember_autograd::IntOrPair,
    ember_autograd::Padding,
    ember_autograd::AdaptiveSize
);

impl<T: ?Sized> Member for std::marker::PhantomData<T> {
    fn visit_member<'a>(&'a self, _: &str, _: &mut dyn Visitor<'a>) {}
    fn visit_member_mut(&mut self, _: &str, _: &mut dyn VisitorMut) {}
}

// ----- walking the tree -----

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// What a recursive walk reports: every parameter, buffer and module of a tree with full names.
enum Item<'a> {
    Param(String, &'a Parameter),
    Buffer(String, &'a Buffer),
    Flag(&'a TrainFlag),
}

/// Depth-first walk in declaration order, calling `f` for each parameter, buffer and flag, with
/// names prefixed by the path of submodules.
fn walk<'a, M: ModuleVisit + ?Sized>(m: &'a M, prefix: &str, f: &mut dyn FnMut(Item<'a>)) {
    struct W<'f, 'a> {
        prefix: &'f str,
        f: &'f mut dyn FnMut(Item<'a>),
    }
    impl<'a> Visitor<'a> for W<'_, 'a> {
        fn parameter(&mut self, name: &str, p: &'a Parameter) {
            (self.f)(Item::Param(join(self.prefix, name), p))
        }
        fn buffer(&mut self, name: &str, b: &'a Buffer) {
            (self.f)(Item::Buffer(join(self.prefix, name), b))
        }
        fn flag(&mut self, fl: &'a TrainFlag) {
            (self.f)(Item::Flag(fl))
        }
        fn module(&mut self, name: &str, m: &'a dyn Module) {
            walk(m, &join(self.prefix, name), self.f)
        }
    }
    m.visit(&mut W { prefix, f });
}

/// The direct members of one module.
fn direct<'a, M: ModuleVisit + ?Sized>(m: &'a M) -> Direct<'a> {
    #[derive(Default)]
    struct D<'a>(Direct<'a>);
    impl<'a> Visitor<'a> for D<'a> {
        fn parameter(&mut self, name: &str, p: &'a Parameter) {
            self.0.params.push((name.to_string(), p))
        }
        fn buffer(&mut self, name: &str, b: &'a Buffer) {
            self.0.buffers.push((name.to_string(), b))
        }
        fn module(&mut self, name: &str, m: &'a dyn Module) {
            self.0.children.push((name.to_string(), m))
        }
    }
    let mut d = D::default();
    m.visit(&mut d);
    d.0
}

#[derive(Default)]
struct Direct<'a> {
    params: Vec<(String, &'a Parameter)>,
    buffers: Vec<(String, &'a Buffer)>,
    children: Vec<(String, &'a dyn Module)>,
}

/// Applies `f` to every parameter and buffer of the tree, mutably, with full names.
fn walk_mut(m: &mut dyn VisitorTarget, prefix: &str, f: &mut dyn FnMut(&str, MutItem<'_>)) {
    struct W<'f> {
        prefix: &'f str,
        f: &'f mut dyn FnMut(&str, MutItem<'_>),
    }
    impl VisitorMut for W<'_> {
        fn parameter(&mut self, name: &str, p: &mut Parameter) {
            (self.f)(&join(self.prefix, name), MutItem::Param(p))
        }
        fn buffer(&mut self, name: &str, b: &mut Buffer) {
            (self.f)(&join(self.prefix, name), MutItem::Buffer(b))
        }
        fn module(&mut self, name: &str, m: &mut dyn Module) {
            let p = join(self.prefix, name);
            walk_mut(&mut DynTarget(m), &p, self.f)
        }
    }
    m.visit_target(&mut W { prefix, f });
}

/// A parameter or buffer handed out mutably by [`walk_mut`].
enum MutItem<'a> {
    Param(&'a mut Parameter),
    Buffer(&'a mut Buffer),
}

/// Something whose members can be visited mutably (a module, sized or not).
trait VisitorTarget {
    fn visit_target(&mut self, v: &mut dyn VisitorMut);
}

struct DynTarget<'m>(&'m mut dyn Module);
impl VisitorTarget for DynTarget<'_> {
    fn visit_target(&mut self, v: &mut dyn VisitorMut) {
        self.0.visit_mut(v)
    }
}

struct SelfTarget<'m, M: ?Sized>(&'m mut M);
impl<M: ModuleVisit + ?Sized> VisitorTarget for SelfTarget<'_, M> {
    fn visit_target(&mut self, v: &mut dyn VisitorMut) {
        self.0.visit_mut(v)
    }
}

/// Converts every parameter (with its gradient) and every buffer (only floating-point ones when
/// `floats_only`) with `f`, in place, as PyTorch's `Module._apply` does `param.data = fn(param)`:
/// each tensor keeps its identity, `requires_grad` and hooks and takes the converted data
/// ([`Tensor::set_data`]), so the handles an optimizer or the caller took before see the moved
/// tensors. The gradient is replaced by its converted copy.
fn convert_all<M: ModuleVisit + ?Sized>(
    m: &mut M,
    f: &dyn Fn(&Tensor) -> Tensor,
    floats_only: bool,
) {
    let _g = no_grad();
    walk_mut(&mut SelfTarget(m), "", &mut |_, item| match item {
        MutItem::Param(p) => {
            p.0.set_data(&f(&p.0.detach()));
            if let Some(g) = p.0.grad() {
                p.0.set_grad(Some(f(&g)));
            }
        }
        MutItem::Buffer(b) => {
            if !floats_only || b.0.dtype().is_float() {
                b.0.set_data(&f(&b.0));
            }
        }
    });
}

// ----- the Module trait -----

/// A neural-network module (PyTorch's `nn.Module`): `forward`, plus, from the structure that
/// `#[derive(Module)]` describes, its parameters with PyTorch's dotted names, buffers,
/// submodules, training mode, device/dtype moves and `state_dict` / safetensors I/O.
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_nn::{self as nn, Module};
///
/// #[derive(nn::Module)]
/// struct FizBuzNet { hidden: nn::Linear, out: nn::Linear }
///
/// impl nn::Module for FizBuzNet {
///     fn forward(&self, batch: &Tensor) -> Tensor {
///         self.out.forward(&self.hidden.forward(batch).sigmoid())
///     }
/// }
///
/// let net = FizBuzNet { hidden: nn::Linear::new(10, 100), out: nn::Linear::new(100, 4) };
/// let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]);
/// assert_eq!(net.num_parameters(), 10 * 100 + 100 + 100 * 4 + 4);
/// ```
pub trait Module: ModuleVisit + Send + Sync {
    /// The computation (PyTorch's `forward`; call it as `model.forward(&x)`). Every
    /// implementation tracks its caller, so a shape panic inside reports the user's line.
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor;

    /// The module's settings as PyTorch prints them inside the parentheses
    /// (`in_features=784, out_features=128, bias=True`).
    fn extra_repr(&self) -> String {
        String::new()
    }

    /// Every parameter of the tree, depth-first in declaration order: handles sharing storage and
    /// gradients with the module (give them to an optimizer).
    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// Every parameter with PyTorch's dotted name (`0.weight`, `hidden.bias`).
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        walk(self, "", &mut |it| {
            if let Item::Param(n, p) = it {
                out.push((n, p.0.clone()))
            }
        });
        out
    }

    /// Every buffer of the tree (BatchNorm's running statistics, …).
    fn buffers(&self) -> Vec<Tensor> {
        self.named_buffers().into_iter().map(|(_, t)| t).collect()
    }

    /// Every buffer with its dotted name (`1.running_mean`).
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        walk(self, "", &mut |it| {
            if let Item::Buffer(n, b) = it {
                out.push((n, b.0.clone()))
            }
        });
        out
    }

    /// The direct submodules with their names.
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        direct(self).children
    }

    /// The direct submodules.
    fn children(&self) -> Vec<&dyn Module> {
        direct(self).children.into_iter().map(|(_, m)| m).collect()
    }

    /// This module (named `""`) and every descendant, depth-first, with dotted names.
    fn named_modules(&self) -> Vec<(String, &dyn Module)> {
        fn rec<'a>(m: &'a dyn Module, prefix: String, out: &mut Vec<(String, &'a dyn Module)>) {
            out.push((prefix.clone(), m));
            for (n, c) in m.named_children() {
                rec(c, join(&prefix, &n), out);
            }
        }
        let mut out = Vec::new();
        rec(self.as_module(), String::new(), &mut out);
        out
    }

    /// This module and every descendant.
    fn modules(&self) -> Vec<&dyn Module> {
        self.named_modules().into_iter().map(|(_, m)| m).collect()
    }

    /// Sets training mode on the whole tree (`module.train(mode)`).
    fn set_training(&self, training: bool) {
        walk(self, "", &mut |it| {
            if let Item::Flag(f) = it {
                f.set(training)
            }
        });
    }

    /// Training mode for the whole tree (Dropout drops, BatchNorm uses batch statistics).
    fn train(&self) {
        self.set_training(true)
    }

    /// Evaluation mode for the whole tree (`module.eval()`).
    fn eval(&self) {
        self.set_training(false)
    }

    /// The training mode: the first training flag of the tree (true for a tree without one).
    fn is_training(&self) -> bool {
        let mut mode = None;
        walk(self, "", &mut |it| {
            if let Item::Flag(f) = it {
                mode.get_or_insert(f.get());
            }
        });
        mode.unwrap_or(true)
    }

    /// Drops every parameter's gradient (PyTorch's `zero_grad(set_to_none=True)`).
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.set_grad(None);
        }
    }

    /// Calls `f` on every submodule (children first, then this module), PyTorch's `apply`, e.g.
    /// for custom initialisation with `m.downcast_ref::<Linear>()`.
    fn apply(&self, f: &mut dyn FnMut(&dyn Module)) {
        for c in self.children() {
            c.apply(f);
        }
        f(self.as_module())
    }

    /// A parameter by dotted path relative to this module (`"weight"`, `"0.bias"`), PyTorch's
    /// `get_parameter`.
    fn get_parameter(&self, path: &str) -> Option<Tensor> {
        self.named_parameters()
            .into_iter()
            .find(|(n, _)| n == path)
            .map(|(_, t)| t)
    }

    /// PyTorch's printed form of the module tree (`print(model)`); every module also implements
    /// `Display` with it (`println!("{model}")`: `#[derive(Module)]` writes it).
    fn repr(&self) -> String {
        let children = self.named_children();
        let extra = self.extra_repr();
        if children.is_empty() {
            return format!("{}({extra})", self.type_name());
        }
        let mut s = format!("{}(", self.type_name());
        if !extra.is_empty() {
            s.push_str(&format!("\n  {extra}"));
        }
        for (n, c) in children {
            let inner = c.repr().replace('\n', "\n  ");
            s.push_str(&format!("\n  ({n}): {inner}"));
        }
        s.push_str("\n)");
        s
    }

    /// Total number of parameter elements.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|p| p.numel()).sum()
    }

    /// Moves every parameter, gradient and buffer to `device` (`module.to(device)`), in place:
    /// the parameters are the same tensors afterwards (see [`Tensor::set_data`]), so an optimizer
    /// built before the move keeps updating the module, as in PyTorch. Optimizer state created
    /// before (momentum buffers, Adam's moments) stays where it was, as in PyTorch too, and the
    /// next step panics naming the mismatch: move the model before the first `step()` (state
    /// made lazily by later steps follows the parameters).
    fn to(&mut self, device: Device) {
        convert_all(self, &|t| t.to_device(device), false)
    }

    /// Converts floating-point parameters, gradients and buffers to `dtype` (`module.to(dtype)`),
    /// in place as [`Module::to`] does: an optimizer built before keeps working.
    fn to_dtype(&mut self, dtype: DType) {
        if !dtype.is_float() {
            panic!(
                "nn.Module.to only accepts floating point dtypes, but got desired dtype={dtype}"
            );
        }
        convert_all(self, &|t| t.to_dtype(dtype), true)
    }

    /// `module.double()`: [`Module::to_dtype`] with float64, in place.
    fn double(&mut self) {
        self.to_dtype(DType::F64)
    }

    /// `module.float()`: [`Module::to_dtype`] with float32, in place.
    fn float(&mut self) {
        self.to_dtype(DType::F32)
    }

    /// `module.cpu()`: [`Module::to`] the host, in place.
    fn cpu(&mut self) {
        self.to(Device::Cpu)
    }

    /// `module.cuda()` (device 0): [`Module::to`], in place.
    fn cuda(&mut self) {
        self.to(Device::Cuda(0))
    }

    /// Parameters and buffers by dotted name (detached handles sharing storage), in PyTorch's
    /// `state_dict` order.
    fn state_dict(&self) -> StateDict {
        let mut out = Vec::new();
        walk(self, "", &mut |it| match it {
            Item::Param(n, p) => out.push((n, p.0.detach())),
            Item::Buffer(n, b) => out.push((n, b.0.detach())),
            Item::Flag(_) => {}
        });
        out
    }

    /// Copies `state` into the parameters and buffers (in place: optimizers keep working).
    /// Every problem is reported in one error: missing and unexpected keys (only when `strict`),
    /// shape and dtype mismatches (always). Nothing is copied unless the whole load succeeds.
    fn load_state_dict(
        &self,
        state: &[(String, Tensor)],
        strict: bool,
    ) -> Result<IncompatibleKeys, LoadError> {
        state::load_into(&self.state_dict(), state, strict)
    }

    /// Saves the `state_dict` to a safetensors file (atomically), readable by
    /// `safetensors.torch.load_file`.
    fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<(), NnError>
    where
        Self: Sized,
    {
        state::save(&self.state_dict(), path.as_ref())
    }

    /// Loads a safetensors file written by `safetensors.torch.save_file(model.state_dict(), …)`
    /// (or [`Module::save_safetensors`]), strictly: names, shapes and dtypes must match.
    fn load_safetensors(&self, path: impl AsRef<Path>) -> Result<(), NnError>
    where
        Self: Sized,
    {
        state::load_file(self.as_module(), path.as_ref(), true).map(|_| ())
    }

    /// Like [`Module::load_safetensors`], but `strict = false` tolerates missing and unexpected
    /// names (returned); shapes and dtypes must still match.
    fn load_safetensors_with(
        &self,
        path: impl AsRef<Path>,
        strict: bool,
    ) -> Result<IncompatibleKeys, NnError>
    where
        Self: Sized,
    {
        state::load_file(self.as_module(), path.as_ref(), strict)
    }
}

/// Access through a module trait object (what `model[0]` gives).
impl dyn Module {
    /// The concrete module, if it is a `T` (`model[0].downcast_ref::<Linear>()`).
    pub fn downcast_ref<T: Module>(&self) -> Option<&T> {
        self.as_any().downcast_ref::<T>()
    }

    /// True when the module is a `T`.
    pub fn is<T: Module>(&self) -> bool {
        self.as_any().is::<T>()
    }

    /// The parameter named `weight` (`model[0].weight()`); panics naming the module when it has
    /// none.
    pub fn weight(&self) -> Tensor {
        self.own_parameter("weight")
            .unwrap_or_else(|| panic!("{} has no parameter `weight`", self.type_name()))
    }

    /// The parameter named `bias`, if the module has one.
    pub fn bias(&self) -> Option<Tensor> {
        self.own_parameter("bias")
    }

    fn own_parameter(&self, name: &str) -> Option<Tensor> {
        direct(self)
            .params
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.0.clone())
    }
}

impl std::fmt::Display for dyn Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repr())
    }
}

impl std::fmt::Debug for dyn Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repr())
    }
}
