//! The SCPv2 session loop: one getinfo exchange, then one reply per execute chunk until EOF.
//!
//! Every failure, a panic included, reaches splunkd as an ERROR inspector message plus the `error`
//! field, followed by exit status 1. End of input or a closed pipe (a cancelled search) ends quietly.

use std::fmt::Display;
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::framing::{ChunkReader, write_chunk, write_chunk_head, write_chunk_streamed};
use crate::metadata::{Level, Reply, Request, SearchInfo};

/// What a command learns from the getinfo chunk.
#[derive(Debug, Clone, Default)]
pub struct GetInfo {
    pub searchinfo: SearchInfo,
    /// splunkd is computing preview results (MLTK's `fit` does no work then).
    pub preview: bool,
}

/// A custom search command, driven by [`Server::serve`]: a side-effect-free getinfo reply, then one
/// [`Output`] per execute chunk.
pub trait Command {
    /// The error a command reports; its text is what the user reads in the job inspector.
    type Error: Display;
    /// The getinfo reply (`type`, `required_fields`, ...). Must not touch anything outside the process:
    /// splunkd also spawns commands just to parse a search.
    fn getinfo(&mut self) -> Reply;
    /// Handles one execute chunk. `chunk` is its 1-based number in the input stream; `finished` is
    /// splunkd's flag (the last chunk of the input).
    fn execute(
        &mut self,
        body: &[u8],
        finished: bool,
        chunk: u64,
        out: &mut Output,
    ) -> Result<(), Self::Error>;
}

impl<C: Command + ?Sized> Command for Box<C> {
    type Error = C::Error;
    fn getinfo(&mut self) -> Reply {
        (**self).getinfo()
    }
    fn execute(
        &mut self,
        body: &[u8],
        finished: bool,
        chunk: u64,
        out: &mut Output,
    ) -> Result<(), Self::Error> {
        (**self).execute(body, finished, chunk, out)
    }
}

/// The body of a reply.
#[derive(Debug, Default)]
pub enum ReplyBody {
    #[default]
    Empty,
    Bytes(Vec<u8>),
    /// A large body streamed from a file, positioned at its start.
    File {
        file: File,
        len: u64,
    },
    /// A large body written straight into the reply after its header.
    Stream(StreamedBody),
}

/// A reply body of known length that is produced while it is sent, so a large reply needs neither
/// memory nor a file of its own (measure it in a dry pass first).
pub struct StreamedBody {
    /// Exactly the number of bytes `write` produces.
    pub len: u64,
    /// Writes the body. Returns the number of bytes written, which must equal `len`.
    pub write: WriteBody,
}

/// Writes a [`StreamedBody`] into the reply and returns how many bytes it wrote.
pub type WriteBody = Box<dyn FnOnce(&mut dyn Write) -> io::Result<u64>>;

impl std::fmt::Debug for StreamedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamedBody")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// What a command produces for one execute chunk.
#[derive(Debug, Default)]
pub struct Output {
    pub messages: Vec<(Level, String)>,
    pub body: ReplyBody,
    /// Overrides the echoed `finished` flag (generating commands decide it themselves).
    pub finished: Option<bool>,
}

impl Output {
    pub fn warn(&mut self, msg: impl Into<String>) {
        self.messages.push((Level::Warn, msg.into()));
    }

    pub fn info(&mut self, msg: impl Into<String>) {
        self.messages.push((Level::Info, msg.into()));
    }
}

