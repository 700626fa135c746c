//! The on-disk cache of compiled kernel modules, so that a second process compiles nothing.
//!
//! An entry is keyed by everything that determines the CUBIN: the module's source text, the
//! target architecture, the NVRTC version and the compile options. Its file name carries a
//! 128-bit hash of that key; the file repeats the full key and a checksum of the payload, so a
//! hash collision, a truncated write or a corrupt file reads as a miss (and is recompiled and
//! overwritten), never as a wrong kernel or a panic. Writes go to a temporary file in the same
//! directory and are renamed into place, so concurrent processes never see half an entry.
//!
//! The directory is `$EMBER_CUDA_CACHE` when set (`off` disables the cache), else
//! `$XDG_CACHE_HOME/ember/cuda`, else `~/.cache/ember/cuda`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const MAGIC: &[u8; 11] = b"EMBERCUBIN\x01";

/// FNV-1a, 128 bits: a stable hash (std's hashers may change between Rust releases).
pub fn fnv128(parts: &[&[u8]]) -> u128 {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for p in parts {
        for &b in *p {
            h ^= b as u128;
            h = h.wrapping_mul(0x0000000001000000000000000000013B);
        }
        // Separate the parts so that ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    h
}

/// What a compiled module depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheKey {
    /// The module's name (for humans reading the directory).
    pub name: String,
    /// Compute capability as `major * 10 + minor` (`90` for sm_90).
    pub arch: u32,
    /// NVRTC `(major, minor)`.
    pub nvrtc: (i32, i32),
    /// The compile options, joined.
    pub options: String,
    /// [`fnv128`] of the source text.
    pub source_hash: u128,
}

impl CacheKey {
    /// The key of `source` compiled with `options` for `arch` by NVRTC `nvrtc`.
    pub fn new(name: &str, source: &str, arch: u32, nvrtc: (i32, i32), options: &[String]) -> Self {
        CacheKey {
            name: name.to_string(),
            arch,
            nvrtc,
            options: options.join(" "),
            source_hash: fnv128(&[source.as_bytes()]),
        }
    }

    /// The full key as text (stored in the entry and hashed into its file name).
    pub fn describe(&self) -> String {
        format!(
            "{} sm_{} nvrtc {}.{} [{}] {:032x}",
            self.name, self.arch, self.nvrtc.0, self.nvrtc.1, self.options, self.source_hash
        )
    }

    /// The entry's file name.
    pub fn file_name(&self) -> String {
        let stem = self.name.trim_end_matches(".cu");
        format!(
            "{stem}-sm{}-{:032x}.cubin",
            self.arch,
            fnv128(&[self.describe().as_bytes()])
        )
    }
}

/// The cache directory from the environment (see the module docs), `None` when disabled or
/// when no home directory is known.
pub fn cache_dir() -> Option<PathBuf> {
    cache_dir_from(|k| std::env::var_os(k))
}

/// [`cache_dir`] with the environment read through `var`.
pub fn cache_dir_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let env = |k: &str| var(k).filter(|v| !v.is_empty());
    if let Some(d) = env("EMBER_CUDA_CACHE") {
        return (d != "off").then(|| PathBuf::from(d));
    }
    if let Some(x) = env("XDG_CACHE_HOME") {
        return Some(PathBuf::from(x).join("ember").join("cuda"));
    }
    env("HOME").map(|h| PathBuf::from(h).join(".cache").join("ember").join("cuda"))
}

/// An entry's bytes: magic, key, payload length and checksum, payload.
pub fn encode(key: &CacheKey, payload: &[u8]) -> Vec<u8> {
    let k = key.describe();
    let mut out = Vec::with_capacity(payload.len() + k.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(k.len() as u32).to_le_bytes());
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv128(&[payload]).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of an entry written by [`encode`] for the same key; `None` when the bytes are
/// not such an entry (another key, truncated, corrupt).
pub fn decode(key: &CacheKey, bytes: &[u8]) -> Option<Vec<u8>> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (klen, rest) = rest.split_at_checked(4)?;
    let klen = u32::from_le_bytes(klen.try_into().ok()?) as usize;
    let (k, rest) = rest.split_at_checked(klen)?;
    if k != key.describe().as_bytes() {
        return None;
    }
    let (plen, rest) = rest.split_at_checked(8)?;
    let plen = u64::from_le_bytes(plen.try_into().ok()?) as usize;
    let (sum, payload) = rest.split_at_checked(16)?;
    let sum = u128::from_le_bytes(sum.try_into().ok()?);
    (payload.len() == plen && fnv128(&[payload]) == sum).then(|| payload.to_vec())
}

/// Where a module's binary came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Read from the disk cache.
    Disk,
    /// Compiled in this call (and written to the cache when there is one).
    Compiled,
}

