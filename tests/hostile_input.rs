//! Issue 6, rule 1 and rule 2: hostile protocol input fed to the real binary, for `fit` and `apply`.
//!
//! Every run is watched: a watchdog kills it if it hangs, its peak RSS (from `wait4`) must stay under a
//! bound, stderr must carry no panic, the session key must never come back, and the reply stream must
//! parse strictly. Inputs it can still answer get an ERROR inspector message plus `error` and exit 1.
//!
//! Decisions asserted here (see docs/reliability.md):
//! - CRLF after a chunk header and CRLF row endings are accepted (the SDK's header regex allows `\s*`, and
//!   CSV allows CRLF); rows score exactly as with LF.
//! - A UTF-8 BOM at the start of a body is skipped; a BOM before the JSON metadata is an error.
//! - NUL bytes and invalid UTF-8 in a body are data: other columns pass through byte for byte, and a
//!   feature value that holds them is not a number (empty outputs, counted in the WARN).
//! - NUL bytes or invalid UTF-8 in the metadata make it "not JSON".

mod support;

use std::path::Path;
use std::time::Duration;

use support::{Run, Spawn, chunk, execute, getinfo, run, training};

/// A generous bound for small inputs: the binary needs a few MiB; a 1 GiB allocation would blow it.
const SMALL_RSS_MIB: u64 = 64;

const FIT_ARGS: &[&str] = &["smbdensity", "count", "by", "h", "dist=norm", "into", "fm"];
const APPLY_ARGS: &[&str] = &["m"];

/// A models directory holding model `m` (count by h, groups 00000..00002).
fn models_with_m() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut input = getinfo(
        &["smbdensity", "count", "by", "h", "dist=norm", "into", "m"],
        "",
    );
    input.extend(execute(true, training(3, 60, 1).as_bytes()));
    let r = run(&Spawn::command("fit", dir.path()), input);
    r.assert_sane("fit m", 256);
    r.assert_ok("fit m");
    dir
}

fn args_for(cmd: &str) -> &'static [&'static str] {
    if cmd == "fit" { FIT_ARGS } else { APPLY_ARGS }
}

fn go(cmd: &str, models: &Path, input: Vec<u8>) -> Run {
    let mut s = Spawn::command(cmd, models);
    s.timeout = Duration::from_secs(60);
    run(&s, input)
}

/// Runs `input` (prefixed with a valid getinfo when `after_getinfo`) and expects an error with `needle`.
fn expect_error(
    cmd: &str,
    models: &Path,
    after_getinfo: bool,
    input: &[u8],
    needle: &str,
    what: &str,
) {
    let mut all = if after_getinfo {
        getinfo(args_for(cmd), "")
    } else {
        Vec::new()
    };
    all.extend_from_slice(input);
    let what = format!("{cmd}: {what}");
    let r = go(cmd, models, all);
    r.assert_sane(&what, SMALL_RSS_MIB);
    r.assert_error(&what, needle);
}

fn nested(depth: usize, open: &str, close: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(depth * (open.len() + close.len()));
    for _ in 0..depth {
        v.extend_from_slice(open.as_bytes());
    }
    for _ in 0..depth {
        v.extend_from_slice(close.as_bytes());
    }
    v
}

