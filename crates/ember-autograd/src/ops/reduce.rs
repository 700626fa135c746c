//! Reductions and softmax: one path (`reduce_rec`) turns user dims into the kernel's keepdim
//! reduction, squeezes the result and records the backward.

use crate::grad_mode::is_grad_enabled;
use crate::graph::{needs_grad, record, Saved};
use crate::shape_arg::IntoDims;
use crate::tensor::Tensor;
use ember_kernels::op::ReduceOp;
use ember_kernels::reduce::ArgReduceOp;
use ember_kernels::shape::normalize_dim;
use ember_kernels::DType;
use smallvec::{smallvec, SmallVec};

/// Normalised, sorted, deduplicated dims (all dims for an empty list).
#[track_caller]
fn norm_dims(dims: &[isize], ndim: usize) -> SmallVec<[usize; 6]> {
    // A loop, not a closure: a closure would hide the caller's line from `normalize_dim`.
    let mut d: SmallVec<[usize; 6]> = SmallVec::new();
    for &x in dims {
        d.push(normalize_dim(x, ndim));
    }
    d.sort_unstable();
    d.dedup();
    if d.is_empty() || ndim == 0 {
        d = (0..ndim).collect();
    }
    d
}

/// The shape after reducing `dims`, with or without the size-1 dims.
#[track_caller]
fn reduced_shape(shape: &[usize], dims: &[usize], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, &s)| match (dims.contains(&i), keepdim) {
            (true, true) => Some(1),
            (true, false) => None,
            (false, _) => Some(s),
        })
        .collect()
}

impl Tensor {
    /// Broadcasts a reduced gradient back over the reduced dims of `in_shape`.
    #[track_caller]
    fn unreduce(&self, in_shape: &[usize], dims: &[usize], keepdim: bool) -> Tensor {
        let g = if keepdim {
            self.clone()
        } else {
            self.reshape(reduced_shape(in_shape, dims, true))
        };
        g.expand(in_shape)
    }

    #[track_caller]
    fn reduce_kernel(&self, dims: &[usize], op: ReduceOp, keepdim: bool) -> Tensor {
        let s = self.storage().reduce(self.layout(), dims, op);
        Tensor::from_storage(s, &reduced_shape(self.shape(), dims, keepdim))
    }

    /// Sum of all elements (0-dim result; integers sum to int64).
    #[track_caller]
    pub fn sum(&self) -> Tensor {
        self.sum_impl(&[], false, "SumBackward0")
    }

    /// Sum over `dims` (`keepdim` keeps them as size 1).
    #[track_caller]
    pub fn sum_dim(&self, dims: impl IntoDims, keepdim: bool) -> Tensor {
        self.sum_impl(&dims.to_dim_list(), keepdim, "SumBackward1")
    }

    #[track_caller]
    fn sum_impl(&self, dims: &[isize], keepdim: bool, name: &'static str) -> Tensor {
        let dims = norm_dims(dims, self.dim());
        let out = self.reduce_kernel(&dims, ReduceOp::Sum, keepdim);
        if !needs_grad(&[self]) {
            return out;
        }
        let in_shape = self.shape().to_vec();
        record(out, name, &[self], move |g| {
            smallvec![Some(g.unreduce(&in_shape, &dims, keepdim))]
        })
    }

    /// Sums a broadcast gradient back down to `shape` (the reverse of broadcasting).
    #[track_caller]
    pub fn sum_to(&self, shape: &[usize]) -> Tensor {
        if self.shape() == shape {
            return self.clone();
        }
        let lead = self.dim() - shape.len();
        let dims: Vec<isize> = (0..self.dim())
            .filter(|&i| i < lead || (shape[i - lead] == 1 && self.shape()[i] != 1))
            .map(|i| i as isize)
            .collect();
        if dims.is_empty() {
            return self.reshape(shape);
        }
        self.sum_dim(&dims[..], true).reshape(shape)
    }

    /// Mean of all elements (float tensors only, as PyTorch).
    #[track_caller]
    pub fn mean(&self) -> Tensor {
        self.mean_impl(&[], false, "MeanBackward0")
    }

    /// Mean over `dims`.
    #[track_caller]
    pub fn mean_dim(&self, dims: impl IntoDims, keepdim: bool) -> Tensor {
        self.mean_impl(&dims.to_dim_list(), keepdim, "MeanBackward1")
    }

