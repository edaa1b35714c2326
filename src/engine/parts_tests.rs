//! The parts topic's records and merge step, from SPEC §7's words.

use super::*;
use crate::kpi::Kpi;

const FP: u64 = 42;
const MIN: Millis = 60_000;

/// A part of the 1-minute window starting at `start`, group `{}` or `{team}`, with
/// `created` tickets and one first response of `fr` ms.
fn part(partition: i32, start: Millis, team: Option<&str>, created: u64, fr: Millis) -> PartOut {
    let mut agg = Aggregate::default();
    for _ in 0..created {
        agg.apply(&Kpi::Created, partition);
    }
    agg.apply(&Kpi::FirstResponse(fr), partition);
    agg.revenue = 0.1 * f64::from(partition + 1);
    PartOut {
        partition,
        group: team
            .map(|t| vec![(Dim::Team, t.to_string())])
            .unwrap_or_default(),
        window: ClosedWindow {
            key: WindowKey {
                size_idx: 0,
                start,
                group_idx: u8::from(team.is_some()),
                values: [0; 4],
            },
            size: MIN,
            agg,
            partial: false,
        },
    }
}

fn wm(partition: i32, watermark: Millis) -> PartMsg {
    PartMsg::Watermark {
        partition,
        watermark,
    }
}

fn lines(out: &[Record]) -> Vec<String> {
    out.iter()
        .map(|r| format!("{} {}", r.key(), r.to_line()))
        .collect()
}

/// Folds `msgs` (offsets from 0), completing after each.
fn fold(log: &mut PartsLog, msgs: &[PartMsg], out: &mut Vec<Record>) {
    for (o, m) in msgs.iter().enumerate() {
        log.apply(o as i64, m.clone());
        log.complete(out);
    }
}

#[test]
fn every_record_round_trips_and_another_configuration_is_refused() {
    let msgs = [
        PartMsg::Part(part(3, 0, Some("billing"), 2, 1500)),
        wm(2, 123_456),
        PartMsg::Mark(Mark {
            merged_through: 60_000,
            oldest: 17,
            position: 40,
            watermarks: vec![(0, 60_000), (1, 120_000)],
        }),
        PartMsg::End("run-1".into()),
        PartMsg::Reset,
    ];
    for m in &msgs {
        let b = m.encode(FP);
        let back = PartMsg::decode(&b, FP).unwrap();
        assert_eq!(back.encode(FP), b);
        assert_eq!(back.key(), m.key());
        let e = PartMsg::decode(&b, FP + 1).unwrap_err();
        assert!(e.0.contains("another configuration"), "{}", e.0);
        assert!(PartMsg::decode(&b[..b.len() - 1], FP).is_err());
    }
    assert_eq!(
        msgs[0].key(),
        r#"1m|1970-01-01T00:00:00Z|{"team":"billing"}|3"#
    );
    assert!(PartMsg::decode(b"", FP).is_err());
    assert!(PartMsg::decode(&[9, 0, 0], FP).is_err());
}

#[test]
fn a_window_completes_only_when_every_input_partition_passed_its_end() {
    let mut log = PartsLog::new(3);
    let mut out = Vec::new();
    fold(
        &mut log,
        &[
            PartMsg::Part(part(0, 0, None, 1, 1000)),
            wm(0, MIN),
            PartMsg::Part(part(2, 0, None, 2, 2000)),
            wm(2, 5 * MIN),
        ],
        &mut out,
    );
    // Partition 1 never reported: nothing is complete, whatever the others say.
    assert!(out.is_empty());
    assert_eq!(log.completion_point(), None);
    assert_eq!(log.slowest(), Some((1, None)));
    log.apply(4, wm(1, MIN - 1));
    log.complete(&mut out);
    assert!(out.is_empty(), "partition 1 has not passed the end yet");
    log.apply(5, wm(1, MIN));
    log.complete(&mut out);
    assert_eq!(out.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&out[0].to_line()).unwrap();
    assert_eq!(v["tickets"]["created"], 3);
    assert_eq!(v["partitions"], serde_json::json!([0, 2]));
    assert_eq!(v["partial"], false);
    assert_eq!(out[0].key(), "1m|1970-01-01T00:00:00Z|{}");
    assert_eq!(log.merged_through(), MIN);
}

