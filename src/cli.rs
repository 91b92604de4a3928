//! The command line: `smbdensity <search command>` speaks SCPv2 for splunkd; `run`, `demo` and `sample`
//! are for people.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;

use crate::commands::Environment;
use crate::{bench, demo, driver, quality};

const USAGE: &str = "\
smbdensity: MLTK DensityFunction-compatible fit/apply for Splunk, as one native binary.

Splunk runs it as a custom search command (commands.conf `command.arg.1`), speaking SCPv2 on stdin/stdout:
  smbdensity fit | apply | summary | listmodels | deletemodel

For people:
  smbdensity demo [--models DIR]
      Generate sample SMB traffic, fit the baseline, run the hourly detection, print the detections.
  smbdensity run '<command line>' [--models DIR] [--chunk-rows N] [--keep-mv] < in.csv > out.csv
      Play splunkd: run one search command over a CSV file through the real protocol. Examples:
        smbdensity run 'fit smbdensity count by \"HourOfDay,DayOfWeek\" into smb_pdfmodel' < baseline.csv
        smbdensity run 'apply smb_pdfmodel threshold=0.001' < last_hour.csv
  smbdensity sample [--hosts N] [--days N] [--seed N] [--detection]
      Print deterministic sample data (the demo's): training days, or with --detection the day after,
      which holds an injected lateral-movement burst.
  smbdensity bench [--quick] [--rows N] [--fit-rows N] [--hosts N] [--rounds N] [--fit-only]
                   [--only groups] [--models DIR]
      Benchmark fit and apply through the real protocol pipe against two pass-through baselines;
      prints rows/s, ratios and peak RSS (see docs/performance.md). --fit-only: only the 168-group
      fit of each distribution, --rounds times (best counts). --only groups runs just the
      many-groups cases; --models DIR keeps the models there and reuses those already fitted.

  smbdensity quality [--hosts N] [--seeds 1,2,3] [--out DIR] [--readme FILE] [--timing HOSTS]
      The labelled benchmark: a synthetic enterprise with 60 attack episodes per seed, scored by the
      pooled ESCU detection and the per-host detection; with --out, writes per-host-quality.md and
      per-host-quality.svg there; --readme replaces the tables between the quality markers of FILE;
      --timing also times fit and apply on HOSTS hosts.

Models live in the app's lookups/ folder, or in $SMBDENSITY_MODEL_DIR, or in --models DIR.
";

const SEARCH_COMMANDS: &[&str] = &[
    "fit",
    "apply",
    "summary",
    "listmodels",
    "deletemodel",
    // Hidden baselines for `smbdensity bench`.
    "__passthrough_csv",
    "__passthrough_raw",
];

/// Runs the program and returns its exit status.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let Some(first) = args.first() else {
        eprint!("{USAGE}");
        return 2;
    };
    match first.as_str() {
        c if SEARCH_COMMANDS.contains(&c) => serve(c),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            0
        }
        "-V" | "--version" => {
            println!("smbdensity {}", env!("CARGO_PKG_VERSION"));
            0
        }
        "run" => report(run_local(&args[1..])),
        "demo" => report(demo_cmd(&args[1..])),
        "sample" => report(sample_cmd(&args[1..])),
        "quality" => report(quality_cmd(&args[1..])),
        "bench" => report(bench_cmd(&args[1..])),
        other => {
            eprintln!("smbdensity: unknown command \"{other}\"\n\n{USAGE}");
            2
        }
    }
}

fn serve(command: &str) -> i32 {
    let env = match Environment::discover() {
        Ok(env) => env,
        Err(e) => Environment {
            config_error: Some(e.to_string()),
            ..Default::default()
        },
    };
    let stdin = io::stdin();
    let stdout = io::stdout();
    crate::protocol::server::serve(stdin.lock(), stdout.lock(), command, &env)
}

fn report(r: Result<i32, String>) -> i32 {
    r.unwrap_or_else(|e| {
        eprintln!("smbdensity: {e}");
        2
    })
}

/// Positional arguments and `(--flag, value)` pairs.
type Parsed = (Vec<String>, Vec<(String, String)>);

/// Parses `--flag value` options; returns the positional arguments.
fn options(args: &[String], takes_value: &[&str], flags: &[&str]) -> Result<Parsed, String> {
    let mut pos = Vec::new();
    let mut opts = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if takes_value.contains(&a.as_str()) {
            let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
            opts.push((a.clone(), v.clone()));
        } else if flags.contains(&a.as_str()) {
            opts.push((a.clone(), String::new()));
        } else if a.starts_with("--") {
            return Err(format!("unknown option {a}"));
        } else {
            pos.push(a.clone());
        }
    }
    Ok((pos, opts))
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{name} needs a number, got \"{v}\""))
}

fn self_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))
}

