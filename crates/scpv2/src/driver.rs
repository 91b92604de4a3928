//! splunkd's side of the protocol, for tests and local use: run a command as a child process and
//! drive it through real SCPv2 chunks.
//!
//! [`run`] sends a getinfo chunk, then an input CSV in chunks of `chunk_rows` rows (the last marked
//! `finished`), checks that exactly one well-formed reply comes back for each, and writes the rows of
//! the replies as one CSV. [`Session`] does the same one chunk at a time, for tests that need to see
//! every reply. Both parse replies strictly ([`parse_replies`]).

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::body::body_writer;
use crate::framing::{ChunkReader, write_chunk};

/// How to run a command.
#[derive(Debug, Clone)]
pub struct Options {
    /// The executable to start; the command name is its first argument (as commands.conf's
    /// `command.arg.1` would give it).
    pub exe: PathBuf,
    /// Extra environment variables for the child.
    pub env: Vec<(String, PathBuf)>,
    /// `searchinfo.app` of the search.
    pub app: String,
    /// `searchinfo.session_key` and `searchinfo.splunkd_uri`; empty by default, as in splunkd's
    /// parse-only spawns.
    pub session_key: String,
    pub splunkd_uri: String,
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
            env: Vec::new(),
            app: "search".into(),
            session_key: String::new(),
            splunkd_uri: String::new(),
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
    #[error("protocol violation by the command: {0}")]
    Protocol(String),
    #[error("input CSV: {0}")]
    Input(String),
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
}

/// Runs `command` with `args` (as splunkd passes them in `searchinfo.args`) over the CSV `input`,
/// writing the rows of the replies to `output`.
pub fn run<R: Read, W: Write>(
    command: &str,
    args: &[String],
    input: R,
    output: W,
    opts: &Options,
) -> Result<Outcome, DriverError> {
    let mut cmd = Command::new(&opts.exe);
    cmd.arg(command)
        .envs(opts.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
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
    let getinfo = GetInfoRequest {
        command: command.to_string(),
        args: args.to_vec(),
        dispatch_dir: dispatch_dir.display().to_string(),
        app: opts.app.clone(),
        session_key: opts.session_key.clone(),
        splunkd_uri: opts.splunkd_uri.clone(),
        ..GetInfoRequest::default()
    }
    .to_json();
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

/// The getinfo chunk splunkd sends first, with the `searchinfo` fields in splunkd 8.x/9.x order.
#[derive(Debug, Clone)]
pub struct GetInfoRequest {
    pub command: String,
    /// `searchinfo.args`; `raw_args` repeats them.
    pub args: Vec<String>,
    pub dispatch_dir: String,
    pub sid: String,
    pub app: String,
    pub owner: String,
    pub session_key: String,
    pub splunkd_uri: String,
    pub splunk_version: String,
    pub preview: bool,
}

impl Default for GetInfoRequest {
    fn default() -> GetInfoRequest {
        let user = std::env::var("USER").unwrap_or_else(|_| "admin".into());
        GetInfoRequest {
            command: String::new(),
            args: Vec::new(),
            dispatch_dir: String::new(),
            sid: format!("local.{}", std::process::id()),
            app: "search".into(),
            owner: user,
            session_key: String::new(),
            splunkd_uri: String::new(),
            splunk_version: "local".into(),
            preview: false,
        }
    }
}

impl GetInfoRequest {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "action": "getinfo",
            "preview": self.preview,
            "streaming_command_will_restart": false,
            "searchinfo": {
                "args": self.args,
                "raw_args": self.args,
                "dispatch_dir": self.dispatch_dir,
                "sid": self.sid,
                "app": self.app,
                "owner": self.owner,
                "username": self.owner,
                "session_key": self.session_key,
                "splunkd_uri": self.splunkd_uri,
                "splunk_version": self.splunk_version,
                "search": "",
                "command": self.command,
                "maxresultrows": 50000,
                "earliest_time": "0",
                "latest_time": "0",
            }
        })
    }
}

