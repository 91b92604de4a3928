//! `smbdensity-bench throughput`: end-to-end throughput, memory and latency through the real SCPv2 pipe.
//!
//! The benchmark plays splunkd: it spawns this binary as a search command, sends a getinfo chunk, then
//! 50,000-row execute chunks, and waits for each reply before sending the next, as splunkd does. Wall time
//! covers the whole conversation, from spawn to exit. The rows are generated up front (or, for data too
//! large to hold, between chunks with the clock stopped), so generating them is never timed.
//!
//! Rows are shaped like the detection's: `_time, src, count, dest, port, HourOfDay, DayOfWeek` with
//! multivalue `dest`/`port` carried in `__mv_dest`/`__mv_port`. Two pass-through baselines run in the same
//! process and the same rounds, so ratios hold on a noisy machine.

use smbdensity::demo::{DAYS, START};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use scpv2::body::{body_writer, mv_encode};
use scpv2::framing::parse_header;
use smbdensity::spl;

/// Rows per execute chunk, as splunkd sends them.
pub const CHUNK_ROWS: usize = 50_000;
/// Distinct chunks held in memory and cycled for long runs (1M rows, about 100 MB).
const POOL_CHUNKS: usize = 20;

/// The pass-through baselines' cases: `scpv2-passthrough raw|csv`.
const PASSTHROUGH_PREFIX: &str = "passthrough:";
const PASSTHROUGH_RAW: &str = "passthrough:raw";
const PASSTHROUGH_CSV: &str = "passthrough:csv";

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `smbdensity` binary.
    pub exe: PathBuf,
    /// The `scpv2-passthrough` binary (the baselines).
    pub passthrough_exe: PathBuf,
    /// Rows for the apply and pass-through cases.
    pub rows: usize,
    /// Rows for the 168-group fit cases.
    pub fit_rows: usize,
    /// Hosts for the many-groups case (× 168 hours of the week).
    pub many_hosts: usize,
    /// Weeks of data in the many-groups fit.
    pub many_weeks: usize,
    /// Rounds of the apply/pass-through cases; the best round counts.
    pub rounds: usize,
    /// Runs of each latency case; the median counts.
    pub latency_runs: usize,
    /// Only the 168-group fit cases, `rounds` rounds of them (best counts), for iterating on fit.
    pub fit_only: bool,
    /// Only the many-groups cases (fit, model load, apply), with the 168-group apply norm in the same
    /// rounds for the ratio.
    pub only_groups: bool,
    /// Keep the models here and reuse any already fitted (default: a temporary directory).
    pub models: Option<PathBuf>,
}

impl Options {
    pub fn new(exe: PathBuf, passthrough_exe: PathBuf, quick: bool) -> Options {
        if quick {
            Options {
                exe,
                passthrough_exe,
                rows: 500_000,
                fit_rows: 1_000_000,
                many_hosts: 1_000,
                many_weeks: 2,
                rounds: 2,
                latency_runs: 5,
                fit_only: false,
                only_groups: false,
                models: None,
            }
        } else {
            Options {
                exe,
                passthrough_exe,
                rows: 2_000_000,
                fit_rows: 10_000_000,
                many_hosts: 10_000,
                many_weeks: 2,
                rounds: 3,
                latency_runs: 11,
                fit_only: false,
                only_groups: false,
                models: None,
            }
        }
    }
}

/// SplitMix64: deterministic data on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The shaped-row generator: row `r` is host `r % hosts` in hour `r / hosts` (tstats order: by time,
/// then host).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub hosts: usize,
    /// Only `count, HourOfDay, DayOfWeek, _chunked_idx`: what splunkd sends when apply's getinfo lists
    /// `required_fields`.
    pub projected: bool,
}

pub const FULL_HEADER: [&str; 9] = [
    "_time",
    "src",
    "count",
    "dest",
    "port",
    "HourOfDay",
    "DayOfWeek",
    "__mv_dest",
    "__mv_port",
];
pub const PROJECTED_HEADER: [&str; 4] = ["count", "HourOfDay", "DayOfWeek", "_chunked_idx"];

