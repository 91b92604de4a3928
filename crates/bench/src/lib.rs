//! Tooling for `smbdensity` that is not the product: [`throughput`] times the real binary through the
//! SCPv2 pipe against pass-through baselines; [`quality`] scores the pooled and per-host detections on a
//! labelled synthetic network. Both run the shipped binary as splunkd would, through `scpv2`'s driver.

pub mod quality;
pub mod throughput;
