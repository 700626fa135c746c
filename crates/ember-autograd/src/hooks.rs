//! Post-accumulate-grad hooks (`Tensor.register_post_accumulate_grad_hook`): a function called
//! with a leaf tensor once its `.grad` holds the whole gradient of a backward pass. Distributed
//! data parallelism starts communicating a parameter's gradient from here while the rest of
//! backward still runs.
//!
//! The hooks live on the tensor (`TensorImpl::post_accumulate_grad_hooks`); the engine asks
//! [`PendingLeafHooks`] how many gradients are still to arrive at each hooked leaf, because a
//! leaf used by several ops receives one gradient per use and its gradient is final only after
//! the last one.

use crate::tensor::{Tensor, TensorImpl};
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// A post-accumulate-grad hook.
pub(crate) type Hook = Arc<dyn Fn(&Tensor) + Send + Sync>;

/// The hooks registered on one tensor, in registration order (the order they are called in).
#[derive(Default)]
pub(crate) struct HookList {
    next_id: u64,
    hooks: Vec<(u64, Hook)>,
}

/// Removes the hook it was returned for (PyTorch's `torch.utils.hooks.RemovableHandle`).
/// Dropping the handle keeps the hook, as in PyTorch.
#[derive(Debug)]
pub struct RemovableHandle {
    tensor: Weak<TensorImpl>,
    id: u64,
}

impl RemovableHandle {
    /// Unregisters the hook; removing twice, or after the tensor is gone, does nothing.
    pub fn remove(&self) {
        if let Some(t) = self.tensor.upgrade() {
            t.post_accumulate_grad_hooks
                .lock()
                .hooks
                .retain(|(id, _)| *id != self.id);
        }
    }
}

impl Tensor {
    /// Registers `hook`, called with this leaf after its gradient has been accumulated into
    /// `.grad()` during `backward` (PyTorch's `register_post_accumulate_grad_hook`). When the
    /// leaf is used by several ops, the hook runs once per backward, after the last of their
    /// gradients has been added. Hooks run in registration order, on the thread running
    /// backward; `autograd::grad` (which accumulates nothing) does not call them. Returns a
    /// handle whose `remove()` unregisters the hook.
    ///
    /// Panics, as PyTorch does, on a tensor that does not require grad or is not a leaf.
    ///
    /// ```
    /// use ember_autograd::Tensor;
    /// use std::sync::{Arc, Mutex};
    /// let w = Tensor::from_slice(&[1.0f32, 2.0], [2]).requires_grad_(true);
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// let handle = w.register_post_accumulate_grad_hook(move |p| {
    ///     s.lock().unwrap().push(p.grad().unwrap().to_vec::<f32>());
    /// });
    /// (&w * &w).sum().backward(); // w is used twice: one call, with the summed gradient
    /// assert_eq!(*seen.lock().unwrap(), vec![vec![2.0, 4.0]]);
    /// handle.remove();
    /// (&w * 3.0).sum().backward();
    /// assert_eq!(seen.lock().unwrap().len(), 1);
    /// ```
    pub fn register_post_accumulate_grad_hook(
        &self,
        hook: impl Fn(&Tensor) + Send + Sync + 'static,
    ) -> RemovableHandle {
        if !self.requires_grad() {
            panic!("cannot register a hook on a tensor that doesn't require gradient");
        }
        if !self.is_leaf() {
            panic!("post accumulate grad hooks cannot be registered on non-leaf tensors");
        }
        let mut list = self.0.post_accumulate_grad_hooks.lock();
        let id = list.next_id;
        list.next_id += 1;
        list.hooks.push((id, Arc::new(hook)));
        RemovableHandle {
            tensor: Arc::downgrade(&self.0),
            id,
        }
    }

    fn has_post_accumulate_grad_hooks(&self) -> bool {
        !self.0.post_accumulate_grad_hooks.lock().hooks.is_empty()
    }

    fn run_post_accumulate_grad_hooks(&self) {
        // Called without the lock held, so a hook may register or remove hooks.
        let hooks: Vec<Hook> = self
            .0
            .post_accumulate_grad_hooks
            .lock()
            .hooks
            .iter()
            .map(|(_, h)| h.clone())
            .collect();
        for h in hooks {
            h(self);
        }
    }
}

/// One backward pass's count of the gradients still to arrive at each hooked leaf.
#[derive(Default)]
pub(crate) struct PendingLeafHooks {
    /// leaf → (the leaf, deliveries still expected, whether one has arrived)
    pending: HashMap<*const TensorImpl, (Tensor, usize, bool)>,
}

impl PendingLeafHooks {
    /// Counts one edge of the graph that will deliver a gradient to `leaf`.
    pub(crate) fn expect(&mut self, leaf: &Tensor) {
        if leaf.has_post_accumulate_grad_hooks() {
            self.pending
                .entry(Arc::as_ptr(&leaf.0))
                .or_insert_with(|| (leaf.clone(), 0, false))
                .1 += 1;
        }
    }

    /// Records that a gradient was accumulated into `leaf`; runs its hooks after the last one.
    pub(crate) fn delivered(&mut self, leaf: &Tensor) {
        self.count_down(leaf, true);
    }

    /// Records that an edge into `leaf` carried no gradient (its op returned `None` for it).
    pub(crate) fn skipped(&mut self, leaf: &Tensor) {
        self.count_down(leaf, false);
    }

    /// One edge into `leaf` is done; after the last, the hooks run if any gradient arrived.
    fn count_down(&mut self, leaf: &Tensor, arrived: bool) {
        let key = Arc::as_ptr(&leaf.0);
        let Some(entry) = self.pending.get_mut(&key) else {
            return;
        };
        entry.1 = entry.1.saturating_sub(1);
        entry.2 |= arrived;
        if entry.1 == 0 {
            let (t, _, arrived) = self.pending.remove(&key).expect("entry found above");
            if arrived {
                t.run_post_accumulate_grad_hooks();
            }
        }
    }

    /// End of backward: every counted edge has been counted down by now (the engine releases
    /// every edge), so this only catches a leaf whose count was off; its hooks still run once.
    pub(crate) fn finish(&mut self) {
        let late: Vec<Tensor> = self
            .pending
            .drain()
            .filter(|(_, (_, _, arrived))| *arrived)
            .map(|(_, (t, _, _))| t)
            .collect();
        for t in late {
            t.run_post_accumulate_grad_hooks();
        }
    }
}
