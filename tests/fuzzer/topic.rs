//! `Completion::Topic` (`run`): the engine's window parts and watermarks go through a
//! simulated parts topic (two partitions, every record encoded and decoded) to the merge
//! step ([`PartsLog`]), which survives the crashes of the input side and is itself restarted
//! from its marks.

use cxstream::engine::parts::{Mark, PartMsg, PartOut, PartsLog};
use cxstream::engine::Engine;
use cxstream::output::Record;

/// Parts-topic partitions.
const PARTS: i32 = 2;
/// The configuration fingerprint stamped on the records.
const FINGERPRINT: u64 = 0x5eed;

/// The parts topic and its merge step.
pub(super) struct TopicMerge {
    inputs: i32,
    /// Each partition's log, encoded.
    logs: Vec<Vec<Vec<u8>>>,
    folds: Vec<PartsLog>,
    /// The latest mark of each partition.
    marks: Vec<Option<Mark>>,
    /// Merge-step restarts.
    pub restarts: u64,
}

impl TopicMerge {
    pub(super) fn new(inputs: i32) -> TopicMerge {
        TopicMerge {
            inputs,
            logs: vec![Vec::new(); PARTS as usize],
            folds: (0..PARTS).map(|_| PartsLog::new(inputs)).collect(),
            marks: vec![None; PARTS as usize],
            restarts: 0,
        }
    }

    fn append(&mut self, q: i32, msg: &PartMsg) -> Result<(), String> {
        let q = q as usize;
        let bytes = msg.encode(FINGERPRINT);
        let back = PartMsg::decode(&bytes, FINGERPRINT)
            .map_err(|e| format!("parts record does not decode: {}", e.0))?;
        ensure!(
            back.encode(FINGERPRINT) == bytes,
            "parts record does not round-trip: {msg:?}"
        );
        ensure!(
            PartMsg::decode(&bytes, FINGERPRINT ^ 1).is_err(),
            "a parts record of another configuration decodes"
        );
        let offset = self.logs[q].len() as i64;
        self.logs[q].push(bytes);
        self.folds[q].apply(offset, back);
        Ok(())
    }

    /// What the engine's partitions sent (parts, then watermarks), then what completes.
    pub(super) fn pump(&mut self, e: &mut Engine, out: &mut Vec<Record>) -> Result<(), String> {
        for p in e.take_parts() {
            ensure!(
                (0..self.inputs).contains(&p.partition),
                "a part of partition {}",
                p.partition
            );
            let q = p.route(PARTS);
            self.append(q, &PartMsg::Part(p))?;
        }
        for (partition, watermark) in e.watermark_updates() {
            for q in 0..PARTS {
                self.append(
                    q,
                    &PartMsg::Watermark {
                        partition,
                        watermark,
                    },
                )?;
            }
        }
        for f in &mut self.folds {
            f.complete(out);
        }
        Ok(())
    }

    /// Every merge step writes its mark (what it emitted is out).
    pub(super) fn mark(&mut self) -> Result<(), String> {
        for q in 0..PARTS {
            let m = self.folds[q as usize].mark(self.logs[q as usize].len() as i64);
            self.marks[q as usize] = Some(m.clone());
            self.append(q, &PartMsg::Mark(m))?;
        }
        Ok(())
    }

    /// The merge steps crash: each new owner starts from the latest mark (or the beginning)
    /// and folds the log again; what it emits goes to `out`.
    pub(super) fn restart(&mut self, out: &mut Vec<Record>) -> Result<(), String> {
        self.restarts += 1;
        for q in 0..PARTS as usize {
            let (mut fold, from) = match &self.marks[q] {
                Some(m) => (PartsLog::from_mark(self.inputs, m), m.oldest),
                None => (PartsLog::new(self.inputs), 0),
            };
            for (o, bytes) in self.logs[q].iter().enumerate().skip(from as usize) {
                let msg = PartMsg::decode(bytes, FINGERPRINT)
                    .map_err(|e| format!("parts record does not decode: {}", e.0))?;
                fold.apply(o as i64, msg);
                fold.complete(out);
            }
            self.folds[q] = fold;
        }
        Ok(())
    }

    /// The end of the input: pending windows with the parts the end sealed.
    pub(super) fn flush(&self, finals: Vec<PartOut>, out: &mut Vec<Record>) {
        let mut by_q: Vec<Vec<PartOut>> = vec![Vec::new(); PARTS as usize];
        for p in finals {
            by_q[p.route(PARTS) as usize].push(p);
        }
        for (q, f) in self.folds.iter().enumerate() {
            f.flush(std::mem::take(&mut by_q[q]), out);
        }
    }
}
