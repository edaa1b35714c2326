//! Verbatim duplicates: a line that re-sends one of the last few real lines, as a producer
//! that retries after a lost acknowledgement would.
//!
//! The generator keeps a small ring of the last real lines (only when duplicates are asked
//! for) and copies one that is at most ~9 s of event time older than the newest, so a
//! duplicate never arrives later than the stream's lateness allowance.

use rand::Rng;

use super::json::Line;
use super::Generator;
use crate::ts::SECOND;

/// How many recent lines a duplicate may copy.
const RECENT: usize = 8;

/// A line already written, kept to be sent again.
struct Sent {
    line: String,
    key: String,
    time_ms: i64,
}

/// The last [`RECENT`] real lines, in a ring.
pub(super) struct Recent {
    ring: Vec<Sent>,
    next: usize,
}

impl Recent {
    /// An empty ring.
    pub(super) fn new() -> Self {
        Recent {
            ring: Vec::with_capacity(RECENT),
            next: 0,
        }
    }

    /// Keeps a copy of `line`, replacing the oldest one.
    pub(super) fn remember(&mut self, line: &Line) {
        if self.ring.len() < RECENT {
            self.ring.push(Sent {
                line: String::new(),
                key: String::new(),
                time_ms: 0,
            });
        }
        let r = &mut self.ring[self.next];
        r.line.clear();
        r.line.push_str(&line.text);
        r.key.clear();
        r.key.push_str(&line.key);
        r.time_ms = line.time_ms;
        self.next = (self.next + 1) % RECENT;
    }
}

impl Generator {
    /// Re-sends a recent real line verbatim; `false` when there is none yet.
    pub(super) fn write_duplicate(&mut self) -> bool {
        let recent = &self.recent;
        if recent.ring.is_empty() {
            return false;
        }
        // Only lines within 9 s of the newest time written, so a duplicate is never late.
        let newest = recent
            .ring
            .iter()
            .map(|r| r.time_ms)
            .max()
            .unwrap_or(self.now);
        let n = recent.ring.len();
        let mut cands = [0usize; RECENT];
        let mut k = 0;
        for (i, r) in recent.ring.iter().enumerate() {
            if r.time_ms >= newest - 9 * SECOND && r.time_ms >= self.now - 9 * SECOND {
                cands[k] = i;
                k += 1;
            }
        }
        let i = if k == 0 {
            (recent.next + n - 1) % n // the last real line
        } else {
            cands[self.rng.gen_range(0..k)]
        };
        let r = &recent.ring[i];
        self.out.text.clear();
        self.out.text.push_str(&r.line);
        self.out.key.clear();
        self.out.key.push_str(&r.key);
        self.out.time_ms = r.time_ms;
        true
    }
}
