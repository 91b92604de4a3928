//! The on-disk model store: `lookups/__smbdensity_<name>.model` files written atomically.
//!
//! File layout (all integers little-endian):
//!
//! ```text
//! magic "SMBDMODL" | u32 format version | u32 header length | u64 payload length
//! | u32 CRC-32 of header | u32 CRC-32 of payload (version 3: of its section table) | header (bincode)
//! | payload
//! ```
//!
//! The version-3 payload is a section table and four sections, each with its own CRC-32:
//!
//! ```text
//! u8 layout | u64 groups | u64 flags (bit 0: integral feature) | u64 hash seed | u64 record size
//! | u64 index slots | u64 longest probe | 4 x (u64 length, u32 CRC-32)
//! | per-group data | records | index | other groups
//! ```
//!
//! Layout 0 (DensityFunction): records and index are a [`super::table`] (keys and Normal/Exponential
//! parameters, and a hash index over the keys), read in place by apply; other groups are bincode
//! `(Distribution, boundaries)` pairs; per-group data (bincode) holds the training statistics,
//! distance and sample, which only `summary` and `partial_fit` need, so apply neither reads nor
//! checksums it. Layout 1 (per-entity models): the whole body, bincode, as the per-group data.
//! Versions 1 and 2 (the whole body, bincode) are still read.
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

use super::table::Bytes;
use super::{FlatDensity, Model, ModelBody, ModelHeader};
use crate::spl::{ModelName, is_valid_model_name};

