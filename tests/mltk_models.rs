//! Models saved by Splunk MLTK (`__mlspl_<name>.mlmodel`, built by `tests/data/mltk_models/make_fixtures.py`)
//! applied through the real binary: they must score `apply.csv` exactly as MLTK would (the script's
//! `expected_<model>.csv`) and exactly as the equivalent model fitted by our own `fit` on the same
//! training data, except that an MLTK model also matches by-field text such as `7` to MLTK's integer group.

mod support;

use std::path::{Path, PathBuf};

use smbdensity::model::store::{ModelFormat, ModelStore};
use smbdensity::spl::{ModelName, Namespace};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mltk_models")
}

/// A models directory holding a copy of the MLTK fixtures.
fn models_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixtures().join("lookups")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

fn read_csv(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(bytes);
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn run(line: &str, models: &Path, input: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let (out, err, code) = support::run_local(line, models, input);
    assert_eq!(code, 0, "`{line}` failed: {err}");
    read_csv(&out)
}

fn run_err(line: &str, models: &Path) -> String {
    let input = std::fs::read(fixtures().join("apply.csv")).unwrap();
    let (_, err, code) = support::run_local(line, models, &input);
    assert_ne!(code, 0, "`{line}` should fail");
    err
}

fn column(table: &(Vec<String>, Vec<Vec<String>>), name: &str) -> Vec<String> {
    let i = table
        .0
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", table.0));
    table.1.iter().map(|r| r[i].clone()).collect()
}

/// Row numbers of `apply.csv` whose HourOfDay is not two-digit text (only MLTK models match them).
fn unpadded_rows(apply: &(Vec<String>, Vec<Vec<String>>)) -> Vec<usize> {
    column(apply, "HourOfDay")
        .iter()
        .enumerate()
        .filter(|(_, h)| h.len() != 2)
        .map(|(i, _)| i)
        .collect()
}

/// Applies MLTK model `mltk` and the native model fitted by `fit_line`, and compares them with each
/// other and, when given, with the script's expected MLTK output.
fn compare(mltk: &str, fit_line: &str, apply_params: &str, expected: Option<&str>) {
    let models = models_dir();
    let train = std::fs::read(fixtures().join("train.csv")).unwrap();
    let input = std::fs::read(fixtures().join("apply.csv")).unwrap();
    run(fit_line, models.path(), &train);
    let native_name = fit_line.rsplit(' ').next().unwrap();
    let ours = run(
        &format!("apply {mltk} {apply_params}"),
        models.path(),
        &input,
    );
    let native = run(
        &format!("apply {native_name} {apply_params}"),
        models.path(),
        &input,
    );
    assert_eq!(ours.0, native.0, "columns differ");
    let apply = read_csv(&input);
    // Only a model grouped by HourOfDay treats `7` differently from `07`.
    let special = if fit_line.contains("HourOfDay") {
        unpadded_rows(&apply)
    } else {
        Vec::new()
    };
    let mut scored_special = 0;
    for (r, (a, b)) in ours.1.iter().zip(&native.1).enumerate() {
        if special.contains(&r) {
            // Native models keep text keys, so `7` is an unseen group there; MLTK's int group matches.
            assert!(b.iter().skip(3).all(String::is_empty), "row {r}: {b:?}");
            scored_special += usize::from(a.iter().skip(3).any(|c| !c.is_empty()));
        } else {
            for (c, (x, y)) in a.iter().zip(b).enumerate() {
                let name = &ours.0[c];
                let same = if name.starts_with("ProbabilityDensity") {
                    let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                    (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
                } else {
                    x == y
                };
                assert!(
                    same,
                    "{mltk} row {r} column {name}: MLTK model {x:?}, native {y:?}"
                );
            }
        }
    }
    if let Some(expected) = expected {
        let want = read_csv(&std::fs::read(fixtures().join(expected)).unwrap());
        for name in &want.0 {
            assert_eq!(
                column(&ours, name),
                column(&want, name),
                "{mltk}: column {name} differs from MLTK's"
            );
        }
        assert!(scored_special > 0 || special.is_empty());
    }
}

#[test]
fn mltk_normal_by_hour_and_day_matches_mltk_and_native() {
    compare(
        "smb_norm",
        r#"fit DensityFunction count by "HourOfDay,DayOfWeek" dist=norm into native_norm"#,
        "",
        Some("expected_smb_norm.csv"),
    );
}

#[test]
fn mltk_exponential_matches_mltk_and_native() {
    compare(
        "smb_expon",
        r#"fit DensityFunction count by "HourOfDay,DayOfWeek" dist=expon threshold=0.005 into native_expon"#,
        "",
        Some("expected_smb_expon.csv"),
    );
}

#[test]
fn apply_threshold_overrides_the_mltk_models() {
    compare(
        "smb_norm",
        r#"fit DensityFunction count by "HourOfDay,DayOfWeek" dist=norm into native_norm"#,
        "threshold=0.001",
        None,
    );
    compare(
        "smb_expon",
        r#"fit DensityFunction count by "HourOfDay,DayOfWeek" dist=expon into native_expon"#,
        r#"threshold="0.01,0.2""#,
        None,
    );
}

#[test]
fn mltk_auto_without_by_clause_keeps_show_density() {
    compare(
        "flat_auto",
        "fit DensityFunction count dist=norm show_density=true into native_flat",
        "",
        None,
    );
}

#[test]
fn mltk_lower_threshold_by_hour() {
    compare(
        "hour_lower",
        "fit DensityFunction count by HourOfDay dist=norm lower_threshold=0.05 into native_hour",
        "",
        None,
    );
}

#[test]
fn unusable_mltk_models_fail_with_clear_errors_and_kde_applies() {
    let models = models_dir();
    let e = run_err("apply linreg", models.path());
    assert!(
        e.contains("__mlspl_linreg.mlmodel") && e.contains("LinearRegression"),
        "{e}"
    );
    // MLTK's KDE models are rebuilt from their stored sample and apply like native ones.
    let input = std::fs::read(fixtures().join("apply.csv")).unwrap();
    let kde = run("apply kde_model", models.path(), &input);
    assert!(kde.0.iter().any(|h| h == "IsOutlier(count)"), "{:?}", kde.0);
    let e = run_err("apply corrupt", models.path());
    assert!(
        e.contains("__mlspl_corrupt.mlmodel") && e.contains("base64"),
        "{e}"
    );
    let e = run_err("apply nothing_here", models.path());
    assert!(e.contains("__mlspl_nothing_here.mlmodel"), "{e}");
}

#[test]
fn store_lists_mltk_models_and_never_deletes_them() {
    let models = models_dir();
    let store = ModelStore::new(models.path());
    let listed = store.list().unwrap();
    let names: Vec<&str> = listed.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "corrupt",
            "flat_auto",
            "hour_lower",
            "kde_model",
            "linreg",
            "smb_expon",
            "smb_norm"
        ]
    );
    for l in &listed {
        assert_eq!(l.format, ModelFormat::Mltk);
        match l.name.as_str() {
            "linreg" => {
                let e = l.header.as_ref().unwrap_err().to_string();
                assert!(e.contains("LinearRegression"), "{e}");
            }
            "smb_norm" => {
                let h = l.header.as_ref().unwrap();
                assert_eq!(h.algorithm, "DensityFunction");
                assert_eq!(h.feature, "count");
                assert_eq!(h.by_fields, ["HourOfDay", "DayOfWeek"]);
                assert_eq!(h.group_count, 8);
            }
            _ => assert!(l.header.is_ok(), "{}: {:?}", l.name, l.header),
        }
    }
    let name = ModelName {
        name: "smb_norm".into(),
        namespace: Namespace::App,
    };
    let e = store.delete(&name).unwrap_err().to_string();
    assert!(e.contains("MLTK"), "{e}");
    assert!(models.path().join("__mlspl_smb_norm.mlmodel").is_file());

    // A native model of the same name shadows the MLTK one, and is listed first.
    let train = std::fs::read(fixtures().join("train.csv")).unwrap();
    run(
        "fit DensityFunction count dist=norm into smb_norm",
        models.path(),
        &train,
    );
    assert!(store.load_header(&name).unwrap().by_fields.is_empty());
    let listed = store.list().unwrap();
    let both: Vec<ModelFormat> = listed
        .iter()
        .filter(|l| l.name == "smb_norm")
        .map(|l| l.format)
        .collect();
    assert_eq!(both, [ModelFormat::Native, ModelFormat::Mltk]);
}
