//! The on-disk model store: `lookups/__smbdensity_<name>.model` files written atomically.
//!
//! File layout (all integers little-endian):
//!
//! ```text
//! magic "SMBDMODL" | u32 format version | u32 header length | u64 payload length
//! | u32 CRC-32 of header | u32 CRC-32 of payload | header (bincode) | payload (bincode)
//! ```
//!
//! A save writes a temporary file in the same directory, fsyncs it, renames it over the old model and
//! fsyncs the directory, so readers see the old model or the new one, never a torn one. bincode stays
//! behind this module: nothing else knows the encoding.
//!
//! Models saved by Splunk MLTK in the same directory (`__mlspl_<name>.mlmodel`, see [`super::mltk`]) are
//! read too: `load` and `load_header` fall back to them when no native model of that name exists (a
//! native model shadows an MLTK one of the same name), and `list` includes them. MLTK files are never
//! written or deleted here.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{FlatDensity, Model, ModelBody, ModelHeader};
use crate::spl::{ModelName, is_valid_model_name};

pub const MAGIC: &[u8; 8] = b"SMBDMODL";
/// Version 2 stores groups compactly (see [`compact`]); version 1 files are still read.
pub const FORMAT_VERSION: u32 = 2;
const PREAMBLE_LEN: usize = 32;
const FILE_PREFIX: &str = "__smbdensity_";
const FILE_SUFFIX: &str = ".model";
const TEMP_PREFIX: &str = ".__smbdensity_tmp_";
/// MLTK's model files: `__mlspl_<name>.mlmodel` (read only).
const MLTK_PREFIX: &str = "__mlspl_";
const MLTK_SUFFIX: &str = ".mlmodel";
/// Temporary files older than this are left over from a killed fit.
const STALE_TEMP_AGE: Duration = Duration::from_secs(6 * 3600);
/// bincode refuses to allocate more than this for a decoded model, whatever a length field claims.
const DECODE_LIMIT: usize = 1 << 32;

/// A model-store failure. Each names the model or file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("model \"{name}\" does not exist (looked for {file} in {dir})")]
    NotFound {
        name: String,
        file: String,
        dir: String,
    },
    #[error("model file {path} is unusable: {problem}")]
    Invalid { path: String, problem: String },
    #[error("model file {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(
        "Model exceeds size limit ({size} > {limit}). Raise max_model_size_mb in smbdensity.conf or reduce the number of groups."
    )]
    TooLarge { size: u64, limit: u64 },
    #[error(
        "no models directory: set SMBDENSITY_MODEL_DIR, pass --models, or run the binary from the app's bin folder"
    )]
    NoDirectory,
}

