//! Indexing ops: index_select, gather, scatter, masked_fill, cat/stack, split/chunk, one_hot.

use crate::graph::{needs_grad, record};
use crate::ops::elementwise::check_device;
use crate::tensor::Tensor;
use ember_kernels::shape::normalize_dim;
use ember_kernels::{DType, Scalar, Storage};
use smallvec::smallvec;

#[track_caller]
fn check_index(op: &str, index: &Tensor) {
    if !index.dtype().is_int() {
        panic!(
            "{op}: expected an integer index tensor (int64), got {}",
            index.dtype()
        );
    }
}

impl Tensor {
    /// Entries of `dim` at `index` (1-D), `torch.index_select`.
    #[track_caller]
    pub fn index_select(&self, dim: isize, index: &Tensor) -> Tensor {
        check_index("index_select", index);
        if index.dim() > 1 {
            panic!(
                "index_select: index must be 1-D, got shape {:?}",
                index.shape()
            );
        }
        let d = normalize_dim(dim, self.dim());
        let idx = index.reshape([-1]);
        let s = self
            .storage()
            .index_select(self.layout(), d, &idx.storage(), idx.layout());
        let mut shape = self.shape().to_vec();
        if !shape.is_empty() {
            shape[d] = idx.numel();
        }
        let out = Tensor::from_storage(s, &shape);
        if !needs_grad(&[self]) {
            return out;
        }
        let in_shape = self.shape().to_vec();
        record(out, "IndexSelectBackward0", &[self], move |g| {
            // index_add: scatter-add g along d at the selected positions.
            let mut view = vec![1isize; g.dim()];
            view[d] = -1;
            let full_idx = idx.view(&view[..]).expand(g.shape());
            smallvec![Some(
                Tensor::zeros_on(&in_shape, g.dtype(), g.device())
                    .scatter_add(d as isize, &full_idx, g)
            )]
        })
    }

    /// `torch.gather(self, dim, index)`.
    #[track_caller]
    pub fn gather(&self, dim: isize, index: &Tensor) -> Tensor {
        check_index("gather", index);
        let d = normalize_dim(dim, self.dim());
        let s = self
            .storage()
            .gather(self.layout(), d, &index.storage(), index.layout());
        let out = Tensor::from_storage(s, index.shape());
        if !needs_grad(&[self]) {
            return out;
        }
        let (in_shape, idx) = (self.shape().to_vec(), index.clone());
        record(out, "GatherBackward0", &[self], move |g| {
            smallvec![Some(
                Tensor::zeros_on(&in_shape, g.dtype(), g.device()).scatter_add(d as isize, &idx, g)
            )]
        })
    }

    #[track_caller]
    fn scatter_impl(&self, dim: isize, index: &Tensor, src: &Tensor, add: bool) -> Tensor {
        check_index(if add { "scatter_add" } else { "scatter" }, index);
        check_device("scatter", self, src);
        let d = normalize_dim(dim, self.dim());
        let src_c = src.to_dtype(self.dtype());
        let s = self.storage().scatter(
            self.layout(),
            d,
            &index.storage(),
            index.layout(),
            &src_c.storage(),
            src_c.layout(),
            add,
        );
        let out = Tensor::from_storage(s, self.shape());
        if !needs_grad(&[self, src]) {
            return out;
        }
        let idx = index.clone();
        let (need_self, need_src) = (self.requires_grad(), src.requires_grad());
        let src_shape = src.shape().to_vec();
        let name = if add {
            "ScatterAddBackward0"
        } else {
            "ScatterBackward0"
        };
        record(out, name, &[self, src], move |g| {
            let gs = need_self.then(|| {
                if add {
                    g.clone()
                } else {
                    g.scatter(d as isize, &idx, &g.zeros_like())
                }
            });
            let gsrc = need_src.then(|| {
                let got = g.gather(d as isize, &idx);
                if got.shape() == src_shape.as_slice() {
                    got
                } else {
                    Tensor::zeros_on(&src_shape, g.dtype(), g.device()).scatter_add(
                        d as isize,
                        &crate::ops::index::arange_like(&idx, d),
                        &got,
                    )
                }
            });
            smallvec![gs, gsrc]
        })
    }

    /// Out-of-place `scatter`: a copy of `self` with `src` written at `index` along `dim`.
    #[track_caller]
    pub fn scatter(&self, dim: isize, index: &Tensor, src: &Tensor) -> Tensor {
        self.scatter_impl(dim, index, src, false)
    }

    /// Out-of-place `scatter_add`: a copy of `self` with `src` added at `index` along `dim`.
    #[track_caller]
    pub fn scatter_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Tensor {
        self.scatter_impl(dim, index, src, true)
    }

