//! The demo and its sample data: four weeks of hourly SMB connection counts for a few hundred hosts with
//! an office-hours and weekly rhythm, then a detection day with one injected lateral-movement burst. The
//! demo fits the baseline and runs the hourly detection through the real protocol, as Splunk would.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::density::rng::Rng;
use crate::local;
use scpv2::body::{body_writer, mv_encode};
use scpv2::driver;

/// The baseline search's fit, as the app ships it.
pub const BASELINE_FIT: &str = r#"fit smbdensity count by "HourOfDay,DayOfWeek" into smb_pdfmodel"#;
/// The hourly detection's apply, as ESCU wrote it.
pub const DETECTION_APPLY: &str = "apply smb_pdfmodel threshold=0.001";

/// The per-host baseline's fit, as the app ships it.
pub const HOST_FIT: &str =
    r#"fit smbdensity count by "HourOfDay,DayOfWeek" entity=src dist=negbin into smb_hostmodel"#;
/// The per-host detection's apply, as the app ships it.
pub const HOST_APPLY: &str = "apply smb_hostmodel threshold=0.0001 min_increase=20";

/// 2026-10-05T00:00:00Z, a Monday.
pub const START: i64 = 1_791_158_400;
/// `strftime("%A")` names, Monday first.
pub const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// What sample to generate.
#[derive(Debug, Clone, Copy)]
pub struct SampleSpec {
    pub hosts: usize,
    pub days: usize,
    pub seed: u64,
}

impl Default for SampleSpec {
    fn default() -> Self {
        SampleSpec {
            hosts: 300,
            days: 28,
            seed: 7,
        }
    }
}

/// The host whose burst the detection day carries, and when.
pub const BURST_HOST: &str = "wks-0042";
const BURST_HOUR: i64 = 2;
const BURST_COUNT: u64 = 1_850;

fn host_name(i: usize) -> String {
    if i % 25 == 0 {
        format!("srv-{:04}", i / 25)
    } else {
        format!("wks-{i:04}")
    }
}

/// Expected connections per hour of host `i` at `hour` on weekday `dow` (0 = Monday).
fn rate(i: usize, hour: i64, dow: i64) -> f64 {
    let office = dow < 5 && (8..18).contains(&hour);
    if i % 25 == 0 {
        // File servers and domain controllers: busy all day, busier in office hours.
        let base = 40.0 + (i % 7) as f64 * 10.0;
        if office { base * 1.6 } else { base * 0.7 }
    } else if office {
        3.0 + (i % 5) as f64
    } else {
        0.4
    }
}

