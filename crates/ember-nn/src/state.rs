//! `state_dict` loading with PyTorch's checks, and safetensors files of a module's state
//! (through `ember_autograd::io`, whose writes are atomic and whose reads return errors, never
//! panics, on truncated or corrupt files).

use crate::module::Module;
use ember_autograd::io::{self, IoError};
use ember_autograd::{no_grad, Tensor};
use std::fmt;
use std::path::Path;

/// Named tensors in PyTorch's `state_dict` order (`0.weight`, `0.bias`, …).
pub type StateDict = Vec<(String, Tensor)>;

/// The names that did not line up in a non-strict load (PyTorch's `_IncompatibleKeys`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IncompatibleKeys {
    /// Names the module has but the loaded state lacks.
    pub missing_keys: Vec<String>,
    /// Names in the loaded state the module does not have.
    pub unexpected_keys: Vec<String>,
}

/// Everything wrong with a `load_state_dict`, reported at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadError {
    /// Names the module has but the state lacks (strict loads only).
    pub missing_keys: Vec<String>,
    /// Names in the state the module does not have (strict loads only).
    pub unexpected_keys: Vec<String>,
    /// `(name, shape in the state, shape in the module)`.
    pub shape_mismatches: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// `(name, dtype in the state, dtype in the module)` (PyTorch names: `float32`, …).
    pub dtype_mismatches: Vec<(String, String, String)>,
}

impl LoadError {
    fn is_empty(&self) -> bool {
        self.missing_keys.is_empty()
            && self.unexpected_keys.is_empty()
            && self.shape_mismatches.is_empty()
            && self.dtype_mismatches.is_empty()
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error(s) in loading state_dict:")?;
        let quoted = |v: &[String]| {
            v.iter()
                .map(|k| format!("\"{k}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.missing_keys.is_empty() {
            write!(
                f,
                "\n\tMissing key(s) in state_dict: {}.",
                quoted(&self.missing_keys)
            )?;
        }
        if !self.unexpected_keys.is_empty() {
            write!(
                f,
                "\n\tUnexpected key(s) in state_dict: {}.",
                quoted(&self.unexpected_keys)
            )?;
        }
        for (n, got, want) in &self.shape_mismatches {
            write!(f, "\n\tsize mismatch for {n}: copying a param with shape {got:?} from checkpoint, the shape in current model is {want:?}.")?;
        }
        for (n, got, want) in &self.dtype_mismatches {
            write!(
                f,
                "\n\tdtype mismatch for {n}: the checkpoint holds {got}, the current model holds {want}."
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// An error of saving or loading a module's state.
#[derive(Clone, Debug, PartialEq)]
pub enum NnError {
    /// The file could not be read or written, or is not valid safetensors.
    Io(IoError),
    /// The file's tensors do not fit the module.
    Load(LoadError),
}

impl fmt::Display for NnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NnError::Io(e) => write!(f, "{e}"),
            NnError::Load(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for NnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NnError::Io(e) => Some(e),
            NnError::Load(e) => Some(e),
        }
    }
}

impl From<IoError> for NnError {
    fn from(e: IoError) -> Self {
        NnError::Io(e)
    }
}

impl From<LoadError> for NnError {
    fn from(e: LoadError) -> Self {
        NnError::Load(e)
    }
}

/// Checks `state` against the module's own `current` state and, when everything fits, copies
/// the values in place (under `no_grad`, so parameters stay leaves).
pub(crate) fn load_into(
    current: &[(String, Tensor)],
    state: &[(String, Tensor)],
    strict: bool,
) -> Result<IncompatibleKeys, LoadError> {
    let mut err = LoadError::default();
    let mut keys = IncompatibleKeys::default();
    let mut copies = Vec::new();
    for (name, dst) in current {
        match state.iter().find(|(n, _)| n == name) {
            None => keys.missing_keys.push(name.clone()),
            Some((_, src)) => {
                if src.shape() != dst.shape() {
                    err.shape_mismatches.push((
                        name.clone(),
                        src.shape().to_vec(),
                        dst.shape().to_vec(),
                    ));
                } else if src.dtype() != dst.dtype() {
                    err.dtype_mismatches.push((
                        name.clone(),
                        src.dtype().name().to_string(),
                        dst.dtype().name().to_string(),
                    ));
                } else {
                    copies.push((dst, src));
                }
            }
        }
    }
    for (name, _) in state {
        if !current.iter().any(|(n, _)| n == name) {
            keys.unexpected_keys.push(name.clone());
        }
    }
    if strict {
        err.missing_keys = keys.missing_keys.clone();
        err.unexpected_keys = keys.unexpected_keys.clone();
    }
    if !err.is_empty() {
        return Err(err);
    }
    let _g = no_grad();
    for (dst, src) in copies {
        dst.copy_(src);
    }
    Ok(keys)
}

/// Saves named tensors to `path` in safetensors format, atomically.
pub(crate) fn save(state: &[(String, Tensor)], path: &Path) -> Result<(), NnError> {
    io::save(path, state, None).map_err(NnError::Io)
}

/// Loads a safetensors file into `module`.
pub(crate) fn load_file(
    module: &dyn Module,
    path: &Path,
    strict: bool,
) -> Result<IncompatibleKeys, NnError> {
    let (tensors, _meta) = io::load(path)?;
    Ok(module.load_state_dict(&tensors, strict)?)
}

/// Loads safetensors `bytes` (from memory) into `module`; `origin` names them in errors.
pub fn load_safetensors_bytes(
    module: &dyn Module,
    origin: &str,
    bytes: &[u8],
    strict: bool,
) -> Result<IncompatibleKeys, NnError> {
    let (tensors, _meta) = io::deserialize(origin, bytes)?;
    Ok(module.load_state_dict(&tensors, strict)?)
}

/// Saves `module`'s state to `path` (the free-function form of `Module::save_safetensors`, for
/// `&dyn Module`).
pub fn save_safetensors(module: &dyn Module, path: impl AsRef<Path>) -> Result<(), NnError> {
    save(&module.state_dict(), path.as_ref())
}

/// Loads `path` into `module` (the free-function form of `Module::load_safetensors_with`).
pub fn load_safetensors(
    module: &dyn Module,
    path: impl AsRef<Path>,
    strict: bool,
) -> Result<IncompatibleKeys, NnError> {
    load_file(module, path.as_ref(), strict)
}
