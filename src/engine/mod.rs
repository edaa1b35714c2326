//! The KPI engine (SPEC §1–§5): decoded events in; measurements, alert records and complete
//! windows out. Nothing here reads bytes: sources decode ([`crate::source`]) and hand over
//! events, or the reason an input is invalid.
//!
//! ```text
//! mod.rs        this facade: the Engine API used by replay, the Kafka runtime and tests
//! partition.rs  one input partition: its state, and the order of work for one event
//! core.rs       a partition's context: windows, watermark, output, counters, observer
//! tickets.rs    ticket events and SLA clocks (SPEC §3), with one shared preamble
//! signals.rs    after-sales logic (SPEC §5): churn risk, recovery, repurchase
//! merge.rs      the merge step: complete windows from every partition's parts
//! parts.rs      the parts topic's records and its merge step (several instances, SPEC §7)
//! watermark.rs  per-partition event-time progress and its watermark
//! sched.rs      the event-time scheduler of timers and held after-sales inputs
//! snapshot.rs   what changed since the last checkpoint
//! ticket.rs, customer.rs, slab.rs, intern.rs, stats.rs, observer.rs  plain data
//! ```
//!
//! Each input partition is a deterministic function of its own events (SPEC §2): it has its
//! own watermark (max event time − allowed lateness, never back), timers, held inputs, dedup
//! memory, retention and window parts, and its own team interner. What it contributes never
//! depends on how partitions interleave, which instance owns them, batching or restarts. The
//! engine only merges: a window is emitted once every partition it waits for has sealed its
//! part ([`Completion`]).

mod core;
mod customer;
mod intern;
mod keys;
mod merge;
mod observer;
mod partition;
pub mod parts;
mod sched;
mod signals;
mod slab;
mod snapshot;
mod stats;
mod ticket;
mod tickets;
mod watermark;

pub use customer::RiskScore;
pub use intern::Interner;
pub use keys::StateKeys;
pub use merge::Completion;
pub use observer::Observer;
pub use snapshot::{Checkpoint, CheckpointMeta};
pub use stats::{Disposition, Stats};

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Config;
use crate::event::{DecodeError, Event, SourcePos};
use crate::output::Record;
use crate::state::{Restored, StateError, StateRecord};
use crate::ts::Millis;

use partition::Partition;

/// A partition rebuilt from a checkpoint by [`Engine::rebuild`], for [`Engine::install`].
pub struct RestoredPartition(Partition);

impl RestoredPartition {
    /// Rebuilds partition `partition` (changes tracked) from `r`.
    pub fn build(
        cfg: Arc<Config>,
        partition: i32,
        observer: Option<Box<dyn Observer>>,
        r: &Restored,
    ) -> Result<RestoredPartition, StateError> {
        let mut p = Partition::new(cfg, partition, observer);
        p.track_changes();
        p.restore(r)?;
        Ok(RestoredPartition(p))
    }

    /// The partition number.
    pub fn partition(&self) -> i32 {
        self.0.core.partition
    }
}

/// The KPI engine: one state per input partition, the merge of their window parts, and the
/// records produced so far (drained by a sink).
pub struct Engine {
    /// The configuration.
    cfg: Arc<Config>,
    /// The state of each input partition.
    partitions: BTreeMap<i32, Partition>,
    /// Which partitions a window waits for.
    completion: Completion,
    /// The observer each partition gets a fork of.
    observer: Option<Box<dyn Observer>>,
    /// Records produced and not drained yet, in order.
    out: Vec<Record>,
    /// Counters of partitions no longer here, and of records the merge step emitted.
    retired: Stats,
    /// Sealed parts for the parts topic ([`Completion::Topic`]), not drained yet.
    parts_out: Vec<parts::PartOut>,
    /// The watermark last reported per partition for the parts topic.
    sent_watermarks: BTreeMap<i32, Millis>,
}

impl Engine {
    /// An engine with no state, for `cfg`; windows wait for every partition it has.
    pub fn new(cfg: Arc<Config>) -> Engine {
        Engine {
            cfg,
            partitions: BTreeMap::new(),
            completion: Completion::Present,
            observer: None,
            out: Vec::new(),
            retired: Stats::default(),
            parts_out: Vec::new(),
            sent_watermarks: BTreeMap::new(),
        }
    }

    /// Which partitions a window waits for (see [`Completion`]).
    pub fn set_completion(&mut self, c: Completion) {
        self.completion = c;
        self.merge(false);
    }

    /// A fork of the observer, for a partition rebuilt elsewhere.
    pub fn observer_fork(&self) -> Option<Box<dyn Observer>> {
        self.observer.as_ref().and_then(|o| o.fork())
    }