fn io_err(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn invalid(path: &Path, problem: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// Where a model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// `__smbdensity_<name>.model`, written by our `fit`.
    Native,
    /// `__mlspl_<name>.mlmodel`, written by Splunk MLTK (read only).
    Mltk,
}

/// A model as listed by `listmodels`.
#[derive(Debug)]
pub struct Listed {
    pub name: String,
    pub format: ModelFormat,
    pub path: PathBuf,
    pub size: u64,
    pub modified: Option<SystemTime>,
    /// The header, or why it could not be read.
    pub header: Result<ModelHeader, StoreError>,
}

/// The models of one app's `lookups/` directory.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

impl ModelStore {
    pub fn new(dir: impl Into<PathBuf>) -> ModelStore {
        ModelStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of a model. Names are validated at parse time; this checks again, because a path is
    /// about to be built from it.
    pub fn path_for(&self, name: &ModelName) -> Result<PathBuf, StoreError> {
        if !is_valid_model_name(&name.name) {
            return Err(invalid(
                &self.dir,
                format!("invalid model name {:?}", name.name),
            ));
        }
        Ok(self
            .dir
            .join(format!("{FILE_PREFIX}{}{FILE_SUFFIX}", name.name)))
    }

    /// Encodes and atomically writes `model`, refusing files above `max_bytes`.
    pub fn save(
        &self,
        name: &ModelName,
        model: &Model,
        max_bytes: u64,
    ) -> Result<PathBuf, StoreError> {
        let path = self.path_for(name)?;
        let bytes = encode(model).map_err(|e| invalid(&path, format!("cannot encode: {e}")))?;
        if bytes.len() as u64 > max_bytes {
            return Err(StoreError::TooLarge {
                size: bytes.len() as u64,
                limit: max_bytes,
            });
        }
        fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        self.remove_stale_temps();
        let mut tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(|e| io_err(&self.dir, e))?;
        tmp.write_all(&bytes).map_err(|e| io_err(tmp.path(), e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| io_err(tmp.path(), e))?;
        // Read permission for the group, as Splunk's own lookup files have.
        let _ = fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        );
        tmp.persist(&path).map_err(|e| io_err(&path, e.error))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err(&self.dir, e))?;
        Ok(path)
    }

    /// The MLTK file of a model, `__mlspl_<name>.mlmodel`.
    pub fn mltk_path_for(&self, name: &ModelName) -> Result<PathBuf, StoreError> {
        self.path_for(name)?;
        Ok(self
            .dir
            .join(format!("{MLTK_PREFIX}{}{MLTK_SUFFIX}", name.name)))
    }

    /// Reads a whole model: the native file, else MLTK's `.mlmodel`.
    pub fn load(&self, name: &ModelName) -> Result<Model, StoreError> {
        let path = self.path_for(name)?;
        match self.read_file(name, &path) {
            Ok(bytes) => decode(&bytes).map_err(|p| invalid(&path, p)),
            Err(StoreError::NotFound { .. }) => self.load_mltk(name),
            Err(e) => Err(e),
        }
    }

    /// Reads a DensityFunction model for scoring: its header and its groups laid out flat. A native
    /// model is decoded straight into the flat layout, without an allocation per group.
    pub fn load_for_scoring(
        &self,
        name: &ModelName,
    ) -> Result<(ModelHeader, FlatDensity), StoreError> {
        let path = self.path_for(name)?;
        let model = match self.map_file(name, &path) {
            Ok(bytes) => match decode_for_scoring(&bytes).map_err(|p| invalid(&path, p))? {
                Ok(flat) => return Ok(flat),
                Err(model) => model,
            },
            Err(StoreError::NotFound { .. }) => self.load_mltk(name)?,
            Err(e) => return Err(e),
        };
        let ModelBody::Density(body) = model.body else {
            return Err(invalid(
                &path,
                "is a per-entity model, not a DensityFunction model",
            ));
        };
        Ok((model.header, body.into()))
    }

    /// Reads and converts an MLTK model file.
    fn load_mltk(&self, name: &ModelName) -> Result<Model, StoreError> {
        let path = self.mltk_path_for(name)?;
        let (bytes, created) = self.read_mltk(name, &path)?;
        super::mltk::read_model(&bytes, created).map_err(|p| invalid(&path, p))
    }

    fn read_mltk(&self, name: &ModelName, path: &Path) -> Result<(Vec<u8>, u64), StoreError> {
        // MLTK's files have no preamble; they are bounded by MLTK's own CSV field limit (2^30).
        let f = self.open(name, path)?;
        let mut bytes = Vec::new();
        f.take(1 << 30)
            .read_to_end(&mut bytes)
            .map_err(|e| io_err(path, e))?;
        let created = fs::metadata(path)
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        Ok((bytes, created))
    }

    /// Reads only a model's header (cheap for native models, for getinfo). An MLTK model is converted
    /// whole, so a model this build cannot apply fails here, before any data moves.
    pub fn load_header(&self, name: &ModelName) -> Result<ModelHeader, StoreError> {
        match self.load_native_header(name) {
            Err(StoreError::NotFound { .. }) => self.load_mltk(name).map(|m| m.header),
            other => other,
        }
    }

    fn load_native_header(&self, name: &ModelName) -> Result<ModelHeader, StoreError> {
        let path = self.path_for(name)?;
        let mut f = self.open(name, &path)?;
        let len = f.metadata().map_err(|e| io_err(&path, e))?.len();
        let mut pre = [0u8; PREAMBLE_LEN];
        f.read_exact(&mut pre)
            .map_err(|_| invalid(&path, "truncated (shorter than its preamble)"))?;
        let p = Preamble::parse(&pre).map_err(|e| invalid(&path, e))?;
        p.check_len(len).map_err(|e| invalid(&path, e))?;
        let mut header = vec![0u8; p.header_len.min(1 << 24) as usize];
        f.read_exact(&mut header)
            .map_err(|_| invalid(&path, "truncated inside its header"))?;
        p.check_header(&header).map_err(|e| invalid(&path, e))?;
        decode_part(&header).map_err(|e| invalid(&path, format!("header does not decode: {e}")))
    }

    /// Deletes a model. Only files named like models inside the directory are ever removed, and never
    /// MLTK's: those belong to MLTK's own `deletemodel`.
    pub fn delete(&self, name: &ModelName) -> Result<PathBuf, StoreError> {
        let path = self.path_for(name)?;
        match fs::symlink_metadata(&path) {
            Ok(_) => fs::remove_file(&path).map_err(|e| io_err(&path, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mltk = self.mltk_path_for(name)?;
                if fs::symlink_metadata(&mltk).is_ok() {
                    return Err(invalid(
                        &mltk,
                        "it is a model saved by Splunk MLTK; smbdensity never deletes MLTK's files (use MLTK's `| deletemodel`)",
                    ));
                }
                return Err(self.not_found(name));
            }
            Err(e) => return Err(io_err(&path, e)),
        }
        let _ = File::open(&self.dir).and_then(|d| d.sync_all());
        Ok(path)
    }

    /// Lists the models in the directory, native and MLTK, in name order (a native model before an MLTK
    /// one of the same name, which it shadows). Unreadable models are listed with their error.
    pub fn list(&self) -> Result<Vec<Listed>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let named = |prefix: &str, suffix: &str| {
                file_name
                    .strip_prefix(prefix)
                    .and_then(|f| f.strip_suffix(suffix))
                    .filter(|n| is_valid_model_name(n))
                    .map(String::from)
            };
            let (name, format) = match (
                named(FILE_PREFIX, FILE_SUFFIX),
                named(MLTK_PREFIX, MLTK_SUFFIX),
            ) {
                (Some(n), _) => (n, ModelFormat::Native),
                (None, Some(n)) => (n, ModelFormat::Mltk),
                (None, None) => continue,
            };
            let name = name.as_str();
            let meta = entry.metadata().ok();
            let model = ModelName {
                name: name.to_string(),
                namespace: crate::spl::Namespace::App,
            };
            let header = match format {
                ModelFormat::Native => self.load_native_header(&model),
                // Header only: a model whose groups this build cannot score is still listed.
                ModelFormat::Mltk => {
                    self.read_mltk(&model, &entry.path())
                        .and_then(|(bytes, created)| {
                            super::mltk::read(&bytes, created)
                                .map(|m| m.header)
                                .map_err(|p| invalid(&entry.path(), p))
                        })
                }
            };
            out.push(Listed {
                name: name.to_string(),
                format,
                path: entry.path(),
                size: meta.as_ref().map(|m| m.len()).unwrap_or(0),
                modified: meta.and_then(|m| m.modified().ok()),
                header,
            });
        }
        out.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| (a.format == ModelFormat::Mltk).cmp(&(b.format == ModelFormat::Mltk)))
        });
        Ok(out)
    }

    fn not_found(&self, name: &ModelName) -> StoreError {
        StoreError::NotFound {
            name: name.name.clone(),
            file: format!(
                "{FILE_PREFIX}{n}{FILE_SUFFIX} or {MLTK_PREFIX}{n}{MLTK_SUFFIX}",
                n = name.name
            ),
            dir: self.dir.display().to_string(),
        }
    }

    /// Opens a model file without following a symlink out of the directory. `O_NONBLOCK` keeps a FIFO
    /// planted at the model path from blocking the open forever; anything but a regular file is refused.
    fn open(&self, name: &ModelName, path: &Path) -> Result<File, StoreError> {
        let f = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(self.not_found(name)),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(invalid(path, "is a symbolic link; refusing to follow it"));
            }
            Err(e) => return Err(io_err(path, e)),
        };
        let meta = f.metadata().map_err(|e| io_err(path, e))?;
        if !meta.is_file() {
            return Err(invalid(path, "is not a regular file"));
        }
        Ok(f)
    }

    /// Reads a model file whole, after checking its preamble against its size, so that a foreign or
    /// lying file is refused before its size is allocated.
    fn read_file(&self, name: &ModelName, path: &Path) -> Result<Vec<u8>, StoreError> {
        let mut f = self.open(name, path)?;
        let len = f.metadata().map_err(|e| io_err(path, e))?.len();
        let mut pre = [0u8; PREAMBLE_LEN];
        if len < PREAMBLE_LEN as u64 {
            return Err(invalid(path, "truncated (shorter than its preamble)"));
        }
        f.read_exact(&mut pre).map_err(|e| io_err(path, e))?;
        let p = Preamble::parse(&pre).map_err(|e| invalid(path, e))?;
        p.check_len(len).map_err(|e| invalid(path, e))?;
        let mut bytes = Vec::with_capacity(len as usize);
        bytes.extend_from_slice(&pre);
        f.read_to_end(&mut bytes).map_err(|e| io_err(path, e))?;
        Ok(bytes)
    }

    /// Maps a model file read-only, after the same checks as [`ModelStore::read_file`]: a large
    /// model's pages come straight from the page cache, with no copy into zeroed memory. Saves
    /// replace a model by renaming a new file over it, never by rewriting it in place, so the mapped
    /// file does not change under the reader.
    fn map_file(&self, name: &ModelName, path: &Path) -> Result<Mapped, StoreError> {
        let mut f = self.open(name, path)?;
        let len = f.metadata().map_err(|e| io_err(path, e))?.len();
        let mut pre = [0u8; PREAMBLE_LEN];
        if len < PREAMBLE_LEN as u64 {
            return Err(invalid(path, "truncated (shorter than its preamble)"));
        }
        f.read_exact(&mut pre).map_err(|e| io_err(path, e))?;
        let p = Preamble::parse(&pre).map_err(|e| invalid(path, e))?;
        p.check_len(len).map_err(|e| invalid(path, e))?;
        Mapped::new(&f, len as usize).or_else(|_| {
            // Some filesystems cannot map files: read it instead.
            let mut bytes = Vec::with_capacity(len as usize);
            bytes.extend_from_slice(&pre);
            f.read_to_end(&mut bytes).map_err(|e| io_err(path, e))?;
            Ok(Mapped::Owned(bytes))
        })
    }

    /// Removes temporary files that a killed fit left behind. Recent ones may belong to a fit in
    /// progress and are kept.
    fn remove_stale_temps(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for e in entries.flatten() {
            let is_temp = e
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(TEMP_PREFIX));
            let old = e
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .and_then(|m| m.modified().ok())
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP_AGE);
            if is_temp && old {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// A model file's bytes: mapped read-only, or read into memory.
enum Mapped {
    Map { ptr: *mut libc::c_void, len: usize },
    Owned(Vec<u8>),
}

impl Mapped {
    fn new(f: &File, len: usize) -> io::Result<Mapped> {
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh private read-only mapping of `len` bytes of an open regular file; it is
        // unmapped once, in `drop`.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                f.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapped::Map { ptr, len })
    }
}

impl std::ops::Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            // SAFETY: the mapping is live and `len` bytes long until `drop`.
            Mapped::Map { ptr, len } => unsafe {
                std::slice::from_raw_parts(*ptr as *const u8, *len)
            },
            Mapped::Owned(v) => v,
        }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if let Mapped::Map { ptr, len } = *self {
            // SAFETY: the mapping made in `new`, unmapped only here.
            unsafe { libc::munmap(ptr, len) };
        }
    }
}

