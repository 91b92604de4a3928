//! Running one search line locally (`smbdensity run`, the demo, the benchmarks): the line is split the
//! way MLTK splits arguments and handed to `scpv2`'s splunkd stand-in, which runs this binary through
//! the real protocol.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use scpv2::driver::{self, DriverError, Outcome};

use crate::spl::{self, ArgError};

/// The app a local run pretends to search in.
pub const APP: &str = "smb_traffic_spike";

/// A local run that could not happen.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}")]
    Args(#[from] ArgError),
    #[error("{0}")]
    Driver(#[from] DriverError),
}

/// Driver options for running `exe`, with its models in `models` (else where the binary finds them).
pub fn options(exe: PathBuf, models: Option<&Path>) -> driver::Options {
    let mut o = driver::Options::new(exe);
    o.app = APP.to_string();
    if let Some(m) = models {
        o.env
            .push(("SMBDENSITY_MODEL_DIR".to_string(), m.to_path_buf()));
    }
    o
}

/// Runs `line` (e.g. `apply smb_pdfmodel threshold=0.001`) over the CSV `input`, writing the reply rows
/// to `output`.
pub fn run<R: Read, W: Write>(
    line: &str,
    input: R,
    output: W,
    opts: &driver::Options,
) -> Result<Outcome, LocalError> {
    let tokens = spl::tokenize(line)?;
    let (command, args) = tokens
        .split_first()
        .ok_or_else(|| ArgError("empty command line".into()))?;
    Ok(driver::run(command, args, input, output, opts)?)
}