/// Encodes one request chunk.
pub fn chunk(meta: &[u8], body: &[u8]) -> Vec<u8> {
    let mut c = format!("chunked 1.0,{},{}\n", meta.len(), body.len()).into_bytes();
    c.extend_from_slice(meta);
    c.extend_from_slice(body);
    c
}

/// An execute request chunk.
pub fn execute_chunk(finished: bool, body: &[u8]) -> Vec<u8> {
    let meta: &[u8] = if finished {
        br#"{"action":"execute","finished":true}"#
    } else {
        br#"{"action":"execute","finished":false}"#
    };
    chunk(meta, body)
}

/// One reply chunk as the command sent it.
#[derive(Debug, Clone)]
pub struct ReplyChunk {
    pub meta: serde_json::Value,
    /// The metadata bytes as sent (key order matters to splunkd: `inspector` before `error`).
    pub raw_meta: Vec<u8>,
    pub body: Vec<u8>,
}

impl ReplyChunk {
    /// The `error` field of a failed reply.
    pub fn error(&self) -> Option<&str> {
        self.meta.get("error").and_then(|e| e.as_str())
    }

    /// The inspector messages of one level (`INFO`, `WARN`, `ERROR`).
    pub fn messages(&self, level: &str) -> Vec<String> {
        self.meta
            .pointer("/inspector/messages")
            .and_then(|m| m.as_array())
            .map(|a| {
                a.iter()
                    .filter(|m| m[0] == level)
                    .map(|m| m[1].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The body as rows of byte cells, header first. Panics on CSV that splunkd would reject.
    pub fn byte_rows(&self) -> Vec<Vec<Vec<u8>>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(false)
            .from_reader(self.body.as_slice())
            .byte_records()
            .map(|rec| {
                rec.expect("reply body is CSV")
                    .iter()
                    .map(|f| f.to_vec())
                    .collect()
            })
            .collect()
    }

    /// The body as rows of text cells, header first.
    pub fn rows(&self) -> Vec<Vec<String>> {
        self.byte_rows()
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|f| String::from_utf8_lossy(&f).into_owned())
                    .collect()
            })
            .collect()
    }
}

/// Parses a whole reply stream strictly: canonical headers (`chunked 1.0,<m>,<b>\n`, no spaces), JSON
/// object metadata, exact lengths, nothing after the last chunk.
pub fn parse_replies(mut s: &[u8]) -> Result<Vec<ReplyChunk>, String> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let nl = s
            .iter()
            .position(|&c| c == b'\n')
            .ok_or("EOF inside a reply header")?;
        let (m, b) = canonical_header(&s[..nl])?;
        let start = nl + 1;
        if s.len() < start + m + b {
            return Err("reply shorter than its header says".into());
        }
        out.push(reply_chunk(
            s[start..start + m].to_vec(),
            s[start + m..start + m + b].to_vec(),
        )?);
        s = &s[start + m + b..];
    }
    Ok(out)
}

fn canonical_header(line: &[u8]) -> Result<(usize, usize), String> {
    let h = std::str::from_utf8(line).map_err(|e| e.to_string())?;
    let rest = h
        .strip_prefix("chunked 1.0,")
        .ok_or_else(|| format!("non-canonical header {h:?}"))?;
    let (m, b) = rest.split_once(',').ok_or("header without body length")?;
    let digits = |v: &str| !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit());
    if !digits(m) || !digits(b) {
        return Err(format!("non-canonical header {h:?}"));
    }
    Ok((
        m.parse().map_err(|_| "bad metadata length")?,
        b.parse().map_err(|_| "bad body length")?,
    ))
}

fn reply_chunk(raw_meta: Vec<u8>, body: Vec<u8>) -> Result<ReplyChunk, String> {
    let meta: serde_json::Value =
        serde_json::from_slice(&raw_meta).map_err(|e| format!("reply metadata: {e}"))?;
    if !meta.is_object() {
        return Err("reply metadata is not an object".into());
    }
    Ok(ReplyChunk {
        meta,
        raw_meta,
        body,
    })
}

