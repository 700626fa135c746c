//! Saving and loading named tensors in the safetensors format (what `safetensors.torch.save_file`
//! writes), with string metadata. Writes are atomic: the bytes go to a temporary file in the same
//! folder, which is then renamed over the target, so a crash never leaves a half-written file.
//! Every failure is an [`IoError`] naming the file and what is wrong; nothing here panics on bad
//! input.

use crate::tensor::Tensor;
use ember_kernels::DType;
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A file, format or content error while saving or loading tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct IoError {
    /// The file concerned.
    pub path: PathBuf,
    /// What went wrong, in words a user can act on.
    pub message: String,
}

impl IoError {
    /// An error about `path`.
    pub fn new(path: impl AsRef<Path>, message: impl Into<String>) -> IoError {
        IoError {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for IoError {}

/// Named tensors and the file's string metadata, in the file's order of names (sorted).
pub type NamedTensors = Vec<(String, Tensor)>;

/// Writes `bytes` to `path` atomically (temporary file in the same folder, fsync, rename).
pub fn atomic_write(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), IoError> {
    use std::io::Write;
    let path = path.as_ref();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| IoError::new(path, "not a file path"))?;
    // Unique per process and per call, so concurrent saves of one path never share a temp file.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{}.{n}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        IoError::new(path, format!("cannot write: {e}"))
    })
}

struct HostTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &HostTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn to_host(t: &Tensor) -> HostTensor {
    let (dtype, bytes): (Dtype, Vec<u8>) = match t.dtype() {
        DType::Bool => (
            Dtype::BOOL,
            t.to_vec::<bool>().into_iter().map(u8::from).collect(),
        ),
        DType::U8 => (Dtype::U8, t.to_vec::<u8>()),
        DType::I64 => (
            Dtype::I64,
            t.to_vec::<i64>()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        DType::F32 => (
            Dtype::F32,
            t.to_vec::<f32>()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        DType::F64 => (
            Dtype::F64,
            t.to_vec::<f64>()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
    };
    HostTensor {
        dtype,
        shape: t.shape().to_vec(),
        bytes,
    }
}

/// The safetensors bytes of `tensors` with optional string `metadata`.
pub fn serialize(
    tensors: &[(String, Tensor)],
    metadata: Option<&HashMap<String, String>>,
) -> Result<Vec<u8>, String> {
    let host: Vec<(String, HostTensor)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), to_host(t)))
        .collect();
    safetensors::serialize(host.iter().map(|(n, h)| (n.as_str(), h)), metadata.cloned())
        .map_err(|e| e.to_string())
}

/// Saves named tensors (and optional metadata) to `path` in safetensors format, atomically.
pub fn save(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
    metadata: Option<&HashMap<String, String>>,
) -> Result<(), IoError> {
    let path = path.as_ref();
    let bytes = serialize(tensors, metadata)
        .map_err(|e| IoError::new(path, format!("cannot serialize: {e}")))?;
    atomic_write(path, &bytes)
}

fn chunks<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    bytes.chunks_exact(N).map(|c| c.try_into().unwrap())
}

/// Parses safetensors bytes into named tensors and metadata (`origin` names the source in errors).
pub fn deserialize(
    origin: impl AsRef<Path>,
    bytes: &[u8],
) -> Result<(NamedTensors, HashMap<String, String>), IoError> {
    let origin = origin.as_ref();
    let bad = |e: String| IoError::new(origin, format!("not a valid safetensors file ({e})"));
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let mut names: Vec<&str> = st.names();
    names.sort_unstable();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let v = st.tensor(name).map_err(|e| bad(e.to_string()))?;
        let shape = v.shape().to_vec();
        let d = v.data();
        let t = match v.dtype() {
            Dtype::BOOL => {
                Tensor::from_vec(d.iter().map(|&b| b != 0).collect::<Vec<bool>>(), shape)
            }
            Dtype::U8 => Tensor::from_vec(d.to_vec(), shape),
            Dtype::I64 => Tensor::from_vec(
                chunks::<8>(d).map(i64::from_le_bytes).collect::<Vec<i64>>(),
                shape,
            ),
            Dtype::F32 => Tensor::from_vec(
                chunks::<4>(d).map(f32::from_le_bytes).collect::<Vec<f32>>(),
                shape,
            ),
            Dtype::F64 => Tensor::from_vec(
                chunks::<8>(d).map(f64::from_le_bytes).collect::<Vec<f64>>(),
                shape,
            ),
            other => {
                return Err(IoError::new(
                    origin,
                    format!("tensor '{name}' has dtype {other:?}, which Ember does not support"),
                ))
            }
        };
        out.push((name.to_string(), t));
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// Loads named tensors and metadata from a safetensors file.
pub fn load(path: impl AsRef<Path>) -> Result<(NamedTensors, HashMap<String, String>), IoError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| IoError::new(path, format!("cannot read: {e}")))?;
    deserialize(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_dtypes_with_metadata() {
        let dir = std::env::temp_dir().join(format!("ember-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.safetensors");
        let ts = vec![
            (
                "a".to_string(),
                Tensor::from_vec(vec![1.5f32, -2.0, 3.25, 0.0], [2, 2]),
            ),
            ("b".to_string(), Tensor::from_vec(vec![1.0f64; 3], [3])),
            ("c".to_string(), Tensor::from_vec(vec![7i64, -9], [2])),
            ("d".to_string(), Tensor::from_vec(vec![true, false], [2])),
            ("e".to_string(), Tensor::from_vec(vec![255u8], [1])),
        ];
        let meta = HashMap::from([("step".to_string(), "3".to_string())]);
        save(&path, &ts, Some(&meta)).unwrap();
        let (back, m) = load(&path).unwrap();
        assert_eq!(m, meta);
        for ((n1, t1), (n2, t2)) in ts.iter().zip(&back) {
            assert_eq!(n1, n2);
            assert_eq!(t1.dtype(), t2.dtype());
            assert_eq!(t1.to_vec::<f64>(), t2.to_vec::<f64>());
        }
        assert!(load(dir.join("missing.safetensors"))
            .unwrap_err()
            .message
            .contains("cannot read"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_bytes_are_errors() {
        let ts = vec![("w".to_string(), Tensor::from_vec(vec![1.0f32; 6], [2, 3]))];
        let bytes = serialize(&ts, None).unwrap();
        for cut in 0..bytes.len() {
            assert!(deserialize("x", &bytes[..cut]).is_err());
        }
    }
}
