//! One test per SPEC §1–§4 rule, named after it.

mod common;

use common::*;
use cxstream::config::Config;
use cxstream::event::SourcePos;
use serde_json::json;

const M: i64 = 60;
const H: i64 = 3600;

#[test]
fn tickets_created_counted_in_every_group_of_the_ticket() {
    let recs = run(&[created(
        "e1",
        &t("10:00:05"),
        "c1",
        "t1",
        "high",
        "billing",
        "chat",
    )]);
    for g in [
        json!({}),
        json!({"team": "billing"}),
        json!({"channel": "chat"}),
        json!({"priority": "high"}),
    ] {
        assert_eq!(
            win(&recs, M, &t("10:00"), g.clone())["tickets"]["created"],
            1,
            "{g}"
        );
        assert_eq!(win(&recs, H, &t("10:00"), g)["tickets"]["created"], 1);
    }
}

#[test]
fn internal_notes_and_system_messages_are_not_a_first_response() {
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "normal", "billing", "email"),
        ev(
            "e2",
            "ticket.message",
            &t("10:01"),
            "c1",
            json!({"ticket": "t1", "author": "agent", "public": false}),
        ),
        ev(
            "e3",
            "ticket.message",
            &t("10:02"),
            "c1",
            json!({"ticket": "t1", "author": "system"}),
        ),
        ev(
            "e4",
            "ticket.message",
            &t("10:03"),
            "c1",
            json!({"ticket": "t1", "author": "customer"}),
        ),
        reply("e5", &t("10:10"), "c1", "t1"),
    ]);
    let h = win(&recs, H, &t("10:00"), json!({}));
    assert_eq!(h["first_response_seconds"]["count"], 1);
    assert_eq!(h["first_response_seconds"]["min"], 600.0);
    assert_eq!(
        h["sla"]["first_response"],
        json!({"achieved": 1, "breached": 0})
    );
}

#[test]
fn a_solve_stops_the_first_response_clock() {
    // urgent: first response due 10:15; solved at 10:05 without a public reply → achieved.
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "urgent", "billing", "email"),
        solved("e2", &t("10:05"), "c1", "t1"),
        ev("e3", "survey.nps", &t("12:00"), "c9", json!({"score": 8})),
    ]);
    let h = win(&recs, H, &t("10:00"), json!({}));
    assert_eq!(
        h["sla"]["first_response"],
        json!({"achieved": 1, "breached": 0})
    );
    assert_eq!(
        h["sla"]["resolution"],
        json!({"achieved": 1, "breached": 0})
    );
    assert_eq!(h["first_response_seconds"]["count"], 0);
    assert!(of_type(&recs, "sla.breached").is_empty());
}

#[test]
fn first_response_time_is_measured_even_after_the_clock_stopped() {
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "urgent", "billing", "email"),
        solved("e2", &t("10:05"), "c1", "t1"),
        reply("e3", &t("10:20"), "c1", "t1"),
    ]);
    let h = win(&recs, H, &t("10:00"), json!({}));
    assert_eq!(h["first_response_seconds"]["count"], 1);
    assert_eq!(h["first_response_seconds"]["max"], 1200.0);
    assert_eq!(h["sla"]["first_response"]["achieved"], 1);
    assert_eq!(h["sla"]["first_response"]["breached"], 0);
}

#[test]
fn fcr_only_at_first_solve() {
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "normal", "billing", "email"),
        reply("e2", &t("10:10"), "c1", "t1"),
        solved("e3", &t("10:20"), "c1", "t1"),
        ev(
            "e4",
            "ticket.reopened",
            &t("10:30"),
            "c1",
            json!({"ticket": "t1"}),
        ),
        solved("e5", &t("10:40"), "c1", "t1"),
    ]);
    let h = win(&recs, H, &t("10:00"), json!({}));
    assert_eq!(
        h["tickets"],
        json!({"created": 1, "solved": 2, "first_solved": 1, "fcr": 1, "reopened": 1, "escalated": 0})
    );
    assert_eq!(h["resolution_seconds"]["count"], 2);
    assert_eq!(h["resolution_seconds"]["min"], 1200.0);
    assert_eq!(h["resolution_seconds"]["max"], 2400.0);
}

