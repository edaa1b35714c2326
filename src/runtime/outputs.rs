//! The output side's health, from the polling thread: backpressure when the producer's queue
//! is full, and records the broker refused (counted, and fatal for state records).

use std::time::Duration;

use super::pipeline::{pause, resume_at, Phase, Pipeline};
use super::Consumer;

impl Pipeline {
    /// Backpressure: while the sink holds records the producer has no room for (a full queue:
    /// the broker is down or slower than the input), every active partition is paused —
    /// the poll loop keeps polling the consumer, so the group membership survives an outage of
    /// any length — and once they are all handed over, the partitions resume at their
    /// positions. Nothing is dropped and nothing blocks.
    pub(super) fn backpressure(&mut self, consumer: &Consumer) {
        // While paused, the time the poll loop would wait for input goes to the producer.
        let budget = if self.throttled.is_empty() {
            Duration::ZERO
        } else {
            Duration::from_millis(100)
        };
        // Congested: records wait for room; or a checkpoint is being sent while the outputs
        // hold more than their half of the queue (they would starve it).
        let mut congested = !self.sink.pump_for(budget);
        let full = congested;
        if !congested && self.feeding() && self.sink.outputs_over_half() {
            congested = true;
            // Nothing waits in the sink: wait for acknowledgements instead of spinning.
            self.sink.serve(Duration::from_millis(10));
        }
        if congested {
            let mut newly = 0;
            for (p, part) in &self.parts {
                // Paused again each round: a restore or an idle advance may have resumed it.
                if part.phase == Phase::Active && part.awaiting.is_none() {
                    pause(consumer, *p, &part.topics);
                    newly += usize::from(self.throttled.insert(*p));
                }
            }
            if newly > 0 && full {
                tracing::warn!(
                    waiting = self.sink.pending(),
                    "output cannot keep up (the producer's queue is full): input paused until it drains"
                );
            } else if newly > 0 {
                tracing::info!(
                    waiting = self.sink.pending(),
                    "outputs hold more than half of the producer's queue while a checkpoint is \
                     being sent: input paused until they drain"
                );
            }
        } else if !self.throttled.is_empty() {
            for p in std::mem::take(&mut self.throttled) {
                let Some(part) = self.parts.get(&p) else {
                    continue;
                };
                if part.phase == Phase::Active && part.awaiting.is_none() {
                    resume_at(consumer, p, &part.positions());
                }
            }
            tracing::info!("output caught up: input resumed");
        }
        if let Some(m) = &self.metrics {
            m.set_input_paused(!self.throttled.is_empty());
            m.set_output_queue(self.sink.queued_records(), self.sink.queued_bytes());
        }
    }

    /// Adds the sink's new output errors to `cxstream_output_errors_total`.
    pub(super) fn report_output_errors(&mut self) {
        if let Some(why) = self.sink.state_refused() {
            if self.fatal.is_none() {
                self.fatal = Some(anyhow::anyhow!(
                    "{why}: checkpoints cannot complete. Check the state topic's \
                     max.message.bytes (at least {} bytes) and the broker's logs, then restart",
                    crate::state::CHUNK + 16 * 1024
                ));
            }
        }
        let Some(m) = &self.metrics else {
            return;
        };
        for (k, n) in self.sink.errors() {
            let seen = self.errors_reported.entry(*k).or_default();
            if *n > *seen {
                m.add_output_errors(k.0, k.1, *n - *seen);
                *seen = *n;
            }
        }
        for (k, n) in self.sink.waited() {
            let seen = self.waits_reported.entry(k).or_default();
            if *n > *seen {
                m.add_output_queue_full(k, *n - *seen);
                *seen = *n;
            }
        }
    }
}