    #[track_caller]
    fn mean_impl(&self, dims: &[isize], keepdim: bool, name: &'static str) -> Tensor {
        if !self.dtype().is_float() {
            panic!("mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: {}", self.dtype().name());
        }
        let dims = norm_dims(dims, self.dim());
        let n: usize = dims.iter().map(|&d| self.shape()[d]).product();
        let out = {
            let _g = crate::no_grad();
            &self.reduce_kernel(&dims, ReduceOp::Sum, keepdim) / n as f64
        };
        if !needs_grad(&[self]) {
            return out;
        }
        let in_shape = self.shape().to_vec();
        record(out, name, &[self], move |g| {
            smallvec![Some(&g.unreduce(&in_shape, &dims, keepdim) / n as f64)]
        })
    }

    /// Product of all elements.
    #[track_caller]
    pub fn prod(&self) -> Tensor {
        self.prod_impl(&[], false, "ProdBackward0")
    }

    /// Product over one dim.
    #[track_caller]
    pub fn prod_dim(&self, dim: isize, keepdim: bool) -> Tensor {
        self.prod_impl(&[dim], keepdim, "ProdBackward1")
    }

    #[track_caller]
    fn prod_impl(&self, dims: &[isize], keepdim: bool, name: &'static str) -> Tensor {
        let dims = norm_dims(dims, self.dim());
        let out = self.reduce_kernel(&dims, ReduceOp::Prod, keepdim);
        if !needs_grad(&[self]) {
            return out;
        }
        let in_shape = self.shape().to_vec();
        let (x, o) = (Saved::new(self), Saved::output(&out));
        record(out, name, &[self], move |g| {
            // d prod / d x_i = prod / x_i (inputs with zeros get the product of the others)
            let x = x.get();
            let full = o.value().unreduce(&in_shape, &dims, keepdim);
            let others = prod_of_others(x, &dims);
            let gi = g.unreduce(&in_shape, &dims, keepdim);
            let d = Tensor::where_cond(&x.eq(0.0), &others, &(&full / x));
            smallvec![Some(&gi * &d)]
        })
    }

    #[track_caller]
    fn amax_impl(&self, dims: &[isize], keepdim: bool, op: ReduceOp, name: &'static str) -> Tensor {
        let dims = norm_dims(dims, self.dim());
        let out = self.reduce_kernel(&dims, op, keepdim);
        if !needs_grad(&[self]) {
            return out;
        }
        let in_shape = self.shape().to_vec();
        let (x, o) = (Saved::new(self), Saved::output(&out));
        record(out, name, &[self], move |g| {
            // The gradient is shared evenly between tied extreme values, as PyTorch's amax.
            let x = x.get();
            let mask = x
                .eq(o.value().unreduce(&in_shape, &dims, keepdim))
                .to_dtype(x.dtype());
            let count = mask.sum_dim(
                &dims.iter().map(|&d| d as isize).collect::<Vec<_>>()[..],
                true,
            );
            let gi = g.unreduce(&in_shape, &dims, keepdim);
            smallvec![Some(&(&gi * &mask) / &count)]
        })
    }

    /// True when every element is non-zero (`torch.all`; true for an empty tensor), as a 0-dim
    /// bool tensor computed where the elements live.
    #[track_caller]
    pub fn all(&self) -> Tensor {
        self.truth_reduce(ReduceOp::Min, true)
    }

    /// True when some element is non-zero (`torch.any`; false for an empty tensor).
    #[track_caller]
    pub fn any(&self) -> Tensor {
        self.truth_reduce(ReduceOp::Max, false)
    }

    #[track_caller]
    fn truth_reduce(&self, op: ReduceOp, empty: bool) -> Tensor {
        if self.numel() == 0 {
            return Tensor::full_on(&[], empty as u8 as f64, DType::Bool, self.device());
        }
        let bits = self.detach().to_dtype(DType::Bool).to_dtype(DType::U8);
        let dims = norm_dims(&[], self.dim());
        bits.reduce_kernel(&dims, op, false).to_dtype(DType::Bool)
    }

    /// Largest element (0-dim).
    #[track_caller]
    pub fn max(&self) -> Tensor {
        self.amax_impl(&[], false, ReduceOp::Max, "MaxBackward1")
    }
    /// Smallest element (0-dim).
    #[track_caller]
    pub fn min(&self) -> Tensor {
        self.amax_impl(&[], false, ReduceOp::Min, "MinBackward1")
    }
    /// Largest values over `dims` (`torch.amax`).
    #[track_caller]
    pub fn amax(&self, dims: impl IntoDims, keepdim: bool) -> Tensor {
        self.amax_impl(&dims.to_dim_list(), keepdim, ReduceOp::Max, "AmaxBackward0")
    }
    /// Smallest values over `dims` (`torch.amin`).
    #[track_caller]
    pub fn amin(&self, dims: impl IntoDims, keepdim: bool) -> Tensor {
        self.amax_impl(&dims.to_dim_list(), keepdim, ReduceOp::Min, "AminBackward0")
    }

