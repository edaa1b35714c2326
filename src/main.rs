//! The `cxstream` command line.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use cxstream::config::Config;
use cxstream::engine::Engine;
use cxstream::replay::{self, Sinks};

/// cxstream — live KPIs for customer service and after-sales teams.
///
/// Consumes help-desk and after-sales events (tickets, replies, solves, surveys, orders,
/// returns, churn), keeps event-time windowed KPIs (first response, resolution and handle
/// time, FCR, CSAT, NPS, CES, SLA outcomes, churn risk, service recovery, repurchase after
/// service), raises SLA breaches while the customer is still waiting, and publishes summaries
/// as JSON records and Prometheus metrics.
#[derive(Parser)]
#[command(name = "cxstream", version, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Every option is documented in config/cxstream.toml;
    /// CXSTREAM_SECTION__KEY environment variables override it.
    #[arg(long, short, global = true, env = "CXSTREAM_CONFIG")]
    config: Option<PathBuf>,

    /// Log filter (tracing EnvFilter syntax), e.g. `info`, `cxstream=debug`.
    #[arg(long, global = true, env = "CXSTREAM_LOG", default_value = "info")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay a JSON Lines file of events and write the output records (deterministic: the
    /// same input gives byte-identical output).
    ///
    /// Example: cxstream generate --events 100000 | cxstream replay > records.jsonl
    Replay {
        /// Input file of JSON Lines events, `-` for standard input.
        #[arg(long, short, default_value = "-")]
        input: String,
        /// Where output records go, `-` for standard output.
        #[arg(long, short, default_value = "-")]
        output: String,
        /// Write dead-letter records (invalid, orphan and `ticket exists` events) to this file
        /// instead of the main output.
        #[arg(long)]
        deadletter: Option<PathBuf>,
        /// Do not print progress and the final summary on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check a configuration file (and CXSTREAM_* overrides) and print the effective values.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let cfg = Arc::new(Config::load(cli.config.as_deref())?);
    match cli.command {
        Command::CheckConfig => {
            println!("configuration OK");
            println!("{cfg:#?}");
            Ok(())
        }
        Command::Replay {
            input,
            output,
            deadletter,
            quiet,
        } => cmd_replay(cfg, &input, &output, deadletter, quiet),
    }
}

fn cmd_replay(
    cfg: Arc<Config>,
    input: &str,
    output: &str,
    deadletter: Option<PathBuf>,
    quiet: bool,
) -> Result<()> {
    let mut engine = Engine::new(cfg);
    let (reader, name): (Box<dyn io::BufRead>, String) = if input == "-" {
        (
            Box::new(BufReader::with_capacity(1 << 20, io::stdin().lock())),
            "<stdin>".into(),
        )
    } else {
        let f = File::open(input).with_context(|| format!("cannot open input file {input}"))?;
        (
            Box::new(BufReader::with_capacity(1 << 20, f)),
            input.to_string(),
        )
    };
    let mut out: Box<dyn Write> = if output == "-" {
        Box::new(BufWriter::with_capacity(1 << 20, io::stdout().lock()))
    } else {
        let f =
            File::create(output).with_context(|| format!("cannot create output file {output}"))?;
        Box::new(BufWriter::with_capacity(1 << 20, f))
    };
    let mut dl_file = match &deadletter {
        Some(p) => Some(BufWriter::new(File::create(p).with_context(|| {
            format!("cannot create dead-letter file {}", p.display())
        })?)),
        None => None,
    };
    let mut sinks = Sinks {
        output: &mut out,
        deadletter: dl_file.as_mut().map(|f| f as &mut dyn Write),
    };
    let summary = replay::replay(&mut engine, reader, &name, &mut sinks, |lines, e| {
        if !quiet {
            eprintln!(
                "… {lines} lines, watermark {}, {} tickets and {} customers held",
                e.watermark().map_or("-".into(), cxstream::ts::format_ms),
                e.tickets_held(),
                e.customers_held()
            );
        }
    })
    .context("replay failed while reading input or writing output")?;
    if !quiet {
        eprint!("{}", summary.render());
    }
    Ok(())
}
