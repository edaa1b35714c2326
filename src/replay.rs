//! `cxstream replay`: the file source, the engine and the file sink, end to end (SPEC §2 finite
//! input), with progress and a summary.
//!
//! Replay never looks at the wall clock for its results: the same input and config give
//! byte-identical output. The wall clock is only used to pace progress messages on stderr.

use std::io::{self, BufRead};
use std::time::{Duration, Instant};

use crate::engine::{Disposition, Engine, StateKeys, Stats};
use crate::event::InvalidReason;
use crate::event::SourcePos;
use crate::output::Record;
use crate::sink::file::FileSink;
use crate::source::file::Batch;
use crate::source::{feed_prepared, Admission, Prepared, Route};
use crate::ts::Millis;

/// The result of a replay, for the final summary.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Input lines read, blank ones included.
    pub lines: u64,
    /// Blank lines (dead-lettered as invalid JSON).
    pub blank_lines: u64,
    /// Wall-clock time the replay took (for the summary only, never for results).
    pub elapsed: Duration,
    /// The engine's counters at the end.
    pub stats: Stats,
    /// The final watermark: M, the largest applied event time, once any event was applied.
    pub watermark: Option<i64>,
}

impl Summary {
    /// Throughput: input lines per wall-clock second.
    pub fn events_per_second(&self) -> f64 {
        self.lines as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Human-readable summary (stderr).
    pub fn render(&self) -> String {
        let s = &self.stats;
        let mut out = format!(
            "replayed {} lines in {:.2}s ({:.0} lines/s)\n  applied events: {}\n",
            self.lines,
            self.elapsed.as_secs_f64(),
            self.events_per_second(),
            s.events_total()
        );
        let invalid: u64 = s.invalid.iter().sum();
        out += &format!("  invalid: {invalid}");
        let parts: Vec<String> = InvalidReason::ALL
            .iter()
            .filter(|r| s.invalid[**r as usize] > 0)
            .map(|r| format!("{}={}", r.as_str(), s.invalid[*r as usize]))
            .collect();
        if !parts.is_empty() {
            out += &format!(" ({})", parts.join(", "));
        }
        out += &format!(
            "\n  duplicates: {}\n  orphans (unknown ticket): {}\n  ticket exists: {}\n  late events: {} (window contributions dropped: {})\n",
            s.duplicates, s.orphans, s.ticket_exists, s.late_events, s.late_contributions
        );
        if self.blank_lines > 0 {
            out += &format!("  blank lines (dead-lettered): {}\n", self.blank_lines);
        }
        let recs: Vec<String> = s.records.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out += &format!(
            "  records written: {} ({})\n",
            s.records.values().sum::<u64>(),
            recs.join(", ")
        );
        out
    }
}

/// Replays JSON Lines from `input` (named `file` in dead-letter positions) through `engine`,
/// as one partition, judging time from the future against the wall clock now. `progress` is
/// called about every two seconds with the number of lines read.
pub fn replay(
    engine: &mut Engine,
    input: impl BufRead,
    file: &str,
    sink: &mut FileSink<'_>,
    progress: impl FnMut(u64, &Engine),
) -> io::Result<Summary> {
    let adm = Admission::new(engine.config(), Some(wall_clock_ms()));
    replay_routed(engine, input, file, Route::Fixed(0), adm, sink, progress)
}

/// The wall clock, in epoch milliseconds.
pub fn wall_clock_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// [`replay`] with the lines split over partitions as `route` says (`replay --partitions N`)
/// and the bounds of `adm` (its `now` is `replay --now`): every partition exists from the
/// start, so a window waits for all of them (SPEC §2). The same input, options and `now`
/// give byte-identical output.
pub fn replay_routed(
    engine: &mut Engine,
    input: impl BufRead,
    file: &str,
    route: Route,
    adm: Admission,
    sink: &mut FileSink<'_>,
    progress: impl FnMut(u64, &Engine),
) -> io::Result<Summary> {
    let started = Instant::now();
    match route {
        Route::Fixed(p) => engine.assign(p),
        Route::ByCustomer(_, n) => (0..n.max(1)).for_each(|p| engine.assign(p)),
    }
    let mut input = input;
    let mut run = Run {
        engine,
        file,
        adm,
        lines: 0,
        blank: 0,
        out: Vec::new(),
        progress,
        next_progress: started + Duration::from_secs(2),
    };
    // Two batches in turn. While the lines of one are processed in order on this thread,
    // another thread writes the records the batch before produced, then decodes the next
    // batch (read just before, on this thread). What the engine sees, in which order, and
    // the output bytes, are what one line after the other gives.
    let (mut a, mut b) = (Batch::default(), Batch::default());
    a.fill(&mut input);
    let mut pa = prepare(&a, route, &adm);
    loop {
        refill(&mut b, a.is_full(), &mut input);
        let pb = overlapped(
            &mut run,
            &a,
            pa,
            Ahead {
                next: &b,
                sink,
                route,
            },
        )?;
        if let Some(e) = a.error.take() {
            return Err(e);
        }
        if b.is_empty() && b.error.is_none() {
            break;
        }
        refill(&mut a, b.is_full(), &mut input);
        pa = overlapped(
            &mut run,
            &b,
            pb,
            Ahead {
                next: &a,
                sink,
                route,
            },
        )?;
        if let Some(e) = b.error.take() {
            return Err(e);
        }
        if a.is_empty() && a.error.is_none() {
            break;
        }
    }
    let (lines, blank) = (run.lines, run.blank);
    let rest = std::mem::take(&mut run.out);
    sink.write_records(rest)?;
    engine.finish();
    sink.drain(engine)?;
    sink.flush()?;
    Ok(Summary {
        lines,
        blank_lines: blank,
        elapsed: started.elapsed(),
        stats: engine.stats().clone(),
        watermark: engine.watermark(),
    })
}

/// The work of the other thread while a batch is processed: the records of the batch before
/// are written, then the next batch (read just before) is decoded.
struct Ahead<'n, 'x, 's> {
    next: &'n Batch,
    sink: &'x mut FileSink<'s>,
    route: Route,
}

