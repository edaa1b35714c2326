//! What the sink's records are (the `type` label of its error counter), a record it owns
//! (waiting for room or sent again) and how a send error is handled.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::kafka::Out;

/// A record to send again, or waiting for room in the producer's queue.
#[derive(Debug)]
pub(super) struct Owned {
    /// Its sequence number (kept across resends).
    pub(super) seq: u64,
    /// What it is ([`KINDS`] index).
    pub(super) kind: u8,
    pub(super) topic: String,
    pub(super) partition: Option<i32>,
    pub(super) key: Option<Vec<u8>>,
    /// `None`: a tombstone.
    pub(super) payload: Option<Vec<u8>>,
    /// Sent after the parts before it ([`super::lanes`]), through the second producer.
    pub(super) after: bool,
}

impl Owned {
    /// `after`: a record sent after its parts ([`super::lanes`]).
    pub(super) fn of(seq: u64, out: Out<'_>, after: bool) -> Owned {
        Owned {
            seq,
            kind: kind_index(out.kind),
            topic: out.topic.to_string(),
            partition: out.partition,
            key: out.key.map(<[u8]>::to_vec),
            payload: out.payload.map(<[u8]>::to_vec),
            after,
        }
    }

    pub(super) fn out(&self) -> Out<'_> {
        Out {
            topic: &self.topic,
            partition: self.partition,
            key: self.key.as_deref(),
            payload: self.payload.as_deref(),
            kind: KINDS[usize::from(self.kind)],
        }
    }
}

/// The `type` label of `cxstream_output_errors_total`: the output record types (SPEC §4),
/// `state` and `part` (state and parts topic records) and `input` (`generate --kafka`, demo).
pub const KINDS: [&str; 9] = [
    "kpi.window",
    "sla.breached",
    "churn.risk",
    "recovery.needed",
    "recovery.overdue",
    "deadletter",
    "state",
    "part",
    "input",
];

/// The index of "state" in [`KINDS`].
pub(super) const STATE_KIND: u8 = 6;

pub(super) fn kind_index(kind: &str) -> u8 {
    KINDS
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KINDS.len() - 1) as u8
}

/// How a send error is handled.
pub(super) enum Action {
    Backoff,
    Replace,
    Drop,
}

/// The `reason` label of `cxstream_output_errors_total`.
pub(super) fn reason(e: &KafkaError) -> &'static str {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge)
        | Some(RDKafkaErrorCode::InvalidMessageSize) => "too_large",
        Some(RDKafkaErrorCode::InvalidMessage) | Some(RDKafkaErrorCode::InvalidArgument) => {
            "invalid"
        }
        _ => "rejected",
    }
}

pub(super) fn classify(e: &KafkaError) -> Action {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::Fatal) => Action::Replace,
        Some(RDKafkaErrorCode::MessageSizeTooLarge)
        | Some(RDKafkaErrorCode::InvalidArgument)
        | Some(RDKafkaErrorCode::InvalidMessage)
        | Some(RDKafkaErrorCode::InvalidMessageSize) => Action::Drop,
        _ => Action::Backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_kind_is_the_index_of_state() {
        assert_eq!(KINDS[usize::from(STATE_KIND)], "state");
        assert_eq!(kind_index("state"), STATE_KIND);
    }
}
