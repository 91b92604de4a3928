//! `summary`, `listmodels`, `deletemodel` and `partial_fit` through SCPv2 and the local driver.

mod support;

use serde_json::json;
use support::{Session, run_local};

fn sample(hosts: usize, days: usize) -> Vec<u8> {
    let out = std::process::Command::new(support::bin())
        .args([
            "sample",
            "--hosts",
            &hosts.to_string(),
            "--days",
            &days.to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes);
    r.records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect()
}

#[test]
fn generating_commands_through_the_protocol() {
    let models = tempfile::tempdir().unwrap();
    let (_, err, code) = run_local(
        r#"fit smbdensity count by "HourOfDay,DayOfWeek" dist=expon into smb_pdfmodel"#,
        models.path(),
        &sample(30, 14),
    );
    assert_eq!(code, 0, "{err}");
    std::fs::write(
        models.path().join("__smbdensity_broken.model"),
        b"SMBDMODL garbage",
    )
    .unwrap();

    let mut s = Session::start("summary", models.path());
    let info = s.getinfo(&["smb_pdfmodel"], "");
    assert_eq!(info.meta, json!({"type": "reporting", "generating": true}));
    let r = s.execute(true, b"");
    assert_eq!(r.meta["finished"], true);
    let rows = r.rows();
    assert_eq!(
        rows[0],
        [
            "HourOfDay",
            "DayOfWeek",
            "type",
            "min",
            "max",
            "mean",
            "std",
            "cardinality",
            "distance",
            "other"
        ]
    );
    assert_eq!(rows.len(), 1 + 168);
    assert_eq!(&rows[1][..3], ["00", "Friday", "Exponential"]);
    assert_eq!(s.finish().0, 0);

    let mut s = Session::start("listmodels", models.path());
    s.getinfo(&[], "");
    let r = s.execute(true, b"");
    let rows = r.rows();
    assert_eq!(rows[0][..3], ["name", "type", "options"]);
    let names: Vec<(&str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(
        names,
        [("broken", "Unknown"), ("smb_pdfmodel", "DensityFunction")]
    );
    let warns = r.messages("WARN");
    assert!(
        warns.len() == 1 && warns[0].starts_with("listmodels: Failed to load model \"broken\""),
        "{warns:?}"
    );
    assert_eq!(s.finish().0, 0);

    let mut s = Session::start("deletemodel", models.path());
    s.getinfo(&["smb_pdfmodel"], "");
    let r = s.execute(true, b"");
    assert_eq!(r.messages("INFO"), ["Deleted model \"smb_pdfmodel\""]);
    assert_eq!(s.finish().0, 0);
    assert!(
        !models
            .path()
            .join("__smbdensity_smb_pdfmodel.model")
            .exists()
    );

    let mut s = Session::start("deletemodel", models.path());
    s.getinfo(&["smb_pdfmodel"], "");
    let r = s.execute(true, b"");
    assert_eq!(r.error(), Some("model \"smb_pdfmodel\" does not exist."));
    assert_eq!(s.finish().0, 1);

    let mut s = Session::start("deletemodel", models.path());
    let r = s.getinfo(&["../../etc/passwd"], "");
    assert_eq!(r.error(), Some("Invalid model name \"../../etc/passwd\""));
    assert_eq!(s.finish().0, 1);
}

/// partial_fit over two halves equals one fit over all rows (streaming statistics), and adds new groups.
#[test]
fn partial_fit_equals_a_full_fit() {
    let models = tempfile::tempdir().unwrap();
    let data = sample(40, 14);
    let text = String::from_utf8(data.clone()).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    // The first week without its Sunday, then the rest: most groups merge, Sunday's are new.
    let half = rows.len() / 2;
    type Numbered<'a> = Vec<(usize, &'a str)>;
    let (first, second): (Numbered, Numbered) = rows
        .iter()
        .copied()
        .enumerate()
        .partition(|(i, r)| *i < half && !r.ends_with("Sunday"));
    let first: Vec<&str> = first.into_iter().map(|(_, r)| r).collect();
    let second: Vec<&str> = second.into_iter().map(|(_, r)| r).collect();
    let join = |rs: &[&str]| format!("{header}\n{}\n", rs.join("\n")).into_bytes();
    let fit = r#"fit smbdensity count by "HourOfDay,DayOfWeek" dist=norm threshold=0.005 into m"#;
    assert_eq!(run_local(fit, models.path(), &join(&first)).2, 0);
    let (_, err, code) = run_local(
        r#"fit smbdensity count by "HourOfDay,DayOfWeek" dist=norm threshold=0.2 into m partial_fit=true"#,
        models.path(),
        &join(&second),
    );
    assert_eq!(code, 0);
    assert!(
        err.contains("Partial fit on existing model ignores newly supplied parameters"),
        "{err}"
    );
    assert_eq!(
        run_local(&fit.replace("into m", "into full"), models.path(), &data).2,
        0
    );
    let a = csv_rows(&run_local("summary m", models.path(), b"").0);
    let b = csv_rows(&run_local("summary full", models.path(), b"").0);
    assert_eq!(a.len(), 169);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x[..5], y[..5], "keys, type, min, max");
        assert_eq!(x[7], y[7], "cardinality");
        for c in [5, 6] {
            if let (Ok(p), Ok(q)) = (x[c].parse::<f64>(), y[c].parse::<f64>()) {
                assert!(
                    (p - q).abs() <= 1e-12 * p.abs().max(q.abs()),
                    "{} vs {}",
                    x[c],
                    y[c]
                );
            } else {
                assert_eq!(x[c], y[c]);
            }
        }
    }
    // The model kept its own threshold (0.005), not the partial fit's 0.2.
    let (out, _, _) = run_local("apply m", models.path(), &join(&first[..3]));
    assert!(
        String::from_utf8(out).unwrap().contains(":0.0025"),
        "the stored threshold is used"
    );
}

