//! `cxstream replay`: JSON Lines in, output records out (SPEC §2 finite input).
//!
//! Replay never looks at the wall clock for its results: the same input and config give
//! byte-identical output. The wall clock is only used to pace progress messages on stderr.

use std::io::{self, BufRead, Write};
use std::time::{Duration, Instant};

use crate::engine::{Disposition, Engine, Stats};
use crate::event::{InvalidReason, SourcePos};

/// Where records go: the main output, and dead letters either there or to their own file.
pub struct Sinks<'a> {
    pub output: &'a mut dyn Write,
    pub deadletter: Option<&'a mut dyn Write>,
}

impl Sinks<'_> {
    /// Writes everything the engine has produced so far.
    pub fn drain(&mut self, engine: &mut Engine) -> io::Result<()> {
        for r in engine.drain() {
            let line = r.to_line();
            let w: &mut dyn Write = match (&mut self.deadletter, r.is_deadletter()) {
                (Some(d), true) => &mut **d,
                _ => &mut *self.output,
            };
            w.write_all(line.as_bytes())?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// The result of a replay, for the final summary.
#[derive(Debug, Clone)]
pub struct Summary {
    pub lines: u64,
    pub blank_lines: u64,
    pub elapsed: Duration,
    pub stats: Stats,
    pub watermark: Option<i64>,
}

impl Summary {
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

/// Replays JSON Lines from `input` (named `file` in dead-letter positions) through `engine`.
/// `progress` is called about every two seconds with the number of lines read.
pub fn replay(
    engine: &mut Engine,
    mut input: impl BufRead,
    file: &str,
    sinks: &mut Sinks<'_>,
    mut progress: impl FnMut(u64, &Engine),
) -> io::Result<Summary> {
    let started = Instant::now();
    let mut next_progress = started + Duration::from_secs(2);
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    let mut blank = 0u64;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let mut line = buf.as_slice();
        if let Some(l) = line.strip_suffix(b"\n") {
            line = l;
        }
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        // A blank line carries no event, but nothing is silently dropped: it is dead-lettered
        // like any other input that is not a JSON object (and counted in the summary).
        if line.iter().all(u8::is_ascii_whitespace) {
            blank += 1;
        }
        let disposition = engine.process(
            0,
            line,
            SourcePos::File {
                file: file.to_string(),
                line: line_no,
            },
        );
        if disposition != Disposition::Applied || engine.pending_records() > 0 {
            sinks.drain(engine)?;
        }
        if line_no.is_multiple_of(65_536) && Instant::now() >= next_progress {
            progress(line_no, engine);
            next_progress = Instant::now() + Duration::from_secs(2);
        }
    }
    engine.finish();
    sinks.drain(engine)?;
    sinks.output.flush()?;
    if let Some(d) = sinks.deadletter.as_mut() {
        d.flush()?;
    }
    Ok(Summary {
        lines: line_no,
        blank_lines: blank,
        elapsed: started.elapsed(),
        stats: engine.stats().clone(),
        watermark: engine.watermark(),
    })
}

/// Replays a byte buffer of JSON Lines into a string of output lines (tests, benches).
pub fn replay_to_string(engine: &mut Engine, input: &[u8]) -> String {
    let mut out = Vec::new();
    let mut sinks = Sinks {
        output: &mut out,
        deadletter: None,
    };
    // Writing into a Vec cannot fail.
    let _ = replay(engine, input, "input", &mut sinks, |_, _| {});
    String::from_utf8(out).unwrap_or_default()
}
