//! `smbdensity-bench`: the throughput and detection-quality benchmarks, run against the `smbdensity`
//! binary built beside this one (`cargo build --release --workspace` puts both in `target/release/`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use smbdensity_bench::{quality, throughput};

#[derive(Parser)]
#[command(
    version,
    about = "Benchmarks for smbdensity (not part of the Splunk app)"
)]
struct Cli {
    /// The smbdensity binary to measure (default: the one next to this binary).
    #[arg(long, global = true)]
    exe: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// End-to-end throughput, peak memory and latency through the real SCPv2 pipe, against pass-through
    /// baselines that only move rows.
    Throughput {
        /// Smaller cases and fewer rounds (about a minute).
        #[arg(long)]
        quick: bool,
        /// Rows for the apply and pass-through cases.
        #[arg(long)]
        rows: Option<usize>,
        /// Rows for the 168-group fit cases.
        #[arg(long)]
        fit_rows: Option<usize>,
        /// Hosts for the many-groups case (x 168 hours of the week).
        #[arg(long)]
        hosts: Option<usize>,
        /// Rounds of each case; the best round counts.
        #[arg(long)]
        rounds: Option<usize>,
        /// Only the 168-group fit cases.
        #[arg(long)]
        fit_only: bool,
        /// Only the many-groups cases (fit, model load, apply).
        #[arg(long, value_parser = ["groups"])]
        only: Option<String>,
        /// Keep the models here and reuse any already fitted.
        #[arg(long)]
        models: Option<PathBuf>,
    },
    /// The labelled benchmark: a synthetic enterprise with attack episodes, scored by the pooled ESCU
    /// detection and the per-host detection.
    Quality {
        /// Hosts in the synthetic network (at least 60).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(60..))]
        hosts: u64,
        /// Seeds to run, comma-separated.
        #[arg(long, alias = "seed", value_delimiter = ',', default_value = "1,2,3")]
        seeds: Vec<u64>,
        /// Write per-host-quality.md and per-host-quality.svg into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the tables between the quality markers of this Markdown file.
        #[arg(long)]
        readme: Option<PathBuf>,
        /// Also time fit and apply on a network of this many hosts.
        #[arg(long, value_name = "HOSTS")]
        timing: Option<usize>,
    },
}

/// A binary built beside this one.
fn sibling(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot locate this binary: {e}"))?;
    let path = me.with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found; build the workspace first: cargo build --release --workspace",
            path.display()
        ))
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let exe = match cli.exe {
        Some(e) => e,
        None => sibling("smbdensity")?,
    };
    let stdout = std::io::stdout();
    match cli.command {
        Command::Throughput {
            quick,
            rows,
            fit_rows,
            hosts,
            rounds,
            fit_only,
            only,
            models,
        } => {
            let mut o = throughput::Options::new(exe, sibling("scpv2-passthrough")?, quick);
            o.rows = rows.unwrap_or(o.rows);
            o.fit_rows = fit_rows.unwrap_or(o.fit_rows);
            o.many_hosts = hosts.unwrap_or(o.many_hosts);
            o.rounds = rounds.unwrap_or(o.rounds).max(1);
            o.fit_only = fit_only;
            o.only_groups = only.is_some();
            o.models = models;
            throughput::run(&o, &mut stdout.lock()).map_err(|e| e.to_string())
        }
        Command::Quality {
            hosts,
            seeds,
            out,
            readme,
            timing,
        } => {
            let spec = quality::QualitySpec {
                hosts: hosts as usize,
                seeds,
                out,
                timing_hosts: timing,
                readme,
            };
            quality::run(&exe, &spec, &mut stdout.lock())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smbdensity-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