/// `sample`, `full_sample`, `show_options` and `random_state`: MLTK's columns, seeded and reproducible.
#[test]
fn sampled_values_and_options() {
    let models = tempfile::tempdir().unwrap();
    let data = sample(10, 7);
    let line = r#"fit smbdensity count by "HourOfDay,DayOfWeek" dist=norm threshold=0.05 sample=true full_sample=true show_options="split_by,nope,feature_variables" random_state=11 into m"#;
    let (a, err, code) = run_local(line, models.path(), &data);
    assert_eq!(code, 0, "{err}");
    let (b, _, _) = run_local(line, models.path(), &data);
    assert_eq!(a, b, "random_state makes the draws reproducible");
    let rows = csv_rows(&a);
    let col = |n: &str| {
        rows[0]
            .iter()
            .position(|c| c == n)
            .unwrap_or_else(|| panic!("{n} in {:?}", rows[0]))
    };
    let (ranges, sampled, full, opts) = (
        col("BoundaryRanges"),
        col("SampledValue"),
        col("FullSampledValue"),
        col("_Options"),
    );
    assert_eq!(
        &rows[0][ranges..],
        [
            "BoundaryRanges",
            "FullSampledValue",
            "SampledValue",
            "_Options"
        ]
    );
    for r in &rows[1..] {
        let x: f64 = r[sampled].parse().unwrap();
        let _: f64 = r[full].parse().unwrap();
        for line in r[ranges].split('\n') {
            let parts: Vec<&str> = line.split(':').collect();
            let lo: f64 = parts[0].replace("Infinity", "inf").parse().unwrap();
            let hi: f64 = parts[1].replace("Infinity", "inf").parse().unwrap();
            assert!(
                !(lo + 1e-4 < x && x < hi - 1e-4),
                "sampled value {x} lies in outlier range {line}"
            );
        }
        assert_eq!(
            r[opts],
            r#"{"split_by": ["HourOfDay", "DayOfWeek"], "feature_variables": ["count"]}"#
        );
    }
    let (c, _, _) = run_local(
        &line.replace("random_state=11", "random_state=12"),
        models.path(),
        &data,
    );
    assert_ne!(a, c, "another seed draws other values");
}

/// `max_groups` and `max_model_size_mb` stop a fit with MLTK-style messages, and nothing is saved.
#[test]
fn limits_are_enforced_before_saving() {
    let models = tempfile::tempdir().unwrap();
    let conf = models.path().join("limits.conf");
    let run = |limits: &str, line: &str| {
        std::fs::write(&conf, format!("[limits]\n{limits}\n")).unwrap();
        let mut child = std::process::Command::new(support::bin())
            .args(["run", line, "--models"])
            .arg(models.path())
            .env("SMBDENSITY_CONF", &conf)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        // The child may refuse the search at getinfo and exit before reading all of its input.
        let _ = child.stdin.take().unwrap().write_all(&sample(10, 2));
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(
        "max_groups = 5",
        r#"fit smbdensity count by "HourOfDay,DayOfWeek" dist=norm into m"#,
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("The number of groups can not exceed 5"),
        "{err}"
    );
    let (code, err) = run(
        "max_model_size_mb = 0",
        r#"fit smbdensity count by "HourOfDay,DayOfWeek" dist=norm into m"#,
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("Model exceeds size limit ("), "{err}");
    let (code, err) = run(
        "max_fields_in_by_clause = 1",
        r#"fit smbdensity count by "HourOfDay,DayOfWeek" into m"#,
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("The number of fields in the by clause cannot exceed 1"),
        "{err}"
    );
    assert!(
        !models.path().join("__smbdensity_m.model").exists(),
        "a refused fit saves nothing"
    );
}
