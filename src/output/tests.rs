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
