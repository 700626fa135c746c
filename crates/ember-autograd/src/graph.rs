//! The recorded graph: one `Node` per differentiable op result, holding the op's backward
//! function (which owns whatever it saved) and an edge per input. This is the single mechanism
//! every op uses; the engine (`engine.rs`) knows nothing about particular ops.

use crate::grad_mode::is_grad_enabled;
use crate::tensor::{Tensor, TensorImpl};
use parking_lot::Mutex;
use smallvec::SmallVec;
use std::sync::{Arc, Weak};

/// Gradients with respect to each input of an op (`None` where an input needs none).
pub type Grads = SmallVec<[Option<Tensor>; 2]>;

/// An op's backward: maps the gradient of its output to gradients of its inputs. Shared (`Arc`)
/// so the engine can call it after releasing the node's lock: a backward may panic or run
/// another backward without leaving the node locked.
pub type BackwardFn = Arc<dyn Fn(&Tensor) -> Grads + Send + Sync>;

/// Where an input's gradient goes.
pub(crate) enum Edge {
    /// Into the node that produced the input.
    Node(Arc<Node>),
    /// Into a leaf tensor's `.grad` (PyTorch's AccumulateGrad).
    Leaf(Tensor),
}

/// One recorded op.
pub struct Node {
    pub(crate) name: &'static str,
    pub(crate) edges: SmallVec<[Option<Edge>; 2]>,
    pub(crate) backward: Mutex<Option<BackwardFn>>,
    /// The non-leaf tensor asking for its gradient with `retain_grad()`.
    pub(crate) retained: Mutex<Option<Weak<TensorImpl>>>,
}

