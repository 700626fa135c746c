//! The user's `Tensor`: a cheap-to-clone handle to a strided view of shared storage, plus its
//! autograd state. Views share the `StorageCell`; every op returns a new handle.

use crate::graph::Node;
use crate::shape_arg::IntoShape;
use ember_kernels::cpu::CpuElement;
use ember_kernels::{CpuStorage, DType, Device, Layout, Storage};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Storage shared by a tensor and all its views, with the version counter that in-place ops bump.
pub(crate) struct StorageCell {
    data: RwLock<Storage>,
    version: AtomicUsize,
}

/// Number of storages alive in the process (for leak tests).
static LIVE_STORAGES: AtomicUsize = AtomicUsize::new(0);

/// How many tensor storages are alive right now. Views share one storage; a training loop that
/// frees its graphs keeps this flat.
pub fn live_storages() -> usize {
    LIVE_STORAGES.load(Ordering::Relaxed)
}

impl Drop for StorageCell {
    fn drop(&mut self) {
        LIVE_STORAGES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl StorageCell {
    pub(crate) fn new(s: Storage) -> Arc<Self> {
        LIVE_STORAGES.fetch_add(1, Ordering::Relaxed);
        Arc::new(StorageCell {
            data: RwLock::new(s),
            version: AtomicUsize::new(0),
        })
    }
}

pub(crate) struct TensorImpl {
    pub(crate) storage: Arc<StorageCell>,
    pub(crate) layout: Layout,
    pub(crate) dtype: DType,
    pub(crate) device: Device,
    pub(crate) requires_grad: AtomicBool,
    pub(crate) grad_fn: Mutex<Option<Arc<Node>>>,
    pub(crate) grad: Mutex<Option<Tensor>>,
    /// `register_post_accumulate_grad_hook`'s hooks (see `hooks.rs`).
    pub(crate) post_accumulate_grad_hooks: Mutex<crate::hooks::HookList>,
}

/// An n-dimensional array with PyTorch's semantics: strided views without copies, broadcasting,
/// several dtypes and devices, and reverse-mode autograd.
///
/// ```
/// use ember_autograd::Tensor;
/// let x = Tensor::from_slice(&[3f32, 4., 6., 2., 3., 6., 8., 9.], [1, 8]);
/// assert_eq!(x.view([2, 4]).shape(), &[2, 4]);
/// assert_eq!(x.to_string(), "tensor([[3., 4., 6., 2., 3., 6., 8., 9.]])");
/// ```
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<TensorImpl>);

impl Tensor {
    /// A tensor over `storage` viewed through `layout` (no autograd state).
    fn from_parts(
        storage: Arc<StorageCell>,
        layout: Layout,
        dtype: DType,
        device: Device,
    ) -> Tensor {
        Tensor(Arc::new(TensorImpl {
            storage,
            layout,
            dtype,
            device,
            requires_grad: AtomicBool::new(false),
            grad_fn: Mutex::new(None),
            grad: Mutex::new(None),
            post_accumulate_grad_hooks: Mutex::default(),
        }))
    }

    /// A contiguous tensor owning `storage`, with the given shape.
    pub fn from_storage(storage: Storage, shape: &[usize]) -> Tensor {
        assert_eq!(
            storage.len(),
            ember_kernels::shape::numel(shape),
            "from_storage: storage length does not match shape {shape:?}"
        );
        let (dtype, device) = (storage.dtype(), storage.device());
        Tensor::from_parts(
            StorageCell::new(storage),
            Layout::contiguous(shape),
            dtype,
            device,
        )
    }

    /// A view of the same storage with another layout (no autograd recording; see `ops::view`).
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor::from_parts(self.0.storage.clone(), layout, self.0.dtype, self.0.device)
    }

    /// A tensor holding a copy of `data` with the given shape; the dtype follows `T`
    /// (`f32` → float32, `i64` → int64, …).
    pub fn from_slice<T: CpuElement>(data: &[T], shape: impl IntoShape) -> Tensor {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A tensor taking ownership of `data` with the given shape.
    pub fn from_vec<T: CpuElement>(data: Vec<T>, shape: impl IntoShape) -> Tensor {
        let shape = shape.to_dims("from_vec");
        let n: usize = shape.iter().product();
        if n != data.len() {
            panic!(
                "from_vec: {} elements cannot have shape {:?}",
                data.len(),
                shape.as_slice()
            );
        }
        Tensor::from_storage(Storage::Cpu(CpuStorage::from_vec(data)), &shape)
    }

    /// A 0-dim tensor holding `v`.
    pub fn scalar<T: CpuElement>(v: T) -> Tensor {
        Tensor::from_vec(vec![v], [0usize; 0])
    }

    // ----- metadata -----

    /// The size of each dimension.
    pub fn shape(&self) -> &[usize] {
        self.0.layout.shape()
    }

    /// The size of one dimension (negative dims count from the end), as PyTorch's `size(d)`.
    pub fn size(&self, dim: isize) -> i64 {
        self.shape()[ember_kernels::shape::normalize_dim(dim, self.dim())] as i64
    }

    /// Element strides of each dimension.
    pub fn stride(&self) -> &[usize] {
        self.0.layout.strides()
    }

    /// Number of dimensions.
    pub fn dim(&self) -> usize {
        self.0.layout.ndim()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }

    /// The device holding the elements.
    pub fn device(&self) -> Device {
        self.0.device
    }

    /// The strided layout of this view.
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }

    /// True when the elements are row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// True when both handles view the same storage.
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    /// Number of in-place modifications of the underlying storage so far.
    pub fn version(&self) -> usize {
        self.0.storage.version.load(Ordering::Relaxed)
    }

    pub(crate) fn bump_version(&self) {
        self.0.storage.version.fetch_add(1, Ordering::Relaxed);
    }

    /// Read access to the storage.
    pub fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        self.0.storage.data.read().unwrap()
    }

    pub(crate) fn storage_mut(&self) -> RwLockWriteGuard<'_, Storage> {
        self.0.storage.data.write().unwrap()
    }

    /// Write access to the storage, for code outside the op set that fills a tensor's elements
    /// in place (a communication library receiving into it). Bumps the version counter, as
    /// every in-place op does, so that a backward which saved the old values fails loudly.
    pub fn storage_write(&self) -> RwLockWriteGuard<'_, Storage> {
        self.bump_version();
        self.storage_mut()
    }

    // ----- host data -----

    /// The elements in row-major order, converted to `T`.
    pub fn to_vec<T: CpuElement>(&self) -> Vec<T> {
        self.storage().to_vec(self.layout())
    }

    /// The value of a one-element tensor as f64 (PyTorch's `item()`).
    pub fn item(&self) -> f64 {
        if self.numel() != 1 {
            panic!(
                "a Tensor with {} elements cannot be converted to Scalar",
                self.numel()
            );
        }
        self.to_vec::<f64>()[0]
    }

    /// `|a - b| <= atol + rtol * |b|` elementwise with matching shapes (NaNs never close).
    pub fn allclose(&self, other: &Tensor, rtol: f64, atol: f64) -> bool {
        if self.shape() != other.shape() {
            return false;
        }
        let (a, b) = (self.to_vec::<f64>(), other.to_vec::<f64>());
        a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || (x - y).abs() <= atol + rtol * y.abs())
    }

    // ----- autograd state -----

    /// True when gradients flow to this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }

    /// Sets whether this tensor requires grad and returns it (PyTorch's `requires_grad_`). Only
    /// leaves can change it, as in PyTorch; a float dtype is required.
    pub fn requires_grad_(self, requires_grad: bool) -> Tensor {
        if !self.is_leaf() {
            panic!("you can only change requires_grad flags of leaf variables.");
        }
        if requires_grad && !self.dtype().is_float() {
            panic!(
                "only Tensors of floating point dtype can require gradients (got {})",
                self.dtype()
            );
        }
        self.0.requires_grad.store(requires_grad, Ordering::Relaxed);
        self
    }

    /// True for tensors not produced by a recorded op.
    pub fn is_leaf(&self) -> bool {
        self.0.grad_fn.lock().unwrap().is_none()
    }

    /// The node that produced this tensor, if recorded.
    pub fn grad_fn(&self) -> Option<Arc<Node>> {
        self.0.grad_fn.lock().unwrap().clone()
    }

    /// PyTorch's name of the producing op's backward (`Some("MulBackward0")`).
    pub fn grad_fn_name(&self) -> Option<&'static str> {
        self.0.grad_fn.lock().unwrap().as_ref().map(|n| n.name())
    }

    pub(crate) fn set_grad_fn(&self, node: Option<Arc<Node>>) {
        self.0
            .requires_grad
            .store(node.is_some() || self.requires_grad(), Ordering::Relaxed);
        *self.0.grad_fn.lock().unwrap() = node;
    }

    /// The accumulated gradient, if any.
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.lock().unwrap().clone()
    }

    /// Replaces the gradient (`x.grad = g`; `None` is PyTorch's `set_to_none`).
    pub fn set_grad(&self, grad: Option<Tensor>) {
        *self.0.grad.lock().unwrap() = grad;
    }

    /// Drops the gradient (`x.grad = None`).
    pub fn zero_grad(&self) {
        self.set_grad(None);
    }

    /// Keeps the gradient of a non-leaf tensor in `.grad()` after backward.
    pub fn retain_grad(&self) {
        if let Some(node) = self.grad_fn() {
            *node.retained.lock().unwrap() = Some(Arc::downgrade(&self.0));
        } else if !self.requires_grad() {
            panic!("can't retain_grad on Tensor that has requires_grad=False");
        }
    }

    /// A view of the same data cut from the graph (`requires_grad` false).
    pub fn detach(&self) -> Tensor {
        self.with_layout(self.0.layout.clone())
    }

    pub(crate) fn same_impl(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