#[test]
fn framing_and_metadata_attacks() {
    let models = models_with_m();
    let m = models.path();
    let mut garbage = Vec::new();
    let mut x = 7u32;
    for _ in 0..4000 {
        x = x.wrapping_mul(1103515245).wrapping_add(12345);
        garbage.push((x >> 16) as u8 | 1);
    }
    let getinfo_fit = String::from_utf8(getinfo(FIT_ARGS, "")).unwrap();
    let exec = br#"{"action":"execute","finished":true}"#;
    // (input before any getinfo?, bytes, expected error text, what)
    let cases: Vec<(bool, Vec<u8>, &str, &str)> = vec![
        (
            false,
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            "malformed chunk header",
            "HTTP request",
        ),
        (
            false,
            garbage.clone(),
            "malformed chunk header",
            "binary garbage",
        ),
        (
            false,
            b"chunked\n".to_vec(),
            "malformed chunk header",
            "header without lengths",
        ),
        (
            false,
            b"chunked 1.0,-1,0\n".to_vec(),
            "malformed chunk header",
            "negative length",
        ),
        (
            false,
            b"chunked 1.0,2,-5\n{}".to_vec(),
            "malformed chunk header",
            "negative body length",
        ),
        (
            false,
            b"chunked 2.0,2,0\n{}".to_vec(),
            "malformed chunk header",
            "version 2.0",
        ),
        (
            false,
            b"chunked 1.0,1e3,0\n".to_vec(),
            "malformed chunk header",
            "exponent length",
        ),
        (
            false,
            b"chunked 1.0,0x10,0\n".to_vec(),
            "malformed chunk header",
            "hex length",
        ),
        (
            false,
            b"chunked 1.0,1000000000000,0\n".to_vec(),
            "above the limit",
            "10^12 metadata",
        ),
        (
            false,
            b"chunked 1.0,2,1000000000000\n{}".to_vec(),
            "above the limit",
            "10^12 body",
        ),
        (
            false,
            b"chunked 1.0,9999999999999999999,9999999999999999999\n".to_vec(),
            "above the limit",
            "lengths whose sum overflows u64",
        ),
        (
            false,
            b"chunked 1.0,18446744073709551615,18446744073709551615\n".to_vec(),
            "malformed chunk header",
            "20-digit lengths",
        ),
        (
            false,
            b"chunked 1.0,99999999999999999999,0\n".to_vec(),
            "malformed chunk header",
            "length beyond u64",
        ),
        // Below the 1 GiB limit, so only incremental reading keeps memory bounded.
        (
            false,
            b"chunked 1.0,1000000000,0\n{\"action\":".to_vec(),
            "truncated",
            "1e9 declared, 10 sent",
        ),
        (
            true,
            b"chunked 1.0,2,1000000000\n{}count\n1\n".to_vec(),
            "truncated",
            "1e9 body declared, 8 sent",
        ),
        (
            false,
            b"chunked 1.0,50,0\n{\"action\":\"getinfo\"".to_vec(),
            "metadata truncated",
            "truncated metadata",
        ),
        (
            false,
            b"chunked 1.0,2".to_vec(),
            "header truncated",
            "truncated header",
        ),
        (
            true,
            b"chunked 1.0,36,100\n{\"action\":\"execute\",\"finished\":true}count\n1\n".to_vec(),
            "body truncated",
            "truncated body",
        ),
        (
            true,
            b"chunked 1.0,36,0\n{\"action\":\"exec".to_vec(),
            "metadata truncated",
            "truncated second metadata",
        ),
        (
            true,
            b"chunked 1.".to_vec(),
            "header truncated",
            "truncated second header",
        ),
        (false, chunk(b"{oops", b""), "not JSON", "metadata not JSON"),
        (false, chunk(b"", b""), "not JSON", "empty metadata"),
        (false, chunk(b"[1]", b""), "not a JSON object", "JSON array"),
        (
            false,
            chunk(b"\"getinfo\"", b""),
            "not a JSON object",
            "JSON string",
        ),
        (false, chunk(b"null", b""), "not a JSON object", "JSON null"),
        (false, chunk(b"42", b""), "not a JSON object", "JSON number"),
        (
            false,
            chunk(b"{\"action\":5}", b""),
            "bad field",
            "action of the wrong type",
        ),
        (
            false,
            chunk(
                b"{\"action\":\"getinfo\",\"searchinfo\":{\"args\":\"x\"}}",
                b"",
            ),
            "bad field",
            "args not a list",
        ),
        (
            false,
            chunk(b"{\"finished\":false}", b""),
            "expected a getinfo chunk first, got action \"(none)\"",
            "missing action",
        ),
        (
            false,
            chunk(b"{\"action\":\"bogus\"}", b""),
            "expected a getinfo chunk first, got action \"bogus\"",
            "unknown first action",
        ),
        (
            false,
            chunk(exec, b"count\n1\n"),
            "expected a getinfo chunk first, got action \"execute\"",
            "execute before getinfo",
        ),
        (
            true,
            chunk(b"{\"finished\":true}", b"count\n1\n"),
            "unknown action \"(none)\"",
            "missing action after getinfo",
        ),
        (
            true,
            chunk(b"{\"action\":\"bogus\",\"finished\":true}", b""),
            "unknown action \"bogus\"",
            "unknown action after getinfo",
        ),
        (
            true,
            getinfo_fit.clone().into_bytes(),
            "a second getinfo chunk arrived",
            "second getinfo",
        ),
        (
            false,
            chunk(b"{\"action\":\"getinfo\",\"x\":\"\xff\xfe\"}", b""),
            "not JSON",
            "invalid UTF-8 in metadata",
        ),
        (
            false,
            chunk(b"{\"action\":\"getinfo\"\0}", b""),
            "not JSON",
            "NUL in metadata",
        ),
        (
            false,
            chunk(b"{\"action\":\"get\0info\"}", b""),
            "not JSON",
            "raw NUL inside a JSON string",
        ),
        (
            false,
            chunk(b"\xEF\xBB\xBF{\"action\":\"getinfo\"}", b""),
            "not JSON",
            "BOM before the metadata",
        ),
        (
            false,
            chunk(&nested(100_000, "[", "]"), b""),
            "not JSON",
            "arrays nested 100,000 deep",
        ),
        (
            false,
            chunk(&nested(100_000, "{\"a\":", "}"), b""),
            "not JSON",
            "objects nested 100,000 deep",
        ),
        (
            false,
            chunk(
                &[
                    b"{\"action\":\"getinfo\",\"x\":".to_vec(),
                    nested(100_000, "[", "]"),
                    b"}".to_vec(),
                ]
                .concat(),
                b"",
            ),
            "not JSON",
            "deep nesting inside an ignored field",
        ),
        (
            true,
            chunk(&nested(100_000, "[", "]"), b""),
            "not JSON",
            "deep nesting after getinfo",
        ),
    ];
    for cmd in ["fit", "apply"] {
        for (after, input, needle, what) in &cases {
            expect_error(cmd, m, *after, input, needle, what);
        }
    }
    // A model name with an escaped NUL never reaches the file system.
    let mut meta = support::getinfo_meta(&["m\u{0}x"], "");
    let bytes = serde_json::to_vec(&meta).unwrap();
    expect_error(
        "apply",
        m,
        false,
        &chunk(&bytes, b""),
        "Invalid model name",
        "NUL in a model name",
    );
    meta["searchinfo"]["args"] = serde_json::json!(["smbdensity", "count", "into", "a\u{0}b"]);
    let bytes = serde_json::to_vec(&meta).unwrap();
    expect_error(
        "fit",
        m,
        false,
        &chunk(&bytes, b""),
        "Invalid model name",
        "NUL in a fit model name",
    );
}

