//! Indexing ops on `CudaStorage` (`index.cu`): `index_select`, `gather`, `scatter` /
//! `scatter_add`, `masked_fill`, `cat` and `one_hot` — the methods of `cpu/index.rs`, with its
//! checks and messages. Index values are checked on the device (they are not on the host):
//! a bad one is reported at the next synchronisation with the CPU backend's message.

use super::errors;
use super::kernels::{err, Family};
use super::storage::{
    check_extent, for_each_launch, same_device, scalar_bits, CudaStorage, Operand,
};
use crate::cuda_args;
use crate::dtype::{DType, Scalar};
use crate::layout::Layout;
use crate::shape::{at_least_1d, check_dim, check_index_shapes};

fn check_index_dtype(op: &str, index: &CudaStorage) {
    if !matches!(index.dtype(), DType::I64 | DType::U8) {
        panic!(
            "{op}(): Expected dtype int64 for index, got {}",
            index.dtype()
        );
    }
}

/// `name_<dtype>_<index dtype>`.
macro_rules! kname_index {
    ($base:literal, $d:expr, $i:expr) => {
        match $i {
            DType::U8 => match $d {
                DType::Bool => concat!($base, "_bool_u8"),
                DType::U8 => concat!($base, "_u8_u8"),
                DType::I64 => concat!($base, "_i64_u8"),
                DType::F32 => concat!($base, "_f32_u8"),
                DType::F64 => concat!($base, "_f64_u8"),
            },
            _ => match $d {
                DType::Bool => concat!($base, "_bool_i64"),
                DType::U8 => concat!($base, "_u8_i64"),
                DType::I64 => concat!($base, "_i64_i64"),
                DType::F32 => concat!($base, "_f32_i64"),
                DType::F64 => concat!($base, "_f64_i64"),
            },
        }
    };
}

/// `out[i] = src[pos_src(i) + idx[pos_idx(i)] * sd]` over `shape`: operand layouts are the
/// output (contiguous), the source with its `dim` stride zeroed, and the index.
#[allow(clippy::too_many_arguments)]
fn gather_launch(
    op: &'static str,
    out: &CudaStorage,
    src: &CudaStorage,
    lsrc: &Layout,
    index: &CudaStorage,
    lidx: &Layout,
    dim: usize,
    (sd, size): (usize, usize),
) {
    let shape = lsrc.shape();
    let dev = src.device_arc().clone();
    let f = dev.function(
        Family::Index,
        src.dtype(),
        kname_index!("gather", src.dtype(), index.dtype()),
    );
    let lo = Layout::contiguous(shape);
    let ops = [out.operand(&lo), src.operand(lsrc), index.operand(lidx)];
    let (sd, size, dim) = (sd as u64, size as u64, dim as u64);
    let code = errors::code(err::INDEX, op);
    let e = dev.error_slot();
    for_each_launch(shape, &ops, |p, g, contig, grid, block| {
        let (o, s, i, g) = (p[0], p[1], p[2], *g);
        let mut args = cuda_args![o, s, i, g, contig, sd, size, dim, code, e];
        // SAFETY: `gather_T_I(T*, const T*, const I*, ElemGeom, u32, u64, u64, u64, u64, u64*)`;
        // the source positions plus `v * sd` for a checked `v < size` stay inside the source
        // layout, which the caller checked against its storage.
        unsafe { dev.launch(f, (grid, 1, 1), block, 0, &mut args) };
    });
}

impl CudaStorage {
    /// `torch.index_select`: the slices of `dim` named by the 1-D integer `index` (i64 or u8),
    /// into a contiguous storage of the input's shape with `dim` resized to the index length.
    pub fn index_select(
        &self,
        l: &Layout,
        dim: usize,
        index: &CudaStorage,
        li: &Layout,
    ) -> CudaStorage {
        let op = "index_select";
        let l = at_least_1d(l);
        check_dim(op, dim, l.shape());
        if li.ndim() > 1 {
            panic!(
                "{op}(): Index is supposed to be a vector, got shape {:?}",
                li.shape()
            );
        }
        check_index_dtype(op, index);
        same_device(op, self, index);
        let ni = li.numel();
        let mut shape = l.shape().to_vec();
        shape[dim] = ni;
        let out = CudaStorage::uninit(self.device_arc(), shape.iter().product(), self.dtype());
        if out.is_empty() {
            return out;
        }
        check_extent(op, &l, self.len());
        check_extent(op, li, index.len());
        // The source with its `dim` stride zeroed, the index expanded along `dim` only.
        let mut sst = l.strides().to_vec();
        sst[dim] = 0;
        let lsrc = Layout::new(&shape, &sst, l.offset());
        let mut ist = vec![0; shape.len()];
        ist[dim] = if li.ndim() == 1 { li.strides()[0] } else { 0 };
        let lidx = Layout::new(&shape, &ist, li.offset());
        gather_launch(
            op,
            &out,
            self,
            &lsrc,
            index,
            &lidx,
            dim,
            (l.strides()[dim], l.shape()[dim]),
        );
        out
    }

