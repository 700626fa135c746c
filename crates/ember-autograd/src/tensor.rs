//! The user's `Tensor`: a cheap-to-clone handle to a strided view of shared storage, plus its
//! autograd state. Views share the `StorageCell`; every op returns a new handle, except
//! [`Tensor::set_data`], which points an existing tensor at other storage.

use crate::graph::Node;
use crate::shape_arg::IntoShape;
use ember_kernels::CpuElement;
use ember_kernels::{CpuStorage, DType, Device, Layout, Scalar, Storage};
use parking_lot::{Mutex, RawRwLock, RwLock};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Storage shared by a tensor and all its views, with the version counter that in-place ops bump
/// and the storage's dtype and device (which never change: in-place ops keep both).
///
/// The lock is `parking_lot`'s: it is never poisoned (a panicking kernel cannot make a tensor
/// unusable), and readers take it with `read_recursive`, so an op whose operands share one storage
/// (`&x * &x`) may hold two read guards on one thread even while a writer waits. It sits in its own
/// `Arc` so that a guard keeps the storage alive by itself ([`StorageReadGuard`]): a tensor may be
/// pointed at another cell ([`Tensor::set_data`]) while a guard on the old one is still held.
pub(crate) struct StorageCell {
    data: Arc<RwLock<Storage>>,
    version: AtomicUsize,
    dtype: DType,
    device: Device,
}

/// Read access to a tensor's storage ([`Tensor::storage`]). It owns a reference to the storage, so
/// it stays valid when [`Tensor::set_data`] gives the tensor new storage meanwhile.
pub type StorageReadGuard = parking_lot::lock_api::ArcRwLockReadGuard<RawRwLock, Storage>;

/// Write access to a tensor's storage ([`Tensor::storage_write`]); owns a reference to the
/// storage, as [`StorageReadGuard`] does.
pub type StorageWriteGuard = parking_lot::lock_api::ArcRwLockWriteGuard<RawRwLock, Storage>;

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
            dtype: s.dtype(),
            device: s.device(),
            data: Arc::new(RwLock::new(s)),
            version: AtomicUsize::new(0),
        })
    }
}

/// The producing node of a tensor, with the storage version at which it was set: a view whose
/// storage was since modified in place through another handle regenerates its node from its
/// base's new history (see [`ViewMeta`]).
#[derive(Default)]
pub(crate) struct GradFn {
    pub(crate) node: Option<Arc<Node>>,
    pub(crate) version: usize,
}

/// Replays a chain of view ops on a tensor of the base's shape.
pub(crate) type ViewFn = Arc<dyn Fn(&Tensor) -> Tensor + Send + Sync>;

/// What a differentiable view knows of where it came from (PyTorch's `_base` and view replay): the
/// base (never itself a view) and how to take this view of any tensor shaped like it. An in-place
/// op through the view rewrites the base's history (`CopySlices`), and every view of that base
/// then replays itself on the new history.
pub(crate) struct ViewMeta {
    pub(crate) base: Tensor,
    pub(crate) view_fn: ViewFn,
}

pub(crate) struct TensorImpl {
    /// The storage this tensor views. Replaced as a whole by [`Tensor::set_data`], so it sits
    /// behind a lock that is only ever held to read or swap the `Arc` (never while a kernel runs);
    /// the dtype and device are the cell's.
    cell: RwLock<Arc<StorageCell>>,
    /// Fixed for the tensor's life: `set_data` lays the new elements out in it.
    pub(crate) layout: Layout,
    pub(crate) requires_grad: AtomicBool,
    pub(crate) grad_fn: Mutex<GradFn>,
    pub(crate) grad: Mutex<Option<Tensor>>,
    pub(crate) view: Option<ViewMeta>,
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
    fn from_parts(storage: Arc<StorageCell>, layout: Layout, view: Option<ViewMeta>) -> Tensor {
        Tensor(Arc::new(TensorImpl {
            cell: RwLock::new(storage),
            layout,
            requires_grad: AtomicBool::new(false),
            grad_fn: Mutex::new(GradFn::default()),
            grad: Mutex::new(None),
            view,
            post_accumulate_grad_hooks: Mutex::default(),
        }))
    }

