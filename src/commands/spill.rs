//! Spill files for `fit`: the input chunks it must return scored after the last one arrives, and the
//! reply body it builds from them, kept on disk in the search's dispatch directory rather than in memory.
//!
//! Files are created unlinked (`O_TMPFILE` or create-then-unlink), so nothing is left behind even when
//! splunkd kills the process.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Opens an anonymous temporary file in `dir` when it is usable, else in the system temp directory.
pub fn temp_file(dir: Option<&Path>) -> io::Result<File> {
    match dir.filter(|d| !d.as_os_str().is_empty() && d.is_dir()) {
        Some(d) => tempfile::tempfile_in(d).or_else(|_| tempfile::tempfile()),
        None => tempfile::tempfile(),
    }
}

/// The spill tag of a chunk spilled as its raw body. Any other tag `n` marks a chunk of compact records
/// whose header was the first `n` columns of the union of the headers so far.
pub const RAW: u32 = 0;

/// The search's dispatch directory, where a fit spills, when splunkd gave one.
pub fn dispatch_dir(info: &scpv2::metadata::SearchInfo) -> Option<&Path> {
    Some(Path::new(&info.dispatch_dir)).filter(|p| !p.as_os_str().is_empty())
}

/// Appends one execute chunk of an `events` fit to its spill, creating the spill in `dir` on first
/// use: the raw `body` when `tag` is [`RAW`], else the chunk's compact `records`.
pub fn spill_chunk(
    spill: &mut Option<Spill>,
    dir: Option<&Path>,
    tag: u32,
    body: &[u8],
    records: &[u8],
) -> io::Result<()> {
    let spill = match spill {
        Some(s) => s,
        None => spill.insert(Spill::new(dir)?),
    };
    spill.push(tag, if tag == RAW { body } else { records })
}

/// Chunks appended to one file and read back in order, each with a caller's tag (what kind of chunk
/// it is).
pub struct Spill {
    file: BufWriter<File>,
    chunks: Vec<(u64, u32)>,
}

impl Spill {
    pub fn new(dir: Option<&Path>) -> io::Result<Spill> {
        Ok(Spill {
            file: BufWriter::with_capacity(1 << 20, temp_file(dir)?),
            chunks: Vec::new(),
        })
    }

    pub fn push(&mut self, tag: u32, body: &[u8]) -> io::Result<()> {
        self.file.write_all(body)?;
        self.chunks.push((body.len() as u64, tag));
        Ok(())
    }

    /// Calls `f` with each spilled chunk's tag and bytes in order, one at a time.
    pub fn replay(
        mut self,
        f: impl FnMut(u32, &[u8]) -> crate::error::Result<()>,
    ) -> crate::error::Result<()> {
        self.replay_again(f)
    }

    /// As [`Spill::replay`], but keeps the spill so it can be replayed again.
    pub fn replay_again(
        &mut self,
        mut f: impl FnMut(u32, &[u8]) -> crate::error::Result<()>,
    ) -> crate::error::Result<()> {
        self.file.flush()?;
        let file = self.file.get_mut();
        file.seek(SeekFrom::Start(0))?;
        let mut buf = Vec::new();
        for &(len, tag) in &self.chunks {
            buf.clear();
            let got = (&mut *file).take(len).read_to_end(&mut buf)?;
            if got as u64 != len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "spill file shorter than written",
                )
                .into());
            }
            f(tag, &buf)?;
        }
        Ok(())
    }
}
