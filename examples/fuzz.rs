//! Long runs of the structured fuzzer over decode + engine + window close (issue 12).
//!
//! ```sh
//! cargo run --release --example fuzz -- --inputs 10000000 --seed 1
//! cargo run --release --example fuzz -- --load target/fuzz-failures/case-N.json --minimize
//! ```
//!
//! What a case is and which invariants are checked: `tests/fuzzer/mod.rs`. Progress goes to
//! stderr every `--progress` seconds; the final summary to stdout. A failing case (a panic or
//! a broken invariant) is written to `--failures DIR` as `case-<seed>.json` (its configuration
//! as TOML and every input, base64) and listed with the command that re-runs it; the exit status is 1
//! if any case failed.

#[path = "../tests/fuzzer/mod.rs"]
mod fuzzer;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;

use fuzzer::gen::{case, Limits};
use fuzzer::{case_seed, dump, panic_message, run_case, Tally};

#[derive(Parser, Debug)]
#[command(about = "Structured fuzzer over cxstream's decode + engine + window close")]
struct Args {
    /// Generated inputs to run (summed over cases).
    #[arg(long, default_value_t = 1_000_000)]
    inputs: u64,
    /// Seed of the run: case k has seed splitmix(seed, k).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run only this case (its seed, as printed for a failure), verbosely.
    #[arg(long)]
    case: Option<u64>,
    /// Run only the case in this file (as written to --failures), verbosely.
    #[arg(long)]
    load: Option<PathBuf>,
    /// Most inputs in one case.
    #[arg(long, default_value_t = 3000)]
    max_case_inputs: usize,
    /// Worker threads (cases are independent).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Where failing cases are written.
    #[arg(long, default_value = "target/fuzz-failures")]
    failures: PathBuf,
    /// Stop at the first failing case.
    #[arg(long)]
    fail_fast: bool,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 10)]
    progress: u64,
    /// No inputs over 1 MiB (otherwise about one in 20,000 is).
    #[arg(long)]
    no_huge: bool,
    /// With --case: shrink the failing case (fewer inputs failing the same way) and print it.
    #[arg(long)]
    minimize: bool,
}

thread_local! {
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

struct Shared {
    total: Mutex<Tally>,
    failures: Mutex<Vec<String>>,
    panics: AtomicU64,
    next_case: AtomicU64,
    stop: AtomicBool,
    slowest: Mutex<(Duration, u64)>,
}

fn fmt_n(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn inputs_of(c: &fuzzer::gen::Case) -> u64 {
    c.ops
        .iter()
        .filter(|o| matches!(o, fuzzer::gen::Op::Input { .. }))
        .count() as u64
}

fn one_case(args: &Args, limits: Limits) -> i32 {
    let mut c = match &args.load {
        Some(path) => {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
                eprintln!("cannot read {}: {e}", path.display());
                std::process::exit(2)
            });
            fuzzer::load(&text).unwrap_or_else(|e| {
                eprintln!("{}: not a fuzz case: {e}", path.display());
                std::process::exit(2)
            })
        }
        None => case(args.case.unwrap(), limits),
    };
    let cs = c.seed;
    if args.minimize {
        let before = c.ops.len();
        c = fuzzer::minimize(&c);
        eprintln!("minimized from {before} to {} ops:", c.ops.len());
        eprint!("{}", fuzzer::describe_ops(&c));
    }
    eprintln!(
        "case {cs}: {} ops, {} partitions, routing {:?}, completion {:?}, mode {}, clock {:?}, max_event_bytes {}, metrics {}",
        c.ops.len(),
        c.partitions,
        c.routing,
        c.completion,
        match &c.mode {
            fuzzer::gen::Mode::Plain => "plain".to_string(),
            m => format!("{m:?}"),
        },
        c.clock,
        c.max_event_bytes,
        c.metrics
    );
    let _ = std::fs::create_dir_all(&args.failures);
    let path = args.failures.join(format!(
        "case-{cs}{}.json",
        if args.minimize { "-min" } else { "" }
    ));
    if args.load.as_deref() != Some(path.as_path()) {
        let _ = std::fs::write(&path, dump(&c));
        eprintln!("case written to {}", path.display());
    }
    match run_case(&c) {
        Ok(t) => {
            println!("case {cs} passed: {t:?}");
            0
        }
        Err(e) => {
            println!("case {cs} FAILED: {e}");
            1
        }
    }
}

fn worker(args: &Args, limits: Limits, sh: &Shared) {
    while !sh.stop.load(Ordering::Relaxed) {
        let k = sh.next_case.fetch_add(1, Ordering::Relaxed);
        let cs = case_seed(args.seed, k);
        let c = case(cs, limits);
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| run_case(&c)));
        let took = started.elapsed();
        {
            let mut s = sh.slowest.lock().unwrap();
            if took > s.0 {
                *s = (took, cs);
            }
        }
        let failure = match result {
            Ok(Ok(t)) => {
                let mut total = sh.total.lock().unwrap();
                total.add(&t);
                if total.inputs >= args.inputs {
                    sh.stop.store(true, Ordering::Relaxed);
                }
                continue;
            }
            Ok(Err(e)) => format!("invariant violated: {e}"),
            Err(p) => {
                sh.panics.fetch_add(1, Ordering::Relaxed);
                let at = LAST_PANIC.with(|l| l.borrow().clone());
                format!("PANIC: {} ({at})", panic_message(&*p))
            }
        };
        // A failed case's inputs still count as run.
        sh.total.lock().unwrap().inputs += inputs_of(&c);
        let _ = std::fs::create_dir_all(&args.failures);
        let path = args.failures.join(format!("case-{cs}.json"));
        let _ = std::fs::write(&path, dump(&c));
        let msg = format!(
            "case {cs} (case {k} of seed {}): {failure}\n  case: {}\n  re-run: cargo run --release --example fuzz -- --load {} [--minimize]",
            args.seed,
            path.display(),
            path.display()
        );
        eprintln!("FAILURE {msg}");
        sh.failures.lock().unwrap().push(msg);
        if args.fail_fast {
            sh.stop.store(true, Ordering::Relaxed);
        }
    }
}