    /// A contiguous tensor owning `storage`, with the given shape.
    #[track_caller]
    pub fn from_storage(storage: Storage, shape: &[usize]) -> Tensor {
        assert_eq!(
            storage.len(),
            ember_kernels::shape::numel(shape),
            "from_storage: storage length does not match shape {shape:?}"
        );
        Tensor::from_parts(StorageCell::new(storage), Layout::contiguous(shape), None)
    }

    /// The storage cell this tensor views now (a short read of the swappable handle).
    fn cell(&self) -> Arc<StorageCell> {
        self.0.cell.read_recursive().clone()
    }

    /// A handle on the same storage with another layout, outside autograd (no view tracking, no
    /// recording; see `ops::view` for differentiable views).
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor::from_parts(self.cell(), layout, None)
    }

    /// A differentiable view with `layout`: remembers its base and how to replay it (`replay` maps
    /// a tensor shaped like `self` to this view of it).
    pub(crate) fn tracked_view(&self, layout: Layout, replay: ViewFn) -> Tensor {
        let meta = match &self.0.view {
            Some(v) => {
                let outer = v.view_fn.clone();
                ViewMeta {
                    base: v.base.clone(),
                    view_fn: Arc::new(move |t: &Tensor| replay(&outer(t))),
                }
            }
            None => ViewMeta {
                base: self.clone(),
                view_fn: replay,
            },
        };
        Tensor::from_parts(self.cell(), layout, Some(meta))
    }

    /// The view's base and replay function, for a differentiable view.
    pub(crate) fn view_meta(&self) -> Option<&ViewMeta> {
        self.0.view.as_ref()
    }

    /// A tensor holding a copy of `data` with the given shape; the dtype follows `T`
    /// (`f32` → float32, `i64` → int64, …).
    pub fn from_slice<T: CpuElement>(data: &[T], shape: impl IntoShape) -> Tensor {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A tensor taking ownership of `data` with the given shape.
    #[track_caller]
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
    #[track_caller]
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
        self.0.cell.read_recursive().dtype
    }

    /// The device holding the elements.
    pub fn device(&self) -> Device {
        self.0.cell.read_recursive().device
    }

    /// The strided layout of this view.
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }

    /// True when the elements are row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// An identifier of the storage, equal for every view of it while it lives.
    pub(crate) fn storage_id(&self) -> usize {
        Arc::as_ptr(&*self.0.cell.read_recursive()) as usize
    }

    /// True when both handles view the same storage.
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.cell(), &other.cell())
    }

    /// Number of in-place modifications of the underlying storage so far.
    pub fn version(&self) -> usize {
        self.0.cell.read_recursive().version.load(Ordering::Relaxed)
    }

    pub(crate) fn bump_version(&self) {
        self.0
            .cell
            .read_recursive()
            .version
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The storage's lock, taken out of the handle first so that no lock of this tensor is held
    /// while waiting for the storage's.
    fn data(&self) -> Arc<RwLock<Storage>> {
        self.0.cell.read_recursive().data.clone()
    }

    /// Read access to the storage. Recursive: one thread may hold several read guards of one
    /// storage (operands that alias) even while a writer is queued.
    pub fn storage(&self) -> StorageReadGuard {
        self.data().read_arc_recursive()
    }

    /// Write access to the storage. Callers validate every argument before taking it, so a bad call
    /// panics before anything is written.
    pub(crate) fn storage_mut(&self) -> StorageWriteGuard {
        self.data().write_arc()
    }

    /// Write access to the storage, for code outside the op set that fills a tensor's elements
    /// in place (a communication library receiving into it). Bumps the version counter, as
    /// every in-place op does, so that a backward which saved the old values fails loudly.
    pub fn storage_write(&self) -> StorageWriteGuard {
        self.bump_version();
        self.storage_mut()
    }

    /// Replaces this tensor's data with `other`'s, in place: PyTorch's `tensor.data = other`.
    /// Every handle to this tensor (the clones an optimizer holds, a module's parameter) sees
    /// `other`'s values, dtype and device from then on; this is how `Module::to` and
    /// `Module::to_dtype` move parameters under an optimizer built before.
    ///
    /// - The shapes must match (it panics naming both); the dtype and the device may change.
    /// - The layout (strides) stays this tensor's. When `other` has the same layout, this tensor
    ///   shares `other`'s storage, as in PyTorch (no copy); otherwise `other`'s elements are copied
    ///   into new storage of `other`'s dtype on `other`'s device. A tensor whose elements overlap
    ///   (an expanded one) cannot hold them and panics.
    /// - Views taken before keep the old storage and its values, as in PyTorch; they are no longer
    ///   views of this tensor's data.
    /// - Autograd: this is outside the graph, like PyTorch's `.data`. Nothing is recorded and
    ///   `other`'s history is ignored; `requires_grad`, `.grad()` (not converted: set it with
    ///   [`Tensor::set_grad`] when the dtype or device changed) and hooks stay as they are. Only a
    ///   leaf (no `grad_fn`) that is not a view may have its data replaced, and a leaf that requires
    ///   grad needs floating-point data; both panic otherwise.
    /// - The version counter moves past its old value, as an in-place write would, so a backward
    ///   that saved this tensor before fails loudly rather than reading the new data. When the
    ///   storage is shared with `other`, `other`'s counter is the one raised.
    /// - When `other` already views this storage with this layout, nothing changes.
    /// - Like any write, it is not meant to race with ops on this tensor in other threads. Such an
    ///   op sees the old data or the new (a storage guard taken before keeps the old storage
    ///   alive), or reads the old dtype and the new storage, which is never unsound but not
    ///   meaningful either.
    ///
    /// ```
    /// use ember_autograd::{DType, Tensor};
    /// let p = Tensor::from_slice(&[1f32, 2.], [2]).requires_grad_(true);
    /// let held = p.clone(); // an optimizer's handle
    /// let old_view = p.detach();
    /// p.set_data(&p.detach().to_dtype(DType::F64));
    /// assert_eq!(held.dtype(), DType::F64);
    /// assert!(held.requires_grad());
    /// assert_eq!(old_view.dtype(), DType::F32);
    /// ```
    #[track_caller]
    pub fn set_data(&self, other: &Tensor) {
        if self.shape() != other.shape() {
            panic!(
                "set_data: the new data has shape {:?} but the tensor has shape {:?}; the shapes must match",
                other.shape(),
                self.shape()
            );
        }
        if self.0.view.is_some() {
            panic!("set_data: the tensor is a view of another tensor; replace the base's data instead (or detach() the view first)");
        }
        if let Some(node) = &self.0.grad_fn.lock().node {
            panic!(
                "set_data: only a leaf tensor can have its data replaced, but this one was produced by {}",
                node.name()
            );
        }
        if self.requires_grad() && !other.dtype().is_float() {
            panic!(
                "set_data: a tensor that requires grad needs floating-point data (got {})",
                other.dtype()
            );
        }
        let (old, theirs) = (self.cell(), other.cell());
        let same_layout = self.layout() == other.layout();
        if same_layout && Arc::ptr_eq(&old, &theirs) {
            return;
        }
        let cell = if same_layout {
            theirs
        } else {
            let layout = self.layout();
            let src = other.storage();
            let storage = if layout.contiguous_range() == Some((0, layout.numel())) {
                src.contiguous(other.layout())
            } else {
                if layout.has_overlap() {
                    panic!(
                        "set_data: more than one element of the tensor refers to a single memory location (shape {:?}, strides {:?}), so it cannot hold other data",
                        layout.shape(),
                        layout.strides()
                    );
                }
                let mut s = Storage::full(
                    layout.storage_extent(),
                    Scalar::Int(0),
                    other.dtype(),
                    other.device(),
                );
                s.copy_from(layout, &src, other.layout());
                s
            };
            StorageCell::new(storage)
        };
        let after = old.version.load(Ordering::Relaxed) + 1;
        cell.version.fetch_max(after, Ordering::Relaxed);
        *self.0.cell.write() = cell;
    }

    // ----- host data -----

    /// The elements in row-major order, converted to `T`.
    pub fn to_vec<T: CpuElement>(&self) -> Vec<T> {
        self.storage().to_vec(self.layout())
    }

    /// The value of a one-element tensor as f64 (PyTorch's `item()`).
    #[track_caller]
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

    /// True when gradients flow to this tensor (for a view: also when its base has come to require
    /// grad through an in-place op on another view).
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
            || self.0.view.as_ref().is_some_and(|v| v.base.requires_grad())
    }

    /// Sets whether this tensor requires grad, in place, and returns it (PyTorch's
    /// `requires_grad_`): a handle to the same tensor, so both `Tensor::randn([2, 2])
    /// .requires_grad_(true)` and a statement `x.requires_grad_(true);` work. Only leaves can
    /// change it, as in PyTorch; a float dtype is required.
    ///
    /// ```
    /// use ember_autograd::Tensor;
    /// let x = Tensor::zeros([2]);
    /// x.requires_grad_(true);
    /// assert!(x.requires_grad());
    /// let y = Tensor::randn([2, 2]).requires_grad_(true);
    /// assert!(y.requires_grad());
    /// ```
    #[track_caller]
    pub fn requires_grad_(&self, requires_grad: bool) -> Tensor {
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
        self.clone()
    }

    /// True for tensors not produced by a recorded op.
    pub fn is_leaf(&self) -> bool {
        self.grad_fn().is_none()
    }

    /// The node that produced this tensor, if recorded. A view whose storage was modified in
    /// place through another handle since its node was set replays itself on its base's current
    /// history first, as PyTorch regenerates a view's `grad_fn`.
    pub fn grad_fn(&self) -> Option<Arc<Node>> {
        let Some(v) = &self.0.view else {
            return self.0.grad_fn.lock().node.clone();
        };
        let now = self.version();
        {
            let slot = self.0.grad_fn.lock();
            if slot.version == now || !v.base.requires_grad() {
                return slot.node.clone();
            }
        }
        // Replayed outside the lock: the view ops read this view's base, not this tensor.
        let node = {
            let _mode = crate::grad_mode::grad_mode(true);
            (v.view_fn)(&v.base).grad_fn()
        };
        let mut slot = self.0.grad_fn.lock();
        *slot = GradFn {
            node: node.clone(),
            version: now,
        };
        self.0.requires_grad.store(true, Ordering::Relaxed);
        node
    }

    /// PyTorch's name of the producing op's backward (`Some("MulBackward0")`).
    pub fn grad_fn_name(&self) -> Option<&'static str> {
        self.grad_fn().map(|n| n.name())
    }

    pub(crate) fn set_grad_fn(&self, node: Option<Arc<Node>>) {
        self.0
            .requires_grad
            .store(node.is_some() || self.requires_grad(), Ordering::Relaxed);
        *self.0.grad_fn.lock() = GradFn {
            node,
            version: self.version(),
        };
    }

    /// The accumulated gradient, if any.
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.lock().clone()
    }

    /// Replaces the gradient (`x.grad = g`; `None` is PyTorch's `set_to_none`).
    pub fn set_grad(&self, grad: Option<Tensor>) {
        *self.0.grad.lock() = grad;
    }

    /// Drops the gradient (`x.grad = None`).
    pub fn zero_grad(&self) {
        self.set_grad(None);
    }

    /// Keeps the gradient of a non-leaf tensor in `.grad()` after backward.
    #[track_caller]
    pub fn retain_grad(&self) {
        if let Some(node) = self.grad_fn() {
            *node.retained.lock() = Some(Arc::downgrade(&self.0));
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
