//! Sinks: where output records go (SPEC §4).
//!
//! ```text
//! mod.rs    routing: which output a record belongs to — one rule for replay and run
//! file.rs   JSON Lines files (`replay`)
//! kafka.rs  the idempotent Kafka producer (`run`, `demo`, `generate --kafka`)
//! delivery.rs  its delivery callbacks: acknowledgements, failures, what its queue holds
//! kinds.rs  its record types (error counter labels) and how a send error is handled
//! lanes.rs  order across failed deliveries: a watermark waits for the parts sent before it
//! producers.rs  its librdkafka producers: one for all, one for records sent after their parts
//! lines.rs  producing lines of text at a rate (`generate --kafka`, the demo)
//! ```

mod delivery;
pub mod file;
pub mod kafka;
mod kinds;
mod lanes;
pub mod lines;
mod producers;
pub use producers::wait_acknowledged;

use crate::output::Record;

/// The two outputs of SPEC §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// `kpi.window`, alert and signal records: the output topic (or file).
    Output,
    /// Dead letters: the dead-letter topic (or file).
    DeadLetter,
}

impl Destination {
    /// Where `r` goes.
    pub fn of(r: &Record) -> Destination {
        if r.is_deadletter() {
            Destination::DeadLetter
        } else {
            Destination::Output
        }
    }
}