#[test]
fn declared_lengths_are_never_trusted_for_allocation() {
    // A 10^12 header must be refused before allocating; one under the limit must not be allocated up
    // front either. Both in well under the small bound (the binary itself needs a few MiB).
    let models = tempfile::tempdir().unwrap();
    for input in [
        &b"chunked 1.0,1000000000000,0\n"[..],
        b"chunked 1.0,1073741000,0\n{}",
        b"chunked 1.0,2,1073741000\n{}",
    ] {
        let mut s = Spawn::command("apply", models.path());
        // Address space capped too: an allocation of the declared size would abort the process.
        s.vm_limit_mib = 128;
        let r = run(&s, input.to_vec());
        eprintln!(
            "lying length: peak RSS {} KiB, VM {} KiB",
            r.max_rss_kib, r.max_vm_kib
        );
        r.assert_sane("lying length", 16);
        assert_eq!(r.code, Some(1));
    }
}

#[test]
fn chunk_limit_is_configurable_in_smbdensity_conf() {
    // An installed app: <app>/bin/smbdensity with <app>/default/smbdensity.conf lowering the limit.
    let app = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(app.path().join("bin")).unwrap();
    std::fs::create_dir_all(app.path().join("default")).unwrap();
    std::fs::create_dir_all(app.path().join("lookups")).unwrap();
    let exe = app.path().join("bin/smbdensity");
    std::fs::copy(support::bin(), &exe).unwrap();
    std::fs::write(
        app.path().join("default/smbdensity.conf"),
        "[limits]\nmax_chunk_size_mb = 1\n",
    )
    .unwrap();
    let spawn = Spawn {
        exe,
        args: vec!["fit".into()],
        models: None,
        timeout: Duration::from_secs(60),
        vm_limit_mib: 1024,
    };
    let mut input = getinfo(FIT_ARGS, "");
    let body = training(1, 120_000, 3); // ~ 1.2 MB: above 1 MiB
    assert!(body.len() > 1 << 20);
    input.extend(execute(true, body.as_bytes()));
    let r = run(&spawn, input);
    r.assert_sane("conf limit", SMALL_RSS_MIB);
    let e = r.assert_error("conf limit", "above the limit of 1048576 bytes");
    assert!(e.contains("max_chunk_size_mb"), "{e}");
    // Under the limit, the same app works.
    let mut input = getinfo(FIT_ARGS, "");
    input.extend(execute(true, training(1, 100, 3).as_bytes()));
    let r = run(&spawn, input);
    r.assert_sane("conf limit, small chunk", SMALL_RSS_MIB);
    r.assert_ok("conf limit, small chunk");
}