    /// Sends every measurement and gauge change to `o` (the Prometheus layer); each
    /// partition gets its own fork of it.
    pub fn set_observer(&mut self, o: Box<dyn Observer>) {
        for p in self.partitions.values_mut() {
            p.core.observer = o.fork();
        }
        self.observer = Some(o);
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Cumulative counters (this process).
    pub fn stats(&self) -> Stats {
        let mut s = self.retired.clone();
        for p in self.partitions.values() {
            s.add(&p.core.stats);
        }
        s
    }

    /// The overall watermark: the minimum over the partitions with data (SPEC §6).
    pub fn watermark(&self) -> Option<Millis> {
        self.partitions
            .values()
            .filter_map(|p| p.core.watermark.value())
            .min()
    }

    /// Each partition's watermark, once it has one.
    pub fn partition_watermarks(&self) -> Vec<(i32, Millis)> {
        self.partitions
            .iter()
            .filter_map(|(id, p)| p.core.watermark.value().map(|w| (*id, w)))
            .collect()
    }

    /// Largest event time applied on any partition.
    pub fn max_event_time(&self) -> Option<Millis> {
        self.partitions
            .values()
            .filter_map(|p| p.shard.clock.max_time)
            .max()
    }

    /// Records produced so far (alerts, complete windows, dead letters), in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Record> {
        self.out.drain(..)
    }

    /// Sealed window parts for the parts topic ([`Completion::Topic`]), in order.
    pub fn take_parts(&mut self) -> Vec<parts::PartOut> {
        std::mem::take(&mut self.parts_out)
    }

    /// Returns the emptied vector [`Engine::take_parts`] handed out, so that the next parts
    /// fill it without growing a new one (issue 10: 4 % of `run`'s main thread).
    pub fn give_back_parts(&mut self, mut v: Vec<parts::PartOut>) {
        if self.parts_out.is_empty() {
            v.clear();
            self.parts_out = v;
        }
    }

    /// The partitions whose watermark passed a window end since it was last reported (or was
    /// never reported since the partition came), with that watermark; reported from now on.
    /// A partition's parts of every window ending at or before it are out by then.
    pub fn watermark_updates(&mut self) -> Vec<(i32, Millis)> {
        let sizes: Vec<Millis> = self.cfg.engine.windows.iter().map(|d| d.0).collect();
        let mut v = Vec::new();
        for (id, p) in &self.partitions {
            let Some(w) = p.core.watermark.value() else {
                continue;
            };
            let due = match self.sent_watermarks.get(id) {
                None => true,
                Some(&l) => w > l && sizes.iter().any(|s| w.div_euclid(*s) > l.div_euclid(*s)),
            };
            if due {
                self.sent_watermarks.insert(*id, w);
                v.push((*id, w));
            }
        }
        v
    }

    /// Records produced and not drained yet.
    pub fn pending_records(&self) -> usize {
        self.out.len()
    }

    /// Tickets held in state.
    pub fn tickets_held(&self) -> usize {
        self.partitions
            .values()
            .map(|p| p.shard.tickets.len())
            .sum()
    }

    /// Customers held in state.
    pub fn customers_held(&self) -> usize {
        self.partitions
            .values()
            .map(|p| p.shard.customers.len())
            .sum()
    }

    /// Customers holding after-sales state (a churn-risk score, a recovery case, cohorts:
    /// allocated at the first need), over all partitions. A scan of every customer: call it
    /// now and then, not per event.
    pub fn aftersales_customers_held(&self) -> usize {
        self.partitions
            .values()
            .map(|p| {
                p.shard
                    .customers
                    .iter()
                    .filter(|(_, c)| c.after.is_some())
                    .count()
            })
            .sum()
    }

    /// Tickets and customers held by one partition (0 if it is not assigned).
    pub fn partition_entities(&self, partition: i32) -> usize {
        self.partitions
            .get(&partition)
            .map_or(0, |p| p.shard.tickets.len() + p.shard.customers.len())
    }

    /// Event ids remembered for de-duplication (SPEC §1), over all partitions.
    pub fn event_ids_held(&self) -> usize {
        self.partitions.values().map(|p| p.shard.dedup.len()).sum()
    }

    /// Timers and held after-sales inputs waiting for their partition's watermark.
    pub fn scheduled_items(&self) -> usize {
        self.partitions.values().map(|p| p.shard.sched.len()).sum()
    }

    /// Window parts open or sealed, over all partitions.
    pub fn open_window_aggregates(&self) -> usize {
        self.partitions
            .values()
            .map(|p| p.core.windows.open_aggregates())
            .sum()
    }

