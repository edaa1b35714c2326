//! Checkpoint mode: checkpoints, crashes (also mid-checkpoint), abandoned checkpoints and
//! compaction at random points, compared with an uninterrupted run (SPEC §7).

use super::*;
/// The state topic, one log per partition.
pub(super) struct Logs {
    logs: Vec<Vec<StateRecord>>,
    gens: Vec<u64>,
}

impl Logs {
    /// The log of `p` as a restore reads it, with the prefix up to `compact_at` compacted.
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

/// Checkpoint mode: an uninterrupted run, then one with the crash plan; the records must
/// match (SPEC §7 re-emission: last window per key and the set of ids equal, re-emissions
/// byte-identical unless partial).
#[allow(clippy::needless_range_loop)]
pub(super) fn run_checkpointed(
    case: &Case,
    steps: &[Step],
    compact: &[f64],
    tally: &mut Tally,
) -> Check {
    let all: Vec<usize> = (0..case.ops.len()).collect();
    let want = run_life(case, &all)?;
    tally.add(&want.tally());
    let n = case.partitions as usize;
    // Per-partition position of each op.
    let mut seq = Vec::with_capacity(case.ops.len());
    let mut next_of = vec![0i64; n];
    for op in &case.ops {
        let p = op_part(op) as usize;
        seq.push((p, next_of[p]));
        next_of[p] += 1;
    }
    let mut logs = Logs {
        logs: vec![Vec::new(); n],
        gens: vec![0; n],
    };
    let mut plan: Vec<Step> = steps.to_vec();
    plan.sort_by_key(|s| s.at());
    let mut plan = plan.into_iter().peekable();
    let mut got: Vec<(String, String)> = Vec::new();
    let mut unwritable = want.unwritable.clone();
    let mut crashes = 0usize;
    // The parts topic outlives the input side's crashes.
    let mut topic = None;
    'process: loop {
        let mut life = Life::new(case);
        if let Some(t) = topic.take() {
            life.topic = Some(t);
            if crashes % 2 == 1 {
                life.restart_merge()?;
            }
        }
        let mut next = vec![0i64; n];
        for p in 0..n {
            let c = compact
                .get(crashes % compact.len().max(1))
                .copied()
                .unwrap_or(0.0);
            let img = logs.image(p, c);
            match state::restore(&img).map_err(|e| format!("restore of partition {p}: {e:?}"))? {
                Some(r) => {
                    trace(|| {
                        format!(
                            "restore partition {p} (compaction {c}): manifest gen {} at position {}",
                            r.manifest.gen, r.manifest.positions[0].1
                        )
                    });
                    logs.logs[p].extend(r.cleanup.iter().cloned());
                    logs.gens[p] = logs.gens[p].max(r.max_gen);
                    life.engine
                        .restore_partition(p as i32, &r)
                        .map_err(|e| format!("restore_partition {p}: {e:?}"))?;
                    next[p] = r.manifest.positions[0].1;
                    tally.restores += 1;
                }
                None => {
                    // As the runtime does: void what checkpoints that never completed wrote.
                    let left = state::leftovers(&img)
                        .map_err(|e| format!("leftovers of partition {p}: {e:?}"))?;
                    logs.logs[p].extend(left.cleanup.iter().cloned());
                    logs.gens[p] = logs.gens[p].max(left.max_gen);
                    life.engine.track_changes(p as i32)
                }
            }
        }
        life.drain()?;
        for i in 0..=case.ops.len() {
            while let Some(step) = plan.peek().copied().filter(|s| s.at() <= i) {
                plan.next();
                trace(|| format!("before op {i}: {step:?}"));
                // A plain crash loses what was not checkpointed; the other steps
                // checkpoint (some partitions, or all of them, partly or wholly) first.
                let mut alive = !matches!(step, Step::Crash(_));
                for p in 0..n {
                    if matches!(step, Step::Crash(_)) {
                        break;
                    }
                    if let Step::Checkpoint(_, mask) = step {
                        if mask & (1 << p) == 0 {
                            continue;
                        }
                    }
                    alive &= checkpoint(&mut life.engine, &mut logs, &next, p, step, tally);
                }
                if matches!(step, Step::CheckpointCrash(_)) {
                    alive = false;
                }
                if alive && matches!(step, Step::Checkpoint(..)) {
                    life.mark_merge()?;
                }
                if !alive {
                    crashes += 1;
                    tally.crashes += 1;
                    life.drain()?;
                    life.check_accounting()?;
                    tally.add(&life.tally());
                    got.append(&mut life.out);
                    unwritable.append(&mut life.unwritable);
                    topic = life.topic.take();
                    continue 'process;
                }
            }
            if i == case.ops.len() {
                break;
            }
            let (p, k) = seq[i];
            if k < next[p] {
                continue;
            }
            life.apply(i, &case.ops[i])?;
            next[p] = k + 1;
            if (i + 1) % case.drain_every == 0 {
                life.drain()?;
            }
        }
        life.drain()?;
        life.finish()?;
        life.check_accounting()?;
        life.check_metrics()?;
        tally.add(&life.tally());
        got.append(&mut life.out);
        unwritable.append(&mut life.unwritable);
        break;
    }
    let keep = |v: &[(String, String)]| -> Vec<(String, String)> {
        v.iter()
            .filter(|(k, _)| !unwritable.contains(k))
            .cloned()
            .collect()
    };
    compare_reemission(&keep(&want.out), &keep(&got))
}