struct Preamble {
    version: u32,
    header_len: u64,
    payload_len: u64,
    header_crc: u32,
    payload_crc: u32,
}

impl Preamble {
    fn parse(b: &[u8; PREAMBLE_LEN]) -> Result<Preamble, String> {
        if &b[..8] != MAGIC {
            return Err("not an smbdensity model (bad magic bytes)".into());
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let p = Preamble {
            version: u32_at(8),
            header_len: u32_at(12) as u64,
            payload_len: u64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
            header_crc: u32_at(24),
            payload_crc: u32_at(28),
        };
        if p.version != FORMAT_VERSION && p.version != 1 {
            return Err(format!(
                "format version {} is not supported by this smbdensity (it reads version {FORMAT_VERSION}); refit the model or upgrade the app",
                p.version
            ));
        }
        Ok(p)
    }

    /// Checks a file length against the lengths the preamble declares.
    fn check_len(&self, len: u64) -> Result<(), String> {
        let total = (PREAMBLE_LEN as u64 + self.header_len)
            .checked_add(self.payload_len)
            .ok_or("impossible payload length")?;
        if len < total {
            return Err(format!("truncated: {len} bytes, expected {total}"));
        }
        if len > total {
            return Err(format!(
                "{} unexpected bytes after the payload",
                len - total
            ));
        }
        if total > DECODE_LIMIT as u64 {
            return Err(format!(
                "declares {total} bytes, more than any model this version reads"
            ));
        }
        Ok(())
    }

    fn check_header(&self, header: &[u8]) -> Result<(), String> {
        if header.len() as u64 != self.header_len || crc32fast::hash(header) != self.header_crc {
            return Err("header checksum mismatch (the file is corrupted)".into());
        }
        Ok(())
    }
}

fn encode(model: &Model) -> Result<Vec<u8>, bincode::error::EncodeError> {
    let header = bincode::serde::encode_to_vec(&model.header, config())?;
    let payload = bincode::serde::encode_to_vec(compact::BodyOut(&model.body), config())?;
    let mut out = Vec::with_capacity(PREAMBLE_LEN + header.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&header).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes one bincode part. bincode allocates a string's declared length before reading it, up to the
/// configured limit, so the limit is picked from a ladder just above the input's own size: a corrupted
/// length can then never allocate more than 16 times the part's size (found by the `model_decode`
/// fuzzer: a 179-byte input allocated 1.8 GB). Strings are the only claims, and they are part of the
/// input, so a well-formed part always fits its limit.
fn decode_part<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    fn with<T: serde::de::DeserializeOwned, const L: usize>(
        bytes: &[u8],
    ) -> Result<(T, usize), bincode::error::DecodeError> {
        bincode::serde::decode_from_slice(bytes, bincode::config::standard().with_limit::<L>())
    }
    let (v, used) = match bytes.len() {
        n if n <= 1 << 16 => with::<T, { 1 << 16 }>(bytes),
        n if n <= 1 << 20 => with::<T, { 1 << 20 }>(bytes),
        n if n <= 1 << 24 => with::<T, { 1 << 24 }>(bytes),
        n if n <= 1 << 28 => with::<T, { 1 << 28 }>(bytes),
        _ => with::<T, DECODE_LIMIT>(bytes),
    }
    .map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - used));
    }
    Ok(v)
}

