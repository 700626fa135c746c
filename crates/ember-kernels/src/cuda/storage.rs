//! `CudaStorage`: the elements of one tensor on one CUDA device, with the same methods as
//! `CpuStorage` (the kernels of each op family live in the sibling files), plus the host
//! transfers `from_cpu` / `to_cpu`.

use super::device::{DevBuf, Device};
use super::geometry::{self, ElemGeom, MAX_OPERANDS};
use super::kernels::Family;
use crate::cpu::{CpuElement, CpuStorage};
use crate::dtype::{DType, Element, Scalar};
use crate::layout::Layout;
use crate::{cuda_args, kname};
use smallvec::SmallVec;
use std::sync::Arc;

/// Device memory holding the elements of one dtype.
pub struct CudaStorage {
    buf: DevBuf,
    dtype: DType,
    len: usize,
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaStorage {{ device: cuda:{}, dtype: {}, len: {} }}",
            self.ordinal(),
            self.dtype,
            self.len
        )
    }
}

impl Clone for CudaStorage {
    /// A copy on the same device (queued; no host wait).
    fn clone(&self) -> Self {
        let out = CudaStorage::uninit(self.device_arc(), self.len, self.dtype);
        self.device_arc()
            .copy_dtod(out.ptr(), self.ptr(), self.len * self.dtype.size_in_bytes());
        out
    }
}

/// A Rust element type as the 64-bit pattern kernels receive scalars in.
pub trait Bits: Element {
    /// The value's bits, zero-extended.
    fn bits(self) -> u64;
}

impl Bits for bool {
    fn bits(self) -> u64 {
        self as u64
    }
}
impl Bits for u8 {
    fn bits(self) -> u64 {
        self as u64
    }
}
impl Bits for i64 {
    fn bits(self) -> u64 {
        self as u64
    }
}
impl Bits for f32 {
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
}
impl Bits for f64 {
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

/// `$body` with `$T` the Rust type of dtype `$d`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_dtype {
    ($d:expr, $T:ident => $body:expr) => {
        match $d {
            $crate::dtype::DType::Bool => {
                type $T = bool;
                $body
            }
            $crate::dtype::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::dtype::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::dtype::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::dtype::DType::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}

/// The bits of `s` converted to `dtype` with the CPU backend's rules (`Scalar::to_elem`).
pub fn scalar_bits(s: Scalar, dtype: DType) -> u64 {
    with_dtype!(dtype, T => s.to_elem::<T>().bits())
}

/// The bits of an f64 parameter converted to `dtype` (`Element::from_f64`).
pub fn f64_bits(v: f64, dtype: DType) -> u64 {
    with_dtype!(dtype, T => T::from_f64(v).bits())
}

/// One operand of an elementwise launch: the storage's base address, its element size, and
/// the layout's offset and strides (over the launch's shape).
#[derive(Clone, Copy)]
pub struct Operand<'a> {
    /// Address of storage element 0.
    pub base: u64,
    /// Element size in bytes.
    pub size: usize,
    /// The layout's offset, in elements.
    pub offset: usize,
    /// Element strides over the launch shape.
    pub strides: &'a [usize],
}

/// Plans an elementwise launch over `shape` and calls `go(ptrs, geom, contig, grid, block)`
/// for each launch (one unless more than `MAX_DIMS` dims remain after collapsing); `ptrs` are
/// the operands' addresses of their first element in that launch.
pub fn for_each_launch(
    shape: &[usize],
    ops: &[Operand<'_>],
    mut go: impl FnMut(&[u64; MAX_OPERANDS], &ElemGeom, u32, u32, u32),
) {
    let strides: SmallVec<[&[usize]; MAX_OPERANDS]> = ops.iter().map(|o| o.strides).collect();
    let plan = geometry::plan(shape, &strides);
    if plan.geom.n == 0 {
        return;
    }
    let contig = u32::from(plan.geom.is_contiguous(ops.len()));
    let (grid, block) = geometry::elem_launch(plan.geom.n);
    for off in &plan.launches {
        let ptrs: [u64; MAX_OPERANDS] = std::array::from_fn(|k| match ops.get(k) {
            Some(o) => o.base + (o.offset as u64 + off[k]) * o.size as u64,
            None => 0,
        });
        go(&ptrs, &plan.geom, contig, grid, block);
    }
}

/// Blocks of `threads` threads covering `n` items, one item per thread.
pub fn blocks_for(n: usize, threads: u32) -> u32 {
    n.div_ceil(threads as usize).clamp(1, i32::MAX as usize) as u32
}

/// Panics unless `layout` stays inside a storage of `len` elements (a kernel reading past it
/// would fault the whole context).
#[track_caller]
pub fn check_extent(op: &str, layout: &Layout, len: usize) {
    if layout.storage_extent() > len {
        panic!("{op}: layout {layout:?} reaches past its storage of {len} elements");
    }
}

impl CudaStorage {
    /// `n` elements of `dtype` whose contents are unspecified (callers write them all).
    pub fn uninit(dev: &Arc<Device>, n: usize, dtype: DType) -> CudaStorage {
        CudaStorage {
            buf: dev.alloc(n * dtype.size_in_bytes()),
            dtype,
            len: n,
        }
    }

    /// `n` zero elements (all bits clear: 0, 0.0, false).
    pub fn zeros(dev: &Arc<Device>, n: usize, dtype: DType) -> CudaStorage {
        let s = CudaStorage::uninit(dev, n, dtype);
        dev.zero(s.ptr(), n * dtype.size_in_bytes());
        s
    }

    /// The device address of element 0.
    pub fn ptr(&self) -> u64 {
        self.buf.ptr()
    }

    /// The device address of element `i`.
    pub fn ptr_at(&self, i: usize) -> u64 {
        self.buf.ptr() + (i * self.dtype.size_in_bytes()) as u64
    }

    /// The device.
    pub fn device_arc(&self) -> &Arc<Device> {
        self.buf.device()
    }

    /// The device's ordinal.
    pub fn ordinal(&self) -> usize {
        self.buf.device().ordinal()
    }

    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no elements are held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// This storage as an operand walked through `layout`'s strides.
    pub fn operand<'a>(&self, layout: &'a Layout) -> Operand<'a> {
        Operand {
            base: self.ptr(),
            size: self.dtype.size_in_bytes(),
            offset: layout.offset(),
            strides: layout.strides(),
        }
    }