/// `CXSTREAM_FUZZ_TRACE=1`: print what the checkpoint mode does.
pub(super) fn trace(msg: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("CXSTREAM_FUZZ_TRACE").is_some()) {
        eprintln!("trace: {}", msg());
    }
}

pub(super) fn checkpoint(
    e: &mut Engine,
    logs: &mut Logs,
    next: &[i64],
    p: usize,
    step: Step,
    tally: &mut Tally,
) -> bool {
    logs.gens[p] += 1;
    let meta = CheckpointMeta {
        gen: logs.gens[p],
        fingerprint: 7,
        input_partitions: next.len() as i32,
        positions: vec![("in".into(), next[p])],
        advance_seq: 0,
        written_at: 0,
    };
    let Some(mut ck) = e.begin_checkpoint(p as i32, &meta) else {
        return true;
    };
    let records: Vec<StateRecord> = if matches!(step, Step::Abandon(_)) {
        // Half of it taken: the other half is never encoded (an abandon with copies left).
        let half = ck.records_left() / 2;
        (0..half).filter_map(|_| ck.pop()).collect()
    } else {
        ck.take_records()
    };
    trace(|| {
        let keys: Vec<String> = records
            .iter()
            .map(|r| format!("{:?}", Key::parse(&r.key)))
            .collect();
        format!(
            "  partition {p} gen {} at position {}: {} records {keys:?}",
            ck.gen,
            next[p],
            records.len()
        )
    });
    match step {
        Step::CrashMid(_, keep) => {
            let k = keep.min(records.len());
            logs.logs[p].extend(records[..k].iter().cloned());
            false
        }
        Step::Abandon(_) => {
            logs.logs[p].extend(records.iter().cloned());
            e.abandon_checkpoint(ck);
            true
        }
        _ => {
            logs.logs[p].extend(records.iter().cloned());
            logs.logs[p].push(StateRecord {
                key: Key::Manifest.bytes(),
                value: Some(ck.manifest.encode()),
            });
            let tombs = e.complete_checkpoint(ck);
            logs.logs[p].extend(tombs);
            tally.checkpoints += 1;
            true
        }
    }
}

pub(super) fn compare_reemission(want: &[(String, String)], got: &[(String, String)]) -> Check {
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
            .take(3)
            .collect();
        let extra: Vec<_> = lg.keys().filter(|k| !lw.contains_key(*k)).take(3).collect();
        let first = diff.first().map(|k| {
            format!(
                "\n  {k}: {}",
                lg.get(k)
                    .map_or("(missing)".to_string(), |g| json_diff(&lw[k], g))
            )
        });
        return Err(format!(
            "after crashes and restores, windows differ: {} vs {} keys; differing {diff:?}; extra {extra:?}{}",
            lw.len(),
            lg.len(),
            first.unwrap_or_default()
        ));
    }
    let (iw, ig) = (ids(want), ids(got));
    if iw != ig {
        let missing: Vec<_> = iw.difference(&ig).take(5).collect();
        let extra: Vec<_> = ig.difference(&iw).take(5).collect();
        return Err(format!(
            "after crashes and restores, record ids differ: missing {missing:?}, extra {extra:?}"
        ));
    }
    // Ids that name different records in one uninterrupted run (a ticket re-created after
    // eviction with the same due, a customer split over partitions): not re-emissions.
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let mut ambiguous: BTreeSet<&String> = BTreeSet::new();
    for (k, l) in want {
        if let Some(f) = seen.insert(k, l) {
            if f != l.as_str() && !k.starts_with("window ") {
                ambiguous.insert(k);
            }
        }
    }
    let mut first: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, l) in got {
        if let Some(f) = first.get(k.as_str()) {
            if *f != l.as_str() && !l.contains("\"partial\":true") && !ambiguous.contains(k) {
                return Err(format!("{k} re-emitted differently: {}", json_diff(f, l)));
            }
        } else {
            first.insert(k, l);
        }
    }
    Ok(())
}

/// The leaves that differ between two JSON lines, as `path: a → b` (at most 8).
pub(super) fn json_diff(a: &str, b: &str) -> String {
    fn walk(p: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let (va, vb) = (
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                    );
                    walk(&format!("{p}.{k}"), va, vb, out);
                }
            }
            _ if a != b => out.push(format!(
                "{p}: {} → {}",
                truncate(&a.to_string(), 200),
                truncate(&b.to_string(), 200)
            )),
            _ => {}
        }
    }
    let (Ok(x), Ok(y)) = (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) else {
        return format!("{} vs {}", truncate(a, 300), truncate(b, 300));
    };
    let mut out = Vec::new();
    walk("", &x, &y, &mut out);
    out.truncate(8);
    out.join("; ")
}