    /// Duration summaries of open or sealed window parts that hold an HDR histogram.
    pub fn dense_summaries(&self) -> usize {
        self.partitions
            .values()
            .map(|p| p.core.windows.dense_summaries())
            .sum()
    }

    /// Windows with sealed parts waiting for other partitions (SPEC §7
    /// `cxstream_merge_pending_windows`).
    pub fn merge_pending_windows(&self) -> usize {
        merge::pending_windows(&self.partitions)
    }

    /// The partitions this engine has.
    pub fn partitions(&self) -> Vec<i32> {
        self.partitions.keys().copied().collect()
    }

    fn partition(&mut self, p: i32) -> &mut Partition {
        let (cfg, obs) = (&self.cfg, &self.observer);
        self.partitions.entry(p).or_insert_with(|| {
            Partition::new(Arc::clone(cfg), p, obs.as_ref().and_then(|o| o.fork()))
        })
    }

    /// Makes sure state exists for `partition` (on assignment).
    pub fn assign(&mut self, partition: i32) {
        self.partition(partition);
    }

    /// Continues the cumulative counters of `previous` (a new engine replacing it).
    pub fn carry_stats_from(&mut self, previous: &Engine) {
        let mut s = previous.stats();
        s.customers_at_risk = 0;
        s.recovery_open_cases = 0;
        self.retired = s;
    }

    /// Drops the state of a revoked partition; its counters stay in the totals.
    pub fn revoke(&mut self, partition: i32) {
        self.sent_watermarks.remove(&partition);
        if let Some(mut p) = self.partitions.remove(&partition) {
            p.release_gauges();
            let mut s = std::mem::take(&mut p.core.stats);
            s.customers_at_risk = 0;
            s.recovery_open_cases = 0;
            self.retired.add(&s);
        }
        self.merge(false);
    }

    /// An invalid input of `partition` (SPEC §1): counted by reason and dead-lettered with
    /// its payload and source position. It changes no state.
    pub fn invalid(
        &mut self,
        partition: i32,
        err: &DecodeError,
        payload: &[u8],
        pos: SourcePos,
    ) -> Disposition {
        let p = self.partition(partition);
        p.core.stats.invalid[err.reason as usize] += 1;
        p.core.emit(Record::dead_letter(
            err.reason.as_str(),
            err.message.clone(),
            payload.to_vec(),
            pos,
        ));
        self.after_step(partition);
        Disposition::Invalid
    }

    /// An input larger than `max` bytes (SPEC §1 size): counted as `bad_length` and
    /// dead-lettered with a prefix of its payload and its size.
    pub fn oversized(
        &mut self,
        partition: i32,
        payload: &[u8],
        max: usize,
        pos: SourcePos,
    ) -> Disposition {
        let p = self.partition(partition);
        p.core.stats.invalid[crate::event::InvalidReason::BadLength as usize] += 1;
        p.core.emit(Record::oversized(payload, max, pos));
        self.after_step(partition);
        Disposition::Invalid
    }

    /// Processes a decoded event from `partition` (SPEC §1–§2); `dead_letter` supplies payload
    /// and position if it must be dead-lettered.
    /// `keys` are the event's ([`StateKeys::of`], computed ahead).
    pub fn process_event(
        &mut self,
        partition: i32,
        ev: &Event<'_>,
        keys: &StateKeys,
        dead_letter: impl FnOnce() -> (Vec<u8>, SourcePos),
    ) -> Disposition {
        let d = self.partition(partition).process(ev, keys, dead_letter);
        self.after_step(partition);
        d
    }

    /// A hint, some events before [`Self::process_event`] of the event whose state keys are
    /// `keys`: starts fetching the index entries its lookups (dedup memory, customer,
    /// ticket) begin with into the CPU's cache. Then, a few events later,
    /// [`Self::prefetch_state`]. Changes nothing; it only saves the waits for memory that
    /// were a fifth of the engine's time in a replay (issue 10).
    pub fn prefetch_index(&self, partition: i32, keys: &StateKeys) {
        if let Some(p) = self.partitions.get(&partition) {
            p.shard.prefetch_index(keys);
        }
    }

    /// The second hint: starts fetching the customer and ticket themselves.
    pub fn prefetch_state(&self, partition: i32, keys: &StateKeys) {
        if let Some(p) = self.partitions.get(&partition) {
            p.shard.prefetch_state(keys);
        }
    }

    /// Live mode (SPEC §2): `partition` is caught up and idle, so its watermark advances to
    /// `w` (the wall clock minus the allowed lateness), if that is later. The caller records
    /// the advance (SPEC §7) before it publishes what this produces.
    pub fn advance_partition(&mut self, partition: i32, w: Millis) -> bool {
        let moved = self.partition(partition).advance(w);
        self.after_step(partition);
        moved
    }

