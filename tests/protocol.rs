//! Drives the real binary through SCPv2 exactly as splunkd does: getinfo, several execute chunks,
//! multivalue fields, non-ASCII data, an empty final chunk, and the error paths.

mod support;

use serde_json::json;
use support::{Session, getinfo_meta};

const TRAIN: &str = "count,HourOfDay,DayOfWeek,src\n\
10,07,Monday,a\n12,07,Monday,b\n11,07,Monday,c\n9,07,Monday,d\n13,07,Monday,e\n\
100,07,Thé,f\n104,07,Thé,g\n96,07,Thé,h\n";

fn fit_model(models: &std::path::Path, dispatch: &str) {
    let mut s = Session::start("fit", models);
    let info = s.getinfo(
        &[
            "smbdensity",
            "count",
            "by",
            "HourOfDay,DayOfWeek",
            "dist=norm",
            "into",
            "m",
        ],
        dispatch,
    );
    assert_eq!(info.meta, json!({"type": "events"}));
    let (head, tail) = TRAIN.split_at(TRAIN.find("100,").unwrap());
    let r1 = s.execute(false, head.as_bytes());
    assert_eq!(r1.meta, json!({"finished": false}));
    assert!(
        r1.body.is_empty(),
        "fit answers non-final chunks with no rows"
    );
    let r2 = s.execute(
        false,
        format!("count,HourOfDay,DayOfWeek,src\n{tail}").as_bytes(),
    );
    assert!(r2.body.is_empty());
    let last = s.execute(true, b"");
    assert_eq!(last.meta["finished"], true);
    let rows = last.rows();
    assert_eq!(
        rows[0],
        [
            "count",
            "HourOfDay",
            "DayOfWeek",
            "src",
            "IsOutlier(count)",
            "BoundaryRanges",
            "__mv_BoundaryRanges"
        ]
    );
    assert_eq!(rows.len(), 9, "every training row comes back scored");
    assert_eq!(rows[6][2], "Thé");
    let (code, _) = s.finish();
    assert_eq!(code, 0);
}

#[test]
fn getinfo_only_spawn_answers_and_exits_cleanly() {
    let models = tempfile::tempdir().unwrap();
    let mut s = Session::start("apply", models.path());
    let mut meta = getinfo_meta(&["missing_model"], "");
    meta["searchinfo"]["sid"] = json!("searchparsetmp_1234");
    s.send(&meta, b"");
    let r = s.read_reply().unwrap();
    // A parse-only spawn does no work, so it does not even look for the model.
    assert_eq!(r.meta["type"], "stateful");
    let (code, _) = s.finish();
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read_dir(models.path()).unwrap().count(),
        0,
        "getinfo has no side effects"
    );
}

#[test]
fn fit_then_apply_through_the_protocol() {
    let models = tempfile::tempdir().unwrap();
    let dispatch = tempfile::tempdir().unwrap();
    fit_model(models.path(), dispatch.path().to_str().unwrap());

    let mut s = Session::start("apply", models.path());
    let info = s.getinfo(&["m", "threshold=0.001"], dispatch.path().to_str().unwrap());
    assert_eq!(
        info.meta,
        json!({"type": "stateful", "required_fields": ["count", "HourOfDay", "DayOfWeek"]})
    );
    // Shaped like splunkd's stateful input: _chunked_idx, multivalue companions after the plain columns.
    let chunk1 = "count,HourOfDay,DayOfWeek,dest,\"_chunked_idx\",__mv_count,__mv_HourOfDay,__mv_DayOfWeek,__mv_dest,__mv__chunked_idx\n\
        11,07,Monday,\"x\ny\",0,,,,$x$;$y$,\n\
        95,07,Monday,z,1,,,,,\n\
        ,07,Monday,z,2,,,,,\n\
        5,09,Monday,z,3,,,,,\n\
        abc,07,Monday,z,4,,,,,\n\
        101,07,Thé,\"$q\",5,,,,,\n";
    let r = s.execute(false, chunk1.as_bytes());
    assert_eq!(r.meta["finished"], false);
    let rows = r.rows();
    let col = |n: &str| {
        rows[0]
            .iter()
            .position(|c| c == n)
            .unwrap_or_else(|| panic!("no column {n}"))
    };
    let (o, b, mv, idx) = (
        col("IsOutlier(count)"),
        col("BoundaryRanges"),
        col("__mv_BoundaryRanges"),
        col("_chunked_idx"),
    );
    assert_eq!(rows.len(), 7, "one output row per input row, in order");
    for (i, row) in rows[1..].iter().enumerate() {
        assert_eq!(row[idx], i.to_string(), "_chunked_idx echoed in order");
    }
    assert_eq!(rows[1][o], "0.0");
    assert_eq!(rows[2][o], "1.0");
    assert_eq!(
        rows[1][col("dest")],
        "x\ny",
        "input multivalue fields pass through"
    );
    assert_eq!(rows[1][col("__mv_dest")], "$x$;$y$");
    let lines: Vec<&str> = rows[1][b].split('\n').collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(rows[1][mv], format!("${}$;${}$", lines[0], lines[1]));
    for empty_row in [3, 4, 5] {
        assert_eq!(rows[empty_row][o], "", "row {empty_row} gets empty outputs");
        assert_eq!(rows[empty_row][b], "");
    }
    assert_eq!(rows[6][o], "0.0", "the non-ASCII group is found");
    // Byte lengths: the body held a multi-byte character and the framing still lined up.
    assert!(r.body.windows(4).any(|w| w == "Thé".as_bytes()));
    let last = s.execute(true, b"count,HourOfDay,DayOfWeek\n");
    assert_eq!(last.meta["finished"], true);
    let warns = last.messages("WARN");
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(
        warns[0].contains("1 rows got empty outputs")
            && warns[0].contains("2 rows had an empty or non-numeric"),
        "{}",
        warns[0]
    );
    let (code, _) = s.finish();
    assert_eq!(code, 0);
}

