//! SCPv2 chunk framing: `chunked 1.0,<meta_len>,<body_len>\n`, then exactly that many bytes of JSON
//! metadata and CSV body. Lengths count bytes; nothing separates chunks.

use std::io::{self, BufRead, Read, Write};

/// The longest header line we read before deciding it is garbage.
const MAX_HEADER_LINE: u64 = 128;

/// A framing error. Positions are 1-based chunk numbers in the input stream.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    #[error(
        "malformed chunk header at chunk {chunk}: {header:?} (expected \"chunked 1.0,<metadata length>,<body length>\")"
    )]
    BadHeader { chunk: u64, header: String },
    #[error("chunk {chunk} declares {declared} bytes, above the limit of {limit} bytes{hint}")]
    TooLarge {
        chunk: u64,
        declared: u64,
        limit: u64,
        /// Where the limit is set, as the command's documentation names it (e.g. " (max_chunk_size_mb
        /// in mycommand.conf)"); empty when the caller gave none.
        hint: String,
    },
    #[error("input ended inside chunk {chunk} ({what} truncated)")]
    Truncated { chunk: u64, what: &'static str },
    #[error("reading chunk {chunk}: {source}")]
    Io { chunk: u64, source: io::Error },
}

/// One chunk as read off the wire.
#[derive(Debug, Default)]
pub struct Chunk {
    pub metadata: Vec<u8>,
    pub body: Vec<u8>,
}

/// Reads chunks from a buffered stream, refusing any chunk larger than `max_chunk_bytes` before
/// allocating for it.
pub struct ChunkReader<R> {
    inner: R,
    max_chunk_bytes: u64,
    limit_hint: String,
    chunks_read: u64,
}

impl<R: BufRead> ChunkReader<R> {
    pub fn new(inner: R, max_chunk_bytes: u64) -> Self {
        ChunkReader {
            inner,
            max_chunk_bytes,
            limit_hint: String::new(),
            chunks_read: 0,
        }
    }

    /// Names the setting that raises the chunk limit, so a refused chunk's error tells the user what to
    /// change (for example `"max_chunk_size_mb in mycommand.conf"`).
    pub fn with_limit_hint(mut self, setting: &str) -> Self {
        self.limit_hint = if setting.is_empty() {
            String::new()
        } else {
            format!(" ({setting})")
        };
        self
    }

    /// The underlying stream, positioned after the last chunk read.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The number of the chunk most recently started (1-based).
    pub fn chunk_number(&self) -> u64 {
        self.chunks_read
    }

    /// Reads the next chunk. `Ok(None)` is a clean end of input at a chunk boundary.
    pub fn read_chunk(&mut self) -> Result<Option<Chunk>, FramingError> {
        let chunk = self.chunks_read + 1;
        let mut line = Vec::with_capacity(32);
        loop {
            line.clear();
            let n = (&mut self.inner)
                .take(MAX_HEADER_LINE)
                .read_until(b'\n', &mut line)
                .map_err(|source| FramingError::Io { chunk, source })?;
            if n == 0 {
                return Ok(None);
            }
            // Old SDKs wrote a stray newline after a chunk; blank lines between chunks carry nothing.
            if !line.iter().all(|c| matches!(c, b'\n' | b'\r')) {
                break;
            }
        }
        self.chunks_read = chunk;
        if line.last() != Some(&b'\n') {
            if (line.len() as u64) < MAX_HEADER_LINE && parse_header_prefix(&line) {
                return Err(FramingError::Truncated {
                    chunk,
                    what: "header",
                });
            }
            return Err(bad_header(chunk, &line));
        }
        let (meta_len, body_len) = parse_header(&line).ok_or_else(|| bad_header(chunk, &line))?;
        let declared = meta_len.saturating_add(body_len);
        if declared > self.max_chunk_bytes {
            return Err(FramingError::TooLarge {
                chunk,
                declared,
                limit: self.max_chunk_bytes,
                hint: self.limit_hint.clone(),
            });
        }
        let metadata = self.read_exact_vec(meta_len, chunk, "metadata")?;
        let body = self.read_exact_vec(body_len, chunk, "body")?;
        Ok(Some(Chunk { metadata, body }))
    }

    fn read_exact_vec(
        &mut self,
        len: u64,
        chunk: u64,
        what: &'static str,
    ) -> Result<Vec<u8>, FramingError> {
        // Reserve up to 64 MiB from the declared length (real chunks fit, so no re-copying while the
        // body arrives); beyond that grow as bytes arrive, so a lying header on a short stream costs
        // only what was actually sent. Reserved but unwritten pages are never touched.
        let mut buf = Vec::with_capacity(len.min(64 << 20) as usize);
        let got = (&mut self.inner)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|source| FramingError::Io { chunk, source })?;
        if (got as u64) < len {
            return Err(FramingError::Truncated { chunk, what });
        }
        Ok(buf)
    }
}

fn bad_header(chunk: u64, line: &[u8]) -> FramingError {
    let shown = &line[..line.len().min(60)];
    FramingError::BadHeader {
        chunk,
        header: String::from_utf8_lossy(shown).into_owned(),
    }
}

/// True when `line` could be the start of a valid header (used to tell truncation from garbage).
fn parse_header_prefix(line: &[u8]) -> bool {
    let n = line.len().min(7);
    line[..n] == b"chunked"[..n]
}

