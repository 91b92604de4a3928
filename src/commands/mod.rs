//! The search commands (`fit`, `apply`, `summary`, `listmodels`, `deletemodel`), each an
//! [`scpv2::Command`]: they parse arguments and drive I/O; the model kinds do the statistics.

pub mod apply;
pub mod entity_score;
pub mod fit;
pub mod fit_entity;
mod fit_parallel;
pub mod models;
pub mod rows;
pub mod score;
mod spill;

use std::path::{Path, PathBuf};

use crate::config::Limits;
use crate::error::{Error, Result};
use crate::model::store::{ModelStore, StoreError};
use scpv2::GetInfo;
use scpv2::metadata::SearchInfo;

/// What every search command is to the protocol loop.
pub type SearchCommand = Box<dyn scpv2::Command<Error = Error>>;

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

/// Builds the command `name` from the getinfo chunk. Argument errors surface here, in the getinfo
/// reply, before any data moves.
pub fn build(name: &str, info: &GetInfo, env: &Environment) -> Result<SearchCommand> {
    if let Some(e) = &env.config_error {
        return Err(Error::Config(e.clone()));
    }
    let ctx = Context {
        info: info.searchinfo.clone(),
        preview: info.preview,
        env: env.clone(),
    };
    let ctx = &ctx;
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
        other => Err(Error::Args(crate::spl::ArgError(format!(
            "unknown command \"{other}\""
        )))),
    }
}
