//! Checks the Gaussian KDE and Beta fits against MLTK's recorded outputs in `tests/data/mltk`
//! (apply flags, BoundaryRanges text, densities and summary values), with the README's tolerances.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use smbdensity::density::beta::Beta;
use smbdensity::density::kde::GaussianKde;
use smbdensity::density::{BoundaryRange, Threshold, is_outlier, pyfmt, ranges_text};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/mltk");

fn testdata() -> PathBuf {
    let p = PathBuf::from(TESTDATA);
    assert!(
        p.join("README.md").is_file(),
        "MLTK reference cases not found at {TESTDATA}"
    );
    p
}

/// Splits SPL arguments on whitespace, keeping double-quoted parts together (quotes kept).
fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// The parts of `fit`/`apply` arguments these tests need.
#[derive(Default, Debug)]
struct Args {
    by: Vec<String>,
    params: BTreeMap<String, String>,
    as_name: Option<String>,
}

fn parse_args(s: &str) -> Args {
    let toks = tokens(s);
    let mut a = Args::default();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if t.eq_ignore_ascii_case("by") {
            a.by = unquote(&toks[i + 1])
                .split(',')
                .map(|f| f.trim().to_string())
                .collect();
            i += 1;
        } else if t.eq_ignore_ascii_case("as") {
            a.as_name = Some(unquote(&toks[i + 1]).to_string());
            i += 1;
        } else if t.eq_ignore_ascii_case("into") {
            i += 1;
        } else if let Some((k, v)) = t.split_once('=') {
            a.params
                .insert(k.trim().to_string(), unquote(v.trim()).to_string());
        }
        i += 1;
    }
    a
}

fn floats(s: &str) -> Vec<f64> {
    s.split(',')
        .map(|x| x.trim().parse().expect("threshold is a float"))
        .collect()
}

fn is_true(s: Option<&String>) -> bool {
    matches!(
        s.map(|s| s.to_ascii_lowercase()).as_deref(),
        Some("1" | "t" | "true" | "y" | "yes" | "enable" | "enabled")
    )
}

/// The thresholds in effect at apply, each with the text MLTK puts in a `_th=` column name.
fn thresholds(
    fit: &BTreeMap<String, String>,
    apply: &BTreeMap<String, String>,
) -> Vec<(String, Threshold)> {
    let has = |p: &BTreeMap<String, String>| {
        ["threshold", "lower_threshold", "upper_threshold"]
            .iter()
            .any(|k| p.contains_key(*k))
    };
    let p = if has(apply) { apply } else { fit };
    let label = |v: f64| pyfmt::repr(v);
    if let Some(t) = p.get("threshold") {
        return floats(t)
            .into_iter()
            .map(|t| (label(t), Threshold::Total(t)))
            .collect();
    }
    match (p.get("lower_threshold"), p.get("upper_threshold")) {
        (Some(l), Some(u)) => {
            let (l, u) = (floats(l)[0], floats(u)[0]);
            vec![(label(l), Threshold::LowerUpper(l, u))]
        }
        (Some(l), None) => floats(l)
            .into_iter()
            .map(|l| (label(l), Threshold::Lower(l)))
            .collect(),
        (None, Some(u)) => floats(u)
            .into_iter()
            .map(|u| (label(u), Threshold::Upper(u)))
            .collect(),
        (None, None) => vec![("0.01".into(), Threshold::Total(0.01))],
    }
}

enum Fitted {
    Kde(GaussianKde),
    Beta(Beta),
}

impl Fitted {
    fn boundaries(&self, t: Threshold, integral: bool) -> Vec<BoundaryRange> {
        match self {
            Fitted::Kde(k) => k.boundaries(t),
            Fitted::Beta(b) => b.boundaries(t, integral),
        }
    }
    fn pdf(&self, x: f64) -> f64 {
        match self {
            Fitted::Kde(k) => k.pdf(x),
            Fitted::Beta(b) => b.pdf(x),
        }
    }
    fn range(&self) -> (f64, f64) {
        match self {
            Fitted::Kde(k) => (k.min, k.max),
            Fitted::Beta(b) => (b.min, b.max),
        }
    }
}