fn host_name(i: usize) -> String {
    if i % 25 == 0 {
        format!("srv-{:05}", i / 25)
    } else {
        format!("wks-{i:05}")
    }
}

impl Shape {
    /// The CSV body of rows `first..first + n`, header included.
    pub fn body(&self, first: u64, n: usize) -> Vec<u8> {
        let mut w = body_writer(Vec::with_capacity(n * 120 + 128));
        let header: &[&str] = if self.projected {
            &PROJECTED_HEADER
        } else {
            &FULL_HEADER
        };
        w.write_record(header).expect("in memory");
        let hosts = self.hosts.max(1) as u64;
        let mut rng = Rng(first ^ 0x5EED);
        let (mut dest, mut port, mut count) = (Vec::new(), Vec::new(), String::new());
        for (k, r) in (first..first + n as u64).enumerate() {
            let host = (r % hosts) as usize;
            let hour_abs = (r / hosts) as i64;
            let hour = hour_abs % 24;
            let dow = (hour_abs / 24) % 7;
            let office = dow < 5 && (8..18).contains(&hour);
            let base: u64 = match (host % 25 == 0, office) {
                (true, true) => 64,
                (true, false) => 28,
                (false, true) => 3 + (host % 5) as u64,
                (false, false) => 1,
            };
            let c = base + rng.next() % (base + 1);
            count.clear();
            count.push_str(&c.to_string());
            let hour_s = format!("{hour:02}");
            let day_s = DAYS[dow as usize];
            if self.projected {
                w.write_record([
                    count.as_bytes(),
                    hour_s.as_bytes(),
                    day_s.as_bytes(),
                    k.to_string().as_bytes(),
                ])
                .expect("in memory");
                continue;
            }
            let fanout = 1 + (rng.next() % 3) as usize;
            let dests: Vec<String> = (0..fanout)
                .map(|j| format!("10.1.{}.{}", (host + j * 7) % 250, 10 + j))
                .collect();
            let ports: &[&str] = if c > 20 { &["139", "445"] } else { &["445"] };
            dest.clear();
            port.clear();
            let mv_dest = if dests.len() > 1 {
                dest.extend_from_slice(dests.join("\n").as_bytes());
                mv_encode(&dests)
            } else {
                dest.extend_from_slice(dests[0].as_bytes());
                Vec::new()
            };
            let mv_port = if ports.len() > 1 {
                port.extend_from_slice(ports.join("\n").as_bytes());
                mv_encode(ports)
            } else {
                port.extend_from_slice(ports[0].as_bytes());
                Vec::new()
            };
            let t = START + hour_abs * 3600;
            w.write_record([
                t.to_string().as_bytes(),
                host_name(host).as_bytes(),
                count.as_bytes(),
                &dest,
                &port,
                hour_s.as_bytes(),
                day_s.as_bytes(),
                &mv_dest,
                &mv_port,
            ])
            .expect("in memory");
        }
        w.into_inner().expect("in memory")
    }
}

/// Where execute chunk bodies come from.
enum Source<'a> {
    /// Cycle these bodies (each `CHUNK_ROWS` rows) for `rows` rows in all.
    Pool { bodies: &'a [Vec<u8>], rows: usize },
    /// Generate each chunk just before sending it, with the clock stopped.
    Lazy { shape: Shape, rows: usize },
    /// These bodies once, in order.
    List(&'a [Vec<u8>]),
}

impl Source<'_> {
    fn chunks(&self) -> usize {
        match self {
            Source::Pool { rows, .. } | Source::Lazy { rows, .. } => rows.div_ceil(CHUNK_ROWS),
            Source::List(b) => b.len(),
        }
    }
}

