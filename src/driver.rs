//! A local stand-in for splunkd: runs `smbdensity <command>` as a child process and drives it through the
//! real SCPv2 protocol, so commands can be tried on a CSV export without Splunk.
//!
//! It sends a getinfo chunk, then the input CSV in chunks of `chunk_rows` rows (the last marked
//! `finished`), checks that exactly one well-formed reply comes back for each, and writes the rows of
//! the replies as one CSV. Inspector messages go to stderr.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::protocol::body::body_writer;
use crate::protocol::framing::{ChunkReader, write_chunk};
use crate::spl;

/// How to run a command.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `smbdensity` executable to start.
    pub exe: PathBuf,
    /// Models directory passed as `SMBDENSITY_MODEL_DIR` (else the child finds its own).
    pub models: Option<PathBuf>,
    /// Rows per execute chunk (splunkd sends up to 50,000).
    pub chunk_rows: usize,
    /// Keep `__mv_` columns in the output (Splunk's own exports drop them).
    pub keep_mv: bool,
    /// Print inspector messages to stderr.
    pub echo_messages: bool,
}

impl Options {
    pub fn new(exe: PathBuf) -> Options {
        Options {
            exe,
            models: None,
            chunk_rows: 50_000,
            keep_mv: false,
            echo_messages: true,
        }
    }
}

/// What a run produced besides the rows.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Inspector messages in order, as (level, text).
    pub messages: Vec<(String, String)>,
    /// The `error` field of a failed reply.
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub rows_out: u64,
}

/// A driver failure: the child broke the protocol or could not be run.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("cannot start {exe}: {source}")]
    Spawn { exe: String, source: io::Error },
    #[error("{0}")]
    Args(#[from] spl::ArgError),
    #[error("protocol violation by the command: {0}")]
    Protocol(String),
    #[error("input CSV: {0}")]
    Input(String),
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
}

/// Runs `command_line` (e.g. `apply smb_pdfmodel threshold=0.001`) over `input`, writing rows to `output`.
pub fn run<R: Read, W: Write>(
    command_line: &str,
    input: R,
    output: W,
    opts: &Options,
) -> Result<Outcome, DriverError> {
    let tokens = spl::tokenize(command_line)?;
    let (command, args) = tokens
        .split_first()
        .ok_or_else(|| spl::ArgError("empty command line".into()))?;
    let mut cmd = Command::new(&opts.exe);
    cmd.arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(m) = &opts.models {
        cmd.env("SMBDENSITY_MODEL_DIR", m);
    }
    let mut child = cmd.spawn().map_err(|source| DriverError::Spawn {
        exe: opts.exe.display().to_string(),
        source,
    })?;
    let mut to_child = BufWriter::new(child.stdin.take().expect("piped stdin"));
    let mut from_child = ChunkReader::new(
        BufReader::new(child.stdout.take().expect("piped stdout")),
        u64::MAX,
    );
    let dispatch = tempfile::tempdir()?;
    let mut outcome = Outcome::default();
    let result = converse(
        command,
        args,
        input,
        output,
        opts,
        &mut to_child,
        &mut from_child,
        dispatch.path(),
        &mut outcome,
    );
    drop(to_child);
    // Drain anything left so the child never blocks on a full pipe, then reap it.
    let _ = io::copy(&mut from_child.into_inner(), &mut io::sink());
    outcome.exit_code = child.wait()?.code();
    result.map(|_| outcome)
}

struct Reply {
    meta: serde_json::Value,
    body: Vec<u8>,
}

fn exchange<W: Write, R: io::BufRead>(
    to: &mut W,
    from: &mut ChunkReader<R>,
    meta: &serde_json::Value,
    body: &[u8],
    outcome: &mut Outcome,
    opts: &Options,
) -> Result<Reply, DriverError> {
    write_chunk(to, &serde_json::to_vec(meta).expect("json"), body)?;
    let chunk = from
        .read_chunk()
        .map_err(|e| DriverError::Protocol(format!("bad reply: {e}")))?
        .ok_or_else(|| DriverError::Protocol("the command exited without replying".into()))?;
    let meta: serde_json::Value = serde_json::from_slice(&chunk.metadata)
        .map_err(|e| DriverError::Protocol(format!("reply metadata is not JSON: {e}")))?;
    if !meta.is_object() {
        return Err(DriverError::Protocol(
            "reply metadata is not a JSON object".into(),
        ));
    }
    if let Some(msgs) = meta
        .pointer("/inspector/messages")
        .and_then(|m| m.as_array())
    {
        for m in msgs {
            let level = m.get(0).and_then(|l| l.as_str()).unwrap_or("?").to_string();
            let text = m.get(1).and_then(|t| t.as_str()).unwrap_or("").to_string();
            if opts.echo_messages {
                eprintln!("{level}: {text}");
            }
            outcome.messages.push((level, text));
        }
    }
    if let Some(e) = meta.get("error").and_then(|e| e.as_str()) {
        outcome.error = Some(e.to_string());
    }
    Ok(Reply {
        meta,
        body: chunk.body,
    })
}