/// Parses the SDK's lenient header form `chunked\s+1.0\s*,\s*(\d+)\s*,\s*(\d+)\s*\n`.
pub fn parse_header(line: &[u8]) -> Option<(u64, u64)> {
    let rest = line.strip_prefix(b"chunked")?;
    let rest = skip_ws(rest, true)?;
    let rest = rest.strip_prefix(b"1.0")?;
    let rest = skip_ws(rest, false)?.strip_prefix(b",")?;
    let (meta, rest) = digits(skip_ws(rest, false)?)?;
    let rest = skip_ws(rest, false)?.strip_prefix(b",")?;
    let (body, rest) = digits(skip_ws(rest, false)?)?;
    let rest = skip_ws(rest, false)?;
    (rest.is_empty()).then_some((meta, body))
}

fn skip_ws(s: &[u8], at_least_one: bool) -> Option<&[u8]> {
    let n = s
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    (!at_least_one || n > 0).then_some(&s[n..])
}

fn digits(s: &[u8]) -> Option<(u64, &[u8])> {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let v = std::str::from_utf8(&s[..n]).ok()?.parse().ok()?;
    Some((v, &s[n..]))
}

/// Writes one chunk and flushes: splunkd waits for each reply, and a reply sitting in a buffer hangs
/// the search.
pub fn write_chunk<W: Write>(w: &mut W, metadata: &[u8], body: &[u8]) -> io::Result<()> {
    writeln!(w, "chunked 1.0,{},{}", metadata.len(), body.len())?;
    w.write_all(metadata)?;
    w.write_all(body)?;
    w.flush()
}

/// Writes a chunk's header and metadata; exactly `body_len` body bytes must follow, then a flush.
pub fn write_chunk_head<W: Write>(w: &mut W, metadata: &[u8], body_len: u64) -> io::Result<()> {
    writeln!(w, "chunked 1.0,{},{}", metadata.len(), body_len)?;
    w.write_all(metadata)
}

/// Writes one chunk whose body is streamed from `body` (exactly `body_len` bytes), then flushes.
pub fn write_chunk_streamed<W: Write, B: Read>(
    w: &mut W,
    metadata: &[u8],
    body_len: u64,
    body: &mut B,
) -> io::Result<()> {
    writeln!(w, "chunked 1.0,{},{}", metadata.len(), body_len)?;
    w.write_all(metadata)?;
    let copied = io::copy(&mut body.take(body_len), w)?;
    if copied != body_len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "reply body shorter than declared",
        ));
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> ChunkReader<&[u8]> {
        ChunkReader::new(bytes, 1 << 30)
    }

    #[test]
    fn headers_are_lenient_like_the_sdk() {
        assert_eq!(parse_header(b"chunked 1.0,36,48108\n"), Some((36, 48108)));
        assert_eq!(parse_header(b"chunked  1.0 , 3 , 4 \r\n"), Some((3, 4)));
        assert_eq!(parse_header(b"chunked 1.0,-1,4\n"), None);
        assert_eq!(parse_header(b"chunked 2.0,1,4\n"), None);
        assert_eq!(parse_header(b"chunked1.0,1,4\n"), None);
        assert_eq!(parse_header(b"chunked 1.0,99999999999999999999,4\n"), None);
    }

    #[test]
    fn reads_back_to_back_chunks_by_byte_length() {
        let mut r = reader("chunked 1.0,2,5\n{}Thé\nchunked 1.0,2,0\n{}".as_bytes());
        let c = r.read_chunk().unwrap().unwrap();
        assert_eq!(c.body, "Thé\n".as_bytes());
        let c = r.read_chunk().unwrap().unwrap();
        assert!(c.body.is_empty());
        assert!(r.read_chunk().unwrap().is_none());
    }

    #[test]
    fn blank_lines_between_chunks_are_skipped() {
        let mut r = reader(b"chunked 1.0,2,0\n{}\n\r\nchunked 1.0,2,0\n{}\n");
        assert!(r.read_chunk().unwrap().is_some());
        assert!(r.read_chunk().unwrap().is_some());
        assert!(r.read_chunk().unwrap().is_none());
    }

    #[test]
    fn refuses_absurd_lengths_before_allocating() {
        let mut r = ChunkReader::new(&b"chunked 1.0,2,1000000000000\n{}"[..], 1 << 30);
        assert!(matches!(
            r.read_chunk(),
            Err(FramingError::TooLarge {
                declared: 1000000000002,
                ..
            })
        ));
    }

    #[test]
    fn truncation_and_garbage_are_distinct() {
        assert!(matches!(
            reader(b"chunked 1.0,10,0\n{}").read_chunk(),
            Err(FramingError::Truncated {
                what: "metadata",
                ..
            })
        ));
        assert!(matches!(
            reader(b"chunked 1.0,2,10\n{}ab").read_chunk(),
            Err(FramingError::Truncated { what: "body", .. })
        ));
        assert!(matches!(
            reader(b"chunked 1.0,2").read_chunk(),
            Err(FramingError::Truncated { what: "header", .. })
        ));
        assert!(matches!(
            reader(b"GET / HTTP/1.1\r\n").read_chunk(),
            Err(FramingError::BadHeader { .. })
        ));
        assert!(matches!(
            reader(&[b'x'; 500]).read_chunk(),
            Err(FramingError::BadHeader { .. })
        ));
    }

    #[test]
    fn writes_canonical_headers_and_byte_lengths() {
        let mut out = Vec::new();
        write_chunk(&mut out, br#"{"finished":true}"#, "name\nThé\n".as_bytes()).unwrap();
        assert_eq!(
            out,
            "chunked 1.0,17,10\n{\"finished\":true}name\nThé\n".as_bytes()
        );
    }
}