impl Node {
    /// PyTorch's name of the backward op (`MulBackward0`, …).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The nodes this one passes gradients to, one entry per input (PyTorch's
    /// `grad_fn.next_functions`): `None` for a leaf (where PyTorch shows `AccumulateGrad`) or an
    /// input that needs no gradient. Lets a test walk the graph an expression recorded.
    pub fn next_functions(&self) -> Vec<Option<Arc<Node>>> {
        self.edges
            .iter()
            .map(|e| match e {
                Some(Edge::Node(n)) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.name)
    }
}

/// True when an op on these inputs must record a node.
#[inline]
pub(crate) fn needs_grad(inputs: &[&Tensor]) -> bool {
    inputs.iter().any(|t| t.requires_grad()) && is_grad_enabled()
}

/// Attaches a node named `name` to `out` with an edge per input. Callers check `needs_grad` first so
/// that nothing is allocated when no input requires grad.
pub(crate) fn record(
    out: Tensor,
    name: &'static str,
    inputs: &[&Tensor],
    backward: impl Fn(&Tensor) -> Grads + Send + Sync + 'static,
) -> Tensor {
    out.set_grad_fn(Some(node(name, inputs, backward)));
    out
}

/// A node named `name` with an edge per input.
pub(crate) fn node(
    name: &'static str,
    inputs: &[&Tensor],
    backward: impl Fn(&Tensor) -> Grads + Send + Sync + 'static,
) -> Arc<Node> {
    Arc::new(Node {
        name,
        edges: inputs.iter().map(|t| edge_of(t)).collect(),
        backward: Mutex::new(Some(Arc::new(backward))),
        retained: Mutex::new(None),
    })
}

pub(crate) fn edge_of(t: &Tensor) -> Option<Edge> {
    if !t.requires_grad() {
        return None;
    }
    Some(match t.grad_fn() {
        Some(n) => Edge::Node(n),
        None => Edge::Leaf(t.clone()),
    })
}

/// A tensor saved for backward together with the version of its storage at that time, so that an
/// in-place change before backward is detected instead of giving wrong gradients.
pub(crate) struct Saved {
    tensor: Tensor,
    version: usize,
    /// An op's own output, saved without its graph (see [`Saved::output`]).
    is_output: bool,
    /// The storage registered with a live [`SavedTensorsCounter`], by its identifier at saving
    /// time (the tensor may be given other storage since, by `set_data`).
    counted: Option<usize>,
}

thread_local! {
    /// The nodes whose backward is running on this thread, innermost last (the engine pushes and
    /// pops them): a saved output is re-attached to the top one when read with grad mode on.
    static RUNNING: std::cell::RefCell<Vec<Arc<Node>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Marks `node` as running its backward on this thread until the guard drops.
pub(crate) struct RunningNode;

impl RunningNode {
    pub(crate) fn enter(node: &Arc<Node>) -> RunningNode {
        RUNNING.with(|r| r.borrow_mut().push(node.clone()));
        RunningNode
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        RUNNING.with(|r| r.borrow_mut().pop());
    }
}

impl Saved {
    /// Saves `t` (an input: its graph is kept, it already exists upstream).
    pub(crate) fn new(t: &Tensor) -> Saved {
        Saved::keep(t.clone(), false)
    }

    /// Saves the value of an op's output without its graph, so the node does not own itself.
    /// When the node's backward runs under `create_graph`, [`Saved::value`] gives the output back
    /// with the node as its `grad_fn` (PyTorch's saved-output unpacking), so derivatives that read
    /// the output (`exp`, `tanh`, `sqrt`, …) differentiate again.
    pub(crate) fn output(t: &Tensor) -> Saved {
        Saved::keep(t.detach(), true)
    }

    fn keep(tensor: Tensor, is_output: bool) -> Saved {
        let counted = saved_count::enter(&tensor);
        Saved {
            version: tensor.version(),
            tensor,
            is_output,
            counted,
        }
    }

    /// The saved tensor as a backward should use it: an output is re-attached to the running node
    /// when grad mode is on (`create_graph`); anything else as saved. Panics as [`Saved::get`].
    pub(crate) fn value(&self) -> Tensor {
        let t = self.get();
        if !self.is_output || !is_grad_enabled() {
            return t.clone();
        }
        match RUNNING.with(|r| r.borrow().last().cloned()) {
            Some(node) => {
                let out = t.detach();
                out.set_grad_fn(Some(node));
                out
            }
            None => t.clone(),
        }
    }

    /// The saved tensor, panicking as PyTorch does if it was modified in place since.
    pub(crate) fn get(&self) -> &Tensor {
        let now = self.tensor.version();
        if now != self.version {
            panic!(
                "one of the variables needed for gradient computation has been modified by an inplace operation: [{}{:?}] is at version {now}; expected version {} instead",
                self.tensor.dtype().name(),
                self.tensor.shape(),
                self.version
            );
        }
        &self.tensor
    }
}

impl Drop for Saved {
    fn drop(&mut self) {
        if let Some(id) = self.counted {
            saved_count::leave(id);
        }
    }
}

/// Accounting of the storages saved tensors keep alive, active while a counter exists. Off, it
/// costs one atomic load per saved tensor.
mod saved_count {
    use crate::tensor::Tensor;
    use parking_lot::Mutex;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(super) static COUNTERS: AtomicUsize = AtomicUsize::new(0);
    /// Per storage (by address): how many saved tensors hold it, and its size in bytes.
    pub(super) static LIVE: Mutex<Option<HashMap<usize, (usize, usize)>>> = Mutex::new(None);

    fn bytes(t: &Tensor) -> usize {
        t.storage().len() * t.dtype().size_in_bytes()
    }

    /// Registers `t`'s storage; returns its identifier when a counter is live.
    pub(super) fn enter(t: &Tensor) -> Option<usize> {
        if COUNTERS.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let (n, id) = (bytes(t), t.storage_id());
        let mut live = LIVE.lock();
        let e = live
            .get_or_insert_with(HashMap::new)
            .entry(id)
            .or_insert((0, n));
        e.0 += 1;
        Some(id)
    }

    pub(super) fn leave(id: usize) {
        let mut live = LIVE.lock();
        if let Some(map) = live.as_mut() {
            if let Some(e) = map.get_mut(&id) {
                e.0 -= 1;
                if e.0 == 0 {
                    map.remove(&id);
                }
            }
        }
    }
}

/// Counts the memory that tensors saved for backward keep alive, from its creation on (a
/// diagnostic, in the spirit of PyTorch's saved-tensor hooks): each storage is counted once,
/// however many nodes save it.
///
/// ```
/// use ember_autograd::{autograd::SavedTensorsCounter, Tensor};
/// let counter = SavedTensorsCounter::new();
/// let x = Tensor::ones([1000]).requires_grad_(true);
/// let y = x.exp(); // exp's derivative reads its output: 4000 bytes
/// let z = &y + 1.0; // add's reads nothing
/// assert_eq!(counter.bytes(), 4000);
/// drop((y, z));
/// assert_eq!(counter.bytes(), 0);
/// ```
pub struct SavedTensorsCounter(());

impl SavedTensorsCounter {
    /// Starts counting tensors saved from now on (by any thread).
    #[allow(clippy::new_without_default)]
    pub fn new() -> SavedTensorsCounter {
        saved_count::COUNTERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SavedTensorsCounter(())
    }

    /// Bytes of the distinct storages held by saved tensors alive now (saved since counting
    /// started).
    pub fn bytes(&self) -> usize {
        saved_count::LIVE
            .lock()
            .as_ref()
            .map_or(0, |m| m.values().map(|&(_, b)| b).sum())
    }
}

impl Drop for SavedTensorsCounter {
    fn drop(&mut self) {
        saved_count::COUNTERS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Records a user-defined differentiable op (like `torch.autograd.Function`): when grad mode is on
/// and an input requires grad, `out` gets a node named `name` whose `backward` maps the output's
/// gradient to one optional gradient per input (in input order). Otherwise `out` is returned as is.
///
/// ```
/// use ember_autograd::{custom_op, Tensor};
/// use smallvec::smallvec;
/// let x = Tensor::from_slice(&[1.0f64, 2.0], [2]).requires_grad_(true);
/// let y = custom_op(x.detach() * 3.0, "TripleBackward", &[&x], |g| smallvec![Some(g * 3.0)]);
/// y.sum().backward();
/// assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![3.0, 3.0]);
/// ```
pub fn custom_op(
    out: Tensor,
    name: &'static str,
    inputs: &[&Tensor],
    backward: impl Fn(&Tensor) -> Grads + Send + Sync + 'static,
) -> Tensor {
    if !needs_grad(inputs) {
        return out;
    }
    record(out, name, inputs, backward)
}
