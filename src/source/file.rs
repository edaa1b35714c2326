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

/// The line `buf[start..end]` without its line end (`\n`, `\r\n`, or a last `\r`).
fn trimmed(buf: &[u8], start: usize, mut end: usize) -> (usize, usize) {
    for c in [b'\n', b'\r'] {
        if end > start && buf.get(end - 1) == Some(&c) {
            end -= 1;
        }
    }
    (start, end)
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
    /// end of the input (or a read error, kept in [`Self::error`]). The lines are what
    /// `read_until(b'\n')` gives one by one, without their `\n` or `\r\n`; they are copied
    /// from `input`'s buffer a chunk at a time.
    pub fn fill(&mut self, input: &mut (impl BufRead + ?Sized)) {
        self.clear();
        let mut start = 0;
        while self.lines.len() < Self::LINES {
            let chunk = match input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            };
            if chunk.is_empty() {
                if self.buf.len() == start {
                    return; // the end
                }
                // A last line without its line end; read on, as `read_until` would (a
                // terminal can give more after an end of input).
                self.lines.push(trimmed(&self.buf, start, self.buf.len()));
                start = self.buf.len();
                continue;
            }
            let need = Self::LINES - self.lines.len();
            let used = memchr::memchr_iter(b'\n', chunk)
                .nth(need - 1)
                .map_or(chunk.len(), |p| p + 1);
            let from = self.buf.len();
            self.buf.extend_from_slice(&chunk[..used]);
            input.consume(used);
            for p in memchr::memchr_iter(b'\n', &self.buf[from..]) {
                let end = from + p + 1;
                self.lines.push(trimmed(&self.buf, start, end));
                start = end;
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

    /// The lines in `range` (indices into the batch), each [`prepare`]d: decoded and judged,
    /// ready for the engine.
    pub fn prepare(
        &self,
        range: std::ops::Range<usize>,
        route: Route,
        adm: &Admission,
    ) -> Vec<Prepared<'_>> {
        range.map(|i| prepare(route, self.line(i), adm)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    /// The lines, batch by batch, as `read_until` gives them one by one.
    fn by_read_until(input: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut r = input;
        let mut batches = Vec::new();
        loop {
            let mut batch = Vec::new();
            while batch.len() < Batch::LINES {
                let mut line = Vec::new();
                if r.read_until(b'\n', &mut line).unwrap() == 0 {
                    break;
                }
                for end in [b'\n', b'\r'] {
                    if line.last() == Some(&end) {
                        line.pop();
                    }
                }
                batch.push(line);
            }
            let full = batch.len() == Batch::LINES;
            batches.push(batch);
            if !full {
                return batches;
            }
        }
    }

    fn by_fill(input: &[u8], capacity: usize) -> Vec<Vec<Vec<u8>>> {
        let mut r = BufReader::with_capacity(capacity, input);
        let mut batches = Vec::new();
        let mut b = Batch::default();
        loop {
            b.fill(&mut r);
            assert!(b.error.is_none());
            batches.push((0..b.len()).map(|i| b.line(i).to_vec()).collect());
            if !b.is_full() {
                return batches;
            }
        }
    }

    /// A reader that ends, then has more (a terminal after Ctrl-D).
    struct Resumes(Vec<&'static [u8]>);

    impl std::io::Read for Resumes {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let part = self.0.remove(0);
            out[..part.len()].copy_from_slice(part);
            Ok(part.len())
        }
    }

    #[test]
    fn an_end_after_a_line_without_its_end_is_read_past_as_read_until_does() {
        let mut b = Batch::default();
        b.fill(&mut BufReader::new(Resumes(vec![
            b"abc", b"", b"def\n", b"",
        ])));
        let lines: Vec<&[u8]> = (0..b.len()).map(|i| b.line(i)).collect();
        assert_eq!(lines, [&b"abc"[..], b"def"]);
        let mut r = BufReader::new(Resumes(vec![b"abc", b"", b"def\n", b""]));
        let mut reference = Vec::new();
        while r.read_until(b'\n', &mut reference).unwrap() > 0 {}
        assert_eq!(reference, b"abcdef\n");
    }

    #[test]
    fn batches_hold_the_lines_read_until_gives_whatever_the_chunks() {
        let mut long = Vec::new();
        for i in 0..9_000 {
            long.extend_from_slice(format!("line {i}").as_bytes());
            long.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
        }
        let exact: Vec<u8> = b"x\n".repeat(Batch::LINES);
        for input in [
            &b""[..],
            b"\n",
            b"a",
            b"a\r",
            b"a\n\nb\r\n\r\nc",
            b"{\"id\":1}\r\n{\"id\":2}\n\n",
            &long,
            &exact,
        ] {
            for capacity in [1, 2, 3, 7, 64, 1 << 20] {
                assert_eq!(by_fill(input, capacity), by_read_until(input), "{capacity}");
            }
        }
    }
}