fn expect_error(
    command: &str,
    args: &[&str],
    models: &std::path::Path,
    chunks: &[&str],
    needle: &str,
) {
    let mut s = Session::start(command, models);
    let mut r = s.getinfo(args, "");
    for (i, c) in chunks.iter().enumerate() {
        if r.error().is_some() {
            break;
        }
        r = s.execute(i + 1 == chunks.len(), c.as_bytes());
    }
    let err = r
        .error()
        .unwrap_or_else(|| panic!("expected an error containing {needle:?}, got {:?}", r.meta))
        .to_string();
    assert!(
        err.contains(needle),
        "error {err:?} does not contain {needle:?}"
    );
    assert_eq!(
        r.messages("ERROR"),
        std::slice::from_ref(&err),
        "the ERROR inspector message carries the same text"
    );
    assert!(
        r.raw_meta.starts_with(br#"{"inspector":"#),
        "inspector precedes error"
    );
    let (code, stderr) = s.finish();
    assert_eq!(code, 1, "exit status after an error; stderr: {stderr}");
}

#[test]
fn clear_errors_for_bad_searches() {
    let models = tempfile::tempdir().unwrap();
    let dir = models.path().to_str().unwrap().to_string();
    expect_error(
        "apply",
        &["smb_pdfmodel"],
        models.path(),
        &[],
        "model \"smb_pdfmodel\" does not exist",
    );
    expect_error("apply", &["smb_pdfmodel"], models.path(), &[], &dir);
    expect_error(
        "apply",
        &["../etc/passwd"],
        models.path(),
        &[],
        "Invalid model name \"../etc/passwd\"",
    );
    expect_error(
        "fit",
        &["smbdensity", "count", "into", "a/b"],
        models.path(),
        &[],
        "Invalid model name \"a/b\"",
    );
    expect_error(
        "fit",
        &["smbdensity", "count", "bogus=1"],
        models.path(),
        &[],
        "Unexpected parameter: bogus",
    );
    expect_error(
        "fit",
        &["smbdensity", "count", "kfold_cv=3"],
        models.path(),
        &[],
        "does not support the kfold_cv parameter",
    );
    expect_error(
        "fit",
        &["smbdensity", "count", "dist=norm", "into", "m"],
        models.path(),
        &["count\nabc\nxyz\n"],
        "Feature \"count\" is not a numeric type",
    );
    assert_eq!(
        std::fs::read_dir(models.path()).unwrap().count(),
        0,
        "no model is written by a failed fit"
    );
    fit_model(models.path(), "");
    expect_error(
        "apply",
        &["m", "threshold=0"],
        models.path(),
        &["count\n1\n"],
        "Parameter \"threshold\" must be between 0.000000001 and 1",
    );
    expect_error(
        "apply",
        &["m"],
        models.path(),
        &["count,HourOfDay,DayOfWeek\nabc,07,Monday\n"],
        "Feature \"count\" is not a numeric type",
    );
    expect_error(
        "apply",
        &["m"],
        models.path(),
        &["a,a\n1,2\n"],
        "column \"a\" appears more than once",
    );
}

fn chunk(meta: &str) -> Vec<u8> {
    format!("chunked 1.0,{},0\n{meta}", meta.len()).into_bytes()
}

#[test]
fn protocol_violations_get_an_error_reply() {
    let models = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "malformed chunk header"),
        (b"chunked 1.0,9,0\n{oops".to_vec(), "truncated"),
        (b"chunked 1.0,5,0\n{oops".to_vec(), "not JSON"),
        (b"chunked 1.0,4,0\n[1] ".to_vec(), "not a JSON object"),
        (b"chunked 1.0,1000000000000,0\n".to_vec(), "above the limit"),
        (
            chunk(r#"{"action":"execute","finished":false}"#),
            "expected a getinfo chunk first",
        ),
        (
            chunk(r#"{"finished":false}"#),
            "expected a getinfo chunk first, got action \"(none)\"",
        ),
    ];
    for (input, needle) in cases {
        let mut s = Session::start("apply", models.path());
        s.send_raw(&input);
        drop(s.stdin_close());
        let r = s.read_reply().expect("an error reply");
        let e = r.error().unwrap_or_default().to_string();
        assert!(e.contains(needle), "{e:?} should contain {needle:?}");
        let (code, _) = s.finish();
        assert_eq!(code, 1);
    }
}

#[test]
fn session_key_never_reaches_disk() {
    let models = tempfile::tempdir().unwrap();
    let dispatch = tempfile::tempdir().unwrap();
    fit_model(models.path(), dispatch.path().to_str().unwrap());
    for dir in [models.path(), dispatch.path()] {
        for e in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(10).any(|w| w == b"SeSsIoNkEy"),
                "session key found on disk"
            );
        }
    }
}
