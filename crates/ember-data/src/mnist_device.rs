//! MNIST kept on a device ([`Mnist::to_device`]): the pixels are uploaded once as u8 (47 MB for
//! the training set), and each batch is gathered and converted to float32 on that device by
//! tensor ops, so a GPU training loop copies no images from the host.

use crate::dataset::{index_tensor, Dataset};
use crate::mnist::Mnist;
use crate::transforms::PixelPlan;
use ember_autograd::{DType, Device, Tensor};

/// The transform chain's pixel arithmetic, as device ops.
#[derive(Debug)]
enum DevicePlan {
    /// `((x - s0) / d0 - s1) / d1` in float32 (the steps that are no-ops are skipped).
    SubDiv(Vec<(f32, f32)>),
    /// `table[x]`: a 256-entry float32 table on the device, indexed by the pixel.
    Table(Tensor),
}

/// [`Mnist`] with its images and labels on a device: `get_batch` gathers the batch there
/// (one `index_select` of u8 pixels, then the transform chain in float32, bit for bit what
/// [`Mnist`] computes on the host). Make one with [`Mnist::to_device`].
///
/// ```
/// use ember_data::{DataLoader, Mnist};
/// use ember_autograd::Device;
/// # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../datasets/mnist");
/// let device = Device::Cpu; // or Device::Cuda(0) in a build with the `cuda` feature
/// let test = Mnist::test(dir)?.normalize(0.1307, 0.3081).to_device(device);
/// let loader = DataLoader::new(test, 1000);
/// let (images, labels) = (&loader).into_iter().next().unwrap();
/// assert_eq!((images.shape(), images.device()), (&[1000, 1, 28, 28][..], device));
/// assert_eq!(labels.device(), device);
/// # Ok::<(), ember_data::DataError>(())
/// ```
#[derive(Debug)]
pub struct MnistOnDevice {
    /// `[N, rows, cols]` u8.
    images: Tensor,
    /// `[N]` int64.
    labels: Tensor,
    plan: DevicePlan,
    device: Device,
}

impl MnistOnDevice {
    pub(crate) fn new(
        images: &[u8],
        labels: &[u8],
        (rows, cols): (usize, usize),
        plan: &PixelPlan,
        device: Device,
    ) -> MnistOnDevice {
        let n = labels.len();
        let images = Tensor::from_vec(images.to_vec(), [n, rows, cols]).to_device(device);
        let labels: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        let labels = Tensor::from_vec(labels, [n]).to_device(device);
        let plan = match plan {
            PixelPlan::SubDiv(steps) => {
                DevicePlan::SubDiv(steps.iter().copied().filter(|&s| s != (0.0, 1.0)).collect())
            }
            PixelPlan::Table(table) => {
                DevicePlan::Table(Tensor::from_slice(&table[..], [256]).to_device(device))
            }
        };
        MnistOnDevice {
            images,
            labels,
            plan,
            device,
        }
    }

    /// The device the data lives on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Raw u8 pixels (any shape) through the transform chain, in float32 on the device.
    fn pixels(&self, raw: &Tensor) -> Tensor {
        match &self.plan {
            DevicePlan::SubDiv(steps) => {
                let mut x = raw.to_dtype(DType::F32);
                for &(s, d) in steps {
                    x = (x - f64::from(s)) / f64::from(d);
                }
                x
            }
            DevicePlan::Table(table) => {
                let flat = raw.to_dtype(DType::I64).reshape([-1]);
                table.index_select(0, &flat).reshape(raw.shape())
            }
        }
    }

    fn check(&self, i: usize) {
        if i >= self.len() {
            panic!(
                "MnistOnDevice: index {i} is out of range for a dataset of {} samples",
                self.len()
            );
        }
    }
}

impl Dataset for MnistOnDevice {
    type Sample = (Tensor, Tensor);

    fn len(&self) -> usize {
        self.labels.shape()[0]
    }

    /// `([1, rows, cols] float32, 0-dim int64)` on the device.
    fn get(&self, index: usize) -> (Tensor, Tensor) {
        self.check(index);
        (
            self.pixels(&self.images.select(0, index)).unsqueeze(0),
            self.labels.select(0, index).copy(),
        )
    }

    /// `([B, 1, rows, cols] float32, [B] int64)` on the device: one gather of u8 pixels there.
    fn get_batch(&self, indices: &[usize]) -> (Tensor, Tensor) {
        for &i in indices {
            self.check(i);
        }
        let idx = index_tensor(indices).to_device(self.device);
        let raw = self.images.index_select(0, &idx);
        (
            self.pixels(&raw).unsqueeze(1),
            self.labels.index_select(0, &idx),
        )
    }
}

impl Mnist {
    /// This dataset with its pixels and labels uploaded to `device` once, batches gathered and
    /// transformed there (what a GPU training loop wants: no per-batch host copies).
    pub fn to_device(&self, device: Device) -> MnistOnDevice {
        let (rows, cols) = self.image_size();
        MnistOnDevice::new(
            self.all_image_bytes(),
            self.labels(),
            (rows, cols),
            self.plan(),
            device,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::{Compose, Transform};

    fn mnist() -> Mnist {
        Mnist::test(concat!(env!("CARGO_MANIFEST_DIR"), "/../../datasets/mnist")).unwrap()
    }

    /// A chain that is not a sequence of subtractions and divisions: converted by table.
    #[derive(Debug)]
    struct Square;
    impl Transform for Square {
        fn apply(&self, x: f32) -> f32 {
            x * x / 255.0
        }
    }

    fn same_batches(host: &Mnist) {
        let dev = host.to_device(Device::Cpu);
        assert_eq!(dev.len(), host.len());
        let idx = [9999, 0, 17, 17, 4242];
        let (a, la) = host.get_batch(&idx);
        let (b, lb) = dev.get_batch(&idx);
        assert_eq!(a.shape(), b.shape());
        let bits =
            |t: &Tensor| -> Vec<u32> { t.to_vec::<f32>().iter().map(|v| v.to_bits()).collect() };
        assert_eq!(bits(&a), bits(&b), "pixels bit for bit ({:?})", dev.plan);
        assert_eq!(la.to_vec::<i64>(), lb.to_vec::<i64>());
        let ((x, l), (y, m)) = (host.get(31), dev.get(31));
        assert_eq!((x.shape(), l.shape()), (y.shape(), m.shape()));
        assert_eq!(bits(&x), bits(&y));
        assert_eq!(l.item(), m.item());
    }

    #[test]
    fn device_batches_equal_host_batches() {
        let m = mnist();
        same_batches(&m);
        same_batches(&m.clone().normalize(0.1307, 0.3081));
        same_batches(&m.clone().normalize(0.5, 0.5).normalize(0.25, 2.0));
        same_batches(&m.with_transform(Compose::new().then(Square)));
    }

    #[test]
    #[should_panic(
        expected = "MnistOnDevice: index 10000 is out of range for a dataset of 10000 samples"
    )]
    fn out_of_range_panics_with_the_size() {
        mnist().to_device(Device::Cpu).get_batch(&[1, 10000]);
    }
}
