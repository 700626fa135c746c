//! `Storage`: a tensor's elements on some device. This is the one place that dispatches by device:
//! each method has exactly one `match` over the backends (the [`dispatch!`] macro, or a match on
//! a [`Device`] for creation), and callers above never see a backend's type unless they ask for
//! host data explicitly (`to_vec`). Backends (`cpu/`, `cuda/`) know nothing of this layer.

mod conv;
mod loss;
mod optim;
mod pool;
mod reduce;

use crate::cpu::CpuStorage;
#[cfg(feature = "cuda")]
use crate::cuda::CudaStorage;
use crate::device::Device;
use crate::dtype::{DType, Scalar};
use crate::layout::Layout;
use crate::op::{BinaryOp, CmpOp, UnaryOp};

/// The elements of a tensor, on one device, of one dtype.
#[derive(Clone, Debug)]
pub enum Storage {
    /// Host memory.
    Cpu(CpuStorage),
    /// Memory of one CUDA device (cargo feature `cuda`).
    #[cfg(feature = "cuda")]
    Cuda(CudaStorage),
}

/// What the dispatch needs of a backend's storage type: moving in and out of [`Storage`], and
/// the dtype conversion done before an op whose operands' dtypes differ.
pub(crate) trait BackendStorage: Sized {
    /// This backend's storage inside `s`, if `s` is on this backend.
    fn unwrap(s: &Storage) -> Option<&Self>;
    /// The mutable form of [`BackendStorage::unwrap`].
    fn unwrap_mut(s: &mut Storage) -> Option<&mut Self>;
    /// Back into the device-neutral enum.
    fn wrap(self) -> Storage;
    /// The element dtype.
    fn dtype(&self) -> DType;
    /// The elements `layout` selects, converted into a new contiguous storage.
    fn cast(&self, layout: &Layout, dtype: DType) -> Self;
}

impl BackendStorage for CpuStorage {
    fn unwrap(s: &Storage) -> Option<&Self> {
        match s {
            Storage::Cpu(c) => Some(c),
            #[cfg(feature = "cuda")]
            _ => None,
        }
    }
    fn unwrap_mut(s: &mut Storage) -> Option<&mut Self> {
        match s {
            Storage::Cpu(c) => Some(c),
            #[cfg(feature = "cuda")]
            _ => None,
        }
    }
    fn wrap(self) -> Storage {
        Storage::Cpu(self)
    }
    fn dtype(&self) -> DType {
        CpuStorage::dtype(self)
    }
    fn cast(&self, layout: &Layout, dtype: DType) -> Self {
        CpuStorage::cast(self, layout, dtype)
    }
}

#[cfg(feature = "cuda")]
impl BackendStorage for CudaStorage {
    fn unwrap(s: &Storage) -> Option<&Self> {
        match s {
            Storage::Cuda(c) => Some(c),
            _ => None,
        }
    }
    fn unwrap_mut(s: &mut Storage) -> Option<&mut Self> {
        match s {
            Storage::Cuda(c) => Some(c),
            _ => None,
        }
    }
    fn wrap(self) -> Storage {
        Storage::Cuda(self)
    }
    fn dtype(&self) -> DType {
        CudaStorage::dtype(self)
    }
    fn cast(&self, layout: &Layout, dtype: DType) -> Self {
        CudaStorage::cast(self, layout, dtype)
    }
}

/// Runs `$body` with `$s` bound to the backend storage inside `$x` and the type alias `$S` naming
/// its type (so the other operands are taken with [`operand`]`::<$S>`): the one match over the
/// backends that every `Storage` method goes through.
macro_rules! dispatch {
    ($x:expr, $s:ident: $S:ident => $body:expr) => {
        match $x {
            $crate::storage::Storage::Cpu($s) => {
                #[allow(dead_code)]
                type $S = $crate::cpu::CpuStorage;
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::storage::Storage::Cuda($s) => {
                #[allow(dead_code)]
                type $S = $crate::cuda::CudaStorage;
                $body
            }
        }
    };
}
pub(crate) use dispatch;

/// The CUDA arm of a match on a [`Device`] (creation ops): `$e` builds the `CudaStorage` for
/// ordinal `$i`; without the `cuda` feature, a clear panic instead.
#[cfg(feature = "cuda")]
macro_rules! cuda_arm {
    ($i:ident => $e:expr) => {
        $crate::storage::Storage::Cuda($e)
    };
}
#[cfg(not(feature = "cuda"))]
macro_rules! cuda_arm {
    ($i:ident => $e:expr) => {{
        let _ = $i;
        $crate::storage::no_cuda()
    }};
}
pub(crate) use cuda_arm;

/// Another operand of an op whose first operand is on `first`'s backend `S`, or PyTorch's
/// mixed-device panic naming `op` and both devices.
pub(crate) fn operand<'a, S: BackendStorage>(op: &str, first: Device, s: &'a Storage) -> &'a S {
    match S::unwrap(s) {
        Some(x) => x,
        None => mixed_devices(op, first, s.device()),
    }
}

