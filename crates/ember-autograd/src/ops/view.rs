//! Views: new layouts over the same storage (no copies), and their backward.

use crate::grad_mode::is_grad_enabled;
use crate::graph::{needs_grad, record};
use crate::shape_arg::IntoShape;
use crate::tensor::Tensor;
use ember_kernels::shape::{infer_shape, normalize_dim};
use ember_kernels::Layout;
use smallvec::smallvec;
use std::sync::Arc;

impl Tensor {
    /// A view with another layout, recording `backward` under `name` when needed. `replay` takes
    /// the same view of any tensor shaped like `self`: in-place ops through the view use it to
    /// rewrite the base's history (see `ops/inplace.rs`). A view taken under `no_grad` of a tensor
    /// that requires grad is not differentiable and is not tracked, as in PyTorch.
    #[track_caller]
    fn view_rec(
        &self,
        layout: Layout,
        name: &'static str,
        backward: impl Fn(&Tensor) -> Tensor + Send + Sync + 'static,
        replay: impl Fn(&Tensor) -> Tensor + Send + Sync + 'static,
    ) -> Tensor {
        if !is_grad_enabled() && self.requires_grad() {
            return self.with_layout(layout);
        }
        let out = self.tracked_view(layout, Arc::new(replay));
        if !needs_grad(&[self]) {
            return out;
        }
        record(out, name, &[self], move |g| smallvec![Some(backward(g))])
    }

    /// The same elements with another shape, sharing storage; panics when the strides make that
    /// impossible (use `reshape`, which copies then). One size may be `-1`.
    #[track_caller]
    pub fn view(&self, shape: impl IntoShape) -> Tensor {
        let shape = infer_shape("view", &shape.to_isizes(), self.numel(), self.shape());
        let Some(layout) = self.layout().view(&shape) else {
            panic!("view size is not compatible with input tensor's size and stride (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead. (view {:?} of shape {:?} with strides {:?})", shape.as_slice(), self.shape(), self.stride())
        };
        let in_shape = self.shape().to_vec();
        self.view_rec(
            layout,
            "ViewBackward0",
            move |g| g.reshape(&in_shape),
            move |t| t.view(&shape[..]),
        )
    }

    /// Like `view`, but copies when the layout does not allow a view.
    #[track_caller]
    pub fn reshape(&self, shape: impl IntoShape) -> Tensor {
        let dims = infer_shape("reshape", &shape.to_isizes(), self.numel(), self.shape());
        match self.layout().view(&dims) {
            Some(_) => self.view(&dims[..]),
            None => self.contiguous().view(&dims[..]),
        }
    }

    /// Flattens dims `start..=end` into one.
    #[track_caller]
    pub fn flatten(&self, start_dim: isize, end_dim: isize) -> Tensor {
        if self.dim() == 0 {
            return self.reshape([1]);
        }
        let (s, e) = (
            normalize_dim(start_dim, self.dim()),
            normalize_dim(end_dim, self.dim()),
        );
        let mut shape: Vec<usize> = self.shape()[..s].to_vec();
        shape.push(self.shape()[s..=e].iter().product());
        shape.extend_from_slice(&self.shape()[e + 1..]);
        self.reshape(shape)
    }

    /// Swaps two dims.
    #[track_caller]
    pub fn transpose(&self, dim0: isize, dim1: isize) -> Tensor {
        let (a, b) = (
            normalize_dim(dim0, self.dim()),
            normalize_dim(dim1, self.dim()),
        );
        self.view_rec(
            self.layout().transpose(a, b),
            "TransposeBackward0",
            move |g| g.transpose(a as isize, b as isize),
            move |t| t.transpose(a as isize, b as isize),
        )
    }

    /// Transpose of a tensor with at most 2 dims (`x.t()`).
    #[track_caller]
    pub fn t(&self) -> Tensor {
        if self.dim() > 2 {
            panic!(
                "t() expects a tensor with <= 2 dimensions, but self is {}D",
                self.dim()
            );
        }
        if self.dim() < 2 {
            return self.view_rec(
                self.layout().clone(),
                "TBackward0",
                |g| g.clone(),
                |t| t.t(),
            );
        }
        self.view_rec(
            self.layout().transpose(0, 1),
            "TBackward0",
            |g| g.t(),
            |t| t.t(),
        )
    }

    /// Reorders dims: output dim `i` is input dim `dims[i]`.
    #[track_caller]
    pub fn permute(&self, dims: impl IntoShape) -> Tensor {
        // A loop, not a closure: a closure would hide the caller's line from `normalize_dim`.
        let mut d = Vec::new();
        for x in dims.to_isizes() {
            d.push(normalize_dim(x, self.dim()));
        }
        let mut inv = vec![0isize; d.len()];
        for (i, &x) in d.iter().enumerate() {
            if x < inv.len() {
                inv[x] = i as isize;
            }
        }
        let layout = self.layout().permute(&d);
        self.view_rec(
            layout,
            "PermuteBackward0",
            move |g| g.permute(&inv[..]),
            move |t| t.permute(&d[..]),
        )
    }

    /// Elements `start..start+length` of `dim`.
    #[track_caller]
    pub fn narrow(&self, dim: isize, start: usize, length: usize) -> Tensor {
        let d = normalize_dim(dim, self.dim());
        self.slice(d as isize, start, start + length, 1)
    }