/// Writes `bytes` to `path` atomically: a unique temporary file in the same directory, renamed
/// over the target.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The binary for `key`: from `dir` when a valid entry is there, else from `compile` (then
/// stored in `dir`; a cache that cannot be written is skipped, the binary is still returned).
pub fn load_or_compile<E>(
    dir: Option<&Path>,
    key: &CacheKey,
    compile: impl FnOnce() -> Result<Vec<u8>, E>,
) -> Result<(Vec<u8>, Origin), E> {
    let path = dir.map(|d| d.join(key.file_name()));
    if let Some(p) = &path {
        if let Some(bin) = fs::read(p).ok().and_then(|b| decode(key, &b)) {
            return Ok((bin, Origin::Disk));
        }
    }
    let bin = compile()?;
    if let Some(p) = &path {
        // A read-only or full disk only costs the next process a compile.
        let _ = atomic_write(p, &encode(key, &bin));
    }
    Ok((bin, Origin::Compiled))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(src: &str) -> CacheKey {
        CacheKey::new(
            "elementwise_f32.cu",
            src,
            90,
            (13, 2),
            &["--fmad=false".into()],
        )
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ember-cuda-cache-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn keys_differ_by_everything_that_matters() {
        let base = key("a");
        let names: Vec<String> = [
            base.clone(),
            key("b"),
            CacheKey {
                arch: 80,
                ..base.clone()
            },
            CacheKey {
                nvrtc: (13, 0),
                ..base.clone()
            },
            CacheKey {
                options: "--fmad=true".into(),
                ..base.clone()
            },
        ]
        .iter()
        .map(|k| k.file_name())
        .collect();
        for i in 0..names.len() {
            for j in i + 1..names.len() {
                assert_ne!(names[i], names[j]);
            }
        }
        assert!(names[0].starts_with("elementwise_f32-sm90-"));
        assert_eq!(key("a").file_name(), names[0], "stable");
        assert_ne!(fnv128(&[b"ab", b"c"]), fnv128(&[b"a", b"bc"]));
    }

    #[test]
    fn round_trip_and_corruption() {
        let k = key("src");
        let e = encode(&k, b"cubin bytes");
        assert_eq!(decode(&k, &e).as_deref(), Some(&b"cubin bytes"[..]));
        assert_eq!(decode(&key("other"), &e), None, "another key");
        assert_eq!(decode(&k, &e[..e.len() - 1]), None, "truncated");
        let mut bad = e.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(decode(&k, &bad), None, "corrupt payload");
        assert_eq!(decode(&k, b""), None);
        assert_eq!(decode(&k, b"EMBERCUBIN\x01\xff\xff\xff\xff"), None);
    }

    #[test]
    fn second_lookup_compiles_nothing_and_corrupt_entries_are_recompiled() {
        let dir = tmpdir("hit");
        let k = key("src");
        let mut compiles = 0;
        let get = |compiles: &mut i32| {
            load_or_compile::<()>(Some(&dir), &k, || {
                *compiles += 1;
                Ok(b"binary".to_vec())
            })
            .unwrap()
        };
        assert_eq!(get(&mut compiles), (b"binary".to_vec(), Origin::Compiled));
        assert_eq!(get(&mut compiles), (b"binary".to_vec(), Origin::Disk));
        assert_eq!(compiles, 1);
        // Corrupt the entry: it is recompiled and rewritten.
        let path = dir.join(k.file_name());
        fs::write(&path, b"garbage").unwrap();
        assert_eq!(get(&mut compiles).1, Origin::Compiled);
        assert_eq!(get(&mut compiles).1, Origin::Disk);
        assert_eq!(compiles, 2);
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_cache_still_returns_the_binary() {
        let dir = tmpdir("ro");
        fs::write(&dir, b"a file, not a directory").unwrap();
        let (bin, origin) =
            load_or_compile::<()>(Some(&dir), &key("x"), || Ok(vec![1, 2, 3])).unwrap();
        assert_eq!((bin, origin), (vec![1, 2, 3], Origin::Compiled));
        fs::remove_file(&dir).unwrap();
        // Compile errors pass through.
        assert_eq!(
            load_or_compile::<&str>(None, &key("x"), || Err("bad")),
            Err("bad")
        );
    }

    #[test]
    fn directory_from_environment() {
        fn env<'a>(
            pairs: &'a [(&'a str, &'a str)],
        ) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|p| p.0 == k)
                    .map(|p| std::ffi::OsString::from(p.1))
            }
        }
        let home = [("HOME", "/h")];
        assert_eq!(
            cache_dir_from(env(&home)),
            Some(PathBuf::from("/h/.cache/ember/cuda"))
        );
        let xdg = [("HOME", "/h"), ("XDG_CACHE_HOME", "/x")];
        assert_eq!(
            cache_dir_from(env(&xdg)),
            Some(PathBuf::from("/x/ember/cuda"))
        );
        let own = [("HOME", "/h"), ("EMBER_CUDA_CACHE", "/c")];
        assert_eq!(cache_dir_from(env(&own)), Some(PathBuf::from("/c")));
        let off = [("HOME", "/h"), ("EMBER_CUDA_CACHE", "off")];
        assert_eq!(cache_dir_from(env(&off)), None);
        let empty = [("HOME", "/h"), ("EMBER_CUDA_CACHE", "")];
        assert_eq!(
            cache_dir_from(env(&empty)),
            Some(PathBuf::from("/h/.cache/ember/cuda"))
        );
        assert_eq!(cache_dir_from(env(&[])), None);
    }
}
