//! CSV chunk bodies: the header row, splunkd's `__mv_<field>` multivalue companions, and the writer we
//! reply with. Everything is bytes: splunkd passes invalid UTF-8 straight through from raw events.

use std::borrow::Cow;
use std::collections::HashMap;

/// A body that cannot be used. Row numbers are 1-based data rows within the chunk.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("row {row} has {found} fields but the header has {expected}")]
    Ragged { row: u64, expected: u64, found: u64 },
    #[error("column \"{0}\" appears more than once in the header")]
    DuplicateColumn(String),
    #[error("multivalue column \"__mv_{0}\" has no column \"{0}\"")]
    OrphanMultivalue(String),
    #[error("malformed CSV at row {row}: {message}")]
    Csv { row: u64, message: String },
}

/// The header row of one chunk, with a name index and each field's `__mv_` companion.
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub names: Vec<Vec<u8>>,
    index: HashMap<Vec<u8>, usize>,
    mv: Vec<Option<usize>>,
}

impl Header {
    /// Builds and checks a header: no duplicate names, and no `__mv_x` without `x`.
    pub fn new(names: Vec<Vec<u8>>) -> Result<Header, BodyError> {
        let mut index = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            if index.insert(n.clone(), i).is_some() {
                return Err(BodyError::DuplicateColumn(
                    String::from_utf8_lossy(n).into_owned(),
                ));
            }
        }
        let mut mv = vec![None; names.len()];
        for (i, n) in names.iter().enumerate() {
            if let Some(base) = n.strip_prefix(b"__mv_") {
                match index.get(base) {
                    Some(&b) => mv[b] = Some(i),
                    None => {
                        return Err(BodyError::OrphanMultivalue(
                            String::from_utf8_lossy(base).into_owned(),
                        ));
                    }
                }
            }
        }
        Ok(Header { names, index, mv })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The column of `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.index.get(name.as_bytes()).copied()
    }

    /// The column of the `__mv_` companion of column `i`.
    pub fn mv_of(&self, i: usize) -> Option<usize> {
        self.mv[i]
    }
}

/// Reads a chunk body: the header (if any) and an iterator of records. A UTF-8 BOM is skipped.
pub struct BodyReader<'a> {
    reader: csv::Reader<&'a [u8]>,
    /// The bytes being parsed (the body without its BOM); record positions index into them.
    bytes: &'a [u8],
    pub header: Header,
    row: u64,
}

impl<'a> BodyReader<'a> {
    pub fn new(body: &'a [u8]) -> Result<BodyReader<'a>, BodyError> {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(body);
        let names = if body.is_empty() {
            Vec::new()
        } else {
            let h = reader.byte_headers().map_err(|e| csv_error(e, 0))?;
            h.iter().map(|f| f.to_vec()).collect()
        };
        Ok(BodyReader {
            reader,
            bytes: body,
            header: Header::new(names)?,
            row: 0,
        })
    }

    /// Reads the next record into `rec`; false at the end of the body.
    pub fn read(&mut self, rec: &mut csv::ByteRecord) -> Result<bool, BodyError> {
        if self.header.is_empty() {
            return Ok(false);
        }
        self.row += 1;
        match self.reader.read_byte_record(rec) {
            Ok(more) => Ok(more),
            Err(e) => Err(csv_error(e, self.row)),
        }
    }

    /// The bytes being parsed: `ByteRecord::position` offsets index into these.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The 1-based number of the record last read.
    pub fn row(&self) -> u64 {
        self.row
    }
}

fn csv_error(e: csv::Error, row: u64) -> BodyError {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => BodyError::Ragged {
            row,
            expected: *expected_len,
            found: *len,
        },
        _ => BodyError::Csv {
            row,
            message: e.to_string(),
        },
    }
}

/// One field's value in a record, with its multivalue companion decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum FieldValue<'a> {
    /// Absent column or empty cell: null in Splunk.
    Empty,
    One(Cow<'a, [u8]>),
    /// Two or more values.
    Many(Vec<Vec<u8>>),
}

/// Reads field `col` of `rec`, preferring its `__mv_` companion when that is non-empty.
pub fn field_value<'a>(
    header: &Header,
    rec: &'a csv::ByteRecord,
    col: Option<usize>,
) -> FieldValue<'a> {
    let Some(col) = col else {
        return FieldValue::Empty;
    };
    if let Some(mv) = header
        .mv_of(col)
        .and_then(|m| rec.get(m))
        .filter(|m| !m.is_empty())
    {
        let mut values = mv_decode(mv);
        return match values.len() {
            0 => FieldValue::Empty,
            1 => match values.pop() {
                Some(v) if !v.is_empty() => FieldValue::One(Cow::Owned(v)),
                _ => FieldValue::Empty,
            },
            _ => FieldValue::Many(values),
        };
    }
    match rec.get(col) {
        None | Some(b"") => FieldValue::Empty,
        Some(v) => FieldValue::One(Cow::Borrowed(v)),
    }
}

/// Decodes `$v1$;$v2$` (with `$$` for a literal `$`) into its values. Text that does not follow the
/// encoding is taken as a single value, so no input can fail here.
pub fn mv_decode(s: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'$' {
            return vec![s.to_vec()];
        }
        i += 1;
        let mut v = Vec::new();
        loop {
            match (s.get(i), s.get(i + 1)) {
                (Some(b'$'), Some(b'$')) => {
                    v.push(b'$');
                    i += 2;
                }
                (Some(b'$'), _) => {
                    i += 1;
                    break;
                }
                (Some(c), _) => {
                    v.push(*c);
                    i += 1;
                }
                (None, _) => return vec![s.to_vec()],
            }
        }
        out.push(v);
        match s.get(i) {
            None => break,
            Some(b';') => i += 1,
            Some(_) => return vec![s.to_vec()],
        }
    }
    out
}

/// Encodes values as splunkd's `__mv_` text: each wrapped in `$…$`, `$` doubled, joined by `;`.
pub fn mv_encode<I, V>(values: I) -> Vec<u8>
where
    I: IntoIterator<Item = V>,
    V: AsRef<[u8]>,
{
    let mut out = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(b';');
        }
        out.push(b'$');
        for &c in v.as_ref() {
            if c == b'$' {
                out.push(b'$');
            }
            out.push(c);
        }
        out.push(b'$');
    }
    out
}

/// A CSV writer for reply bodies: minimal quoting, `\n` line ends.
pub fn body_writer<W: std::io::Write>(w: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Necessary)
        .terminator(csv::Terminator::Any(b'\n'))
        .flexible(false)
        .from_writer(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multivalue_round_trip_and_sdk_example() {
        assert_eq!(
            mv_decode(b"$p$;$q$$r$"),
            vec![b"p".to_vec(), b"q$r".to_vec()]
        );
        assert_eq!(mv_encode([&b"b$c"[..], b"d"]), b"$b$$c$;$d$");
        assert_eq!(mv_decode(b"$$;$x$"), vec![b"".to_vec(), b"x".to_vec()]);
        assert_eq!(mv_decode(b"plain"), vec![b"plain".to_vec()]);
        assert_eq!(mv_decode(b"$unterminated"), vec![b"$unterminated".to_vec()]);
        let vals = [&b"$"[..], b"", b";$;", b"\n"];
        assert_eq!(
            mv_decode(&mv_encode(vals)),
            vals.iter().map(|v| v.to_vec()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn header_checks() {
        let h = |names: &[&str]| Header::new(names.iter().map(|n| n.as_bytes().to_vec()).collect());
        assert!(matches!(h(&["a", "b", "a"]), Err(BodyError::DuplicateColumn(n)) if n == "a"));
        assert!(matches!(h(&["a", "__mv_b"]), Err(BodyError::OrphanMultivalue(n)) if n == "b"));
        let ok = h(&["count", "__mv_count"]).unwrap();
        assert_eq!(ok.mv_of(0), Some(1));
    }

    #[test]
    fn reads_fields_with_companions() {
        let body = b"count,src,__mv_count,__mv_src\n12,a,,\n\"1\n2\",b,$1$;$2$,\n,c,,\n";
        let mut r = BodyReader::new(body).unwrap();
        let mut rec = csv::ByteRecord::new();
        let c = r.header.find("count");
        assert!(r.read(&mut rec).unwrap());
        assert_eq!(
            field_value(&r.header, &rec, c),
            FieldValue::One(Cow::Borrowed(b"12"))
        );
        assert!(r.read(&mut rec).unwrap());
        assert!(matches!(field_value(&r.header, &rec, c), FieldValue::Many(v) if v.len() == 2));
        assert!(r.read(&mut rec).unwrap());
        assert_eq!(field_value(&r.header, &rec, c), FieldValue::Empty);
        assert!(!r.read(&mut rec).unwrap());
    }

    #[test]
    fn ragged_rows_name_the_row() {
        let mut r = BodyReader::new(b"a,b\n1,2\n3\n").unwrap();
        let mut rec = csv::ByteRecord::new();
        assert!(r.read(&mut rec).unwrap());
        assert!(matches!(
            r.read(&mut rec),
            Err(BodyError::Ragged {
                row: 2,
                expected: 2,
                found: 1
            })
        ));
    }

    #[test]
    fn bom_and_empty_bodies() {
        let r = BodyReader::new(b"\xEF\xBB\xBFcount\n1\n").unwrap();
        assert_eq!(r.header.find("count"), Some(0));
        let mut r = BodyReader::new(b"").unwrap();
        assert!(!r.read(&mut csv::ByteRecord::new()).unwrap());
    }
}