/// Runs one execute chunk with `body` after a valid getinfo.
fn one_chunk(cmd: &str, models: &Path, body: &[u8]) -> Run {
    let mut input = getinfo(args_for(cmd), "");
    input.extend(execute(true, body));
    go(cmd, models, input)
}

#[test]
fn csv_attacks() {
    let models = models_with_m();
    let m = models.path();
    let cases: &[(&[u8], &str, &str)] = &[
        (
            b"count,h\n1,00000\n2\n",
            "row 2 has 1 fields but the header has 2",
            "ragged row (short)",
        ),
        (
            b"count,h\n1,00000,x\n",
            "row 1 has 3 fields but the header has 2",
            "ragged row (long)",
        ),
        (
            b"count,h,count\n1,00000,2\n",
            "column \"count\" appears more than once",
            "duplicate columns",
        ),
        (
            b"count,h,__mv_count,__mv_count\n1,00000,,\n",
            "appears more than once",
            "duplicate mv columns",
        ),
        (
            b"count,h,__mv_src\n1,00000,$a$\n",
            "multivalue column \"__mv_src\" has no column \"src\"",
            "orphan __mv_",
        ),
    ];
    for cmd in ["fit", "apply"] {
        for (body, needle, what) in cases {
            let what = format!("{cmd}: {what}");
            let r = one_chunk(cmd, m, body);
            r.assert_sane(&what, SMALL_RSS_MIB);
            r.assert_error(&what, needle);
        }
    }
    assert!(
        !m.join("__smbdensity_fm.model").exists(),
        "a fit that failed on its input saves nothing"
    );
}

/// An apply's reply header, its rows (each a list of fields), and the run.
type Applied = (Vec<Vec<u8>>, Vec<Vec<Vec<u8>>>, Run);

/// The output rows of an apply over `body`, as (header, rows).
fn apply_rows(models: &Path, body: &[u8]) -> Applied {
    let r = one_chunk("apply", models, body);
    r.assert_sane("apply", SMALL_RSS_MIB);
    let replies = r.assert_ok("apply");
    let mut rows = replies.last().unwrap().byte_rows();
    let header = rows.remove(0);
    (header, rows, r)
}