fn run_local(args: &[String]) -> Result<i32, String> {
    let (pos, opts) = options(args, &["--models", "--chunk-rows"], &["--keep-mv"])?;
    let [line] = pos.as_slice() else {
        return Err(
            "usage: smbdensity run '<command line>' [--models DIR] < in.csv > out.csv".into(),
        );
    };
    let mut o = driver::Options::new(self_exe()?);
    for (k, v) in opts {
        match k.as_str() {
            "--models" => o.models = Some(PathBuf::from(v)),
            "--chunk-rows" => o.chunk_rows = number("--chunk-rows", &v)?,
            _ => o.keep_mv = true,
        }
    }
    let stdout = io::stdout();
    let outcome =
        driver::run(line, io::stdin().lock(), stdout.lock(), &o).map_err(|e| e.to_string())?;
    Ok(if outcome.error.is_some() {
        1
    } else {
        outcome.exit_code.unwrap_or(1)
    })
}

fn demo_cmd(args: &[String]) -> Result<i32, String> {
    let (pos, opts) = options(args, &["--models"], &[])?;
    if !pos.is_empty() {
        return Err("usage: smbdensity demo [--models DIR]".into());
    }
    let models = opts.into_iter().next().map(|(_, v)| PathBuf::from(v));
    let stdout = io::stdout();
    demo::run(&self_exe()?, models, &mut stdout.lock()).map_err(|e| e.to_string())?;
    Ok(0)
}

fn sample_cmd(args: &[String]) -> Result<i32, String> {
    let (pos, opts) = options(args, &["--hosts", "--days", "--seed"], &["--detection"])?;
    if !pos.is_empty() {
        return Err(
            "usage: smbdensity sample [--hosts N] [--days N] [--seed N] [--detection]".into(),
        );
    }
    let mut spec = demo::SampleSpec::default();
    let mut detection = false;
    for (k, v) in opts {
        match k.as_str() {
            "--hosts" => spec.hosts = number(&k, &v)?,
            "--days" => spec.days = number(&k, &v)?,
            "--seed" => spec.seed = number(&k, &v)?,
            _ => detection = true,
        }
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let r = if detection {
        spec.write_detection(&mut out)
    } else {
        spec.write_training(&mut out)
    };
    r.and_then(|_| out.flush()).map_err(|e| e.to_string())?;
    Ok(0)
}

fn bench_cmd(args: &[String]) -> Result<i32, String> {
    let (pos, opts) = options(
        args,
        &[
            "--rows",
            "--fit-rows",
            "--hosts",
            "--rounds",
            "--only",
            "--models",
        ],
        &["--quick", "--fit-only"],
    )?;
    if !pos.is_empty() {
        return Err(
            "usage: smbdensity bench [--quick] [--rows N] [--fit-rows N] [--hosts N] [--rounds N] [--fit-only] [--only groups] [--models DIR]"
                .into(),
        );
    }
    let quick = opts.iter().any(|(k, _)| k == "--quick");
    let mut o = bench::Options::new(self_exe()?, quick);
    o.fit_only = opts.iter().any(|(k, _)| k == "--fit-only");
    for (k, v) in opts {
        match k.as_str() {
            "--rows" => o.rows = number(&k, &v)?,
            "--fit-rows" => o.fit_rows = number(&k, &v)?,
            "--hosts" => o.many_hosts = number(&k, &v)?,
            "--rounds" => o.rounds = number::<usize>(&k, &v)?.max(1),
            "--only" if v == "groups" => o.only_groups = true,
            "--only" => return Err(format!("--only takes \"groups\", got \"{v}\"")),
            "--models" => o.models = Some(PathBuf::from(v)),
            _ => {}
        }
    }
    let stdout = io::stdout();
    bench::run(&o, &mut stdout.lock()).map_err(|e| e.to_string())?;
    Ok(0)
}

fn quality_cmd(args: &[String]) -> Result<i32, String> {
    let (pos, opts) = options(
        args,
        &[
            "--hosts", "--seeds", "--seed", "--out", "--timing", "--readme",
        ],
        &[],
    )?;
    if !pos.is_empty() {
        return Err(
            "usage: smbdensity quality [--hosts N] [--seeds 1,2,3] [--out DIR] [--readme FILE] [--timing HOSTS]"
                .into(),
        );
    }
    let mut spec = quality::QualitySpec {
        hosts: 500,
        seeds: vec![1, 2, 3],
        out: None,
        timing_hosts: None,
        readme: None,
    };
    for (k, v) in opts {
        match k.as_str() {
            "--hosts" => spec.hosts = number(&k, &v)?,
            "--seeds" | "--seed" => {
                spec.seeds = v
                    .split(',')
                    .map(|s| number(&k, s.trim()))
                    .collect::<Result<_, _>>()?
            }
            "--out" => spec.out = Some(PathBuf::from(v)),
            "--readme" => spec.readme = Some(PathBuf::from(v)),
            _ => spec.timing_hosts = Some(number(&k, &v)?),
        }
    }
    if spec.hosts < 60 {
        return Err("--hosts must be at least 60".into());
    }
    let stdout = io::stdout();
    quality::run(&self_exe()?, &spec, &mut stdout.lock())?;
    Ok(0)
}
