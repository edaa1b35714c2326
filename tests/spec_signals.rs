//! SPEC §5 after-sales signals, with hand-computed expected values.

mod common;

use common::*;
use cxstream::config::{Config, Dur};
use cxstream::ts::DAY;
use serde_json::json;

fn csat(id: &str, time: &str, c: &str, score: u8, ticket: Option<&str>) -> serde_json::Value {
    match ticket {
        Some(tk) => ev(
            id,
            "survey.csat",
            time,
            c,
            json!({"score": score, "ticket": tk}),
        ),
        None => ev(id, "survey.csat", time, c, json!({"score": score})),
    }
}
fn nps(id: &str, time: &str, c: &str, score: u8) -> serde_json::Value {
    ev(id, "survey.nps", time, c, json!({"score": score}))
}

#[test]
fn churn_risk_when_the_score_reaches_the_threshold_with_reasons() {
    let recs = run(&[
        csat("e1", &t("10:00"), "c1", 1, None),
        nps("e2", &t("10:00"), "c1", 3),
    ]);
    let r = of_type(&recs, "churn.risk");
    assert_eq!(r.len(), 1);
    assert_eq!(
        *r[0],
        json!({"type": "churn.risk", "id": format!("churn.risk|c1|{}", t("10:00")),
               "time": t("10:00"), "customer": "c1", "score": 6.0,
               "reasons": ["csat_negative", "nps_detractor"]})
    );
    let w = win(&recs, 60, &t("10:00"), json!({}));
    assert_eq!(w["churn_signals"]["signalled"], 1);
}

#[test]
fn the_score_decays_with_a_half_life_of_14_days() {
    let recs = run(&[
        csat("e1", &at(0, "10:00"), "c1", 1, None),
        // 14 days later: 3 · ½ + 3 = 4.5 < 5, no record...
        nps("e2", &at(14, "10:00"), "c1", 3),
        // ...then a return: 6.5.
        ev(
            "e3",
            "order.returned",
            &at(14, "10:00"),
            "c1",
            json!({"order": "o1"}),
        ),
    ]);
    let r = of_type(&recs, "churn.risk");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["score"], 6.5);
    assert_eq!(
        r[0]["reasons"],
        json!(["nps_detractor", "return", "csat_negative"])
    );
}

#[test]
fn cooldown_suppresses_repeated_churn_risk_records() {
    let recs = run(&[
        csat("e1", &at(0, "10:00"), "c1", 1, None),
        nps("e2", &at(0, "10:00"), "c1", 3),
        ev(
            "e3",
            "order.returned",
            &at(3, "10:00"),
            "c1",
            json!({"order": "o1"}),
        ),
        ev(
            "e4",
            "order.returned",
            &at(8, "10:00"),
            "c1",
            json!({"order": "o2"}),
        ),
    ]);
    let r = of_type(&recs, "churn.risk");
    let times: Vec<_> = r.iter().map(|x| x["time"].clone()).collect();
    assert_eq!(times, vec![json!(at(0, "10:00")), json!(at(8, "10:00"))]);
    // S(d3) = 6·2^(−3/14) + 2; S(d8) = S(d3)·2^(−5/14) + 2
    let s3 = 6.0 * 2f64.powf(-3.0 / 14.0) + 2.0;
    let s8 = s3 * 2f64.powf(-5.0 / 14.0) + 2.0;
    assert!((r[1]["score"].as_f64().unwrap() - s8).abs() < 1e-9);
}

#[test]
fn twelve_positive_experiences_offset_one_negative() {
    let mut evs = vec![csat("n", &t("10:00"), "c1", 1, None)];
    for i in 0..12 {
        evs.push(csat(&format!("p{i}"), &t("10:00"), "c1", 5, None));
    }
    evs.push(nps("d", &t("10:00"), "c1", 3));
    let recs = run(&evs);
    assert!(
        of_type(&recs, "churn.risk").is_empty(),
        "3 − 12·¼ + 3 = 3 < 5"
    );
    // Without the positives the same answers cross the threshold.
    let recs = run(&[
        csat("n", &t("10:00"), "c1", 1, None),
        nps("d", &t("10:00"), "c1", 3),
    ]);
    assert_eq!(of_type(&recs, "churn.risk").len(), 1);
}