/// Merges reply bodies into one CSV: the first header wins, later bodies are mapped onto it.
struct Merger<W: Write> {
    out: csv::Writer<W>,
    header: Option<Vec<Vec<u8>>>,
    keep: Vec<usize>,
    keep_mv: bool,
    rows: u64,
}

impl<W: Write> Merger<W> {
    fn add(&mut self, body: &[u8]) -> Result<(), DriverError> {
        if body.is_empty() {
            return Ok(());
        }
        let mut r = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(body);
        let names: Vec<Vec<u8>> = r
            .byte_headers()
            .map_err(|e| DriverError::Protocol(e.to_string()))?
            .iter()
            .map(|f| f.to_vec())
            .collect();
        if self.header.is_none() {
            self.keep = (0..names.len())
                .filter(|&i| self.keep_mv || !names[i].starts_with(b"__mv_"))
                .collect();
            let h: Vec<Vec<u8>> = self.keep.iter().map(|&i| names[i].clone()).collect();
            self.out
                .write_record(&h)
                .map_err(|e| DriverError::Io(io::Error::other(e)))?;
            self.header = Some(h);
        }
        let header = self.header.as_ref().expect("set above");
        let pos: Vec<Option<usize>> = header
            .iter()
            .map(|h| names.iter().position(|n| n == h))
            .collect();
        let mut rec = csv::ByteRecord::new();
        let mut row = csv::ByteRecord::new();
        while r
            .read_byte_record(&mut rec)
            .map_err(|e| DriverError::Protocol(format!("reply body: {e}")))?
        {
            row.clear();
            for p in &pos {
                row.push_field(p.and_then(|i| rec.get(i)).unwrap_or(b""));
            }
            self.out
                .write_byte_record(&row)
                .map_err(|e| DriverError::Io(io::Error::other(e)))?;
            self.rows += 1;
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn converse<R: Read, W: Write, CW: Write, CR: io::BufRead>(
    command: &str,
    args: &[String],
    input: R,
    output: W,
    opts: &Options,
    to: &mut CW,
    from: &mut ChunkReader<CR>,
    dispatch_dir: &std::path::Path,
    outcome: &mut Outcome,
) -> Result<(), DriverError> {
    let user = std::env::var("USER").unwrap_or_else(|_| "admin".into());
    let getinfo = json!({
        "action": "getinfo",
        "preview": false,
        "streaming_command_will_restart": false,
        "searchinfo": {
            "args": args,
            "raw_args": args,
            "dispatch_dir": dispatch_dir.display().to_string(),
            "sid": format!("local.{}", std::process::id()),
            "app": "smb_traffic_spike",
            "owner": user,
            "username": user,
            "session_key": "",
            "splunkd_uri": "",
            "splunk_version": "local",
            "search": "",
            "command": command,
            "maxresultrows": 50000,
            "earliest_time": "0",
            "latest_time": "0",
        }
    });
    let info = exchange(to, from, &getinfo, b"", outcome, opts)?;
    if outcome.error.is_some() {
        return Ok(());
    }
    let generating = info
        .meta
        .get("generating")
        .and_then(|g| g.as_bool())
        .unwrap_or(false);
    let mut merger = Merger {
        out: body_writer(output),
        header: None,
        keep: Vec::new(),
        keep_mv: opts.keep_mv,
        rows: 0,
    };
    if generating {
        // Generating commands page their output; ask until they say they are finished.
        for _ in 0..1_000_000 {
            let reply = exchange(
                to,
                from,
                &json!({"action": "execute", "finished": true}),
                b"",
                outcome,
                opts,
            )?;
            merger.add(&reply.body)?;
            if outcome.error.is_some()
                || reply.meta.get("finished").and_then(|f| f.as_bool()) != Some(false)
            {
                break;
            }
        }
    } else {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(input);
        let header = reader
            .byte_headers()
            .map_err(|e| DriverError::Input(e.to_string()))?
            .clone();
        let mut rec = csv::ByteRecord::new();
        let mut more = reader
            .read_byte_record(&mut rec)
            .map_err(|e| DriverError::Input(e.to_string()))?;
        loop {
            let mut w = body_writer(Vec::new());
            w.write_byte_record(&header)
                .map_err(|e| DriverError::Io(io::Error::other(e)))?;
            let mut n = 0;
            while more && n < opts.chunk_rows.max(1) {
                w.write_byte_record(&rec)
                    .map_err(|e| DriverError::Io(io::Error::other(e)))?;
                n += 1;
                more = reader
                    .read_byte_record(&mut rec)
                    .map_err(|e| DriverError::Input(e.to_string()))?;
            }
            let body = w
                .into_inner()
                .map_err(|e| DriverError::Io(io::Error::other(e.to_string())))?;
            let reply = exchange(
                to,
                from,
                &json!({"action": "execute", "finished": !more}),
                &body,
                outcome,
                opts,
            )?;
            if outcome.error.is_some() {
                break;
            }
            merger.add(&reply.body)?;
            if !more {
                break;
            }
        }
    }
    merger.out.flush()?;
    outcome.rows_out = merger.rows;
    Ok(())
}
