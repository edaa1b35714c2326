#!/usr/bin/env python3
"""Independent Kafka client for end-to-end tests (confluent-kafka, its own
librdkafka), so a test does not only talk to cxstream's own client code.

  kclient.py produce --bootstrap B --topic T [--file F] [--key-field customer]
      Send each non-empty line of F (default stdin) as one message value,
      byte for byte (invalid JSON is sent as is: dead-letter tests). The key is
      the line's JSON string field --key-field (default "customer"), or none if
      the line has no such field ("" = never a key). Idempotent producer,
      acks=all; waits for every delivery. Prints {"produced": N}.

  kclient.py consume --bootstrap B --topic T [--expect N] [--timeout S]
                     [--idle S] [--group G]
      Print one JSON object per message on stdout:
        {"topic","partition","offset","key","value","timestamp_ms","headers"}
      key/value are UTF-8 strings (null if absent); a non-UTF-8 payload comes
      as "value_b64"/"key_b64" instead. Without --group, partitions are
      assigned directly from the beginning (no group join: fast); with
      --group, it joins that group (session.timeout.ms=6000, about 3 s to the
      first assignment), starts at committed offsets (else earliest) and
      commits what it printed. Stops at N messages (exit 0), or after --idle S
      without a message (default 3 when --expect is not given; in group
      mode counted from the first assignment), or at
      --timeout S (default 60; exit 2 if --expect was not reached).
      Records are printed as they arrive: in offset order within a partition.

Python:  import kclient; kclient.produce(bs, topic, lines); kclient.consume(...)
"""

import argparse
import base64
import json
import sys
import time
import uuid

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaException,
                             Producer, TopicPartition)


def _text(b, name, rec):
    if b is None:
        rec[name] = None
        return
    try:
        rec[name] = b.decode("utf-8")
    except UnicodeDecodeError:
        rec[name] = None
        rec[name + "_b64"] = base64.b64encode(b).decode()


def to_record(m):
    rec = {"topic": m.topic(), "partition": m.partition(), "offset": m.offset()}
    _text(m.key(), "key", rec)
    _text(m.value(), "value", rec)
    ts_type, ts = m.timestamp()
    rec["timestamp_ms"] = ts if ts_type else None
    rec["headers"] = {k: (v.decode("utf-8", "replace") if v is not None else None)
                      for k, v in (m.headers() or [])}
    return rec


def produce(bootstrap, topic, lines, key_field="customer", timeout=60.0):
    """lines: iterable of bytes/str values. Returns the number delivered."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                  "acks": "all", "linger.ms": 5})
    errors = []
    n = 0

    def dr(err, _msg):
        if err is not None:
            errors.append(str(err))

    for line in lines:
        if isinstance(line, str):
            line = line.encode("utf-8")
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        key = None
        if key_field:
            try:
                obj = json.loads(line)
                if isinstance(obj, dict) and isinstance(obj.get(key_field), str):
                    key = obj[key_field].encode("utf-8")
            except ValueError:
                pass
        while True:
            try:
                p.produce(topic, value=line, key=key, on_delivery=dr)
                break
            except BufferError:  # local queue full: let deliveries drain
                p.poll(0.1)
        p.poll(0)
        n += 1
    left = p.flush(timeout)
    if left or errors:
        raise RuntimeError(f"produce to {topic}: {left} undelivered, "
                           f"errors: {errors[:5]}")
    return n


def consume(bootstrap, topic, expect=None, timeout=60.0, idle=None,
            group=None, on_record=None):
    """Returns the list of records (see to_record)."""
    if idle is None and expect is None:
        idle = 3.0
    conf = {"bootstrap.servers": bootstrap,
            "group.id": group or f"kclient-{uuid.uuid4()}",
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
    c = Consumer(conf)
    joined = []  # group mode: idle time counts from the first assignment
    out = []
    start = last = time.monotonic()
    try:
        if group:
            c.subscribe([topic],
                        on_assign=lambda *_: joined.append(time.monotonic()))
        else:
            md = c.list_topics(topic, timeout=10).topics[topic]
            if md.error is not None:
                raise RuntimeError(f"topic {topic}: {md.error}")
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                      for p in sorted(md.partitions)])
        while True:
            now = time.monotonic()
            if expect is not None and len(out) >= expect:
                break
            if now - start >= timeout:
                break
            if group and not out:
                last = joined[0] if joined else now
            if idle is not None and now - last >= idle:
                break
            m = c.poll(0.1)
            if m is None:
                continue
            if m.error():
                print(f"kclient: {m.error()}", file=sys.stderr)  # transient
                continue
            last = time.monotonic()
            rec = to_record(m)
            out.append(rec)
            if on_record:
                on_record(rec)
        if group and out:
            c.commit(asynchronous=False)
    finally:
        c.close()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--file", default="-")
    p.add_argument("--key-field", default="customer")
    c = sub.add_parser("consume")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--expect", type=int)
    c.add_argument("--timeout", type=float, default=60.0)
    c.add_argument("--idle", type=float)
    c.add_argument("--group")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "produce":
            f = sys.stdin.buffer if a.file == "-" else open(a.file, "rb")
            with f:
                n = produce(a.bootstrap, a.topic, f, a.key_field)
            print(json.dumps({"produced": n}), flush=True)
            return 0
        emit = lambda r: print(json.dumps(r), flush=True)  # noqa: E731
        out = consume(a.bootstrap, a.topic, a.expect, a.timeout, a.idle,
                      a.group, on_record=emit)
        if a.expect is not None and len(out) < a.expect:
            print(f"kclient: got {len(out)} of {a.expect} messages from "
                  f"{a.topic} in {a.timeout}s", file=sys.stderr)
            return 2
        return 0
    except (RuntimeError, OSError, KafkaException) as e:
        print(f"kclient {a.cmd}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
