#!/usr/bin/env python3
"""Smoke test: a real Tansu broker + the confluent-kafka client work here.

Starts tansu on a free port, creates a 3-partition topic, produces 1000 keyed
JSON messages (idempotent producer, acks=all), consumes them back in a
consumer group, commits, then checks that a second member of the same group
resumes exactly after the committed offsets. Exit 0 and a last line
"kafka_smoke: 1 passed, 0 failed" on success.

  python3 tests/e2e/kafka_smoke.py [-n 1000] [--partitions 3]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from tansu import Tansu  # noqa: E402
import kclient  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--partitions", type=int, default=3)
    a = ap.parse_args()
    topic, group = "smoke", "smoke-group"
    timings = {}

    t0 = time.monotonic()
    with Tansu(topics={topic: a.partitions}) as broker:
        timings["broker_start+topic_s"] = time.monotonic() - t0
        bs = broker.bootstrap
        print(f"tansu up at {bs} (log {broker.log})", file=sys.stderr)

        # --- produce ---------------------------------------------------
        sent = {}
        t = time.monotonic()
        p = Producer({"bootstrap.servers": bs, "enable.idempotence": True,
                      "acks": "all", "linger.ms": 5})
        errors = []

        def dr(err, msg):
            if err is not None:
                errors.append(err)

        for i in range(a.n):
            cust = f"cust-{i % 50:03d}"
            val = json.dumps({"id": f"ev-{i}", "type": "survey.nps",
                              "customer": cust, "seq": i,
                              "time": "2026-11-22T10:00:00.000Z", "score": i % 11})
            p.produce(topic, key=cust, value=val, on_delivery=dr)
            p.poll(0)
            sent[f"ev-{i}"] = (cust, val)
        left = p.flush(30)
        assert left == 0 and not errors, f"produce: {left} unflushed, {errors[:3]}"
        timings["produce_s"] = time.monotonic() - t

        # --- consume in a group, commit ------------------------------------
        t = time.monotonic()
        got, assigned_at = consume(bs, topic, group, a.n)
        timings["group_first_assignment_s"] = assigned_at - t
        timings["consume_all_s"] = time.monotonic() - t
        assert len(got) == a.n, f"consumed {len(got)} of {a.n}"
        by_id = {}
        key_part = {}
        last_seq = {}
        for m in got:
            v = json.loads(m["value"])
            assert v["id"] not in by_id, f"duplicate {v['id']}"
            by_id[v["id"]] = m
            assert (m["key"], m["value"]) == sent[v["id"]], f"content {v['id']}"
            # same key -> same partition, in produce order
            assert key_part.setdefault(m["key"], m["partition"]) == m["partition"]
            assert last_seq.get(m["key"], -1) < v["seq"], f"order for {m['key']}"
            last_seq[m["key"]] = v["seq"]
        parts = sorted({m["partition"] for m in got})
        assert parts == list(range(a.partitions)), f"partitions used {parts}"

        # --- resume from committed offsets ---------------------------------
        extra = 10
        p = Producer({"bootstrap.servers": bs, "enable.idempotence": True})
        for i in range(a.n, a.n + extra):
            p.produce(topic, key=f"cust-{i % 50:03d}",
                      value=json.dumps({"id": f"ev-{i}", "seq": i}))
        assert p.flush(30) == 0
        t = time.monotonic()
        more, _ = consume(bs, topic, group, extra, settle=2.0)
        timings["resume_s"] = time.monotonic() - t
        del p  # close producers before the broker goes (else 5 s stop)
        ids = sorted(json.loads(m["value"])["seq"] for m in more)
        assert ids == list(range(a.n, a.n + extra)), f"resume got {ids}"

        # --- quirk probe: high watermarks vs what was consumed --------------
        c = Consumer({"bootstrap.servers": bs, "group.id": "probe"})
        hw = {}
        for pt in range(a.partitions):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, pt), timeout=5)
            hw[pt] = (lo, hi)
        c.close()
        real = {pt: 1 + max(m["offset"] for m in got + more if m["partition"] == pt)
                for pt in range(a.partitions)}
        print(f"watermarks (lo, hi) {hw}; consumed end offsets {real}",
              file=sys.stderr)

        # the independent-client CLI used by the Rust tests
        t = time.monotonic()
        lines = kclient.consume(bs, topic, expect=a.n + extra, timeout=30)
        timings["kclient_assign_consume_s"] = time.monotonic() - t
        assert len(lines) == a.n + extra, len(lines)

    print("timings: " + ", ".join(f"{k}={v:.2f}" for k, v in timings.items()),
          file=sys.stderr)
    print("kafka_smoke: 1 passed, 0 failed")


def consume(bs, topic, group, n, settle=0.0, timeout=60.0):
    """Consume n messages in consumer group `group`, commit synchronously,
    then (optionally) keep polling `settle` seconds to catch extras."""
    assigned = []
    c = Consumer({"bootstrap.servers": bs, "group.id": group,
                  "auto.offset.reset": "earliest",
                  "enable.auto.commit": False,
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000})
    c.subscribe([topic], on_assign=lambda _c, ps: assigned.append(time.monotonic()))
    out = []
    deadline = time.monotonic() + timeout
    stop_at = None
    while time.monotonic() < deadline:
        if stop_at is None and len(out) >= n:
            stop_at = time.monotonic() + settle
        if stop_at is not None and time.monotonic() >= stop_at:
            break
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            # transient (e.g. _TRANSPORT, _PARTITION_EOF): log and go on
            print(f"consumer: {m.error()}", file=sys.stderr)
            continue
        out.append(kclient.to_record(m))
    if out:
        c.commit(asynchronous=False)
    c.close()
    return out, (assigned[0] if assigned else float("nan"))


if __name__ == "__main__":
    main()
