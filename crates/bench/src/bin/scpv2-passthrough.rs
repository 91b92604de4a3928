//! The benchmark's floor: SCPv2 commands that only move rows, through the same `scpv2` session loop as
//! `smbdensity`, so the ratios in the throughput table are of our work, not of the pipe.
//!
//! - `scpv2-passthrough csv` parses each chunk body into records with the `csv` crate and writes them
//!   back with one constant column appended: what any apply that must read the rows pays at least.
//! - `scpv2-passthrough raw` copies the chunk bytes back without parsing them: the pipe's own limit.

use scpv2::body::body_writer;
use scpv2::metadata::Reply;
use scpv2::{Command, Output, ReplyBody, Server};

enum Passthrough {
    Csv,
    Raw,
}

impl Command for Passthrough {
    type Error = String;

    fn getinfo(&mut self) -> Reply {
        Reply {
            kind: Some("stateful"),
            ..Default::default()
        }
    }

    fn execute(&mut self, body: &[u8], _: bool, _: u64, out: &mut Output) -> Result<(), String> {
        if let Passthrough::Raw = self {
            out.body = ReplyBody::Bytes(body.to_vec());
            return Ok(());
        }
        let mut buf = Vec::with_capacity(body.len() + body.len() / 8 + 64);
        if !body.is_empty() {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(body);
            let mut w = body_writer(&mut buf);
            let mut rec = csv::ByteRecord::new();
            let mut first = true;
            while r.read_byte_record(&mut rec).map_err(|e| e.to_string())? {
                rec.push_field(if first { b"passthrough" } else { b"1" });
                first = false;
                w.write_byte_record(&rec).map_err(|e| e.to_string())?;
            }
            w.flush().map_err(|e| e.to_string())?;
        }
        out.body = ReplyBody::Bytes(buf);
        Ok(())
    }
}

fn main() {
    let kind = match std::env::args().nth(1).as_deref() {
        Some("csv") => Passthrough::Csv,
        Some("raw") => Passthrough::Raw,
        _ => {
            eprintln!(
                "usage: scpv2-passthrough csv|raw   (an SCPv2 command; the benchmark starts it)"
            );
            std::process::exit(2);
        }
    };
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    std::process::exit(
        Server::new("scpv2-passthrough").serve(stdin.lock(), stdout.lock(), |_| Ok(kind)),
    );
}