    /// The whole host storage copied to device `ordinal`.
    pub fn from_cpu(s: &CpuStorage, ordinal: usize) -> CudaStorage {
        let dev = Device::expect(ordinal);
        let out = CudaStorage::uninit(&dev, s.len(), s.dtype());
        crate::cpu_dispatch!(s, b => dev.upload(out.ptr(), &b[..]));
        out
    }

    /// Takes the elements of a vector to device `ordinal`.
    pub fn from_vec<T: CpuElement>(v: Vec<T>, ordinal: usize) -> CudaStorage {
        CudaStorage::from_cpu(&CpuStorage::from_vec(v), ordinal)
    }

    /// The elements selected by `layout` copied to the host, contiguous (waits for the device).
    pub fn to_cpu(&self, layout: &Layout) -> CpuStorage {
        let n = layout.numel();
        let src = if layout.is_contiguous() || n == 0 {
            None
        } else {
            Some(self.contiguous(layout))
        };
        let (s, start) = match &src {
            Some(c) => (c, 0),
            None => (self, layout.offset()),
        };
        if n > 0 {
            check_extent("to_cpu", layout, self.len);
        }
        fn get<T: CpuElement>(s: &CudaStorage, start: usize, n: usize) -> CpuStorage {
            let mut v = vec![T::default(); n];
            s.device_arc().download(&mut v, s.ptr_at(start));
            CpuStorage::from_vec(v)
        }
        with_dtype!(self.dtype, T => get::<T>(s, start, n))
    }

    /// The elements selected by `layout`, converted to `T`, in row-major order (waits).
    pub fn to_vec<T: CpuElement>(&self, layout: &Layout) -> Vec<T> {
        self.to_cpu(layout)
            .to_vec::<T>(&Layout::contiguous(&[layout.numel()]))
    }

    /// `n` copies of `value` converted to `dtype` on device `ordinal`.
    pub fn full(n: usize, value: Scalar, dtype: DType, ordinal: usize) -> CudaStorage {
        let dev = Device::expect(ordinal);
        let mut out = CudaStorage::uninit(&dev, n, dtype);
        out.fill(&Layout::contiguous(&[n]), value);
        out
    }

    /// A contiguous copy of the elements selected by `layout`, converted to `dtype`.
    pub fn cast(&self, layout: &Layout, dtype: DType) -> CudaStorage {
        let n = layout.numel();
        let mut out = CudaStorage::uninit(self.device_arc(), n, dtype);
        out.copy_from(&Layout::contiguous(layout.shape()), self, layout);
        out
    }

    /// A contiguous copy of the elements selected by `layout`.
    pub fn contiguous(&self, layout: &Layout) -> CudaStorage {
        if let Some((s, e)) = layout.contiguous_range() {
            let dev = self.device_arc();
            let out = CudaStorage::uninit(dev, e - s, self.dtype);
            if e > s {
                check_extent("contiguous", layout, self.len);
            }
            dev.copy_dtod(
                out.ptr(),
                self.ptr_at(s),
                (e - s) * self.dtype.size_in_bytes(),
            );
            return out;
        }
        self.cast(layout, self.dtype)
    }