impl<'n> Ahead<'n, '_, '_> {
    fn run(self, records: Vec<Record>, adm: &Admission) -> (io::Result<()>, Decoded<'n>) {
        let written = self.sink.write_records(records);
        (written, prepare(self.next, self.route, adm))
    }
}

/// A batch's lines as the engine will take them, and the state keys of its events.
type Decoded<'n> = (Vec<Prepared<'n>>, Vec<Option<(i32, StateKeys)>>);

/// Decodes `batch` and computes its events' state keys (for the engine's prefetch).
fn prepare<'n>(batch: &'n Batch, route: Route, adm: &Admission) -> Decoded<'n> {
    let prepared = batch.prepare(route, adm);
    let keys = prepared
        .iter()
        .map(|p| match p {
            Prepared::Event(ev, part) => Some((*part, StateKeys::of(ev))),
            _ => None,
        })
        .collect();
    (prepared, keys)
}

/// Reads the next batch into `batch` if the input may go on, else empties it.
fn refill(batch: &mut Batch, more: bool, input: &mut impl BufRead) {
    if more {
        batch.fill(input);
    } else {
        batch.clear();
    }
}

/// Processes `cur` (its lines prepared as `prepared`) while another thread does `ahead`.
fn overlapped<'n, P: FnMut(u64, &Engine)>(
    run: &mut Run<'_, '_, P>,
    cur: &Batch,
    prepared: Decoded<'_>,
    ahead: Ahead<'n, '_, '_>,
) -> io::Result<Decoded<'n>> {
    let adm = run.adm;
    let records = std::mem::take(&mut run.out);
    std::thread::scope(|s| {
        let ahead = s.spawn(move || ahead.run(records, &adm));
        run.process(cur, prepared);
        // A short wait for the other thread spins rather than sleeps: a thread that sleeps
        // and wakes is often moved to the other core, behind the thread it waited for.
        let spin = Instant::now();
        while !ahead.is_finished() && spin.elapsed() < SPIN {
            std::hint::spin_loop();
        }
        let (written, next) = ahead
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        written.map(|()| next)
    })
}

/// A replay in progress: what was counted so far, and the records not yet written.
struct Run<'e, 'f, P> {
    engine: &'e mut Engine,
    file: &'f str,
    adm: Admission,
    lines: u64,
    blank: u64,
    out: Vec<Record>,
    progress: P,
    next_progress: Instant,
}

impl<P: FnMut(u64, &Engine)> Run<'_, '_, P> {
    /// Feeds the lines of `batch` to the engine in order, keeping what it produces.
    fn process(&mut self, batch: &Batch, (prepared, keys): Decoded<'_>) {
        for (i, p) in prepared.iter().enumerate() {
            // The waits for memory of the lookups of an event are spent while the events
            // before it are processed (issue 10): its index entries are asked for
            // PREFETCH_INDEX events ahead, its ticket and customer PREFETCH_STATE ahead.
            if let Some(Some((part, k))) = keys.get(i + PREFETCH_INDEX) {
                self.engine.prefetch_index(*part, k);
            }
            if let Some(Some((part, k))) = keys.get(i + PREFETCH_STATE) {
                self.engine.prefetch_state(*part, k);
            }
            let line = batch.line(i);
            self.lines += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                self.blank += 1;
            }
            let (file, n) = (self.file, self.lines);
            let pos = || SourcePos::File {
                file: file.to_string(),
                line: n,
            };
            let fed = feed_prepared(self.engine, p, line, pos, &self.adm);
            if fed.disposition != Disposition::Applied || self.engine.pending_records() > 0 {
                self.out.extend(self.engine.drain());
            }
            if self.lines.is_multiple_of(65_536) && Instant::now() >= self.next_progress {
                (self.progress)(self.lines, self.engine);
                self.next_progress = Instant::now() + Duration::from_secs(2);
            }
        }
    }
}

/// How many events ahead replay asks for an event's index entries, and for its state.
const PREFETCH_INDEX: usize = 16;
const PREFETCH_STATE: usize = 8;

/// How long replay's engine thread spins for the other thread before it sleeps.
const SPIN: Duration = Duration::from_millis(2);

/// Replays a byte buffer of JSON Lines into a string of output lines (tests, benches).
/// As one partition, with the configured size bound and no reference clock (nothing is "in
/// the future"), so that it never depends on when it runs.
pub fn replay_to_string(engine: &mut Engine, input: &[u8]) -> String {
    let mut out = Vec::new();
    let mut sink = FileSink {
        output: &mut out,
        deadletter: None,
    };
    let adm = Admission::new(engine.config(), None);
    // Writing into a Vec cannot fail.
    let _ = replay_routed(
        engine,
        input,
        "input",
        Route::Fixed(0),
        adm,
        &mut sink,
        |_, _| {},
    );
    String::from_utf8(out).unwrap_or_default()
}
