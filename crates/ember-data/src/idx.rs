//! The IDX file format of MNIST (<http://yann.lecun.com/exdb/mnist/>), gzipped or raw.
//!
//! An IDX file is a 4-byte magic number (`0x00 0x00`, an element-type code, the number of dims),
//! one big-endian `u32` per dim, then the elements in row-major order. Only unsigned-byte
//! elements (type `0x08`, what MNIST uses) are read; every other deviation (bad magic, a
//! truncated or over-long body, a damaged gzip stream) is a [`DataError::Corrupt`] naming the
//! file, never a panic.

use crate::error::DataError;
use flate2::read::GzDecoder;
use std::io::{ErrorKind, Read};
use std::path::Path;

/// The type code of unsigned-byte elements.
const TYPE_U8: u8 = 0x08;
/// DEFLATE cannot expand data by more than about 1032:1; a header claiming more is corrupt
/// (checked before allocating, so a damaged header cannot ask for terabytes).
const MAX_GZIP_RATIO: usize = 1100;

/// An IDX array of unsigned bytes: its dims and its elements in row-major order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The size of each dimension, as the header gives them.
    pub dims: Vec<usize>,
    /// `dims.iter().product()` elements, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes, gzipped (detected by its magic bytes, not its name) or
/// raw.
///
/// ```no_run
/// let labels = ember_data::idx::read_idx("datasets/mnist/t10k-labels-idx1-ubyte.gz")?;
/// assert_eq!(labels.dims, [10_000]);
/// # Ok::<(), ember_data::DataError>(())
/// ```
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray, DataError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_idx(&bytes, path)
}

/// Parses the bytes of an IDX file (gzipped or raw); `path` only names the file in errors.
///
/// ```
/// use ember_data::idx::parse_idx;
/// let file = [0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9]; // magic, dims [3], data
/// let a = parse_idx(&file, "labels.idx".as_ref()).unwrap();
/// assert_eq!((a.dims, a.data), (vec![3], vec![7, 8, 9]));
/// assert!(parse_idx(&file[..10], "labels.idx".as_ref()).is_err()); // truncated
/// ```
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        parse_reader(&mut GzDecoder::new(bytes), Some(bytes.len()), 0, path)
    } else {
        parse_reader(&mut &bytes[..], None, bytes.len(), path)
    }
}

/// Maps a read error to a `Corrupt` error; `what` says which part was being read.
fn read_error(path: &Path, gz: bool, what: &str, e: std::io::Error) -> DataError {
    let stream = if gz { " (gzip stream ends early)" } else { "" };
    if e.kind() == ErrorKind::UnexpectedEof {
        DataError::corrupt(path, format!("truncated in the {what}{stream}"))
    } else if gz {
        DataError::corrupt(path, format!("damaged gzip stream in the {what}: {e}"))
    } else {
        DataError::io(path, e)
    }
}

fn type_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "short",
        0x0C => "int",
        0x0D => "float",
        0x0E => "double",
        _ => return None,
    })
}

/// Parses from `r`; `gz_len` is the compressed size when `r` decompresses a gzip stream,
/// `raw_len` the size of a raw file.
fn parse_reader(
    r: &mut dyn Read,
    gz_len: Option<usize>,
    raw_len: usize,
    path: &Path,
) -> Result<IdxArray, DataError> {
    let gz = gz_len.is_some();
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut magic[got..]) {
            Ok(0) if got == 0 => return Err(DataError::corrupt(path, "the file is empty")),
            Ok(0) => {
                return Err(read_error(
                    path,
                    gz,
                    "magic number",
                    ErrorKind::UnexpectedEof.into(),
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(path, gz, "magic number", e)),
        }
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(DataError::corrupt(
            path,
            format!(
                "bad magic number 0x{:08X} (an IDX file starts with two zero bytes, a type code \
                 and the number of dims, e.g. 0x00000803 for MNIST images)",
                u32::from_be_bytes(magic)
            ),
        ));
    }
    match (magic[2], type_name(magic[2])) {
        (TYPE_U8, _) => {}
        (code, Some(name)) => {
            return Err(DataError::corrupt(
                path,
                format!(
                    "element type 0x{code:02X} ({name}) is not supported: only unsigned bytes \
                     (0x08) are read"
                ),
            ))
        }
        (code, None) => {
            return Err(DataError::corrupt(
                path,
                format!(
                    "bad magic number 0x{:08X}: unknown element type code 0x{code:02X}",
                    u32::from_be_bytes(magic)
                ),
            ))
        }
    }
    let ndim = magic[3] as usize;
    if ndim == 0 {
        return Err(DataError::corrupt(
            path,
            "bad magic number: the header declares 0 dims",
        ));
    }
    let mut header = vec![0u8; 4 * ndim];
    r.read_exact(&mut header)
        .map_err(|e| read_error(path, gz, "header (dims)", e))?;
    let dims: Vec<usize> = header
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let raw_left = raw_len.saturating_sub(4 + 4 * ndim);
    let total = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::corrupt(path, format!("dims {dims:?} overflow")))?;
    if let Some(n) = gz_len {
        if total / MAX_GZIP_RATIO > n {
            return Err(DataError::corrupt(
                path,
                format!(
                    "the header declares dims {dims:?} ({total} bytes), more than a gzip file \
                     of {n} bytes can hold"
                ),
            ));
        }
    }
    let mut data = Vec::new();
    let room = match gz_len {
        Some(n) => n.saturating_mul(MAX_GZIP_RATIO),
        None => raw_left,
    };
    if total > room && gz_len.is_none() {
        return Err(DataError::corrupt(
            path,
            format!(
                "truncated: the header declares dims {dims:?} ({total} bytes of data) but the \
                 file holds {raw_left}"
            ),
        ));
    }
    // Reserve what the header declares (bounded above) so the buffer is never regrown; a
    // reservation the allocator refuses is an error, not an abort.
    data.try_reserve_exact(total.min(room)).map_err(|_| {
        DataError::corrupt(
            path,
            format!("the header declares dims {dims:?} ({total} bytes), more than fits in memory"),
        )
    })?;
    (&mut *r)
        .take(total as u64)
        .read_to_end(&mut data)
        .map_err(|e| read_error(path, gz, "data", e))?;
    if data.len() < total {
        return Err(DataError::corrupt(
            path,
            format!(
                "truncated: the header declares dims {dims:?} ({total} bytes of data) but the \
                 file holds {}",
                data.len()
            ),
        ));
    }
    // Reading to the end also makes the gzip decoder check its CRC and length trailer.
    let mut rest = Vec::new();
    r.read_to_end(&mut rest)
        .map_err(|e| read_error(path, gz, "end of the file", e))?;
    if !rest.is_empty() {
        return Err(DataError::corrupt(
            path,
            format!(
                "{} unexpected bytes after the {total} bytes of data that the header (dims \
                 {dims:?}) declares",
                rest.len()
            ),
        ));
    }
    Ok(IdxArray { dims, data })
}
