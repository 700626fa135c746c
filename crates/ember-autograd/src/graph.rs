//! The recorded graph: one `Node` per differentiable op result, holding the op's backward
//! function (which owns whatever it saved) and an edge per input. This is the single mechanism
//! every op uses; the engine (`engine.rs`) knows nothing about particular ops.

use crate::grad_mode::is_grad_enabled;
use crate::tensor::{Tensor, TensorImpl};
use smallvec::SmallVec;
use std::sync::{Arc, Mutex, Weak};

/// Gradients with respect to each input of an op (`None` where an input needs none).
pub type Grads = SmallVec<[Option<Tensor>; 2]>;

/// An op's backward: maps the gradient of its output to gradients of its inputs.
pub type BackwardFn = Box<dyn Fn(&Tensor) -> Grads + Send + Sync>;

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
    let edges = inputs.iter().map(|t| edge_of(t)).collect();
    let node = Arc::new(Node {
        name,
        edges,
        backward: Mutex::new(Some(Box::new(backward))),
        retained: Mutex::new(None),
    });
    out.set_grad_fn(Some(node));
    out
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
}

impl Saved {
    /// Saves `t` (an op's output is saved detached, so the node does not own itself).
    pub(crate) fn new(t: &Tensor) -> Saved {
        Saved {
            version: t.version(),
            tensor: t.clone(),
        }
    }

    /// Saves the value of an op's output without its graph.
    pub(crate) fn output(t: &Tensor) -> Saved {
        Saved {
            version: t.version(),
            tensor: t.detach(),
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