/// What one conversation measured.
#[derive(Debug, Default, Clone)]
pub struct Run {
    /// Spawn to exit, less time spent generating data.
    pub secs: f64,
    /// Spawn to the getinfo reply.
    pub getinfo_secs: f64,
    /// Spawn to the reply to the first execute chunk.
    pub first_chunk_secs: f64,
    pub peak_rss_kb: Option<u64>,
    pub bytes_out: u64,
    pub error: Option<String>,
    pub required_fields: Option<Vec<String>>,
}

fn pool(shape: Shape, rows: usize) -> Vec<Vec<u8>> {
    let n = rows.div_ceil(CHUNK_ROWS).clamp(1, POOL_CHUNKS);
    (0..n)
        .map(|i| shape.body((i * CHUNK_ROWS) as u64, CHUNK_ROWS))
        .collect()
}

/// The framing and reply reading, kept minimal so the driver's own cost stays small.
struct Conversation {
    child: Child,
    to: ChildStdin,
    from: BufReader<std::process::ChildStdout>,
    scratch: Vec<u8>,
    bytes_out: u64,
}

impl Conversation {
    fn spawn(exe: &Path, command: &str, models: &Path) -> io::Result<Conversation> {
        // 10,000 hosts × 168 hours is above the default max_groups; raise it as an admin would in
        // local/smbdensity.conf.
        let conf = models.join("bench-limits.conf");
        if !conf.exists() {
            std::fs::write(&conf, "[limits]\nmax_groups = 2000000\n")?;
        }
        let mut child = Command::new(exe)
            .arg(command)
            .env("SMBDENSITY_MODEL_DIR", models)
            .env("SMBDENSITY_CONF", &conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let to = child.stdin.take().expect("piped");
        let from = BufReader::with_capacity(1 << 20, child.stdout.take().expect("piped"));
        Ok(Conversation {
            child,
            to,
            from,
            scratch: vec![0; 1 << 20],
            bytes_out: 0,
        })
    }

    fn send(&mut self, meta: &serde_json::Value, body: &[u8]) -> io::Result<()> {
        let meta = serde_json::to_vec(meta).expect("json");
        let mut head = format!("chunked 1.0,{},{}\n", meta.len(), body.len()).into_bytes();
        head.extend_from_slice(&meta);
        self.to.write_all(&head)?;
        self.to.write_all(body)?;
        self.to.flush()
    }

    /// Reads one reply; its body is counted and dropped (a fit's final reply can be gigabytes).
    fn reply(&mut self) -> io::Result<serde_json::Value> {
        let mut line = Vec::new();
        loop {
            line.clear();
            if self.from.read_until(b'\n', &mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the command exited without replying",
                ));
            }
            if !line.iter().all(|c| matches!(c, b'\n' | b'\r')) {
                break;
            }
        }
        let (meta_len, body_len) = parse_header(&line).ok_or_else(|| {
            io::Error::other(format!(
                "bad reply header {:?}",
                String::from_utf8_lossy(&line)
            ))
        })?;
        let mut meta = vec![0; meta_len as usize];
        self.from.read_exact(&mut meta)?;
        let mut left = body_len;
        while left > 0 {
            let n = left.min(self.scratch.len() as u64) as usize;
            self.from.read_exact(&mut self.scratch[..n])?;
            left -= n as u64;
        }
        self.bytes_out += body_len;
        serde_json::from_slice(&meta).map_err(io::Error::other)
    }

    /// Closes stdin, drains stdout and reaps the child.
    fn finish(self) -> io::Result<()> {
        let Conversation {
            child,
            to,
            mut from,
            ..
        } = self;
        drop(to);
        io::copy(&mut from, &mut io::sink())?;
        let pid = child.id() as libc::pid_t;
        let mut status = 0;
        // SAFETY: pid is our child, not yet reaped (std's Child is never waited on here).
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r != pid {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// `VmHWM` of a live process, in KiB: the peak resident set of its current program image.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn error_of(meta: &serde_json::Value) -> Option<String> {
    meta.get("error").and_then(|e| e.as_str()).map(String::from)
}

/// One full conversation: spawn, getinfo, execute chunks, exit.
fn converse(exe: &Path, line: &str, models: &Path, dispatch: &Path, source: &Source) -> Run {
    match converse_inner(exe, line, models, dispatch, source) {
        Ok(r) => r,
        Err(e) => Run {
            error: Some(e.to_string()),
            ..Default::default()
        },
    }
}

fn converse_inner(
    exe: &Path,
    line: &str,
    models: &Path,
    dispatch: &Path,
    source: &Source,
) -> io::Result<Run> {
    let tokens = spl::tokenize(line).map_err(|e| io::Error::other(e.to_string()))?;
    let (command, args) = tokens.split_first().expect("a command");
    let getinfo = serde_json::json!({
        "action": "getinfo",
        "preview": false,
        "streaming_command_will_restart": false,
        "searchinfo": {
            "args": args,
            "raw_args": args,
            "dispatch_dir": dispatch.display().to_string(),
            "sid": format!("bench.{}", std::process::id()),
            "app": "smb_traffic_spike",
            "owner": "bench",
            "username": "bench",
            "splunk_version": "bench",
            "command": command,
            "maxresultrows": CHUNK_ROWS,
        }
    });
    let mut run = Run::default();
    let mut paused = Duration::ZERO;
    let start = Instant::now();
    let mut conv = Conversation::spawn(exe, command, models)?;
    conv.send(&getinfo, b"")?;
    let info = conv.reply()?;
    run.getinfo_secs = start.elapsed().as_secs_f64();
    run.required_fields = info
        .get("required_fields")
        .and_then(|f| serde_json::from_value(f.clone()).ok());
    if let Some(e) = error_of(&info) {
        run.error = Some(e);
    } else {
        let n = source.chunks();
        let mut lazy: Vec<u8>;
        for i in 0..n {
            let body: &[u8] = match source {
                Source::Pool { bodies, .. } => &bodies[i % bodies.len()],
                Source::List(b) => &b[i],
                Source::Lazy { shape, rows } => {
                    let t = Instant::now();
                    let first = i * CHUNK_ROWS;
                    lazy = shape.body(first as u64, CHUNK_ROWS.min(rows - first));
                    paused += t.elapsed();
                    &lazy
                }
            };
            let finished = i + 1 == n;
            conv.send(
                &serde_json::json!({"action": "execute", "finished": finished}),
                body,
            )?;
            let reply = conv.reply()?;
            if i == 0 {
                run.first_chunk_secs = (start.elapsed() - paused).as_secs_f64();
            }
            if let Some(e) = error_of(&reply) {
                run.error = Some(e);
                break;
            }
        }
    }
    run.bytes_out = conv.bytes_out;
    // The child's own high-water mark. (wait4's ru_maxrss would include this process's memory,
    // inherited through fork/exec.)
    let hwm = vm_hwm_kb(conv.child.id());
    conv.finish()?;
    run.peak_rss_kb = hwm;
    run.secs = (start.elapsed() - paused).as_secs_f64();
    Ok(run)
}

/// One conversation over `bodies` (CSV chunks, each with its header) sent in order, the last marked
/// finished: the child's wall time with no CSV work on this side (`quality --timing` reports it
/// beside the local driver's time).
pub fn time_child(
    exe: &Path,
    line: &str,
    models: &Path,
    bodies: &[Vec<u8>],
) -> Result<f64, String> {
    let dispatch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let run = converse(exe, line, models, dispatch.path(), &Source::List(bodies));
    match run.error {
        Some(e) => Err(format!("{line}: {e}")),
        None => Ok(run.secs),
    }
}

/// One row of the results table.
#[derive(Debug, Clone)]
struct Row {
    case: String,
    rows: usize,
    run: Option<Run>,
    /// Why the case has no figure (e.g. the distribution is not supported yet).
    na: Option<String>,
}

fn best(runs: &[Run]) -> Run {
    runs.iter()
        .min_by(|a, b| a.secs.total_cmp(&b.secs))
        .cloned()
        .unwrap_or_default()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn not_supported(e: &str) -> bool {
    e.contains("not supported yet")
}

fn fmt_rate(rows: usize, secs: f64) -> String {
    format!("{:.2}M", rows as f64 / secs / 1e6)
}

/// Runs the benchmark and prints the table to `out`. Progress goes to stderr.
pub fn run(opts: &Options, out: &mut impl Write) -> Result<(), Box<dyn std::error::Error>> {
    let work = tempfile::Builder::new()
        .prefix("smbdensity-bench")
        .tempdir()?;
    let models = opts
        .models
        .clone()
        .unwrap_or_else(|| work.path().join("lookups"));
    let dispatch = work.path().join("dispatch");
    std::fs::create_dir_all(&models)?;
    std::fs::create_dir_all(&dispatch)?;
    let exe = &opts.exe;
    let progress = |s: &str| eprintln!("bench: {s}");

    progress("generating data");
    let full = Shape {
        hosts: 300,
        projected: false,
    };
    if opts.fit_only {
        let fit_pool = pool(full, opts.fit_rows);
        let (table, fit_secs) = fit_cases(opts, &models, &dispatch, &fit_pool, opts.rounds);
        print_table(out, &table, &fit_ratio_notes(&fit_secs))?;
        return Ok(());
    }
    let projected = Shape {
        hosts: 300,
        projected: true,
    };
    let full_pool = pool(full, opts.rows);
    let proj_pool = pool(projected, opts.rows);
    let rows = opts.rows;

    let model_size = |name: &str| {
        std::fs::metadata(models.join(format!("__smbdensity_{name}.model")))
            .map(|m| m.len())
            .ok()
    };

    // Models for apply: fitted on one pool's worth of rows, untimed.
    progress("fitting the apply models");
    let dists: &[&str] = if opts.only_groups {
        &["norm"]
    } else {
        &FIT_DISTS
    };
    let mut model_ok = Vec::new();
    for &d in dists {
        if model_size(&format!("bench_{d}")).is_some() {
            progress(&format!("reusing model bench_{d}"));
            model_ok.push((d, None));
            continue;
        }
        let line =
            format!(r#"fit smbdensity count by "HourOfDay,DayOfWeek" dist={d} into bench_{d}"#);
        let r = converse(
            exe,
            &line,
            &models,
            &dispatch,
            &Source::List(&full_pool[..full_pool.len().min(4)]),
        );
        model_ok.push((d, r.error));
    }

    let mut table: Vec<Row> = Vec::new();
    // Apply and pass-through cases, in rounds, best round counts.
    let mut cases: Vec<(String, String, bool)> = if opts.only_groups {
        Vec::new()
    } else {
        vec![
            ("pass-through raw".into(), PASSTHROUGH_RAW.into(), false),
            ("pass-through csv".into(), PASSTHROUGH_CSV.into(), false),
        ]
    };
    let mut na_rows = Vec::new();
    for (d, err) in &model_ok {
        match err {
            None => {
                if opts.only_groups {
                    // Run in the many-groups rounds below, next to the case it is compared with.
                    continue;
                }
                cases.push((format!("apply {d}"), format!("apply bench_{d}"), false));
                if *d == "norm" {
                    cases.push((
                        "apply norm, required_fields".into(),
                        "apply bench_norm".into(),
                        true,
                    ));
                }
            }
            Some(e) => na_rows.push(Row {
                case: format!("apply {d}"),
                rows,
                run: None,
                na: Some(if not_supported(e) {
                    "n/a (not supported yet)".into()
                } else {
                    format!("error: {e}")
                }),
            }),
        }
    }
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); cases.len()];
    for round in 0..opts.rounds {
        progress(&format!(
            "apply and pass-through, round {}/{}",
            round + 1,
            opts.rounds
        ));
        for (i, (_, line, proj)) in cases.iter().enumerate() {
            let bodies = if *proj { &proj_pool } else { &full_pool };
            // The baselines are another program of this workspace, on the same session loop.
            let exe = if line.starts_with(PASSTHROUGH_PREFIX) {
                &opts.passthrough_exe
            } else {
                exe
            };
            let line = line.strip_prefix(PASSTHROUGH_PREFIX).unwrap_or(line);
            let r = converse(
                exe,
                line,
                &models,
                &dispatch,
                &Source::Pool { bodies, rows },
            );
            if let Some(e) = &r.error {
                progress(&format!("{line}: {e}"));
            }
            if *proj
                && r.required_fields.as_deref()
                    != Some(&["count".to_string(), "HourOfDay".into(), "DayOfWeek".into()][..])
            {
                progress(&format!(
                    "apply's getinfo listed required_fields {:?}; the projected case assumes count,HourOfDay,DayOfWeek",
                    r.required_fields
                ));
            }
            results[i].push(r);
        }
    }
    for (i, (case, _, _)) in cases.iter().enumerate() {
        let b = best(&results[i]);
        table.push(Row {
            case: case.clone(),
            rows,
            na: b.error.clone().map(|e| format!("error: {e}")),
            run: Some(b),
        });
    }
    table.extend(na_rows);

    // Fit: 168 groups, end to end including the scored rows, with the child's peak RSS.
    let fit_pool = if opts.fit_rows > opts.rows && !opts.only_groups {
        pool(full, opts.fit_rows)
    } else {
        full_pool.clone()
    };
    let (fit_rows, fit_secs) = if opts.only_groups {
        (Vec::new(), Vec::new())
    } else {
        fit_cases(opts, &models, &dispatch, &fit_pool, 1)
    };
    table.extend(fit_rows);
    drop(fit_pool);

    // Many groups: src × HourOfDay × DayOfWeek.
    let groups = opts.many_hosts * 168;
    let many_rows = groups * opts.many_weeks;
    progress(&format!("fit with {groups} groups, {many_rows} rows"));
    let many = Shape {
        hosts: opts.many_hosts,
        projected: false,
    };
    let line = r#"fit smbdensity count by "src,HourOfDay,DayOfWeek" dist=norm into bench_many"#;
    let many_ok = if model_size("bench_many").is_some() {
        progress("reusing model bench_many");
        true
    } else {
        let r = converse(
            exe,
            line,
            &models,
            &dispatch,
            &Source::Lazy {
                shape: many,
                rows: many_rows,
            },
        );
        let ok = r.error.is_none();
        table.push(Row {
            case: format!("fit norm, {groups} groups"),
            rows: many_rows,
            na: r.error.clone().map(|e| format!("error: {e}")),
            run: Some(r),
        });
        ok
    };
    let mut notes = Vec::new();
    if many_ok {
        if let Some(size) = model_size("bench_many") {
            notes.push(format!(
                "model size, {groups} groups: {size} bytes = {:.1} bytes/group (target < 150)",
                size as f64 / groups as f64
            ));
        }
        if let Some(size) = model_size("bench_norm") {
            notes.push(format!(
                "model size, 168 groups: {size} bytes = {:.1} bytes/group",
                size as f64 / 168.0
            ));
        }
        // Model load: getinfo plus a first chunk of 2,000 rows, minus the same on the 168-group model.
        let small = [many.body(0, 2_000)];
        let small168 = [full.body(0, 2_000)];
        let mut load = Vec::new();
        let mut load168 = Vec::new();
        for _ in 0..opts.latency_runs.min(5) {
            let r = converse(
                exe,
                "apply bench_many",
                &models,
                &dispatch,
                &Source::List(&small),
            );
            load.push(r.first_chunk_secs);
            let r = converse(
                exe,
                "apply bench_norm",
                &models,
                &dispatch,
                &Source::List(&small168),
            );
            load168.push(r.first_chunk_secs);
        }
        let (l, l168) = (median(load), median(load168));
        notes.push(format!(
            "model load for apply, {groups} groups (spawn, getinfo, first 2,000-row chunk): {:.0} ms; 168 groups: {:.1} ms; difference {:.0} ms (target < 300)",
            l * 1e3,
            l168 * 1e3,
            (l - l168) * 1e3
        ));
        let many_pool = pool(many, opts.rows);
        let mut runs = Vec::new();
        let mut runs168 = Vec::new();
        for round in 0..opts.rounds {
            progress(&format!(
                "apply on {groups} groups, round {}/{}",
                round + 1,
                opts.rounds
            ));
            if opts.only_groups {
                runs168.push(converse(
                    exe,
                    "apply bench_norm",
                    &models,
                    &dispatch,
                    &Source::Pool {
                        bodies: &full_pool,
                        rows,
                    },
                ));
            }
            runs.push(converse(
                exe,
                "apply bench_many",
                &models,
                &dispatch,
                &Source::Pool {
                    bodies: &many_pool,
                    rows,
                },
            ));
        }
        if opts.only_groups {
            let b = best(&runs168);
            table.push(Row {
                case: "apply norm".into(),
                rows,
                na: b.error.clone().map(|e| format!("error: {e}")),
                run: Some(b),
            });
        }
        let b = best(&runs);
        let case = format!("apply norm, {groups} groups");
        table.push(Row {
            case: case.clone(),
            rows,
            na: b.error.clone().map(|e| format!("error: {e}")),
            run: Some(b),
        });
        let secs = |case: &str| {
            table
                .iter()
                .find(|r| r.case == case && r.na.is_none())
                .and_then(|r| r.run.as_ref().map(|run| run.secs))
        };
        if let (Some(m), Some(s)) = (secs(&case), secs("apply norm")) {
            notes.push(format!(
                "apply on {groups} groups / apply norm (168 groups), same rows: {:.2}x (target <= 1.5)",
                m / s
            ));
        }
    }
    if opts.only_groups {
        print_table(out, &table, &notes)?;
        return Ok(());
    }

    // Latency: the hourly detection on a 168-group model.
    progress("latency");
    let hour = [full.body(0, 2_000)];
    let mut getinfo = Vec::new();
    let mut total = Vec::new();
    for _ in 0..opts.latency_runs {
        let r = converse(
            exe,
            "apply bench_norm threshold=0.001",
            &models,
            &dispatch,
            &Source::List(&hour),
        );
        if let Some(e) = r.error {
            notes.push(format!("latency run failed: {e}"));
            break;
        }
        getinfo.push(r.getinfo_secs);
        total.push(r.secs);
    }
    notes.push(format!(
        "latency, 168-group model (median of {}): getinfo reply {:.2} ms after spawn (target < 5); 2,000-row hourly detection {:.2} ms end to end (target < 20)",
        getinfo.len(),
        median(getinfo) * 1e3,
        median(total) * 1e3
    ));
    notes.extend(fit_ratio_notes(&fit_secs));

    print_table(out, &table, &notes)?;
    Ok(())
}

/// The fit distributions, in MLTK's `dist=` spelling.
const FIT_DISTS: [&str; 5] = ["norm", "expon", "gaussian_kde", "beta", "auto"];

/// The 168-group fit of every distribution over `fit_pool`, in `rounds` rounds (each round fits every
/// distribution once, so a change in machine load hits all of them alike); the best round counts.
fn fit_cases(
    opts: &Options,
    models: &Path,
    dispatch: &Path,
    fit_pool: &[Vec<u8>],
    rounds: usize,
) -> (Vec<Row>, Vec<(&'static str, f64)>) {
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); FIT_DISTS.len()];
    for round in 0..rounds {
        for (i, d) in FIT_DISTS.iter().enumerate() {
            eprintln!(
                "bench: fit {d}, {} rows, round {}/{rounds}",
                opts.fit_rows,
                round + 1
            );
            let line = format!(
                r#"fit smbdensity count by "HourOfDay,DayOfWeek" dist={d} into benchfit_{d}"#
            );
            let r = converse(
                &opts.exe,
                &line,
                models,
                dispatch,
                &Source::Pool {
                    bodies: fit_pool,
                    rows: opts.fit_rows,
                },
            );
            runs[i].push(r);
        }
    }
    let mut table = Vec::new();
    let mut fit_secs = Vec::new();
    for (d, runs) in FIT_DISTS.iter().zip(&runs) {
        let failed = runs.iter().find_map(|r| r.error.clone());
        let na = failed.map(|e| {
            if not_supported(&e) {
                "n/a (not supported yet)".to_string()
            } else {
                format!("error: {e}")
            }
        });
        let r = best(runs);
        if na.is_none() {
            fit_secs.push((*d, r.secs));
        }
        table.push(Row {
            case: format!("fit {d}, 168 groups"),
            rows: opts.fit_rows,
            run: (na.is_none()).then_some(r),
            na,
        });
    }
    (table, fit_secs)
}