#[test]
fn fcr_requires_at_most_one_public_agent_message() {
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "normal", "billing", "email"),
        reply("e2", &t("10:10"), "c1", "t1"),
        ev(
            "e3",
            "ticket.message",
            &t("10:11"),
            "c1",
            json!({"ticket": "t1", "author": "agent", "public": false}),
        ),
        reply("e4", &t("10:12"), "c1", "t1"),
        solved("e5", &t("10:20"), "c1", "t1"),
        created("e6", &t("10:00"), "c2", "t2", "normal", "billing", "email"),
        solved("e7", &t("10:20"), "c2", "t2"),
    ]);
    let h = win(&recs, H, &t("10:00"), json!({}));
    assert_eq!(h["tickets"]["first_solved"], 2);
    assert_eq!(h["tickets"]["fcr"], 1, "zero messages is FCR, two is not");
}

#[test]
fn exactly_one_sla_outcome_per_ticket_and_kind() {
    // urgent first response due 10:15; reply at 11:00 after the breach was detected.
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "urgent", "billing", "email"),
        ev("e2", "survey.nps", &t("10:30"), "c9", json!({"score": 8})),
        reply("e3", &t("11:00"), "c1", "t1"),
        solved("e4", &t("11:10"), "c1", "t1"),
        reply("e5", &t("11:20"), "c1", "t1"),
        solved("e6", &t("11:30"), "c1", "t1"),
    ]);
    let fr: i64 = ["achieved", "breached"]
        .iter()
        .map(|k| total(&recs, H, &["sla", "first_response", k]) as i64)
        .sum();
    let res: i64 = ["achieved", "breached"]
        .iter()
        .map(|k| total(&recs, H, &["sla", "resolution", k]) as i64)
        .sum();
    assert_eq!((fr, res), (1, 1));
    assert_eq!(total(&recs, H, &["sla", "first_response", "breached"]), 1.0);
    assert_eq!(total(&recs, H, &["sla", "resolution", "achieved"]), 1.0);
}

#[test]
fn breach_is_reported_before_any_reply_arrives() {
    let mut e = engine_with(Config::default());
    let pos = || SourcePos::File {
        file: "x".into(),
        line: 1,
    };
    let line = |v: serde_json::Value| v.to_string();
    cxstream::source::feed(
        &mut e,
        0,
        line(created(
            "e1",
            &t("10:00"),
            "c1",
            "t1",
            "urgent",
            "billing",
            "chat",
        ))
        .as_bytes(),
        pos,
    );
    assert!(e.drain().all(|r| r.type_name() != "sla.breached"));
    // Another customer's event at 10:15:31 moves the watermark to 10:15:01 > due 10:15.
    cxstream::source::feed(
        &mut e,
        0,
        line(ev(
            "e2",
            "survey.nps",
            &t("10:15:31"),
            "c2",
            json!({"score": 9}),
        ))
        .as_bytes(),
        pos,
    );
    let recs: Vec<_> = e.drain().map(|r| r.to_json()).collect();
    let b = recs
        .iter()
        .find(|r| r["type"] == "sla.breached")
        .expect("breach reported");
    assert_eq!(
        *b,
        json!({"type": "sla.breached", "id": format!("sla.breached|c1|t1|first_response|{}", t("10:15")),
               "time": t("10:15"), "customer": "c1", "ticket": "t1",
               "sla": "first_response", "due": t("10:15"), "priority": "urgent",
               "team": "billing", "channel": "chat"})
    );
}

#[test]
fn watermark_at_due_does_not_yet_breach() {
    // Due 10:15; an event at 10:15:30 puts the watermark exactly at the due: not past it.
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "urgent", "billing", "chat"),
        ev(
            "e2",
            "survey.nps",
            &t("10:15:30"),
            "c2",
            json!({"score": 9}),
        ),
        reply("e3", &t("10:15:10"), "c1", "t1"),
    ]);
    // The reply came after the due but before detection: still a breach, at the due.
    assert_eq!(of_type(&recs, "sla.breached").len(), 1);
    let w = win(&recs, M, &t("10:15"), json!({}));
    assert_eq!(
        w["sla"]["first_response"],
        json!({"achieved": 0, "breached": 1})
    );
}

