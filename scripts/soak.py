#!/usr/bin/env python3
"""Soak test of `cxstream run` against a real Kafka-protocol broker (issue 12).

Starts a Tansu broker (or uses --bootstrap), creates the topics (input with N partitions,
output, dead letters, the compacted state topic), runs the release binary's `cxstream run`
with a configuration whose horizons are minutes (so that state reaches its steady size
within the run), feeds it with `cxstream generate --start now --rate R`, and every
--interval seconds samples:

  RSS and CPU of cxstream (and of the broker and the generator), consumer lag, processing
  latency (end to end: probe messages written to the input and read back from the
  dead-letter topic; and the per-batch cxstream_processing_seconds histogram), state sizes
  (cxstream_state_tickets / customers / scheduled items / window aggregates), throughput in
  and out,

writing OUT/soak.csv, OUT/soak.png and OUT/summary.json (plus the config and every log).
See docs/soak.md for how to read them.

  scripts/soak.py --duration 180 --rate 5000 --out target/soak-3m
  scripts/soak.py                     # 1 hour at 20,000 events/s (see docs/soak.md first)

Stdlib + confluent-kafka only; the PNG is drawn by a small built-in plotter.
"""

import argparse
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import procutil  # noqa: E402
import tansu  # noqa: E402

try:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError:  # pragma: no cover
    sys.exit("soak.py needs the Python Kafka client: pip install confluent-kafka "
             "(or run scripts/install-test-deps.sh)")

GROUP = "soak"
TOPICS = {"input": "soak.events", "output": "soak.kpi", "deadletter": "soak.deadletter"}

# Horizons of minutes, so that state reaches its steady size within the run; SLA targets
# of minutes too (a ticket is never evicted while an SLA clock runs). `max_future` is large
# because the generator's event time runs faster than the wall clock (see docs/soak.md).
SLA_MINUTES = """\
[sla.first_response]
urgent = "1m"
high = "2m"
normal = "5m"
low = "10m"

[sla.resolution]
urgent = "5m"
high = "10m"
normal = "15m"
low = "20m"
"""

CONFIG = """\
# Written by scripts/soak.py: horizons of minutes so that state reaches a steady size.
[engine]
windows = ["1m", "5m"]
allowed_lateness = "30s"
dedup_horizon = "2m"
ticket_retention_solved = "5m"
ticket_retention_open = "10m"
customer_retention = "10m"

{sla}
[signals]
half_life = "5m"
cooldown = "5m"
repeat_contact_window = "5m"
effectiveness_horizon = "10m"
recovery_due = "5m"
repurchase_horizon = "10m"

[input]
max_future = "{max_future}"

[kafka]
bootstrap_servers = "{bootstrap}"
group_id = "{group}"
input_topics = ["{input}"]
output_topic = "{output}"
deadletter_topic = "{deadletter}"
checkpoint_interval = "10s"

[metrics]
listen = "127.0.0.1:{port}"
"""

# Seconds between probe events (one per input partition each time).
PROBE_EVERY = 2.0

