//! The command line: `smbdensity <search command>` speaks SCPv2 for splunkd; `run`, `demo`, `sample` and
//! `version` are for people.
//!
//! The search commands are dispatched before any argument parsing, so the path splunkd takes stays a few
//! string comparisons; the human subcommands are parsed with clap.

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands::Environment;
use crate::{demo, local};

/// The commands splunkd runs (commands.conf `command.arg.1`).
pub const SEARCH_COMMANDS: &[&str] = &["fit", "apply", "summary", "listmodels", "deletemodel"];

const ABOUT: &str = "MLTK DensityFunction-compatible fit/apply for Splunk, as one native binary";

const AFTER_HELP: &str = "\
Splunk runs the search commands as `smbdensity fit|apply|summary|listmodels|deletemodel`, speaking
SCPv2 on stdin/stdout (see `smbdensity fit --help`). Models live in the app's lookups/ folder, or in
$SMBDENSITY_MODEL_DIR, or in `--models DIR`.";

#[derive(Debug, Parser)]
#[command(name = "smbdensity", version, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Human,
}

#[derive(Debug, Subcommand)]
enum Human {
    /// Generate sample SMB traffic, fit both baselines, run both hourly detections, print what they found.
    Demo {
        /// Keep the models here (default: a new temporary folder for this run).
        #[arg(long, value_name = "DIR")]
        models: Option<PathBuf>,
    },
    /// Play splunkd: run one search command over a CSV file through the real protocol.
    #[command(after_help = "\
Examples:
  smbdensity sample > baseline.csv
  smbdensity run 'fit smbdensity count by \"HourOfDay,DayOfWeek\" into smb_pdfmodel' --models lookups < baseline.csv > scored.csv
  smbdensity sample --detection > hour.csv
  smbdensity run 'apply smb_pdfmodel threshold=0.001' --models lookups < hour.csv > detections.csv

Rows go to the command in 50,000-row chunks, as splunkd sends them; inspector messages go to stderr.
Exit status: 0, or 1 when the command replied with an error.")]
    Run(RunArgs),
    /// Print deterministic sample data (the demo's) as CSV: training days, or the detection day.
    Sample(SampleArgs),
    /// Print the version.
    Version,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The search command and its arguments, as typed after `|` in Splunk.
    #[arg(value_name = "COMMAND LINE")]
    line: String,
    /// The models folder (default: the app's lookups/ next to the binary, or $SMBDENSITY_MODEL_DIR).
    #[arg(long, value_name = "DIR")]
    models: Option<PathBuf>,
    /// Rows per execute chunk.
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    chunk_rows: usize,
    /// Keep the `__mv_` multivalue columns in the output (Splunk's own exports drop them).
    #[arg(long)]
    keep_mv: bool,
}

#[derive(Debug, Args)]
struct SampleArgs {
    #[arg(long, value_name = "N", default_value_t = demo::SampleSpec::default().hosts)]
    hosts: usize,
    /// Training days (the detection day follows them).
    #[arg(long, value_name = "N", default_value_t = demo::SampleSpec::default().days)]
    days: usize,
    #[arg(long, value_name = "N", default_value_t = demo::SampleSpec::default().seed)]
    seed: u64,
    /// The detection day, with its injected lateral movement and worm-like sweep.
    #[arg(long)]
    detection: bool,
}

/// Runs the program and returns its exit status.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    if let Some(cmd) = args.get(1).and_then(|a| a.to_str())
        && SEARCH_COMMANDS.contains(&cmd)
    {
        return search_command(cmd, &args[2..]);
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match cli.command {
        Human::Demo { models } => run_demo(models),
        Human::Run(a) => run_line(a),
        Human::Sample(a) => run_sample(a),
        Human::Version => {
            println!("smbdensity {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("smbdensity: {e}");
        2
    })
}

fn search_command_help(cmd: &str) -> String {
    format!(
        "\
smbdensity {cmd}: the `{cmd}` search command, for splunkd.

Splunk starts it as a child process and talks to it over stdin/stdout in the chunked custom search
command protocol (SCPv2); its arguments arrive in that conversation, not on this command line. See
the app's searchbnf.conf or README for the search syntax.

To try it without Splunk, let `smbdensity run` play splunkd's side on a CSV file:
  smbdensity sample > baseline.csv
  smbdensity run 'fit smbdensity count by \"HourOfDay,DayOfWeek\" into smb_pdfmodel' --models lookups < baseline.csv
  smbdensity run 'apply smb_pdfmodel threshold=0.001' --models lookups < hour.csv
"
    )
}

/// An SCPv2 session for splunkd, or help for a person who typed the command.
fn search_command(cmd: &str, rest: &[OsString]) -> i32 {
    if rest
        .iter()
        .any(|a| a == "-h" || a == "--help" || a == "help")
    {
        print!("{}", search_command_help(cmd));
        return 0;
    }
    if io::stdin().is_terminal() {
        eprint!(
            "smbdensity {cmd} speaks SCPv2 on stdin and is not typed at a terminal.\n\n{}",
            search_command_help(cmd)
        );
        return 2;
    }
    serve(cmd)
}

fn serve(command: &str) -> i32 {
    let env = Environment::discover().unwrap_or_else(|e| Environment {
        config_error: Some(e.to_string()),
        ..Default::default()
    });
    let server = scpv2::Server::new("smbdensity").max_chunk_bytes(
        env.config.max_chunk_bytes(),
        "max_chunk_size_mb in smbdensity.conf",
    );
    let stdin = io::stdin();
    let stdout = io::stdout();
    server.serve(stdin.lock(), stdout.lock(), |info| {
        crate::commands::build(command, info, &env)
    })
}

fn self_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))
}

fn run_line(a: RunArgs) -> Result<i32, String> {
    let mut o = local::options(self_exe()?, a.models.as_deref());
    o.chunk_rows = a.chunk_rows.max(1);
    o.keep_mv = a.keep_mv;
    let stdout = io::stdout();
    let outcome =
        local::run(&a.line, io::stdin().lock(), stdout.lock(), &o).map_err(|e| e.to_string())?;
    Ok(if outcome.error.is_some() {
        1
    } else {
        outcome.exit_code.unwrap_or(1)
    })
}

fn run_demo(models: Option<PathBuf>) -> Result<i32, String> {
    let stdout = io::stdout();
    demo::run(&self_exe()?, models, &mut stdout.lock()).map_err(|e| e.to_string())?;
    Ok(0)
}

fn run_sample(a: SampleArgs) -> Result<i32, String> {
    let spec = demo::SampleSpec {
        hosts: a.hosts,
        days: a.days,
        seed: a.seed,
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let r = if a.detection {
        spec.write_detection(&mut out)
    } else {
        spec.write_training(&mut out)
    };
    r.and_then(|_| out.flush()).map_err(|e| e.to_string())?;
    Ok(0)
}