#[test]
fn watermark_jump_past_due_and_window_end_counts_the_breach_in_its_window() {
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "urgent", "billing", "chat"),
        ev("e2", "survey.nps", &t("13:00"), "c2", json!({"score": 9})),
    ]);
    let w = win(&recs, M, &t("10:15"), json!({"team": "billing"}));
    assert_eq!(w["sla"]["first_response"]["breached"], 1);
    assert_eq!(w["partial"], false);
    let h = win(&recs, H, &t("10:00"), json!({"priority": "urgent"}));
    assert_eq!(h["sla"]["first_response"]["breached"], 1);
    // The resolution due (14:00) is after the final watermark (13:00): no outcome yet.
    assert_eq!(total(&recs, H, &["sla", "resolution", "breached"]), 0.0);
    assert_eq!(of_type(&recs, "sla.breached").len(), 1);
}

#[test]
fn resolution_sla_breaches_at_its_due() {
    // high: resolution due 8 h after creation.
    let recs = run(&[
        created("e1", &t("08:00"), "c1", "t1", "high", "tech", "phone"),
        reply("e2", &t("08:10"), "c1", "t1"),
        solved("e3", &t("17:00"), "c1", "t1"),
    ]);
    let w = win(&recs, M, &t("16:00"), json!({"team": "tech"}));
    assert_eq!(
        w["sla"]["resolution"],
        json!({"achieved": 0, "breached": 1})
    );
    let b = of_type(&recs, "sla.breached");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["sla"], "resolution");
    assert_eq!(b[0]["due"], t("16:00"));
}

#[test]
fn escalation_is_counted_under_the_old_team() {
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "normal", "billing", "email"),
        ev(
            "e2",
            "ticket.escalated",
            &t("10:05"),
            "c1",
            json!({"ticket": "t1", "team": "tier2"}),
        ),
        reply("e3", &t("10:10"), "c1", "t1"),
    ]);
    assert_eq!(
        win(&recs, H, &t("10:00"), json!({"team": "billing"}))["tickets"]["escalated"],
        1
    );
    assert!(
        window(&recs, H, &t("10:00"), json!({"team": "tier2"})).unwrap()["tickets"]["escalated"]
            == 0
    );
    // Measurements after the escalation take the new team.
    assert_eq!(
        win(&recs, H, &t("10:00"), json!({"team": "tier2"}))["first_response_seconds"]["count"],
        1
    );
}

#[test]
fn a_handled_contact_has_its_own_channel_and_its_tickets_other_dimensions() {
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "high", "billing", "email"),
        ev(
            "e2",
            "contact.handled",
            &t("10:05"),
            "c1",
            json!({"agent": "a1", "channel": "phone", "handle_seconds": 300.5, "ticket": "t1"}),
        ),
    ]);
    let g = |v| win(&recs, H, &t("10:00"), v)["handle_seconds"]["count"].clone();
    assert_eq!(g(json!({"channel": "phone"})), 1);
    assert_eq!(g(json!({"channel": "email"})), 0);
    assert_eq!(g(json!({"team": "billing"})), 1);
    assert_eq!(g(json!({"priority": "high"})), 1);
    let all = win(&recs, H, &t("10:00"), json!({}));
    assert_eq!(all["handle_seconds"]["mean"], 300.5);
}

#[test]
fn a_handled_contact_without_known_ticket_is_only_in_all_and_channel_groups() {
    let recs = run(&[ev(
        "e1",
        "contact.handled",
        &t("10:05"),
        "c1",
        json!({"agent": "a1", "channel": "chat", "handle_seconds": 60, "ticket": "nope"}),
    )]);
    let groups: Vec<_> = of_type(&recs, "kpi.window")
        .iter()
        .map(|r| r["group"].clone())
        .collect();
    assert_eq!(
        groups,
        vec![
            json!({}),
            json!({"channel": "chat"}),
            json!({}),
            json!({"channel": "chat"})
        ]
    );
}