    /// `torch.gather`: `out[i][j][k] = self[i][index[i][j][k]][k]` (for `dim == 1`); the output
    /// has the index's shape.
    pub fn gather(&self, l: &Layout, dim: usize, index: &CudaStorage, li: &Layout) -> CudaStorage {
        let op = "gather";
        let (l, li) = (at_least_1d(l), at_least_1d(li));
        check_dim(op, dim, l.shape());
        check_index_shapes(op, dim, &l, &li, None);
        check_index_dtype(op, index);
        same_device(op, self, index);
        let out = CudaStorage::uninit(self.device_arc(), li.numel(), self.dtype());
        if out.is_empty() {
            return out;
        }
        check_extent(op, &li, index.len());
        // Gathering reads from a non-empty dim (the index is non-empty, so dim's size > 0
        // unless every index is out of range, which the kernel reports).
        if l.numel() > 0 {
            check_extent(op, &l, self.len());
        }
        let mut sst = l.strides().to_vec();
        sst[dim] = 0;
        let lsrc = Layout::new(li.shape(), &sst, l.offset());
        gather_launch(
            op,
            &out,
            self,
            &lsrc,
            index,
            &li,
            dim,
            (l.strides()[dim], l.shape()[dim]),
        );
        out
    }

    /// Out-of-place `self.scatter(dim, index, src)` (or `scatter_add` when `add`): a contiguous
    /// copy of `self` with the first `index.shape` region of `src` (same dtype) written (added)
    /// at the indexed positions. With duplicate indices and `!add`, one of the writes wins (the
    /// CPU backend: the last).
    #[allow(clippy::too_many_arguments)]
    pub fn scatter(
        &self,
        l: &Layout,
        dim: usize,
        index: &CudaStorage,
        li: &Layout,
        src: &CudaStorage,
        ls: &Layout,
        add: bool,
    ) -> CudaStorage {
        let mut out = self.contiguous(l);
        let lo = Layout::contiguous(l.shape());
        out.scatter_impl(&lo, dim, index, li, src, ls, add);
        out
    }

