//! `cxstream replay`: the file source, the engine and the file sink, end to end (SPEC §2 finite
//! input), with progress and a summary.
//!
//! Replay never looks at the wall clock for its results: the same input and config give
//! byte-identical output. The wall clock is only used to pace progress messages on stderr.

use std::io::{self, BufRead};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::OnceLock;
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
    input: impl BufRead + Send,
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
    input: impl BufRead + Send,
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
    // Three batches in turn. While the lines of one are processed in order on this thread,
    // another thread writes the records the batch before produced, reads the batch after the
    // next one, then decodes the next one, in chunks this thread takes too once its own
    // batch is done. What the engine sees, in which order, and the output bytes, are what
    // one line after the other gives.
    let pool = other_thread()?;
    let (mut a, mut b, mut c) = (Batch::default(), Batch::default(), Batch::default());
    a.fill(&mut input);
    let mut pa = prepare(&a, route, &adm);
    refill(&mut b, a.is_full(), &mut input);
    loop {
        let pb = overlapped(
            &pool,
            &mut run,
            &a,
            pa,
            Ahead::new(&b, &mut c, &mut input, sink, route),
        )?;
        if ended(&mut a, &b)? {
            break;
        }
        let pc = overlapped(
            &pool,
            &mut run,
            &b,
            pb,
            Ahead::new(&c, &mut a, &mut input, sink, route),
        )?;
        if ended(&mut b, &c)? {
            break;
        }
        pa = overlapped(
            &pool,
            &mut run,
            &c,
            pc,
            Ahead::new(&a, &mut b, &mut input, sink, route),
        )?;
        if ended(&mut c, &a)? {
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
/// are written, the batch after `next` is read into `spare` (if `next` says the input goes
/// on), then `next` is decoded, in chunks that the engine thread takes too once its batch is
/// done.
struct Ahead<'n, 'x, 's, R> {
    next: &'n Batch,
    spare: &'x mut Batch,
    input: &'x mut R,
    sink: &'x mut FileSink<'s>,
    route: Route,
}

impl<'n, 'x, 's, R: BufRead> Ahead<'n, 'x, 's, R> {
    fn new(
        next: &'n Batch,
        spare: &'x mut Batch,
        input: &'x mut R,
        sink: &'x mut FileSink<'s>,
        route: Route,
    ) -> Self {
        Ahead {
            next,
            spare,
            input,
            sink,
            route,
        }
    }

    /// What cannot be shared with the engine thread: writing `records`, and reading.
    fn write_and_read(self, records: Vec<Record>) -> io::Result<()> {
        let written = self.sink.write_records(records);
        refill(self.spare, self.next.is_full(), self.input);
        written
    }
}

/// After a batch was processed: its read error if it had one, else whether the input ended
/// (the next batch is empty, and not for an error).
fn ended(done: &mut Batch, next: &Batch) -> io::Result<bool> {
    match done.error.take() {
        Some(e) => Err(e),
        None => Ok(next.is_empty() && next.error.is_none()),
    }
}

/// How many lines a chunk of decoding holds (a power of two).
const CHUNK_BITS: u32 = 8;
const CHUNK: usize = 1 << CHUNK_BITS;

/// A batch being decoded by whichever thread is free: each takes the next chunk of lines
/// not taken yet. Decoding depends on the line alone, so who decodes a chunk, and when,
/// changes nothing in what the engine sees.
struct Chunks<'n> {
    batch: &'n Batch,
    route: Route,
    adm: Admission,
    next: AtomicUsize,
    done: Vec<OnceLock<Chunk<'n>>>,
}

/// A chunk's lines as the engine will take them.
type Chunk<'n> = Vec<Prepared<'n>>;

impl<'n> Chunks<'n> {
    fn new(batch: &'n Batch, route: Route, adm: Admission) -> Self {
        Chunks {
            batch,
            route,
            adm,
            next: AtomicUsize::new(0),
            done: (0..batch.len().div_ceil(CHUNK))
                .map(|_| OnceLock::new())
                .collect(),
        }
    }

    /// Decodes chunks until none is left to take.
    fn work(&self) {
        loop {
            let c = self.next.fetch_add(1, AtomicOrdering::Relaxed);
            let Some(slot) = self.done.get(c) else {
                return;
            };
            let lines = c * CHUNK..((c + 1) * CHUNK).min(self.batch.len());
            // Each chunk is taken once, so the slot is empty.
            let _ = slot.set(self.batch.prepare(lines, self.route, &self.adm));
        }
    }

    /// The decoded batch, once every chunk is done (after [`Self::work`] returned on a thread
    /// and the other thread that worked on it was joined).
    fn finish(self) -> Decoded<'n> {
        Decoded(
            self.done
                .into_iter()
                .map(|c| c.into_inner().unwrap_or_default())
                .collect(),
        )
    }
}

/// A batch's lines as the engine will take them, chunk by chunk.
struct Decoded<'n>(Vec<Chunk<'n>>);

impl<'n> Decoded<'n> {
    fn get(&self, i: usize) -> Option<&Prepared<'n>> {
        self.0.get(i >> CHUNK_BITS)?.get(i & (CHUNK - 1))
    }

    /// The partition and state keys of line `i`, if it is a valid event.
    fn keys(&self, i: usize) -> Option<(i32, &StateKeys)> {
        match self.get(i)? {
            Prepared::Event(_, part, keys) => Some((*part, keys)),
            _ => None,
        }
    }
}