fn fmt_time(t: i64) -> (String, String, String) {
    let day = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let dow = (day + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let hour = secs / 3600;
    (
        format!("{y:04}-{m:02}-{d:02} {hour:02}:{:02}", (secs % 3600) / 60),
        format!("{hour:02}"),
        DAYS[dow].to_string(),
    )
}

impl SampleSpec {
    /// The baseline's training rows: `_time,src,count,HourOfDay,DayOfWeek`, one row per host and hour
    /// with at least one connection (tstats emits no row for a silent hour).
    pub fn write_training<W: Write>(&self, out: W) -> io::Result<()> {
        let mut w = body_writer(out);
        w.write_record(["_time", "src", "count", "HourOfDay", "DayOfWeek"])
            .map_err(io::Error::other)?;
        let mut rng = Rng::new(self.seed);
        for h in 0..(self.days as i64 * 24) {
            let t = START + h * 3600;
            let (_, hour, dow) = fmt_time(t);
            for i in 0..self.hosts {
                let n = rng.poisson(rate(i, h % 24, (h / 24) % 7));
                if n > 0 {
                    w.write_record([
                        t.to_string(),
                        host_name(i),
                        n.to_string(),
                        hour.clone(),
                        dow.clone(),
                    ])
                    .map_err(io::Error::other)?;
                }
            }
        }
        w.flush()
    }

    /// The detection day after the training window, shaped like the detection's tstats output
    /// (`dest` and `port` multivalue), with one burst from [`BURST_HOST`].
    pub fn write_detection<W: Write>(&self, out: W) -> io::Result<()> {
        let mut w = body_writer(out);
        w.write_record([
            "_time",
            "src",
            "count",
            "dest",
            "port",
            "HourOfDay",
            "DayOfWeek",
            "__mv_dest",
            "__mv_port",
        ])
        .map_err(io::Error::other)?;
        let mut rng = Rng::new(self.seed ^ 0xD37EC7);
        let day0 = self.days as i64 * 24;
        for h in day0..day0 + 24 {
            let t = START + h * 3600;
            let (_, hour, dow) = fmt_time(t);
            for i in 0..self.hosts {
                let name = host_name(i);
                let burst = name == BURST_HOST && h % 24 == BURST_HOUR;
                let n = if burst {
                    BURST_COUNT
                } else {
                    rng.poisson(rate(i, h % 24, (h / 24) % 7))
                };
                if n == 0 {
                    continue;
                }
                let fanout = if burst {
                    40
                } else {
                    1 + (rng.next_u64() % 3) as usize
                };
                let dests: Vec<String> = (0..fanout)
                    .map(|k| format!("10.1.{}.{}", (i + k * 7) % 250, 10 + k))
                    .collect();
                let ports: Vec<&str> = if burst || n > 20 {
                    vec!["139", "445"]
                } else {
                    vec!["445"]
                };
                let (dest, mv_dest) = if dests.len() > 1 {
                    (dests.join("\n"), mv_encode(&dests))
                } else {
                    (dests[0].clone(), Vec::new())
                };
                let (port, mv_port) = if ports.len() > 1 {
                    (ports.join("\n"), mv_encode(&ports))
                } else {
                    (ports[0].to_string(), Vec::new())
                };
                w.write_record([
                    t.to_string().as_bytes(),
                    name.as_bytes(),
                    n.to_string().as_bytes(),
                    dest.as_bytes(),
                    port.as_bytes(),
                    hour.as_bytes(),
                    dow.as_bytes(),
                    &mv_dest,
                    &mv_port,
                ])
                .map_err(io::Error::other)?;
            }
        }
        w.flush()
    }
}

/// Runs the demo, printing to `out`. Models go to `models` or a `smbdensity-demo` temp folder.
pub fn run(
    exe: &Path,
    models: Option<PathBuf>,
    out: &mut impl Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let spec = SampleSpec::default();
    let models =
        models.unwrap_or_else(|| std::env::temp_dir().join("smbdensity-demo").join("lookups"));
    std::fs::create_dir_all(&models)?;
    let mut opts = local::options(exe.to_path_buf(), Some(&models));
    opts.echo_messages = false;

    let mut training = Vec::new();
    spec.write_training(&mut training)?;
    let train_rows = training.iter().filter(|b| **b == b'\n').count() - 1;
    writeln!(
        out,
        "Sample data: {} hosts, {} days of hourly SMB counts ({train_rows} rows).",
        spec.hosts, spec.days
    )?;
    writeln!(out, "\n| {BASELINE_FIT}")?;
    let fit = local::run(BASELINE_FIT, training.as_slice(), io::sink(), &opts)?;
    print_messages(out, &fit)?;
    if let Some(e) = fit.error {
        return Err(format!("the baseline fit failed: {e}").into());
    }
    writeln!(
        out,
        "  model written to {}",
        models.join("__smbdensity_smb_pdfmodel.model").display()
    )?;

    let mut detection = Vec::new();
    spec.write_detection(&mut detection)?;
    let mut scored = Vec::new();
    writeln!(
        out,
        "\n| {DETECTION_APPLY} | rename \"IsOutlier(count)\" as isOutlier | search isOutlier > 0 | sort -count | table _time src dest port count"
    )?;
    let apply = local::run(DETECTION_APPLY, detection.as_slice(), &mut scored, &opts)?;
    print_messages(out, &apply)?;
    if let Some(e) = apply.error {
        return Err(format!("the detection failed: {e}").into());
    }
    let hits = detections(&scored)?;
    writeln!(
        out,
        "\n{:<17} {:<10} {:>6}  dest (first 3)",
        "_time", "src", "count"
    )?;
    const SHOWN: usize = 15;
    for h in hits.iter().take(SHOWN) {
        let mark = if h.src == BURST_HOST {
            "   <- injected lateral-movement burst"
        } else {
            ""
        };
        writeln!(
            out,
            "{:<17} {:<10} {:>6}  {}{mark}",
            h.time, h.src, h.count, h.dests
        )?;
    }
    if hits.len() > SHOWN {
        writeln!(out, "... and {} more", hits.len() - SHOWN)?;
    }
    let found = hits.iter().any(|h| h.src == BURST_HOST);
    let servers = hits.iter().filter(|h| h.src.starts_with("srv-")).count();
    writeln!(
        out,
        "\n{} detections in {} scored rows; the injected burst from {BURST_HOST} was {}.",
        hits.len(),
        apply.rows_out,
        if found { "detected" } else { "MISSED" }
    )?;
    if servers > 0 {
        writeln!(
            out,
            "{servers} of them are busy servers: one pooled distribution per hour of the week mixes servers\nwith workstations, so a server's normal busy hour can look like a spike."
        )?;
    }

    // The per-host detection on the same data.
    writeln!(
        out,
        "\nPer-host detection (SMB Traffic Spike (Per Host)):\n| {HOST_FIT}"
    )?;
    let fit = local::run(HOST_FIT, training.as_slice(), io::sink(), &opts)?;
    print_messages(out, &fit)?;
    if let Some(e) = fit.error {
        return Err(format!("the per-host fit failed: {e}").into());
    }
    writeln!(
        out,
        "| {HOST_APPLY} | search isOutlier > 0 | table _time src count expected"
    )?;
    let mut scored = Vec::new();
    let apply = local::run(HOST_APPLY, detection.as_slice(), &mut scored, &opts)?;
    print_messages(out, &apply)?;
    if let Some(e) = apply.error {
        return Err(format!("the per-host detection failed: {e}").into());
    }
    let hits = detections(&scored)?;
    let expected = expected_counts(&scored)?;
    writeln!(
        out,
        "\n{:<17} {:<10} {:>6} {:>9}",
        "_time", "src", "count", "expected"
    )?;
    for h in hits.iter().take(8) {
        let mark = if h.src == BURST_HOST {
            "   <- injected lateral-movement burst"
        } else {
            ""
        };
        let e = expected
            .get(&(h.time.clone(), h.src.clone()))
            .cloned()
            .unwrap_or_default();
        writeln!(
            out,
            "{:<17} {:<10} {:>6} {:>9}{mark}",
            h.time, h.src, h.count, e
        )?;
    }
    let found = hits.iter().any(|h| h.src == BURST_HOST);
    writeln!(
        out,
        "\n{} detections; the injected burst from {BURST_HOST} was {}. Each host is compared with its own\nhistory, so busy servers are not alerts merely for being busy.",
        hits.len(),
        if found { "detected" } else { "MISSED" }
    )?;
    Ok(())
}

/// `(time, src) -> ExpectedCount(count)` of a per-host apply output.
fn expected_counts(
    scored: &[u8],
) -> Result<std::collections::HashMap<(String, String), String>, Box<dyn std::error::Error>> {
    let mut r = csv::Reader::from_reader(scored);
    let h = r.headers()?.clone();
    let col = |n: &str| {
        h.iter()
            .position(|c| c == n)
            .ok_or_else(|| format!("no column {n} in the apply output"))
    };
    let (t, s, e) = (col("_time")?, col("src")?, col("ExpectedCount(count)")?);
    let mut out = std::collections::HashMap::new();
    for rec in r.records() {
        let rec = rec?;
        out.insert(
            (fmt_time(rec[t].parse()?).0, rec[s].to_string()),
            rec[e].to_string(),
        );
    }
    Ok(out)
}

fn print_messages(out: &mut impl Write, o: &driver::Outcome) -> io::Result<()> {
    for (level, text) in &o.messages {
        writeln!(out, "  {level}: {text}")?;
    }
    Ok(())
}

struct Hit {
    time: String,
    src: String,
    count: u64,
    dests: String,
}

/// `search isOutlier > 0 | sort -count` over the apply output.
fn detections(scored: &[u8]) -> Result<Vec<Hit>, Box<dyn std::error::Error>> {
    let mut r = csv::Reader::from_reader(scored);
    let h = r.headers()?.clone();
    let col = |n: &str| {
        h.iter()
            .position(|c| c == n)
            .ok_or_else(|| format!("no column {n} in the apply output"))
    };
    let (t, s, c, d, o) = (
        col("_time")?,
        col("src")?,
        col("count")?,
        col("dest")?,
        col("IsOutlier(count)")?,
    );
    let mut hits = Vec::new();
    for rec in r.records() {
        let rec = rec?;
        if rec[o].parse::<f64>().unwrap_or(0.0) > 0.0 {
            let dests: Vec<&str> = rec[d].split('\n').collect();
            let more = if dests.len() > 3 {
                format!(" (+{} more)", dests.len() - 3)
            } else {
                String::new()
            };
            hits.push(Hit {
                time: fmt_time(rec[t].parse()?).0,
                src: rec[s].to_string(),
                count: rec[c].parse()?,
                dests: format!("{}{more}", dests[..dests.len().min(3)].join(", ")),
            });
        }
    }
    hits.sort_by_key(|h| std::cmp::Reverse(h.count));
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(
            fmt_time(START),
            (
                "2026-10-05 00:00".to_string(),
                "00".to_string(),
                "Monday".to_string()
            )
        );
        assert_eq!(fmt_time(START + 86_400 + 13 * 3600).2, "Tuesday");
    }

    #[test]
    fn sample_is_deterministic() {
        let spec = SampleSpec {
            hosts: 10,
            days: 2,
            seed: 1,
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        spec.write_training(&mut a).unwrap();
        spec.write_training(&mut b).unwrap();
        assert_eq!(a, b);
        assert!(a.len() > 100);
    }
}