/// A running command with splunkd's ends of its pipes, for conversations one chunk at a time.
pub struct Session {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Session {
    /// Starts `exe command` with `env` added to its environment; stderr is captured.
    pub fn start(
        exe: &std::path::Path,
        command: &str,
        env: &[(&str, &std::path::Path)],
    ) -> Session {
        let mut child = Command::new(exe)
            .arg(command)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Session {
            child,
            stdin,
            stdout,
        }
    }

    /// Closes our end of the command's stdin and hands it over (None if already closed).
    pub fn stdin_close(&mut self) -> Option<std::process::ChildStdin> {
        self.stdin.take()
    }

    /// Sends bytes as they are; a closed pipe is ignored (the command may have exited on an error).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let w = self.stdin.as_mut().expect("stdin open");
        let _ = w.write_all(bytes);
        let _ = w.flush();
    }

    pub fn send(&mut self, meta: &serde_json::Value, body: &[u8]) {
        self.send_raw(&chunk(&serde_json::to_vec(meta).expect("json"), body));
    }

    /// Sends a getinfo chunk and reads its reply.
    pub fn getinfo(&mut self, request: &GetInfoRequest) -> ReplyChunk {
        self.send(&request.to_json(), b"");
        self.read_reply().expect("a getinfo reply")
    }

    /// Sends an execute chunk and reads its reply.
    pub fn execute(&mut self, finished: bool, body: &[u8]) -> ReplyChunk {
        self.send_raw(&execute_chunk(finished, body));
        self.read_reply().expect("an execute reply")
    }

    /// Reads one reply strictly; None at EOF. Panics on a malformed reply (this is a test driver).
    pub fn read_reply(&mut self) -> Option<ReplyChunk> {
        let mut header = Vec::new();
        loop {
            let mut b = [0u8];
            if self.stdout.read(&mut b).expect("read reply") == 0 {
                assert!(header.is_empty(), "EOF inside a reply header: {header:?}");
                return None;
            }
            if b[0] == b'\n' {
                break;
            }
            header.push(b[0]);
            assert!(
                header.len() < 64,
                "runaway header {:?}",
                String::from_utf8_lossy(&header)
            );
        }
        let (m, b) = canonical_header(&header).unwrap_or_else(|e| panic!("{e}"));
        let mut meta = vec![0u8; m];
        self.stdout.read_exact(&mut meta).expect("reply metadata");
        let mut body = vec![0u8; b];
        self.stdout.read_exact(&mut body).expect("reply body");
        Some(reply_chunk(meta, body).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Closes stdin, expects no further bytes, and returns the exit status and stderr.
    pub fn finish(mut self) -> (i32, String) {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        self.stdout.read_to_end(&mut rest).expect("read stdout");
        assert!(
            rest.is_empty(),
            "stray bytes after the last reply: {:?}",
            String::from_utf8_lossy(&rest)
        );
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let status = self.child.wait().expect("wait");
        (status.code().unwrap_or(-1), err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_reply_parsing() {
        let ok = b"chunked 1.0,17,2\n{\"finished\":true}a\n";
        let r = parse_replies(ok).unwrap();
        assert_eq!(r[0].meta["finished"], true);
        assert_eq!(r[0].body, b"a\n");
        assert!(parse_replies(b"chunked 1.0, 2,0\n{}").is_err());
        assert!(parse_replies(b"chunked 1.0,2,5\n{}ab").is_err());
        assert!(parse_replies(b"chunked 1.0,2,0\n[]").is_err());
        assert!(parse_replies(b"chunked 1.0,2,0\n{}x").is_err());
    }

    #[test]
    fn getinfo_carries_the_arguments() {
        let g = GetInfoRequest {
            command: "apply".into(),
            args: vec!["m".into(), "threshold=0.1".into()],
            ..Default::default()
        }
        .to_json();
        assert_eq!(g["action"], "getinfo");
        assert_eq!(g["searchinfo"]["args"][1], "threshold=0.1");
        assert_eq!(g["searchinfo"]["command"], "apply");
    }
}