#[test]
fn sla_breaches_feed_the_churn_score_of_the_tickets_customer() {
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "urgent", "billing", "chat"),
        csat("e2", &t("14:30"), "c1", 1, None),
    ]);
    let r = of_type(&recs, "churn.risk");
    assert_eq!(r.len(), 1, "{recs:#?}");
    let hl = 14.0 * 24.0;
    let s_breaches = 2.0 * 2f64.powf(-3.75 / hl) + 2.0; // 10:15 and 14:00
    let s = s_breaches * 2f64.powf(-0.5 / hl) + 3.0;
    assert!((r[0]["score"].as_f64().unwrap() - s).abs() < 1e-9);
    assert_eq!(r[0]["reasons"], json!(["sla_breach", "csat_negative"]));
}

#[test]
fn repeat_contact_is_the_third_ticket_within_7_days() {
    let mut evs = vec![];
    for d in 0..3 {
        let tk = format!("t{d}");
        evs.push(created(
            &format!("c{d}"),
            &at(d, "10:00"),
            "c1",
            &tk,
            "low",
            "b",
            "email",
        ));
        if d == 2 {
            // 2 (repeat_contact) + 3 (csat_negative) = 5 ≥ threshold
            evs.push(csat("e9", &at(2, "10:00"), "c1", 1, None));
        }
        evs.push(solved(&format!("s{d}"), &at(d, "10:01"), "c1", &tk));
    }
    let recs = run(&evs);
    let r = of_type(&recs, "churn.risk");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["reasons"], json!(["csat_negative", "repeat_contact"]));
}

#[test]
fn service_recovery_answered_in_time_and_overdue() {
    let recs = run(&[
        nps("e1", &at(0, "10:00"), "c1", 2),
        nps("e2", &at(0, "10:00"), "c2", 0),
        ev(
            "e3",
            "customer.contacted",
            &at(0, "15:00"),
            "c1",
            json!({"agent": "a1", "channel": "phone"}),
        ),
        // A second trigger while c1's case was open would not open another; this one is after.
        csat("e4", &at(0, "16:00"), "c1", 2, Some("t-x")),
        // The watermark jumps past c2's due (day 1 10:00) and c1's second due.
        nps("e5", &at(3, "10:00"), "c9", 9),
    ]);
    let needed = of_type(&recs, "recovery.needed");
    assert_eq!(needed.len(), 3);
    assert_eq!(
        *needed[2],
        json!({"type": "recovery.needed", "id": format!("recovery.needed|c1|{}", at(0, "16:00")),
               "time": at(0, "16:00"), "customer": "c1",
               "due": at(1, "16:00"), "trigger": "csat", "score": 2, "ticket": "t-x"})
    );
    let overdue = of_type(&recs, "recovery.overdue");
    let who: Vec<_> = overdue
        .iter()
        .map(|r| (r["customer"].clone(), r["time"].clone()))
        .collect();
    assert_eq!(
        who,
        vec![
            (json!("c2"), json!(at(1, "10:00"))),
            (json!("c1"), json!(at(1, "16:00")))
        ]
    );
    let w = win(&recs, 3600, &at(0, "15:00"), json!({}));
    assert_eq!(w["recovery"]["answered"], 1);
    assert_eq!(w["recovery"]["answer_seconds"]["min"], 5.0 * 3600.0);
    assert_eq!(
        win(&recs, 60, &at(1, "10:00"), json!({}))["recovery"]["overdue"],
        1
    );
    assert_eq!(total(&recs, 3600, &["recovery", "opened"]), 3.0);
}

#[test]
fn a_public_agent_reply_answers_a_recovery_case() {
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "low", "b", "email"),
        csat("e2", &t("10:05"), "c1", 1, Some("t1")),
        ev(
            "e3",
            "ticket.message",
            &t("10:06"),
            "c1",
            json!({"ticket": "t1", "author": "agent", "public": false}),
        ),
        reply("e4", &t("11:05"), "c1", "t1"),
    ]);
    assert_eq!(total(&recs, 3600, &["recovery", "answered"]), 1.0);
    assert!(of_type(&recs, "recovery.overdue").is_empty());
}