#[test]
fn surveys_without_a_known_ticket_appear_only_in_the_all_group() {
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "normal", "billing", "email"),
        ev(
            "e2",
            "survey.csat",
            &t("10:10"),
            "c1",
            json!({"score": 5, "ticket": "t-unknown"}),
        ),
        ev(
            "e3",
            "survey.csat",
            &t("10:11"),
            "c2",
            json!({"score": 1, "ticket": "t1"}),
        ), // other customer's ticket
        ev("e4", "survey.nps", &t("10:12"), "c1", json!({"score": 10})),
        ev(
            "e5",
            "survey.csat",
            &t("10:13"),
            "c1",
            json!({"score": 4, "ticket": "t1"}),
        ),
        ev(
            "e6",
            "survey.ces",
            &t("10:14"),
            "c1",
            json!({"score": 6, "ticket": "t1"}),
        ),
    ]);
    let all = win(&recs, H, &t("10:00"), json!({}));
    assert_eq!(all["csat"]["responses"], 3);
    assert_eq!(all["csat"]["satisfied"], 2);
    assert_eq!(all["csat"]["mean"], 10.0 / 3.0);
    let team = win(&recs, H, &t("10:00"), json!({"team": "billing"}));
    assert_eq!(
        team["csat"],
        json!({"responses": 1, "satisfied": 1, "ratio": 1.0, "mean": 4.0})
    );
    assert_eq!(team["nps"]["responses"], 0);
    assert_eq!(team["ces"], json!({"responses": 1, "mean": 6.0}));
}

#[test]
fn nps_is_100_times_promoters_minus_detractors_over_responses() {
    let recs = run(&[
        ev("e1", "survey.nps", &t("10:00"), "c1", json!({"score": 10})),
        ev("e2", "survey.nps", &t("10:00"), "c2", json!({"score": 9})),
        ev("e3", "survey.nps", &t("10:00"), "c3", json!({"score": 6})),
        ev("e4", "survey.nps", &t("10:00"), "c4", json!({"score": 7})),
    ]);
    let n = &win(&recs, M, &t("10:00"), json!({}))["nps"];
    assert_eq!(
        *n,
        json!({"responses": 4, "promoters": 2, "passives": 1, "detractors": 1, "score": 25.0})
    );
}

#[test]
fn orders_returns_warranty_and_churn_are_counted() {
    let recs = run(&[
        ev(
            "e1",
            "order.placed",
            &t("10:00"),
            "c1",
            json!({"order": "o1", "amount": 100.25}),
        ),
        ev(
            "e2",
            "order.placed",
            &t("10:00"),
            "c1",
            json!({"order": "o2", "amount": 49}),
        ),
        ev(
            "e3",
            "order.returned",
            &t("10:00"),
            "c1",
            json!({"order": "o1"}),
        ),
        ev(
            "e4",
            "warranty.claimed",
            &t("10:00"),
            "c1",
            json!({"product": "kettle"}),
        ),
        ev(
            "e5",
            "customer.churned",
            &t("10:00"),
            "c2",
            json!({"reason": null}),
        ),
    ]);
    let w = win(&recs, M, &t("10:00"), json!({}));
    assert_eq!(
        w["orders"],
        json!({"placed": 2, "revenue": 149.25, "returned": 1, "warranty_claims": 1})
    );
    assert_eq!(w["customers"], json!({"churned": 1}));
    assert_eq!(
        of_type(&recs, "kpi.window").len(),
        2,
        "only the {{}} group of 1m and 1h"
    );
}

#[test]
fn duplicates_change_nothing() {
    let a = created("e1", &t("10:00"), "c1", "t1", "normal", "billing", "email");
    let recs = run(&[
        a.clone(),
        a.clone(),
        ev("e1", "survey.nps", &t("10:01"), "c1", json!({"score": 1})),
    ]);
    assert_eq!(
        win(&recs, H, &t("10:00"), json!({}))["tickets"]["created"],
        1
    );
    assert_eq!(win(&recs, H, &t("10:00"), json!({}))["nps"]["responses"], 0);
    assert!(of_type(&recs, "deadletter").is_empty());
}

