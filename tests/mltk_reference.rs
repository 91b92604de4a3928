//! MLTK's own DensityFunction outputs (`tests/data/mltk/`), reproduced through the real binary:
//! fit on `input.csv`, apply on `apply.csv`, compare with `expected_apply.csv` as that folder's README
//! defines (exact text for norm and expon; densities to 1e-9 relative).

mod support;

use std::path::Path;

fn read_csv(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(bytes);
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn close(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()) + 1e-300,
        _ => a == b,
    }
}

/// How closely a case must match.
#[derive(Clone, Copy, PartialEq)]
enum Compare {
    /// Every cell as the README's "exact" rules say.
    Exact,
    /// `dist=auto` (informational in MLTK, whose pick is random): columns, rows, empty cells, and
    /// flags consistent with the printed ranges.
    Structure,
}

/// True when `x` lies strictly inside one of the printed ranges (bounds are rounded to 4 decimals,
/// so values within 1e-4 of a bound are not judged).
fn flag_from_text(ranges: &str, x: f64) -> Option<bool> {
    let mut inside = false;
    for line in ranges.split('\n').filter(|l| !l.is_empty()) {
        let p: Vec<&str> = line.split(':').collect();
        let num = |t: &str| t.replace("Infinity", "inf").parse::<f64>().unwrap();
        let (lo, hi) = (num(p[0]), num(p[1]));
        if (x - lo).abs() < 1e-4 || (x - hi).abs() < 1e-4 {
            return None;
        }
        inside |= lo < x && x < hi;
    }
    Some(inside)
}

/// Runs one case and returns a description of every mismatch.
fn check_case(dir: &Path, mode: Compare) -> Vec<String> {
    let case: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("case.json")).unwrap()).unwrap();
    let models = tempfile::tempdir().unwrap();
    let input = std::fs::read(dir.join("input.csv")).unwrap();
    let fit_line = format!("fit {}", case["fit_args"].as_str().unwrap());
    let (_, err, code) = support::run_local(&fit_line, models.path(), &input);
    if code != 0 {
        return vec![format!("fit failed ({code}): {err}")];
    }
    let apply_line = format!("apply {}", case["apply_args"].as_str().unwrap());
    let mut child_args = vec!["run", &apply_line, "--keep-mv", "--models"];
    let models_str = models.path().to_str().unwrap().to_string();
    child_args.push(&models_str);
    let out = std::process::Command::new(support::bin())
        .args(&child_args)
        .stdin(std::fs::File::open(dir.join("apply.csv")).unwrap())
        .output()
        .unwrap();
    if !out.status.success() {
        return vec![format!(
            "apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )];
    }
    let mut problems = if mode == Compare::Exact {
        check_summary(dir, models.path())
    } else {
        Vec::new()
    };
    let (got_h, got) = read_csv(&out.stdout);
    let (want_h, want) = read_csv(&std::fs::read(dir.join("expected_apply.csv")).unwrap());
    // The __mv_ columns are left out of the reference files; they must equal the derivation from the
    // plain column, and are then dropped.
    let mut keep = Vec::new();
    for (i, name) in got_h.iter().enumerate() {
        if let Some(base) = name.strip_prefix("__mv_") {
            let b = got_h.iter().position(|n| n == base).expect("base column");
            for row in &got {
                let lines: Vec<String> = if row[b].is_empty() {
                    vec![]
                } else {
                    row[b]
                        .split('\n')
                        .map(|l| format!("${}$", l.replace('$', "$$")))
                        .collect()
                };
                if row[i] != lines.join(";") {
                    problems.push(format!("{name} {:?} does not encode {:?}", row[i], row[b]));
                }
            }
        } else {
            keep.push(i);
        }
    }
    let got_h: Vec<&String> = keep.iter().map(|&i| &got_h[i]).collect();
    if got_h != want_h.iter().collect::<Vec<_>>() {
        problems.push(format!("columns {got_h:?}, want {want_h:?}"));
        return problems;
    }
    if got.len() != want.len() {
        problems.push(format!("{} rows, want {}", got.len(), want.len()));
        return problems;
    }
    let count = want_h
        .iter()
        .position(|h| h == "count")
        .expect("count column");
    for (r, (g, w)) in got.iter().zip(&want).enumerate() {
        for (c, &i) in keep.iter().enumerate() {
            let name = &want_h[c];
            if mode == Compare::Structure {
                // A KDE whose level-set search finds no range prints an empty BoundaryRanges, so only
                // the outlier flags' emptiness (unseen group, empty value) must agree.
                if name.starts_with("IsOutlier") && g[i].is_empty() != w[c].is_empty() {
                    problems.push(format!(
                        "row {} column {name}: empty {:?} vs {:?}",
                        r + 1,
                        g[i],
                        w[c]
                    ));
                }
                if name.starts_with("IsOutlier") && !g[i].is_empty() {
                    let ranges = &g[keep[want_h
                        .iter()
                        .position(|h| h.starts_with("BoundaryRanges"))
                        .unwrap()]];
                    let x: f64 = w[count].parse().unwrap();
                    if flag_from_text(ranges, x).is_some_and(|f| f != (g[i] == "1.0")) {
                        problems.push(format!(
                            "row {} flag {} disagrees with ranges {ranges:?}",
                            r + 1,
                            g[i]
                        ));
                    }
                }
                continue;
            }
            let ok = if name.starts_with("ProbabilityDensity") {
                close(&g[i], &w[c])
            } else {
                g[i] == w[c]
            };
            if !ok {
                problems.push(format!(
                    "row {} column {name}: got {:?}, want {:?}",
                    r + 1,
                    g[i],
                    w[c]
                ));
            }
        }
    }
    problems
}

fn rel_close(a: &str, b: &str, tol: f64) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= tol * x.abs().max(y.abs()),
        _ => a == b,
    }
}

