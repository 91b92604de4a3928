//! The search commands (`fit`, `apply`, `summary`, `listmodels`, `deletemodel`) behind one interface that
//! the protocol loop drives: a side-effect-free getinfo reply, then one [`Output`] per execute chunk.

pub mod apply;
pub mod entity_score;
pub mod fit;
pub mod fit_entity;
mod fit_parallel;
pub mod models;
pub mod passthrough;
pub mod rows;
pub mod score;
mod spill;

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::config::Limits;
use crate::error::{Error, Result};
use crate::model::store::{ModelStore, StoreError};
use crate::protocol::metadata::{Level, Reply, SearchInfo};

/// Where this process finds its models and limits.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// The models directory (`lookups/`), when one could be determined.
    pub models_dir: Option<PathBuf>,
    pub config: Limits,
    /// A broken `smbdensity.conf`, reported to the user by the first command.
    pub config_error: Option<String>,
}

impl Environment {
    /// The environment of a binary installed in a Splunk app: models in `<app>/lookups/` (or
    /// `$SMBDENSITY_MODEL_DIR`), limits from `<app>/default|local/smbdensity.conf`, then from the file
    /// `$SMBDENSITY_CONF` if set (for running outside an app, e.g. the benchmark).
    pub fn discover() -> Result<Environment> {
        let app = std::env::current_exe()
            .ok()
            .and_then(|exe| app_dir_of(&exe));
        let models_dir = match std::env::var_os("SMBDENSITY_MODEL_DIR") {
            Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
            _ => app.as_ref().map(|a| a.join("lookups")),
        };
        let mut config = Limits::load(app.as_deref())?;
        if let Some(extra) = std::env::var_os("SMBDENSITY_CONF").filter(|v| !v.is_empty()) {
            let path = PathBuf::from(extra);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
            config.apply_conf(&text, &path)?;
        }
        Ok(Environment {
            models_dir,
            config,
            config_error: None,
        })
    }

    pub fn store(&self) -> Result<ModelStore, StoreError> {
        self.models_dir
            .as_ref()
            .map(ModelStore::new)
            .ok_or(StoreError::NoDirectory)
    }
}

/// The Splunk platform folders a binary may sit in (`<app>/<platform>/bin/`).
const PLATFORM_DIRS: &[&str] = &[
    "linux_x86_64",
    "linux_x86",
    "linux_aarch64",
    "windows_x86_64",
    "windows_x86",
    "darwin_x86_64",
    "darwin_arm64",
];

/// The app folder of an executable at `<app>/bin/x` or `<app>/<platform>/bin/x`, if it looks like a
/// Splunk app (it has a `default/` folder).
pub fn app_dir_of(exe: &Path) -> Option<PathBuf> {
    let exe = exe.canonicalize().unwrap_or_else(|_| exe.to_path_buf());
    let bin = exe.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    let mut app = bin.parent()?;
    if app
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| PLATFORM_DIRS.contains(&n))
    {
        app = app.parent()?;
    }
    app.join("default").is_dir().then(|| app.to_path_buf())
}

/// What one command invocation knows from getinfo.
#[derive(Debug, Clone)]
pub struct Context {
    pub info: SearchInfo,
    pub preview: bool,
    pub env: Environment,
}

/// The body of a reply.
#[derive(Debug, Default)]
pub enum ReplyBody {
    #[default]
    Empty,
    Bytes(Vec<u8>),
    /// A large body streamed from a spill file, positioned at its start.
    File {
        file: File,
        len: u64,
    },
    /// A large body written straight into the reply after its header.
    Stream(StreamedBody),
}

/// A reply body of known length that is produced while it is sent, so a large reply needs neither
/// memory nor a file of its own. `fit` measures the length in a dry pass over its spill first.
pub struct StreamedBody {
    /// Exactly the number of bytes `write` produces.
    pub len: u64,
    /// Writes the body. Returns the number of bytes written, which must equal `len`.
    pub write: WriteBody,
}

/// Writes a [`StreamedBody`] into the reply and returns how many bytes it wrote.
pub type WriteBody = Box<dyn FnOnce(&mut dyn std::io::Write) -> crate::error::Result<u64>>;

impl std::fmt::Debug for StreamedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamedBody")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// What a command produces for one execute chunk.
#[derive(Debug, Default)]
pub struct Output {
    pub messages: Vec<(Level, String)>,
    pub body: ReplyBody,
    /// Overrides the echoed `finished` flag (generating commands decide it themselves).
    pub finished: Option<bool>,
}

impl Output {
    pub fn warn(&mut self, msg: impl Into<String>) {
        self.messages.push((Level::Warn, msg.into()));
    }

    pub fn info(&mut self, msg: impl Into<String>) {
        self.messages.push((Level::Info, msg.into()));
    }
}

/// A search command driven by the protocol loop.
pub trait SearchCommand {
    /// The getinfo reply. Must not touch anything outside the process.
    fn getinfo(&self) -> Reply;
    /// Handles one execute chunk (`chunk` is its 1-based number in the stream).
    fn execute(&mut self, body: &[u8], finished: bool, chunk: u64, out: &mut Output) -> Result<()>;
}

/// Builds the command `name` from the getinfo context. Argument errors surface here, in the getinfo
/// reply, before any data moves.
pub fn build(name: &str, ctx: &Context) -> Result<Box<dyn SearchCommand>> {
    if let Some(e) = &ctx.env.config_error {
        return Err(Error::Config(e.clone()));
    }
    match name {
        "fit" => {
            let args = crate::spl::parse_fit(&ctx.info.args)?;
            match fit_entity::entity_of(&args)? {
                Some(entity) => Ok(Box::new(fit_entity::FitEntity::new(ctx, args, entity)?)),
                None => Ok(Box::new(fit::Fit::new(ctx)?)),
            }
        }
        "apply" => Ok(Box::new(apply::Apply::new(ctx)?)),
        "summary" => Ok(Box::new(models::ModelCommand::summary(ctx)?)),
        "listmodels" => Ok(Box::new(models::ModelCommand::list(ctx)?)),
        "deletemodel" => Ok(Box::new(models::ModelCommand::delete(ctx)?)),
        // Baselines for `smbdensity bench`; not part of the app's commands.conf.
        "__passthrough_csv" => Ok(Box::new(passthrough::CsvPassthrough)),
        "__passthrough_raw" => Ok(Box::new(passthrough::RawPassthrough)),
        other => Err(Error::Args(crate::spl::ArgError(format!(
            "unknown command \"{other}\""
        )))),
    }
}