    /// Collects what a partition's step produced, then completes the windows it allows.
    fn after_step(&mut self, partition: i32) {
        if let Some(p) = self.partitions.get_mut(&partition) {
            self.out.append(&mut p.core.out);
        }
        self.merge(false);
    }

    fn merge(&mut self, all: bool) {
        let before = self.out.len();
        merge::merge(
            &mut self.partitions,
            &self.completion,
            all,
            &mut self.out,
            &mut self.parts_out,
        );
        for r in &self.out[before..] {
            *self.retired.records.entry(r.type_name()).or_default() += 1;
        }
    }

    /// Tracks the changes of `partition` from now on: checkpoints of it will be taken.
    pub fn track_changes(&mut self, partition: i32) {
        self.partition(partition).track_changes();
    }

    /// Whether `partition`'s state changed since its last checkpoint.
    pub fn has_changes(&self, partition: i32) -> bool {
        self.partitions
            .get(&partition)
            .is_some_and(|p| p.has_changes())
    }

    /// Takes a checkpoint of `partition` (SPEC §7) at its current state; `None` if the engine
    /// does not have it.
    pub fn begin_checkpoint(
        &mut self,
        partition: i32,
        meta: &CheckpointMeta,
    ) -> Option<Checkpoint> {
        self.partitions
            .get_mut(&partition)
            .map(|p| p.begin_checkpoint(meta))
    }

    /// A checkpoint is complete: returns the tombstones for what it made obsolete.
    pub fn complete_checkpoint(&mut self, ck: Checkpoint) -> Vec<StateRecord> {
        match self.partitions.get_mut(&ck.partition) {
            Some(p) => p.complete_checkpoint(ck),
            None => Vec::new(),
        }
    }

    /// A checkpoint will never be complete: the next one writes what it wrote again.
    pub fn abandon_checkpoint(&mut self, ck: Checkpoint) {
        if let Some(p) = self.partitions.get_mut(&ck.partition) {
            p.abandon_checkpoint(ck);
        }
    }

    /// Replaces the state of `partition` with a restored checkpoint (SPEC §7), its changes
    /// tracked from there. Sealed parts of windows that the merge step already emitted —
    /// according to any partition's record of it — are dropped.
    pub fn restore_partition(&mut self, partition: i32, r: &Restored) -> Result<(), StateError> {
        let built = self.rebuild(partition, r)?;
        self.install(built);
        Ok(())
    }

    /// A partition rebuilt from a restored checkpoint, not installed yet: the (slow) decoding
    /// can run off the polling thread; [`Engine::install`] is quick.
    pub fn rebuild(&self, partition: i32, r: &Restored) -> Result<RestoredPartition, StateError> {
        let obs = self.observer.as_ref().and_then(|o| o.fork());
        RestoredPartition::build(std::sync::Arc::clone(&self.cfg), partition, obs, r)
    }

    /// Installs a rebuilt partition in place of whatever state this engine had for it.
    pub fn install(&mut self, built: RestoredPartition) {
        let p = built.0;
        let partition = p.core.partition;
        self.sent_watermarks.remove(&partition);
        if let Some(mut old) = self.partitions.insert(partition, p) {
            old.release_gauges();
            let mut s = std::mem::take(&mut old.core.stats);
            s.customers_at_risk = 0;
            s.recovery_open_cases = 0;
            self.retired.add(&s);
        }
        let emitted = self
            .partitions
            .values()
            .map(|p| p.core.merged_through)
            .max()
            .unwrap_or(Millis::MIN);
        for p in self.partitions.values_mut() {
            p.core.merged_through = p.core.merged_through.max(emitted);
            let done: Vec<_> = p
                .core
                .windows
                .sealed_windows()
                .take_while(|(end, _, _)| *end <= emitted)
                .collect();
            for id in done {
                p.core.windows.take_sealed(id);
            }
        }
        self.merge(false);
    }

    /// End of a finite input (SPEC §2): every partition's watermark moves to M, the largest
    /// event time applied in the whole input; items before M fire, after-sales inputs at M are
    /// applied (timers at M stay pending); every window with data is emitted, the ones not
    /// complete by M with `"partial": true`.
    pub fn finish(&mut self) {
        let Some(m) = self.max_event_time() else {
            return;
        };
        if let Completion::Of(set) = &self.completion {
            for p in set.clone() {
                self.partition(p);
            }
        }
        let ids: Vec<i32> = self.partitions.keys().copied().collect();
        for id in ids {
            if let Some(p) = self.partitions.get_mut(&id) {
                p.finish_at(m);
                self.out.append(&mut p.core.out);
            }
        }
        self.merge(false);
        self.merge(true);
    }
}
