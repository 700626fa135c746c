//! `resize_`: PyTorch's in-place change of a tensor's shape and, when it grows, of its storage.

use crate::shape_arg::IntoShape;
use crate::tensor::Tensor;
use ember_kernels::{Layout, Scalar, Storage};

impl Tensor {
    /// Resizes this tensor to `shape` in place (PyTorch's `resize_`). The tensor becomes
    /// contiguous with the new shape, starting at its storage offset, and takes the storage's
    /// elements in order: shrinking keeps the storage (the elements past the new size stay there
    /// for other views), growing reallocates the storage in place, preserving its elements (the
    /// new ones are zero; PyTorch leaves them uninitialised), so every view of the storage sees the
    /// new buffer. A shape equal to the current one changes nothing. Returns the resized tensor.
    ///
    /// A tensor requiring grad refuses, as in PyTorch. Only this handle takes the new shape:
    /// other handles (clones) of the tensor keep their shape over the shared storage.
    ///
    /// ```
    /// use ember_autograd::Tensor;
    /// let mut x = Tensor::from_slice(&[0f32, 1., 2., 3., 4., 5.], [6]);
    /// x.resize_([2, 2]);
    /// assert_eq!(x.to_vec::<f32>(), [0., 1., 2., 3.]);
    /// x.resize_([2, 4]);
    /// assert_eq!(x.to_vec::<f32>(), [0., 1., 2., 3., 4., 5., 0., 0.]);
    /// ```
    #[track_caller]
    pub fn resize_(&mut self, shape: impl IntoShape) -> Tensor {
        let shape = shape.to_dims("resize_");
        if self.requires_grad() {
            panic!("cannot resize variables that require grad");
        }
        if self.shape() == shape.as_slice() {
            return self.clone();
        }
        let layout = Layout::new(
            &shape,
            Layout::contiguous(&shape).strides(),
            self.layout().offset(),
        );
        let needed = layout.offset() + layout.numel();
        {
            let mut storage = self.storage_mut();
            let len = storage.len();
            if needed > len {
                // Reallocated in place behind the shared lock: every handle and view of this
                // storage sees the grown buffer, as PyTorch's storage resize.
                let mut grown =
                    Storage::full(needed, Scalar::from(0.0), self.dtype(), self.device());
                let old = Layout::contiguous(&[len]);
                grown.copy_from(&old, &storage, &old);
                *storage = grown;
            }
        }
        *self = self.with_layout(layout);
        self.clone()
    }
}