fn col(header: &[Vec<u8>], name: &str) -> usize {
    header
        .iter()
        .position(|c| c == name.as_bytes())
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[test]
fn crlf_bom_nul_and_invalid_utf8_in_bodies_are_data() {
    let models = models_with_m();
    let m = models.path();
    let lf = b"count,h,src\n100,00000,a\n500,00001,b\n";
    let (h_lf, rows_lf, _) = apply_rows(m, lf);
    let o = col(&h_lf, "IsOutlier(count)");
    assert_eq!(rows_lf[0][o], b"0.0");
    assert_eq!(rows_lf[1][o], b"1.0");
    // CRLF rows and a BOM: the same columns and the same scores.
    let crlf = b"count,h,src\r\n100,00000,a\r\n500,00001,b\r\n";
    let bom = [&b"\xEF\xBB\xBF"[..], lf].concat();
    let bom_crlf = [&b"\xEF\xBB\xBF"[..], crlf].concat();
    for (body, what) in [
        (&crlf[..], "CRLF"),
        (&bom[..], "BOM"),
        (&bom_crlf[..], "BOM+CRLF"),
    ] {
        let (h, rows, _) = apply_rows(m, body);
        assert_eq!(h, h_lf, "{what}: header");
        assert_eq!(rows, rows_lf, "{what}: rows");
    }
    // CRLF after the chunk headers (old SDKs) is accepted too.
    let mut input = String::from_utf8(getinfo(APPLY_ARGS, "")).unwrap();
    input = input.replacen('\n', "\r\n", 1);
    let exec = String::from_utf8(execute(true, lf))
        .unwrap()
        .replacen('\n', "\r\n", 1);
    let r = go("apply", m, format!("{input}{exec}").into_bytes());
    r.assert_sane("CRLF headers", SMALL_RSS_MIB);
    let replies = r.assert_ok("CRLF headers");
    assert_eq!(replies.len(), 2);
    // NUL and invalid UTF-8 in a passed-through column come back byte for byte; in the feature column
    // they make the value not a number.
    let body = b"count,h,src\n100,00000,\"a\0b\xff\xfe\"\n\"1\x000\",00000,x\n\xff,00000,y\n101,00000,\xc3\n";
    let (h, rows, r) = apply_rows(m, body);
    let (o, s) = (col(&h, "IsOutlier(count)"), col(&h, "src"));
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0][s], b"a\0b\xff\xfe");
    assert_eq!(rows[0][o], b"0.0");
    assert_eq!(rows[1][o], b"", "NUL inside a number: not a number");
    assert_eq!(rows[2][o], b"", "invalid UTF-8 feature: not a number");
    assert_eq!(rows[3][s], b"\xc3");
    assert_eq!(rows[3][o], b"0.0");
    let warns = r.last().unwrap().messages("WARN");
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(
        warns[0].contains("2 rows had an empty or non-numeric"),
        "{}",
        warns[0]
    );
    // The same body trains a fit: the bad rows are skipped and counted.
    let r = one_chunk("fit", m, body);
    r.assert_sane("fit NUL/UTF-8", SMALL_RSS_MIB);
    let replies = r.assert_ok("fit NUL/UTF-8");
    let warns = replies.last().unwrap().messages("WARN");
    assert!(
        warns
            .iter()
            .any(|w| w.contains("2 rows with a non-numeric \"count\"")),
        "{warns:?}"
    );
}

#[test]
fn ten_thousand_columns() {
    let models = models_with_m();
    let mut header = String::from("count,h");
    let mut row = String::from("100,00000");
    for i in 0..10_000 {
        header.push_str(&format!(",c{i}"));
        row.push_str(&format!(",{i}"));
    }
    let body = format!("{header}\n{row}\n{row}\n");
    for cmd in ["fit", "apply"] {
        let r = one_chunk(cmd, models.path(), body.as_bytes());
        r.assert_sane(&format!("{cmd}: 10,000 columns"), SMALL_RSS_MIB);
        let replies = r.assert_ok(&format!("{cmd}: 10,000 columns"));
        let rows = replies.last().unwrap().byte_rows();
        assert_eq!(
            rows[0].len(),
            10_000 + 2 + 3,
            "{cmd}: every column kept, outputs added"
        );
        assert_eq!(rows.len(), 3);
        assert!(
            r.elapsed < Duration::from_secs(30),
            "{cmd}: {:?}",
            r.elapsed
        );
    }
}

