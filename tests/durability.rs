//! SPEC §7 checkpoints and restore, without Kafka: the engine's checkpoints are written to an
//! in-memory log per state partition (what a Kafka state topic holds), the "process" crashes
//! at random points — also in the middle of writing a checkpoint — and a new engine restores
//! every partition from its log, as compacted at a random point, and replays the input from
//! each partition's checkpoint position.
//!
//! Afterwards the last `kpi.window` record per key, and the set of alert, signal and
//! dead-letter records by `id`, equal those of an uninterrupted run; and every record emitted
//! again after a crash is byte-identical to its first emission.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cxstream::config::{Config, Dim};
use cxstream::engine::{CheckpointMeta, Completion, Engine};
use cxstream::event::SourcePos;
use cxstream::generate::{GenerateOptions, Generator};
use cxstream::source::{feed, Partitioner};
use cxstream::state::{self, Key, LogImage, StateRecord};
use proptest::prelude::*;

/// One input line with its partition and offset within it.
#[derive(Clone)]
struct Line {
    partition: i32,
    offset: i64,
    bytes: Vec<u8>,
}

/// Generated events (with invalid, duplicate and orphan lines), delivered with up to
/// `delay_ms` of disorder, keyed by customer over `n` partitions.
fn input(seed: u64, events: u64, n: i32, delay_ms: i64) -> Vec<Line> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut keyed: Vec<(i64, usize, String, String)> = Generator::new(GenerateOptions {
        events,
        seed,
        customers: 40,
        tickets_per_hour: 900.0,
        invalid_ratio: 0.02,
        duplicate_ratio: 0.02,
        orphan_ratio: 0.02,
        ..GenerateOptions::default()
    })
    .enumerate()
    .map(|(i, g)| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let jitter = if delay_ms > 0 {
            (x % delay_ms as u64) as i64
        } else {
            0
        };
        (g.time_ms + jitter, i, g.key, g.line)
    })
    .collect();
    keyed.sort();
    let mut next = vec![0i64; n as usize];
    keyed
        .into_iter()
        .map(|(_, _, key, line)| {
            let p = if key.is_empty() {
                0
            } else {
                Partitioner::Crc32.partition(key.as_bytes(), n)
            };
            let offset = next[p as usize];
            next[p as usize] += 1;
            Line {
                partition: p,
                offset,
                bytes: line.into_bytes(),
            }
        })
        .collect()
}

fn config() -> Config {
    let mut c = Config::default();
    c.engine.windows = vec![
        cxstream::config::Dur(60_000),
        cxstream::config::Dur(3_600_000),
    ];
    c.engine.group_by = vec![vec![], vec![Dim::Team], vec![Dim::Priority]];
    c
}

fn engine(n: i32) -> Engine {
    let mut e = Engine::new(Arc::new(config()));
    e.set_completion(Completion::Of((0..n).collect()));
    e
}

fn pos(l: &Line) -> SourcePos {
    SourcePos::Kafka {
        topic: "in".into(),
        partition: l.partition,
        offset: l.offset,
    }
}

/// What a record is identified by: its key for windows, its id for the rest.
fn identity(r: &cxstream::output::Record) -> String {
    r.id().unwrap_or_else(|| format!("window {}", r.key()))
}

fn drain(e: &mut Engine, out: &mut Vec<(String, String)>) {
    for r in e.drain() {
        out.push((identity(&r), r.to_line()));
    }
}

fn uninterrupted(lines: &[Line], n: i32) -> Vec<(String, String)> {
    let mut e = engine(n);
    let mut out = Vec::new();
    for l in lines {
        feed(&mut e, l.partition, &l.bytes, || pos(l));
        drain(&mut e, &mut out);
    }
    e.finish();
    drain(&mut e, &mut out);
    out
}

