//! The per-host count model end to end: `fit ... entity=src dist=negbin` and `apply` through the real
//! binary and protocol, and the app's per-host saved searches.

mod support;

use support::run_local;

const FIT: &str =
    r#"fit smbdensity count by "HourOfDay,DayOfWeek" entity=src dist=negbin into smb_hostmodel"#;

fn sample(detection: bool) -> Vec<u8> {
    let spec = smbdensity::demo::SampleSpec {
        hosts: 60,
        days: 21,
        seed: 11,
    };
    let mut out = Vec::new();
    if detection {
        spec.write_detection(&mut out).unwrap();
    } else {
        spec.write_training(&mut out).unwrap();
    }
    out
}

fn table(csv_bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(csv_bytes);
    let h = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (h, rows)
}

#[test]
fn fit_then_apply_flags_the_burst_from_a_quiet_host() {
    let models = tempfile::tempdir().unwrap();
    let (out, err, code) = run_local(FIT, models.path(), &sample(false));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Saved model \"smb_hostmodel\" (60 entities, 168 groups)"),
        "{err}"
    );
    let (h, rows) = table(&out);
    assert!(h.ends_with(&[
        "IsOutlier(count)".to_string(),
        "BoundaryRanges".into(),
        "ExpectedCount(count)".into(),
        "UpperTailProbability(count)".into()
    ]));
    assert!(!rows.is_empty());

    let (out, err, code) = run_local(
        "apply smb_hostmodel threshold=0.0001",
        models.path(),
        &sample(true),
    );
    assert_eq!(code, 0, "{err}");
    let (h, rows) = table(&out);
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let (src, count, out_c, br, exp, tail) = (
        col("src"),
        col("count"),
        col("IsOutlier(count)"),
        col("BoundaryRanges"),
        col("ExpectedCount(count)"),
        col("UpperTailProbability(count)"),
    );
    let flagged: Vec<&Vec<String>> = rows.iter().filter(|r| r[out_c] == "1.0").collect();
    assert!(
        flagged
            .iter()
            .any(|r| r[src] == smbdensity::demo::BURST_HOST),
        "the injected burst is flagged"
    );
    assert!(flagged.len() <= 3, "few false alerts: {flagged:?}");
    for r in &rows {
        // BoundaryRanges: `<lowest outlying count>:Infinity:<tail>`, consistent with IsOutlier.
        let parts: Vec<&str> = r[br].split(':').collect();
        assert_eq!(parts.len(), 3, "{}", r[br]);
        assert_eq!(parts[1], "Infinity");
        let lowest: f64 = parts[0].parse().unwrap();
        let x: f64 = r[count].parse().unwrap();
        assert_eq!(x >= lowest, r[out_c] == "1.0", "{r:?}");
        let mu: f64 = r[exp].parse().unwrap();
        assert!(lowest >= mu + 20.0, "default min_increase=20: {r:?}");
        let p: f64 = r[tail].parse().unwrap();
        assert!((0.0..=1.0).contains(&p));
        if r[out_c] == "1.0" {
            assert!(p < 1e-4);
        }
    }
    // min_increase at apply moves the boundary.
    let (out, _, code) = run_local(
        "apply smb_hostmodel threshold=0.0001 min_increase=500",
        models.path(),
        &sample(true),
    );
    assert_eq!(code, 0);
    let (h, rows) = table(&out);
    let br = h.iter().position(|c| c == "BoundaryRanges").unwrap();
    let exp = h.iter().position(|c| c == "ExpectedCount(count)").unwrap();
    for r in &rows {
        let lowest: f64 = r[br].split(':').next().unwrap().parse().unwrap();
        let mu: f64 = r[exp].parse().unwrap();
        assert!(lowest >= mu + 500.0);
    }
}

#[test]
fn unseen_hosts_use_the_population_and_bad_rows_warn() {
    let models = tempfile::tempdir().unwrap();
    let (_, err, code) = run_local(FIT, models.path(), &sample(false));
    assert_eq!(code, 0, "{err}");
    let input = "_time,src,count,HourOfDay,DayOfWeek\n\
                 1791158400,new-host,5000,02,Monday\n\
                 1791158400,new-host,3,02,Monday\n\
                 1791158400,wks-0001,,02,Monday\n\
                 1791158400,wks-0001,4,25,Monday\n";
    let (out, err, code) = run_local(
        "apply smb_hostmodel threshold=0.0001",
        models.path(),
        input.as_bytes(),
    );
    assert_eq!(code, 0, "{err}");
    let (_, rows) = table(&out);
    assert_eq!(rows[0][5], "1.0", "{:?}", rows[0]);
    assert_eq!(rows[1][5], "0.0", "{:?}", rows[1]);
    assert!(rows[2][5..].iter().all(|c| c.is_empty()));
    assert!(rows[3][5..].iter().all(|c| c.is_empty()));
    assert!(err.contains("scored against the population"), "{err}");
    assert!(
        err.contains("do not have a distribution in the model: 1 rows"),
        "{err}"
    );
    assert!(err.contains("1 rows had an empty or non-numeric"), "{err}");
}