fn main() {
    let args = Args::parse();
    let limits = Limits {
        max_inputs: args.max_case_inputs.max(1),
        huge_inputs: !args.no_huge,
    };
    if args.case.is_some() || args.load.is_some() {
        std::process::exit(one_case(&args, limits));
    }
    // Panics are caught per case and reported with the case; keep their location only.
    std::panic::set_hook(Box::new(|info| {
        let loc = info
            .location()
            .map(|l| format!("at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        LAST_PANIC.with(|l| *l.borrow_mut() = loc);
    }));
    let sh = Shared {
        total: Mutex::new(Tally::default()),
        failures: Mutex::new(Vec::new()),
        panics: AtomicU64::new(0),
        next_case: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        slowest: Mutex::new((Duration::ZERO, 0)),
    };
    let started = Instant::now();
    eprintln!(
        "fuzz: {} inputs, seed {}, up to {} inputs per case, {} job(s)",
        fmt_n(args.inputs),
        args.seed,
        limits.max_inputs,
        args.jobs.max(1)
    );
    std::thread::scope(|s| {
        for _ in 0..args.jobs.max(1) {
            s.spawn(|| worker(&args, limits, &sh));
        }
        let mut next = Instant::now() + Duration::from_secs(args.progress.max(1));
        while !sh.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if Instant::now() >= next {
                next += Duration::from_secs(args.progress.max(1));
                let t = sh.total.lock().unwrap().clone();
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "[{secs:>6.0}s] inputs {} ({:.0}/s, {:.1}%), cases {}, applied {} invalid {} duplicate {} orphan {} ticket_exists {}, panics {}, failures {}",
                    fmt_n(t.inputs),
                    t.inputs as f64 / secs,
                    100.0 * t.inputs as f64 / args.inputs as f64,
                    fmt_n(t.cases),
                    fmt_n(t.applied),
                    fmt_n(t.invalid),
                    fmt_n(t.duplicate),
                    fmt_n(t.orphan),
                    fmt_n(t.ticket_exists),
                    sh.panics.load(Ordering::Relaxed),
                    sh.failures.lock().unwrap().len()
                );
            }
        }
    });
    let t = sh.total.lock().unwrap().clone();
    let secs = started.elapsed().as_secs_f64();
    let failures = sh.failures.lock().unwrap().clone();
    let panics = sh.panics.load(Ordering::Relaxed);
    let (slow, slow_case) = *sh.slowest.lock().unwrap();
    println!("cxstream fuzz summary (seed {})", args.seed);
    println!(
        "  inputs generated: {} in {} cases ({} plain, {} interleaved twice, {} with checkpoints and crashes; {} with the Prometheus layer)",
        fmt_n(t.inputs),
        fmt_n(t.cases),
        fmt_n(t.plain),
        fmt_n(t.interleave),
        fmt_n(t.checkpoint),
        fmt_n(t.with_metrics)
    );
    println!(
        "  inputs fed to engines: {} (second interleavings and replays after restores included), {} engines checked",
        fmt_n(t.fed),
        fmt_n(t.engines)
    );
    let sum = t.applied + t.invalid + t.duplicate + t.orphan + t.ticket_exists;
    println!(
        "  dispositions: applied {} + invalid {} + duplicate {} + orphan {} + ticket_exists {} = {} ({})",
        fmt_n(t.applied),
        fmt_n(t.invalid),
        fmt_n(t.duplicate),
        fmt_n(t.orphan),
        fmt_n(t.ticket_exists),
        fmt_n(sum),
        if sum == t.fed {
            "= inputs fed"
        } else {
            "MISMATCH"
        }
    );
    let inv: Vec<String> = t
        .invalid_by
        .iter()
        .map(|(k, v)| format!("{k} {}", fmt_n(*v)))
        .collect();
    println!("  invalid by reason: {}", inv.join(", "));
    let recs: Vec<String> = t
        .records
        .iter()
        .map(|(k, v)| format!("{k} {}", fmt_n(*v)))
        .collect();
    println!("  records checked: {}", recs.join(", "));
    println!(
        "  idle advances {}, checkpoints {}, crashes {}, partitions restored {}",
        fmt_n(t.advances),
        fmt_n(t.checkpoints),
        fmt_n(t.crashes),
        fmt_n(t.restores)
    );
    println!(
        "  through the parts topic: {} cases (plain ones compared with the in-memory merge), {} merge-step restarts from marks",
        fmt_n(t.topic),
        fmt_n(t.merge_restarts)
    );
    if t.unwritable_times > 0 {
        println!(
            "  {} records with a derived time after the year 9999 (written with a five-digit year)",
            fmt_n(t.unwritable_times)
        );
    }
    println!("  panics = {panics}, failed cases = {}", failures.len());
    println!(
        "  time {secs:.1} s, {:.0} inputs/s ({} job(s)); slowest case {slow_case}: {:.2} s",
        t.inputs as f64 / secs,
        args.jobs.max(1),
        slow.as_secs_f64()
    );
    for f in &failures {
        println!("FAILED {f}");
    }
    if !failures.is_empty() || sum != t.fed {
        std::process::exit(1);
    }
}