    #[track_caller]
    fn max_dim_impl(
        &self,
        dim: isize,
        keepdim: bool,
        op: ArgReduceOp,
        name: &'static str,
    ) -> (Tensor, Tensor) {
        let d = normalize_dim(dim, self.dim());
        let (v, i) = self.storage().arg_reduce(self.layout(), d, op);
        let shape = reduced_shape(self.shape(), &[d], keepdim);
        let (values, indices) = (
            Tensor::from_storage(v, &shape),
            Tensor::from_storage(i, &shape),
        );
        if !needs_grad(&[self]) {
            return (values, indices);
        }
        let in_shape = self.shape().to_vec();
        let idx = indices.clone();
        let values = record(values, name, &[self], move |g| {
            let (g, idx) = if keepdim {
                (g.clone(), idx.clone())
            } else {
                (g.unsqueeze(d as isize), idx.unsqueeze(d as isize))
            };
            smallvec![Some(
                Tensor::zeros_on(&in_shape, g.dtype(), g.device())
                    .scatter_add(d as isize, &idx, &g)
            )]
        });
        (values, indices)
    }

    /// Largest values along `dim` and their indices (first occurrence), `torch.max(x, dim)`.
    #[track_caller]
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> (Tensor, Tensor) {
        self.max_dim_impl(dim, keepdim, ArgReduceOp::Max, "MaxBackward0")
    }
    /// Smallest values along `dim` and their indices, `torch.min(x, dim)`.
    #[track_caller]
    pub fn min_dim(&self, dim: isize, keepdim: bool) -> (Tensor, Tensor) {
        self.max_dim_impl(dim, keepdim, ArgReduceOp::Min, "MinBackward0")
    }

    #[track_caller]
    fn arg_impl(&self, dim: Option<isize>, keepdim: bool, op: ArgReduceOp) -> Tensor {
        match dim {
            Some(d) => {
                let d = normalize_dim(d, self.dim());
                let (_, i) = self.storage().arg_reduce(self.layout(), d, op);
                Tensor::from_storage(i, &reduced_shape(self.shape(), &[d], keepdim))
            }
            None => {
                let flat = self.detach().reshape([-1]);
                let (_, i) = flat.storage().arg_reduce(flat.layout(), 0, op);
                let shape = if keepdim { vec![1; self.dim()] } else { vec![] };
                Tensor::from_storage(i, &shape)
            }
        }
    }

    /// Index of the largest value (over all elements when `dim` is `None`).
    #[track_caller]
    pub fn argmax(&self, dim: Option<isize>, keepdim: bool) -> Tensor {
        self.arg_impl(dim, keepdim, ArgReduceOp::Max)
    }
    /// Index of the smallest value (over all elements when `dim` is `None`).
    #[track_caller]
    pub fn argmin(&self, dim: Option<isize>, keepdim: bool) -> Tensor {
        self.arg_impl(dim, keepdim, ArgReduceOp::Min)
    }

    /// Variance over `dims` with Bessel's correction when `unbiased` (`torch.var`).
    #[track_caller]
    pub fn var(&self, dims: impl IntoDims, unbiased: bool, keepdim: bool) -> Tensor {
        self.var_impl(
            &dims.to_dim_list(),
            if unbiased { 1.0 } else { 0.0 },
            keepdim,
            false,
        )
    }
    /// Standard deviation over `dims` (`torch.std`).
    #[track_caller]
    pub fn std(&self, dims: impl IntoDims, unbiased: bool, keepdim: bool) -> Tensor {
        self.var_impl(
            &dims.to_dim_list(),
            if unbiased { 1.0 } else { 0.0 },
            keepdim,
            true,
        )
    }
    /// Variance of all elements (unbiased).
    #[track_caller]
    pub fn var_all(&self) -> Tensor {
        self.var_impl(&[], 1.0, false, false)
    }
    /// Standard deviation of all elements (unbiased).
    #[track_caller]
    pub fn std_all(&self) -> Tensor {
        self.var_impl(&[], 1.0, false, true)
    }

