//! Creation functions: constant fills and ranges.

use crate::shape_arg::IntoShape;
use crate::tensor::Tensor;
use ember_kernels::{DType, Device, Scalar, Storage};

impl Tensor {
    /// A tensor of `shape` filled with `value` in `dtype` on `device`.
    #[track_caller]
    pub fn full_on(
        shape: &[usize],
        value: impl Into<Scalar>,
        dtype: DType,
        device: Device,
    ) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_storage(Storage::full(n, value.into(), dtype, device), shape)
    }

    #[track_caller]
    pub(crate) fn zeros_on(shape: &[usize], dtype: DType, device: Device) -> Tensor {
        Tensor::full_on(shape, 0.0, dtype, device)
    }

    /// float32 zeros (`torch.zeros`).
    #[track_caller]
    pub fn zeros(shape: impl IntoShape) -> Tensor {
        Tensor::full_on(&shape.to_dims("zeros"), 0.0, DType::F32, Device::Cpu)
    }
    /// float32 ones (`torch.ones`).
    #[track_caller]
    pub fn ones(shape: impl IntoShape) -> Tensor {
        Tensor::full_on(&shape.to_dims("ones"), 1.0, DType::F32, Device::Cpu)
    }
    /// `torch.full(shape, value)`: float32 for a float value, int64 for an integer, bool for a bool.
    #[track_caller]
    pub fn full(shape: impl IntoShape, value: impl Into<Scalar>) -> Tensor {
        let v = value.into();
        let dtype = match v {
            Scalar::Bool(_) => DType::Bool,
            Scalar::Int(_) => DType::I64,
            Scalar::Float(_) => DType::F32,
        };
        Tensor::full_on(&shape.to_dims("full"), v, dtype, Device::Cpu)
    }
    /// Zeros with this tensor's shape, dtype and device.
    #[track_caller]
    pub fn zeros_like(&self) -> Tensor {
        Tensor::full_on(self.shape(), 0.0, self.dtype(), self.device())
    }
    /// Ones with this tensor's shape, dtype and device.
    #[track_caller]
    pub fn ones_like(&self) -> Tensor {
        Tensor::full_on(self.shape(), 1.0, self.dtype(), self.device())
    }
    /// `value` with this tensor's shape, dtype and device.
    #[track_caller]
    pub fn full_like(&self, value: impl Into<Scalar>) -> Tensor {
        Tensor::full_on(self.shape(), value, self.dtype(), self.device())
    }
}
