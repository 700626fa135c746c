//! Convolution and pooling on CUDA tensors: not implemented yet. The dispatch reaches every
//! backend through the same method names, so these exist and refuse with a message that says
//! what to do, rather than copying to the host behind the caller's back.

use super::storage::CudaStorage;
use crate::conv::{AvgDivisor, ConvParams, PoolWindows};
use crate::layout::Layout;

/// The refusal of an op the CUDA backend does not have yet.
fn not_yet(op: &str) -> ! {
    panic!(
        "{op}: not implemented for CUDA tensors yet in Ember (convolution and pooling run on the CPU; move the model and its inputs there with .to(Device::Cpu))"
    )
}

#[allow(unused_variables)]
impl CudaStorage {
    /// See `CpuStorage::conv2d`; not on CUDA yet.
    pub fn conv2d(
        &self,
        lx: &Layout,
        w: &CudaStorage,
        lw: &Layout,
        bias: Option<(&CudaStorage, &Layout)>,
        p: &ConvParams,
        out: [usize; 2],
    ) -> CudaStorage {
        not_yet("conv2d")
    }

    /// See `CpuStorage::conv2d_backward_input`; not on CUDA yet.
    pub fn conv2d_backward_input(
        &self,
        lg: &Layout,
        w: &CudaStorage,
        lw: &Layout,
        p: &ConvParams,
        input: [usize; 2],
    ) -> CudaStorage {
        not_yet("conv2d_backward_input")
    }

    /// See `CpuStorage::conv2d_backward_weight`; not on CUDA yet.
    pub fn conv2d_backward_weight(
        &self,
        lx: &Layout,
        gy: &CudaStorage,
        lg: &Layout,
        p: &ConvParams,
        kernel: [usize; 2],
    ) -> CudaStorage {
        not_yet("conv2d_backward_weight")
    }

    /// See `CpuStorage::max_pool2d`; not on CUDA yet.
    pub fn max_pool2d(
        &self,
        lx: &Layout,
        windows: &PoolWindows,
        out: [usize; 2],
    ) -> (CudaStorage, CudaStorage) {
        not_yet("max_pool2d")
    }

    /// See `CpuStorage::max_pool2d_backward`; not on CUDA yet.
    pub fn max_pool2d_backward(
        &self,
        lg: &Layout,
        indices: &CudaStorage,
        li: &Layout,
        input: [usize; 2],
    ) -> CudaStorage {
        not_yet("max_pool2d_backward")
    }

    /// See `CpuStorage::avg_pool2d`; not on CUDA yet.
    pub fn avg_pool2d(
        &self,
        lx: &Layout,
        windows: &PoolWindows,
        divisor: AvgDivisor,
        out: [usize; 2],
    ) -> CudaStorage {
        not_yet("avg_pool2d")
    }

    /// See `CpuStorage::avg_pool2d_backward`; not on CUDA yet.
    pub fn avg_pool2d_backward(
        &self,
        lg: &Layout,
        windows: &PoolWindows,
        divisor: AvgDivisor,
        input: [usize; 2],
    ) -> CudaStorage {
        not_yet("avg_pool2d_backward")
    }
}