/// A protocol error of splunkd's side of the conversation (the command never saw it).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("protocol error: {0}")]
    Framing(#[from] crate::framing::FramingError),
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Serves one command over a pair of streams, as splunkd runs it: `Server::new("mycmd").serve(...)`.
#[derive(Debug, Clone)]
pub struct Server {
    program: String,
    max_chunk_bytes: u64,
    limit_hint: String,
}

/// How a session ended.
enum End {
    /// Normal end, or splunkd went away: nothing more to say.
    Quiet,
    /// An error reply was sent (or could not be): exit 1.
    Failed,
}

impl Server {
    /// A server for the program `program` (named in internal-error messages). Chunks are limited to
    /// 1 GiB until [`Server::max_chunk_bytes`] says otherwise.
    pub fn new(program: &str) -> Server {
        Server {
            program: program.to_string(),
            max_chunk_bytes: 1 << 30,
            limit_hint: String::new(),
        }
    }

    /// Refuses chunks that declare more than `limit` bytes, before allocating for them; `setting`
    /// names where the user raises it (shown in the error).
    pub fn max_chunk_bytes(mut self, limit: u64, setting: &str) -> Server {
        self.max_chunk_bytes = limit;
        self.limit_hint = setting.to_string();
        self
    }

    /// Runs one session and returns the process exit status (0, or 1 after an error reply). `build`
    /// makes the command from the getinfo chunk; its error becomes the getinfo reply's error.
    pub fn serve<R, W, C, F>(&self, input: R, mut output: W, build: F) -> i32
    where
        R: BufRead,
        W: Write,
        C: Command,
        F: FnOnce(&GetInfo) -> Result<C, C::Error>,
    {
        let mut reader =
            ChunkReader::new(input, self.max_chunk_bytes).with_limit_hint(&self.limit_hint);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            session(&mut reader, &mut output, build)
        }));
        match outcome {
            Ok(End::Quiet) => 0,
            Ok(End::Failed) => 1,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                let _ = send_error(
                    &mut output,
                    &format!("internal error in {}: {what}", self.program),
                    Vec::new(),
                );
                1
            }
        }
    }
}

fn send_error<W: Write>(w: &mut W, message: &str, earlier: Vec<(Level, String)>) -> io::Result<()> {
    write_chunk(w, &Reply::error(message, earlier).to_json(), b"")
}

/// Sends an error reply and ends the session; a closed pipe makes it quiet.
fn fail<W: Write>(w: &mut W, err: &dyn Display, earlier: Vec<(Level, String)>) -> End {
    let _ = send_error(w, &err.to_string(), earlier);
    End::Failed
}

fn parse_request(chunk: &[u8]) -> Result<Request, SessionError> {
    let v: serde_json::Value = serde_json::from_slice(chunk)
        .map_err(|e| SessionError::Protocol(format!("chunk metadata is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(SessionError::Protocol(
            "chunk metadata is not a JSON object".into(),
        ));
    }
    serde_json::from_value(v)
        .map_err(|e| SessionError::Protocol(format!("chunk metadata has a bad field: {e}")))
}