/// The mutable form of [`operand`].
pub(crate) fn operand_mut<'a, S: BackendStorage>(
    op: &str,
    first: Device,
    s: &'a mut Storage,
) -> &'a mut S {
    let found = s.device();
    match S::unwrap_mut(s) {
        Some(x) => x,
        None => mixed_devices(op, first, found),
    }
}

/// PyTorch's message for operands on two devices.
pub(crate) fn mixed_devices(op: &str, a: Device, b: Device) -> ! {
    panic!(
        "{op}: expected all tensors to be on the same device, but found at least two devices, {a} and {b}!"
    )
}

/// The panic of a CUDA request in a build without the `cuda` feature.
#[cfg(not(feature = "cuda"))]
pub(crate) fn no_cuda() -> ! {
    panic!("Torch not compiled with CUDA enabled: this build of Ember has no CUDA backend (build with the cargo feature `cuda`, e.g. `ember = {{ features = [\"cuda\"] }}`)")
}

impl Storage {
    /// The device holding the elements.
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Storage::Cuda(c) => Device::Cuda(c.ordinal()),
        }
    }

    /// The element dtype.
    pub fn dtype(&self) -> DType {
        dispatch!(self, s: S => s.dtype())
    }

    /// Number of elements held.
    pub fn len(&self) -> usize {
        dispatch!(self, s: S => s.len())
    }

    /// True when no elements are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The CPU storage, if the elements are on the host.
    pub fn as_cpu(&self) -> Option<&CpuStorage> {
        CpuStorage::unwrap(self)
    }

    /// `n` copies of `value` on `device`.
    pub fn full(n: usize, value: Scalar, dtype: DType, device: Device) -> Storage {
        match device {
            Device::Cpu => Storage::Cpu(CpuStorage::full(n, value, dtype)),
            Device::Cuda(i) => cuda_arm!(i => CudaStorage::full(n, value, dtype, i)),
        }
    }

    /// Host storage from a vector, moved to `device`.
    pub fn from_cpu(s: CpuStorage, device: Device) -> Storage {
        match device {
            Device::Cpu => Storage::Cpu(s),
            Device::Cuda(i) => cuda_arm!(i => CudaStorage::from_cpu(&s, i)),
        }
    }

    /// The elements selected by `layout` copied to `device` (contiguous).
    pub fn to_device(&self, layout: &Layout, device: Device) -> Storage {
        match (self, device) {
            (Storage::Cpu(s), Device::Cpu) => Storage::Cpu(s.contiguous(layout)),
            (Storage::Cpu(_s), Device::Cuda(i)) => {
                cuda_arm!(i => CudaStorage::from_cpu(&_s.contiguous(layout), i))
            }
            #[cfg(feature = "cuda")]
            (Storage::Cuda(c), Device::Cpu) => Storage::Cpu(c.to_cpu(layout)),
            #[cfg(feature = "cuda")]
            (Storage::Cuda(c), Device::Cuda(i)) if c.ordinal() == i => {
                Storage::Cuda(c.contiguous(layout))
            }
            // Between two GPUs through the host: peer copies are not set up.
            #[cfg(feature = "cuda")]
            (Storage::Cuda(c), Device::Cuda(i)) => {
                Storage::Cuda(CudaStorage::from_cpu(&c.to_cpu(layout), i))
            }
        }
    }

    /// The elements selected by `layout` as a host vector of `T` (waits for the device).
    pub fn to_vec<T: crate::cpu::CpuElement>(&self, layout: &Layout) -> Vec<T> {
        dispatch!(self, s: S => s.to_vec(layout))
    }

    /// A contiguous copy converted to `dtype`.
    pub fn cast(&self, layout: &Layout, dtype: DType) -> Storage {
        dispatch!(self, s: S => s.cast(layout, dtype).wrap())
    }

    /// A contiguous copy.
    pub fn contiguous(&self, layout: &Layout) -> Storage {
        dispatch!(self, s: S => s.contiguous(layout).wrap())
    }

    /// Copies `src` into the elements selected by `dst` (converting dtype).
    pub fn copy_from(&mut self, dst: &Layout, src: &Storage, src_layout: &Layout) {
        let dev = self.device();
        dispatch!(self, d: S => d.copy_from(dst, operand::<S>("copy_", dev, src), src_layout))
    }

    /// Sets the elements selected by `layout` to `value`.
    pub fn fill(&mut self, layout: &Layout, value: Scalar) {
        dispatch!(self, s: S => s.fill(layout, value))
    }

    /// `op(x)` elementwise into new contiguous storage.
    pub fn unary(&self, layout: &Layout, op: UnaryOp) -> Storage {
        dispatch!(self, s: S => s.unary(layout, op).wrap())
    }

    /// `op(x)` in place.
    pub fn unary_inplace(&mut self, layout: &Layout, op: UnaryOp) {
        dispatch!(self, s: S => s.unary_inplace(layout, op))
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
        let dev = self.device();
        dispatch!(self, a: S => {
            let b = operand::<S>(op.name(), dev, rhs);
            let (oa, ob) = (InDType::new(a, la, dtype), InDType::new(b, lb, dtype));
            let ((a, la), (b, lb)) = (oa.get(), ob.get());
            a.binary(la, b, lb, op).wrap()
        })
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
        dispatch!(self, a: S => {
            let oa = InDType::new(a, la, dtype);
            let (a, la) = oa.get();
            a.binary_scalar(la, s, op, scalar_first).wrap()
        })
    }

    /// `a op= b` in place, `b` converted to `a`'s dtype.
    pub fn binary_inplace(&mut self, la: &Layout, rhs: &Storage, lb: &Layout, op: BinaryOp) {
        let (dtype, dev) = (self.dtype(), self.device());
        dispatch!(self, a: S => {
            let b = operand::<S>(op.name(), dev, rhs);
            let ob = InDType::new(b, lb, dtype);
            let (b, lb) = ob.get();
            a.binary_inplace(la, b, lb, op)
        })
    }

    /// `a op= s` in place.
    pub fn binary_scalar_inplace(&mut self, la: &Layout, s: Scalar, op: BinaryOp) {
        dispatch!(self, a: S => a.binary_scalar_inplace(la, s, op))
    }

    /// Elementwise comparison computed in `dtype`, giving a bool storage.
    pub fn cmp(&self, la: &Layout, rhs: &Storage, lb: &Layout, op: CmpOp, dtype: DType) -> Storage {
        let dev = self.device();
        dispatch!(self, a: S => {
            let b = operand::<S>(op.name(), dev, rhs);
            let (oa, ob) = (InDType::new(a, la, dtype), InDType::new(b, lb, dtype));
            let ((a, la), (b, lb)) = (oa.get(), ob.get());
            a.cmp(la, b, lb, op).wrap()
        })
    }

    /// Elementwise comparison with a scalar, giving a bool storage.
    pub fn cmp_scalar(&self, la: &Layout, s: Scalar, op: CmpOp) -> Storage {
        dispatch!(self, a: S => a.cmp_scalar(la, s, op).wrap())
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
        let dev = self.device();
        dispatch!(self, c: S => {
            let (a, b) = (operand::<S>("where", dev, a), operand::<S>("where", dev, b));
            let (oa, ob) = (InDType::new(a, la, dtype), InDType::new(b, lb, dtype));
            let ((a, la), (b, lb)) = (oa.get(), ob.get());
            c.where_cond(lc, a, la, b, lb).wrap()
        })
    }
}

/// An operand in the dtype an op computes in: the storage itself when its dtype matches, else
/// the elements `layout` selects converted into a new contiguous storage.
enum InDType<'a, S> {
    Same(&'a S, &'a Layout),
    Converted(S, Layout),
}

impl<'a, S: BackendStorage> InDType<'a, S> {
    fn new(s: &'a S, layout: &'a Layout, dtype: DType) -> Self {
        if s.dtype() == dtype {
            InDType::Same(s, layout)
        } else {
            InDType::Converted(s.cast(layout, dtype), Layout::contiguous(layout.shape()))
        }
    }

    fn get(&self) -> (&S, &Layout) {
        match self {
            InDType::Same(s, l) => (s, l),
            InDType::Converted(s, l) => (s, l),
        }
    }
}
