//! An optimizer's saved state: tensors (per-parameter buffers) plus JSON metadata (optimizer class,
//! each group's hyper-parameters and parameter indices, step counts). On disk it is one
//! safetensors file whose string metadata holds the JSON, written atomically.

use ember_autograd::io::{self, IoError};
use ember_autograd::Tensor;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// The metadata key under which the JSON is stored in the safetensors file.
const META_KEY: &str = "ember.optim.state_dict";

/// An error saving, loading or restoring an optimizer state.
#[derive(Debug, Clone, PartialEq)]
pub enum OptimError {
    /// Reading or writing the file failed.
    Io(IoError),
    /// The file or state_dict is malformed.
    Format(String),
    /// The state_dict does not fit this optimizer (class, groups or shapes differ).
    Mismatch(String),
}

impl fmt::Display for OptimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptimError::Io(e) => write!(f, "{e}"),
            OptimError::Format(m) => write!(f, "malformed optimizer state_dict: {m}"),
            OptimError::Mismatch(m) => write!(f, "optimizer state_dict does not match: {m}"),
        }
    }
}

impl std::error::Error for OptimError {}

impl From<IoError> for OptimError {
    fn from(e: IoError) -> Self {
        OptimError::Io(e)
    }
}

/// An optimizer's state (PyTorch's `optimizer.state_dict()`): buffers named
/// `state.{param index}.{buffer}` (parameters numbered across groups in order), and `metadata`
/// `{"optimizer", "param_groups": [{"options", "initial_lr", "params"}], "state": {index:
/// {"step", "buffers"}}}`.
#[derive(Clone, Debug)]
pub struct StateDict {
    /// The state buffers by name.
    pub tensors: Vec<(String, Tensor)>,
    /// Everything else, as JSON.
    pub metadata: Value,
}

impl StateDict {
    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Writes the state to `path` as safetensors with the JSON in its metadata, atomically
    /// (a temporary file renamed over the target).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), OptimError> {
        let meta = HashMap::from([(META_KEY.to_string(), self.metadata.to_string())]);
        io::save(path, &self.tensors, Some(&meta))?;
        Ok(())
    }

    /// Reads a state written by [`StateDict::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<StateDict, OptimError> {
        let path = path.as_ref();
        let (tensors, meta) = io::load(path)?;
        let text = meta.get(META_KEY).ok_or_else(|| {
            OptimError::Format(format!(
                "{} has no '{META_KEY}' metadata (not an optimizer state file)",
                path.display()
            ))
        })?;
        let metadata = serde_json::from_str(text).map_err(|e| {
            OptimError::Format(format!("{}: bad metadata JSON: {e}", path.display()))
        })?;
        Ok(StateDict { tensors, metadata })
    }
}
