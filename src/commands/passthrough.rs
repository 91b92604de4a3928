//! Hidden baseline commands for `smbdensity bench`: the floor cost of moving rows through SCPv2.
//!
//! - `__passthrough_csv` parses each chunk body into records with the `csv` crate and writes them back
//!   with one constant column appended: what any apply that must read the rows pays at least.
//! - `__passthrough_raw` copies the chunk bytes back without parsing them: the pipe's own limit.
//!
//! Both run through the same [`crate::protocol::server::serve`] loop as `fit` and `apply`.

use super::{Output, ReplyBody, SearchCommand};
use crate::error::{Error, Result};
use crate::protocol::body::body_writer;
use crate::protocol::metadata::Reply;

/// `__passthrough_csv`: parse, append a constant column, write.
pub struct CsvPassthrough;

/// `__passthrough_raw`: echo the body bytes.
pub struct RawPassthrough;

impl SearchCommand for CsvPassthrough {
    fn getinfo(&self) -> Reply {
        Reply {
            kind: Some("stateful"),
            ..Default::default()
        }
    }

    fn execute(
        &mut self,
        body: &[u8],
        _finished: bool,
        _chunk: u64,
        out: &mut Output,
    ) -> Result<()> {
        let mut buf = Vec::with_capacity(body.len() + body.len() / 8 + 64);
        if !body.is_empty() {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(body);
            let mut w = body_writer(&mut buf);
            let mut rec = csv::ByteRecord::new();
            let mut first = true;
            while r.read_byte_record(&mut rec).map_err(csv_err)? {
                rec.push_field(if first { b"passthrough" } else { b"1" });
                first = false;
                w.write_byte_record(&rec).map_err(csv_err)?;
            }
            w.flush()?;
        }
        out.body = ReplyBody::Bytes(buf);
        Ok(())
    }
}

impl SearchCommand for RawPassthrough {
    fn getinfo(&self) -> Reply {
        Reply {
            kind: Some("stateful"),
            ..Default::default()
        }
    }

    fn execute(
        &mut self,
        body: &[u8],
        _finished: bool,
        _chunk: u64,
        out: &mut Output,
    ) -> Result<()> {
        out.body = ReplyBody::Bytes(body.to_vec());
        Ok(())
    }
}

fn csv_err(e: csv::Error) -> Error {
    Error::Io(std::io::Error::other(e.to_string()))
}
