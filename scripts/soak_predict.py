#!/usr/bin/env python3
"""Predicts the soak's RSS from per-entity state sizes and compares it with what was measured
(issue 12: within ±5 % over the last 50 minutes of the 1-hour run).

  scripts/soak_predict.py                                  # docs/soak-1h-3k.csv, docs/state-size.json
  scripts/soak_predict.py --csv target/soak1h/soak.csv --out target/soak-predict.csv

Inputs:
  --csv     the soak's samples (scripts/soak.py): rss_mb and the state gauges per sample
  --sizes   per-entity sizes written by `cargo run --release --example state_size -- --n 1000000
            --json docs/state-size.json` (bytes of RSS: fixed part of each entity, its
            hash-table bucket, timers, aggregates)

A CSV with the heap_allocated_mb column (soak.py and the code since jemalloc became the
allocator) is compared with model H (see "Model H" below; jemalloc for the whole process, the
code since 2026-12-01 10:30) or, with --model G, model G (jemalloc for Rust only, 8c5b1a6 to
4ff4294). The engine alone's extra for H: --engine-alone docs/soak-shape-20k-h.csv. One with the
state_aftersales_customers column (soak.py since bd2ec19, the code since 4532056) is compared
with models E and F (see "Model E" below: per-entity sizes, the engine
alone on the soak's stream, and the configuration's bounds). Older CSVs (the runs in
docs/soak.md before that) with models A to D:

For each sample from --from (600 s) on, four predictions (MB = MiB, as soak.py's rss_mb):

  A  "count x size", as the issue puts it: baseline + sum over kinds of count(t) x size, the
     entity sizes as measured at N = 1,000,000 (hash-table buckets at that load).
  B  the engine's state as it is held: each of the 6 partitions has its own hash tables
     (ticket keys, customer keys, event ids), sized by the peak of their entries so far
     (hashbrown never shrinks; 33 bytes a bucket, a power of two at a load <= 7/8), the fixed
     parts of each entity, and the window aggregates with their dense summaries; RSS follows
     the high-water mark of all that (glibc keeps freed chunks in the heap, slabs never
     shrink), so B(t) = baseline + max over s <= t of state(s).
  C  baseline + max over s <= t of (state(s) + Kafka path(s)): B plus librdkafka's queues
     and the largest checkpoint in flight, estimated from the configuration (see KAFKA below).
  D  C with every record of that checkpoint also waiting in the sink's own queue (the
     producer queue full): the upper end. Where between C and D a run lands depends on how
     fast the broker takes records at that moment, which the samples do not say.

With a CSV from `state_size --soak-shape` (the engine alone, no Kafka: it has an event_ids
column) the same model is checked against the engine without the Kafka path: baseline =
that process's, Kafka path = the checkpoint held (ck_heap_mb, measured).

Remembered event ids are not in the CSV: they are derived from the samples. The dedup memory
is swept with retention, once per hour of event time per partition (a sweep keeps the ids of
the last dedup_horizon + allowed_lateness = 2.5 min of event time); between sweeps every
applied event adds one. Sweeps show in the CSV as drops of state_tickets; applied events per
second = consumed_per_s - deadletters_per_s (the stream has no duplicates).

Window aggregates: a sparse one is 1.5 kB, but a duration summary with more than 128 values
becomes an HDR histogram of ~100 kB. --dense-per-aggregate (default 0.109) is how many such
summaries an open aggregate holds on average; `--windows REPLAY.jsonl` computes it from the
kpi.window records of a replay of the soak's stream (each record's parts open for its size +
the 30 s lateness; a part's summary dense for the share of that time after its 128th value,
its values spread evenly over the partitions that contributed):

  cxstream generate -n 1800000 --seed 1 --customers 200000 --tickets-per-hour 100000 \
    > target/stream.jsonl
  cxstream --config SOAK_ENGINE.toml replay -q -i target/stream.jsonl -o target/windows.jsonl \
    --partitions 6        # SOAK_ENGINE.toml: soak.py's [engine], [sla], [signals], [input]
  scripts/soak_predict.py --windows target/windows.jsonl

Prints min / mean / max of the relative error (predicted - measured) / measured over the
samples from --from on, for A to D, and the parts of the prediction (means).
"""

import argparse
import csv
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MIB = 1048576.0