type Table = (Vec<String>, Vec<Vec<String>>);

fn read_csv(p: &Path) -> Table {
    let mut r = csv::Reader::from_path(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let headers = r
        .headers()
        .expect("csv header")
        .iter()
        .map(String::from)
        .collect();
    let rows = r
        .records()
        .map(|rec| rec.expect("csv row").iter().map(String::from).collect())
        .collect();
    (headers, rows)
}

fn col(headers: &[String], name: &str) -> usize {
    headers
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn col_of(headers: &[String], name: &str) -> usize {
    col(headers, name)
}

fn rel_close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) + 1e-300
}

/// Parses `begin:end:area` lines.
fn parse_ranges(s: &str) -> Vec<(f64, f64, f64)> {
    if s.is_empty() {
        return Vec::new();
    }
    s.lines()
        .map(|l| {
            let v: Vec<f64> = l
                .split(':')
                .map(|x| match x {
                    "Infinity" => f64::INFINITY,
                    "-Infinity" => f64::NEG_INFINITY,
                    x => x.parse().expect("range number"),
                })
                .collect();
            (v[0], v[1], v[2])
        })
        .collect()
}

/// The README's Beta tolerance: same lines and infinite ends, finite bounds within 0.2 % of the group's
/// range, areas within 0.001. Returns the largest bound error as a fraction of the range.
fn beta_ranges_close(got: &str, want: &str, width: f64) -> Result<f64, String> {
    let (g, w) = (parse_ranges(got), parse_ranges(want));
    if g.len() != w.len() {
        return Err(format!("{} ranges, want {}", g.len(), w.len()));
    }
    let mut worst: f64 = 0.0;
    for (a, b) in g.iter().zip(&w) {
        for (x, y) in [(a.0, b.0), (a.1, b.1)] {
            if x.is_infinite() || y.is_infinite() {
                if x != y {
                    return Err(format!("bound {x} vs {y}"));
                }
            } else {
                worst = worst.max((x - y).abs() / width);
            }
        }
        if (a.2 - b.2).abs() > 0.001 + 1e-12 {
            return Err(format!("area {} vs {}", a.2, b.2));
        }
    }
    if worst > 0.002 {
        return Err(format!("bound off by {:.4}% of range", worst * 100.0));
    }
    Ok(worst)
}

/// Outcome of one case: hard failures, and notes that only inform.
#[derive(Default)]
struct Outcome {
    failures: Vec<String>,
    notes: Vec<String>,
    worst_beta_bound: f64,
    /// Beta: BoundaryRanges cells that differ from MLTK's text (within tolerance or not).
    inexact_text: usize,
    /// Beta: largest relative difference of alpha, beta, loc, scale from MLTK's.
    worst_param: f64,
}

fn hour_key(v: &str) -> String {
    // MLTK types `07` as the integer 7, so its summary shows `7`.
    v.parse::<i64>()
        .map(|i| i.to_string())
        .unwrap_or_else(|_| v.to_string())
}