#[test]
fn argument_errors() {
    let models = tempfile::tempdir().unwrap();
    let data = sample(false);
    let (_, err, _) = run_local(
        r#"fit smbdensity count by "HourOfDay,DayOfWeek" dist=negbin into m"#,
        models.path(),
        &data,
    );
    assert!(err.contains("dist=negbin needs entity=<field>"), "{err}");
    let (_, err, _) = run_local(
        r#"fit smbdensity count by "HourOfDay,DayOfWeek" entity=src dist=norm into m"#,
        models.path(),
        &data,
    );
    assert!(err.contains("entity= needs dist=negbin"), "{err}");
    let input = "src,count,HourOfDay,DayOfWeek\nh,1,00,Monday\n";
    let (_, err, _) = run_local(FIT, models.path(), input.as_bytes());
    assert!(err.contains("needs the _time field"), "{err}");
    // min_increase is refused by the pooled model.
    run_local(
        r#"fit smbdensity count by "HourOfDay,DayOfWeek" dist=norm into pooled"#,
        models.path(),
        &data,
    );
    let (_, err, _) = run_local("apply pooled min_increase=5", models.path(), &sample(true));
    assert!(
        err.contains("min_increase applies to per-entity models"),
        "{err}"
    );
}

/// The `[stanza]` names and keys of a conf file.
fn stanzas(path: &str) -> Vec<(String, Vec<(String, String)>)> {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap();
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut cont = false;
    for line in text.lines() {
        if cont {
            cont = line.ends_with('\\');
            continue;
        }
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            out.push((name.to_string(), Vec::new()));
        } else if let Some((k, v)) = t.split_once('=') {
            cont = line.ends_with('\\');
            out.last_mut()
                .unwrap()
                .1
                .push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

#[test]
fn the_app_ships_the_per_host_pair() {
    let ss = stanzas("default/savedsearches.conf");
    let get = |name: &str| {
        ss.iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no stanza [{name}]"))
            .1
            .clone()
    };
    let key = |s: &[(String, String)], k: &str| {
        s.iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no key {k}"))
    };
    let escu = get("SMB Traffic Spike - Rule");
    let rule = get("SMB Traffic Spike (Per Host) - Rule");
    let base = get("SMB Traffic Spike (Per Host) - Baseline");
    // Same ES / RBA keys as the ESCU detection.
    for (k, _) in &escu {
        if k.starts_with("action.") || k == "cron_schedule" || k == "disabled" {
            assert!(
                rule.iter().any(|(kk, _)| kk == k),
                "per-host rule lacks {k}"
            );
        }
    }
    let search = key(&rule, "search");
    assert!(search.starts_with(
        "| tstats `security_content_summariesonly` count values(All_Traffic.dest_ip) as dest"
    ));
    assert!(search.contains("| apply smb_hostmodel threshold=0.0001 min_increase=20 |"));
    assert!(search.ends_with("| `smb_traffic_spike__per_host____rule_filter`"));
    assert_eq!(
        key(&rule, "action.correlationsearch.label"),
        "SMB Traffic Spike (Per Host) - Rule"
    );
    assert_eq!(key(&base, "dispatch.earliest_time"), "-30d@h");
    assert!(key(&base, "search").ends_with(
        r#"| fit smbdensity count by "HourOfDay,DayOfWeek" entity=src dist=negbin into smb_hostmodel"#
    ));
    // The shipped threshold and min_increase are the binary's defaults (the benchmark's).
    assert_eq!(smbdensity::hostmodel::DEFAULT_THRESHOLD, 0.0001);
    assert_eq!(smbdensity::hostmodel::DEFAULT_MIN_INCREASE, 20.0);
    // The ESCU pair is unchanged.
    assert!(key(&escu, "search").contains("| apply smb_pdfmodel threshold=0.001 |"));
    // The filter macro exists, named by contentctl's rule.
    let macros = stanzas("default/macros.conf");
    let name = "SMB Traffic Spike (Per Host) - Rule"
        .to_lowercase()
        .replace([' ', '(', ')', '-', '.', '/'], "_")
        + "_filter";
    assert_eq!(name, "smb_traffic_spike__per_host____rule_filter");
    let m = macros
        .iter()
        .find(|(n, _)| *n == name)
        .expect("filter macro");
    assert_eq!(key(&m.1, "definition"), "search *");
}