PARTITIONS = 6          # soak.py --partitions default
SLOT = 21.0             # dedup bucket: 96-bit id key + 8-byte time + control byte
INDEX_SLOT = 5.0        # ticket/customer index bucket: u32 slab handle + control byte
KEEP_AFTER_SWEEP_S = 150.0   # dedup_horizon 2m + allowed_lateness 30s of event time (soak.py)

# Idle `cxstream run` with soak.py's configuration, 6 partitions, against Tansu (librdkafka
# clients connected, metrics endpoint, empty state): `scripts/soak.py --duration 60 --rate 1
# --out target/soak-idle` -> rss_mb 16.1-16.6 (2026-11-30).
BASELINE_MB = 16.4

# KAFKA: librdkafka's memory from its configuration (cxstream sets no queue sizes: defaults).
#  - producer: queue.buffering.max.messages = 100,000 messages, each one allocation of
#    sizeof(rd_kafka_msg_t) = 176 B (gdb on the release binary) + key + payload (copied,
#    RD_KAFKA_MSG_F_COPY) + 16 B malloc overhead. Output records average 372 B (replay of the
#    soak stream's first 600 s with soak.py's configuration: deadletter 512 B, sla.breached
#    289 B, kpi.window 2,014 B, ...), keys ~16 B. Taken as full: Tansu is the slowest process
#    (75-100 % of a core) and cxstream's sink parks records when the queue is full
#    (backpressure); heaptrack of a 6-min run had 42.6 MB in rd_kafka_msg_new0 at its peak.
#  - consumer: every prefetched input message is an rd_kafka_op_t (1,024 B) + its share of
#    the fetch buffer (~175 B per generated event); the prefetched messages are at most the
#    lag (queued.min.messages 100,000 and queued.max.messages.kbytes 64 MiB are not reached).
#  - checkpoints: every 10 s each partition's changed entities are encoded into state records
#    that the pipeline holds until the producer has them; they wait in librdkafka's queue or,
#    when it is full, in the sink's own queue (an `Owned` of 96 B in a VecDeque + a topic
#    string and a key of 32 B chunks each, + the value: ~160 B for a tombstone). The largest
#    is the checkpoint after a retention sweep (tombstones for every evicted ticket and
#    customer): on the soak's stream (`state_size --soak-shape`, same generator and
#    configuration) up to 570,540 records holding 40.9 MiB encoded. Counted from the first
#    sweep on: encoded + every record waiting in the sink (the producer queue being full).
CK_LARGEST_RECORDS = 570_540
CK_LARGEST_ENCODED_MB = 40.9
OWNED = 160
PRODUCER_QUEUE_MESSAGES = 100_000
RD_KAFKA_MSG = 176 + 16
OUTPUT_PAYLOAD = 372 + 16
CONSUMER_PER_MESSAGE = 1024 + 16 + 175