#[test]
fn repeats_are_dropped_and_parts_of_emitted_windows_are_counted() {
    let mut log = PartsLog::new(2);
    let mut out = Vec::new();
    let p0 = PartMsg::Part(part(0, 0, None, 1, 1000));
    fold(
        &mut log,
        &[
            p0.clone(),
            p0.clone(),
            PartMsg::Part(part(1, 0, None, 1, 1000)),
            wm(0, MIN),
            wm(1, MIN),
        ],
        &mut out,
    );
    assert_eq!(log.repeated, 1);
    assert_eq!(out.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&out[0].to_line()).unwrap();
    assert_eq!(v["tickets"]["created"], 2, "a repeat is not counted twice");
    // A partition restored from an older checkpoint sends its part again: dropped, counted.
    log.apply(9, p0);
    log.apply(10, wm(0, MIN / 2));
    log.complete(&mut out);
    assert_eq!(log.dropped, 1);
    assert_eq!(out.len(), 1, "the window is emitted once");
    assert_eq!(
        log.completion_point(),
        Some(MIN),
        "a watermark never moves back"
    );
}

#[test]
fn the_merge_is_the_same_bytes_whatever_order_the_parts_arrive_in() {
    let parts: Vec<PartMsg> = (0..4)
        .flat_map(|p| {
            [
                PartMsg::Part(part(p, 0, None, 1 + p as u64, 1000 * (p as i64 + 1))),
                PartMsg::Part(part(p, 0, Some("a"), 1, 700)),
                PartMsg::Part(part(p, 0, Some("b"), 2, 300 + p as i64)),
            ]
        })
        .collect();
    let wms: Vec<PartMsg> = (0..4).map(|p| wm(p, MIN)).collect();
    let run = |order: &[usize]| {
        let mut log = PartsLog::new(4);
        let mut out = Vec::new();
        let mut msgs: Vec<PartMsg> = order.iter().map(|i| parts[*i].clone()).collect();
        msgs.extend(wms.iter().cloned());
        fold(&mut log, &msgs, &mut out);
        let mut l = lines(&out);
        l.sort();
        l
    };
    let forward: Vec<usize> = (0..parts.len()).collect();
    let backward: Vec<usize> = (0..parts.len()).rev().collect();
    let a = run(&forward);
    assert_eq!(a.len(), 3);
    assert_eq!(a, run(&backward));
    // Float sums add in partition order, as one instance adds them.
    let v: serde_json::Value = serde_json::from_str(
        a.iter()
            .find(|l| l.contains("|{} "))
            .unwrap()
            .split_once(' ')
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(v["tickets"]["created"], 10);
}

#[test]
fn a_new_owner_from_any_mark_emits_the_same_records_again() {
    // Interleaved windows: a window emitted later than the mark has parts on both sides of
    // the oldest pending part.
    let msgs = vec![
        PartMsg::Part(part(0, 0, None, 1, 1000)),      // 0: window 0
        PartMsg::Part(part(0, MIN, None, 1, 1000)),    // 1: window 1
        PartMsg::Part(part(1, 0, None, 2, 2000)),      // 2: window 0
        wm(0, 2 * MIN),                                // 3
        wm(1, MIN),                                    // 4: window 0 complete
        PartMsg::Part(part(1, MIN, None, 3, 3000)),    // 5: window 1
        PartMsg::Part(part(0, 2 * MIN, None, 1, 500)), // 6: window 2
        wm(1, 2 * MIN),                                // 7: window 1 complete
        PartMsg::Part(part(1, 2 * MIN, None, 1, 900)), // 8
        wm(0, 3 * MIN),                                // 9
        wm(1, 3 * MIN),                                // 10: window 2 complete
    ];
    let mut whole = PartsLog::new(2);
    let mut want = Vec::new();
    fold(&mut whole, &msgs, &mut want);
    assert_eq!(want.len(), 3);
    let want = lines(&want);
    for at in 0..=msgs.len() {
        // The first owner folds up to `at`, marks, and crashes; a new owner starts from the
        // mark.
        let mut first = PartsLog::new(2);
        let mut out = Vec::new();
        fold(&mut first, &msgs[..at], &mut out);
        let mark = first.mark(at as i64);
        assert!(mark.oldest <= at as i64);
        let mut next = PartsLog::from_mark(2, &mark);
        let mut again = Vec::new();
        for (o, m) in msgs.iter().enumerate().skip(mark.oldest as usize) {
            next.apply(o as i64, m.clone());
            next.complete(&mut again);
        }
        // Nothing emitted before the mark comes again; the rest is byte-identical.
        let mut all = lines(&out);
        all.extend(lines(&again));
        assert_eq!(all, want, "restart from the mark at {at}");
        assert_eq!(
            next.dropped, 0,
            "parts folded before the mark are not counted again"
        );
    }
}

#[test]
fn a_mark_read_in_the_log_drops_what_it_says_was_emitted() {
    let mut log = PartsLog::new(1);
    let mut out = Vec::new();
    log.apply(
        0,
        PartMsg::Mark(Mark {
            merged_through: MIN,
            oldest: 0,
            position: 0,
            watermarks: vec![(0, MIN)],
        }),
    );
    log.apply(1, PartMsg::Part(part(0, 0, None, 1, 1)));
    log.apply(2, PartMsg::Part(part(0, MIN, None, 1, 1)));
    log.apply(3, wm(0, 2 * MIN));
    log.complete(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].key(), "1m|1970-01-01T00:01:00Z|{}");
}