COLUMNS = [
    "t_s", "time", "rss_mb", "cpu_pct", "broker_rss_mb", "broker_cpu_pct",
    "generator_rss_mb", "generator_cpu_pct",
    "mem_available_mb", "produced_per_s", "consumed_per_s", "lag", "lag_max_partition",
    "lag_s", "e2e_p50_ms", "e2e_max_ms", "e2e_samples", "batch_mean_ms", "batch_p99_ms",
    "state_tickets", "state_customers", "state_aftersales_customers", "state_scheduled",
    "state_window_aggregates", "state_event_ids",
    "merge_pending", "records_per_s", "deadletters_per_s", "event_time_speed",
    "checkpoint_mb_per_s", "input_paused", "output_queue_records", "output_queue_mb",
    "heap_allocated_mb", "heap_resident_mb", "checkpoint_age_sum_s",
]


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc and /metrics


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def mem_available_mb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(port):
    """{(name, frozenset(labels)): value} from cxstream's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode("utf-8", "replace")
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


def total(metrics, name, **match):
    return sum(v for (n, labels), v in metrics.items() if n == name
               and all((k, val) in labels for k, val in match.items()))


def series(metrics, name):
    return [(dict(labels), v) for (n, labels), v in metrics.items() if n == name]


def hist_quantile(now, before, name, q):
    """Quantile q of the observations between two scrapes (upper bucket bound)."""
    def buckets(m):
        return sorted((float(dict(lb)["le"]), v) for (n, lb), v in m.items()
                      if n == name + "_bucket")
    b1, b0 = buckets(now), dict(buckets(before or {}))
    deltas = [(le, v - b0.get(le, 0.0)) for le, v in b1]
    if not deltas or deltas[-1][1] <= 0:
        return float("nan")
    want = q * deltas[-1][1]
    for le, c in deltas:
        if c >= want:
            return le
    return float("nan")


# ---------------------------------------------------------------- probes (end to end)


class Probes:
    """Writes one invalid probe event per input partition every interval; cxstream
    dead-letters it; a consumer of the dead-letter topic measures produce → dead letter
    (the dead letter's own CreateTime minus the probe's send time)."""

    def __init__(self, bootstrap, partitions):
        self.partitions = partitions
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": "soak-probes",
            "enable.auto.commit": False, "auto.offset.reset": "latest",
            "fetch.wait.max.ms": 100})
        md = self.consumer.list_topics(TOPICS["deadletter"], timeout=10)
        parts = md.topics[TOPICS["deadletter"]].partitions
        tps = []
        for p in parts:
            lo, hi = self.consumer.get_watermark_offsets(
                TopicPartition(TOPICS["deadletter"], p), timeout=10)
            tps.append(TopicPartition(TOPICS["deadletter"], p, hi))
        self.consumer.assign(tps)
        self.lock = threading.Lock()
        self.samples = []
        self.seq = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._consume, daemon=True)
        self.thread.start()

    def send(self):
        now = int(time.time() * 1000)
        for p in range(self.partitions):
            self.seq += 1
            v = json.dumps({"soak_probe": now, "id": f"probe-{self.seq}"})
            self.producer.produce(TOPICS["input"], value=v, partition=p)
        self.producer.poll(0)

    def _consume(self):
        while not self.stop.is_set():
            for m in self.consumer.consume(num_messages=2000, timeout=0.5):
                if m.error() or b"soak_probe" not in (m.value() or b""):
                    continue
                try:
                    payload = json.loads(json.loads(m.value())["payload"])
                    sent = int(payload["soak_probe"])
                except (ValueError, KeyError, TypeError):
                    continue
                kind, ts = m.timestamp()
                at = ts if kind != 0 and ts > 0 else int(time.time() * 1000)
                with self.lock:
                    self.samples.append(at - sent)

    def take(self):
        with self.lock:
            s, self.samples = self.samples, []
        return sorted(s)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.producer.flush(5)
        self.consumer.close()


# ---------------------------------------------------------------- a tiny PNG plotter

FONT = {  # 3x5 glyphs, rows top to bottom, 3 bits each
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001010010", "8": "111101111101111",
    "9": "111101111001111", ".": "000000000000010", "-": "000000111000000",
    " ": "000000000000000", "/": "001001010100100", "%": "101001010100101",
    "(": "010100100100010", ")": "010001001001010", ",": "000000000010100",
    ":": "000010000010000", "=": "000111000111000", "+": "000010111010000",
    "_": "000000000000111", ">": "100010001010100", "<": "001010100010001",
}
for ch, rows in {
    "A": "010101111101101", "B": "110101110101110", "C": "011100100100011",
    "D": "110101101101110", "E": "111100110100111", "F": "111100110100100",
    "G": "011100101101011", "H": "101101111101101", "I": "111010010010111",
    "J": "001001001101010", "K": "101101110101101", "L": "100100100100111",
    "M": "101111111101101", "N": "110101101101101", "O": "010101101101010",
    "P": "110101110100100", "Q": "010101101110011", "R": "110101110101101",
    "S": "011100010001110", "T": "111010010010010", "U": "101101101101111",
    "V": "101101101101010", "W": "101101111111101", "X": "101101010101101",
    "Y": "101101010010010", "Z": "111001010100111",
}.items():
    FONT[ch] = rows
    FONT[ch.lower()] = rows

PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189)]


class Canvas:
    def __init__(self, w, h):
        self.w, self.h = w, h
        self.px = bytearray(b"\xff" * (w * h * 3))

    def set(self, x, y, c):
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i:i + 3] = bytes(c)

    def line(self, x0, y0, x1, y1, c, thick=1):
        n = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(n + 1):
            x = round(x0 + (x1 - x0) * i / n)
            y = round(y0 + (y1 - y0) * i / n)
            for dx in range(thick):
                for dy in range(thick):
                    self.set(x + dx, y + dy, c)

    def text(self, x, y, s, c=(0, 0, 0), scale=2):
        for ch in s:
            rows = FONT.get(ch, FONT[" "])
            for r in range(5):
                for k in range(3):
                    if rows[r * 3 + k] == "1":
                        for a in range(scale):
                            for b in range(scale):
                                self.set(x + k * scale + a, y + r * scale + b, c)
            x += 4 * scale

    def png(self, path):
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3])
                       for y in range(self.h))

        def chunk(kind, data):
            c = kind + data
            return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c))
        with open(path, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n")
            f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)))
            f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
            f.write(chunk(b"IEND", b""))


def fmt(v):
    if v != v:
        return "nan"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.1f}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.1f}"
    return f"{v:.2f}"


def plot(rows, path, title):
    """Six panels of time series from the CSV rows."""
    panels = [
        ("RSS MB (cxstream, broker)", ["rss_mb", "broker_rss_mb"]),
        ("consumer lag (messages)", ["lag"]),
        ("latency ms (e2e p50, e2e max, batch p99)", ["e2e_p50_ms", "e2e_max_ms", "batch_p99_ms"]),
        ("state (tickets, customers)", ["state_tickets", "state_customers"]),
        ("events/s (produced, consumed)", ["produced_per_s", "consumed_per_s"]),
        ("CPU % (cxstream, broker, generator)", ["cpu_pct", "broker_cpu_pct", "generator_cpu_pct"]),
    ]
    cols, W, H = 2, 1400, 1020
    pw, ph = W // cols, (H - 40) // 3
    cv = Canvas(W, H)
    cv.text(12, 10, title, scale=3)
    ts = [r["t_s"] for r in rows]
    tmax = max(ts) if ts else 1.0
    for i, (name, keys) in enumerate(panels):
        ox, oy = (i % cols) * pw, 40 + (i // cols) * ph
        x0, y0, x1, y1 = ox + 80, oy + 30 + 14 * (len(keys) - 1), ox + pw - 20, oy + ph - 40
        vals = [r[k] for r in rows for k in keys if r.get(k) == r.get(k) and r.get(k) is not None]
        vmax = max(vals) if vals else 1.0
        vmax = vmax * 1.1 if vmax > 0 else 1.0
        cv.text(x0, oy + 8, name)
        for k in range(5):
            y = y1 - (y1 - y0) * k // 4
            cv.line(x0, y, x1, y, (225, 225, 225))
            cv.text(ox + 6, y - 5, fmt(vmax * k / 4))
        for k in range(5):
            x = x0 + (x1 - x0) * k // 4
            cv.text(x - 10, y1 + 8, f"{tmax * k / 4:.0f}s")
        cv.line(x0, y0, x0, y1, (0, 0, 0))
        cv.line(x0, y1, x1, y1, (0, 0, 0))
        for j, key in enumerate(keys):
            color = PALETTE[j % len(PALETTE)]
            prev = None
            for r in rows:
                v = r.get(key)
                if v is None or v != v:
                    prev = None
                    continue
                x = x0 + int((x1 - x0) * r["t_s"] / (tmax or 1))
                y = y1 - int((y1 - y0) * v / vmax)
                if prev:
                    cv.line(prev[0], prev[1], x, y, color, thick=2)
                prev = (x, y)
            cv.line(x1 - 230, oy + 14 + j * 14, x1 - 205, oy + 14 + j * 14, color, thick=3)
            cv.text(x1 - 198, oy + 9 + j * 14, key[:16])
    cv.png(path)


# ---------------------------------------------------------------- the run


class MockBroker:
    """librdkafka's mock cluster in its own process (`examples/mock_broker.rs`): bounded memory
    (the last 5 MB of each partition), for an hour at 20,000 events/s. It does not create
    topics through the admin API, so every topic is given at start."""

    def __init__(self, out, partitions):
        exe = os.path.join(REPO, "target", "release", "examples", "mock_broker")
        if not os.access(exe, os.X_OK):
            sys.exit(f"{exe} not found: build it with `cargo build --release --examples`")
        argv = [exe]
        for name, n in [(TOPICS["input"], partitions), (TOPICS["output"], partitions),
                        (TOPICS["output"] + ".parts", partitions),
                        # the dead letters of a soak are many: spread them, so each
                        # partition's last 5 MB hold minutes of them
                        (TOPICS["deadletter"], partitions), (f"{GROUP}.state", partitions)]:
            argv += ["--topic", f"{name}:{n}"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(out, "mock_broker.log"), "ab"),
                                     start_new_session=True)
        line = self.proc.stdout.readline().decode().strip()
        if not line:
            sys.exit("mock_broker did not start: see mock_broker.log")
        self.bootstrap = line

    def stop(self, cleanup=False):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def create_topics(bootstrap, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(TOPICS["input"], partitions), NewTopic(TOPICS["output"], partitions),
           NewTopic(TOPICS["deadletter"], 1),
           NewTopic(f"{GROUP}.state", partitions, config={"cleanup.policy": "compact"})]
    for name, f in admin.create_topics(new, request_timeout=30).items():
        try:
            f.result()
        except Exception as e:  # an existing topic is fine (external broker, re-run)
            if "exist" not in str(e).lower():
                raise RuntimeError(f"cannot create topic {name}: {e}")


def wait_ready(port, proc, timeout, log_path):
    def ready():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False
    procutil.wait_until(ready, proc, timeout, "cxstream run", log_path)


def end_offsets(consumer, partitions):
    s = 0
    for p in range(partitions):
        lo, hi = consumer.get_watermark_offsets(TopicPartition(TOPICS["input"], p), timeout=5)
        s += hi
    return s


def summarize(rows, args, reason):
    """Steady-state figures over the last 5/6 of the run (the first sixth is warm-up)."""
    def stats(key, part):
        v = [r[key] for r in part if r.get(key) == r.get(key) and r.get(key) is not None]
        if not v:
            return None
        mean = sum(v) / len(v)
        return {"mean": round(mean, 2), "min": round(min(v), 2), "max": round(max(v), 2),
                "dev_pct": round(100 * max(abs(x - mean) for x in v) / mean, 1) if mean else None}
    steady = rows[len(rows) // 6:] if len(rows) >= 6 else rows
    keys = ["rss_mb", "broker_rss_mb", "lag", "lag_s", "e2e_p50_ms", "e2e_max_ms",
            "batch_p99_ms", "state_tickets", "state_customers", "consumed_per_s",
            "produced_per_s", "cpu_pct", "broker_cpu_pct", "generator_cpu_pct",
            "event_time_speed"]
    return {
        "stopped": reason, "duration_s": rows[-1]["t_s"] if rows else 0, "rate": args.rate,
        "partitions": args.partitions, "samples": len(rows),
        "steady_from_s": steady[0]["t_s"] if steady else None,
        "steady": {k: stats(k, steady) for k in keys},
        "last": rows[-1] if rows else None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See docs/soak.md.")
    ap.add_argument("--duration", type=float, default=3600, help="seconds of load (default 3600)")
    ap.add_argument("--rate", type=float, default=20000, help="events/s fed (default 20000)")
    ap.add_argument("--partitions", type=int, default=6, help="input partitions (default 6)")
    ap.add_argument("--out", default="target/soak", help="output directory (default target/soak)")
    ap.add_argument("--interval", type=float, default=10, help="seconds between samples (default 10)")
    ap.add_argument("--bootstrap", help="use this broker instead of starting Tansu")
    ap.add_argument("--broker", choices=["tansu", "mock"], default="tansu",
                    help="the broker started when no --bootstrap: tansu (default; keeps every "
                         "message in memory: ~18 MB/s at 20,000 events/s) or mock "
                         "(librdkafka's mock cluster, examples/mock_broker.rs: the last 5 MB "
                         "of each partition, for an hour at 20,000 events/s)")
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "cxstream"),
                    help="cxstream binary (default target/release/cxstream)")
    ap.add_argument("--tickets-per-hour", type=float, default=100000,
                    help="generator ticket rate in event time (default 100000)")
    ap.add_argument("--customers", type=int, default=200000,
                    help="generator customer population (default 200000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sla", choices=["minutes", "default"], default="minutes",
                    help="SLA targets: minutes (default; state steady within minutes, nearly "
                         "every ticket breaches) or the SPEC's (15m-72h: realistic breach "
                         "rates, tickets held for hours to days of event time)")
    ap.add_argument("--librdkafka", action="append", default=[], metavar="KEY=VALUE",
                    help="extra librdkafka property for cxstream (repeatable), e.g. "
                         "queue.buffering.max.messages=10000")
    ap.add_argument("--min-free-mb", type=float, default=2048,
                    help="stop early when the machine's MemAvailable drops below this (default 2048)")
    args = ap.parse_args()

    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary} not found: build it with `cargo build --release`")
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    broker = None
    procs = {}
    probes = None
    rows = []
    last_metrics = {}
    reason = "duration reached"
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if args.bootstrap:
            bootstrap = args.bootstrap
        elif args.broker == "mock":
            broker = MockBroker(out, args.partitions)
            bootstrap = broker.bootstrap
            procs["broker"] = broker.proc
        else:
            broker = tansu.Tansu(pidfile=os.path.join(out, "tansu.pid"),
                                 log=os.path.join(out, "tansu.log")).start()
            bootstrap = broker.bootstrap
            procs["broker"] = broker.proc
        log(f"broker {bootstrap}; creating topics ({args.partitions} input partitions)")
        if not isinstance(broker, MockBroker):
            create_topics(bootstrap, args.partitions)

        port = procutil.free_port()
        cfg_path = os.path.join(out, "cxstream.toml")
        with open(cfg_path, "w") as f:
            f.write(CONFIG.format(bootstrap=bootstrap, group=GROUP, port=port,
                                  max_future="3650d",
                                  sla=SLA_MINUTES if args.sla == "minutes" else "", **TOPICS))
            if args.librdkafka:
                f.write("\n[kafka.librdkafka]\n")
                for kv in args.librdkafka:
                    k, _, v = kv.partition("=")
                    f.write(f"{json.dumps(k.strip())} = {json.dumps(v.strip())}\n")
        run_log = os.path.join(out, "cxstream.log")
        run = procutil.spawn([args.binary, "--config", cfg_path, "run"], run_log)
        procs["cxstream"] = run
        wait_ready(port, run, 90, run_log)
        log(f"cxstream run ready (pid {run.pid}, metrics on 127.0.0.1:{port})")

        probes = Probes(bootstrap, args.partitions)
        gen_log = os.path.join(out, "generate.log")
        gen = procutil.spawn([
            args.binary, "generate", "--start", "now", "--rate", str(args.rate),
            "--events", str(int(args.rate * (args.duration + 600))), "--seed", str(args.seed),
            "--tickets-per-hour", str(args.tickets_per_hour), "--customers", str(args.customers),
            "--kafka", bootstrap, "--topic", TOPICS["input"]], gen_log)
        procs["generator"] = gen
        log(f"generator started at {args.rate:.0f} events/s for {args.duration:.0f} s; "
            f"sampling every {args.interval:.0f} s into {out}/soak.csv")

        mon = Consumer({"bootstrap.servers": bootstrap, "group.id": "soak-monitor"})
        csv_path = os.path.join(out, "soak.csv")
        csvf = open(csv_path, "w")
        csvf.write(",".join(COLUMNS) + "\n")
        t0 = time.monotonic()
        hz = os.sysconf("SC_CLK_TCK")
        watched = {"cpu": run.pid, "gcpu": gen.pid, "bcpu": broker.proc.pid if broker else None}

        def ticks():
            return {k: cpu_ticks(pid) if pid else None for k, pid in watched.items()}

        def pct(k, now_ticks, before, dt):
            a, b = now_ticks.get(k), before.get(k)
            return round(100 * (a - b) / hz / dt, 1) if a is not None and b is not None else float("nan")
        prev = {"t": t0, "m": scrape(port), "end": end_offsets(mon, args.partitions), "ticks": ticks()}
        next_at = next_probe = t0
        while True:
            next_at += args.interval
            while time.monotonic() < next_at and not stop.is_set():
                if time.monotonic() >= next_probe:
                    probes.send()
                    next_probe += PROBE_EVERY
                time.sleep(min(0.25, max(0.0, next_at - time.monotonic())))
            now = time.monotonic()
            if stop.is_set():
                reason = "interrupted"
            for name, p in procs.items():
                if p.poll() is not None:
                    reason = f"{name} exited with {p.returncode}"
                    stop.set()
            try:
                m = scrape(port)
            except OSError as e:
                reason = f"metrics endpoint failed: {e}"
                break
            dt = now - prev["t"]
            end = end_offsets(mon, args.partitions)
            lags = [v for lb, v in series(m, "cxstream_consumer_lag")
                    if lb.get("topic") == TOPICS["input"]]
            lag = sum(lags) if lags else float("nan")
            produced = (end - prev["end"]) / dt
            consumed = produced - ((lag - prev.get("lag", lag)) / dt if lags else 0)
            tk = ticks()
            e2e = probes.take()
            d = lambda name: total(m, name) - total(prev["m"], name)  # noqa: E731
            cnt = d("cxstream_processing_seconds_count")
            dls = (total(m, "cxstream_output_records_total", type="deadletter")
                   - total(prev["m"], "cxstream_output_records_total", type="deadletter"))
            wm = total(m, "cxstream_watermark_seconds")
            row = {
                "t_s": round(now - t0, 1), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "rss_mb": round(rss_mb(run.pid), 1),
                "cpu_pct": pct("cpu", tk, prev["ticks"], dt),
                "broker_rss_mb": round(rss_mb(broker.proc.pid), 1) if broker else float("nan"),
                "broker_cpu_pct": pct("bcpu", tk, prev["ticks"], dt),
                "generator_rss_mb": round(rss_mb(gen.pid), 1),
                "generator_cpu_pct": pct("gcpu", tk, prev["ticks"], dt),
                "mem_available_mb": round(mem_available_mb(), 0),
                "produced_per_s": round(produced, 0), "consumed_per_s": round(consumed, 0),
                "lag": lag, "lag_max_partition": max(lags) if lags else float("nan"),
                "lag_s": round(lag / produced, 2) if produced > 0 and lags else float("nan"),
                "e2e_p50_ms": e2e[len(e2e) // 2] if e2e else float("nan"),
                "e2e_max_ms": e2e[-1] if e2e else float("nan"), "e2e_samples": len(e2e),
                "batch_mean_ms": round(1000 * d("cxstream_processing_seconds_sum") / cnt, 2)
                if cnt > 0 else float("nan"),
                "batch_p99_ms": 1000 * hist_quantile(m, prev["m"], "cxstream_processing_seconds", 0.99),
                "state_tickets": total(m, "cxstream_state_tickets"),
                "state_customers": total(m, "cxstream_state_customers"),
                "state_aftersales_customers": total(m, "cxstream_state_aftersales_customers"),
                "output_queue_records": total(m, "cxstream_output_queue", unit="records"),
                "output_queue_mb": round(total(m, "cxstream_output_queue", unit="bytes")
                                         / 1048576, 2),
                "heap_allocated_mb": round(total(m, "cxstream_heap_bytes", kind="allocated")
                                           / 1048576, 1),
                "heap_resident_mb": round(total(m, "cxstream_heap_bytes", kind="resident")
                                          / 1048576, 1),
                "state_scheduled": total(m, "cxstream_state_scheduled_items"),
                "state_event_ids": total(m, "cxstream_state_event_ids"),
                "state_window_aggregates": total(m, "cxstream_state_window_aggregates"),
                "merge_pending": total(m, "cxstream_merge_pending_windows"),
                "records_per_s": round((d("cxstream_output_records_total") - dls) / dt, 1),
                "deadletters_per_s": round(dls / dt, 1),
                "event_time_speed": round((wm - prev.get("wm", wm)) / dt, 1) if "wm" in prev else float("nan"),
                "checkpoint_mb_per_s": round(d("cxstream_checkpoint_bytes_total") / dt / 1e6, 3),
                "input_paused": total(m, "cxstream_input_paused"),
                # Seconds since each partition's last checkpoint, summed over partitions
                # (soak_predict.py: the change log held until the next one).
                "checkpoint_age_sum_s": round(total(m, "cxstream_checkpoint_age_seconds"), 2),
            }
            rows.append(row)
            csvf.write(",".join(str(row[c]) for c in COLUMNS) + "\n")
            csvf.flush()
            log(f"t={row['t_s']:.0f}s rss={row['rss_mb']:.0f}MB cpu={row['cpu_pct']}% "
                f"(broker {row['broker_cpu_pct']}%, generator {row['generator_cpu_pct']}%) lag={lag:.0f} "
                f"e2e p50/max={row['e2e_p50_ms']}/{row['e2e_max_ms']}ms in={consumed:.0f}/s "
                f"tickets={row['state_tickets']:.0f} customers={row['state_customers']:.0f} "
                f"broker={row['broker_rss_mb']}MB free={row['mem_available_mb']:.0f}MB")
            prev = {"t": now, "m": m, "end": end, "ticks": tk, "lag": lag, "wm": wm}
            if stop.is_set():
                break
            if row["mem_available_mb"] < args.min_free_mb:
                reason = (f"stopped early: MemAvailable {row['mem_available_mb']:.0f} MB < "
                          f"--min-free-mb {args.min_free_mb:.0f} (the broker keeps every message in memory)")
                log(reason)
                break
            if now - t0 >= args.duration:
                break
        csvf.close()
        mon.close()
        last_metrics = prev["m"]
    finally:
        if probes:
            probes.close()
        for name in ("generator", "cxstream"):
            p = procs.get(name)
            if p is not None and p.poll() is None:
                procutil.stop_pid(p.pid, timeout=60 if name == "cxstream" else 5)
                p.wait()
        if broker:
            broker.stop(cleanup=False)
    if rows:
        plot(rows, os.path.join(out, "soak.png"),
             f"cxstream soak: {args.rate:.0f} events/s, {args.partitions} partitions, {rows[-1]['t_s']:.0f} s")
    summary = summarize(rows, args, reason)
    summary["totals"] = {
        "events_in": total(last_metrics, "cxstream_events_total")
        + total(last_metrics, "cxstream_events_invalid_total")
        + total(last_metrics, "cxstream_events_duplicate_total")
        + total(last_metrics, "cxstream_events_orphan_total"),
        "records_out_by_type": {dict(lb).get("type"): v for lb, v in
                                ((frozenset(lb), v) for (n, lb), v in last_metrics.items()
                                 if n == "cxstream_output_records_total")},
    }
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    log(f"{reason}; wrote {out}/soak.csv, soak.png, summary.json")
    print(json.dumps(summary["steady"], indent=1))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