    /// Copies `src` (same shape, any dtype, same device) into the elements of `self` selected
    /// by `dst`.
    pub fn copy_from(&mut self, dst: &Layout, src: &CudaStorage, src_layout: &Layout) {
        same_device("copy_", self, src);
        if dst.shape() != src_layout.shape() {
            panic!(
                "copy_: shapes {:?} and {:?} differ",
                dst.shape(),
                src_layout.shape()
            );
        }
        if dst.numel() == 0 {
            return;
        }
        check_extent("copy_", dst, self.len);
        check_extent("copy_", src_layout, src.len);
        let dev = self.device_arc().clone();
        // Same dtype, both contiguous: one memcpy.
        if self.dtype == src.dtype {
            if let (Some((ds, de)), Some((ss, _))) =
                (dst.contiguous_range(), src_layout.contiguous_range())
            {
                dev.copy_dtod(
                    self.ptr_at(ds),
                    src.ptr_at(ss),
                    (de - ds) * self.dtype.size_in_bytes(),
                );
                return;
            }
        }
        let f = dev.function(Family::Cast, src.dtype, cast_name(src.dtype, self.dtype));
        let ops = [self.operand(dst), src.operand(src_layout)];
        for_each_launch(dst.shape(), &ops, |p, g, contig, grid, block| {
            let (out, x, g) = (p[0], p[1], *g);
            let mut args = cuda_args![out, x, g, contig];
            // SAFETY: `cast_S_D(D* out, const S* x, ElemGeom, u32)`; both layouts were
            // checked to lie inside their storages.
            unsafe { dev.launch(f, (grid, 1, 1), block, 0, &mut args) };
        });
    }

    /// Sets every element selected by `layout` to `value`.
    pub fn fill(&mut self, layout: &Layout, value: Scalar) {
        if layout.numel() == 0 {
            return;
        }
        check_extent("fill_", layout, self.len);
        let dev = self.device_arc().clone();
        let bits = scalar_bits(value, self.dtype);
        if bits == 0 {
            if let Some((s, e)) = layout.contiguous_range() {
                dev.zero(self.ptr_at(s), (e - s) * self.dtype.size_in_bytes());
                return;
            }
        }
        let f = dev.function(Family::Elementwise, self.dtype, kname!("fill", self.dtype));
        let ops = [self.operand(layout)];
        for_each_launch(layout.shape(), &ops, |p, g, contig, grid, block| {
            let (out, g) = (p[0], *g);
            let mut args = cuda_args![out, g, contig, bits];
            // SAFETY: `fill_T(T* out, ElemGeom, u32, u64)`; the layout lies inside the storage.
            unsafe { dev.launch(f, (grid, 1, 1), block, 0, &mut args) };
        });
    }
}

/// The name of the kernel converting `from` to `to`.
pub fn cast_name(from: DType, to: DType) -> &'static str {
    macro_rules! to {
        ($s:literal) => {
            match to {
                DType::Bool => concat!("cast_", $s, "_bool"),
                DType::U8 => concat!("cast_", $s, "_u8"),
                DType::I64 => concat!("cast_", $s, "_i64"),
                DType::F32 => concat!("cast_", $s, "_f32"),
                DType::F64 => concat!("cast_", $s, "_f64"),
            }
        };
    }
    match from {
        DType::Bool => to!("bool"),
        DType::U8 => to!("u8"),
        DType::I64 => to!("i64"),
        DType::F32 => to!("f32"),
        DType::F64 => to!("f64"),
    }
}

/// Panics when two storages live on different devices, naming both.
#[track_caller]
pub fn same_device(op: &str, a: &CudaStorage, b: &CudaStorage) {
    if a.ordinal() != b.ordinal() {
        panic!(
            "{op}: expected all tensors to be on the same device, but found at least two devices, cuda:{} and cuda:{}",
            a.ordinal(),
            b.ordinal()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_convert_like_the_cpu_backend() {
        assert_eq!(scalar_bits(Scalar::Float(2.7), DType::I64), 2);
        assert_eq!(scalar_bits(Scalar::Float(-1.0), DType::U8), 255);
        assert_eq!(
            scalar_bits(Scalar::Int(3), DType::F32),
            3f32.to_bits() as u64
        );
        assert_eq!(scalar_bits(Scalar::Float(0.5), DType::Bool), 1);
        assert_eq!(
            scalar_bits(Scalar::Float(0.1), DType::F64),
            0.1f64.to_bits()
        );
        assert_eq!(f64_bits(-2.5, DType::I64), (-2i64) as u64);
        assert_eq!(cast_name(DType::U8, DType::F64), "cast_u8_f64");
    }
}
