//! The JSON Lines source of `replay`: one input per line, with its file name and line number
//! as source position. A file is partition 0 (SPEC §2), or is split over N partitions by
//! customer ([`Route::ByCustomer`]).
//!
//! Line ends (`\n`, `\r\n`) are not part of the input. A blank line carries no event, but
//! nothing is silently dropped: it is fed like any other input and dead-lettered as "not a
//! JSON object" (and counted in the replay summary).

use std::io::{self, BufRead};

use super::{feed_routed, Admission, Fed, Route};
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
