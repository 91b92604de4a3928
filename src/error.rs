//! The crate's error type. Every variant's text is what the user reads in Splunk's job inspector.

use crate::model::store::StoreError;
use crate::spl::ArgError;
use scpv2::body::BodyError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Args(#[from] ArgError),
    #[error("bad CSV in chunk {chunk}: {source}")]
    Body { chunk: u64, source: BodyError },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Data that cannot be fitted or scored (MLTK's texts where MLTK has one).
    #[error("{0}")]
    Data(String),
    #[error("{0}")]
    Config(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// CSV errors while writing a reply body are I/O errors (the body is built in memory or a spill file).
impl From<csv::Error> for Error {
    fn from(e: csv::Error) -> Error {
        Error::Io(std::io::Error::other(e.to_string()))
    }
}
