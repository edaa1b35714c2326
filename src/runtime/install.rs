//! Installing what a restore read back (SPEC §7): the partition's state, the cleanup records
//! written before anything new, its input position (or, without a checkpoint, the group's
//! committed offsets for an explicit upgrade, else the start of the partition), the idle
//! advances to replay; then the partition resumes.

use std::collections::BTreeMap;
use std::time::Instant;

use super::advance::decode_advances;
use super::pipeline::{resume_at, Phase, Pipeline, BEGINNING, END};
use super::restore::Found;
use super::Consumer;

impl Pipeline {
    /// Installs the restores that finished: state, cleanup, input position; resumes.
    pub(super) fn poll_restores(&mut self, consumer: &Consumer) {
        while let Ok(done) = self.restore_rx.try_recv() {
            let p = done.partition;
            let Some(part) = self.parts.get(&p) else {
                continue;
            };
            if part.epoch != done.epoch {
                continue;
            }
            let restore_started = part.restore_started;
            match done.result {
                Err(e) => {
                    self.fatal = Some(e.context(format!("restoring partition {p}")));
                    return;
                }
                Ok(Found::Checkpoint { built, restored }) => {
                    self.send_state(p, &restored.cleanup);
                    self.engine.install(*built);
                    let m = &restored.manifest;
                    let part = self.parts.get_mut(&p).expect("checked above");
                    part.next = m.positions.iter().cloned().collect();
                    part.gen = restored.max_gen;
                    part.advance_seq = m.advance_seq;
                    part.advances_collected = 0;
                    part.next_advance = restored.max_advance + 1;
                    part.replay = decode_advances(&restored.advances);
                    part.checkpointed_at = Some(Instant::now());
                    // The group's offsets follow the checkpoint restored: its commit may
                    // have been lost with the partition (an outage), and an idle input
                    // brings no new checkpoint to commit.
                    self.commit_positions(consumer, p, &m.positions);
                    tracing::info!(
                        partition = p,
                        generation = m.gen,
                        positions = ?m.positions,
                        tickets = m.tickets,
                        customers = m.customers,
                        took = ?restore_started.elapsed(),
                        bytes = done.bytes,
                        "partition restored from its checkpoint"
                    );
                }
                Ok(Found::Empty {
                    reset,
                    committed,
                    leftovers,
                }) => {
                    if !committed.is_empty() && !reset && !self.opts.from_committed {
                        self.fatal = Some(anyhow::anyhow!(
                            "group {} has committed offsets for partition {p} ({committed:?}) but no checkpoint \
                             in {}: this is an upgrade from a version without checkpoints (or the state topic \
                             was deleted). Start with `cxstream run --from-committed-offsets` to continue from \
                             the committed offsets with empty state (tickets and customers of earlier events \
                             are unknown), or `cxstream state reset` to reprocess the input from the beginning",
                            self.cfg.kafka.group_id,
                            self.state_topic
                        ));
                        return;
                    }
                    self.send_state(p, &leftovers.cleanup);
                    self.engine.assign(p);
                    self.engine.track_changes(p);
                    let start = self.start_offset();
                    let part = self.parts.get_mut(&p).expect("checked above");
                    let committed: BTreeMap<String, i64> = committed.into_iter().collect();
                    part.next = part
                        .topics
                        .iter()
                        .map(|t| (t.clone(), committed.get(t).copied().unwrap_or(start)))
                        .collect();
                    part.gen = leftovers.max_gen;
                    part.next_advance = leftovers.max_advance + 1;
                    part.replay = decode_advances(&leftovers.advances);
                    tracing::info!(
                        partition = p,
                        positions = ?part.next,
                        "no checkpoint: the partition starts with empty state"
                    );
                }
            }
            self.restores += 1;
            if let Some(m) = &self.metrics {
                m.observe_restore(done.elapsed.as_secs_f64());
            }
            let part = self.parts.get_mut(&p).expect("checked above");
            part.phase = Phase::Active;
            // Its state is durable as of now (restored, or empty and nothing to lose yet).
            part.checkpointed_at = Some(Instant::now());
            part.at_eof = false;
            part.last_message = Instant::now();
            let positions = part.positions();
            resume_at(consumer, p, &positions);
            self.replay_advances(p, None);
        }
    }

    /// Where a partition without a checkpoint or committed offset starts
    /// (`auto.offset.reset`, default earliest).
    fn start_offset(&self) -> i64 {
        match self
            .cfg
            .kafka
            .librdkafka
            .get("auto.offset.reset")
            .map(String::as_str)
        {
            Some("latest" | "largest" | "end") => END,
            _ => BEGINNING,
        }
    }
}