pub const MAGIC: &[u8; 8] = b"SMBDMODL";
/// Version 3 lays groups out for reading in place (see the module docs); versions 1 and 2 are still
/// read.
pub const FORMAT_VERSION: u32 = 3;
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

    /// Reads a DensityFunction model for scoring: its header and its groups laid out flat. A
    /// version-3 model is mapped and checked, not decoded; an older one is decoded straight into the
    /// flat layout, without an allocation per group.
    pub fn load_for_scoring(
        &self,
        name: &ModelName,
    ) -> Result<(ModelHeader, FlatDensity), StoreError> {
        let path = self.path_for(name)?;
        let model = match self.map_file(name, &path) {
            Ok(bytes) => match decode_for_scoring(bytes).map_err(|p| invalid(&path, p))? {
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
    fn map_file(&self, name: &ModelName, path: &Path) -> Result<Bytes, StoreError> {
        let mut f = self.open(name, path)?;
        let len = f.metadata().map_err(|e| io_err(path, e))?.len();
        let mut pre = [0u8; PREAMBLE_LEN];
        if len < PREAMBLE_LEN as u64 {
            return Err(invalid(path, "truncated (shorter than its preamble)"));
        }
        f.read_exact(&mut pre).map_err(|e| io_err(path, e))?;
        let p = Preamble::parse(&pre).map_err(|e| invalid(path, e))?;
        p.check_len(len).map_err(|e| invalid(path, e))?;
        Bytes::map(&f, len as usize).or_else(|_| {
            // Some filesystems cannot map files: read it instead.
            let mut bytes = Vec::with_capacity(len as usize);
            bytes.extend_from_slice(&pre);
            f.read_to_end(&mut bytes).map_err(|e| io_err(path, e))?;
            Ok(Bytes::Owned(bytes))
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
        if !(1..=FORMAT_VERSION).contains(&p.version) {
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

fn encode(model: &Model) -> Result<Vec<u8>, String> {
    encode_version(model, FORMAT_VERSION)
}

/// Encodes a model in format `version` (1, 2 or 3); only tests write the old ones.
#[doc(hidden)]
pub fn encode_version(model: &Model, version: u32) -> Result<Vec<u8>, String> {
    let bin = |v: &dyn v3::Encode| v.encode();
    let header = bin(&model.header)?;
    let payload = match version {
        1 => bin(&model.body)?,
        2 => bin(&compact::BodyOut(&model.body))?,
        3 => v3::encode(&model.body)?,
        v => return Err(format!("format version {v} is not written")),
    };
    let mut out = Vec::with_capacity(PREAMBLE_LEN + header.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&header).to_le_bytes());
    out.extend_from_slice(&payload_checksum(version, &payload).to_le_bytes());
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
    if p.version >= 3 && payload.len() < v3::TABLE_LEN {
        return Err("payload does not decode: shorter than its section table".into());
    }
    if payload_checksum(p.version, payload) != p.payload_crc {
        return Err("payload checksum mismatch (the file is corrupted)".into());
    }
    Ok((p, header, payload))
}

/// The preamble's payload checksum: of the whole payload, or from version 3 of its section table
/// (which holds the sections' checksums).
#[doc(hidden)]
pub fn payload_checksum(version: u32, payload: &[u8]) -> u32 {
    if version >= 3 {
        crc32fast::hash(&payload[..payload.len().min(v3::TABLE_LEN)])
    } else {
        crc32fast::hash(payload)
    }
}

/// Rewrites the section checksums of a version-3 payload whose section table is well formed (for
/// fuzzing and tests, which then see the decoder proper).
#[doc(hidden)]
pub fn reseal_v3(payload: &mut [u8]) {
    if let Ok(t) = v3::parse(payload) {
        for (i, r) in t.sections.iter().enumerate() {
            let crc = crc32fast::hash(&payload[r.clone()]);
            let at = v3::SECTIONS_AT + i * 12 + 8;
            payload[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        }
    }
}

/// Decodes a whole model file, checking magic, version, lengths and checksums first.
pub fn decode(bytes: &[u8]) -> Result<Model, String> {
    let (p, header, payload) = split(bytes)?;
    let header: ModelHeader =
        decode_part(header).map_err(|e| format!("header does not decode: {e}"))?;
    let body: ModelBody = match p.version {
        1 => decode_part(payload),
        2 => decode_part::<compact::BodyIn>(payload).map(compact::BodyIn::into_body),
        _ => return v3::decode(payload).map(|body| Model { header, body }),
    }
    .map_err(|e| format!("payload does not decode: {e}"))?;
    Ok(Model { header, body })
}

/// Decodes a model file for scoring: the flat layout of a version-2 or 3 file (a version-3 table is
/// checked and kept where it lies), or (for version 1 and per-entity bodies) the whole model.
fn decode_for_scoring(bytes: Bytes) -> Result<Result<(ModelHeader, FlatDensity), Model>, String> {
    let version = bytes
        .get(8..12)
        .map(|v| u32::from_le_bytes(v.try_into().expect("4 bytes")));
    if version.is_some_and(|v| v < 3) {
        // Versions 1 and 2 are read whole.
        bytes.populate(0..bytes.len());
    }
    let (p, header, payload) = split(&bytes)?;
    if p.version == 1 {
        return decode(&bytes).map(Err);
    }
    let header: ModelHeader =
        decode_part(header).map_err(|e| format!("header does not decode: {e}"))?;
    if p.version >= 3 {
        let at = bytes.len() - payload.len();
        return Ok(match v3::decode_for_scoring(bytes, at)? {
            Ok(flat) => Ok((header, flat)),
            Err(body) => Err(Model { header, body }),
        });
    }
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

/// Reads a model file as apply does (for tests and fuzzing): the header and the flat groups of a
/// DensityFunction model, or why not.
#[doc(hidden)]
pub fn decode_flat(bytes: Vec<u8>) -> Result<(ModelHeader, FlatDensity), String> {
    match decode_for_scoring(Bytes::Owned(bytes))? {
        Ok(flat) => Ok(flat),
        Err(Model {
            header,
            body: ModelBody::Density(body),
        }) => Ok((header, body.into())),
        Err(_) => Err("is a per-entity model, not a DensityFunction model".into()),
    }
}

/// The version-2 payload: per group, the boundaries of Normal and Exponential groups are left out (they
/// are cheap to recompute, exactly, from the distribution when first needed) and a NaN `distance` is
/// one byte. Groups of other distributions keep their precomputed boundaries.
mod compact {
    use serde::ser::{SerializeSeq, Serializer};
    use serde::{Deserialize, Serialize};

    use crate::density::{BoundaryRange, Distribution, GroupStats};
    use crate::model::{DensityBody, FlatBuilder, FlatDensity, Group, ModelBody};

    pub fn recomputable(d: &Distribution) -> bool {
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

    struct FlatGroups(FlatBuilder);

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
                    let mut flat = FlatBuilder::with_capacity(n);
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
        let mut flat = FlatBuilder::with_capacity((n as usize).min(1 << 24));
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
        (c.pos == payload.len()).then(|| flat.finish())
    }

    impl FlatIn {
        pub fn into_flat(self) -> FlatDensity {
            let FlatIn::Density(d) = self;
            let mut flat = d.groups.0;
            flat.integral_feature = d.integral_feature;
            flat.finish()
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

/// The version-3 payload: a section table, then per-group data, records, index and other groups.
mod v3 {
    use std::ops::Range;

    use serde::ser::{SerializeSeq, Serializer};
    use serde::{Deserialize, Serialize};

    use super::compact::{self, recomputable};
    use super::{FlatDensity, config, decode_part};
    use crate::density::exponential::Exponential;
    use crate::density::normal::Normal;
    use crate::density::{BoundaryRange, Distribution, GroupStats};
    use crate::model::table::{self, Bytes, GroupTable};
    use crate::model::{DensityBody, Group, ModelBody};

    const LAYOUT_TABLE: u8 = 0;
    const LAYOUT_BODY: u8 = 1;
    /// Where the four (length, CRC-32) pairs start in the table.
    pub const SECTIONS_AT: usize = 1 + 6 * 8;
    pub const TABLE_LEN: usize = SECTIONS_AT + 4 * 12;
    const COLD: usize = 0;
    const RECORDS: usize = 1;
    const INDEX: usize = 2;
    const OTHERS: usize = 3;
    const NAMES: [&str; 4] = [
        "the per-group data",
        "the group records",
        "the group index",
        "the other groups",
    ];

    /// A parsed section table; section ranges are within the payload.
    pub struct Table {
        layout: u8,
        flags: u64,
        shape: table::Shape,
        pub sections: [Range<usize>; 4],
        crcs: [u32; 4],
    }

    pub fn parse(payload: &[u8]) -> Result<Table, String> {
        let bad = |what: &str| Err(format!("payload does not decode: {what}"));
        if payload.len() < TABLE_LEN {
            return bad("shorter than its section table");
        }
        let u64_at = |i: usize| u64::from_le_bytes(payload[i..i + 8].try_into().expect("8 bytes"));
        let mut t = Table {
            layout: payload[0],
            flags: u64_at(9),
            shape: table::Shape {
                groups: u64_at(1),
                seed: u64_at(17),
                stride: u64_at(25),
                slots: u64_at(33),
                max_probe: u64_at(41),
            },
            sections: Default::default(),
            crcs: [0; 4],
        };
        let mut at = TABLE_LEN;
        for i in 0..4 {
            let p = SECTIONS_AT + i * 12;
            let len = usize::try_from(u64_at(p)).unwrap_or(usize::MAX);
            let Some(end) = at.checked_add(len).filter(|&e| e <= payload.len()) else {
                return bad("its sections run past its end");
            };
            t.sections[i] = at..end;
            t.crcs[i] = u32::from_le_bytes(payload[p + 8..p + 12].try_into().expect("4 bytes"));
            at = end;
        }
        if at != payload.len() {
            return bad("its sections do not fill it");
        }
        if t.flags & !1 != 0 {
            return bad("unknown flags");
        }
        match t.layout {
            LAYOUT_TABLE => {}
            LAYOUT_BODY => {
                let empty = t.sections[RECORDS..].iter().all(|r| r.is_empty());
                if !empty || t.flags != 0 || t.shape != table::Shape::default() {
                    return bad("a whole-body payload with a group table");
                }
            }
            _ => return bad("unknown layout"),
        }
        Ok(t)
    }

    impl Table {
        /// Section `i`, its checksum verified.
        fn section<'a>(&self, payload: &'a [u8], i: usize) -> Result<&'a [u8], String> {
            let s = &payload[self.sections[i].clone()];
            if crc32fast::hash(s) != self.crcs[i] {
                return Err(format!(
                    "payload checksum mismatch in {} (the file is corrupted)",
                    NAMES[i]
                ));
            }
            Ok(s)
        }
    }

    /// A group's per-group data, as stored.
    #[derive(Serialize)]
    struct ColdRef<'a> {
        stats: &'a GroupStats,
        distance: Option<f64>,
        sample: &'a [f64],
    }

    #[derive(Deserialize)]
    struct ColdIn {
        stats: GroupStats,
        distance: Option<f64>,
        sample: Vec<f64>,
    }

    struct ColdOut<'a>(&'a [Group]);

    impl Serialize for ColdOut<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(self.0.len()))?;
            for g in self.0 {
                seq.serialize_element(&ColdRef {
                    stats: &g.stats,
                    distance: (!g.distance.is_nan()).then_some(g.distance),
                    sample: &g.sample,
                })?;
            }
            seq.end()
        }
    }

    /// The groups whose distribution is not Normal or Exponential, with their boundaries.
    struct OthersOut<'a>(&'a [Group]);

    impl Serialize for OthersOut<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let others = self.0.iter().filter(|g| !recomputable(&g.dist));
            let mut seq = s.serialize_seq(Some(others.clone().count()))?;
            for g in others {
                seq.serialize_element(&(&g.dist, &g.boundaries))?;
            }
            seq.end()
        }
    }

    type Others = Vec<(Distribution, Vec<Vec<BoundaryRange>>)>;

    /// The table a model's groups are written as (boundaries of Normal and Exponential groups are
    /// left out: they are recomputed exactly when needed).
    fn group_table(groups: &[Group], seed: u64) -> GroupTable {
        let mut other = 0u64;
        GroupTable::build_with_seed(
            groups.iter().map(|g| match &g.dist {
                Distribution::Normal(d) => (&g.key[..], table::KIND_NORMAL, d.mean, d.std),
                Distribution::Exponential(d) => {
                    (&g.key[..], table::KIND_EXPONENTIAL, d.loc, d.scale)
                }
                _ => {
                    other += 1;
                    (
                        &g.key[..],
                        table::KIND_OTHER,
                        f64::from_bits(other - 1),
                        0.0,
                    )
                }
            }),
            seed,
        )
    }

    pub use erased::Encode;

    pub fn encode(body: &ModelBody) -> Result<Vec<u8>, String> {
        let enc = |v: &dyn erased::Encode| v.encode();
        let (layout, flags, shape, sections) = match body {
            ModelBody::Density(b) => {
                let t = group_table(&b.groups, table::SEED);
                let cold = enc(&ColdOut(&b.groups))?;
                let others = enc(&OthersOut(&b.groups))?;
                let sections = [cold, t.records().to_vec(), t.index().to_vec(), others];
                (
                    LAYOUT_TABLE,
                    u64::from(b.integral_feature),
                    t.shape(),
                    sections,
                )
            }
            ModelBody::PerEntity(_) => (
                LAYOUT_BODY,
                0,
                table::Shape::default(),
                [enc(&compact::BodyOut(body))?, vec![], vec![], vec![]],
            ),
        };
        let len = TABLE_LEN + sections.iter().map(Vec::len).sum::<usize>();
        let mut out = Vec::with_capacity(len);
        out.push(layout);
        let s = shape;
        for v in [s.groups, flags, s.seed, s.stride, s.slots, s.max_probe] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for s in &sections {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(&crc32fast::hash(s).to_le_bytes());
        }
        for s in &sections {
            out.extend_from_slice(s);
        }
        Ok(out)
    }

    /// bincode behind a trait object, so encoders of different types can be taken alike.
    mod erased {
        pub trait Encode {
            fn encode(&self) -> Result<Vec<u8>, String>;
        }
        impl<T: serde::Serialize> Encode for T {
            fn encode(&self) -> Result<Vec<u8>, String> {
                bincode::serde::encode_to_vec(self, super::config()).map_err(|e| e.to_string())
            }
        }
    }

    fn undecodable(e: String) -> String {
        format!("payload does not decode: {e}")
    }

    /// Decodes the whole body, checking every section. A group table must be exactly what this
    /// version writes for its groups, index included.
    pub fn decode(payload: &[u8]) -> Result<ModelBody, String> {
        let t = parse(payload)?;
        let cold = t.section(payload, COLD)?;
        if t.layout == LAYOUT_BODY {
            return decode_part::<compact::BodyIn>(cold)
                .map(compact::BodyIn::into_body)
                .map_err(undecodable);
        }
        let others: Others = decode_part(t.section(payload, OTHERS)?).map_err(undecodable)?;
        let records = &payload[t.sections[RECORDS].clone()];
        let index = &payload[t.sections[INDEX].clone()];
        // The table checks its own sections' checksums.
        let stored = GroupTable::open(
            Bytes::Owned([records, index].concat()),
            0..records.len(),
            records.len()..records.len() + index.len(),
            (t.crcs[RECORDS], t.crcs[INDEX]),
            t.shape,
            others.len(),
        )?;
        let cold: Vec<ColdIn> = decode_part(cold).map_err(undecodable)?;
        if cold.len() != stored.len() {
            return Err(undecodable(format!(
                "{} groups of per-group data for {} groups",
                cold.len(),
                stored.len()
            )));
        }
        let mut others = others.into_iter();
        let groups: Vec<Group> = stored
            .iter()
            .zip(cold)
            .map(|((r, key), c)| {
                let (dist, boundaries) = match r.kind {
                    table::KIND_NORMAL => (
                        Distribution::Normal(Normal {
                            mean: r.a,
                            std: r.b,
                        }),
                        Vec::new(),
                    ),
                    table::KIND_EXPONENTIAL => (
                        Distribution::Exponential(Exponential {
                            loc: r.a,
                            scale: r.b,
                        }),
                        Vec::new(),
                    ),
                    // Checked: other groups are numbered in order, one per entry.
                    _ => others.next().expect("one entry per other group"),
                };
                Group {
                    key: key.to_vec(),
                    stats: c.stats,
                    dist,
                    distance: c.distance.unwrap_or(f64::NAN),
                    sample: c.sample,
                    boundaries,
                }
            })
            .collect();
        let canonical = group_table(&groups, t.shape.seed);
        if canonical.shape() != t.shape
            || canonical.records() != stored.records()
            || canonical.index() != stored.index()
        {
            return Err(undecodable(
                "the group table is not the one its groups give".into(),
            ));
        }
        let kinds_hold = groups
            .iter()
            .zip(stored.iter())
            .all(|(g, (r, _))| (r.kind == table::KIND_OTHER) != recomputable(&g.dist));
        if !kinds_hold {
            return Err(undecodable(
                "an other group holds a Normal or Exponential".into(),
            ));
        }
        Ok(ModelBody::Density(DensityBody {
            integral_feature: t.flags & 1 != 0,
            groups,
            key_canon: Vec::new(),
        }))
    }

    /// Reads a payload at byte `at` of `bytes` for scoring: a group table is checked and kept where
    /// it lies; its per-group data is neither read nor checksummed. A whole-body payload comes back
    /// decoded.
    pub fn decode_for_scoring(
        bytes: Bytes,
        at: usize,
    ) -> Result<Result<FlatDensity, ModelBody>, String> {
        let payload = &bytes[at..];
        let t = parse(payload)?;
        if t.layout == LAYOUT_BODY {
            let cold = t.section(payload, COLD)?;
            let body = decode_part::<compact::BodyIn>(cold).map_err(undecodable)?;
            return Ok(match body.into_body() {
                ModelBody::Density(d) => Ok(d.into()),
                other => Err(other),
            });
        }
        // Apply reads the records, index and other groups, which end the file; never the per-group
        // data, which stays unread on disk.
        bytes.populate(at + t.sections[RECORDS].start..bytes.len());
        let others: Others = decode_part(t.section(payload, OTHERS)?).map_err(undecodable)?;
        let shift = |r: &Range<usize>| at + r.start..at + r.end;
        let (records, index) = (shift(&t.sections[RECORDS]), shift(&t.sections[INDEX]));
        let (crcs, shape, integral) = ((t.crcs[RECORDS], t.crcs[INDEX]), t.shape, t.flags & 1 != 0);
        let table = GroupTable::open(bytes, records, index, crcs, shape, others.len())?;
        Ok(Ok(FlatDensity::from_parts(integral, table, others)))
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
        assert!(!fast.boundaries(fast.group(1).unwrap()).is_empty());
        for n in 0..payload.len() {
            assert!(compact::read_flat(&payload[..n]).is_none(), "cut at {n}");
        }
    }
}
