//! MLTK's own DensityFunction outputs (`../shared/testdata/mltk/`), reproduced through the real binary:
//! fit on `input.csv`, apply on `apply.csv`, compare with `expected_apply.csv` as that folder's README
//! defines (exact text for norm and expon; densities to 1e-9 relative).

mod common;

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

/// Runs one case and returns a description of every mismatch.
fn check_case(dir: &Path) -> Vec<String> {
    let case: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("case.json")).unwrap()).unwrap();
    let models = tempfile::tempdir().unwrap();
    let input = std::fs::read(dir.join("input.csv")).unwrap();
    let fit_line = format!("fit {}", case["fit_args"].as_str().unwrap());
    let (_, err, code) = common::run_local(&fit_line, models.path(), &input);
    if code != 0 {
        return vec![format!("fit failed ({code}): {err}")];
    }
    let apply_line = format!("apply {}", case["apply_args"].as_str().unwrap());
    let mut child_args = vec!["run", &apply_line, "--keep-mv", "--models"];
    let models_str = models.path().to_str().unwrap().to_string();
    child_args.push(&models_str);
    let out = std::process::Command::new(common::bin())
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
    let (got_h, got) = read_csv(&out.stdout);
    let (want_h, want) = read_csv(&std::fs::read(dir.join("expected_apply.csv")).unwrap());
    let mut problems = Vec::new();
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
    for (r, (g, w)) in got.iter().zip(&want).enumerate() {
        for (c, &i) in keep.iter().enumerate() {
            let name = &want_h[c];
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

fn run_cases(prefixes: &[&str]) {
    let root = common::shared().join("testdata/mltk");
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
        let problems = check_case(d);
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
