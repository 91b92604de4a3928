//! Splunk's chunked custom search command protocol (SCPv2): framing, metadata, CSV bodies and the
//! request/reply loop that drives a command.

pub mod body;
pub mod framing;
pub mod metadata;
pub mod server;