#[test]
fn one_twenty_megabyte_field() {
    let models = models_with_m();
    let big = "x".repeat(20 << 20);
    let body = format!("count,h,src\n100,00000,{big}\n101,00000,a\n");
    // The input chunk, one record and the reply: a few copies of 20 MiB, never hundreds.
    for cmd in ["fit", "apply"] {
        let what = format!("{cmd}: a 20 MiB field");
        let r = one_chunk(cmd, models.path(), body.as_bytes());
        r.assert_sane(&what, 256);
        let replies = r.assert_ok(&what);
        let rows = replies.last().unwrap().byte_rows();
        assert_eq!(rows[1][2].len(), 20 << 20, "{what}: passed through whole");
    }
    // A 20 MiB "number" in the feature column: not finite, so not a number; the other row scores.
    let digits = "9".repeat(20 << 20);
    let body = format!("count,h\n{digits},00000\n100,00000\n");
    for cmd in ["fit", "apply"] {
        let what = format!("{cmd}: a 20 MiB number");
        let r = one_chunk(cmd, models.path(), body.as_bytes());
        r.assert_sane(&what, 256);
        let replies = r.assert_ok(&what);
        let rows = replies.last().unwrap().byte_rows();
        let o = col(&rows[0], "IsOutlier(count)");
        assert_eq!(rows[1][o], b"", "{what}");
        if cmd == "apply" {
            assert_eq!(rows[2][o], b"0.0", "{what}");
        }
    }
}

/// A whole valid session for `cmd`, and the offsets where its chunks end.
fn valid_session(cmd: &str) -> (Vec<u8>, Vec<usize>) {
    let mut s = getinfo(args_for(cmd), "");
    let mut ends = vec![s.len()];
    s.extend(execute(
        false,
        b"count,h,src\n100,00000,\"a\nb\"\n101,00001,b\n",
    ));
    ends.push(s.len());
    s.extend(execute(
        true,
        b"count,h,__mv_count\n102,00002,\n500,00000,$1$;$2$\n",
    ));
    ends.push(s.len());
    (s, ends)
}

#[test]
fn stdin_closed_at_any_point() {
    let models = models_with_m();
    for cmd in ["fit", "apply"] {
        let (session, ends) = valid_session(cmd);
        // Every offset near a chunk boundary, and a stride through the rest.
        let mut offsets: Vec<usize> = (0..=session.len()).step_by(7).collect();
        for &e in &ends {
            offsets.extend(e.saturating_sub(3)..=(e + 3).min(session.len()));
        }
        offsets.extend(0..4);
        offsets.sort();
        offsets.dedup();
        for &k in &offsets {
            let _ = std::fs::remove_file(models.path().join("__smbdensity_fm.model"));
            let what = format!("{cmd}: stdin closed after {k} of {} bytes", session.len());
            let r = go(cmd, models.path(), session[..k].to_vec());
            r.assert_sane(&what, SMALL_RSS_MIB);
            let complete = ends.iter().filter(|&&e| e <= k).count();
            if k == 0 || ends.contains(&k) {
                // EOF between chunks: a cancelled search. One reply per chunk, quiet exit.
                let replies = r.assert_ok(&what);
                assert_eq!(replies.len(), complete, "{what}");
            } else {
                let e = r.assert_error(&what, "input ended inside chunk");
                assert!(e.contains("truncated"), "{what}: {e}");
                assert_eq!(r.replies().len(), complete + 1, "{what}");
            }
            if cmd == "fit" {
                assert_eq!(
                    models.path().join("__smbdensity_fm.model").exists(),
                    k == session.len(),
                    "{what}: a fit saves only after its final chunk"
                );
            }
        }
    }
}