/// "fit X / fit norm" notes.
fn fit_ratio_notes(fit_secs: &[(&str, f64)]) -> Vec<String> {
    let Some((_, norm)) = fit_secs.iter().find(|(d, _)| *d == "norm") else {
        return Vec::new();
    };
    fit_secs
        .iter()
        .filter(|(d, _)| *d != "norm")
        .map(|(d, s)| format!("fit {d} / fit norm: {:.2}x (target <= 3)", s / norm))
        .collect()
}

fn print_table(out: &mut impl Write, table: &[Row], notes: &[String]) -> io::Result<()> {
    // Seconds per row of a baseline, so cases of different sizes compare fairly.
    let per_row = |name: &str| {
        table.iter().find(|r| r.case == name).and_then(|r| {
            r.run
                .as_ref()
                .filter(|run| run.error.is_none())
                .map(|run| run.secs / r.rows.max(1) as f64)
        })
    };
    let (csv, raw) = (per_row("pass-through csv"), per_row("pass-through raw"));
    writeln!(
        out,
        "| case | rows | seconds | rows/s | x CSV pass-through | x raw pass-through | peak RSS |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|")?;
    for r in table {
        match (&r.run, &r.na) {
            (Some(run), None) => {
                let mine = run.secs / r.rows.max(1) as f64;
                let ratio = |base: Option<f64>| {
                    base.map(|b| format!("{:.2}", mine / b)).unwrap_or_default()
                };
                writeln!(
                    out,
                    "| {} | {} | {:.3} | {} | {} | {} | {} |",
                    r.case,
                    r.rows,
                    run.secs,
                    fmt_rate(r.rows, run.secs),
                    ratio(csv),
                    ratio(raw),
                    run.peak_rss_kb
                        .map(|k| format!("{:.1} MB", k as f64 / 1024.0))
                        .unwrap_or_default()
                )?;
            }
            (_, na) => writeln!(
                out,
                "| {} | {} | | {} | | | |",
                r.case,
                r.rows,
                na.as_deref().unwrap_or("n/a")
            )?,
        }
    }
    writeln!(out)?;
    for n in notes {
        writeln!(out, "- {n}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shaped_bodies_parse_and_carry_multivalues() {
        let b = Shape {
            hosts: 30,
            projected: false,
        }
        .body(0, 200);
        let mut r = scpv2::body::BodyReader::new(&b).unwrap();
        assert_eq!(r.header.len(), FULL_HEADER.len());
        let mut rec = csv::ByteRecord::new();
        let mut rows = 0;
        let mut multi = 0;
        while r.read(&mut rec).unwrap() {
            rows += 1;
            multi += usize::from(!rec[7].is_empty());
        }
        assert_eq!(rows, 200);
        assert!(multi > 50, "{multi}");
        let p = Shape {
            hosts: 30,
            projected: true,
        }
        .body(0, 10);
        assert!(p.starts_with(b"count,HourOfDay,DayOfWeek,_chunked_idx\n"));
    }
}
