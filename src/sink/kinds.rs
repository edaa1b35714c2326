//! What the sink's records are (the `type` label of its error counter) and how a send error
//! is handled.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

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
