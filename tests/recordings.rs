//! Real splunkd traffic recorded by splunk-sdk-python (Apache-2.0; see
//! `crates/scpv2/tests/data/splunk-sdk-python/README.md` for provenance and attribution), fed whole to
//! the binary: each recorded stream gets well-formed replies.

mod support;

const SDK63: &str = "searchcommands/recordings/scpv2/Splunk-6.3/";

/// Feeds each whole recording to `smbdensity apply`: the recorded arguments are not ours, so the
/// getinfo reply is an argument error, sent as one well-formed chunk with nothing after it.
#[test]
fn binary_answers_every_recording_cleanly() {
    let models = tempfile::tempdir().unwrap();
    for rel in [
        format!("{SDK63}countmatches.input.gz"),
        format!("{SDK63}generatehello.input.gz"),
        format!("{SDK63}pypygeneratetext.input.gz"),
        format!("{SDK63}sum.reduce.input.gz"),
        "unit/data/custom_search/multibyte_input.gz".to_string(),
    ] {
        let mut s = support::Session::start("apply", models.path());
        s.send_raw(&support::recording(&rel));
        drop(s.stdin_close());
        let reply = s.read_reply().unwrap_or_else(|| panic!("{rel}: no reply"));
        assert!(reply.error().is_some(), "{rel}: {:?}", reply.meta);
        let (code, _) = s.finish();
        assert_eq!(code, 1, "{rel}");
    }
}
