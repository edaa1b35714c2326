//! Cases as files (`dump`, `load`) and shrinking a failing case.

use super::*;
/// The configuration as TOML (what `Config::from_toml_with_env` reads back).
pub fn config_toml(c: &Config) -> String {
    let d = |x: &cxstream::config::Dur| format!("\"{}\"", ts::duration_label(x.0));
    let e = &c.engine;
    let windows: Vec<String> = e.windows.iter().map(d).collect();
    let groups: Vec<String> = e
        .group_by
        .iter()
        .map(|g| {
            let names: Vec<String> = g.iter().map(|x| format!("\"{}\"", x.as_str())).collect();
            format!("[{}]", names.join(", "))
        })
        .collect();
    let mut t = format!(
        "[engine]\nwindows = [{}]\nallowed_lateness = {}\ngroup_by = [{}]\ndedup_horizon = {}\nticket_retention_solved = {}\nticket_retention_open = {}\ncustomer_retention = {}\n",
        windows.join(", "),
        d(&e.allowed_lateness),
        groups.join(", "),
        d(&e.dedup_horizon),
        d(&e.ticket_retention_solved),
        d(&e.ticket_retention_open),
        d(&e.customer_retention)
    );
    for (name, tg) in [
        ("first_response", &c.sla.first_response),
        ("resolution", &c.sla.resolution),
    ] {
        t += &format!(
            "[sla.{name}]\nurgent = {}\nhigh = {}\nnormal = {}\nlow = {}\n",
            d(&tg.urgent),
            d(&tg.high),
            d(&tg.normal),
            d(&tg.low)
        );
    }
    let s = &c.signals;
    t += &format!(
        "[signals]\nhalf_life = {}\nthreshold = {:?}\ncooldown = {}\nrepeat_contact_window = {}\nrepeat_contact_min_others = {}\neffectiveness_horizon = {}\nrecovery_due = {}\nrepurchase_horizon = {}\n",
        d(&s.half_life),
        s.threshold,
        d(&s.cooldown),
        d(&s.repeat_contact_window),
        s.repeat_contact_min_others,
        d(&s.effectiveness_horizon),
        d(&s.recovery_due),
        d(&s.repurchase_horizon)
    );
    let w = &s.weights;
    t += &format!(
        "[signals.weights]\ncsat_negative = {:?}\nnps_detractor = {:?}\nces_high_effort = {:?}\nreopen = {:?}\nsla_breach = {:?}\nrepeat_contact = {:?}\nreturn = {:?}\nescalation = {:?}\nwarranty_claim = {:?}\npositive = {:?}\n",
        w.csat_negative,
        w.nps_detractor,
        w.ces_high_effort,
        w.reopen,
        w.sla_breach,
        w.repeat_contact,
        w.return_,
        w.escalation,
        w.warranty_claim,
        w.positive
    );
    t += &format!(
        "[input]\nmax_future = {}\nmax_event_bytes = {}\n",
        d(&c.input.max_future),
        c.input.max_event_bytes
    );
    t
}

/// The whole case as JSON (configuration as TOML, inputs base64): `--load` runs it again,
/// and it survives changes to the generator that would change what a seed gives.
pub fn dump(case: &Case) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let ops: Vec<Value> = case
        .ops
        .iter()
        .map(|op| match op {
            Op::Input { part, bytes, now } => serde_json::json!(["I", part, now, b64(bytes)]),
            Op::Advance { part, to } => serde_json::json!(["A", part, to]),
        })
        .collect();
    let (mode, steps, compact) = match &case.mode {
        Mode::Plain => ("plain", vec![], vec![]),
        Mode::Interleave => ("interleave", vec![], vec![]),
        Mode::Checkpoint(steps, compact) => (
            "checkpoint",
            steps
                .iter()
                .map(|s| match *s {
                    Step::Checkpoint(a, m) => serde_json::json!(["checkpoint", a, m]),
                    Step::Abandon(a) => serde_json::json!(["abandon", a]),
                    Step::CrashMid(a, k) => serde_json::json!(["crash_mid", a, k]),
                    Step::Crash(a) => serde_json::json!(["crash", a]),
                    Step::CheckpointCrash(a) => serde_json::json!(["checkpoint_crash", a]),
                })
                .collect(),
            compact.clone(),
        ),
    };
    let v = serde_json::json!({
        "seed": case.seed,
        "config": config_toml(&case.cfg),
        "partitions": case.partitions,
        "routing": match case.routing {
            Routing::Fixed => "fixed",
            Routing::Engine(cxstream::source::Partitioner::Crc32) => "crc32",
            Routing::Engine(cxstream::source::Partitioner::Murmur2) => "murmur2",
        },
        "completion": format!("{:?}", case.completion),
        "max_event_bytes": case.max_event_bytes,
        "max_future": case.max_future,
        "clock": match case.clock {
            Clock::None => Value::Null,
            Clock::Fixed(t) => serde_json::json!(t),
            Clock::PerInput => serde_json::json!("per_input"),
        },
        "mode": mode,
        "steps": steps,
        "compact": compact,
        "drain_every": case.drain_every,
        "metrics": case.metrics,
        "base": case.base,
        "ops": ops,
    });
    serde_json::to_string_pretty(&v).unwrap()
}

