//! `smbdensity`: MLTK DensityFunction's `fit`/`apply` as a native Splunk custom search command (SCPv2).
//!
//! The layers, from the wire inwards: the [`scpv2`] crate frames chunks and encodes CSV bodies, [`spl`]
//! parses command arguments, [`commands`] parses each search command's arguments and drives its I/O,
//! [`density`] (MLTK's pooled distributions) and [`hostmodel`] (per-host baselines) each own their fit and
//! scoring, and [`model`] stores models on disk. [`local`] runs a search line without Splunk.

pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod density;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod hostmodel;
pub mod local;
pub mod model;
pub mod spl;
