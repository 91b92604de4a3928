//! The fuzz corpus on the stable toolchain: every file committed under `fuzz/corpus/<target>/` goes
//! through the same harness function (`smbdensity::fuzzing`) that the `cargo fuzz` target runs, so CI
//! machines without nightly still replay everything the fuzzers found interesting.
//!
//! `make_fuzz_seeds` (ignored) writes the initial seeds: the SCPv2 recordings split into streams, chunks
//! and bodies, command lines, and model files made by the real binary.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};

type Harness = fn(&[u8]);

const TARGETS: &[(&str, Harness)] = &[
    ("chunk_reader", smbdensity::fuzzing::chunk_reader),
    ("body", smbdensity::fuzzing::body),
    ("spl_args", smbdensity::fuzzing::spl_args),
    ("model_decode", smbdensity::fuzzing::model_decode),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

#[test]
fn committed_corpus_replays_cleanly() {
    for (target, harness) in TARGETS {
        let dir = corpus_dir(target);
        let mut n = 0;
        for e in std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
        {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let r = std::panic::catch_unwind(|| harness(&bytes));
            assert!(r.is_ok(), "{target}: {} fails", path.display());
            n += 1;
        }
        assert!(n >= 5, "{target}: only {n} corpus files");
    }
}

/// Regression inputs: each once crashed or hung a harness, or exercises an edge the fuzzers rely on.
#[test]
fn regression_inputs() {
    let f = smbdensity::fuzzing::chunk_reader;
    f(b"");
    f(b"chunked 1.0,99999999999999999999,0\n");
    f(b"chunked 1.0,18446744073709551615,18446744073709551615\n");
    f(b"\n\n\r\n\n");
    let b = smbdensity::fuzzing::body;
    b(b"\xEF\xBB\xBF");
    b(b"a,__mv_a\n1,$\n2,$$\n3,$$$\n4,$a$;\n");
    b(b"\"");
    let s = smbdensity::fuzzing::spl_args;
    s(b"\"");
    s(b"smbdensity\0count\0into\0app:");
    s(b"fit DensityFunction x by \"a,b\" into user:../x");
    let m = smbdensity::fuzzing::model_decode;
    m(b"");
    m(b"\x00");
    m(b"\xff\xff");
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Splits a recorded SCPv2 stream into its chunks (whole chunk bytes, and the body of each).
fn split_chunks(stream: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = stream;
    while let Some(nl) = rest.iter().position(|&c| c == b'\n') {
        let Some((m, b)) = scpv2::framing::parse_header(&rest[..=nl]) else {
            rest = &rest[nl + 1..];
            continue;
        };
        let end = (nl + 1 + m as usize + b as usize).min(rest.len());
        let body_start = (nl + 1 + m as usize).min(end);
        out.push((rest[..end].to_vec(), rest[body_start..end].to_vec()));
        rest = &rest[end..];
    }
    out
}

/// Cuts `bytes` to at most `max` bytes at a line end.
fn cut(bytes: &[u8], max: usize) -> Vec<u8> {
    if bytes.len() <= max {
        return bytes.to_vec();
    }
    let end = bytes[..max]
        .iter()
        .rposition(|&c| c == b'\n')
        .map(|i| i + 1)
        .unwrap_or(max);
    bytes[..end].to_vec()
}

#[test]
#[ignore = "writes the initial fuzz seeds; run by hand: SEED_DIR=<dir> cargo test --test fuzz_corpus -- --ignored"]
fn make_fuzz_seeds() {
    let out = PathBuf::from(std::env::var("SEED_DIR").expect("SEED_DIR"));
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let d = out.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    };
    let rec = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crates/scpv2/tests/data/splunk-sdk-python/tests");
    let files = [
        "searchcommands/recordings/scpv2/Splunk-6.3/countmatches.input.gz",
        "searchcommands/recordings/scpv2/Splunk-6.3/sum.map.input.gz",
        "searchcommands/recordings/scpv2/Splunk-6.3/sum.reduce.input.gz",
        "searchcommands/recordings/scpv2/Splunk-6.3/generatehello.input.gz",
        "searchcommands/recordings/scpv2/Splunk-6.3/pypygeneratetext.input.gz",
        "unit/data/custom_search/multibyte_input.gz",
    ];
    for f in files {
        let stream = gunzip(&rec.join(f));
        let name = Path::new(f).file_name().unwrap().to_str().unwrap();
        write(
            "chunk_reader",
            &format!("{name}.stream"),
            &cut(&stream, 8192),
        );
        for (i, (chunk, body)) in split_chunks(&stream).into_iter().enumerate().take(3) {
            write(
                "chunk_reader",
                &format!("{name}.chunk{i}"),
                &cut(&chunk, 8192),
            );
            if !body.is_empty() {
                write("body", &format!("{name}.body{i}"), &cut(&body, 8192));
            }
        }
    }
    write(
        "body",
        "mv",
        b"count,src,__mv_count,__mv_src\n12,a,,\n\"1\n2\",b,$1$;$2$,\n,c,,$$;$x$$y$\n",
    );
    write(
        "body",
        "crlf_bom",
        b"\xEF\xBB\xBFcount,h\r\n1,\"a\r\nb\"\r\n",
    );
    let lines = [
        "smbdensity count by \"HourOfDay,DayOfWeek\" into smb_pdfmodel",
        "DensityFunction count by HourOfDay,DayOfWeek dist=expon threshold=\"0.01,0.05\" into app:m as out",
        "smbdensity count lower_threshold=0.001 upper_threshold=0.01 show_density=true apply=false",
        "smbdensity count dist=norm partial_fit=true into user:m",
        "smb_pdfmodel threshold=0.001",
        "m as anomaly show_density=t lower_threshold=0.1",
    ];
    for (i, l) in lines.iter().enumerate() {
        write("spl_args", &format!("line{i}"), l.as_bytes());
        let toks = smbdensity::spl::tokenize(l).unwrap().join("\0");
        write("spl_args", &format!("tokens{i}"), toks.as_bytes());
    }
    // Models from the real binary: no by-fields, two by-fields, expon with several thresholds.
    let models = tempfile::tempdir().unwrap();
    let mut train = String::from("count,h,d\n");
    for i in 0..60u32 {
        train.push_str(&format!(
            "{},{:02},{}\n",
            10 + i % 7,
            i % 3,
            ["Mon", "Tue"][i as usize % 2]
        ));
    }
    let fits = [
        ("m0", "fit smbdensity count dist=norm into m0"),
        ("m1", "fit smbdensity count by \"h,d\" dist=norm into m1"),
        (
            "m2",
            "fit smbdensity count by h dist=expon threshold=\"0.01,0.05\" show_density=true into m2",
        ),
        (
            "m3",
            "fit DensityFunction count by d dist=norm lower_threshold=0.01 upper_threshold=0.05 into m3 as out",
        ),
    ];
    for (name, line) in fits {
        let (_, err, code) = support::run_local(line, models.path(), train.as_bytes());
        assert_eq!(code, 0, "{line}: {err}");
        let file = std::fs::read(models.path().join(format!("__smbdensity_{name}.model"))).unwrap();
        write("model_decode", &format!("{name}.file"), &file);
        write(
            "model_decode",
            &format!("{name}.wrapped"),
            &smbdensity::fuzzing::model_seed(&file).unwrap(),
        );
    }
}