/// A step of the crash plan.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// After this many input lines, checkpoint the partitions in the mask (bit p: partition
    /// p): partitions checkpoint independently, so a restore brings them back from
    /// checkpoints of different moments.
    Checkpoint(usize, u8),
    /// After this many lines, checkpoint and abandon it (its acknowledgement never came).
    Abandon(usize),
    /// After this many lines, crash while writing a checkpoint: only `keep` of its records
    /// per partition reach the log, then the process dies.
    CrashMid(usize, usize),
    /// After this many lines, crash (state dropped without flush).
    Crash(usize),
}

impl Step {
    fn at(self) -> usize {
        match self {
            Step::Checkpoint(a, _) | Step::Abandon(a) | Step::CrashMid(a, _) | Step::Crash(a) => a,
        }
    }
}

/// The state topic, one log per partition.
struct Logs {
    logs: Vec<Vec<StateRecord>>,
    gens: Vec<u64>,
}

impl Logs {
    /// The log of `p` as a restore reads it, with the prefix up to `compact_at` (a fraction)
    /// compacted: only the last record per key in that prefix survives, tombstones dropped.
    fn image(&self, p: usize, compact_at: f64) -> LogImage {
        let log = &self.logs[p];
        let cut = ((log.len() as f64) * compact_at) as usize;
        let mut last: BTreeMap<&[u8], usize> = BTreeMap::new();
        for (i, r) in log[..cut].iter().enumerate() {
            last.insert(&r.key, i);
        }
        let mut img = LogImage::default();
        for (i, r) in log.iter().enumerate() {
            if i < cut && (last.get(&r.key[..]) != Some(&i) || r.value.is_none()) {
                continue;
            }
            img.apply(&r.key, r.value.as_deref());
        }
        img
    }
}

fn checkpoint(e: &mut Engine, logs: &mut Logs, next: &[i64], p: i32, outcome: Step) -> bool {
    let pi = p as usize;
    logs.gens[pi] += 1;
    let meta = CheckpointMeta {
        gen: logs.gens[pi],
        fingerprint: 7,
        input_partitions: next.len() as i32,
        positions: vec![("in".into(), next[pi])],
        advance_seq: 0,
        written_at: 0,
    };
    let Some(mut ck) = e.begin_checkpoint(p, &meta) else {
        return true;
    };
    let records: Vec<StateRecord> = if matches!(outcome, Step::Abandon(_)) {
        // Half of it taken: the other half is never encoded (an abandon with copies left).
        let half = ck.records_left() / 2;
        (0..half).filter_map(|_| ck.pop()).collect()
    } else {
        ck.take_records()
    };
    match outcome {
        Step::CrashMid(_, keep) => {
            let k = keep.min(records.len());
            logs.logs[pi].extend(records[..k].iter().cloned());
            false
        }
        Step::Abandon(_) => {
            logs.logs[pi].extend(records.iter().cloned());
            e.abandon_checkpoint(ck);
            true
        }
        _ => {
            logs.logs[pi].extend(records.iter().cloned());
            logs.logs[pi].push(StateRecord {
                key: Key::Manifest.bytes(),
                value: Some(ck.manifest.encode()),
            });
            let tombs = e.complete_checkpoint(ck);
            logs.logs[pi].extend(tombs);
            true
        }
    }
}

