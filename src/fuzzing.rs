//! Fuzz harnesses, shared by the `cargo fuzz` targets in `fuzz/` and by `tests/fuzz_corpus.rs`, which
//! replays the committed corpus through the same functions on the stable toolchain.
//!
//! Each harness takes arbitrary bytes, must never panic (other than through the invariant checks below),
//! never hang and never allocate more than a small multiple of its input.

use crate::model::ModelBody;
use crate::model::store::{self, MAGIC};
use crate::spl;
use scpv2::body::{BodyReader, FieldValue, field_value, mv_decode, mv_encode};
use scpv2::framing::{ChunkReader, parse_header};

/// The chunk limit the chunk-reader harness uses: small, so that lengths above it are exercised.
pub const FUZZ_MAX_CHUNK: u64 = 1 << 16;

/// The chunk reader over an arbitrary stream: every chunk it returns fits the limit and the declared
/// lengths, and it stops (error or clean end) without reading past the input.
pub fn chunk_reader(data: &[u8]) {
    let mut r = ChunkReader::new(data, FUZZ_MAX_CHUNK);
    let mut total = 0usize;
    while let Ok(Some(c)) = r.read_chunk() {
        let n = c.metadata.len() + c.body.len();
        assert!(n as u64 <= FUZZ_MAX_CHUNK, "chunk above the limit");
        total += n;
        assert!(total <= data.len(), "more chunk bytes than input bytes");
    }
    // The header parser on its own, on the first line.
    let line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    if let Some((m, b)) = parse_header(line) {
        // A parsed header is one the writer could have produced (modulo spacing).
        let canon = format!("chunked 1.0,{m},{b}");
        assert_eq!(parse_header(canon.as_bytes()), Some((m, b)));
    }
}

/// The CSV body reader and multivalue decoder over an arbitrary body.
pub fn body(data: &[u8]) {
    if let Ok(mut r) = BodyReader::new(data) {
        let header = r.header.clone();
        let mut rec = csv::ByteRecord::new();
        let mut rows = 0usize;
        while let Ok(true) = r.read(&mut rec) {
            rows += 1;
            assert!(rows <= data.len(), "more rows than bytes");
            assert_eq!(rec.len(), header.len(), "a ragged row was accepted");
            for col in 0..header.len() {
                match field_value(&header, &rec, Some(col)) {
                    FieldValue::Empty => {}
                    FieldValue::One(v) => assert!(!v.is_empty()),
                    FieldValue::Many(v) => assert!(v.len() >= 2),
                }
            }
            // Every scoring path parses numbers from these cells.
            for f in rec.iter() {
                let _ = crate::commands::score::parse_number(f);
            }
        }
    }
    multivalue(data);
}

/// Multivalue text: decoding never fails, and decode ∘ encode is the identity on decoded values.
pub fn multivalue(data: &[u8]) {
    let values = mv_decode(data);
    let encoded = mv_encode(values.iter());
    assert_eq!(mv_decode(&encoded), values, "mv round trip");
}

/// The SPL argument parsers, over a command line tokenized as the driver does and over raw tokens
/// split at NUL bytes (splunkd hands over tokens, which may hold anything).
pub fn spl_args(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(tokens) = spl::tokenize(&text) {
        check_spl(&tokens);
    }
    let tokens: Vec<String> = data
        .split(|&b| b == 0)
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    check_spl(&tokens);
}

fn check_spl(tokens: &[String]) {
    if let Ok(fit) = spl::parse_fit(tokens) {
        if let Some(m) = &fit.into {
            assert!(
                spl::is_valid_model_name(&m.name),
                "fit accepted {:?}",
                m.name
            );
        }
    }
    if let Ok(apply) = spl::parse_apply(tokens) {
        assert!(
            spl::is_valid_model_name(&apply.model.name),
            "apply accepted {:?}",
            apply.model.name
        );
    }
    for t in tokens {
        if let Ok(m) = spl::ModelName::parse(t) {
            assert!(spl::is_valid_model_name(&m.name));
            assert!(!m.name.contains(['/', '\\', '\0', '.']));
        }
    }
}

/// The model decoders, on the raw bytes (which almost never pass the checksums), and with the bytes
/// wrapped in a valid preamble so that the decoders proper see them (the first two bytes give the
/// header length, little-endian): as a version-2 payload, and as a version-3 payload with its section
/// checksums made right. A model that decodes re-encodes to a file that decodes the same, and apply's
/// reader takes it and finds every group.
pub fn model_decode(data: &[u8]) {
    check_decoded(data);
    if data.len() >= 2 {
        let cut = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
        let (h, p) = data[2..].split_at(cut);
        check_decoded(&wrap_model(h, p, 2));
        let mut p3 = p.to_vec();
        store::reseal_v3(&mut p3);
        check_decoded(&wrap_model(h, &p3, 3));
    }
}

/// The input [`model_decode`] wraps into the model file `file` (for seeding the fuzzer).
pub fn model_seed(file: &[u8]) -> Option<Vec<u8>> {
    let header_len = u32::from_le_bytes(file.get(12..16)?.try_into().ok()?) as usize;
    let rest = file.get(32..)?;
    let mut out = u16::try_from(header_len).ok()?.to_le_bytes().to_vec();
    out.extend_from_slice(rest);
    Some(out)
}

fn check_decoded(bytes: &[u8]) {
    let flat = store::decode_flat(bytes.to_vec());
    if let Ok(m) = store::decode(bytes) {
        let again = store::encode_model(&m);
        let m2 = store::decode(&again).expect("a re-encoded model decodes");
        assert_eq!(store::encode_model(&m2), again, "encode/decode is stable");
        if let ModelBody::Density(b) = &m.body {
            let (_, flat) = flat.expect("apply reads a model that decodes");
            assert_eq!(flat.len(), b.groups.len());
            let last: std::collections::HashMap<&[u8], usize> = b
                .groups
                .iter()
                .enumerate()
                .map(|(i, g)| (&g.key[..], i))
                .collect();
            for g in &b.groups {
                let found = flat.find(&g.key).expect("apply finds every group");
                assert_eq!(found.group(), last[&g.key[..]], "the last of equal keys");
            }
        }
    }
}

/// Builds a model file around `header` and `payload` bytes with correct lengths and checksums.
pub fn wrap_model(header: &[u8], payload: &[u8], version: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + header.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(header).to_le_bytes());
    out.extend_from_slice(&store::payload_checksum(version, payload).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(payload);
    out
}
