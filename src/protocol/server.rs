//! The SCPv2 session loop: one getinfo exchange, then one reply per execute chunk until EOF.
//!
//! Every failure, a panic included, reaches splunkd as an ERROR inspector message plus the `error`
//! field, followed by exit status 1. End of input or a closed pipe (a cancelled search) ends quietly.

use std::io::{self, BufRead, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::framing::{ChunkReader, write_chunk, write_chunk_head, write_chunk_streamed};
use super::metadata::{Level, Reply, Request};
use crate::commands::{self, Context, Environment, Output, ReplyBody};
use crate::error::Error;

/// How a session ended.
enum End {
    /// Normal end, or splunkd went away: nothing more to say.
    Quiet,
    /// An error reply was sent (or could not be): exit 1.
    Failed,
}

/// Runs one command session over `input`/`output` and returns the process exit status.
pub fn serve<R: BufRead, W: Write>(
    input: R,
    mut output: W,
    command: &str,
    env: &Environment,
) -> i32 {
    let mut reader = ChunkReader::new(input, env.config.max_chunk_bytes());
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        session(&mut reader, &mut output, command, env)
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
                &format!("internal error in smbdensity: {what}"),
                Vec::new(),
            );
            1
        }
    }
}

fn send_error<W: Write>(w: &mut W, message: &str, earlier: Vec<(Level, String)>) -> io::Result<()> {
    write_chunk(w, &Reply::error(message, earlier).to_json(), b"")
}

/// Sends an error reply and ends the session; a closed pipe makes it quiet.
fn fail<W: Write>(w: &mut W, err: &Error, earlier: Vec<(Level, String)>) -> End {
    let _ = send_error(w, &err.to_string(), earlier);
    End::Failed
}

fn parse_request(chunk: &[u8]) -> Result<Request, Error> {
    let v: serde_json::Value = serde_json::from_slice(chunk)
        .map_err(|e| Error::Protocol(format!("chunk metadata is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(Error::Protocol(
            "chunk metadata is not a JSON object".into(),
        ));
    }
    serde_json::from_value(v)
        .map_err(|e| Error::Protocol(format!("chunk metadata has a bad field: {e}")))
}

fn session<R: BufRead, W: Write>(
    reader: &mut ChunkReader<R>,
    w: &mut W,
    command: &str,
    env: &Environment,
) -> End {
    let first = match reader.read_chunk() {
        Ok(None) => return End::Quiet,
        Ok(Some(c)) => c,
        Err(e) => return fail(w, &Error::Framing(e), Vec::new()),
    };
    let request = match parse_request(&first.metadata) {
        Ok(r) => r,
        Err(e) => return fail(w, &e, Vec::new()),
    };
    if request.action.as_deref() != Some("getinfo") {
        let e = Error::Protocol(format!(
            "expected a getinfo chunk first, got action {:?}",
            request.action.as_deref().unwrap_or("(none)")
        ));
        return fail(w, &e, Vec::new());
    }
    let ctx = Context {
        info: request.searchinfo.unwrap_or_default(),
        preview: request.preview,
        env: env.clone(),
    };
    let mut cmd = match commands::build(command, &ctx) {
        Ok(c) => c,
        Err(e) => return fail(w, &e, Vec::new()),
    };
    if write_chunk(w, &cmd.getinfo().to_json(), b"").is_err() {
        return End::Quiet;
    }
    loop {
        let chunk = match reader.read_chunk() {
            Ok(None) => {
                // The process exits next: leave a model of a million groups to the OS rather than
                // freeing it piece by piece.
                std::mem::forget(cmd);
                return End::Quiet;
            }
            Ok(Some(c)) => c,
            Err(e) => return fail(w, &Error::Framing(e), Vec::new()),
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
                    &Error::Protocol("a second getinfo chunk arrived".into()),
                    Vec::new(),
                );
            }
            other => {
                let e = Error::Protocol(format!("unknown action {:?}", other.unwrap_or("(none)")));
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
                            "smbdensity: internal error: reply body was {n} bytes, {} declared",
                            body.len
                        );
                        return End::Failed;
                    }
                    Err(Error::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                        return End::Quiet;
                    }
                    Err(e) => {
                        eprintln!("smbdensity: writing the reply failed: {e}");
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

    #[test]
    fn a_panic_becomes_an_error_reply() {
        struct Boom;
        impl Read for Boom {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                panic!("kaboom")
            }
        }
        let mut out = Vec::new();
        let code = serve(
            BufReader::new(Boom),
            &mut out,
            "apply",
            &Environment::default(),
        );
        assert_eq!(code, 1);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("chunked 1.0,"), "{text}");
        assert!(
            text.contains(r#"["ERROR","internal error in smbdensity: kaboom"]"#),
            "{text}"
        );
        assert!(
            text.ends_with(r#""error":"internal error in smbdensity: kaboom"}"#),
            "{text}"
        );
    }

    #[test]
    fn eof_before_anything_is_a_clean_exit() {
        let mut out = Vec::new();
        assert_eq!(serve(&b""[..], &mut out, "fit", &Environment::default()), 0);
        assert!(out.is_empty());
    }
}
