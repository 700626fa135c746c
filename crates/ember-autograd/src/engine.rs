//! The backward engine: walks the recorded graph once in reverse topological order, summing the
//! gradients arriving at each node before running it, and releasing each node's saved tensors as
//! soon as it has run (unless the graph is retained).

use crate::grad_mode::grad_mode;
use crate::graph::{Edge, Grads, Node};
use crate::hooks::PendingLeafHooks;
use crate::tensor::Tensor;
use std::collections::HashMap;
use std::sync::Arc;

type NodeKey = *const Node;

fn key(n: &Arc<Node>) -> NodeKey {
    Arc::as_ptr(n)
}

fn accumulate(slot: &mut Option<Tensor>, g: Tensor) {
    *slot = Some(match slot.take() {
        Some(old) => &old + &g,
        None => g,
    });
}

/// What the engine does with the gradient reaching a leaf, or a node listed as an input.
enum Sink<'a> {
    /// `backward()`: accumulate into every leaf's `.grad`, then run its post-accumulate hooks.
    LeafGrads(PendingLeafHooks),
    /// `autograd::grad(…)`: capture the gradients of these inputs only.
    Capture(&'a [Tensor], Vec<Option<Tensor>>),
}

/// Runs backward from `roots` (each with the gradient of the output).
fn run(roots: &[(Tensor, Tensor)], retain_graph: bool, create_graph: bool, sink: &mut Sink) {
    let _mode = grad_mode(create_graph);
    // Count, for every node reachable from the roots, how many edges lead into it.
    let mut deps: HashMap<NodeKey, usize> = HashMap::new();
    let mut stack: Vec<Arc<Node>> = Vec::new();
    let mut grads: HashMap<NodeKey, Option<Tensor>> = HashMap::new();
    let mut ready: Vec<Arc<Node>> = Vec::new();
    for (t, g) in roots {
        match t.grad_fn() {
            Some(n) => {
                accumulate(grads.entry(key(&n)).or_default(), g.clone());
                if let std::collections::hash_map::Entry::Vacant(e) = deps.entry(key(&n)) {
                    e.insert(0);
                    stack.push(n.clone());
                }
            }
            None => {
                if let Sink::LeafGrads(hooks) = sink {
                    hooks.expect(t);
                }
                deliver_leaf(t, g.clone(), sink)
            }
        }
    }
    let roots_nodes: Vec<Arc<Node>> = stack.clone();
    while let Some(n) = stack.pop() {
        for e in n.edges.iter().flatten() {
            match e {
                Edge::Node(next) => {
                    let k = key(next);
                    let d = deps.entry(k).or_insert(0);
                    *d += 1;
                    if *d == 1 {
                        stack.push(next.clone());
                    }
                }
                Edge::Leaf(t) => {
                    if let Sink::LeafGrads(hooks) = sink {
                        hooks.expect(t);
                    }
                }
            }
        }
    }
    for n in roots_nodes {
        if deps[&key(&n)] == 0 {
            ready.push(n);
        }
    }
    while let Some(node) = ready.pop() {
        let k = key(&node);
        let input_grads = match grads.remove(&k).flatten() {
            Some(g) => run_node(&node, g, retain_graph, create_graph, sink),
            None => {
                // No gradient reached this node (every consumer returned `None` for it): its inputs
                // get none from it either, but each still counts this edge as done.
                if !retain_graph {
                    node.backward.lock().take();
                }
                Grads::new()
            }
        };
        let mut input_grads = input_grads.into_iter();
        for edge in node.edges.iter() {
            let gi = input_grads.next().flatten();
            let Some(edge) = edge else { continue };
            match edge {
                Edge::Leaf(t) => match gi {
                    Some(gi) => deliver_leaf(t, gi, sink),
                    None => {
                        if let Sink::LeafGrads(hooks) = sink {
                            hooks.skipped(t);
                        }
                    }
                },
                Edge::Node(next) => {
                    // Every edge is counted down, whether or not it carries a gradient: a node
                    // runs once all of its consumers have run (PyTorch's dependency rule).
                    let nk = key(next);
                    if let Some(gi) = gi {
                        accumulate(grads.entry(nk).or_default(), gi);
                    }
                    let d = deps.get_mut(&nk).expect("node reached but not counted");
                    *d -= 1;
                    if *d == 0 {
                        ready.push(next.clone());
                    }
                }
            }
        }
    }
    if let Sink::LeafGrads(hooks) = sink {
        hooks.finish();
    }
}