/// Checks a model file's magic, version, lengths and checksums, and splits it into its preamble,
/// header and payload.
fn split(bytes: &[u8]) -> Result<(Preamble, &[u8], &[u8]), String> {
    let pre: &[u8; PREAMBLE_LEN] = bytes
        .get(..PREAMBLE_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "truncated (shorter than its preamble)".to_string())?;
    let p = Preamble::parse(pre)?;
    p.check_len(bytes.len() as u64)?;
    let header_end = PREAMBLE_LEN as u64 + p.header_len;
    let header = &bytes[PREAMBLE_LEN..header_end as usize];
    let payload = &bytes[header_end as usize..];
    p.check_header(header)?;
    if crc32fast::hash(payload) != p.payload_crc {
        return Err("payload checksum mismatch (the file is corrupted)".into());
    }
    Ok((p, header, payload))
}

/// Decodes a whole model file, checking magic, version, lengths and checksums first.
pub fn decode(bytes: &[u8]) -> Result<Model, String> {
    let (p, header, payload) = split(bytes)?;
    let header: ModelHeader =
        decode_part(header).map_err(|e| format!("header does not decode: {e}"))?;
    let body: ModelBody = if p.version == 1 {
        decode_part(payload)
    } else {
        decode_part::<compact::BodyIn>(payload).map(compact::BodyIn::into_body)
    }
    .map_err(|e| format!("payload does not decode: {e}"))?;
    Ok(Model { header, body })
}