#[test]
fn ids_past_a_short_dedup_horizon_are_forgotten_within_a_quarter_of_it() {
    // Retention is swept every quarter of the shortest horizon (at most hourly), so with a
    // 2-minute dedup horizon the memory holds about 3 minutes of ids, not an hour's.
    let mut cfg = Config::default();
    cfg.engine.dedup_horizon = cxstream::config::Dur(2 * 60 * 1000);
    let mut e = engine_with(cfg);
    let text: String = (0..60)
        .map(|i| {
            let time = format!("2026-11-02T10:{:02}:{:02}Z", i / 6, (i % 6) * 10);
            format!(
                "{}\n",
                ev(
                    &format!("e{i}"),
                    "survey.nps",
                    &time,
                    &format!("c{i}"),
                    json!({"score": 9})
                )
            )
        })
        .collect();
    let out = cxstream::replay::replay_to_string(&mut e, text.as_bytes());
    assert!(out.contains("kpi.window"));
    // 10 s apart: horizon 2 min + lateness 30 s + up to a 30 s sweep period = at most 19 ids.
    let held = e.event_ids_held();
    assert!(
        held <= 19,
        "{held} ids held after 10 minutes with a 2-minute horizon"
    );
    assert!(
        held >= 13,
        "{held}: ids within the horizon must be remembered"
    );
}

/// `n` NPS answers of distinct customers, `step_s` seconds apart from 2026-11-02T00:00Z.
fn nps_every(n: u64, step_s: u64) -> String {
    let start = cxstream::ts::parse_rfc3339_ms("2026-11-02T00:00:00Z").unwrap();
    (0..n)
        .map(|i| {
            let time = cxstream::ts::format_ms(start + (i * step_s * 1000) as i64);
            let line = ev(
                &format!("e{i}"),
                "survey.nps",
                &time,
                &format!("c{i}"),
                json!({"score": 9}),
            );
            format!("{line}\n")
        })
        .collect()
}

#[test]
fn with_few_events_ids_past_the_horizon_go_within_a_quarter_of_it() {
    // Default 24 h horizon, one event an hour for 3 days: too few events for the hourly
    // sweep to wait for (an eighth of the state), so it runs every 6 h (a quarter of 24 h).
    let mut e = engine_with(Config::default());
    let out = cxstream::replay::replay_to_string(&mut e, nps_every(72, 3600).as_bytes());
    assert!(out.contains("kpi.window"));
    let held = e.event_ids_held();
    assert!((24..=31).contains(&held), "{held} ids held");
}

#[test]
fn with_many_events_ids_past_the_horizon_stay_within_an_eighth_of_the_state() {
    // One event every 10 s for 30 h with the default 24 h horizon: a sweep runs once an
    // eighth as many events as the state holds have come (about 3 h of them), so the ids
    // held stay within 24 h + 3 h of events (+ the 30 s of lateness), not the 30 h.
    let mut e = engine_with(Config::default());
    let out = cxstream::replay::replay_to_string(&mut e, nps_every(30 * 360, 10).as_bytes());
    assert!(out.contains("kpi.window"));
    let held = e.event_ids_held();
    assert!((24 * 360..=27 * 360 + 3).contains(&held), "{held} ids held");
}

