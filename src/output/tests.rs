//! The written line of every record type is byte for byte its `Value`'s serialization.

use super::*;
use crate::kpi::Kpi;
use crate::window::{Aggregate, WindowKey};

fn same(r: &Record) {
    assert_eq!(r.to_line(), r.to_json().to_string(), "{}", r.type_name());
}

#[test]
fn written_lines_are_the_values_lines() {
    let mut agg = Aggregate::default();
    for i in 0..500i64 {
        agg.apply(&Kpi::FirstResponse(i * 7_919 % 900_000), (i % 3) as i32);
        agg.apply(&Kpi::Handle(i as f64 / 3.0), 0);
    }
    for (group, partial) in [
        (vec![], false),
        (vec![(Dim::Team, "bil\"ling\u{1}é".to_string())], true),
    ] {
        same(&Record::Window(Box::new(WindowRecord {
            window: ClosedWindow {
                key: WindowKey {
                    size_idx: 0,
                    start: 1_795_860_000_000,
                    group_idx: 0,
                    values: [0; 4],
                },
                size: 60_000,
                agg: agg.clone(),
                partial,
            },
            group,
            part: false,
        })));
    }
    same(&Record::SlaBreached {
        due: 1_795_860_000_123,
        customer: "c\\1".into(),
        ticket: "t1".into(),
        sla: SlaKind::Resolution,
        priority: Priority::High,
        team: "tech".into(),
        channel: Channel::Chat,
    });
    same(&Record::ChurnRisk {
        time: 1_795_860_000_000,
        customer: "c2".into(),
        score: 2.0 / 3.0,
        reasons: vec!["negative_csat", "reopened"],
    });
    for ticket in [None, Some("t\n9".to_string())] {
        same(&Record::RecoveryNeeded {
            time: 1_795_860_000_000,
            customer: "c3".into(),
            due: 1_795_946_400_000,
            trigger: Trigger::Nps,
            score: 3,
            ticket,
        });
    }
    same(&Record::RecoveryOverdue {
        time: 1_795_946_400_000,
        customer: "c4".into(),
        due: 1_795_946_400_000,
        trigger: Trigger::Csat,
    });
    same(&Record::dead_letter(
        "invalid_json",
        "expected value at line 1".into(),
        b"{\"a\":\xff}".to_vec(),
        SourcePos::File {
            file: "in.jsonl".into(),
            line: 7,
        },
    ));
    same(&Record::oversized(
        &[b'x'; 100],
        10,
        SourcePos::Kafka {
            topic: "events".into(),
            partition: 2,
            offset: 99,
        },
    ));
}

/// Window and part keys are written straight to bytes: the same text as building them from
/// the duration label, the start's RFC 3339 text and the group's `serde_json` form, for
/// groups with characters that need escaping, every partition list and years outside
/// 0000–9999 (derived times).
#[test]
fn window_keys_written_to_bytes_are_the_serde_json_keys() {
    let reference = |size: Millis, start: Millis, group: &[(Dim, String)], parts: &[i32]| {
        let mut k = ts::duration_label(size);
        k.push('|');
        ts::write_ms(&mut k, start);
        k.push('|');
        k.push_str(&group_json(group).to_string());
        for p in parts {
            k.push('|');
            k.push_str(&p.to_string());
        }
        k
    };
    let values = [
        "billing",
        "",
        "a\"b\\c",
        "tab\there\nnl",
        "é ü 日本",
        "\u{1}\u{1f}",
    ];
    let starts = [
        0,
        1_764_000_000_000,
        1_764_000_000_123,
        -62_167_219_200_001,
        253_402_300_800_000,
    ];
    let sizes = [60_000, 3_600_000, 86_400_000, 90_000, 1_500, -5];
    for (i, v) in values.iter().enumerate() {
        let groups: [Vec<(Dim, String)>; 3] = [
            vec![],
            vec![(Dim::Team, v.to_string())],
            vec![
                (Dim::Channel, "email".into()),
                (Dim::Category, v.to_string()),
                (Dim::Priority, "p1".into()),
            ],
        ];
        for g in &groups {
            for (j, parts) in [&[][..], &[0], &[2, 0, 17]].iter().enumerate() {
                let (size, start) = (
                    sizes[(i + j) % sizes.len()],
                    starts[(i + 2 * j) % starts.len()],
                );
                let want = reference(size, start, g, parts);
                let mut b = b"kept".to_vec();
                push_window_key(&mut b, size, start, g, parts);
                assert_eq!(&b[4..], want.as_bytes());
            }
        }
    }
}