fn run_case(dir: &Path) -> Outcome {
    let mut out = Outcome::default();
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let dist = case["dist"].as_str().unwrap();
    let integral = case["integer_data"].as_bool().unwrap_or(false);
    let is_beta = dist == "beta";
    let sensitive = case["beta_optimizer_sensitive"].as_bool().unwrap_or(false);
    let bug_cols: Vec<String> = case["mltk_bug_columns"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    let fit = parse_args(case["fit_args"].as_str().unwrap());
    let apply = parse_args(case["apply_args"].as_str().unwrap());
    let params = if apply.params.is_empty() {
        &fit.params
    } else {
        &apply.params
    };
    let ths = thresholds(&fit.params, &apply.params);
    let show_density = is_true(params.get("show_density"));

    // Fit: group the training rows by the by-field text.
    let (ih, irows) = read_csv(&dir.join("input.csv"));
    let count_i = col(&ih, "count");
    let by_i: Vec<usize> = fit.by.iter().map(|b| col(&ih, b)).collect();
    let mut groups: BTreeMap<Vec<String>, Vec<f64>> = BTreeMap::new();
    for r in &irows {
        if r[count_i].is_empty() {
            continue;
        }
        let key = by_i.iter().map(|i| r[*i].clone()).collect();
        groups
            .entry(key)
            .or_default()
            .push(r[count_i].parse().unwrap());
    }
    let mut models: HashMap<Vec<String>, Fitted> = HashMap::new();
    for (k, v) in &groups {
        let f = if is_beta {
            Fitted::Beta(Beta::fit(v).unwrap_or_else(|e| panic!("{}: {e}", dir.display())))
        } else {
            Fitted::Kde(
                GaussianKde::fit(v, 10_000, 0).unwrap_or_else(|e| panic!("{}: {e}", dir.display())),
            )
        };
        models.insert(k.clone(), f);
    }
    let mut cache: HashMap<(Vec<String>, usize), Vec<BoundaryRange>> = HashMap::new();

    // Apply.
    let (eh, erows) = read_csv(&dir.join("expected_apply.csv"));
    let (ah, arows) = read_csv(&dir.join("apply.csv"));
    assert_eq!(erows.len(), arows.len());
    let a_count = col(&ah, "count");
    let a_by: Vec<usize> = fit.by.iter().map(|b| col(&ah, b)).collect();
    let multi = ths.len() > 1;
    let outlier_name = |th: &str| {
        let base = apply.as_name.clone().or(fit.as_name.clone());
        match (base, multi) {
            (Some(n), false) => n,
            (Some(n), true) => format!("{n}_th={th}"),
            (None, false) => "IsOutlier(count)".into(),
            (None, true) => format!("IsOutlier_th={th}(count)"),
        }
    };
    let br_name = |th: &str| {
        if multi {
            format!("BoundaryRanges_th={th}")
        } else {
            "BoundaryRanges".into()
        }
    };
    let mut want_cols: Vec<String> = ah.clone();
    want_cols.extend(ths.iter().map(|(l, _)| outlier_name(l)));
    want_cols.extend(ths.iter().map(|(l, _)| br_name(l)));
    if show_density {
        want_cols.push("ProbabilityDensity(count)".into());
    }
    if want_cols != eh {
        out.failures
            .push(format!("columns {want_cols:?} vs {eh:?}"));
        return out;
    }
    let mut flag_mismatch = 0;
    let mut text_mismatch = 0;
    let mut dens_mismatch = 0;
    for (row_no, (ar, er)) in arows.iter().zip(&erows).enumerate() {
        let key: Vec<String> = a_by.iter().map(|i| ar[*i].clone()).collect();
        let model = models.get(&key);
        let x: Option<f64> = if ar[a_count].is_empty() {
            None
        } else {
            ar[a_count].parse().ok()
        };
        let (Some(model), Some(x)) = (model, x) else {
            for c in ah.len()..eh.len() {
                if !er[c].is_empty() {
                    out.failures
                        .push(format!("row {row_no}: {} should be empty", eh[c]));
                }
            }
            continue;
        };
        for (ti, (label, th)) in ths.iter().enumerate() {
            let ranges = cache
                .entry((key.clone(), ti))
                .or_insert_with(|| model.boundaries(*th, integral));
            let flag = if is_outlier(ranges, x) { "1.0" } else { "0.0" };
            let oc = col(&eh, &outlier_name(label));
            if er[oc] != flag {
                flag_mismatch += 1;
                out.failures.push(format!(
                    "row {row_no} x={x}: {} = {flag}, want {}",
                    eh[oc], er[oc]
                ));
            }
            let bc = col(&eh, &br_name(label));
            let text = ranges_text(ranges);
            if bug_cols.contains(&eh[bc]) {
                continue;
            }
            if is_beta {
                if text != er[bc] {
                    out.inexact_text += 1;
                }
                let (lo, hi) = model.range();
                match beta_ranges_close(&text, &er[bc], hi - lo) {
                    Ok(w) => out.worst_beta_bound = out.worst_beta_bound.max(w),
                    Err(e) => {
                        text_mismatch += 1;
                        out.failures.push(format!(
                            "row {row_no}: {} {text:?} vs {:?}: {e}",
                            eh[bc], er[bc]
                        ));
                    }
                }
            } else if text != er[bc] {
                text_mismatch += 1;
                out.failures.push(format!(
                    "row {row_no}: {} {text:?}, want {:?}",
                    eh[bc], er[bc]
                ));
            }
        }
        if show_density {
            let dc = col(&eh, "ProbabilityDensity(count)");
            let want: f64 = er[dc].parse().unwrap();
            let got = model.pdf(x);
            if is_beta {
                let (lo, hi) = model.range();
                let z = (x - lo) / (hi - lo);
                if (0.02..=0.98).contains(&z) && !rel_close(got, want, 1e-2) {
                    dens_mismatch += 1;
                    out.failures
                        .push(format!("row {row_no}: density {got} vs {want}"));
                }
            } else if !rel_close(got, want, 1e-9) {
                dens_mismatch += 1;
                out.failures
                    .push(format!("row {row_no}: density {got} vs {want}"));
            }
        }
    }
    let _ = (flag_mismatch, text_mismatch, dens_mismatch);

    // Summary.
    let (sh, srows) = read_csv(&dir.join("expected_summary.csv"));
    assert_eq!(srows.len(), models.len(), "summary rows");
    for sr in &srows {
        let key: Vec<String> = fit.by.iter().map(|b| sr[col(&sh, b)].clone()).collect();
        let Some((_, m)) = models.iter().find(|(k, _)| {
            k.iter().zip(&key).enumerate().all(|(i, (a, b))| {
                if fit.by[i] == "HourOfDay" {
                    hour_key(a) == *b
                } else {
                    a == b
                }
            })
        }) else {
            out.failures
                .push(format!("summary group {key:?} not fitted"));
            continue;
        };
        let num = |c: &str| -> f64 { sr[col(&sh, c)].parse().unwrap() };
        let other = &sr[col(&sh, "other")];
        let mut check = |what: &str, got: f64, want: f64, rel: f64| {
            if rel > 0.0 && is_beta {
                out.worst_param = out
                    .worst_param
                    .max((got - want).abs() / want.abs().max(1e-300));
            }
            if !rel_close(got, want, rel) {
                out.failures
                    .push(format!("summary {key:?} {what}: {got} vs {want}"));
            }
        };
        match m {
            Fitted::Kde(k) => {
                check("min", k.min, num("min"), 0.0);
                check("max", k.max, num("max"), 0.0);
                check("cardinality", k.cardinality as f64, num("cardinality"), 0.0);
                check("mean", k.mean, num("mean"), 1e-12);
                check("std", k.std, num("std"), 1e-12);
                let (bw, size) = other
                    .strip_prefix("bandwidth: ")
                    .and_then(|s| s.split_once(", parameter size: "))
                    .expect("KDE other");
                check("bandwidth", k.bandwidth(), bw.parse().unwrap(), 1e-12);
                check("parameter size", k.size as f64, size.parse().unwrap(), 0.0);
                if k.summary_other() != *other {
                    out.notes.push(format!(
                        "summary other {:?} vs {other:?} (within tolerance)",
                        k.summary_other()
                    ));
                }
                for (what, got, col) in [("mean", k.mean, "mean"), ("std", k.std, "std")] {
                    if pyfmt::repr(got) != sr[col_of(&sh, col)] {
                        out.notes.push(format!(
                            "summary {what} {} vs {} (within tolerance)",
                            pyfmt::repr(got),
                            sr[col_of(&sh, col)]
                        ));
                    }
                }
            }
            Fitted::Beta(b) => {
                check("min", b.min, num("min"), 0.0);
                check("max", b.max, num("max"), 0.0);
                check("cardinality", b.cardinality as f64, num("cardinality"), 0.0);
                check("loc", b.loc, num("mean"), 1e-3);
                check("scale", b.scale, num("std"), 1e-3);
                let (a, bb) = other
                    .strip_prefix("Alpha: ")
                    .and_then(|s| s.split_once(", Beta: "))
                    .expect("Beta other");
                check("alpha", b.alpha, a.parse().unwrap(), 1e-3);
                check("beta", b.beta, bb.parse().unwrap(), 1e-3);
            }
        }
    }
    if is_beta && sensitive {
        out.notes.append(&mut out.failures);
        out.notes
            .insert(0, "beta_optimizer_sensitive: informational".into());
    }
    out
}

fn cases(prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no {prefix} cases");
    v
}

fn run_all(prefix: &str) {
    let mut report = String::new();
    let mut failed = 0;
    for dir in cases(prefix) {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let o = run_case(&dir);
        let status = if !o.failures.is_empty() {
            failed += 1;
            "FAIL"
        } else if !o.notes.is_empty() && o.notes.len() > 1 {
            "info"
        } else {
            "ok"
        };
        let _ = write!(report, "{status:4} {name}");
        if prefix == "beta-" {
            let _ = write!(
                report,
                " (worst bound {:.2e} of range, {} inexact range cells, worst parameter rel. diff {:.1e})",
                o.worst_beta_bound, o.inexact_text, o.worst_param
            );
        }
        report.push('\n');
        for f in o.failures.iter().chain(&o.notes).take(8) {
            let _ = writeln!(report, "     {f}");
        }
    }
    println!("{report}");
    assert_eq!(failed, 0, "{failed} {prefix} case(s) failed:\n{report}");
}

#[test]
fn gaussian_kde_cases_match_mltk() {
    run_all("gaussian_kde-");
}

#[test]
fn beta_cases_match_mltk() {
    run_all("beta-");
}

/// `dist=auto` cases are informational (MLTK picks by random draws): check that every group gets a
/// deterministic pick, and print ours next to MLTK's.
#[test]
fn auto_cases_select_deterministically() {
    use smbdensity::density::Metric;
    use smbdensity::density::auto::select;
    for dir in cases("auto-") {
        let case: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
        let fit = parse_args(case["fit_args"].as_str().unwrap());
        let (ih, irows) = read_csv(&dir.join("input.csv"));
        let count_i = col(&ih, "count");
        let by_i: Vec<usize> = fit.by.iter().map(|b| col(&ih, b)).collect();
        let mut groups: BTreeMap<Vec<String>, Vec<f64>> = BTreeMap::new();
        for r in &irows {
            if !r[count_i].is_empty() {
                let key = by_i.iter().map(|i| hour_key(&r[*i])).collect();
                groups
                    .entry(key)
                    .or_default()
                    .push(r[count_i].parse().unwrap());
            }
        }
        let mltk = &case["auto_chosen_by_group"];
        for (k, v) in &groups {
            let a = select(v, Metric::Wasserstein, &[], 10_000, 0).expect("a candidate fits");
            let b = select(v, Metric::Wasserstein, &[], 10_000, 0).expect("a candidate fits");
            assert_eq!(a, b, "selection must be deterministic");
            let key = k.join("_");
            println!(
                "{} {key}: ours {:?} (W1 {:.4}), MLTK {}",
                dir.file_name().unwrap().to_string_lossy(),
                a.chosen.kind(),
                a.distance,
                mltk.get(&key)
                    .or(case["auto_chosen"].get(0))
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            );
        }
    }
}