#[test]
fn orphans_are_dead_lettered_as_unknown_ticket_and_change_nothing() {
    let recs = run(&[
        reply("e1", &t("10:00"), "c1", "ghost"),
        solved("e2", &t("10:01"), "c1", "ghost"),
        ev(
            "e3",
            "ticket.reopened",
            &t("10:02"),
            "c1",
            json!({"ticket": "ghost"}),
        ),
        ev(
            "e4",
            "ticket.escalated",
            &t("10:03"),
            "c1",
            json!({"ticket": "ghost"}),
        ),
    ]);
    let dl = of_type(&recs, "deadletter");
    assert_eq!(dl.len(), 4);
    for (i, d) in dl.iter().enumerate() {
        assert_eq!(d["reason"], "unknown ticket");
        assert_eq!(d["source"], json!({"file": "input", "line": i + 1}));
        let payload: serde_json::Value =
            serde_json::from_str(d["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload["id"], format!("e{}", i + 1));
    }
    assert!(
        of_type(&recs, "kpi.window").is_empty(),
        "no state, no watermark, no windows"
    );
}

#[test]
fn ticket_exists_is_dead_lettered_and_changes_nothing() {
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "normal", "billing", "email"),
        created("e2", &t("10:01"), "c1", "t1", "urgent", "vip", "chat"),
    ]);
    let dl = of_type(&recs, "deadletter");
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0]["reason"], "ticket exists");
    assert_eq!(
        win(&recs, H, &t("10:00"), json!({}))["tickets"]["created"],
        1
    );
    assert!(window(&recs, H, &t("10:00"), json!({"team": "vip"})).is_none());
}

#[test]
fn every_invalid_input_reaches_the_dead_letter_with_reason_and_position() {
    let text = "not json\n{\"id\":\"e1\",\"type\":\"survey.csat\",\"time\":\"2026-11-22T10:00:00Z\",\"customer\":\"c\",\"score\":4.0}\n{\"id\":\"e2\",\"type\":\"survey.csat\",\"time\":\"2026-11-22T10:00:00\",\"customer\":\"c\",\"score\":4}\n{\"id\":\"e3\",\"type\":\"nope\",\"time\":\"2026-11-22T10:00:00Z\",\"customer\":\"c\"}\n";
    let recs = run_text(Config::default(), text);
    let dl = of_type(&recs, "deadletter");
    assert_eq!(dl.len(), 4);
    // SPEC §1: a stable reason, and the error in words naming the field.
    assert_eq!(dl[1]["reason"], "wrong_type");
    assert!(dl[1]["error"].as_str().unwrap().contains("score"));
    assert_eq!(dl[2]["reason"], "bad_timestamp");
    assert!(dl[2]["error"].as_str().unwrap().contains("time"));
    assert_eq!(dl[3]["reason"], "unknown_type");
    assert!(dl[3]["error"]
        .as_str()
        .unwrap()
        .contains("unknown event type"));
    assert_eq!(dl[3]["id"], "deadletter|input|4");
    assert_eq!(dl[3]["source"]["line"], 4);
    assert_eq!(dl[0]["payload"], "not json");
}

#[test]
fn late_events_update_state_but_are_kept_out_of_closed_windows() {
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "low", "billing", "email"),
        ev("e2", "survey.nps", &t("10:05"), "c2", json!({"score": 9})),
        // Late: 10:01 < watermark 10:04:30. Its 1m window [10:01, 10:02) closed; its 1h did not.
        reply("e3", &t("10:01"), "c1", "t1"),
    ]);
    assert!(window(&recs, M, &t("10:01"), json!({})).is_none());
    let h = win(&recs, H, &t("10:00"), json!({}));
    assert_eq!(h["first_response_seconds"]["count"], 1);
    assert_eq!(
        h["sla"]["first_response"]["achieved"], 1,
        "the late reply stopped the clock"
    );
}

#[test]
fn offsets_other_than_z_are_the_same_instant() {
    let recs = run(&[
        created(
            "e1",
            "2026-11-22T12:00:00+02:00",
            "c1",
            "t1",
            "normal",
            "billing",
            "email",
        ),
        reply("e2", "2026-11-22T05:10:00.250-05:00", "c1", "t1"),
    ]);
    let h = win(&recs, H, &t("10:00"), json!({}));
    assert_eq!(h["tickets"]["created"], 1);
    assert_eq!(h["first_response_seconds"]["min"], 600.25);
}

#[test]
fn end_of_replay_emits_incomplete_windows_as_partial() {
    let recs = run(&[
        created("e1", &t("10:00"), "c1", "t1", "normal", "billing", "email"),
        reply("e2", &t("10:03:10"), "c1", "t1"),
    ]);
    assert_eq!(win(&recs, M, &t("10:00"), json!({}))["partial"], false);
    assert_eq!(win(&recs, M, &t("10:03"), json!({}))["partial"], true);
    assert_eq!(win(&recs, H, &t("10:00"), json!({}))["partial"], true);
}

