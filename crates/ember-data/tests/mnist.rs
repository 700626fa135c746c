//! The IDX reader (synthetic files, gzipped and raw, and corrupted bytes) and MNIST itself.

use ember_data::idx::{parse_idx, read_idx};
use ember_data::{DataError, DataLoader, Dataset, Mnist, Transform};
use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/mnist")
}

/// A fresh empty directory under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ember-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An IDX file of unsigned bytes with the given dims and data.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// `n` synthetic 4×3 images (pixel = 10·image + position) and labels `i % 10`.
fn synthetic(n: usize) -> (Vec<u8>, Vec<u8>) {
    let px: Vec<u8> = (0..n * 12)
        .map(|k| ((k / 12) * 10 + k % 12) as u8)
        .collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    (
        idx_bytes(&[n as u32, 4, 3], &px),
        idx_bytes(&[n as u32], &labels),
    )
}

fn corrupt_reason(r: Result<impl std::fmt::Debug, DataError>) -> String {
    match r {
        Err(e @ DataError::Corrupt { .. }) => e.to_string(),
        other => panic!("expected a Corrupt error, got {other:?}"),
    }
}

#[test]
fn idx_raw_and_gzipped_files() {
    let dir = temp_dir("idx");
    let file = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    std::fs::write(dir.join("a.idx"), &file).unwrap();
    std::fs::write(dir.join("a.idx.gz"), gzip(&file)).unwrap();
    for name in ["a.idx", "a.idx.gz"] {
        let a = read_idx(dir.join(name)).unwrap();
        assert_eq!(a.dims, [2, 3]);
        assert_eq!(a.data, [1, 2, 3, 4, 5, 6]);
    }
    let missing = read_idx(dir.join("nope.gz")).unwrap_err();
    assert!(matches!(missing, DataError::NotFound { .. }));
    assert!(missing.to_string().contains("nope.gz: not found"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn idx_errors_say_what_is_wrong() {
    let p = Path::new("x.idx");
    let ok = idx_bytes(&[2, 2], &[1, 2, 3, 4]);
    let r = corrupt_reason(parse_idx(&ok[..ok.len() - 1], p));
    assert!(r.starts_with("x.idx: ") && r.contains("truncated"), "{r}");
    let mut extra = ok.clone();
    extra.push(9);
    assert!(corrupt_reason(parse_idx(&extra, p)).contains("1 unexpected bytes"));
    let mut bad_magic = ok.clone();
    bad_magic[0] = 1;
    assert!(corrupt_reason(parse_idx(&bad_magic, p)).contains("bad magic number"));
    let mut float = ok.clone();
    float[2] = 0x0D;
    assert!(corrupt_reason(parse_idx(&float, p)).contains("float"));
    assert!(corrupt_reason(parse_idx(&[], p)).contains("empty"));
    assert!(corrupt_reason(parse_idx(&ok[..6], p)).contains("header"));
    // A header declaring far more than the gzip stream could hold fails before allocating.
    let huge = gzip(&idx_bytes(&[60000, 60000, 60000], &[]));
    assert!(corrupt_reason(parse_idx(&huge, p)).contains("more than a gzip file"));
    // A raw header declaring far more than the file holds fails before allocating.
    let raw_huge = idx_bytes(&[u32::MAX, u32::MAX], &[1, 2]);
    assert!(corrupt_reason(parse_idx(&raw_huge, p)).contains("truncated"));
    let overflow = idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[]);
    assert!(corrupt_reason(parse_idx(&overflow, p)).contains("overflow"));
    let gz = gzip(&ok);
    assert!(corrupt_reason(parse_idx(&gz[..gz.len() - 3], p)).contains("truncated"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Truncated or damaged files (raw or gzipped) are errors naming the file, never panics;
    /// every strict prefix is an error.
    #[test]
    fn corrupted_bytes_are_errors_not_panics(
        gz: bool,
        cut in 0usize..200,
        flips in proptest::collection::vec((0usize..200, 1u8..=255), 0..4),
    ) {
        let (images, _) = synthetic(5);
        let good = if gz { gzip(&images) } else { images };
        let p = Path::new("damaged.idx");
        let mut bytes = good.clone();
        for (at, x) in &flips {
            let i = at % bytes.len();
            bytes[i] ^= x;
        }
        let cut = cut % (bytes.len() + 1);
        let truncated = cut < bytes.len();
        bytes.truncate(cut);
        match parse_idx(&bytes, p) {
            Ok(a) => {
                prop_assert!(!truncated, "a truncated file parsed");
                prop_assert_eq!(a.dims.iter().product::<usize>(), a.data.len());
            }
            Err(e) => {
                prop_assert!(e.to_string().starts_with("damaged.idx: "), "{}", e);
            }
        }
    }
}

#[test]
fn mnist_from_synthetic_files() {
    let dir = temp_dir("synthetic");
    let (images, labels) = synthetic(7);
    std::fs::write(dir.join("img.gz"), gzip(&images)).unwrap();
    std::fs::write(dir.join("lbl"), &labels).unwrap();
    let ds = Mnist::from_files(dir.join("img.gz"), dir.join("lbl")).unwrap();
    assert_eq!((ds.len(), ds.image_size()), (7, (4, 3)));
    let (x, y) = ds.get(2);
    assert_eq!(x.shape(), &[1, 4, 3]);
    assert_eq!(y.shape(), &[] as &[usize]);
    assert_eq!(y.item(), 2.0);
    let expect: Vec<f32> = (0..12).map(|k| (20 + k) as f32 / 255.0).collect();
    assert_eq!(x.to_vec::<f32>(), expect);

    // A batch is the stack of the samples, bit for bit, with torchvision's formula.
    let ds = ds.normalize(0.1307, 0.3081);
    let (xb, yb) = ds.get_batch(&[6, 0, 3]);
    assert_eq!(xb.shape(), &[3, 1, 4, 3]);
    assert_eq!(yb.to_vec::<i64>(), [6, 0, 3]);
    let want: Vec<f32> = [6usize, 0, 3]
        .iter()
        .flat_map(|&i| ds.image_bytes(i).to_vec())
        .map(|p| (p as f32 / 255.0 - 0.1307) / 0.3081)
        .collect();
    assert_eq!(xb.to_vec::<f32>(), want);
    let (xs, _) = ds.get(6);
    assert_eq!(xs.to_vec::<f32>(), want[..12]);

    // Any chain (here through a table) is applied the same way.
    let inv = ds.clone().transform(|x: f32| -x);
    let (xi, _) = inv.get_batch(&[6]);
    let neg: Vec<f32> = want[..12].iter().map(|v| -v).collect();
    assert_eq!(xi.to_vec::<f32>(), neg);
    assert_eq!(
        ember_data::Compose::new()
            .then(ember_data::ToTensor)
            .apply(255.0),
        1.0
    );

    // Images and labels must agree in number.
    let (_, five) = synthetic(5);
    std::fs::write(dir.join("lbl5"), five).unwrap();
    let e = Mnist::from_files(dir.join("img.gz"), dir.join("lbl5")).unwrap_err();
    assert!(e.to_string().contains("holds 5 labels"), "{e}");
    // And have the right number of dims.
    let e = Mnist::from_files(dir.join("lbl"), dir.join("lbl")).unwrap_err();
    assert!(e.to_string().contains("expected 3 dims"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn mnist_missing_or_damaged_files_are_clear_errors() {
    let dir = temp_dir("damaged");
    let e = Mnist::train(&dir).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("train-images-idx3-ubyte.gz: not found"),
        "{msg}"
    );
    assert!(msg.contains("repository root"), "{msg}");
    // A damaged copy of the real test images fails its checksum.
    let mut bytes = std::fs::read(mnist_dir().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    bytes[100] ^= 1;
    std::fs::copy(
        mnist_dir().join("t10k-images-idx3-ubyte.gz"),
        dir.join("t10k-images-idx3-ubyte.gz"),
    )
    .unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), bytes).unwrap();
    let e = Mnist::test(&dir).unwrap_err();
    assert!(matches!(e, DataError::Checksum { .. }));
    assert!(
        e.to_string()
            .contains("t10k-labels-idx1-ubyte.gz: sha256 mismatch"),
        "{e}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn real_mnist_test_set() {
    let t = std::time::Instant::now();
    let test = Mnist::test(mnist_dir()).unwrap().normalize(0.5, 0.5);
    eprintln!(
        "Mnist::test loaded in {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(test.len(), 10_000);
    assert_eq!(test.image_size(), (28, 28));
    assert_eq!(test.labels()[..5], [7, 2, 1, 0, 4]);
    let loader = DataLoader::new(test, 1000);
    assert_eq!(loader.len(), 10);
    let mut counts = [0usize; 10];
    let (mut lo, mut hi) = (f32::MAX, f32::MIN);
    for (i, (x, y)) in loader.iter().enumerate() {
        assert_eq!(x.shape(), &[1000, 1, 28, 28]);
        assert_eq!(y.shape(), &[1000]);
        if i == 0 {
            assert_eq!(y.to_vec::<i64>()[0], 7);
        }
        for v in x.to_vec::<f32>() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        for l in y.to_vec::<i64>() {
            counts[l as usize] += 1;
        }
    }
    assert_eq!((lo, hi), (-1.0, 1.0));
    // The published class counts of the MNIST test set.
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
}
