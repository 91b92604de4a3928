//! Real splunkd traffic recorded by splunk-sdk-python (Apache-2.0; see
//! `tests/data/splunk-sdk-python/README.md` for provenance and attribution): every execute chunk frames
//! and parses, byte-counted the way splunkd counts.

use std::io::Read;
use std::path::PathBuf;

use scpv2::body::BodyReader;
use scpv2::framing::{ChunkReader, FramingError};

fn recording(rel: &str) -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/data/splunk-sdk-python/tests",
        rel,
    ]
    .iter()
    .collect();
    let mut gz = flate2::read::GzDecoder::new(
        std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    );
    let mut bytes = Vec::new();
    gz.read_to_end(&mut bytes).unwrap();
    bytes
}

const SDK63: &str = "searchcommands/recordings/scpv2/Splunk-6.3/";

/// Reads every chunk; returns (execute bodies' row counts, the error that ended the stream, if any).
fn parse_stream(bytes: &[u8]) -> (Vec<u64>, Option<FramingError>) {
    let mut r = ChunkReader::new(bytes, 1 << 30);
    let mut rows = Vec::new();
    loop {
        match r.read_chunk() {
            Ok(None) => return (rows, None),
            Err(e) => return (rows, Some(e)),
            Ok(Some(c)) => {
                let meta: serde_json::Value = serde_json::from_slice(&c.metadata).unwrap();
                if meta["action"] == "execute" {
                    let mut body = BodyReader::new(&c.body).expect("execute body parses");
                    let mut rec = csv::ByteRecord::new();
                    let mut n = 0;
                    while body.read(&mut rec).expect("row parses") {
                        n += 1;
                    }
                    rows.push(n);
                }
            }
        }
    }
}

#[test]
fn countmatches_counts_bytes_not_characters() {
    let (rows, end) = parse_stream(&recording(&format!("{SDK63}countmatches.input.gz")));
    assert!(end.is_none());
    assert_eq!(
        rows,
        [500],
        "a 48,108-byte body with 14,373 non-ASCII bytes and embedded newlines"
    );
}

#[test]
fn sum_map_large_chunk() {
    let (rows, end) = parse_stream(&recording(&format!("{SDK63}sum.map.input.gz")));
    assert!(end.is_none());
    assert_eq!(rows, [50_000], "one 16 MB chunk");
}

#[test]
fn sum_reduce_smallest_example() {
    let (rows, end) = parse_stream(&recording(&format!("{SDK63}sum.reduce.input.gz")));
    assert!(end.is_none());
    assert_eq!(rows, [1]);
}

#[test]
fn multibyte_input_nine_execute_chunks() {
    let (rows, end) = parse_stream(&recording("unit/data/custom_search/multibyte_input.gz"));
    assert!(end.is_none());
    assert_eq!(rows.len(), 9, "8 non-final chunks and a final one");
}

#[test]
fn generatehello_is_truncated() {
    let (_, end) = parse_stream(&recording(&format!("{SDK63}generatehello.input.gz")));
    assert!(
        matches!(end, Some(FramingError::Truncated { chunk: 2, .. })),
        "{end:?}"
    );
}

#[test]
fn pypygeneratetext_is_getinfo_only() {
    let (rows, end) = parse_stream(&recording(&format!("{SDK63}pypygeneratetext.input.gz")));
    assert!(end.is_none() && rows.is_empty(), "{rows:?} {end:?}");
}