#[test]
fn percentiles_are_nearest_rank_and_min_max_mean_exact() {
    let mut evs = vec![];
    for i in 0..10 {
        let tk = format!("t{i}");
        evs.push(created(
            &format!("c{i}"),
            &t("10:00"),
            "c",
            &tk,
            "low",
            "b",
            "email",
        ));
        // first responses of 1..=10 minutes
        evs.push(reply(
            &format!("r{i}"),
            &t(&format!("10:{:02}", i + 1)),
            "c",
            &tk,
        ));
    }
    let recs = run(&evs);
    let fr = &win(&recs, H, &t("10:00"), json!({}))["first_response_seconds"];
    assert_eq!(fr["count"], 10);
    assert_eq!(fr["min"], 60.0);
    assert_eq!(fr["max"], 600.0);
    assert_eq!(fr["mean"], 330.0);
    let close =
        |v: &serde_json::Value, want: f64| (v.as_f64().unwrap() - want).abs() <= want * 0.001;
    assert!(close(&fr["p50"], 300.0), "{}", fr["p50"]);
    assert!(close(&fr["p90"], 540.0), "{}", fr["p90"]);
    assert!(close(&fr["p99"], 600.0), "{}", fr["p99"]);
    let h = cxstream::window::hdr::decode_hdr(fr["hdr"].as_str().unwrap()).unwrap();
    assert_eq!(h.len(), 10);
}

#[test]
fn replay_is_byte_identical_for_the_same_input() {
    let evs = [
        created("e1", &t("10:00"), "c1", "t1", "urgent", "billing", "email"),
        ev(
            "e2",
            "survey.csat",
            &t("10:30"),
            "c1",
            json!({"score": 1, "ticket": "t1"}),
        ),
        ev("e3", "survey.nps", &t("12:00"), "c2", json!({"score": 2})),
    ];
    let text: String = evs.iter().map(|e| format!("{e}\n")).collect();
    let a =
        cxstream::replay::replay_to_string(&mut engine_with(Config::default()), text.as_bytes());
    let b =
        cxstream::replay::replay_to_string(&mut engine_with(Config::default()), text.as_bytes());
    assert_eq!(a, b);
    assert!(!a.is_empty());
}

#[test]
fn evicted_tickets_make_later_events_orphans() {
    let mut cfg = Config::default();
    cfg.engine.ticket_retention_solved = cxstream::config::Dur(cxstream::ts::HOUR);
    let recs = run_with(
        cfg,
        &[
            created("e1", &t("10:00"), "c1", "t1", "normal", "billing", "email"),
            solved("e2", &t("10:10"), "c1", "t1"),
            ev("e3", "survey.nps", &t("11:11"), "c2", json!({"score": 9})),
            ev(
                "e4",
                "ticket.reopened",
                &t("11:12"),
                "c1",
                json!({"ticket": "t1"}),
            ),
        ],
    );
    let dl = of_type(&recs, "deadletter");
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0]["reason"], "unknown ticket");
}

#[test]
fn window_sizes_and_groups_follow_the_config() {
    let mut cfg = Config::default();
    cfg.engine.windows = vec![cxstream::config::Dur(5 * 60 * 1000)];
    cfg.engine.group_by = vec![
        vec![],
        vec![cxstream::config::Dim::Team, cxstream::config::Dim::Priority],
    ];
    let recs = run_with(
        cfg,
        &[created(
            "e1",
            &t("10:07"),
            "c1",
            "t1",
            "low",
            "billing",
            "email",
        )],
    );
    let groups: Vec<_> = of_type(&recs, "kpi.window")
        .iter()
        .map(|r| {
            (
                r["window"]["size_seconds"].clone(),
                r["window"]["start"].clone(),
                r["group"].clone(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            (json!(300), json!(t("10:05")), json!({})),
            (
                json!(300),
                json!(t("10:05")),
                json!({"team": "billing", "priority": "low"})
            ),
        ]
    );
}
