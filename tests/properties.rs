//! Property tests: batching independence, aggregate merge laws, churn-score floor.

mod common;

use common::*;
use cxstream::config::Config;
use cxstream::engine::RiskScore;
use cxstream::event::SourcePos;
use cxstream::kpi::{Band, Kpi, Signal, SlaKind};
use cxstream::window::Aggregate;
use proptest::prelude::*;
use serde_json::json;

/// A small random but valid event stream over a few customers and tickets, in time order.
fn stream() -> impl Strategy<Value = Vec<serde_json::Value>> {
    prop::collection::vec((0u8..12, 0u32..4, 0u32..6, 1i64..900, 0u8..11), 1..80).prop_map(|steps| {
        let mut evs = vec![];
        let mut now = cxstream::ts::parse_rfc3339_ms("2026-11-22T10:00:00Z").unwrap();
        for (i, (kind, cust, tk, dt, score)) in steps.into_iter().enumerate() {
            now += dt * 1000;
            let time = cxstream::ts::format_ms(now);
            let c = format!("c{cust}");
            let ticket = format!("t{cust}-{tk}");
            let id = format!("e{i}");
            let prio = ["urgent", "high", "normal", "low"][(tk % 4) as usize];
            let e = match kind {
                0 | 1 => created(&id, &time, &c, &ticket, prio, ["a", "b"][(tk % 2) as usize], "chat"),
                2 | 3 => reply(&id, &time, &c, &ticket),
                4 => solved(&id, &time, &c, &ticket),
                5 => ev(&id, "ticket.reopened", &time, &c, json!({"ticket": ticket})),
                6 => ev(&id, "ticket.escalated", &time, &c, json!({"ticket": ticket, "team": "x"})),
                7 => ev(&id, "survey.csat", &time, &c, json!({"score": 1 + score % 5, "ticket": ticket})),
                8 => ev(&id, "survey.nps", &time, &c, json!({"score": score})),
                9 => ev(&id, "order.placed", &time, &c, json!({"order": id, "amount": 10})),
                10 => ev(&id, "customer.contacted", &time, &c, json!({"agent": "a", "channel": "phone"})),
                _ => ev(&id, "contact.handled", &time, &c,
                        json!({"agent": "a", "channel": "phone", "handle_seconds": dt, "ticket": ticket})),
            };
            evs.push(e);
        }
        evs
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The output does not depend on how the input is split into batches.
    #[test]
    fn output_is_independent_of_batch_boundaries(evs in stream(), cuts in prop::collection::vec(0usize..80, 0..6)) {
        let whole = run(&evs);
        let mut e = engine_with(Config::default());
        let mut out = vec![];
        for (i, v) in evs.iter().enumerate() {
            cxstream::source::feed(&mut e,0, v.to_string().as_bytes(), || SourcePos::File { file: "input".into(), line: i as u64 + 1 });
            if cuts.contains(&i) {
                out.extend(e.drain().map(|r| r.to_json()));
            }
        }
        e.finish();
        out.extend(e.drain().map(|r| r.to_json()));
        prop_assert_eq!(whole.len(), out.len());
        for (i, (a, b)) in whole.iter().zip(&out).enumerate() {
            prop_assert_eq!(a, b, "record {}", i);
        }
    }

    /// Merging two aggregates equals aggregating the union.
    #[test]
    fn merging_aggregates_equals_aggregating_the_union(
        a in prop::collection::vec((0u8..14, 0i64..10_000_000, 0u8..11), 0..60),
        b in prop::collection::vec((0u8..14, 0i64..10_000_000, 0u8..11), 0..60),
    ) {
        let kpi = |(k, v, s): (u8, i64, u8)| match k {
            0 => Kpi::Created,
            1 => Kpi::FirstResponse(v),
            2 => Kpi::Solved { resolution: v, first: s % 2 == 0, fcr: s % 3 == 0 },
            3 => Kpi::Handle(v as f64 / 1000.0),
            4 => Kpi::Csat(1 + s % 5),
            5 => Kpi::Nps(s),
            6 => Kpi::Ces(1 + s % 7),
            7 => Kpi::Sla { kind: if s % 2 == 0 { SlaKind::FirstResponse } else { SlaKind::Resolution }, breached: s % 3 == 0 },
            8 => Kpi::OrderPlaced(v as f64 / 100.0),
            9 => Kpi::RecoveryAnswered(v),
            10 => Kpi::Repurchase { band: Band::ALL[(s % 4) as usize], converted: s % 2 == 0 },
            11 => Kpi::ChurnOutcome { after_signal: s % 2 == 0 },
            12 => Kpi::Escalated,
            _ => Kpi::Reopened,
        };
        let mut union = Aggregate::default();
        let mut left = Aggregate::default();
        let mut right = Aggregate::default();
        for x in &a { union.apply(&kpi(*x), 0); left.apply(&kpi(*x), 0); }
        for x in &b { union.apply(&kpi(*x), 1); right.apply(&kpi(*x), 1); }
        left.merge(&right);
        let render = |g: &Aggregate| {
            let mut m = serde_json::Map::new();
            cxstream::window::kpi_fields(g, &mut m, true);
            serde_json::Value::Object(m)
        };
        let (u, l) = (render(&union), render(&left));
        // Exact for everything but float sums, whose order of addition differs.
        for key in ["tickets", "csat", "nps", "ces", "sla", "customers", "churn_signals", "repurchase"] {
            prop_assert_eq!(&u[key], &l[key], "{}", key);
        }
        for key in ["first_response_seconds", "resolution_seconds", "handle_seconds"] {
            for f in ["count", "min", "max", "p50", "p90", "p99"] {
                prop_assert_eq!(&u[key][f], &l[key][f], "{}.{}", key, f);
            }
            // The encodings may differ in the auto-resized range; the recorded values may not.
            let dist = |v: &serde_json::Value| v.as_str().map(|s| {
                let h = cxstream::window::hdr::decode_hdr(s).expect("valid hdr");
                h.iter_recorded().map(|x| (x.value_iterated_to(), x.count_at_value())).collect::<Vec<_>>()
            });
            prop_assert_eq!(dist(&u[key]["hdr"]), dist(&l[key]["hdr"]), "{}.hdr", key);
            if let (Some(x), Some(y)) = (u[key]["mean"].as_f64(), l[key]["mean"].as_f64()) {
                prop_assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0));
            }
        }
        let rev = |v: &serde_json::Value| v["orders"]["revenue"].as_f64().unwrap();
        prop_assert!((rev(&u) - rev(&l)).abs() < 1e-6);
        prop_assert_eq!(&union.partitions, &left.partitions);
    }

    /// The churn-risk score never goes below zero.
    #[test]
    fn churn_score_never_goes_below_zero(signals in prop::collection::vec((0usize..10, 0i64..(40 * 86_400_000)), 0..100)) {
        let w = cxstream::config::Weights::default();
        let mut r = RiskScore::default();
        let mut t = 0;
        for (s, dt) in signals {
            t += dt;
            let sig = Signal::ALL[s];
            r.apply(sig, sig.weight(&w), t, 14 * 86_400_000);
            prop_assert!(r.score >= 0.0);
            prop_assert!(r.reasons().iter().all(|n| *n != "positive"));
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut e = engine_with(Config::default());
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for i in 0..20_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 200) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|j| (x.rotate_left(j as u32 % 64) & 0xff) as u8)
            .collect();
        cxstream::source::feed(&mut e, 0, &bytes, || SourcePos::File {
            file: "fuzz".into(),
            line: i,
        });
    }
    e.finish();
    assert!(e.stats().invalid.iter().sum::<u64>() > 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn decoding_arbitrary_json_like_text_never_panics(s in "\\{(\"[a-z_]{1,8}\":(\"[ -~]{0,12}\"|[0-9.e-]{1,6}|null|true|\\[\\]),?){0,8}\\}") {
        let _ = cxstream::event::decode(s.as_bytes());
    }
}