#[test]
fn repurchase_converted_or_expired_by_csat_band() {
    let mut evs = vec![];
    let who = [
        ("c1", Some(5)),
        ("c2", Some(3)),
        ("c3", None),
        ("c4", Some(1)),
    ];
    for (c, _) in who {
        let tk = format!("t-{c}");
        evs.push(created(
            &format!("{c}-cr"),
            &at(0, "10:00"),
            c,
            &tk,
            "low",
            "b",
            "email",
        ));
        evs.push(solved(&format!("{c}-so"), &at(0, "10:00"), c, &tk));
    }
    // c3 orders at the very time of its solve: not strictly after, so not a conversion.
    evs.push(ev(
        "o0",
        "order.placed",
        &at(0, "10:00"),
        "c3",
        json!({"order": "o0", "amount": 5}),
    ));
    for (c, score) in who {
        if let Some(s) = score {
            evs.push(csat(
                &format!("{c}-cs"),
                &at(0, "11:00"),
                c,
                s,
                Some(&format!("t-{c}")),
            ));
        }
    }

    evs.push(ev(
        "o1",
        "order.placed",
        &at(5, "10:00"),
        "c1",
        json!({"order": "o1", "amount": 10}),
    ));
    evs.push(ev(
        "o2",
        "order.placed",
        &at(31, "10:00"),
        "c4",
        json!({"order": "o2", "amount": 10}),
    ));
    let recs = run(&evs);
    let sum = |band: &str, k: &str| total(&recs, 3600, &["repurchase", band, k]);
    assert_eq!(sum("satisfied", "converted"), 1.0);
    assert_eq!(sum("neutral", "expired"), 1.0);
    assert_eq!(sum("unrated", "expired"), 1.0);
    assert_eq!(sum("dissatisfied", "expired"), 1.0);
    assert_eq!(sum("dissatisfied", "converted"), 0.0);
    let w = win(&recs, 60, &at(30, "10:00"), json!({}));
    assert_eq!(
        w["repurchase"]["neutral"],
        json!({"converted": 0, "expired": 1})
    );
}

#[test]
fn churn_signal_precision_and_recall_counts() {
    let recs = run(&[
        csat("a1", &at(0, "10:00"), "c1", 1, None),
        nps("a2", &at(0, "10:00"), "c1", 3),
        csat("b1", &at(0, "10:00"), "c2", 1, None),
        nps("b2", &at(0, "10:00"), "c2", 3),
        ev("x1", "customer.churned", &at(5, "10:00"), "c3", json!({})),
        ev(
            "x2",
            "customer.churned",
            &at(10, "10:00"),
            "c1",
            json!({"reason": "price"}),
        ),
        nps("z", &at(91, "10:00"), "c9", 9),
    ]);
    let c = |k: &str| total(&recs, 3600, &["churn_signals", k]);
    assert_eq!(
        (
            c("signalled"),
            c("confirmed"),
            c("expired_without_churn"),
            c("churned"),
            c("churned_after_signal")
        ),
        (2.0, 1.0, 1.0, 2.0, 1.0)
    );
    assert_eq!(
        win(&recs, 60, &at(90, "10:00"), json!({}))["churn_signals"]["expired_without_churn"],
        1
    );
}

#[test]
fn idle_customers_are_evicted_after_retention() {
    let mut cfg = Config::default();
    cfg.engine.customer_retention = Dur(DAY);
    let evs = [
        csat("e1", &at(0, "10:00"), "c1", 1, None),
        nps("e2", &at(2, "10:00"), "c9", 9),
        nps("e3", &at(3, "10:00"), "c1", 3),
    ];
    let recs = run_with(cfg, &evs);
    assert!(
        of_type(&recs, "churn.risk").is_empty(),
        "state was evicted: S = 3"
    );
    // With the default 90-day retention the score survives: 3·2^(−3/14) + 3 ≥ 5.
    assert_eq!(of_type(&run(&evs), "churn.risk").len(), 1);
}

#[test]
fn late_inputs_are_not_applied_to_after_sales_logic() {
    let recs = run(&[
        nps("e1", &t("10:10"), "c9", 9),
        // late: 10:00 < watermark 10:09:30
        nps("e2", &t("10:00"), "c1", 0),
    ]);
    assert!(of_type(&recs, "recovery.needed").is_empty());
    // ...but still counted in the windows that are open (the 1h window).
    assert_eq!(
        win(&recs, 3600, &t("10:00"), json!({}))["nps"]["responses"],
        2
    );
}
