//! Dtype and device conversions.

use crate::graph::{needs_grad, record};
use crate::tensor::Tensor;
use ember_kernels::{DType, Device};
use smallvec::smallvec;

impl Tensor {
    /// A copy converted to `dtype` (the same tensor when it already has it), PyTorch's `.to(dtype)`.
    /// Differentiable between float dtypes.
    #[track_caller]
    pub fn to_dtype(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        let out = Tensor::from_storage(self.storage().cast(self.layout(), dtype), self.shape());
        if !dtype.is_float() || !needs_grad(&[self]) {
            return out;
        }
        let src = self.dtype();
        record(out, "ToCopyBackward0", &[self], move |g| {
            smallvec![Some(g.to_dtype(src))]
        })
    }

    /// `.to(device)`: a copy on `device` (the same tensor when already there), differentiable.
    pub fn to(&self, device: Device) -> Tensor {
        self.to_device(device)
    }

    /// A copy on `device` (the same tensor when already there).
    #[track_caller]
    pub fn to_device(&self, device: Device) -> Tensor {
        if device == self.device() {
            return self.clone();
        }
        let out = Tensor::from_storage(
            self.storage().to_device(self.layout(), device),
            self.shape(),
        );
        if !needs_grad(&[self]) {
            return out;
        }
        let src = self.device();
        record(out, "ToCopyBackward0", &[self], move |g| {
            smallvec![Some(g.to_device(src))]
        })
    }

    /// `.to(torch.float64)`
    #[track_caller]
    pub fn double(&self) -> Tensor {
        self.to_dtype(DType::F64)
    }
    /// `.to(torch.float32)`
    #[track_caller]
    pub fn float(&self) -> Tensor {
        self.to_dtype(DType::F32)
    }
    /// `.to(torch.int64)`
    #[track_caller]
    pub fn long(&self) -> Tensor {
        self.to_dtype(DType::I64)
    }
    /// `.to(torch.bool)`
    #[track_caller]
    pub fn bool(&self) -> Tensor {
        self.to_dtype(DType::Bool)
    }
    /// `.to(torch.uint8)`
    #[track_caller]
    pub fn byte(&self) -> Tensor {
        self.to_dtype(DType::U8)
    }
    /// `.cpu()`
    #[track_caller]
    pub fn cpu(&self) -> Tensor {
        self.to_device(Device::Cpu)
    }
    /// `.cuda()` (device 0).
    #[track_caller]
    pub fn cuda(&self) -> Tensor {
        self.to_device(Device::Cuda(0))
    }
}