/// Runs one node's backward on the summed gradient `g` of its output, after handing `g` to a
/// retained non-leaf and to `autograd::grad`'s capture. The closure is taken out of the node's
/// lock before it runs, so a panicking or re-entrant backward leaves the node usable.
fn run_node(
    node: &Arc<Node>,
    g: Tensor,
    retain_graph: bool,
    create_graph: bool,
    sink: &mut Sink,
) -> Grads {
    let retained = node.retained.lock().as_ref().and_then(|w| w.upgrade());
    if let Some(w) = retained {
        let t = Tensor(w);
        let mut slot = t.0.grad.lock();
        accumulate(&mut slot, g.clone().detach_if(!create_graph));
    }
    if let Sink::Capture(inputs, out) = sink {
        for (i, t) in inputs.iter().enumerate() {
            if t.grad_fn().is_some_and(|n| Arc::ptr_eq(&n, node)) {
                accumulate(&mut out[i], g.clone());
            }
        }
    }
    let f = {
        let mut guard = node.backward.lock();
        // Released as soon as it has run (with what it saved) unless the graph is retained.
        if retain_graph {
            guard.clone()
        } else {
            guard.take()
        }
    };
    let f = f.unwrap_or_else(|| {
        panic!("Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed). Saved intermediate values of the graph are freed when you call .backward() or autograd.grad(). Specify retain_graph=true if you need to backward through the graph a second time or if you need to access saved tensors after calling backward.")
    });
    let grads = {
        let _running = crate::graph::RunningNode::enter(node);
        f(&g)
    };
    if grads.len() != node.edges.len() {
        panic!(
            "function {} returned an incorrect number of gradients (expected {}, got {})",
            node.name,
            node.edges.len(),
            grads.len()
        );
    }
    grads
}

fn deliver_leaf(t: &Tensor, g: Tensor, sink: &mut Sink) {
    match sink {
        Sink::LeafGrads(hooks) => {
            let g = if g.dtype() != t.dtype() {
                g.to_dtype(t.dtype())
            } else {
                g
            };
            let create = crate::grad_mode::is_grad_enabled();
            accumulate(&mut t.0.grad.lock(), g.detach_if(!create));
            hooks.delivered(t);
        }
        Sink::Capture(inputs, out) => {
            for (i, x) in inputs.iter().enumerate() {
                if x.same_impl(t) {
                    accumulate(&mut out[i], g.clone());
                }
            }
        }
    }
}

impl Tensor {
    fn detach_if(self, cond: bool) -> Tensor {
        if cond && self.requires_grad() {
            self.detach()
        } else {
            self
        }
    }

    /// Computes the gradient of this scalar with respect to every leaf that requires grad and
    /// accumulates it into their `.grad()`; frees the graph.
    pub fn backward(&self) {
        if self.numel() != 1 {
            panic!(
                "grad can be implicitly created only for scalar outputs (got shape {:?})",
                self.shape()
            );
        }
        self.backward_with(&Tensor::ones_like(self));
    }

    /// Backward with an explicit gradient of this tensor (same shape), freeing the graph.
    pub fn backward_with(&self, gradient: &Tensor) {
        self.backward_opts(gradient, false, false);
    }

    /// Backward with PyTorch's `retain_graph` and `create_graph` options.
    pub fn backward_opts(&self, gradient: &Tensor, retain_graph: bool, create_graph: bool) {
        if !self.requires_grad() {
            panic!("element 0 of tensors does not require grad and does not have a grad_fn");
        }
        if gradient.shape() != self.shape() {
            panic!(
                "backward: gradient shape {:?} does not match output shape {:?}",
                gradient.shape(),
                self.shape()
            );
        }
        run(
            &[(self.clone(), gradient.clone())],
            retain_graph || create_graph,
            create_graph,
            &mut Sink::LeafGrads(PendingLeafHooks::default()),
        );
    }
}

/// `torch.autograd.grad`: the gradients of `outputs` (weighted by `grad_outputs`, ones for scalars
/// when `None`) with respect to `inputs`, without touching any `.grad()`. With `create_graph` the
/// result is itself differentiable (higher-order derivatives).
///
/// ```
/// use ember_autograd::{autograd, Tensor};
/// let x = Tensor::from_slice(&[2.0f64], [1]).requires_grad_(true);
/// let y = x.pow(3.0);
/// let dy = autograd::grad(&[y], &[x.clone()], None, false, true);
/// let d2y = autograd::grad(&[dy[0].clone().unwrap()], &[x.clone()], None, false, false);
/// assert_eq!(d2y[0].as_ref().unwrap().item(), 12.0); // 6x
/// ```
pub fn grad(
    outputs: &[Tensor],
    inputs: &[Tensor],
    grad_outputs: Option<&[Tensor]>,
    retain_graph: bool,
    create_graph: bool,
) -> Vec<Option<Tensor>> {
    let roots: Vec<(Tensor, Tensor)> = outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            if !o.requires_grad() {
                panic!("element {i} of tensors does not require grad and does not have a grad_fn");
            }
            let g = match grad_outputs {
                Some(gs) => gs[i].clone(),
                None if o.numel() == 1 => Tensor::ones_like(o),
                None => panic!("grad can be implicitly created only for scalar outputs"),
            };
            (o.clone(), g)
        })
        .collect();
    let mut sink = Sink::Capture(inputs, vec![None; inputs.len()]);
    run(
        &roots,
        retain_graph || create_graph,
        create_graph,
        &mut sink,
    );
    match sink {
        Sink::Capture(_, out) => out,
        Sink::LeafGrads(_) => unreachable!(),
    }
}
