//! `cxstream replay`: the file source, the engine and the file sink, end to end (SPEC §2 finite
//! input), with progress and a summary.
//!
//! Replay never looks at the wall clock for its results: the same input and config give
//! byte-identical output. The wall clock is only used to pace progress messages on stderr.

use std::io::{self, BufRead};
use std::time::{Duration, Instant};

use crate::engine::{Disposition, Engine, Stats};
use crate::event::InvalidReason;
use crate::sink::file::FileSink;
use crate::source::file::LineSource;
use crate::source::{Admission, Route};
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
    mut progress: impl FnMut(u64, &Engine),
) -> io::Result<Summary> {
    let started = Instant::now();
    let mut next_progress = started + Duration::from_secs(2);
    match route {
        Route::Fixed(p) => engine.assign(p),
        Route::ByCustomer(_, n) => (0..n.max(1)).for_each(|p| engine.assign(p)),
    }
    let mut source = LineSource::new(input, file)
        .with_route(route)
        .with_admission(adm);
    while let Some(fed) = source.feed_next(engine)? {
        if fed.disposition != Disposition::Applied || engine.pending_records() > 0 {
            sink.drain(engine)?;
        }
        if source.lines.is_multiple_of(65_536) && Instant::now() >= next_progress {
            progress(source.lines, engine);
            next_progress = Instant::now() + Duration::from_secs(2);
        }
    }
    engine.finish();
    sink.drain(engine)?;
    sink.flush()?;
    Ok(Summary {
        lines: source.lines,
        blank_lines: source.blank,
        elapsed: started.elapsed(),
        stats: engine.stats().clone(),
        watermark: engine.watermark(),
    })
}

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
