//! `smbdensity`: MLTK DensityFunction's `fit`/`apply` as a native Splunk custom search command (SCPv2).
//!
//! The layers, from the wire inwards: [`protocol`] frames chunks and encodes CSV bodies, [`spl`] parses
//! command arguments, [`commands`] implements each search command, [`density`] holds the statistics and
//! [`model`] the on-disk models. [`driver`] plays splunkd's side for tests, the demo and local use.

pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod density;
pub mod driver;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod hostmodel;
pub mod model;
pub mod protocol;
pub mod quality;
pub mod spl;