    /// In-place `scatter_add_`: adds the first `index.shape` region of `src` into the elements
    /// of `self` (selected by `l`) at the indexed positions.
    pub fn scatter_add_inplace(
        &mut self,
        l: &Layout,
        dim: usize,
        index: &CudaStorage,
        li: &Layout,
        src: &CudaStorage,
        ls: &Layout,
    ) {
        self.scatter_impl(l, dim, index, li, src, ls, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn scatter_impl(
        &mut self,
        l: &Layout,
        dim: usize,
        index: &CudaStorage,
        li: &Layout,
        src: &CudaStorage,
        ls: &Layout,
        add: bool,
    ) {
        let op = if add { "scatter_add" } else { "scatter" };
        let (l, li, ls) = (at_least_1d(l), at_least_1d(li), at_least_1d(ls));
        check_dim(op, dim, l.shape());
        check_index_shapes(op, dim, &l, &li, Some(&ls));
        check_index_dtype(op, index);
        if src.dtype() != self.dtype() {
            panic!(
                "{op}(): Expected self.dtype to be equal to src.dtype, got {} and {}",
                self.dtype(),
                src.dtype()
            );
        }
        same_device(op, self, index);
        same_device(op, self, src);
        if li.numel() == 0 {
            return;
        }
        check_extent(op, &li, index.len());
        check_extent(op, &ls, src.len());
        if l.numel() > 0 {
            check_extent(op, &l, self.len());
        }
        let mut dst = l.strides().to_vec();
        dst[dim] = 0;
        let ldst = Layout::new(li.shape(), &dst, l.offset());
        let lsrc = Layout::new(li.shape(), ls.strides(), ls.offset());
        let dev = self.device_arc().clone();
        let f = dev.function(
            Family::Index,
            self.dtype(),
            kname_index!("scatter", self.dtype(), index.dtype()),
        );
        let ops = [self.operand(&ldst), index.operand(&li), src.operand(&lsrc)];
        let (sd, size, dimu) = (l.strides()[dim] as u64, l.shape()[dim] as u64, dim as u64);
        let addu = u32::from(add);
        let code = errors::code(err::INDEX, op);
        let e = dev.error_slot();
        for_each_launch(li.shape(), &ops, |p, g, contig, grid, block| {
            let (d, i, s, g) = (p[0], p[1], p[2], *g);
            let mut args = cuda_args![d, i, s, g, contig, sd, size, dimu, addu, code, e];
            // SAFETY: `scatter_T_I(T*, const I*, const T*, ElemGeom, u32, u64, u64, u64, u32,
            // u64, u64*)`; destination positions plus `v * sd` for a checked `v < size` stay
            // inside the destination layout (checked against the storage above).
            unsafe { dev.launch(f, (grid, 1, 1), block, 0, &mut args) };
        });
    }

    /// `masked_fill`: `value` (converted to the storage dtype) where the bool `mask` (layout
    /// already broadcast to `l`'s shape) is true, the input elsewhere; a new contiguous storage.
    pub fn masked_fill(
        &self,
        l: &Layout,
        mask: &CudaStorage,
        lm: &Layout,
        value: Scalar,
    ) -> CudaStorage {
        if mask.dtype() != DType::Bool {
            panic!(
                "masked_fill: only supports boolean masks, but got mask with dtype {}",
                mask.dtype()
            );
        }
        if lm.shape() != l.shape() {
            panic!(
                "masked_fill: the mask's layout {:?} is not broadcast to the input's shape {:?}",
                lm.shape(),
                l.shape()
            );
        }
        let bits = scalar_bits(value, self.dtype());
        CudaStorage::where_impl((mask, lm), None, bits, (self, l))
    }

    /// `torch.cat`: the parts (one dtype, shapes equal except at `dim`) joined along `dim`
    /// into a contiguous storage. 1-D empty parts (shape `[0]`) are skipped, as PyTorch's
    /// legacy rule.
    pub fn cat(parts: &[(&CudaStorage, &Layout)], dim: usize) -> CudaStorage {
        let shapes: Vec<&[usize]> = parts.iter().map(|(_, l)| l.shape()).collect();
        let out_shape = crate::shape::cat_shape(&shapes, dim);
        let kept: Vec<(&CudaStorage, &Layout)> = parts
            .iter()
            .filter(|(_, l)| !(l.ndim() == 1 && l.shape()[0] == 0) || out_shape.len() == 1)
            .copied()
            .collect();
        let dt = kept[0].0.dtype();
        if let Some((s, _)) = kept.iter().find(|(s, _)| s.dtype() != dt) {
            panic!(
                "cat: expected all tensors to have the same dtype, got {dt} and {}",
                s.dtype()
            );
        }
        for (s, _) in &kept[1..] {
            same_device("cat", kept[0].0, s);
        }
        let numel: usize = out_shape.iter().product();
        let mut out = CudaStorage::uninit(kept[0].0.device_arc(), numel, dt);
        let lo = Layout::contiguous(&out_shape);
        let mut at = 0;
        for (s, l) in kept {
            let len = l.shape()[dim];
            // Each part is a strided copy into its slice of the output.
            out.copy_from(&lo.narrow(dim, at, len), s, l);
            at += len;
        }
        out
    }

    /// `nn.functional.one_hot`: an int64 storage of shape `l.shape + [num_classes]` with a 1
    /// at each index (which must be int64, in `0..num_classes`).
    pub fn one_hot(&self, l: &Layout, num_classes: usize) -> CudaStorage {
        if self.dtype() != DType::I64 {
            panic!("one_hot is only applicable to index tensor of type LongTensor.");
        }
        let n = l.numel();
        let dev = self.device_arc().clone();
        let out = CudaStorage::zeros(&dev, n * num_classes, DType::I64);
        if n == 0 {
            return out;
        }
        check_extent("one_hot", l, self.len());
        // The kernel numbers elements within one launch: more dims than one launch takes
        // (after collapsing) go through a contiguous copy.
        let owned;
        let (src, l) = if l.ndim() > super::geometry::MAX_DIMS {
            owned = (self.contiguous(l), Layout::contiguous(l.shape()));
            (&owned.0, &owned.1)
        } else {
            (self, l)
        };
        let f = dev.function(Family::Index, DType::I64, "one_hot");
        let ops: [Operand<'_>; 1] = [src.operand(l)];
        let (c, e, o) = (num_classes as u64, dev.error_slot(), out.ptr());
        for_each_launch(l.shape(), &ops, |p, g, contig, grid, block| {
            let (i, g) = (p[0], *g);
            let mut args = cuda_args![o, i, g, contig, c, e];
            // SAFETY: `one_hot(i64*, const i64*, ElemGeom, u32, u64, u64*)`; writes
            // `out[i * C + v]` only for a checked `v < C`, `i < n` (one launch: at most 8 dims).
            unsafe { dev.launch(f, (grid, 1, 1), block, 0, &mut args) };
        });
        out
    }
}