def buckets(items):
    """Buckets of a hashbrown table holding `items` (load <= 7/8, power of two)."""
    b = 4
    while (b - 1 if b < 8 else b // 8 * 7) < items:
        b *= 2
    return b


def num(row, key):
    try:
        v = float(row.get(key, "nan"))
    except ValueError:
        return float("nan")
    return v


def dense_per_aggregate(path, lateness_s=30.0, small=128):
    """Mean number of dense (HDR) duration summaries per open window part (module docs)."""
    weight = dense = 0.0
    with open(path) as f:
        for line in f:
            if '"kpi.window"' not in line:
                continue
            r = json.loads(line)
            size = r["window"]["size_seconds"]
            parts = max(1, len(r.get("partitions", [])))
            open_s = size + lateness_s
            sums = [r[k] for k in ("first_response_seconds", "resolution_seconds",
                                   "handle_seconds") if k in r]
            if "recovery" in r:
                sums.append(r["recovery"]["answer_seconds"])
            n = 0.0
            for d in sums:
                per_part = d["count"] / parts
                if per_part > small:
                    n += (1 - small / per_part) * size / open_s + lateness_s / open_s
            weight += parts * open_s
            dense += parts * open_s * n
    if weight == 0:
        raise ValueError("no kpi.window records")
    return dense / weight


def dedup_ids(rows):
    """Remembered event ids at each sample (see the module docs)."""
    ids, out = 0.0, []
    prev_t, prev_tickets = 0.0, None
    for r in rows:
        t = num(r, "t_s")
        dt = t - prev_t
        applied = max(0.0, num(r, "consumed_per_s") - num(r, "deadletters_per_s"))
        tickets = num(r, "state_tickets")
        if prev_tickets is not None and tickets < 0.75 * prev_tickets:
            speed = num(r, "event_time_speed")
            if not (speed > 0):
                speed = 20.0
            ids = applied * min(dt, KEEP_AFTER_SWEEP_S / speed)
        else:
            ids += applied * dt
        out.append(ids)
        prev_t, prev_tickets = t, tickets
    return out


# ---------------------------------------------------------------------------------------------
# Model E: the code since 4532056 (producer queue bounded in bytes, one checkpoint at a time,
# retention swept every quarter horizon) with a CSV that has state_aftersales_customers and
# state_event_ids (soak.py since bd2ec19). Every term is a per-entity size from
# docs/state-size.json, a figure of the engine alone on the soak's stream (state_size
# --soak-shape, docs/soak-shape-20k.csv), or a bound from the configuration. Nothing is fitted
# to the run being predicted.
#
#   E(t) = BASELINE_E + max over s <= t of [ state(s) + checkpoint(s) + consumer(s) ] + PRODUCER
#
#   state(s)      tickets x ticket_fixed + customers x customer_with_ticket_fixed
#                 + after-sales customers x aftersales + scheduled x timer
#                 + aggregates x (aggregate + DENSE_PER_AGGREGATE x dense_summary)
#                 + per-partition hash tables at their peak (5-byte index buckets for tickets
#                 and customers, 21-byte buckets for event ids)
#   checkpoint(s) the largest partition's checkpoint while held: CK_PER_ENTITY bytes for each
#                 of its tickets and customers (records, keys, values and the bookkeeping kept
#                 until it completes), the partition holding (tickets + customers) / 6 x
#                 CK_LARGEST_SHARE
#   consumer(s)   prefetched input: lag x CONSUMER_PER_MESSAGE
#   PRODUCER      librdkafka's producer queue at its bounds (queue.buffering.max.kbytes 8 MiB,
#                 .max.messages 100,000; state records and outputs get half each): each
#                 message is sizeof(rd_kafka_msg_t) 176 B + 16 B of malloc header + its key
#                 and value
#   RSS follows the high-water mark (glibc keeps freed chunks; slabs and tables never shrink).
BASELINE_E = 19.0           # idle `run`, soak.py's configuration, --broker mock, 6 partitions
                            # (scripts/soak.py --broker mock --duration 60 --rate 1): 18.9-19.0
DENSE_PER_AGGREGATE = 0.107 # docs/soak-shape-20k.csv: dense summaries / open aggregates
CK_PER_ENTITY = 414.0       # docs/soak-shape-20k.csv: largest checkpoint's heap / its entities
CK_LARGEST_SHARE = 1.014    # docs/soak-shape-20k.csv: largest partition / mean partition
STATE_RECORD = 45.0         # docs/soak-shape-20k.csv: key + value bytes per state record
OUTPUT_RECORD = 388.0       # output records' key + value (replay of the soak stream: 372 + 16)
# F = E + the allocator's overhead as the engine alone shows it on the same stream with run's
# trimming (state_size --soak-shape 900 --rate 20000 --trim 10, docs/soak-shape-20k-trim10.csv):
# RSS - heap in use, mean over t >= 120 s, less that process's own baseline RSS (6.3 MiB, no
# state): free chunks glibc keeps and pages partly used (fragmentation), which a trim cannot
# return.
ALLOCATOR_MB = 18.3 - 6.3
QUEUE_BYTES = 8 * MIB
QUEUE_MESSAGES = 100_000

# Model G (jemalloc, freed pages returned at once: RSS follows the memory in use, so the
# entities count as they are now, except what never shrinks):
#   idle run + state(t) + what the engine alone holds beyond its entities + the largest
#   partition's checkpoint while held + prefetched input + the producer queue at its bounds
# state(t): per-entity sizes (docs/state-size.json, measured with jemalloc) x the sample's
# counts for after-sales state, timers and aggregates (0.107 dense summaries each); tickets and
# customers as their slab vectors hold them: 6 partitions x slots for a power of two >= the
# partition's peak count (a Vec doubles and never shrinks; a freed slot is reused in place),
# 128 and 80 bytes a slot (size_of, = the measured fixed sizes); the ticket, customer and
# event-id hash tables at their peak (5 and 21 bytes a bucket).
BASELINE_G = 20.2       # idle `run` with jemalloc, soak.py's configuration, --broker mock,
                        # 6 partitions (soak.py --duration 60 --rate 1): 19.6-20.3 MiB
TICKET_SLOT, CUSTOMER_SLOT = 128.0, 80.0
# The engine alone on the soak's stream (state_size --soak-shape 400 --rate 20000 --trim 10,
# jemalloc, docs/soak-shape-20k-jem.csv): RSS - that process's baseline (7.4 MiB) - state(t),
# mean over t >= 120 s: 6.77 MiB (sd 0.41): the Prometheus observer, the scheduler's queues,
# free lists, customers' ticket-creation lists, what the per-entity scenarios do not grow.
ENGINE_EXTRA_MB = 6.77

# Model H (since 2026-12-01 10:30, jemalloc for the whole process: librdkafka's queues and fetch
# buffers are jemalloc's too, freed pages returned at once): G's terms, with
#   - the idle run measured with that build (soak.py --broker mock --duration 60 --rate 1):
#     18.4-19.0 MiB;
#   - the engine alone's extra read half-way between two checkpoints as well as just after
#     one (the change log of what changed since the last checkpoint grows between them:
#     state_size --soak-shape, docs/soak-shape-20k-h.csv, mean of both phases);
#   - librdkafka's producer queue as the sample's cxstream_output_queue gauges count it
#     (records x 192 B + their bytes) instead of its bound: jemalloc returns what it frees,
#     so the memory follows the queue's fill, not its high-water mark.
BASELINE_H = 18.8
ENGINE_EXTRA_H = 7.79   # just after a checkpoint of every partition (change log empty)
ENGINE_MID_H = 12.67    # half-way between two (half an interval of changes logged)
# The change log grows with the events applied since the partition's last checkpoint: the
# engine alone held 12.67 MiB half-way between two checkpoints (100,000 events later) against
# 7.79 just after one: 51.2 bytes per event (the event id and its time, 32 B, and the keys of
# the tickets and customers it touched). A sample with checkpoint_age_sum_s (soak.py since
# 2026-12-01 10:40) counts, per partition, its events since its last checkpoint (its age x
# the consumed rate / partitions); an older one half an interval's worth. The log is emptied
# when a checkpoint is taken, and cxstream_checkpoint_age_seconds counts from its completion:
# CK_COMPLETE_S is how long one takes from taken to acknowledged under this load (1.2 s: 684 s
# over 569 checkpoints in the 12884b4 soak, docs/soak.md).
LOG_HALF_INTERVAL_MB = ENGINE_MID_H - ENGINE_EXTRA_H
LOG_PER_EVENT = LOG_HALF_INTERVAL_MB * MIB / 100_000
CK_COMPLETE_S = 1.2


def pow2_slots(items):
    """Capacity of a Vec that grew by pushes to `items` (doubling from 4)."""
    b = 4
    while b < items:
        b *= 2
    return b


def model_g(rows, rss, start):
    return model_jemalloc(rows, rss, start, "G")


def model_h(rows, rss, start):
    return model_jemalloc(rows, rss, start, "H")


def producer_queued(r):
    """librdkafka's producer queue as the sample's gauges report it: each queued message's
    rd_kafka_msg_t and malloc header + its key and value bytes."""
    recs, mb = num(r, "output_queue_records"), num(r, "output_queue_mb")
    if math.isnan(recs) or math.isnan(mb):
        return producer_bound()
    return recs * RD_KAFKA_MSG + mb * 1e6


def held_state(peak, af, sc, ag, aftersales, timer, aggregate):
    """The state as the engine holds it (models G and H): slabs and hash tables at the
    capacity their partition's peak made them, after-sales state, timers and aggregates as
    counted now."""
    per = {k: math.ceil(v / PARTITIONS) for k, v in peak.items()}
    tables = PARTITIONS * sum((SLOT if k == "i" else INDEX_SLOT) * buckets(v)
                              for k, v in per.items())
    slabs = PARTITIONS * (TICKET_SLOT * pow2_slots(per["t"])
                          + CUSTOMER_SLOT * pow2_slots(per["c"]))
    return slabs + tables + aftersales * af + timer * sc + aggregate * ag


def engine_extra(path, rss, start=120.0):
    """What the engine alone holds beyond held_state, from a `state_size --soak-shape` CSV:
    RSS - that process's baseline - held_state, mean over t >= start, read just after a
    checkpoint of every partition (rss_mb) and half-way to the next (rss_mid_mb)."""
    with open(path) as f:
        rows = [r for r in csv.DictReader(f)]
    aggregate = rss["aggregate"] + DENSE_PER_AGGREGATE * rss["dense_summary"]
    peak = {"t": 0.0, "c": 0.0, "i": 0.0}
    after, mid = [], []
    for r in rows:
        for k, col in (("t", "tickets"), ("c", "customers"), ("i", "event_ids")):
            peak[k] = max(peak[k], num(r, col))
        state = held_state(peak, num(r, "aftersales_customers"), num(r, "scheduled"),
                           num(r, "aggregates"), rss["aftersales"], rss["timer"], aggregate)
        if num(r, "t_s") >= start:
            base = rss["baseline"]
            after.append((num(r, "rss_mb") * MIB - base - state) / MIB)
            mid.append((num(r, "rss_mid_mb") * MIB - base - state) / MIB)
    if not after:
        sys.exit(f"soak_predict: {path}: no samples from {start} s on")
    return sum(after) / len(after), sum(mid) / len(mid), len(after)



def model_jemalloc(rows, rss, start, which):
    """Models G and H (see above): the same terms; H's idle run and engine extra are
    measured with jemalloc as the whole process's allocator, and its producer queue is the
    sample's, not its bound."""
    aftersales, timer = rss["aftersales"], rss["timer"]
    aggregate = rss["aggregate"] + DENSE_PER_AGGREGATE * rss["dense_summary"]
    baseline, extra = (BASELINE_G, ENGINE_EXTRA_MB) if which == "G" else (BASELINE_H, ENGINE_EXTRA_H)
    bound = producer_bound()
    peak = {"t": 0.0, "c": 0.0, "i": 0.0}
    out = []
    for r in rows:
        t, tk, cu, af, sc, ag, ids, lag = counts(r, peak)
        state = held_state(peak, af, sc, ag, aftersales, timer, aggregate)
        ck = CK_PER_ENTITY * (tk + cu) / PARTITIONS * CK_LARGEST_SHARE
        consumer = lag * CONSUMER_PER_MESSAGE
        producer = bound if which == "G" else producer_queued(r)
        log = 0.0
        if which == "H":
            ages, rate = num(r, "checkpoint_age_sum_s"), num(r, "consumed_per_s")
            log = ((ages + PARTITIONS * CK_COMPLETE_S) * rate / PARTITIONS * LOG_PER_EVENT
                   if ages == ages and rate == rate else LOG_HALF_INTERVAL_MB * MIB)
        g = baseline + extra + (state + ck + consumer + producer + log) / MIB
        out.append({"t_s": t, "rss_mb": num(r, "rss_mb"), which: g,
                    "heap_allocated_mb": num(r, "heap_allocated_mb"),
                    "heap_resident_mb": num(r, "heap_resident_mb"),
                    "state_mb": state / MIB, "checkpoint_mb": ck / MIB,
                    "consumer_mb": consumer / MIB, "producer_mb": producer / MIB,
                    "change_log_mb": log / MIB})
    sel, n, mean = compared(out, start)
    errs = [(x[which] - x["rss_mb"]) / x["rss_mb"] for x in sel]
    queue = "producer queue bound" if which == "G" else "producer queue as sampled"
    print(f"  {which}  idle run + state (slabs and tables at their peak) + engine extra + largest "
          f"checkpoint + prefetch + {queue}: predicted "
          f"{min(x[which] for x in sel):.1f}-{max(x[which] for x in sel):.1f} MiB (mean "
          f"{mean(which):.1f}); error min {100 * min(errs):+.1f} %, mean "
          f"{100 * sum(errs) / n:+.1f} %, max {100 * max(errs):+.1f} %; "
          f"{sum(abs(e) <= 0.05 for e in errs)} of {n} samples within +-5 %; "
          f"mean RSS against mean {which}: "
          f"{100 * (mean(which) - mean('rss_mb')) / mean('rss_mb'):+.1f} %")
    print(f"  parts (means, MiB): idle run {baseline:.1f}, engine extra {extra:.1f}, "
          f"state {mean('state_mb'):.1f} (max {max(x['state_mb'] for x in sel):.1f}), largest "
          f"checkpoint {mean('checkpoint_mb'):.1f}, consumer prefetch {mean('consumer_mb'):.1f}, "
          f"{queue} {mean('producer_mb'):.1f}, change log {mean('change_log_mb'):.1f}")
    print(f"  measured by the run (cxstream_heap_bytes, means, MiB): allocated "
          f"{mean('heap_allocated_mb'):.1f}, jemalloc resident {mean('heap_resident_mb'):.1f}, "
          f"RSS - resident {mean('rss_mb') - mean('heap_resident_mb'):.1f}")
    return out


def counts(r, peak):
    """A sample's time, state counts (tickets, customers, after-sales customers, scheduled
    items, aggregates, event ids) and lag; `peak` keeps the high-water of tickets, customers
    and ids."""
    tk, cu = num(r, "state_tickets"), num(r, "state_customers")
    ids = num(r, "state_event_ids")
    lag = num(r, "lag")
    for k, v in (("t", tk), ("c", cu), ("i", ids)):
        peak[k] = max(peak[k], v)
    return (num(r, "t_s"), tk, cu, num(r, "state_aftersales_customers"),
            num(r, "state_scheduled"), num(r, "state_window_aggregates"), ids,
            0.0 if math.isnan(lag) else lag)


def compared(out, start):
    """The samples from `start` on (printed as a range), their count and a mean function."""
    sel = [x for x in out if x["t_s"] >= start and x["rss_mb"] == x["rss_mb"]]
    if not sel:
        sys.exit(f"soak_predict: no samples from {start} s on")
    n = len(sel)
    mean = lambda k: sum(x[k] for x in sel) / n  # noqa: E731
    print(f"{n} samples from t = {sel[0]['t_s']:.0f} s to {sel[-1]['t_s']:.0f} s; measured RSS "
          f"{min(x['rss_mb'] for x in sel):.1f}-{max(x['rss_mb'] for x in sel):.1f} MiB "
          f"(mean {mean('rss_mb'):.1f})")
    return sel, n, mean


def producer_bound():
    half_b, half_m = QUEUE_BYTES / 2, QUEUE_MESSAGES / 2
    state_msgs = min(half_m, half_b / STATE_RECORD)
    out_msgs = min(half_m, half_b / OUTPUT_RECORD)
    return state_msgs * (RD_KAFKA_MSG + STATE_RECORD) + out_msgs * (RD_KAFKA_MSG + OUTPUT_RECORD)


def model_e(rows, rss, start):
    ticket, customer = rss["ticket_fixed"], rss["customer_with_ticket_fixed"]
    aftersales, timer = rss["aftersales"], rss["timer"]
    aggregate = rss["aggregate"] + DENSE_PER_AGGREGATE * rss["dense_summary"]
    producer = producer_bound()
    peak = {"t": 0.0, "c": 0.0, "i": 0.0}
    hw = 0.0
    out = []
    for r in rows:
        t, tk, cu, af, sc, ag, ids, lag = counts(r, peak)
        tables = PARTITIONS * sum((SLOT if k == "i" else INDEX_SLOT)
                                  * buckets(math.ceil(v / PARTITIONS)) for k, v in peak.items())
        state = (ticket * tk + customer * cu + aftersales * af + timer * sc + aggregate * ag
                 + tables)
        ck = CK_PER_ENTITY * (tk + cu) / PARTITIONS * CK_LARGEST_SHARE
        consumer = lag * CONSUMER_PER_MESSAGE
        hw = max(hw, state + ck + consumer)
        e = BASELINE_E + (hw + producer) / MIB
        out.append({"t_s": t, "rss_mb": num(r, "rss_mb"), "E": e, "F": e + ALLOCATOR_MB,
                    "state_mb": state / MIB, "checkpoint_mb": ck / MIB,
                    "consumer_mb": consumer / MIB, "producer_mb": producer / MIB})
    sel, n, mean = compared(out, start)
    for key, what in (("E", "baseline + high-water of (state + checkpoint + prefetch) + "
                            "producer queue bound"),
                      ("F", f"E + allocator overhead of the engine alone ({ALLOCATOR_MB:.1f})")):
        errs = [(x[key] - x["rss_mb"]) / x["rss_mb"] for x in sel]
        print(f"  {key}  {what}: predicted {min(x[key] for x in sel):.1f}-"
              f"{max(x[key] for x in sel):.1f} MiB; error min {100 * min(errs):+.1f} %, mean "
              f"{100 * sum(errs) / n:+.1f} %, max {100 * max(errs):+.1f} %; "
              f"{sum(abs(e) <= 0.05 for e in errs)} of {n} samples within +-5 %")
    print(f"  parts (means, MiB): baseline {BASELINE_E:.1f}, state now {mean('state_mb'):.1f} "
          f"(max {max(x['state_mb'] for x in sel):.1f}), largest checkpoint {mean('checkpoint_mb'):.1f}, "
          f"consumer prefetch {mean('consumer_mb'):.1f}, producer queue at its bounds "
          f"{producer / MIB:.1f}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", default=os.path.join(REPO, "docs", "soak-1h-3k.csv"))
    ap.add_argument("--sizes", help="per-entity sizes (default: docs/state-size.json, measured "
                    "with jemalloc, for model G; docs/state-size-glibc.json, measured with "
                    "glibc's malloc, for the older CSVs)")
    ap.add_argument("--from", dest="start", type=float, default=600.0,
                    help="first sample compared, seconds (default 600: the last 50 min of 1 h)")
    ap.add_argument("--dense-per-aggregate", type=float, default=0.109,
                    help="dense duration summaries per open aggregate (default 0.109: replay "
                         "of the soak stream, see docs/soak.md)")
    ap.add_argument("--windows", help="kpi.window records of a replay of the soak's stream: "
                    "compute --dense-per-aggregate from them")
    ap.add_argument("--model", choices=("G", "H"), default="H",
                    help="for a CSV with cxstream_heap_bytes: H (default; jemalloc for the whole "
                         "process, since 2026-12-01 10:30) or G (jemalloc for Rust only, "
                         "8c5b1a6 to 4ff4294, e.g. docs/soak-1h-20k-jem.csv)")
    ap.add_argument("--engine-alone", metavar="SOAK_SHAPE_CSV",
                    help="print the engine alone's extra (model H's ENGINE_EXTRA_H) from a "
                         "`state_size --soak-shape` CSV with rss_mid_mb, and stop")
    ap.add_argument("--out", help="write every sample's predictions to this CSV")
    args = ap.parse_args()

    try:
        with open(args.csv) as f:
            rows = list(csv.DictReader(f))
        jemalloc = bool(args.engine_alone) or (bool(rows) and "heap_allocated_mb" in rows[0])
        sizes = args.sizes or os.path.join(
            REPO, "docs", "state-size.json" if jemalloc else "state-size-glibc.json")
        with open(sizes) as f:
            sz = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"soak_predict: {e}")
    if not rows:
        sys.exit("soak_predict: no samples")
    if args.windows:
        try:
            args.dense_per_aggregate = dense_per_aggregate(args.windows)
        except (OSError, ValueError, KeyError, TypeError) as e:
            sys.exit(f"soak_predict: {args.windows}: {e}")
        print(f"dense duration summaries per open aggregate: {args.dense_per_aggregate:.3f}")
    rss = {k: v["rss"] for k, v in sz.items() if isinstance(v, dict)}
    if args.engine_alone:
        a, m, n = engine_extra(args.engine_alone, rss)
        print(f"engine alone beyond its held state ({n} samples): {a:.2f} MiB just after a "
              f"checkpoint (ENGINE_EXTRA_H), {m:.2f} MiB half-way between two")
        return 0
    if "state_aftersales_customers" in rows[0]:
        model = ({"G": model_g, "H": model_h}[args.model] if jemalloc else model_e)
        results = model(rows, rss, args.start)
        if args.out:
            with open(args.out, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(results[0].keys()))
                w.writeheader()
                for x in results:
                    w.writerow({k: round(v, 2) if isinstance(v, float) else v
                                for k, v in x.items()})
        return 0
    slot_at_n = sz["slot_at_n"]
    index_at_n = sz.get("index_at_n", slot_at_n)
    ticket, customer = rss["ticket_fixed"], rss["customer_with_ticket_fixed"]
    event_id, timer = rss["event_id_fixed"], rss["timer"]
    aggregate = rss["aggregate"] + args.dense_per_aggregate * rss["dense_summary"]

    engine_only = "event_ids" in rows[0]
    if engine_only:
        baseline = rss["baseline"] / MIB
        ids_series = [num(r, "event_ids") for r in rows]
    else:
        baseline = BASELINE_MB
        ids_series = dedup_ids(rows)
    peak_items = {"t": 0.0, "c": 0.0, "i": 0.0}
    hw = {"B": 0.0, "C": 0.0, "D": 0.0}
    swept, prev_tk = False, None
    results = []
    for r, ids in zip(rows, ids_series):
        t = num(r, "t_s")
        tk, cu = num(r, "state_tickets" if not engine_only else "tickets"), \
            num(r, "state_customers" if not engine_only else "customers")
        sc = num(r, "state_scheduled" if not engine_only else "scheduled")
        ag = num(r, "state_window_aggregates" if not engine_only else "aggregates")
        measured = num(r, "rss_mb")
        # A: count x size at N = 1M (buckets at that load), sparse aggregates.
        a_state = ((ticket + index_at_n) * tk + (customer + index_at_n) * cu
                   + (event_id + slot_at_n) * ids + timer * sc + rss["aggregate"] * ag)
        a = baseline + a_state / MIB
        # B: per-partition tables at their peak, fixed parts, dense summaries; high-water.
        for k, v in (("t", tk), ("c", cu), ("i", ids)):
            peak_items[k] = max(peak_items[k], v)
        tables = PARTITIONS * sum((SLOT if k == "i" else INDEX_SLOT)
                                  * buckets(math.ceil(v / PARTITIONS))
                                  for k, v in peak_items.items())
        fixed = ticket * tk + customer * cu + event_id * ids + timer * sc + aggregate * ag
        state = tables + fixed
        hw["B"] = max(hw["B"], state)
        # C: + the Kafka path.
        swept = swept or (prev_tk is not None and tk < 0.75 * prev_tk)
        prev_tk = tk
        if engine_only:
            producer = consumer = waiting = 0.0
            ck = num(r, "ck_heap_mb") * MIB
        else:
            lag = num(r, "lag")
            lag = 0.0 if math.isnan(lag) else lag
            producer = PRODUCER_QUEUE_MESSAGES * (RD_KAFKA_MSG + OUTPUT_PAYLOAD)
            consumer = lag * CONSUMER_PER_MESSAGE
            ck = CK_LARGEST_ENCODED_MB * MIB if swept else 0.0
            waiting = CK_LARGEST_RECORDS * OWNED if swept else 0.0
        hw["C"] = max(hw["C"], state + producer + consumer + ck)
        hw["D"] = max(hw["D"], state + producer + consumer + ck + waiting)
        results.append({"t_s": t, "rss_mb": measured, "A": a, "B": baseline + hw["B"] / MIB,
                        "C": baseline + hw["C"] / MIB, "D": baseline + hw["D"] / MIB, "ids": ids, "tables_mb": tables / MIB,
                        "fixed_mb": fixed / MIB, "producer_mb": producer / MIB,
                        "consumer_mb": consumer / MIB, "checkpoint_mb": ck / MIB,
                        "waiting_mb": waiting / MIB})

    sel = [x for x in results if x["t_s"] >= args.start and x["rss_mb"] == x["rss_mb"]]
    if not sel:
        sys.exit(f"soak_predict: no samples from {args.start} s on")
    print(f"{len(sel)} samples from t = {sel[0]['t_s']:.0f} s to {sel[-1]['t_s']:.0f} s; "
          f"measured RSS {min(x['rss_mb'] for x in sel):.1f}-{max(x['rss_mb'] for x in sel):.1f} MiB "
          f"(mean {sum(x['rss_mb'] for x in sel) / len(sel):.1f})")
    for key, what in (("A", "baseline + count(t) x size at N = 1M"),
                      ("B", "baseline + high-water mark of the engine's state"),
                      ("C", "baseline + high-water mark of state + Kafka path"),
                      ("D", "C + the largest checkpoint's records all waiting in the sink")):
        errs = [(x[key] - x["rss_mb"]) / x["rss_mb"] for x in sel]
        pred = [x[key] for x in sel]
        print(f"  {key}  {what}: predicted {min(pred):.1f}-{max(pred):.1f} MiB; error "
              f"min {100 * min(errs):+.1f} %, mean {100 * sum(errs) / len(errs):+.1f} %, "
              f"max {100 * max(errs):+.1f} %")
    n = len(sel)
    mean = lambda k: sum(x[k] for x in sel) / n  # noqa: E731
    print(f"  parts (means over these samples, MiB): baseline {baseline:.1f}, hash tables "
          f"{mean('tables_mb'):.1f}, entities now {mean('fixed_mb'):.1f}, producer queue "
          f"{mean('producer_mb'):.1f}, consumer prefetch {mean('consumer_mb'):.1f}, checkpoint "
          f"{mean('checkpoint_mb'):.1f} (largest {max(x['checkpoint_mb'] for x in sel):.1f}), its "
          f"records waiting in the sink {mean('waiting_mb'):.1f} (D only); "
          f"event ids remembered: mean {mean('ids'):,.0f}, max {max(x['ids'] for x in sel):,.0f}")
    if args.out:
        with open(args.out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(results[0].keys()))
            w.writeheader()
            for x in results:
                w.writerow({k: round(v, 2) if isinstance(v, float) else v for k, v in x.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
