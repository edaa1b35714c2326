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
use cxstream::generate::{GenerateOptions, Generator};
use cxstream::replay;
use cxstream::runtime::{RunOptions, Until};
use cxstream::shutdown::{self, Trigger};
use cxstream::sink::file::FileSink;
use cxstream::source::{Admission, Partitioner, Route};

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
    /// CXSTREAM_SECTION__KEY environment variables override it, and
    /// CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD sets the librdkafka property sasl.password
    /// (`_` for `.`, `__` for `_`).
    #[arg(long, short, global = true, env = "CXSTREAM_CONFIG")]
    config: Option<PathBuf>,

    /// Log filter (tracing EnvFilter syntax), e.g. `info`, `cxstream=debug`.
    #[arg(long, global = true, env = "CXSTREAM_LOG", default_value = "info")]
    log: String,

    /// Log lines on stderr: `text` for people, or `json` for containers and log collectors:
    /// one JSON object per line with `timestamp`, `level`, `target`, `message` and each of
    /// the event's fields as keys. Secret values show as *** in either.
    #[arg(
        long,
        global = true,
        env = "CXSTREAM_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: cxstream::logs::LogFormat,

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
        /// Split the file over N partitions by customer, one watermark each, as `run`
        /// processes an N-partition topic keyed by customer (SPEC §2).
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// How --partitions assigns a customer: `crc32` (librdkafka's default: the Python,
        /// Go, .NET and C clients) or `murmur2` (the Java client's default).
        #[arg(long, default_value = "crc32")]
        partitioner: String,
        /// The reference clock for time from the future (input.max_future): events more than
        /// that ahead of it are invalid. RFC 3339; default: the wall clock at start. Fix it to
        /// make a replay byte-identical whenever it runs.
        #[arg(long)]
        now: Option<String>,
    },
    /// Consume events from Kafka and publish KPIs: records to the output topic, dead letters
    /// to the dead-letter topic, Prometheus metrics on the metrics endpoint. Stops cleanly on
    /// SIGINT/SIGTERM (checkpoints, flushes outputs, leaves the group, within
    /// kafka.shutdown_timeout).
    ///
    /// Each partition's state is checkpointed to the state topic (kafka.state_topic) and
    /// restored when the partition is assigned, so a crash, deploy or rebalance loses
    /// nothing: records derived again are byte-identical to their first emission.
    ///
    /// Start as many instances in one group as you need: window parts go through the parts
    /// topic (kafka.parts_topic) to a merge step in every instance (group <group_id>.merge),
    /// and the output topic gets the same complete kpi.window records as from one instance.
    Run {
        /// Metrics endpoint address (overrides metrics.listen), e.g. 0.0.0.0:9464.
        #[arg(long)]
        metrics_listen: Option<String>,
        /// Consume up to the input's end offsets as of the start, then finish like replay
        /// (partial windows flagged), checkpoint and exit 0: exact Kafka backfills and
        /// reprocessing. Needs every input partition (one instance).
        #[arg(long)]
        until_end: bool,
        /// With --until-end: stop at these offsets instead of the high watermarks, as
        /// topic:partition=offset,... (for brokers whose high watermark lags).
        #[arg(long, value_name = "OFFSETS")]
        until_offsets: Option<String>,
        /// Partitions without a checkpoint start from the group's committed offsets with empty
        /// state, instead of stopping: the explicit upgrade from a version without checkpoints.
        #[arg(long)]
        from_committed_offsets: bool,
    },
    /// Inspect or reset the state a consumer group checkpointed to its state topic.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// The one-command demo: an in-process Kafka-protocol cluster, synthetic events at a
    /// realistic rate, the full `run` pipeline and the metrics endpoint. Ctrl-C stops it.
    Demo {
        /// Events produced per second (wall clock).
        #[arg(long, default_value_t = 2000.0)]
        rate: f64,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
        /// Metrics endpoint address.
        #[arg(long, default_value = "127.0.0.1:9464")]
        metrics_listen: String,
        /// Partitions of the demo's input topic.
        #[arg(long, default_value_t = 3)]
        partitions: i32,
    },
    /// Write realistic, seeded synthetic events (JSON Lines) to stdout, a file, or a Kafka topic.
    ///
    /// Every channel, priority and team; log-normal reply and resolution delays so some SLAs
    /// breach; internal notes and system messages; reopens, escalations, surveys, orders,
    /// returns, warranty claims and churn; optional invalid, duplicate and orphan events.
    Generate {
        /// Number of lines to write.
        #[arg(long, short = 'n', default_value_t = 100_000)]
        events: u64,
        /// Random seed: the same options give the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Event time of the first event (RFC 3339, or `now` for live use with --rate),
        /// default 2026-11-22T08:00:00Z.
        #[arg(long)]
        start: Option<String>,
        /// Size of the customer population.
        #[arg(long, default_value_t = 5000)]
        customers: u32,
        /// Ticket arrival rate in event time.
        #[arg(long, default_value_t = 600.0)]
        tickets_per_hour: f64,
        /// Fraction of invalid lines to inject (every invalid class of SPEC §1).
        #[arg(long, default_value_t = 0.0)]
        invalid_ratio: f64,
        /// Fraction of lines that re-send an earlier event verbatim.
        #[arg(long, default_value_t = 0.0)]
        duplicate_ratio: f64,
        /// Fraction of ticket events for tickets that were never created.
        #[arg(long, default_value_t = 0.0)]
        orphan_ratio: f64,
        /// Output file, `-` for standard output.
        #[arg(long, short, default_value = "-")]
        output: String,
        /// Produce to Kafka instead (bootstrap servers); needs --topic.
        #[arg(long)]
        kafka: Option<String>,
        /// Kafka topic for --kafka.
        #[arg(long, default_value = "cx.events")]
        topic: String,
        /// Pace output at this many lines per second (wall clock).
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Check a configuration file (and CXSTREAM_* overrides) and print the effective values,
    /// secrets masked (***); explains an inconsistent Kafka security setup (protocol, SASL
    /// mechanism and credentials, SSL files). Exits with failure on an error.
    CheckConfig,
}

