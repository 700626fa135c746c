//! `Storage`: a tensor's elements on some device. This is the one place that dispatches by device;
//! callers above never see a CPU slice unless they ask for host data explicitly (`to_vec`).
//! A CUDA variant arrives behind the `cuda` feature with the same methods.

mod conv;
mod pool;

use crate::cpu::CpuStorage;
use crate::device::Device;
use crate::dtype::{DType, Scalar};
use crate::layout::Layout;
use crate::op::{BinaryOp, CmpOp, UnaryOp};

/// The elements of a tensor, on one device, of one dtype.
#[derive(Clone, Debug)]
pub enum Storage {
    /// Host memory.
    Cpu(CpuStorage),
}

/// Two storages on different devices were combined.
fn same_device<'a>(op: &str, a: &'a Storage, b: &'a Storage) -> (&'a CpuStorage, &'a CpuStorage) {
    match (a, b) {
        (Storage::Cpu(a), Storage::Cpu(b)) => (a, b),
        #[allow(unreachable_patterns)]
        _ => panic!(
            "{op}: expected all tensors to be on the same device, but found at least two devices, {} and {}",
            a.device(),
            b.device()
        ),
    }
}

impl Storage {
    /// The device holding the elements.
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
        }
    }

    /// The element dtype.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
        }
    }

    /// Number of elements held.
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
        }
    }

    /// True when no elements are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The CPU storage, if the elements are on the host.
    pub fn as_cpu(&self) -> Option<&CpuStorage> {
        match self {
            Storage::Cpu(s) => Some(s),
        }
    }

    /// `n` copies of `value` on `device`.
    pub fn full(n: usize, value: Scalar, dtype: DType, device: Device) -> Storage {
        match device {
            Device::Cpu => Storage::Cpu(CpuStorage::full(n, value, dtype)),
            Device::Cuda(_) => cuda_unavailable(),
        }
    }

    /// Host storage from a vector, moved to `device`.
    pub fn from_cpu(s: CpuStorage, device: Device) -> Storage {
        match device {
            Device::Cpu => Storage::Cpu(s),
            Device::Cuda(_) => cuda_unavailable(),
        }
    }

    /// The elements selected by `layout` copied to `device` (contiguous).
    pub fn to_device(&self, layout: &Layout, device: Device) -> Storage {
        match (self, device) {
            (Storage::Cpu(s), Device::Cpu) => Storage::Cpu(s.contiguous(layout)),
            (_, Device::Cuda(_)) => cuda_unavailable(),
        }
    }

    /// The elements selected by `layout` as a host vector of `T`.
    pub fn to_vec<T: crate::cpu::CpuElement>(&self, layout: &Layout) -> Vec<T> {
        match self {
            Storage::Cpu(s) => s.to_vec(layout),
        }
    }

    /// A contiguous copy converted to `dtype`.
    pub fn cast(&self, layout: &Layout, dtype: DType) -> Storage {
        match self {
            Storage::Cpu(s) => Storage::Cpu(s.cast(layout, dtype)),
        }
    }

    /// A contiguous copy.
    pub fn contiguous(&self, layout: &Layout) -> Storage {
        match self {
            Storage::Cpu(s) => Storage::Cpu(s.contiguous(layout)),
        }
    }

    /// Copies `src` into the elements selected by `dst` (converting dtype).
    pub fn copy_from(&mut self, dst: &Layout, src: &Storage, src_layout: &Layout) {
        match (self, src) {
            (Storage::Cpu(d), Storage::Cpu(s)) => d.copy_from(dst, s, src_layout),
        }
    }

    /// Sets the elements selected by `layout` to `value`.
    pub fn fill(&mut self, layout: &Layout, value: Scalar) {
        match self {
            Storage::Cpu(s) => s.fill(layout, value),
        }
    }

    /// `op(x)` elementwise into new contiguous storage.
    pub fn unary(&self, layout: &Layout, op: UnaryOp) -> Storage {
        match self {
            Storage::Cpu(s) => Storage::Cpu(s.unary(layout, op)),
        }
    }

    /// `op(x)` in place.
    pub fn unary_inplace(&mut self, layout: &Layout, op: UnaryOp) {
        match self {
            Storage::Cpu(s) => s.unary_inplace(layout, op),
        }
    }

    /// `a op b` computed in `dtype` (operands are converted first when they differ), for layouts
    /// of one broadcast shape.
    pub fn binary(
        &self,
        la: &Layout,
        rhs: &Storage,
        lb: &Layout,
        op: BinaryOp,
        dtype: DType,
    ) -> Storage {
        let (a, b) = same_device(op.name(), self, rhs);
        let (oa, ob) = (InDType::new(a, la, dtype), InDType::new(b, lb, dtype));
        let ((a, la), (b, lb)) = (oa.get(), ob.get());
        Storage::Cpu(a.binary(la, b, lb, op))
    }

    /// `a op s` (or `s op a` when `scalar_first`) computed in `dtype`.
    pub fn binary_scalar(
        &self,
        la: &Layout,
        s: Scalar,
        op: BinaryOp,
        scalar_first: bool,
        dtype: DType,
    ) -> Storage {
        match self {
            Storage::Cpu(a) => {
                let oa = InDType::new(a, la, dtype);
                let (a, la) = oa.get();
                Storage::Cpu(a.binary_scalar(la, s, op, scalar_first))
            }
        }
    }

    /// `a op= b` in place, `b` converted to `a`'s dtype.
    pub fn binary_inplace(&mut self, la: &Layout, rhs: &Storage, lb: &Layout, op: BinaryOp) {
        let dtype = self.dtype();
        match (self, rhs) {
            (Storage::Cpu(a), Storage::Cpu(b)) => {
                let ob = InDType::new(b, lb, dtype);
                let (b, lb) = ob.get();
                a.binary_inplace(la, b, lb, op)
            }
        }
    }

    /// `a op= s` in place.
    pub fn binary_scalar_inplace(&mut self, la: &Layout, s: Scalar, op: BinaryOp) {
        match self {
            Storage::Cpu(a) => a.binary_scalar_inplace(la, s, op),
        }
    }

    /// Elementwise comparison computed in `dtype`, giving a bool storage.
    pub fn cmp(&self, la: &Layout, rhs: &Storage, lb: &Layout, op: CmpOp, dtype: DType) -> Storage {
        let (a, b) = same_device(op.name(), self, rhs);
        let (oa, ob) = (InDType::new(a, la, dtype), InDType::new(b, lb, dtype));
        let ((a, la), (b, lb)) = (oa.get(), ob.get());
        Storage::Cpu(a.cmp(la, b, lb, op))
    }

    /// Elementwise comparison with a scalar, giving a bool storage.
    pub fn cmp_scalar(&self, la: &Layout, s: Scalar, op: CmpOp) -> Storage {
        match self {
            Storage::Cpu(a) => Storage::Cpu(a.cmp_scalar(la, s, op)),
        }
    }

    /// `cond ? a : b` computed in `dtype`.
    pub fn where_cond(
        &self,
        lc: &Layout,
        a: &Storage,
        la: &Layout,
        b: &Storage,
        lb: &Layout,
        dtype: DType,
    ) -> Storage {
        let (c, a) = same_device("where", self, a);
        let (_, b) = same_device("where", self, b);
        let (oa, ob) = (InDType::new(a, la, dtype), InDType::new(b, lb, dtype));
        let ((a, la), (b, lb)) = (oa.get(), ob.get());
        Storage::Cpu(c.where_cond(lc, a, la, b, lb))
    }
}

/// An operand in the dtype an op computes in: the storage itself when its dtype matches, else
/// the elements `layout` selects converted into a new contiguous storage.
enum InDType<'a> {
    Same(&'a CpuStorage, &'a Layout),
    Converted(CpuStorage, Layout),
}

impl<'a> InDType<'a> {
    fn new(s: &'a CpuStorage, layout: &'a Layout, dtype: DType) -> Self {
        if s.dtype() == dtype {
            InDType::Same(s, layout)
        } else {
            InDType::Converted(s.cast(layout, dtype), Layout::contiguous(layout.shape()))
        }
    }

    fn get(&self) -> (&CpuStorage, &Layout) {
        match self {
            InDType::Same(s, l) => (s, l),
            InDType::Converted(s, l) => (s, l),
        }
    }
}

fn cuda_unavailable() -> ! {
    panic!("CUDA storage is not available in this build of Ember (the CUDA backend is not implemented yet)")
}