/// Issue 6, rule 2: hostile numbers. Each row is scored or gets empty outputs and is counted in the one
/// WARN; no number changes a boundary.
#[test]
fn hostile_numbers() {
    let models = tempfile::tempdir().unwrap();
    let m = models.path();
    let clean = training(2, 60, 9);
    let junk = [
        "NaN",
        "nan",
        "inf",
        "-inf",
        "+inf",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e400",
        "\"1,024\"",
        "12k",
        "0x10",
        "1_000",
        " 12",
        "12 ",
        "--1",
        "",
        "\"\"",
    ];
    let mut dirty = clean.clone();
    for (i, j) in junk.iter().enumerate() {
        dirty.push_str(&format!("{j},{:05}\n", i % 2));
    }
    let fit = |name: &str, body: &str| {
        let mut input = getinfo(
            &["smbdensity", "count", "by", "h", "dist=norm", "into", name],
            "",
        );
        input.extend(execute(true, body.as_bytes()));
        let r = go("fit", m, input);
        r.assert_sane(name, SMALL_RSS_MIB);
        r.assert_ok(name).pop().unwrap()
    };
    fit("clean", &clean);
    let dirty_reply = fit("dirty", &dirty);
    let warns = dirty_reply.messages("WARN");
    let bad = junk.len() - 2; // the two empty cells are not "non-numeric"
    assert_eq!(
        warns,
        [format!(
            "{bad} rows with a non-numeric \"count\" were not used for fitting"
        )],
        "one WARN counting the bad rows"
    );
    // The models agree group for group: junk never reached the statistics or the boundaries. (Only the
    // "every value was integer text" flag differs, as pandas would type such a column float: the minimum
    // of an Exponential prints as `100.0` instead of `100`, the same number.)
    let store = smbdensity::model::store::ModelStore::new(m);
    let load = |n: &str| {
        let smbdensity::model::ModelBody::Density(b) = store
            .load(&smbdensity::spl::ModelName::parse(n).unwrap())
            .unwrap()
            .body
        else {
            panic!("a DensityFunction model")
        };
        b
    };
    let (c, d) = (load("clean"), load("dirty"));
    assert_eq!(c.groups, d.groups);
    assert!(c.integral_feature && !d.integral_feature);
    // Apply: junk rows get empty outputs and are counted in one WARN; negatives and big numbers score.
    let mut body = String::from("count,h\n");
    for j in &junk {
        body.push_str(&format!("{j},00000\n"));
    }
    let scored = [
        "-5", "-0", "0", "1e300", "100", "1.1e2", "+101", ".5e3", "1E2",
    ];
    for s in &scored {
        body.push_str(&format!("{s},00000\n"));
    }
    let mut input = getinfo(&["clean"], "");
    input.extend(execute(true, body.as_bytes()));
    let r = go("apply", m, input);
    r.assert_sane("apply numbers", SMALL_RSS_MIB);
    let reply = r.assert_ok("apply numbers").pop().unwrap();
    let rows = reply.byte_rows();
    let (o, b) = (
        col(&rows[0], "IsOutlier(count)"),
        col(&rows[0], "BoundaryRanges"),
    );
    let clean_ranges = rows[1 + junk.len() + 4][b].clone();
    assert!(!clean_ranges.is_empty());
    for (i, j) in junk.iter().enumerate() {
        assert_eq!(rows[1 + i][o], b"", "{j:?} gets empty outputs");
        assert_eq!(rows[1 + i][b], b"", "{j:?} gets empty outputs");
    }
    for (i, s) in scored.iter().enumerate() {
        let row = &rows[1 + junk.len() + i];
        let want: &[u8] = if ["100", "1.1e2", "+101", "1E2"].contains(s) {
            b"0.0"
        } else {
            b"1.0"
        };
        assert_eq!(row[o], want, "{s} is scored");
        assert_eq!(
            row[b], clean_ranges,
            "{s}: the group's boundaries, unchanged"
        );
    }
    let warns = reply.messages("WARN");
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(
        warns[0].contains(&format!(
            "{} rows had an empty or non-numeric \"count\" (2 empty, {bad} not a finite number)",
            junk.len()
        )),
        "{}",
        warns[0]
    );
}