    #[track_caller]
    fn var_impl(&self, dims: &[isize], correction: f64, keepdim: bool, sqrt: bool) -> Tensor {
        let dims = norm_dims(dims, self.dim());
        let shape = reduced_shape(self.shape(), &dims, keepdim);
        let var =
            Tensor::from_storage(self.storage().var(self.layout(), &dims, correction), &shape);
        let out = if sqrt {
            let _g = crate::no_grad();
            var.sqrt()
        } else {
            var
        };
        if !needs_grad(&[self]) {
            return out;
        }
        let n: usize = dims.iter().map(|&d| self.shape()[d]).product();
        let in_shape = self.shape().to_vec();
        let (x, o) = (Saved::new(self), Saved::output(&out));
        let dl: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
        record(
            out,
            if sqrt { "StdBackward0" } else { "VarBackward0" },
            &[self],
            move |g| {
                let x = x.get();
                let centered = x - &x.mean_dim(&dl[..], true);
                let gi = g.unreduce(&in_shape, &dims, keepdim);
                let mut d = &(&gi * &centered) * (2.0 / (n as f64 - correction));
                if sqrt {
                    d = &(&d / &o.value().unreduce(&in_shape, &dims, keepdim)) * 0.5;
                }
                smallvec![Some(d)]
            },
        )
    }

    /// `log(sum(exp(x)))` over `dims`, computed stably.
    #[track_caller]
    pub fn logsumexp(&self, dims: impl IntoDims, keepdim: bool) -> Tensor {
        let dims = norm_dims(&dims.to_dim_list(), self.dim());
        let s = self.storage().logsumexp(self.layout(), &dims);
        let out = Tensor::from_storage(s, &reduced_shape(self.shape(), &dims, keepdim));
        if !needs_grad(&[self]) {
            return out;
        }
        let in_shape = self.shape().to_vec();
        let (x, o) = (Saved::new(self), Saved::output(&out));
        record(out, "LogsumexpBackward0", &[self], move |g| {
            let x = x.get();
            let lse = o.value().unreduce(&in_shape, &dims, keepdim);
            smallvec![Some(
                &g.unreduce(&in_shape, &dims, keepdim) * &(x - &lse).exp()
            )]
        })
    }

    /// Softmax along `dim` (fused, max-subtracted).
    #[track_caller]
    pub fn softmax(&self, dim: isize) -> Tensor {
        self.softmax_impl(dim, false)
    }

    /// Log-softmax along `dim` (fused, max-subtracted).
    #[track_caller]
    pub fn log_softmax(&self, dim: isize) -> Tensor {
        self.softmax_impl(dim, true)
    }

    #[track_caller]
    fn softmax_impl(&self, dim: isize, log: bool) -> Tensor {
        let d = normalize_dim(dim, self.dim());
        let out = Tensor::from_storage(self.storage().softmax(self.layout(), d, log), self.shape());
        if !needs_grad(&[self]) {
            return out;
        }
        let o = Saved::output(&out);
        let name = if log {
            "LogSoftmaxBackward0"
        } else {
            "SoftmaxBackward0"
        };
        record(out, name, &[self], move |g| {
            let o = o.value();
            if is_grad_enabled() {
                // create_graph: compose differentiable ops so higher derivatives exist.
                let di = d as isize;
                return smallvec![Some(if log {
                    g - &(&o.exp() * &g.sum_dim(di, true))
                } else {
                    &o * &(g - &(g * &o).sum_dim(di, true))
                })];
            }
            let s = g
                .storage()
                .softmax_backward(g.layout(), &o.storage(), o.layout(), d, log);
            smallvec![Some(Tensor::from_storage(s, o.shape()))]
        })
    }
}

/// For each element, the product of the other elements over `dims` (used where an input is 0),
/// from the group's zero count and its product of non-zeros: with no zero it is `p / x`, with one
/// zero it is `p` at the zero and 0 elsewhere, with more it is 0. Device ops only, O(n).
#[track_caller]
fn prod_of_others(x: &Tensor, dims: &[usize]) -> Tensor {
    let _g = crate::no_grad();
    let in_shape = x.shape();
    let is_zero = x.eq(0.0);
    let zeros = is_zero
        .to_dtype(DType::I64)
        .reduce_kernel(dims, ReduceOp::Sum, true)
        .expand(in_shape);
    let nonzero = is_zero.logical_not();
    // Zeros replaced by 1, so the product and the division below see no zero.
    let x1 = x.masked_fill(&is_zero, 1.0);
    let p = x1
        .reduce_kernel(dims, ReduceOp::Prod, true)
        .expand(in_shape);
    let without_zero = &p / &x1;
    let one_zero = p.masked_fill(&nonzero, 0.0);
    Tensor::where_cond(&zeros.eq(0), &without_zero, &one_zero).masked_fill(&zeros.gt(1), 0.0)
}