    /// `value` where `mask` (broadcast) is true.
    #[track_caller]
    pub fn masked_fill(&self, mask: &Tensor, value: impl Into<Scalar>) -> Tensor {
        if mask.dtype() != DType::Bool {
            panic!("masked_fill: expected a bool mask, got {}", mask.dtype());
        }
        let lm = mask.layout().expand(self.shape());
        let s = self
            .storage()
            .masked_fill(self.layout(), &mask.storage(), &lm, value.into());
        let out = Tensor::from_storage(s, self.shape());
        if !needs_grad(&[self]) {
            return out;
        }
        let m = mask.clone();
        record(out, "MaskedFillBackward0", &[self], move |g| {
            smallvec![Some(g.masked_fill(&m, 0.0))]
        })
    }

    /// Concatenates along `dim` (`torch.cat`).
    #[track_caller]
    pub fn cat(tensors: &[Tensor], dim: isize) -> Tensor {
        if tensors.is_empty() {
            panic!("cat: expected a non-empty list of Tensors");
        }
        let d = normalize_dim(dim, tensors[0].dim());
        let dtype = tensors.iter().map(|t| t.dtype()).max().unwrap();
        let conv: Vec<Tensor> = tensors.iter().map(|t| t.to_dtype(dtype)).collect();
        for t in &conv[1..] {
            check_device("cat", &conv[0], t);
        }
        let guards: Vec<_> = conv.iter().map(|t| t.storage()).collect();
        let parts: Vec<(&Storage, &ember_kernels::Layout)> = guards
            .iter()
            .zip(&conv)
            .map(|(g, t)| (&**g, t.layout()))
            .collect();
        let s = Storage::cat(&parts, d);
        let mut shape = conv[0].shape().to_vec();
        shape[d] = conv.iter().map(|t| t.shape()[d]).sum();
        drop(parts);
        drop(guards);
        let out = Tensor::from_storage(s, &shape);
        let refs: Vec<&Tensor> = tensors.iter().collect();
        if !needs_grad(&refs) {
            return out;
        }
        let sizes: Vec<usize> = tensors.iter().map(|t| t.shape()[d]).collect();
        record(out, "CatBackward0", &refs, move |g| {
            let mut start = 0;
            sizes
                .iter()
                .map(|&n| {
                    let part = g.narrow(d as isize, start, n);
                    start += n;
                    Some(part)
                })
                .collect()
        })
    }

    /// Stacks equal-shaped tensors along a new `dim` (`torch.stack`).
    #[track_caller]
    pub fn stack(tensors: &[Tensor], dim: isize) -> Tensor {
        if tensors.is_empty() {
            panic!("stack: expected a non-empty list of Tensors");
        }
        for t in tensors {
            if t.shape() != tensors[0].shape() {
                panic!(
                    "stack: expects each tensor to be equal size, but got {:?} at entry 0 and {:?}",
                    tensors[0].shape(),
                    t.shape()
                );
            }
        }
        let d = normalize_dim(dim, tensors[0].dim() + 1);
        let parts: Vec<Tensor> = tensors.iter().map(|t| t.unsqueeze(d as isize)).collect();
        Tensor::cat(&parts, d as isize)
    }

    /// Splits into views of `split_size` along `dim` (the last may be smaller).
    #[track_caller]
    pub fn split(&self, split_size: usize, dim: isize) -> Vec<Tensor> {
        assert!(split_size > 0, "split: split_size must be positive");
        let d = normalize_dim(dim, self.dim());
        let n = self.shape()[d];
        (0..n.div_ceil(split_size))
            .map(|i| {
                self.narrow(
                    d as isize,
                    i * split_size,
                    split_size.min(n - i * split_size),
                )
            })
            .collect()
    }

    /// Splits into `chunks` views along `dim` (`torch.chunk`).
    #[track_caller]
    pub fn chunk(&self, chunks: usize, dim: isize) -> Vec<Tensor> {
        assert!(chunks > 0, "chunk: chunks must be positive");
        let d = normalize_dim(dim, self.dim());
        self.split(self.shape()[d].div_ceil(chunks).max(1), dim)
    }

    /// One-hot encoding of integer class indices (`F.one_hot`); `num_classes` of `None` uses
    /// `max + 1`.
    #[track_caller]
    pub fn one_hot(&self, num_classes: Option<usize>) -> Tensor {
        if self.dtype() != DType::I64 {
            panic!(
                "one_hot is only applicable to index tensor of type int64, got {}",
                self.dtype()
            );
        }
        let n = num_classes.unwrap_or_else(|| {
            if self.numel() == 0 {
                0
            } else {
                self.max().item() as usize + 1
            }
        });
        let s = self.storage().one_hot(self.layout(), n);
        let mut shape = self.shape().to_vec();
        shape.push(n);
        Tensor::from_storage(s, &shape)
    }
}

/// Index `i` at each position along `d` of `idx`'s shape (used to place a partial src gradient).
#[track_caller]
pub(crate) fn arange_like(idx: &Tensor, d: usize) -> Tensor {
    let n = idx.shape()[d];
    let mut view = vec![1isize; idx.dim()];
    view[d] = -1;
    let range = Storage::arange(0.0, n as f64, 1.0, DType::I64, idx.device());
    Tensor::from_storage(range, &[n])
        .view(&view[..])
        .expand(idx.shape())
        .contiguous()
}