/// Runs with crashes; returns every record emitted (with repeats) in order.
fn with_crashes(lines: &[Line], n: i32, plan: &[Step], compact: &[f64]) -> Vec<(String, String)> {
    let mut logs = Logs {
        logs: vec![Vec::new(); n as usize],
        gens: vec![0; n as usize],
    };
    let mut out = Vec::new();
    let mut plan: Vec<Step> = plan.to_vec();
    plan.sort_by_key(|s| s.at());
    let mut plan = plan.into_iter().peekable();
    let mut crashes = 0;
    'process: loop {
        // A new process: restore every partition from its log.
        let mut e = engine(n);
        let mut next = vec![0i64; n as usize];
        for p in 0..n {
            let c = compact
                .get(crashes % compact.len().max(1))
                .copied()
                .unwrap_or(0.0);
            let img = logs.image(p as usize, c);
            match state::restore(&img).expect("a restorable log") {
                Some(r) => {
                    logs.logs[p as usize].extend(r.cleanup.iter().cloned());
                    logs.gens[p as usize] = logs.gens[p as usize].max(r.max_gen);
                    e.restore_partition(p, &r).expect("restore");
                    next[p as usize] = r.manifest.positions[0].1;
                }
                None => e.track_changes(p),
            }
        }
        drain(&mut e, &mut out);
        let start = lines
            .iter()
            .position(|l| l.offset >= next[l.partition as usize])
            .unwrap_or(lines.len());
        for (i, l) in lines.iter().enumerate().skip(start) {
            while let Some(step) = plan.peek().copied().filter(|s| s.at() <= i) {
                plan.next();
                let mut alive = true;
                for p in 0..n {
                    if let Step::Checkpoint(_, mask) = step {
                        if mask & (1 << p) == 0 {
                            continue;
                        }
                    }
                    alive &= checkpoint(&mut e, &mut logs, &next, p, step);
                }
                if matches!(step, Step::Crash(_)) || !alive {
                    crashes += 1;
                    continue 'process;
                }
            }
            if l.offset < next[l.partition as usize] {
                continue;
            }
            feed(&mut e, l.partition, &l.bytes, || pos(l));
            next[l.partition as usize] = l.offset + 1;
            drain(&mut e, &mut out);
        }
        e.finish();
        drain(&mut e, &mut out);
        return out;
    }
}