#[test]
fn the_end_of_a_bounded_run_flushes_without_changing_the_state() {
    let mut log = PartsLog::new(2);
    let mut out = Vec::new();
    fold(
        &mut log,
        &[
            PartMsg::Part(part(0, 0, None, 1, 1000)),
            wm(0, MIN),
            wm(1, 10),
        ],
        &mut out,
    );
    assert!(out.is_empty());
    let mut last = part(1, 0, None, 5, 100);
    last.window.partial = true;
    let before = log.mark(3);
    log.flush(vec![last], &mut out);
    assert_eq!(out.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&out[0].to_line()).unwrap();
    assert_eq!(v["tickets"]["created"], 6);
    assert_eq!(v["partial"], true);
    assert_eq!(
        log.mark(3),
        before,
        "the flush is not part of the merge state"
    );
}

#[test]
fn one_series_always_routes_to_one_partition() {
    let a = part(0, 0, Some("billing"), 1, 1);
    let b = part(5, 10 * MIN, Some("billing"), 1, 1);
    assert_eq!(a.route(6), b.route(6));
    assert_eq!(route(MIN, &[], 1), 0);
    for n in 1..10 {
        assert!((0..n).contains(&a.route(n)));
    }
}

#[test]
fn a_reset_forgets_what_was_merged_so_the_input_can_be_processed_again() {
    let mut log = PartsLog::new(1);
    let mut out = Vec::new();
    let msgs = [PartMsg::Part(part(0, 0, None, 1, 1000)), wm(0, MIN)];
    fold(&mut log, &msgs, &mut out);
    assert_eq!(out.len(), 1);
    log.apply(2, PartMsg::Reset);
    assert_eq!(log.completion_point(), None);
    // The same input again after `state reset`: the same record again.
    for (o, m) in msgs.iter().enumerate() {
        log.apply(3 + o as i64, m.clone());
        log.complete(&mut out);
    }
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].to_line(), out[1].to_line());
    assert_eq!(log.dropped, 0);
}

/// A mark taken between folding records and completing them (a revoke inside the consumer's
/// poll writes the final marks before the round's `complete`) has watermarks past windows it
/// still holds as pending parts. The next owner starts from it: nothing completes before it
/// has read the log again up to the mark's position, so those windows are emitted, once, as
/// an uninterrupted fold emits them (they were lost: 123 windows missing in the scale-out
/// test under load).
#[test]
fn a_mark_taken_before_completing_loses_no_window() {
    let msgs = [
        wm(0, MIN),
        wm(1, MIN),
        PartMsg::Part(part(0, MIN, None, 1, 10)),
        PartMsg::Part(part(1, MIN, Some("vip"), 2, 20)),
        wm(0, 130_000),
        wm(1, 130_000),
    ];
    let mut whole = PartsLog::new(2);
    let mut want = Vec::new();
    fold(&mut whole, &msgs, &mut want);
    assert_eq!(want.len(), 2, "{:?}", lines(&want));

    // The first owner folds everything but completes only the first two records.
    let mut first = PartsLog::new(2);
    let mut out = Vec::new();
    for (o, m) in msgs.iter().enumerate() {
        first.apply(o as i64, m.clone());
        if o < 2 {
            first.complete(&mut out);
        }
    }
    assert!(out.is_empty());
    let mark = first.mark(msgs.len() as i64);
    assert_eq!((mark.oldest, mark.merged_through), (2, MIN));

    // The next owner: `locate` then `complete` in the same round, before reading anything.
    let mut next = PartsLog::from_mark(2, &mark);
    next.complete(&mut out);
    assert!(
        out.is_empty(),
        "nothing completes before the log is read again"
    );
    for (o, m) in msgs.iter().enumerate().skip(mark.oldest as usize) {
        next.apply(o as i64, m.clone());
        next.complete(&mut out);
    }
    assert_eq!(lines(&out), lines(&want));
    assert_eq!((next.dropped, next.merged_through()), (0, 130_000));

    // Part-way back to the mark, the fold is not caught up: a mark taken there would carry
    // watermarks past records before its own position (the merge step takes none).
    let mut part_way = PartsLog::from_mark(2, &mark);
    assert!(!part_way.caught_up());
    part_way.apply(2, msgs[2].clone());
    assert!(!part_way.caught_up());
    for (o, m) in msgs.iter().enumerate().skip(3) {
        part_way.apply(o as i64, m.clone());
    }
    assert!(part_way.caught_up());
}