/// Reads a case written by [`dump`].
pub fn load(text: &str) -> Result<Case, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let i = |k: &str| v[k].as_i64().ok_or(format!("field {k}"));
    let cfg = Config::from_toml_with_env(v["config"].as_str().ok_or("config")?, &[])
        .map_err(|e| format!("config: {e:#}"))?;
    let ops = v["ops"]
        .as_array()
        .ok_or("ops")?
        .iter()
        .map(|o| -> Result<Op, String> {
            let part = o[1].as_i64().ok_or("op partition")? as i32;
            Ok(match o[0].as_str() {
                Some("I") => Op::Input {
                    part,
                    now: o[2].as_i64().ok_or("op clock")?,
                    bytes: base64::engine::general_purpose::STANDARD
                        .decode(o[3].as_str().ok_or("op bytes")?)
                        .map_err(|e| e.to_string())?,
                },
                _ => Op::Advance {
                    part,
                    to: o[2].as_i64().ok_or("op watermark")?,
                },
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let steps = v["steps"]
        .as_array()
        .ok_or("steps")?
        .iter()
        .map(|s| {
            let a = s[1].as_u64().unwrap_or(0) as usize;
            let x = s[2].as_u64().unwrap_or(0);
            match s[0].as_str() {
                Some("checkpoint") => Step::Checkpoint(a, x as u8),
                Some("abandon") => Step::Abandon(a),
                Some("crash_mid") => Step::CrashMid(a, x as usize),
                Some("checkpoint_crash") => Step::CheckpointCrash(a),
                _ => Step::Crash(a),
            }
        })
        .collect();
    let compact = v["compact"]
        .as_array()
        .ok_or("compact")?
        .iter()
        .filter_map(|c| c.as_f64())
        .collect();
    Ok(Case {
        seed: v["seed"].as_u64().ok_or("seed")?,
        cfg,
        partitions: i("partitions")? as i32,
        routing: match v["routing"].as_str() {
            Some("crc32") => Routing::Engine(cxstream::source::Partitioner::Crc32),
            Some("murmur2") => Routing::Engine(cxstream::source::Partitioner::Murmur2),
            _ => Routing::Fixed,
        },
        completion: match v["completion"].as_str() {
            Some("Present") => CompletionKind::Present,
            Some("Topic") | Some("Parts") => CompletionKind::Topic,
            _ => CompletionKind::Of,
        },
        max_event_bytes: i("max_event_bytes")? as usize,
        max_future: i("max_future")?,
        clock: match &v["clock"] {
            Value::Null => Clock::None,
            Value::String(_) => Clock::PerInput,
            t => Clock::Fixed(t.as_i64().ok_or("clock")?),
        },
        ops,
        mode: match v["mode"].as_str() {
            Some("plain") => Mode::Plain,
            Some("interleave") => Mode::Interleave,
            _ => Mode::Checkpoint(steps, compact),
        },
        drain_every: i("drain_every")?.max(1) as usize,
        metrics: v["metrics"].as_bool().unwrap_or(false),
        base: i("base")?,
    })
}

/// `case` without the ops marked in `drop` (crash-plan steps moved to the same place among
/// the ops left).
pub fn without(case: &Case, drop: &[bool]) -> Case {
    let mut c = case.clone();
    c.ops = case
        .ops
        .iter()
        .zip(drop)
        .filter(|(_, d)| !**d)
        .map(|(o, _)| o.clone())
        .collect();
    if let Mode::Checkpoint(steps, compact) = &case.mode {
        let moved = |at: usize| at - drop[..at.min(drop.len())].iter().filter(|d| **d).count();
        let steps = steps
            .iter()
            .map(|s| match *s {
                Step::Checkpoint(a, m) => Step::Checkpoint(moved(a), m),
                Step::Abandon(a) => Step::Abandon(moved(a)),
                Step::CrashMid(a, k) => Step::CrashMid(moved(a), k),
                Step::Crash(a) => Step::Crash(moved(a)),
                Step::CheckpointCrash(a) => Step::CheckpointCrash(moved(a)),
            })
            .collect();
        c.mode = Mode::Checkpoint(steps, compact.clone());
    }
    c
}

/// How a case fails: the first words of its error or panic (`None`: it passes).
pub fn failure_kind(case: &Case) -> Option<String> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(case)));
    let msg = match r {
        Ok(Ok(_)) => return None,
        Ok(Err(e)) => e,
        Err(p) => format!("panic: {}", panic_message(&*p)),
    };
    Some(msg.chars().take(40).collect())
}

/// A smaller case failing the same way (greedy removal of op ranges, then single ops).
pub fn minimize(case: &Case) -> Case {
    let Some(kind) = failure_kind(case) else {
        return case.clone();
    };
    let mut cur = case.clone();
    let mut chunk = cur.ops.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        let mut progressed = false;
        while i < cur.ops.len() {
            let mut drop = vec![false; cur.ops.len()];
            for d in drop.iter_mut().skip(i).take(chunk) {
                *d = true;
            }
            let cand = without(&cur, &drop);
            if failure_kind(&cand).as_deref() == Some(kind.as_str()) {
                cur = cand;
                progressed = true;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 && !progressed {
            break;
        }
        chunk = (chunk / 2).max(1);
    }
    cur
}

/// The case's ops as text (inputs lossy UTF-8), for a report.
pub fn describe_ops(case: &Case) -> String {
    let mut s = String::new();
    for (i, op) in case.ops.iter().enumerate() {
        match op {
            Op::Input { part, bytes, now } => {
                let text = String::from_utf8_lossy(bytes);
                s += &format!("{i:>4} p{part} now={now} {}\n", truncate(&text, 400));
            }
            Op::Advance { part, to } => {
                s += &format!("{i:>4} p{part} advance to {}\n", ts::format_ms(*to))
            }
        }
    }
    s
}
