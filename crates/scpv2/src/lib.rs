//! Splunk's chunked custom search command protocol (SCPv2, `chunked = true` in commands.conf), for
//! writing search commands as native programs. It knows nothing of what a command computes.
//!
//! - [`framing`]: chunks (`chunked 1.0,<metadata length>,<body length>\n` and the bytes), read with a
//!   size limit checked before any allocation.
//! - [`metadata`]: the JSON of requests (`getinfo`, `execute`) and replies (`type`, `required_fields`,
//!   inspector messages, `error`).
//! - [`body`]: CSV bodies as bytes, the header row and splunkd's `__mv_<field>` multivalue encoding.
//! - [`session`]: the loop that drives a [`Command`]: getinfo, then one reply per execute chunk; every
//!   failure, a panic included, becomes an ERROR message and the `error` field in Splunk's UI.
//! - [`driver`]: splunkd's side, to run a command on a CSV file or to test it chunk by chunk.
//!
//! # A command in twenty lines
//!
//! `| upper field=<name>` upper-cases one field of every event. It is `streaming`, so splunkd may run
//! it on indexers and sends only the fields it names in `required_fields`:
//!
//! ```
//! use scpv2::body::{BodyReader, body_writer};
//! use scpv2::metadata::Reply;
//! use scpv2::{Command, GetInfo, Output, ReplyBody, Server};
//!
//! struct Upper { field: String }
//!
//! impl Command for Upper {
//!     type Error = String;
//!     fn getinfo(&mut self) -> Reply {
//!         Reply { kind: Some("streaming"), required_fields: Some(vec![self.field.clone()]), ..Default::default() }
//!     }
//!     fn execute(&mut self, body: &[u8], _: bool, chunk: u64, out: &mut Output) -> Result<(), String> {
//!         let mut rows = BodyReader::new(body).map_err(|e| format!("chunk {chunk}: {e}"))?;
//!         let col = rows.header.find(&self.field);
//!         let mut w = body_writer(Vec::new());
//!         if !rows.header.is_empty() {
//!             w.write_record(&rows.header.names).map_err(|e| e.to_string())?;
//!         }
//!         let mut rec = csv::ByteRecord::new();
//!         while rows.read(&mut rec).map_err(|e| e.to_string())? {
//!             let cells = rec.iter().enumerate().map(|(i, v)| if Some(i) == col { v.to_ascii_uppercase() } else { v.to_vec() });
//!             w.write_record(cells).map_err(|e| e.to_string())?;
//!         }
//!         out.body = ReplyBody::Bytes(w.into_inner().map_err(|e| e.to_string())?);
//!         Ok(())
//!     }
//! }
//!
//! fn build(info: &GetInfo) -> Result<Upper, String> {
//!     match info.searchinfo.args.as_slice() {
//!         [a] if a.starts_with("field=") => Ok(Upper { field: a[6..].to_string() }),
//!         other => Err(format!("usage: upper field=<name> (got {other:?})")),
//!     }
//! }
//!
//! // In a real binary: `std::process::exit(Server::new("upper").serve(stdin.lock(), stdout.lock(), build))`.
//! // Here, splunkd's side is a byte string:
//! let getinfo = br#"{"action":"getinfo","searchinfo":{"args":["field=user"]}}"#;
//! let execute = br#"{"action":"execute","finished":true}"#;
//! let mut input = scpv2::driver::chunk(getinfo, b"");
//! input.extend(scpv2::driver::chunk(execute, b"user,n\nana,1\nbo,2\n"));
//! let mut output = Vec::new();
//! assert_eq!(Server::new("upper").serve(&input[..], &mut output, build), 0);
//! let replies = scpv2::driver::parse_replies(&output).unwrap();
//! assert_eq!(replies[0].raw_meta, br#"{"type":"streaming","required_fields":["user"]}"#);
//! assert_eq!(replies[1].body, b"user,n\nANA,1\nBO,2\n");
//! ```
//!
//! The same command as a program is `examples/upper.rs`; `cargo run -p scpv2 --example upper` shows
//! how to try it with the driver.

pub mod body;
pub mod driver;
pub mod framing;
pub mod metadata;
pub mod session;

pub use session::{Command, GetInfo, Output, ReplyBody, Server, StreamedBody, WriteBody};

/// The README's examples, compiled and run as doc tests so that they cannot go stale.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
