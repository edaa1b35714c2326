//! The JSON Lines source of `replay`: one input per line, with its file name and line number
//! as source position. A file is partition 0 (SPEC §2), or is split over N partitions by
//! customer ([`Route::ByCustomer`]).
//!
//! Line ends (`\n`, `\r\n`) are not part of the input. A blank line carries no event, but
//! nothing is silently dropped: it is fed like any other input and dead-lettered as "not a
//! JSON object" (and counted in the replay summary).

use std::io::{self, BufRead};

use super::{feed_routed, prepare, Admission, Fed, Prepared, Route};
use crate::engine::Engine;
use crate::event::SourcePos;

/// Reads lines from a buffered reader into the engine.
pub struct LineSource<R> {
    /// The input.
    input: R,
    /// The file name in dead-letter positions.
    file: String,
    /// Reused line buffer.
    buf: Vec<u8>,
    /// Lines read so far (the 1-based number of the last one).
    pub lines: u64,
    /// Blank lines read so far.
    pub blank: u64,
    /// Which partition each line goes to.
    route: Route,
    /// Size and time bounds, judged against `replay --now`.
    admission: Admission,
}

impl<R: BufRead> LineSource<R> {
    /// A source reading `input`, named `file` in dead-letter positions.
    pub fn new(input: R, file: &str) -> Self {
        LineSource {
            input,
            file: file.to_string(),
            buf: Vec::with_capacity(4096),
            lines: 0,
            blank: 0,
            route: Route::Fixed(0),
            admission: Admission::unbounded(),
        }
    }

    /// Judges inputs by `admission` (SPEC §1 size and time bounds).
    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }

    /// Splits the lines over partitions as `route` says.
    pub fn with_route(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    /// Feeds the next line to `engine`; `None` at the end of the input.
    pub fn feed_next(&mut self, engine: &mut Engine) -> io::Result<Option<Fed>> {
        self.buf.clear();
        if self.input.read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(None);
        }
        self.lines += 1;
        let mut line = self.buf.as_slice();
        if let Some(l) = line.strip_suffix(b"\n") {
            line = l;
        }
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            self.blank += 1;
        }
        let (file, n) = (&self.file, self.lines);
        let pos = || SourcePos::File {
            file: file.clone(),
            line: n,
        };
        let fed = feed_routed(engine, self.route, line, pos, &self.admission);
        Ok(Some(fed))
    }
}

/// Lines read ahead into one buffer, line ends stripped (`replay` reads a batch while the
/// lines of the one before are decoded on another thread and then processed in order).
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    /// Where each line is in `buf`, its line end excluded.
    lines: Vec<(usize, usize)>,
    /// The read error that ended the batch early: reported once its lines are processed.
    pub error: Option<io::Error>,
}

impl Batch {
    /// Lines per batch.
    pub const LINES: usize = 4096;

    /// Empties the batch.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.lines.clear();
        self.error = None;
    }

    /// Reads up to [`Self::LINES`] lines from `input`, replacing the batch; fewer means the
    /// end of the input (or a read error, kept in [`Self::error`]).
    pub fn fill(&mut self, input: &mut (impl BufRead + ?Sized)) {
        self.clear();
        while self.lines.len() < Self::LINES {
            let start = self.buf.len();
            match input.read_until(b'\n', &mut self.buf) {
                Ok(0) => break,
                Ok(_) => {
                    let mut end = self.buf.len();
                    if self.buf[start..end].ends_with(b"\n") {
                        end -= 1;
                    }
                    if self.buf[start..end].ends_with(b"\r") {
                        end -= 1;
                    }
                    self.lines.push((start, end));
                }
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
    }

    /// Whether the batch holds [`Self::LINES`] lines: the input may go on.
    pub fn is_full(&self) -> bool {
        self.lines.len() == Self::LINES && self.error.is_none()
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether it holds no line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Line `i`, without its line end.
    pub fn line(&self, i: usize) -> &[u8] {
        self.lines
            .get(i)
            .and_then(|&(a, b)| self.buf.get(a..b))
            .unwrap_or_default()
    }

    /// Each line [`prepare`]d: decoded and judged, ready for the engine.
    pub fn prepare(&self, route: Route, adm: &Admission) -> Vec<Prepared<'_>> {
        (0..self.len())
            .map(|i| prepare(route, self.line(i), adm))
            .collect()
    }
}
