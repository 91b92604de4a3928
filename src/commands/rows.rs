//! The fast path for writing reply rows: copy each input record's bytes as they arrived and append the
//! output cells, precomputed per group, instead of re-encoding every field through `csv::Writer`.
//!
//! Output stays byte-identical to [`scpv2::body::body_writer`] (minimal quoting, `\n` ends):
//! a record is copied raw only when its bytes contain no quote and no line break, which means no field
//! was quoted and none needs quoting, so the writer would produce exactly those bytes. Any other record
//! is re-encoded field by field with the writer's quoting rule.

/// True when the CSV writer (`QuoteStyle::Necessary`, `\n` terminator) quotes `field`: when it holds
/// the delimiter, the quote, or a line-break byte.
#[inline]
pub fn needs_quotes(field: &[u8]) -> bool {
    // Eight bytes at a time (every reply row passes through here): a byte of `w` equals `b` exactly
    // when that byte of `w ^ splat(b)` is zero, which the classic has-zero-byte test finds.
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    #[inline(always)]
    fn zero_byte(x: u64) -> u64 {
        x.wrapping_sub(ONES) & !x & HIGHS
    }
    let mut words = field.chunks_exact(8);
    for c in &mut words {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        if zero_byte(w ^ (ONES * b',' as u64))
            | zero_byte(w ^ (ONES * b'"' as u64))
            | zero_byte(w ^ (ONES * b'\n' as u64))
            | zero_byte(w ^ (ONES * b'\r' as u64))
            != 0
        {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
}

/// Appends one field with the writer's quoting (quotes doubled inside quoted fields).
#[inline]
pub fn write_field(out: &mut Vec<u8>, field: &[u8]) {
    if !needs_quotes(field) {
        out.extend_from_slice(field);
        return;
    }
    out.push(b'"');
    let mut rest = field;
    while let Some(i) = memchr::memchr(b'"', rest) {
        out.extend_from_slice(&rest[..=i]);
        out.push(b'"');
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Appends a whole record of fields, comma-separated, with the writer's rules, and the `\n` terminator.
/// A record of one empty field is written `""` (as the writer does, so it does not read back as a
/// blank line).
pub fn write_record<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = &'a [u8]>) {
    let start = out.len();
    let mut n = 0;
    for f in fields {
        if n > 0 {
            out.push(b',');
        }
        write_field(out, f);
        n += 1;
    }
    if n == 1 && out.len() == start {
        out.extend_from_slice(b"\"\"");
    }
    out.push(b'\n');
}

/// The bytes of `rec` inside `body` (the body the reader parsed), without its terminator, when they
/// are exactly what the writer would produce for its fields; `None` when the record must be
/// re-encoded.
#[inline]
pub fn raw_record<'a>(body: &'a [u8], rec: &csv::ByteRecord) -> Option<&'a [u8]> {
    let start = rec.position()?.byte() as usize;
    let n = rec.len();
    if n == 0 {
        return None;
    }
    let len = rec.as_slice().len() + n - 1;
    let raw = body.get(start..start + len)?;
    // A record with one empty field is written `""`, never as nothing.
    if len == 0 {
        return None;
    }
    if memchr::memchr3(b'"', b'\n', b'\r', raw).is_some() {
        return None;
    }
    Some(raw)
}

/// Appends `rec` restricted to the columns `kept` (all columns when `None`), without a terminator.
/// Uses the raw bytes when possible.
#[inline]
pub fn write_input(out: &mut Vec<u8>, body: &[u8], rec: &csv::ByteRecord, kept: Option<&[usize]>) {
    match kept {
        None => match raw_record(body, rec) {
            Some(raw) => out.extend_from_slice(raw),
            None => {
                for (i, f) in rec.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_field(out, f);
                }
            }
        },
        Some(kept) => {
            for (k, &i) in kept.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_field(out, rec.get(i).unwrap_or(b""));
            }
        }
    }
}

/// The input columns a reply keeps: all but those our output columns replace (and their `__mv_`
/// companions), so a scored search can be scored again without duplicate columns.
pub fn kept_columns(names: &[Vec<u8>], out_cols: &[String]) -> Vec<usize> {
    let replaced = |name: &[u8]| {
        let base = name.strip_prefix(b"__mv_").unwrap_or(name);
        out_cols
            .iter()
            .any(|c| c.as_bytes() == name || c.as_bytes() == base)
    };
    (0..names.len()).filter(|&i| !replaced(&names[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use scpv2::body::body_writer;

    fn via_csv_writer(records: &[Vec<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            let mut w = body_writer(Vec::new());
            w.write_record(r).unwrap();
            out.extend(w.into_inner().unwrap());
        }
        out
    }

    #[test]
    fn quoting_matches_the_csv_writer() {
        let cells: [&[u8]; 10] = [
            b"",
            b"plain",
            b"a,b",
            b"say \"hi\"",
            b"l1\nl2",
            b"cr\r",
            b" sp ",
            b"$x$;$y$",
            b"\"",
            b"\xff\xfe",
        ];
        let mut records: Vec<Vec<&[u8]>> = Vec::new();
        for a in cells {
            for b in cells {
                records.push(vec![a, b]);
            }
            records.push(vec![a]);
        }
        let mut mine = Vec::new();
        for r in &records {
            write_record(&mut mine, r.iter().copied());
        }
        assert_eq!(mine, via_csv_writer(&records));
    }

    #[test]
    fn needs_quotes_finds_every_special_byte_at_every_offset() {
        for len in 0..20 {
            for pos in 0..len {
                for b in 0u8..=255 {
                    let mut f = vec![b'a'; len];
                    f[pos] = b;
                    let expect = matches!(b, b',' | b'"' | b'\n' | b'\r');
                    assert_eq!(needs_quotes(&f), expect, "len {len} pos {pos} byte {b}");
                }
            }
            assert!(!needs_quotes(&vec![0x80 | b','; len]));
        }
    }

    #[test]
    fn raw_copy_only_when_identical() {
        let body = b"a,b,c\n1,2,3\n\"4\",5,6\r\n7,\"x\ny\",9\n,,\n\n10,11,12";
        let mut r = csv::ReaderBuilder::new().from_reader(&body[..]);
        let mut rec = csv::ByteRecord::new();
        let mut raws = Vec::new();
        let mut out = Vec::new();
        let mut expect = Vec::new();
        while r.read_byte_record(&mut rec).unwrap() {
            raws.push(raw_record(body, &rec).map(|s| s.to_vec()));
            write_input(&mut out, body, &rec, None);
            out.push(b'\n');
            write_record(&mut expect, rec.iter());
        }
        assert_eq!(out, expect);
        assert_eq!(
            raws,
            vec![
                Some(b"1,2,3".to_vec()),
                None,
                None,
                Some(b",,".to_vec()),
                // After a blank line the record's position points at the blank line: re-encoded.
                None
            ]
        );
    }
}