/// `summary m` against `expected_summary.csv`: exact `type, min, max, cardinality, other`; `mean`, `std`
/// to 1e-12 relative; by-fields compared as numbers where MLTK typed them (`7` for our `07`).
fn check_summary(dir: &Path, models: &Path) -> Vec<String> {
    let (out, err, code) = support::run_local("summary m", models, b"");
    if code != 0 {
        return vec![format!("summary failed: {err}")];
    }
    let (got_h, got) = read_csv(&out);
    let (want_h, want) = read_csv(&std::fs::read(dir.join("expected_summary.csv")).unwrap());
    if got_h != want_h {
        return vec![format!("summary columns {got_h:?}, want {want_h:?}")];
    }
    if got.len() != want.len() {
        return vec![format!(
            "summary has {} rows, want {}",
            got.len(),
            want.len()
        )];
    }
    let mut problems = Vec::new();
    for (r, (g, w)) in got.iter().zip(&want).enumerate() {
        for (c, name) in want_h.iter().enumerate() {
            let ok = match name.as_str() {
                "distance" => true,
                "mean" | "std" => rel_close(&g[c], &w[c], 1e-12),
                "other" if w[c].starts_with("bandwidth: ") => {
                    // KDE: `bandwidth: <float>, parameter size: <int>`.
                    let split = |t: &str| {
                        let (b, p) = t
                            .trim_start_matches("bandwidth: ")
                            .split_once(", parameter size: ")
                            .unwrap_or(("", ""));
                        (b.to_string(), p.to_string())
                    };
                    let ((gb, gp), (wb, wp)) = (split(&g[c]), split(&w[c]));
                    gp == wp && rel_close(&gb, &wb, 1e-12)
                }
                "type" | "min" | "max" | "cardinality" | "other" => g[c] == w[c],
                _ => rel_close(&g[c], &w[c], 0.0),
            };
            if !ok {
                problems.push(format!(
                    "summary row {} column {name}: got {:?}, want {:?}",
                    r + 1,
                    g[c],
                    w[c]
                ));
            }
        }
    }
    problems
}

fn run_cases(prefixes: &[&str]) {
    run_cases_as(prefixes, Compare::Exact)
}

fn run_cases_as(prefixes: &[&str], mode: Compare) {
    let root = support::data().join("mltk");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| prefixes.iter().any(|pre| n.starts_with(pre)))
        })
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no reference cases found under {}",
        root.display()
    );
    let mut failed = Vec::new();
    for d in &dirs {
        let problems = check_case(d, mode);
        if !problems.is_empty() {
            let name = d.file_name().unwrap().to_string_lossy().into_owned();
            failed.push(format!(
                "{name}:\n  {}",
                problems
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases differ from MLTK:\n{}",
        failed.len(),
        dirs.len(),
        failed.join("\n")
    );
}

#[test]
fn normal_cases_match_mltk() {
    run_cases(&["norm-"]);
}

#[test]
fn exponential_cases_match_mltk() {
    run_cases(&["expon-"]);
}

#[test]
fn gaussian_kde_cases_match_mltk() {
    run_cases(&["gaussian_kde-"]);
}

#[test]
fn auto_cases_have_mltk_structure() {
    run_cases_as(&["auto-"], Compare::Structure);
}