    /// `x[..., start:end:step, ...]` along `dim` (no copy).
    #[track_caller]
    pub fn slice(&self, dim: isize, start: usize, end: usize, step: usize) -> Tensor {
        let d = normalize_dim(dim, self.dim());
        let end = end.min(self.shape()[d]);
        let start = start.min(end);
        let layout = self.layout().slice(d, start, end, step);
        let in_shape = self.shape().to_vec();
        self.view_rec(
            layout,
            "SliceBackward0",
            move |g| g.embed_into(&in_shape, move |t| t.slice(d as isize, start, end, step)),
            move |t| t.slice(d as isize, start, end, step),
        )
    }

    /// `x[..., index, ...]`: drops `dim`.
    #[track_caller]
    pub fn select(&self, dim: isize, index: usize) -> Tensor {
        let d = normalize_dim(dim, self.dim());
        let layout = self.layout().select(d, index);
        let in_shape = self.shape().to_vec();
        self.view_rec(
            layout,
            "SelectBackward0",
            move |g| g.embed_into(&in_shape, move |t| t.select(d as isize, index)),
            move |t| t.select(d as isize, index),
        )
    }

    /// Broadcasts to `shape` without copying (`-1` keeps a size).
    #[track_caller]
    pub fn expand(&self, shape: impl IntoShape) -> Tensor {
        let req = shape.to_isizes();
        let lead = req.len().saturating_sub(self.dim());
        let dims: Vec<usize> = req
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                if s == -1 && i >= lead {
                    self.shape()[i - lead]
                } else {
                    s.max(0) as usize
                }
            })
            .collect();
        let layout = self.layout().expand(&dims);
        let in_shape = self.shape().to_vec();
        self.view_rec(
            layout,
            "ExpandBackward0",
            move |g| g.sum_to(&in_shape),
            move |t| t.expand(&dims[..]),
        )
    }

    /// Same as `expand` with an explicit shape (`torch.broadcast_to`).
    #[track_caller]
    pub fn broadcast_to(&self, shape: impl IntoShape) -> Tensor {
        self.expand(shape)
    }

    /// `expand` to another tensor's shape.
    #[track_caller]
    pub fn expand_as(&self, other: &Tensor) -> Tensor {
        self.expand(other.shape())
    }

    /// Removes `dim` if its size is 1.
    #[track_caller]
    pub fn squeeze_dim(&self, dim: isize) -> Tensor {
        let d = normalize_dim(dim, self.dim());
        let in_shape = self.shape().to_vec();
        self.view_rec(
            self.layout().squeeze(d),
            "SqueezeBackward1",
            move |g| g.reshape(&in_shape),
            move |t| t.squeeze_dim(d as isize),
        )
    }

    /// Removes every size-1 dim.
    #[track_caller]
    pub fn squeeze(&self) -> Tensor {
        let in_shape = self.shape().to_vec();
        self.view_rec(
            self.layout().squeeze_all(),
            "SqueezeBackward0",
            move |g| g.reshape(&in_shape),
            |t| t.squeeze(),
        )
    }

    /// Inserts a size-1 dim at `dim` (negative counts from the end of the result).
    #[track_caller]
    pub fn unsqueeze(&self, dim: isize) -> Tensor {
        let d = normalize_dim(dim, self.dim() + 1);
        self.view_rec(
            self.layout().unsqueeze(d),
            "UnsqueezeBackward0",
            move |g| g.squeeze_dim(d as isize),
            move |t| t.unsqueeze(d as isize),
        )
    }

    /// Contiguous tensor with the same elements (a copy only when not contiguous already).
    #[track_caller]
    pub fn contiguous(&self) -> Tensor {
        if self.is_contiguous() {
            return self.clone();
        }
        let out = Tensor::from_storage(self.storage().contiguous(self.layout()), self.shape());
        if !needs_grad(&[self]) {
            return out;
        }
        record(out, "CloneBackward0", &[self], |g| {
            smallvec![Some(g.clone())]
        })
    }

    /// A copy with its own storage (`clone()` in PyTorch; differentiable).
    #[track_caller]
    pub fn copy(&self) -> Tensor {
        let out = Tensor::from_storage(self.storage().contiguous(self.layout()), self.shape());
        if !needs_grad(&[self]) {
            return out;
        }
        record(out, "CloneBackward0", &[self], |g| {
            smallvec![Some(g.clone())]
        })
    }

    /// Zeros of `shape` with `g` written into the part `view` selects: the backward of slicing.
    /// Differentiable in `g` (its own backward slices again), so double backward works.
    #[track_caller]
    fn embed_into(
        &self,
        shape: &[usize],
        view: impl Fn(&Tensor) -> Tensor + Send + Sync + Clone + 'static,
    ) -> Tensor {
        let out = Tensor::zeros_on(shape, self.dtype(), self.device());
        {
            let target = view(&out);
            target
                .storage_mut()
                .copy_from(target.layout(), &self.storage(), self.layout());
        }
        if !needs_grad(&[self]) {
            return out;
        }
        record(out, "SliceScatterBackward0", &[self], move |g| {
            smallvec![Some(view(g))]
        })
    }
}
