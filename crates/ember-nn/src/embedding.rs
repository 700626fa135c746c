//! `Embedding`: a lookup table of learned vectors indexed by integer ids.

use crate::init;
use crate::module::{Module, Parameter, TrainFlag};
use ember_autograd::smallvec::smallvec;
use ember_autograd::{custom_op, DType, Tensor};
use ember_nn_derive::Module;

/// Rows of `weight` at `indices` (any integer dtype and shape), with a gradient that
/// scatter-adds into the used rows and skips `padding_idx`.
#[track_caller]
pub(crate) fn embedding_impl(
    indices: &Tensor,
    weight: &Tensor,
    padding_idx: Option<usize>,
) -> Tensor {
    if !indices.dtype().is_int() {
        panic!(
            "Embedding: expected integer indices (int64), got {} of shape {:?}",
            indices.dtype().name(),
            indices.shape()
        );
    }
    if weight.dim() != 2 {
        panic!(
            "Embedding: the weight must be 2-D (num_embeddings, embedding_dim), got shape {:?}",
            weight.shape()
        );
    }
    let (num, dim) = (weight.shape()[0], weight.shape()[1]);
    let flat = indices.reshape([-1]).to_dtype(DType::I64);
    if let Some(bad) = flat
        .to_vec::<i64>()
        .into_iter()
        .find(|&i| i < 0 || i as usize >= num)
    {
        panic!("Embedding: index {bad} is out of range for {num} embeddings");
    }
    let out = {
        let _g = ember_autograd::no_grad();
        let mut shape = indices.shape().to_vec();
        shape.push(dim);
        weight.index_select(0, &flat).reshape(shape)
    };
    custom_op(out, "EmbeddingBackward0", &[weight], move |g| {
        let n = flat.numel();
        let g2 = g.reshape([n, dim]);
        let idx = flat.unsqueeze(1).expand([n, dim]);
        let mut gw =
            Tensor::full_on(&[num, dim], 0.0, g.dtype(), g.device()).scatter_add(0, &idx, &g2);
        if let Some(p) = padding_idx {
            let mask: Vec<bool> = (0..num).map(|i| i == p).collect();
            let mask = Tensor::from_vec(mask, [num, 1]).to_device(g.device());
            gw = gw.masked_fill(&mask, 0.0);
        }
        smallvec![Some(gw)]
    })
}

/// A table of `num_embeddings` vectors of size `embedding_dim` (`nn.Embedding`), initialised
/// from `N(0, 1)`; `forward` maps integer ids of any shape to `ids.shape + [embedding_dim]`. The
/// `padding_idx` row starts at zero and never gets a gradient.
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_nn::{Embedding, Module};
/// let emb = Embedding::new(10, 3);
/// let ids = Tensor::from_slice(&[1i64, 2, 4, 5], [2, 2]);
/// assert_eq!(emb.forward(&ids).shape(), &[2, 2, 3]);
/// ```
#[derive(Module)]
pub struct Embedding {
    /// The table, `(num_embeddings, embedding_dim)`.
    pub weight: Parameter,
    /// Number of rows.
    pub num_embeddings: usize,
    /// Size of each vector.
    pub embedding_dim: usize,
    /// The row that stays zero and gets no gradient.
    pub padding_idx: Option<usize>,
    training: TrainFlag,
}

impl Embedding {
    /// `Embedding(num_embeddings, embedding_dim)` with `N(0, 1)` rows.
    #[track_caller]
    pub fn new(num_embeddings: usize, embedding_dim: usize) -> Embedding {
        let w = Tensor::zeros([num_embeddings, embedding_dim]);
        init::normal_(&w, 0.0, 1.0);
        Embedding {
            weight: Parameter::new(w),
            num_embeddings,
            embedding_dim,
            padding_idx: None,
            training: TrainFlag::new(),
        }
    }

    /// A table holding `weight` (`Embedding.from_pretrained`); `freeze` stops its gradient.
    #[track_caller]
    pub fn from_pretrained(weight: Tensor, freeze: bool) -> Embedding {
        if weight.dim() != 2 {
            panic!(
                "Embedding: the weight must be 2-D (num_embeddings, embedding_dim), got shape {:?}",
                weight.shape()
            );
        }
        let (n, d) = (weight.shape()[0], weight.shape()[1]);
        let p = Parameter::new(weight);
        if freeze {
            // The parameter's handle shares its autograd state: switch it off for all of them.
            p.tensor().requires_grad_(false);
        }
        Embedding {
            weight: p,
            num_embeddings: n,
            embedding_dim: d,
            padding_idx: None,
            training: TrainFlag::new(),
        }
    }

    /// Sets `padding_idx` (negative counts from the end) and zeroes that row.
    #[track_caller]
    pub fn padding_idx(mut self, padding_idx: isize) -> Embedding {
        let n = self.num_embeddings as isize;
        if padding_idx >= n || padding_idx < -n {
            panic!("Embedding: padding_idx {padding_idx} must be within num_embeddings ({n})");
        }
        let p = if padding_idx < 0 {
            padding_idx + n
        } else {
            padding_idx
        } as usize;
        let _g = ember_autograd::no_grad();
        self.weight.select(0, p).fill_(0.0);
        self.padding_idx = Some(p);
        self
    }
}

impl Module for Embedding {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        embedding_impl(input, &self.weight, self.padding_idx)
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        let mut s = format!("{}, {}", self.num_embeddings, self.embedding_dim);
        if let Some(p) = self.padding_idx {
            s.push_str(&format!(", padding_idx={p}"));
        }
        s
    }
}