/// Decodes a model file for scoring: the flat layout of a version-2 file, or (for older versions) the
/// whole model.
fn decode_for_scoring(bytes: &[u8]) -> Result<Result<(ModelHeader, FlatDensity), Model>, String> {
    let (p, header, payload) = split(bytes)?;
    if p.version == 1 {
        return decode(bytes).map(Err);
    }
    let header: ModelHeader =
        decode_part(header).map_err(|e| format!("header does not decode: {e}"))?;
    // The fast reader handles every well-formed payload; on anything it does not accept, serde decodes
    // the payload again, so a damaged file gets the same error as before.
    if let Some(flat) = compact::read_flat(payload) {
        return Ok(Ok((header, flat)));
    }
    let (body, used) =
        bincode::serde::borrow_decode_from_slice::<compact::FlatIn, _>(payload, config())
            .map_err(|e| format!("payload does not decode: {e}"))?;
    if used != payload.len() {
        return Err(format!(
            "payload does not decode: {} trailing bytes",
            payload.len() - used
        ));
    }
    Ok(Ok((header, body.into_flat())))
}

/// Encodes a model exactly as [`ModelStore::save`] writes it (for tests and fuzzing).
pub fn encode_model(model: &Model) -> Vec<u8> {
    encode(model).expect("in-memory models always encode")
}

