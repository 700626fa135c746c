//! The error type of dataset loading: every message names the file and says what to do.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a dataset could not be loaded or built. The `Display` text names the file involved and
/// what is wrong with it, in words a user can act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataError {
    /// A file the dataset needs does not exist.
    NotFound {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// Reading a file failed for another reason (permissions, I/O error).
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's contents do not follow its format (bad magic number, truncated, …).
    Corrupt {
        /// The file being parsed.
        path: PathBuf,
        /// What is wrong, e.g. "truncated: the header declares 47040000 bytes of pixels, found 1024".
        reason: String,
    },
    /// A file's sha256 differs from the published one.
    Checksum {
        /// The file checked.
        path: PathBuf,
        /// The published sha256 (hex).
        expected: String,
        /// The sha256 of the file on disk (hex).
        actual: String,
    },
    /// The tensors given to a `TensorDataset` do not share their first dimension.
    SizeMismatch {
        /// What was expected and found.
        reason: String,
    },
}

impl DataError {
    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> DataError {
        DataError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> DataError {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// The file the error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DataError::NotFound { path }
            | DataError::Io { path, .. }
            | DataError::Corrupt { path, .. }
            | DataError::Checksum { path, .. } => Some(path),
            DataError::SizeMismatch { .. } => None,
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::NotFound { path } => write!(
                f,
                "{}: not found — run from the repository root (MNIST is committed under \
                 datasets/mnist) or pass the directory that holds the files (e.g. --data DIR)",
                path.display()
            ),
            DataError::Io { path, source } => {
                write!(f, "{}: cannot be read: {source}", path.display())
            }
            DataError::Corrupt { path, reason } => write!(
                f,
                "{}: corrupt or not an IDX file: {reason}",
                path.display()
            ),
            DataError::Checksum {
                path,
                expected,
                actual,
            } => write!(
                f,
                "{}: sha256 mismatch (expected {expected}, found {actual}) — the file is damaged \
                 or not the published one; restore it (in this repository: \
                 `git checkout -- datasets/mnist`)",
                path.display()
            ),
            DataError::SizeMismatch { reason } => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