fn session<R, W, C, F>(reader: &mut ChunkReader<R>, w: &mut W, build: F) -> End
where
    R: BufRead,
    W: Write,
    C: Command,
    F: FnOnce(&GetInfo) -> Result<C, C::Error>,
{
    let first = match reader.read_chunk() {
        Ok(None) => return End::Quiet,
        Ok(Some(c)) => c,
        Err(e) => return fail(w, &SessionError::Framing(e), Vec::new()),
    };
    let request = match parse_request(&first.metadata) {
        Ok(r) => r,
        Err(e) => return fail(w, &e, Vec::new()),
    };
    if request.action.as_deref() != Some("getinfo") {
        let e = SessionError::Protocol(format!(
            "expected a getinfo chunk first, got action {:?}",
            request.action.as_deref().unwrap_or("(none)")
        ));
        return fail(w, &e, Vec::new());
    }
    let info = GetInfo {
        searchinfo: request.searchinfo.unwrap_or_default(),
        preview: request.preview,
    };
    let mut cmd = match build(&info) {
        Ok(c) => c,
        Err(e) => return fail(w, &e, Vec::new()),
    };
    if write_chunk(w, &cmd.getinfo().to_json(), b"").is_err() {
        return End::Quiet;
    }
    loop {
        let chunk = match reader.read_chunk() {
            Ok(None) => {
                // The process exits next: leave a large state (a model of a million groups) to the OS
                // rather than freeing it piece by piece.
                std::mem::forget(cmd);
                return End::Quiet;
            }
            Ok(Some(c)) => c,
            Err(e) => return fail(w, &SessionError::Framing(e), Vec::new()),
        };
        let request = match parse_request(&chunk.metadata) {
            Ok(r) => r,
            Err(e) => return fail(w, &e, Vec::new()),
        };
        match request.action.as_deref() {
            Some("execute") => {}
            Some("getinfo") => {
                return fail(
                    w,
                    &SessionError::Protocol("a second getinfo chunk arrived".into()),
                    Vec::new(),
                );
            }
            other => {
                let e = SessionError::Protocol(format!(
                    "unknown action {:?}",
                    other.unwrap_or("(none)")
                ));
                return fail(w, &e, Vec::new());
            }
        }
        let mut out = Output::default();
        if let Err(e) = cmd.execute(
            &chunk.body,
            request.finished,
            reader.chunk_number(),
            &mut out,
        ) {
            return fail(w, &e, out.messages);
        }
        let reply = Reply {
            finished: Some(out.finished.unwrap_or(request.finished)),
            ..Default::default()
        }
        .with_messages(out.messages);
        let sent = match out.body {
            ReplyBody::Empty => write_chunk(w, &reply.to_json(), b""),
            ReplyBody::Bytes(b) => write_chunk(w, &reply.to_json(), &b),
            ReplyBody::File { mut file, len } => {
                write_chunk_streamed(w, &reply.to_json(), len, &mut file)
            }
            ReplyBody::Stream(body) => {
                if write_chunk_head(w, &reply.to_json(), body.len).is_err() {
                    return End::Quiet;
                }
                // The header is out: a failure now cannot become an error reply, since splunkd is
                // reading a body of the declared length. Say why on stderr (search.log) and exit 1.
                match (body.write)(w) {
                    Ok(n) if n == body.len => w.flush(),
                    Ok(n) => {
                        eprintln!(
                            "internal error: reply body was {n} bytes, {} declared",
                            body.len
                        );
                        return End::Failed;
                    }
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return End::Quiet,
                    Err(e) => {
                        eprintln!("writing the reply failed: {e}");
                        return End::Failed;
                    }
                }
            }
        };
        if sent.is_err() {
            return End::Quiet;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Read};

    struct Echo;
    impl Command for Echo {
        type Error = String;
        fn getinfo(&mut self) -> Reply {
            Reply {
                kind: Some("stateful"),
                ..Default::default()
            }
        }
        fn execute(
            &mut self,
            body: &[u8],
            _: bool,
            _: u64,
            out: &mut Output,
        ) -> Result<(), String> {
            out.body = ReplyBody::Bytes(body.to_vec());
            Ok(())
        }
    }

    #[test]
    fn a_panic_becomes_an_error_reply() {
        struct Boom;
        impl Read for Boom {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                panic!("kaboom")
            }
        }
        let mut out = Vec::new();
        let code = Server::new("mycmd").serve(BufReader::new(Boom), &mut out, |_| Ok(Echo));
        assert_eq!(code, 1);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("chunked 1.0,"), "{text}");
        assert!(
            text.contains(r#"["ERROR","internal error in mycmd: kaboom"]"#),
            "{text}"
        );
        assert!(
            text.ends_with(r#""error":"internal error in mycmd: kaboom"}"#),
            "{text}"
        );
    }

    #[test]
    fn eof_before_anything_is_a_clean_exit() {
        let mut out = Vec::new();
        assert_eq!(Server::new("x").serve(&b""[..], &mut out, |_| Ok(Echo)), 0);
        assert!(out.is_empty());
    }

    #[test]
    fn a_build_error_is_the_getinfo_reply() {
        let mut out = Vec::new();
        let input = b"chunked 1.0,20,0\n{\"action\":\"getinfo\"}";
        let code = Server::new("x").serve(&input[..], &mut out, |_| {
            Err::<Echo, _>("bad argument \"y\"".to_string())
        });
        assert_eq!(code, 1);
        let meta = r#"{"inspector":{"messages":[["ERROR","bad argument \"y\""]]},"finished":true,"error":"bad argument \"y\""}"#;
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("chunked 1.0,{},0\n{meta}", meta.len())
        );
    }

    #[test]
    fn the_chunk_limit_names_its_setting() {
        let mut out = Vec::new();
        let input = b"chunked 1.0,20,999999\n{\"action\":\"getinfo\"}";
        let code = Server::new("x")
            .max_chunk_bytes(1000, "max_mb in x.conf")
            .serve(&input[..], &mut out, |_| Ok(Echo));
        assert_eq!(code, 1);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("above the limit of 1000 bytes (max_mb in x.conf)"),
            "{text}"
        );
    }
}