#[derive(Subcommand)]
enum StateAction {
    /// Per partition: checkpoint generation, input position, age, watermark, tickets,
    /// customers, open window parts and bytes.
    Inspect,
    /// Start the group from scratch: the next run reprocesses the input from the earliest
    /// offset with empty state. Stop every instance of the group first.
    Reset {
        /// Confirm: the group's state and committed offsets are discarded.
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cxstream::logs::init(&cli.log, cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `error: ...` (a JSON line with --log-format json), secrets scrubbed.
            cxstream::logs::report_error(&format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let cfg = Arc::new(Config::load(cli.config.as_deref())?);
    match cli.command {
        Command::CheckConfig => {
            // The effective values with secrets masked, then the security setup's findings.
            let check = cfg.check();
            print!("{check}");
            check.result()
        }
        Command::Replay {
            input,
            output,
            deadletter,
            quiet,
            partitions,
            partitioner,
            now,
        } => {
            if partitions < 1 {
                anyhow::bail!("--partitions must be at least 1");
            }
            let how = Partitioner::parse(&partitioner)
                .with_context(|| format!("--partitioner {partitioner}: choose crc32 or murmur2"))?;
            let route = if partitions == 1 {
                Route::Fixed(0)
            } else {
                Route::ByCustomer(how, partitions)
            };
            let now = match now {
                Some(t) => cxstream::ts::parse_rfc3339_ms(&t).with_context(|| {
                    format!("--now {t} is not an RFC 3339 time like 2026-11-22T08:00:00Z")
                })?,
                None => replay::wall_clock_ms(),
            };
            let adm = Admission::new(&cfg, Some(now));
            cmd_replay(cfg, &input, &output, deadletter, quiet, route, adm)
        }
        Command::Run {
            metrics_listen,
            until_end,
            until_offsets,
            from_committed_offsets,
        } => {
            let until = match (until_end, until_offsets) {
                (false, None) => None,
                (_, None) => Some(Until::HighWatermarks),
                (_, Some(o)) => Some(Until::Offsets(parse_offsets(&o)?)),
            };
            let opts = RunOptions {
                until,
                from_committed: from_committed_offsets,
            };
            cmd_run(cfg, metrics_listen, opts)
        }
        Command::State { action } => {
            let out = match action {
                StateAction::Inspect => cxstream::runtime::admin::inspect(&cfg)?,
                StateAction::Reset { yes: false } => anyhow::bail!(
                    "state reset discards group {}'s checkpoints and rewinds its committed offsets \
                     to the earliest: add --yes to confirm (stop every instance first)",
                    cfg.kafka.group_id
                ),
                StateAction::Reset { yes: true } => cxstream::runtime::admin::reset(&cfg)?,
            };
            print!("{out}");
            Ok(())
        }
        Command::Demo {
            rate,
            duration,
            metrics_listen,
            partitions,
        } => {
            let opts = cxstream::runtime::DemoOptions {
                rate,
                duration: duration.map(std::time::Duration::from_secs),
                metrics_listen: metrics_listen.parse().with_context(|| {
                    format!(
                        "--metrics-listen {metrics_listen} is not an address like 127.0.0.1:9464"
                    )
                })?,
                partitions,
            };
            let (trigger, shutdown) = shutdown::channel();
            let rt = runtime()?;
            rt.spawn(stop_on_signal(trigger));
            let result = cxstream::runtime::demo(cfg, opts, shutdown);
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            result
        }
        Command::Generate {
            events,
            seed,
            start,
            customers,
            tickets_per_hour,
            invalid_ratio,
            duplicate_ratio,
            orphan_ratio,
            output,
            kafka,
            topic,
            rate,
        } => {
            let mut opts = GenerateOptions {
                events,
                seed,
                customers,
                tickets_per_hour,
                invalid_ratio,
                duplicate_ratio,
                orphan_ratio,
                ..GenerateOptions::default()
            };
            if start.as_deref() == Some("now") {
                opts.start_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
            } else if let Some(s) = start {
                opts.start_ms = cxstream::ts::parse_rfc3339_ms(&s).with_context(|| {
                    format!("--start {s} is not an RFC 3339 time like 2026-11-22T08:00:00Z")
                })?;
            }
            cmd_generate(&cfg, opts, &output, kafka, &topic, rate)
        }
    }
}

fn cmd_generate(
    cfg: &Config,
    opts: GenerateOptions,
    output: &str,
    kafka: Option<String>,
    topic: &str,
    rate: Option<f64>,
) -> Result<()> {
    let lines = Generator::new(opts).map(|g| (g.key, g.line));
    if let Some(bootstrap) = kafka {
        let n = cxstream::sink::lines::produce_lines(
            bootstrap.as_str(),
            topic,
            lines,
            rate,
            &cfg.kafka.librdkafka,
        )?;
        eprintln!("produced {n} events to {topic} on {bootstrap}");
        return Ok(());
    }
    let mut out = open_output(output)?;
    let started = std::time::Instant::now();
    for (n, (_, line)) in lines.enumerate() {
        if let Some(r) = rate.filter(|r| *r > 0.0) {
            let due = started + std::time::Duration::from_secs_f64(n as f64 / r);
            let now = std::time::Instant::now();
            if due > now {
                out.flush()?;
                std::thread::sleep(due - now);
            }
        }
        if let Err(e) = writeln!(out, "{line}") {
            // A closed pipe (e.g. `| head`) ends generation quietly.
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
    }
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// A buffered writer on a file, or on standard output for `-`.
fn open_output(output: &str) -> Result<Box<dyn Write + Send>> {
    Ok(if output == "-" {
        Box::new(BufWriter::with_capacity(1 << 20, io::stdout()))
    } else {
        let f =
            File::create(output).with_context(|| format!("cannot create output file {output}"))?;
        Box::new(BufWriter::with_capacity(1 << 20, f))
    })
}

/// A small async runtime for the I/O around the pipeline (signals, the metrics endpoint).
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The only place that listens to signals: SIGINT or SIGTERM starts a graceful shutdown.
async fn stop_on_signal(trigger: Trigger) {
    wait_for_signal().await;
    tracing::info!("shutting down: stop fetching, flush outputs, commit, leave the group");
    trigger.fire();
}

/// `topic:partition=offset,...`
fn parse_offsets(s: &str) -> Result<std::collections::BTreeMap<(String, i32), i64>> {
    let mut out = std::collections::BTreeMap::new();
    for item in s.split(',').filter(|i| !i.trim().is_empty()) {
        let parse = || -> Option<((String, i32), i64)> {
            let (tp, off) = item.trim().rsplit_once('=')?;
            let (t, p) = tp.rsplit_once(':')?;
            Some(((t.to_string(), p.parse().ok()?), off.parse().ok()?))
        };
        let (k, v) = parse().with_context(|| {
            format!(
                "--until-offsets: \"{item}\" is not topic:partition=offset, e.g. cx.events:0=15000"
            )
        })?;
        out.insert(k, v);
    }
    Ok(out)
}

fn cmd_run(cfg: Arc<Config>, metrics_listen: Option<String>, opts: RunOptions) -> Result<()> {
    let listen = metrics_listen.unwrap_or_else(|| cfg.metrics.listen.clone());
    let metrics = cxstream::metrics::Metrics::new(&cfg);
    let rt = runtime()?;
    let (trigger, shutdown) = shutdown::channel();
    if !listen.is_empty() {
        let addr: std::net::SocketAddr = listen.parse().with_context(|| {
            format!("metrics.listen \"{listen}\" is not an address like 127.0.0.1:9464")
        })?;
        let (m, s) = (metrics.clone(), shutdown.clone());
        rt.spawn(async move {
            if let Err(e) = cxstream::metrics::serve(addr, m, async move { s.wait().await }).await {
                tracing::error!("metrics endpoint on {addr} failed: {e:#}");
            }
        });
        tracing::info!("metrics on http://{addr}/metrics");
    }
    rt.spawn(stop_on_signal(trigger.clone()));
    let summary = cxstream::runtime::run_pipeline_with(
        cfg,
        Some(metrics),
        shutdown,
        cxstream::runtime::Progress::new(),
        opts,
    );
    // Stops the metrics endpoint too when the pipeline ended on its own (an error).
    trigger.fire();
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    // The pipeline logged "stopped" with its summary.
    summary?;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn cmd_replay(
    cfg: Arc<Config>,
    input: &str,
    output: &str,
    deadletter: Option<PathBuf>,
    quiet: bool,
    route: Route,
    adm: Admission,
) -> Result<()> {
    cxstream::alloc::set_decay_ms(cxstream::alloc::BATCH_DECAY_MS);
    let mut engine = Engine::new(cfg);
    let (reader, name): (Box<dyn io::BufRead + Send>, String) = if input == "-" {
        (
            // `Stdin`, not its lock: the input is read on replay's second thread.
            Box::new(BufReader::with_capacity(1 << 20, io::stdin())),
            "<stdin>".into(),
        )
    } else {
        let f = File::open(input).with_context(|| format!("cannot open input file {input}"))?;
        (
            Box::new(BufReader::with_capacity(1 << 20, f)),
            input.to_string(),
        )
    };
    let mut out = open_output(output)?;
    let mut dl_file = match &deadletter {
        Some(p) => Some(BufWriter::new(File::create(p).with_context(|| {
            format!("cannot create dead-letter file {}", p.display())
        })?)),
        None => None,
    };
    let mut sink = FileSink {
        output: &mut out,
        deadletter: dl_file.as_mut().map(|f| f as &mut (dyn Write + Send)),
    };
    let summary = replay::replay_routed(
        &mut engine,
        reader,
        &name,
        route,
        adm,
        &mut sink,
        |lines, e| {
            if !quiet {
                eprintln!(
                    "… {lines} lines, watermark {}, {} tickets and {} customers held",
                    e.watermark().map_or("-".into(), cxstream::ts::format_ms),
                    e.tickets_held(),
                    e.customers_held()
                );
            }
        },
    )
    .context("replay failed while reading input or writing output")?;
    if !quiet {
        eprint!("{}", summary.render());
    }
    Ok(())
}