/// The checks of SPEC §7 "Re-emission".
fn check(want: &[(String, String)], got: &[(String, String)]) -> Result<(), String> {
    let last = |v: &[(String, String)]| -> BTreeMap<String, String> {
        v.iter()
            .filter(|(k, _)| k.starts_with("window "))
            .map(|(k, l)| (k.clone(), l.clone()))
            .collect()
    };
    let ids = |v: &[(String, String)]| -> BTreeSet<String> {
        v.iter()
            .filter(|(k, _)| !k.starts_with("window "))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let (lw, lg) = (last(want), last(got));
    if lw != lg {
        let diff: Vec<_> = lw
            .iter()
            .filter(|(k, v)| lg.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .take(5)
            .collect();
        let extra: Vec<_> = lg.keys().filter(|k| !lw.contains_key(*k)).take(5).collect();
        return Err(format!(
            "windows differ: {} vs {} keys; first differing {diff:?}; extra {extra:?}",
            lw.len(),
            lg.len()
        ));
    }
    let (iw, ig) = (ids(want), ids(got));
    if iw != ig {
        let missing: Vec<_> = iw.difference(&ig).take(5).collect();
        let extra: Vec<_> = ig.difference(&iw).take(5).collect();
        return Err(format!("ids differ: missing {missing:?}, extra {extra:?}"));
    }
    let mut first: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, l) in got {
        if let Some(f) = first.get(k.as_str()) {
            if *f != l.as_str() && !l.contains("\"partial\":true") {
                return Err(format!("{k} re-emitted differently:\n{f}\n{l}"));
            }
        } else {
            first.insert(k, l);
        }
    }
    Ok(())
}

/// A checkpoint is the cut of the moment it is taken even though its tickets and customers
/// are encoded later, as the runtime takes their records in slices between input batches:
/// records taken after more input was processed — input that changes the same tickets and
/// customers and creates new ones — are those of an engine that took them at once, and so is
/// the manifest and what completing it tombstones.
#[test]
fn a_checkpoint_encoded_after_more_input_is_the_cut_it_was_taken_at() {
    let lines = input(11, 4_000, 1, 0);
    let meta = |gen: u64, at: usize| CheckpointMeta {
        gen,
        fingerprint: 7,
        input_partitions: 1,
        positions: vec![("in".into(), at as i64)],
        advance_seq: 0,
        written_at: 0,
    };
    let sorted = |mut v: Vec<StateRecord>| {
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    };
    for (first, cut, taken_before) in [(300, 1_000, 0), (1_200, 2_500, 5), (0, 3_900, 40)] {
        let (mut late, mut now) = (engine(1), engine(1));
        let mut ignored = Vec::new();
        for e in [&mut late, &mut now] {
            e.track_changes(0);
            for (i, l) in lines[..cut].iter().enumerate() {
                if i == first && first > 0 {
                    // An earlier complete checkpoint, so versions go to both slots.
                    let mut ck = e.begin_checkpoint(0, &meta(1, i)).expect("changes");
                    ck.take_records();
                    e.complete_checkpoint(ck);
                }
                feed(e, 0, &l.bytes, || pos(l));
                drain(e, &mut ignored);
            }
        }
        let mut ck_late = late.begin_checkpoint(0, &meta(2, cut)).expect("changes");
        let mut ck_now = now.begin_checkpoint(0, &meta(2, cut)).expect("changes");
        let entities = ck_late.records_left();
        let mut got: Vec<StateRecord> = (0..taken_before).filter_map(|_| ck_late.pop()).collect();
        for l in &lines[cut..] {
            feed(&mut late, 0, &l.bytes, || pos(l));
            drain(&mut late, &mut ignored);
        }
        late.finish();
        drain(&mut late, &mut ignored);
        got.extend(ck_late.take_records());
        let want = ck_now.take_records();
        assert!(
            want.len() >= entities && entities > 100,
            "{entities} entities in the cut"
        );
        assert!(ck_late.is_drained() && ck_now.is_drained());
        assert!(
            sorted(got) == sorted(want),
            "cut at {cut}: the records differ"
        );
        assert_eq!(
            ck_late.manifest.encode(),
            ck_now.manifest.encode(),
            "cut at {cut}: the manifests differ"
        );
        assert!(
            sorted(late.complete_checkpoint(ck_late)) == sorted(now.complete_checkpoint(ck_now)),
            "cut at {cut}: completing it tombstones other records"
        );
    }
}

#[test]
fn crash_and_restore_at_fixed_points_equal_an_uninterrupted_run() {
    let n = 3;
    let lines = input(21, 6000, n, 90_000);
    let want = uninterrupted(&lines, n);
    let plan = [
        Step::Checkpoint(500, 0b111),
        Step::Crash(900),
        Step::Checkpoint(1500, 0b111),
        Step::Abandon(2000),
        Step::CrashMid(2600, 7),
        Step::Checkpoint(3000, 0b001),
        Step::Checkpoint(3400, 0b110),
        Step::Crash(4100),
        Step::Checkpoint(4500, 0b011),
        Step::Checkpoint(5000, 0b100),
        Step::CrashMid(5500, 1),
    ];
    let got = with_crashes(&lines, n, &plan, &[0.0, 0.5, 1.0, 0.9]);
    check(&want, &got).unwrap();
    assert!(got.len() > want.len(), "crashes re-emitted records");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random streams, partitions, crash points and compaction points.
    #[test]
    fn crash_and_restore_anywhere_equal_an_uninterrupted_run(
        seed in 1u64..10_000,
        n in 1i32..4,
        delay in prop_oneof![Just(0i64), Just(45_000i64), Just(120_000i64)],
        steps in proptest::collection::vec((0usize..2500, 0u8..5, 0usize..30), 1..10),
        compact in proptest::collection::vec(0.0f64..1.0, 1..4),
    ) {
        let lines = input(seed, 2500, n, delay);
        let want = uninterrupted(&lines, n);
        let plan: Vec<Step> = steps
            .iter()
            .map(|&(at, kind, keep)| match kind {
                0 | 4 => Step::Checkpoint(at, (keep % 8) as u8),
                1 => Step::Abandon(at),
                2 => Step::CrashMid(at, keep),
                _ => Step::Crash(at),
            })
            .collect();
        let got = with_crashes(&lines, n, &plan, &compact);
        prop_assert!(check(&want, &got).is_ok(), "{:?}", check(&want, &got));
    }
}
