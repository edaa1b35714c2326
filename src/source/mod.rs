//! Sources: where input bytes come from, and the one decode path (GUIDE §1).
//!
//! ```text
//! mod.rs   feed(): bytes + source position → decoded event into the engine, or a dead letter
//! file.rs  JSON Lines files (`replay`): one line, one input
//! kafka.rs Kafka input topics (`run`): the consumer, its configuration and callbacks
//! ```
//!
//! Every source hands each input to [`feed`]: it is decoded exactly once; a valid event goes
//! to the engine, an invalid one is dead-lettered with the reason and its position. The
//! engine never sees bytes.

pub mod file;
pub mod kafka;

use crate::engine::{Disposition, Engine};
use crate::event::{decode, SourcePos};
use crate::ts::Millis;

/// What became of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// What the engine did with it.
    pub disposition: Disposition,
    /// Its event time, when it decoded.
    pub time: Option<Millis>,
}

/// Decodes one input from `partition` and processes it; `pos` says where it came from (asked
/// only if the input is dead-lettered).
pub fn feed(
    engine: &mut Engine,
    partition: i32,
    payload: &[u8],
    pos: impl FnOnce() -> SourcePos,
) -> Fed {
    match decode(payload) {
        Ok(ev) => Fed {
            disposition: engine.process_event(partition, &ev, || (payload.to_vec(), pos())),
            time: Some(ev.time),
        },
        Err(e) => Fed {
            disposition: engine.invalid(&e, payload, pos()),
            time: None,
        },
    }
}