/// Decodes `batch` on this thread.
fn prepare<'n>(batch: &'n Batch, route: Route, adm: &Admission) -> Decoded<'n> {
    let chunks = Chunks::new(batch, route, *adm);
    chunks.work();
    chunks.finish()
}

/// Reads the next batch into `batch` if the input may go on, else empties it.
fn refill(batch: &mut Batch, more: bool, input: &mut impl BufRead) {
    if more {
        batch.fill(input);
    } else {
        batch.clear();
    }
}

/// Processes `cur` (its lines prepared as `prepared`) while the pool's thread does `ahead`;
/// then helps decode the next batch.
fn overlapped<'n, P: FnMut(u64, &Engine), R: BufRead + Send>(
    pool: &rayon_core::ThreadPool,
    run: &mut Run<'_, '_, P>,
    cur: &Batch,
    prepared: Decoded<'_>,
    ahead: Ahead<'n, '_, '_, R>,
) -> io::Result<Decoded<'n>> {
    let records = std::mem::take(&mut run.out);
    let chunks = Chunks::new(ahead.next, ahead.route, run.adm);
    let written = OnceLock::new();
    let done = AtomicBool::new(false);
    pool.in_place_scope(|s| {
        s.spawn(|_| {
            let _ = written.set(ahead.write_and_read(records));
            chunks.work();
            done.store(true, AtomicOrdering::Release);
        });
        run.process(cur, prepared);
        chunks.work();
        // A short wait for the other thread spins rather than sleeps: a thread that sleeps
        // and wakes is often moved to the other core, behind the thread it waited for.
        let spin = Instant::now();
        while !done.load(AtomicOrdering::Acquire) && spin.elapsed() < SPIN {
            std::hint::spin_loop();
        }
    });
    written
        .into_inner()
        .unwrap_or(Ok(()))
        .map(|()| chunks.finish())
}

/// The thread that writes and decodes beside the engine's, for the whole replay: one thread
/// kept, not one a batch (each new thread cost jemalloc a zeroed thread cache and a purge at
/// its exit, with TLB shootdowns that stopped the engine's core too: issue 10).
fn other_thread() -> io::Result<rayon_core::ThreadPool> {
    rayon_core::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "cxstream-replay".into())
        .build()
        .map_err(|e| io::Error::other(format!("cannot start replay's second thread: {e}")))
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
    fn process(&mut self, batch: &Batch, prepared: Decoded<'_>) {
        for i in 0..batch.len() {
            let Some(p) = prepared.get(i) else {
                break;
            };
            // The waits for memory of the lookups of an event are spent while the events
            // before it are processed (issue 10): its index entries are asked for
            // PREFETCH_INDEX events ahead, its ticket and customer PREFETCH_STATE ahead.
            if let Some((part, k)) = prepared.keys(i + PREFETCH_INDEX) {
                self.engine.prefetch_index(part, k);
            }
            if let Some((part, k)) = prepared.keys(i + PREFETCH_STATE) {
                self.engine.prefetch_state(part, k);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::generate::{write_jsonl, GenerateOptions};
    use crate::source::feed_routed;
    use std::sync::Arc;

    /// Replay's two threads, its batches and its chunks of decoding (split between whichever
    /// thread is free) give what one line after the other through the engine gives: the same
    /// bytes, dead letters included. The line count is neither a multiple of a batch nor of a
    /// chunk, and a tenth of the lines are invalid.
    #[test]
    fn replay_equals_one_line_after_the_other() {
        let opts = GenerateOptions {
            events: 3 * Batch::LINES as u64 + 5 * CHUNK as u64 + 77,
            invalid_ratio: 0.1,
            ..GenerateOptions::default()
        };
        let mut input = Vec::new();
        write_jsonl(opts, &mut input).unwrap();
        let cfg = Arc::new(Config::default());

        let replayed = replay_to_string(&mut Engine::new(cfg.clone()), &input);

        let mut engine = Engine::new(cfg.clone());
        let mut out = Vec::new();
        let mut sink = FileSink {
            output: &mut out,
            deadletter: None,
        };
        let adm = Admission::new(&cfg, None);
        engine.assign(0);
        let lines = input.strip_suffix(b"\n").unwrap_or(&input);
        for (n, line) in lines.split(|b| *b == b'\n').enumerate() {
            let pos = || SourcePos::File {
                file: "input".into(),
                line: n as u64 + 1,
            };
            feed_routed(&mut engine, Route::Fixed(0), line, pos, &adm);
            sink.write_records(engine.drain()).unwrap();
        }
        engine.finish();
        sink.drain(&mut engine).unwrap();
        sink.flush().unwrap();
        let one_by_one = String::from_utf8(out).unwrap();

        assert!(
            one_by_one.contains("\"type\":\"deadletter\""),
            "dead letters in the output"
        );
        assert!(
            one_by_one.contains("\"type\":\"kpi.window\""),
            "window records too"
        );
        assert_eq!(replayed, one_by_one);
    }
}