/// The version-2 payload: per group, the boundaries of Normal and Exponential groups are left out (they
/// are cheap to recompute, exactly, from the distribution when first needed) and a NaN `distance` is
/// one byte. Groups of other distributions keep their precomputed boundaries.
mod compact {
    use serde::ser::{SerializeSeq, Serializer};
    use serde::{Deserialize, Serialize};

    use crate::density::{BoundaryRange, Distribution, GroupStats};
    use crate::model::{DensityBody, FlatDensity, Group, ModelBody};

    fn recomputable(d: &Distribution) -> bool {
        matches!(d, Distribution::Normal(_) | Distribution::Exponential(_))
    }

    pub struct BodyOut<'a>(pub &'a ModelBody);

    #[derive(Serialize)]
    enum BodyRef<'a> {
        Density(DensityRef<'a>),
        PerEntity(&'a crate::hostmodel::PerEntityBody),
    }

    #[derive(Serialize)]
    struct DensityRef<'a> {
        integral_feature: bool,
        groups: GroupsRef<'a>,
    }

    struct GroupsRef<'a>(&'a [Group]);

    #[derive(Serialize)]
    struct GroupRef<'a> {
        key: &'a Vec<u8>,
        stats: &'a GroupStats,
        dist: &'a Distribution,
        distance: Option<f64>,
        sample: &'a [f64],
        boundaries: &'a [Vec<BoundaryRange>],
    }

    impl Serialize for BodyOut<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self.0 {
                ModelBody::Density(b) => BodyRef::Density(DensityRef {
                    integral_feature: b.integral_feature,
                    groups: GroupsRef(&b.groups),
                })
                .serialize(s),
                ModelBody::PerEntity(b) => BodyRef::PerEntity(b).serialize(s),
            }
        }
    }

    impl Serialize for GroupsRef<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(self.0.len()))?;
            for g in self.0 {
                seq.serialize_element(&GroupRef {
                    key: &g.key,
                    stats: &g.stats,
                    dist: &g.dist,
                    distance: (!g.distance.is_nan()).then_some(g.distance),
                    sample: &g.sample,
                    boundaries: if recomputable(&g.dist) {
                        &[]
                    } else {
                        &g.boundaries
                    },
                })?;
            }
            seq.end()
        }
    }

    #[derive(Deserialize)]
    pub enum BodyIn {
        Density(DensityIn),
        PerEntity(crate::hostmodel::PerEntityBody),
    }

    #[derive(Deserialize)]
    pub struct DensityIn {
        integral_feature: bool,
        groups: Vec<GroupIn>,
    }

    #[derive(Deserialize)]
    struct GroupIn {
        key: Vec<u8>,
        stats: GroupStats,
        dist: Distribution,
        distance: Option<f64>,
        sample: Vec<f64>,
        boundaries: Vec<Vec<BoundaryRange>>,
    }

    /// The version-2 payload decoded for scoring: keys borrowed from the file and copied into one
    /// buffer, each group's parts pushed straight into [`FlatDensity`]'s arrays.
    #[derive(Deserialize)]
    pub enum FlatIn {
        Density(FlatDensityIn),
    }

    #[derive(Deserialize)]
    pub struct FlatDensityIn {
        integral_feature: bool,
        groups: FlatGroups,
    }

    struct FlatGroups(FlatDensity);

    /// A group as the payload stores it, its key borrowed (bincode writes a `Vec<u8>` exactly as bytes).
    #[derive(Deserialize)]
    struct GroupView<'a> {
        key: &'a [u8],
        #[allow(dead_code)]
        stats: GroupStats,
        dist: Distribution,
        #[allow(dead_code)]
        distance: Option<f64>,
        #[allow(dead_code)]
        sample: Vec<f64>,
        boundaries: Vec<Vec<BoundaryRange>>,
    }

    impl<'de> Deserialize<'de> for FlatGroups {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = FlatGroups;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a sequence of groups")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<FlatGroups, A::Error> {
                    // The length comes from the file: cap what is reserved up front.
                    let n = seq.size_hint().unwrap_or(0).min(1 << 24);
                    let mut flat = FlatDensity::with_capacity(n);
                    flat.key_bytes.reserve(n * 16);
                    while let Some(g) = seq.next_element::<GroupView<'de>>()? {
                        flat.push(g.key, g.dist, g.boundaries);
                    }
                    Ok(FlatGroups(flat))
                }
            }
            d.deserialize_seq(V)
        }
    }

    /// A cursor over bincode's standard encoding (little-endian, variable-length integers).
    struct Cursor<'a> {
        b: &'a [u8],
        pos: usize,
    }

    impl<'a> Cursor<'a> {
        #[inline]
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
            self.pos += n;
            Some(s)
        }

        #[inline]
        fn byte(&mut self) -> Option<u8> {
            let c = *self.b.get(self.pos)?;
            self.pos += 1;
            Some(c)
        }

        #[inline]
        fn varint(&mut self) -> Option<u64> {
            match self.byte()? {
                c @ 0..=250 => Some(u64::from(c)),
                251 => Some(u64::from(u16::from_le_bytes(
                    self.take(2)?.try_into().ok()?,
                ))),
                252 => Some(u64::from(u32::from_le_bytes(
                    self.take(4)?.try_into().ok()?,
                ))),
                253 => Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?)),
                _ => None,
            }
        }

        #[inline]
        fn f64(&mut self) -> Option<f64> {
            Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
        }

        #[inline]
        fn bool(&mut self) -> Option<bool> {
            match self.byte()? {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            }
        }
    }

    /// Reads a version-2 payload for scoring without serde: Normal and Exponential groups without
    /// stored boundaries (what fit writes for them) are read field by field; any other group is
    /// handed to serde at its offset. `None` when the payload is not well formed.
    pub fn read_flat(payload: &[u8]) -> Option<FlatDensity> {
        let mut c = Cursor { b: payload, pos: 0 };
        if c.varint()? != 0 {
            return None; // FlatIn::Density
        }
        let integral_feature = c.bool()?;
        let n = c.varint()?;
        let mut flat = FlatDensity::with_capacity((n as usize).min(1 << 24));
        flat.key_bytes.reserve((n as usize).min(1 << 24) * 16);
        flat.integral_feature = integral_feature;
        for _ in 0..n {
            let start = c.pos;
            let key_len = usize::try_from(c.varint()?).ok()?;
            let key = c.take(key_len)?;
            // GroupStats: count (varint) and five f64s; scoring does not need them.
            c.varint()?;
            c.take(40)?;
            let tag = c.varint()?;
            let params = if tag <= 1 {
                Some((c.f64()?, c.f64()?))
            } else {
                None
            };
            let simple = params.is_some() && {
                // distance: Option<f64>
                match c.byte()? {
                    0 => {}
                    1 => {
                        c.take(8)?;
                    }
                    _ => return None,
                }
                let sample = usize::try_from(c.varint()?).ok()?;
                c.take(sample.checked_mul(8)?)?;
                c.varint()? == 0 // no stored boundaries
            };
            match (simple, params) {
                (true, Some((a, b))) if tag == 0 => flat.push_normal(key, a, b),
                (true, Some((a, b))) => flat.push_exponential(key, a, b),
                _ => {
                    let (g, used) = bincode::serde::borrow_decode_from_slice::<GroupView, _>(
                        &payload[start..],
                        super::config(),
                    )
                    .ok()?;
                    flat.push(g.key, g.dist, g.boundaries);
                    c.pos = start + used;
                }
            }
        }
        (c.pos == payload.len()).then_some(flat)
    }

    impl FlatIn {
        pub fn into_flat(self) -> FlatDensity {
            let FlatIn::Density(d) = self;
            let mut flat = d.groups.0;
            flat.integral_feature = d.integral_feature;
            flat
        }
    }

    impl BodyIn {
        /// The model body. Left-out boundaries stay empty: the scorer computes them from the
        /// distribution on first use.
        pub fn into_body(self) -> ModelBody {
            let d = match self {
                BodyIn::Density(d) => d,
                BodyIn::PerEntity(b) => return ModelBody::PerEntity(b),
            };
            ModelBody::Density(DensityBody {
                integral_feature: d.integral_feature,
                groups: d
                    .groups
                    .into_iter()
                    .map(|g| Group {
                        key: g.key,
                        stats: g.stats,
                        dist: g.dist,
                        distance: g.distance.unwrap_or(f64::NAN),
                        sample: g.sample,
                        boundaries: g.boundaries,
                    })
                    .collect(),
                key_canon: Vec::new(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::beta::Beta;
    use crate::density::exponential::Exponential;
    use crate::density::normal::Normal;
    use crate::density::{Area, BoundaryRange, Distribution, GroupStats};
    use crate::model::{DensityBody, Group};

    fn group(key: &[u8], dist: Distribution, distance: f64, sample: Vec<f64>) -> Group {
        let mut stats = GroupStats::default();
        for x in [1.0, 5.0, 300.0] {
            stats.push(x);
        }
        let boundaries = vec![vec![BoundaryRange {
            begin: 1.5,
            end: f64::INFINITY,
            area: Area::Rounded(0.01),
            end_integral: false,
            begin_integral: true,
        }]];
        Group {
            key: key.to_vec(),
            stats,
            dist,
            distance,
            sample,
            boundaries,
        }
    }

    /// The field-by-field reader and serde agree on every kind of group.
    #[test]
    fn fast_flat_reader_matches_serde() {
        let beta = Beta {
            alpha: 2.0,
            beta: 3.0,
            loc: 0.0,
            scale: 1.0,
            min: 0.0,
            max: 1.0,
            cardinality: 70_000,
        };
        let long_key = vec![b'k'; 300];
        let body = ModelBody::Density(DensityBody {
            integral_feature: true,
            groups: vec![
                group(
                    b"a",
                    Distribution::Normal(Normal {
                        mean: 1.0,
                        std: 2.0,
                    }),
                    f64::NAN,
                    vec![],
                ),
                group(b"b", Distribution::Beta(beta), 0.25, vec![0.1, 0.2]),
                group(
                    &long_key,
                    Distribution::Exponential(Exponential {
                        loc: 3.0,
                        scale: 0.5,
                    }),
                    0.5,
                    vec![1.0, 2.0, 3.0],
                ),
                group(
                    b"",
                    Distribution::Normal(Normal {
                        mean: -1.0,
                        std: 1e-6,
                    }),
                    f64::NAN,
                    vec![],
                ),
            ],
            key_canon: Vec::new(),
        });
        let payload = bincode::serde::encode_to_vec(compact::BodyOut(&body), config()).unwrap();
        let (slow, used) =
            bincode::serde::borrow_decode_from_slice::<compact::FlatIn, _>(&payload, config())
                .unwrap();
        assert_eq!(used, payload.len());
        let slow = slow.into_flat();
        let fast = compact::read_flat(&payload).expect("well formed");
        assert_eq!(fast, slow);
        assert_eq!(fast.len(), 4);
        assert_eq!(fast.key(2), &long_key[..]);
        assert!(!fast.boundaries(1).is_empty());
        for n in 0..payload.len() {
            assert!(compact::read_flat(&payload[..n]).is_none(), "cut at {n}");
        }
    }
}
