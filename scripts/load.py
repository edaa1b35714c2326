#!/usr/bin/env python3
"""Load harness of the Kafka path (issues 9 and 10): `cxstream run` against a real broker.

Starts a throw-away Tansu broker (memory storage, in a temp dir; $CXSTREAM_TANSU) or uses
--bootstrap HOST:PORT, and measures:

  kafka    Produces a JSON Lines file (default: `cxstream generate -n 1000000 --seed 7`) to an
           N-partition input topic, keyed by customer, with the Python confluent-kafka client
           (batched, no per-message flush); the end offsets come from the delivery reports,
           not from the broker's high watermark (Tansu's lags). Then, for --runs rounds, in an
           order rotated each round:
             bare        examples/bare_consumer: one rdkafka BaseConsumer reads every
                         partition to the end offsets and parses each value into a typed
                         struct with serde_json (the "bare consumer" of issue 10);
             cxstream-I  `cxstream run --until-end --until-offsets ...` from a fresh group,
                         kafka.checkpoint_interval = I for each I of --intervals (default
                         10s,1h: the throughput cost of checkpointing, issue 9).
           Each run: wall time (process start to exit), processing span (partitions assigned
           to caught up, from cxstream's JSON log / first to last message for bare), events/s,
           peak RSS (the child's ru_maxrss from wait4), and for cxstream the state topic it
           wrote (records, bytes, manifests = complete checkpoints; bytes per checkpoint and
           per event). Medians per mode, the cxstream/bare ratios and the checkpoint overhead
           (median of cxstream-10s over median of cxstream-1h) are reported.

  restore  Builds a partition holding --tickets open tickets and as many customers (one
           ticket.created per new customer, event times within 5 minutes and a day ahead
           of the wall clock, so no SLA is due and no idle advance reaches them) on a
           1-partition topic; `cxstream run --until-end` processes it and checkpoints at
           shutdown (checkpoint_interval 1h: one checkpoint, what compaction would leave);
           `cxstream state inspect` shows it; then --runs restarts of `cxstream run
           --until-end` on the same group each restore it (nothing new to read) and exit:
           restore time (cxstream's "partition restored" log line: read + rebuild +
           install; cxstream_restore_seconds observes read + rebuild), wall time, peak RSS.

  live     `cxstream run` (live) fed by `cxstream generate --start now --rate R` for
           --duration seconds, plus one invalid probe event per partition every 0.5 s.
           Afterwards the input and output topics are read back and three latencies
           computed from Kafka CreateTimes (all on this machine's clock):
             probe -> effect     the probe's dead letter's CreateTime minus its send time;
             window -> record    a kpi.window record's CreateTime minus the moment every
                                 partition's watermark (largest event time so far minus
                                 the allowed lateness, reconstructed from the input in
                                 offset order) reached the window's end;
             SLA due -> breach   an sla.breached record's CreateTime minus the moment its
                                 partition's watermark passed the due.
           SLA targets of minutes (first response 1/2/5/10 min) so breaches happen within
           the run; p50/p99/max, peak RSS, CPU, mean batch time; every probe's latency is
           kept in load.json (probe_samples).

  all      kafka, then restore, on one broker.

Results: OUT/load.json (every run, medians, ratios) and OUT/summary.md (the human summary,
also printed), plus each run's config and log in OUT/runs/. Default OUT: target/load.

  scripts/load.py kafka --file /work/baseline/e1m.jsonl --partitions 3 --runs 3
  scripts/load.py restore --tickets 1000000 --runs 3
  scripts/load.py all --file /work/baseline/e1m.jsonl
  scripts/load.py kafka --events 200000 --runs 1          # a quick try
  scripts/load.py live --rate 20000 --duration 60          # latency at 20k events/s
  CXSTREAM_ENGINE__WINDOWS='["1m"]' CXSTREAM_ENGINE__GROUP_BY='[[],["team"]]' \\
      scripts/load.py kafka --file /work/baseline/e1m.jsonl   # issue 10's W1 configuration

The run configuration is OUT/runs/*.toml: SPEC defaults except [input] max_future = 3650d
(generated files have event times days ahead of the Kafka timestamps, which the default
1 h would dead-letter) and session.timeout.ms 6000 (group joins of ~3 s on Tansu); any
CXSTREAM_* variable in the environment overrides it, as for `cxstream run` itself.
Needs target/release/cxstream and target/release/examples/bare_consumer
(`cargo build --release --bin cxstream --example bare_consumer`). Ctrl-C stops the
children and the broker and removes the temp dir. Only Python 3 stdlib + confluent-kafka.
See docs/benchmarks.md for the figures and how to read them.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import procutil  # noqa: E402
import tansu  # noqa: E402

try:
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError:  # pragma: no cover
    sys.exit("load.py needs the Python Kafka client: pip install confluent-kafka "
             "(or run scripts/install-test-deps.sh)")

CONFIG = """\
# Written by scripts/load.py ({what}). SPEC defaults except max_future (generated files run
# days ahead of the Kafka timestamps) and the group session settings; CXSTREAM_* variables
# in the environment override this file.
[input]
max_future = "3650d"

[kafka]
bootstrap_servers = "{bootstrap}"
group_id = "{group}"
input_topics = ["{input}"]
output_topic = "{output}"
deadletter_topic = "{deadletter}"
checkpoint_interval = "{interval}"

[kafka.librdkafka]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"

[metrics]
listen = "127.0.0.1:{port}"
"""

SESSION = ["session.timeout.ms=6000", "heartbeat.interval.ms=1000"]

# Children running now (stopped on exit, whatever happens).
RUNNING = {}


def log(msg):
    print(f"[load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Failure(Exception):
    """A measurement that cannot go on; the message says why."""


# ---------------------------------------------------------------- broker and topics


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topics(bootstrap, topics, compact=()):
    """topics: {name: partitions}; names in compact get cleanup.policy=compact."""
    new = [NewTopic(n, p, config={"cleanup.policy": "compact"} if n in compact else {})
           for n, p in topics.items()]
    a = admin(bootstrap)  # kept alive until the futures resolve
    for name, f in a.create_topics(new, request_timeout=30).items():
        try:
            f.result()
        except Exception as e:  # noqa: BLE001 (the client raises KafkaException)
            if "exist" not in str(e).lower():
                raise Failure(f"cannot create topic {name}: {e}")


def delete_topics(bootstrap, names):
    """Frees the broker's memory between runs; failures are only reported."""
    if not names:
        return
    a = admin(bootstrap)
    for name, f in a.delete_topics(list(names), request_timeout=30).items():
        try:
            f.result()
        except Exception as e:  # noqa: BLE001
            log(f"could not delete topic {name}: {e}")


# ---------------------------------------------------------------- producing

KEY = b'"customer":"'


def customer_key(line):
    """The top-level "customer" string of a JSON line (what kclient.py keys by): a fast scan
    for generated lines, json for anything unusual; None without one."""
    i = line.find(KEY)
    if i >= 0 and line.find(KEY, i + 1) < 0:
        j = line.find(b'"', i + len(KEY))
        if j > 0 and b"\\" not in line[i + len(KEY):j]:
            return line[i + len(KEY):j]
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if isinstance(obj, dict) and isinstance(obj.get("customer"), str):
        return obj["customer"].encode("utf-8")
    return None


def produce(bootstrap, topic, lines):
    """Sends every non-empty line, keyed by customer (librdkafka's default partitioner, as
    `replay --partitions` assumes). Returns (count, seconds, {partition: end offset})."""
    p = Producer({
        "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
        "linger.ms": 20, "batch.num.messages": 10000, "batch.size": 500000,
        "queue.buffering.max.messages": 1000000, "queue.buffering.max.kbytes": 1048576,
    })
    ends, errors = {}, []

    def delivered(err, msg):
        if err is not None:
            if len(errors) < 5:
                errors.append(str(err))
            return
        o = msg.offset() + 1
        if o > ends.get(msg.partition(), 0):
            ends[msg.partition()] = o

    t0 = time.monotonic()
    n = 0
    for line in lines:
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        key = customer_key(line)
        while True:
            try:
                p.produce(topic, value=line, key=key, on_delivery=delivered)
                break
            except BufferError:  # local queue full: let deliveries drain
                p.poll(0.05)
        n += 1
        if n % 10000 == 0:
            p.poll(0)
        if n % 200000 == 0:
            log(f"  produced {n} ...")
    left = p.flush(300)
    if left or errors:
        raise Failure(f"producing to {topic}: {left} undelivered, errors: {errors}")
    if sum(ends.values()) != n:
        raise Failure(f"producing to {topic}: {n} sent but the delivery reports end at "
                      f"{ends} (sum {sum(ends.values())}): was the topic not empty?")
    return n, time.monotonic() - t0, ends


def read_lines(path):
    with open(path, "rb") as f:
        yield from f


# ---------------------------------------------------------------- processes


def rss_peak_mb(pid):
    """VmHWM of a live process (a fallback: wait4's ru_maxrss is exact)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def run_child(name, argv, log_path, env=None, timeout=1800.0):
    """Runs argv to completion; returns {exit, wall_s, peak_rss_mb}. Stdout and stderr go to
    log_path. Peak RSS is the child's ru_maxrss (wait4), or its last VmHWM."""
    logf = open(log_path, "wb")
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT, env=env)
    finally:
        logf.close()
    RUNNING[name] = proc
    hwm = 0.0
    try:
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                wall = time.monotonic() - t0
                proc.returncode = os.waitstatus_to_exitcode(status)
                peak = max(ru.ru_maxrss / 1024.0, hwm)
                # The machine's 1-minute load average before and after: how contended
                # the run was (other work shares the cores).
                return {"exit": proc.returncode, "wall_s": round(wall, 3),
                        "peak_rss_mb": round(peak, 1),
                        "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
                        "loadavg": [round(load0, 2), round(os.getloadavg()[0], 2)]}
            if time.monotonic() - t0 > timeout:
                procutil.stop_pid(proc.pid, timeout=30)
                raise Failure(f"{name} did not finish within {timeout:.0f} s "
                              f"(stopped); log {log_path}:\n{procutil.tail(log_path)}")
            hwm = max(hwm, rss_peak_mb(proc.pid))
            time.sleep(0.02)
    except BaseException:
        # Interrupted (or timed out): the child must not outlive the harness.
        if proc.poll() is None:
            log(f"stopping {name} (pid {proc.pid})")
            procutil.stop_pid(proc.pid, timeout=30)
            proc.wait()
        raise
    finally:
        RUNNING.pop(name, None)


def stop_children():
    for name, proc in list(RUNNING.items()):
        if proc.poll() is None:
            log(f"stopping {name} (pid {proc.pid})")
            procutil.stop_pid(proc.pid, timeout=30)
        RUNNING.pop(name, None)


def json_log(path):
    """The JSON log lines of a cxstream run (other lines are skipped)."""
    out = []
    with open(path, "rb") as f:
        for raw in f:
            try:
                v = json.loads(raw)
            except ValueError:
                continue
            if isinstance(v, dict):
                out.append(v)
    return out


def ts(v):
    """Seconds since the epoch of a JSON log line's timestamp."""
    t = v.get("timestamp", "")
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", t)
    if not m:
        return None
    base = datetime.strptime(m.group(1) + (m.group(3).replace("Z", "+00:00")),
                             "%Y-%m-%dT%H:%M:%S%z").timestamp()
    return base + (float("0" + m.group(2)) if m.group(2) else 0.0)


def duration_s(text):
    """Rust's Debug of a Duration ("1.234s", "812.5ms", "40µs") in seconds."""
    m = re.match(r"^([0-9.]+)(ns|µs|us|ms|s)$", str(text).strip())
    if not m:
        return None
    return float(m.group(1)) * {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(2)]


def log_facts(path):
    """What a cxstream run's JSON log says: events, checkpoints, processing span, restores."""
    lines = json_log(path)
    facts = {"restores": []}
    ready, caught_up = [], None
    for v in lines:
        msg = v.get("message", "")
        fields = v.get("fields", v)
        msg = fields.get("message", msg)
        if msg in ("no checkpoint: the partition starts with empty state",
                   "partition restored from its checkpoint"):
            ready.append(ts(v))
        if msg == "partition restored from its checkpoint":
            facts["restores"].append({
                "partition": fields.get("partition"),
                "took_s": duration_s(fields.get("took", "")),
                "bytes": fields.get("bytes"), "tickets": fields.get("tickets"),
                "customers": fields.get("customers")})
        if msg.startswith("stopping: checkpointing every partition"):
            caught_up = ts(v)
        if msg == "stopped" and "checkpoints" in fields:
            facts["events"] = fields.get("events")
            facts["checkpoints"] = fields.get("checkpoints")
            facts["records_produced"] = fields.get("records")
            facts["stopped_at"] = ts(v)
        if v.get("level") in ("ERROR",):
            facts.setdefault("errors", []).append(msg)
    if ready and None not in ready and caught_up:
        facts["span_s"] = round(caught_up - max(ready), 3)
        if facts.get("stopped_at"):
            facts["shutdown_s"] = round(facts["stopped_at"] - caught_up, 3)
    return facts


# ---------------------------------------------------------------- the state topic


def state_topic_stats(bootstrap, topic, timeout=600.0):
    """Reads a state topic whole: records and bytes (key + value) by kind of key, manifests
    (= complete checkpoints). Sentinels (written by restores and inspect) are counted apart.
    Ends at each partition's EOF (Tansu's EOF is right even where its watermark is not)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"load-stats-{os.getpid()}",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest"})
    try:
        md = c.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None:
            raise Failure(f"state topic {topic}: {md.error if md else 'missing'}")
        parts = sorted(md.partitions)
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        names = {ord("M"): "manifest", ord("K"): "core", ord("D"): "dedup",
                 ord("E"): "entity", ord("A"): "advance", ord("S"): "sentinel",
                 ord("R"): "reset"}
        kinds = {}
        done = set()
        deadline = time.monotonic() + timeout
        while len(done) < len(parts):
            if time.monotonic() > deadline:
                raise Failure(f"reading {topic} did not reach its end in {timeout:.0f} s")
            for m in c.consume(num_messages=20000, timeout=1.0):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        done.add(m.partition())
                    continue
                k, v = m.key() or b"", m.value()
                kind = names.get(k[0], "other") if k else "other"
                if v is None:
                    kind = "tombstone"
                s = kinds.setdefault(kind, [0, 0])
                s[0] += 1
                s[1] += len(k) + (len(v) if v is not None else 0)
    finally:
        c.close()
    total = {k: v for k, v in kinds.items() if k != "sentinel"}
    out = {
        "records": sum(v[0] for v in total.values()),
        "bytes": sum(v[1] for v in total.values()),
        "manifests": kinds.get("manifest", [0, 0])[0],
        "by_kind": {k: {"records": v[0], "bytes": v[1]} for k, v in sorted(kinds.items())},
    }
    if out["manifests"]:
        out["bytes_per_checkpoint"] = round(out["bytes"] / out["manifests"])
    return out


# ---------------------------------------------------------------- runs


class Session:
    """One broker and the names of one harness invocation."""

    def __init__(self, args):
        self.args = args
        self.out = os.path.abspath(args.out)
        self.runs_dir = os.path.join(self.out, "runs")
        os.makedirs(self.runs_dir, exist_ok=True)
        self.prefix = f"load{int(time.time())}"
        self.seq = 0
        self.broker = None
        self.bootstrap = args.bootstrap
        self.tmp = tempfile.mkdtemp(prefix="cxstream-load-")
        for path, what in ((args.binary, "cargo build --release --bin cxstream"),
                           (args.bare_binary, "cargo build --release --example bare_consumer")):
            if not os.access(path, os.X_OK):
                raise Failure(f"{path} not found: build it with `{what}`")

    def start(self):
        if not self.bootstrap:
            self.broker = tansu.Tansu(pidfile=os.path.join(self.tmp, "tansu.pid"),
                                      log=os.path.join(self.out, "tansu.log")).start()
            self.bootstrap = self.broker.bootstrap
            log(f"started Tansu on {self.bootstrap} (pid {self.broker.proc.pid})")
        else:
            log(f"using the broker at {self.bootstrap}")
        return self

    def close(self):
        stop_children()
        if self.broker:
            self.broker.stop(cleanup=True)
            log("broker stopped")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def broker_rss_mb(self):
        if self.broker and self.broker.proc:
            return round(rss_peak_mb(self.broker.proc.pid), 1)
        return None

    def name(self, what):
        self.seq += 1
        return f"{self.prefix}.{what}{self.seq}"

    def env(self, interval):
        env = dict(os.environ)
        env["CXSTREAM_KAFKA__CHECKPOINT_INTERVAL"] = interval
        env.pop("CXSTREAM_CONFIG", None)
        return env

    def cxstream(self, label, input_topic, partitions, ends, interval, group=None,
                 keep=False, stats=True, extra=()):
        """One `cxstream run --until-end --until-offsets` from `group` (default a fresh one);
        returns its measurements. Its output, dead-letter and (unless keep) state topics are
        deleted afterwards."""
        group = group or self.name("g")
        output, deadletter = f"{group}.out", f"{group}.dl"
        state = f"{group}.state"
        create_topics(self.bootstrap, {output: partitions, deadletter: 1, state: partitions},
                      compact=(state,))
        port = procutil.free_port()
        cfg = os.path.join(self.runs_dir, f"{label}.toml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(what=label, bootstrap=self.bootstrap, group=group,
                                  input=input_topic, output=output, deadletter=deadletter,
                                  interval=interval, port=port))
        until = ",".join(f"{input_topic}:{p}={o}" for p, o in sorted(ends.items()))
        log_path = os.path.join(self.runs_dir, f"{label}.log")
        argv = [self.args.binary, "--config", cfg, "--log-format", "json", "run",
                "--until-end", "--until-offsets", until, *extra]
        r = run_child(label, argv, log_path, env=self.env(interval),
                      timeout=self.args.run_timeout)
        if r["exit"] != 0:
            raise Failure(f"{label}: cxstream run exited with {r['exit']}; log {log_path}:\n"
                          f"{procutil.tail(log_path)}")
        facts = log_facts(log_path)
        r.update({k: v for k, v in facts.items() if k != "stopped_at"})
        r["broker_rss_mb"] = self.broker_rss_mb()
        if stats:
            r["state"] = state_topic_stats(self.bootstrap, state)
        r["group"], r["log"], r["config"] = group, log_path, cfg
        ev = r.get("events") or 0
        if ev and r["wall_s"]:
            r["events_per_s"] = round(ev / r["wall_s"])
        if ev and r.get("span_s"):
            r["span_events_per_s"] = round(ev / r["span_s"])
        if ev and stats and r["state"]["bytes"]:
            r["state_bytes_per_event"] = round(r["state"]["bytes"] / ev, 1)
        delete_topics(self.bootstrap, [output, deadletter] + ([] if keep else [state]))
        return r

    def bare(self, label, input_topic, ends):
        until = ",".join(f"{input_topic}:{p}={o}" for p, o in sorted(ends.items()))
        log_path = os.path.join(self.runs_dir, f"{label}.log")
        argv = [self.args.bare_binary, "--bootstrap", self.bootstrap, "--until-offsets", until,
                "--group", self.name("bare")]
        for s in SESSION:
            argv += ["--set", s]
        r = run_child(label, argv, log_path, timeout=self.args.run_timeout)
        text = procutil.tail(log_path, 100000)
        if r["exit"] != 0:
            raise Failure(f"{label}: bare_consumer exited with {r['exit']}:\n{text[-4000:]}")
        got = None
        for line in text.splitlines():
            if line.startswith("{"):
                try:
                    got = json.loads(line)
                except ValueError:
                    pass
        if got is None:
            raise Failure(f"{label}: bare_consumer printed no result:\n{text[-4000:]}")
        r.update({"events": got["events"], "parse_errors": got["parse_errors"],
                  "bytes": got["bytes"], "span_s": round(got["span_s"], 3),
                  "inner_wall_s": round(got["wall_s"], 3)})
        if r["wall_s"]:
            r["events_per_s"] = round(got["events"] / r["wall_s"])
        if got["span_s"]:
            r["span_events_per_s"] = round(got["events"] / got["span_s"])
        r["log"] = log_path
        return r


def median(runs, key):
    v = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    return round(statistics.median(v), 3) if v else None


def kafka_bench(s, args):
    """Produce the file, then alternate bare / cxstream-<interval> runs."""
    src = args.file
    if not src:
        src = os.path.join(s.tmp, "events.jsonl")
        log(f"generating {args.events} events (seed {args.seed}) into {src}")
        r = subprocess.run([args.binary, "generate", "-n", str(args.events), "--seed",
                            str(args.seed), "-o", src], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure(f"cxstream generate failed: {r.stderr[-2000:]}")
    if not os.path.isfile(src):
        raise Failure(f"--file {src}: no such file")
    topic = s.name("input")
    create_topics(s.bootstrap, {topic: args.partitions})
    log(f"producing {src} to {topic} ({args.partitions} partitions)")
    n, secs, ends = produce(s.bootstrap, topic, read_lines(src))
    log(f"produced {n} events in {secs:.1f} s ({n / secs:,.0f}/s); ends {ends}")
    for p in range(args.partitions):
        ends.setdefault(p, 0)
    modes = ([] if args.no_bare else ["bare"]) + [f"cxstream-{i}" for i in args.intervals]
    runs = []
    for rnd in range(args.runs):
        order = modes[rnd % len(modes):] + modes[:rnd % len(modes)]
        for mode in order:
            label = f"r{rnd}-{mode}"
            log(f"round {rnd + 1}/{args.runs}: {mode}")
            if mode == "bare":
                r = s.bare(label, topic, ends)
            else:
                r = s.cxstream(label, topic, args.partitions, ends, mode.split("-", 1)[1])
            r.update({"mode": mode, "round": rnd})
            if r.get("events") and r.get("cpu_s"):
                r["events_per_cpu_s"] = round(r["events"] / r["cpu_s"])
            if r.get("events") != n:
                log(f"WARNING: {label} processed {r.get('events')} events, {n} were produced")
            runs.append(r)
            log(f"  {mode}: wall {r['wall_s']:.2f} s, span {r.get('span_s')} s, "
                f"{r.get('events_per_s')} events/s (span {r.get('span_events_per_s')}/s), "
                f"peak RSS {r['peak_rss_mb']:.0f} MB"
                + (f", {r['state']['manifests']} checkpoints, {r['state']['bytes']:,} state "
                   f"bytes" if "state" in r else ""))
            json.dump({"partial": True, "runs": runs}, open(os.path.join(s.out, "load.json.part"), "w"),
                      indent=1)
    med = {}
    for mode in modes:
        rs = [r for r in runs if r["mode"] == mode]
        med[mode] = {k: median(rs, k) for k in
                     ("wall_s", "span_s", "cpu_s", "events_per_s", "span_events_per_s",
                      "events_per_cpu_s", "peak_rss_mb",
                      "checkpoints", "state_bytes_per_event")}
        if mode != "bare":
            med[mode]["state_bytes"] = statistics.median(r["state"]["bytes"] for r in rs)
            med[mode]["manifests"] = statistics.median(r["state"]["manifests"] for r in rs)
            per = [r["state"].get("bytes_per_checkpoint") for r in rs
                   if r["state"].get("bytes_per_checkpoint")]
            med[mode]["bytes_per_checkpoint"] = statistics.median(per) if per else None
    ratios = {}
    if "bare" in med:
        for mode in modes[1:] if modes[0] == "bare" else modes:
            for k in ("wall_s", "span_s", "cpu_s"):
                a, b = med[mode][k], med["bare"][k]
                if a and b:
                    ratios[f"{mode}/bare {k}"] = round(a / b, 2)
    overhead = {}
    ivs = [f"cxstream-{i}" for i in args.intervals]
    if len(ivs) >= 2:
        base = med[ivs[-1]]
        for mode in ivs[:-1]:
            for k in ("wall_s", "span_s", "cpu_s"):
                if med[mode][k] and base[k]:
                    overhead[f"{mode} vs {ivs[-1]} {k} %"] = round(
                        100 * (med[mode][k] / base[k] - 1), 1)
    return {"file": src, "events": n, "partitions": args.partitions,
            "produce_s": round(secs, 2), "produce_events_per_s": round(n / secs),
            "ends": ends, "modes": modes, "runs": runs, "median": med, "ratios": ratios,
            "checkpoint_overhead": overhead}


ISO = "%Y-%m-%dT%H:%M:%S"
CHANNELS = ["email", "phone", "chat", "social", "web_form", "in_person", "messenger"]
PRIORITIES = ["urgent", "high", "normal", "low"]
TEAMS = ["billing", "tech", "returns", "sales", "logistics", "warranty", "vip", "general"]
CATEGORIES = ["warranty", "return", "complaint", "question", "tech_support", "consultation",
              "other"]


def ticket_lines(n, start_ms, span_ms=300_000):
    """n ticket.created events, each by a new customer, over span_ms of event time."""
    for i in range(n):
        t = start_ms + i * span_ms // n
        stamp = time.strftime(ISO, time.gmtime(t // 1000)) + f".{t % 1000:03d}Z"
        yield (f'{{"id":"r{i:09d}","type":"ticket.created","time":"{stamp}",'
               f'"customer":"k{i:09d}","ticket":"q{i:09d}","channel":"{CHANNELS[i % 7]}",'
               f'"priority":"{PRIORITIES[i % 4]}","team":"{TEAMS[i % 8]}",'
               f'"category":"{CATEGORIES[i % 7]}"}}').encode()


def inspect(s, cfg, label):
    log_path = os.path.join(s.runs_dir, f"{label}.log")
    r = subprocess.run([s.args.binary, "--config", cfg, "state", "inspect"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=s.env("1h"), timeout=900)
    with open(log_path, "w") as f:
        f.write(r.stdout + r.stderr)
    if r.returncode != 0:
        raise Failure(f"cxstream state inspect failed: {r.stderr[-2000:]}")
    return r.stdout


def restore_bench(s, args):
    n = args.tickets
    topic = s.name("restore-input")
    create_topics(s.bootstrap, {topic: 1})
    start = (int(time.time()) + 86400) * 1000
    log(f"producing {n} ticket.created events (one per customer) to {topic} (1 partition)")
    count, secs, ends = produce(s.bootstrap, topic, ticket_lines(n, start))
    log(f"produced {count} in {secs:.1f} s")
    group = s.name("rg")
    log("building the state: cxstream run --until-end (one checkpoint, at shutdown)")
    build = s.cxstream("restore-build", topic, 1, ends, "1h", group=group, keep=True)
    log(f"  built in {build['wall_s']:.1f} s, peak RSS {build['peak_rss_mb']:.0f} MB, "
        f"{build['state']['records']:,} state records, {build['state']['bytes']:,} bytes")
    text = inspect(s, build["config"], "restore-inspect")
    log("state inspect:\n" + text.rstrip())
    runs = []
    for i in range(args.runs):
        label = f"restore-{i}"
        log(f"restore {i + 1}/{args.runs}")
        r = s.cxstream(label, topic, 1, ends, "10s", group=group, keep=True, stats=False)
        if not r["restores"] or r["restores"][0]["took_s"] is None:
            raise Failure(f"{label}: no 'partition restored ... took' line in {r['log']}")
        r["restore_s"] = r["restores"][0]["took_s"]
        runs.append(r)
        log(f"  restored in {r['restore_s']:.2f} s ({r['restores'][0]['tickets']} tickets, "
            f"{r['restores'][0]['customers']} customers, {r['restores'][0]['bytes']:,} bytes "
            f"read); process wall {r['wall_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB")
    delete_topics(s.bootstrap, [f"{group}.state", topic])
    return {"tickets": n, "customers": n, "produce_s": round(secs, 2), "build": build,
            "inspect": text, "runs": runs,
            "median": {k: median(runs, k) for k in ("restore_s", "wall_s", "peak_rss_mb")}}


# ---------------------------------------------------------------- live mode (latency)

# Live mode: SPEC defaults plus SLA targets of minutes, so that breaches (one of the two
# latencies measured) happen within a minute-long run; the lateness is written out because
# the latency computation assumes it.
LIVE_ENGINE = """
[engine]
allowed_lateness = "{lateness}s"

[sla.first_response]
urgent = "1m"
high = "2m"
normal = "5m"
low = "10m"
"""


class Probes:
    """One invalid probe event per input partition every `every` seconds, stamped with the
    wall-clock milliseconds just before it is handed to the producer; cxstream dead-letters
    it; a consumer of the dead-letter topic keeps (probe send ms, dead letter CreateTime ms,
    arrival ms at the consumer)."""

    def __init__(self, bootstrap, topic, deadletter, partitions):
        import threading
        self.topic, self.partitions = topic, partitions
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": f"load-probes-{os.getpid()}",
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 50})
        self.consumer.assign([TopicPartition(deadletter, 0, 0)])
        self.samples, self.seq = [], 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._consume, daemon=True)
        self.thread.start()

    def send(self):
        for p in range(self.partitions):
            self.seq += 1
            now = int(time.time() * 1000)
            v = json.dumps({"load_probe": now, "id": f"probe-{self.seq}"})
            self.producer.produce(self.topic, value=v, partition=p)
        self.producer.poll(0)

    def _consume(self):
        while not self.stop.is_set():
            for m in self.consumer.consume(num_messages=1000, timeout=0.2):
                got = int(time.time() * 1000)
                if m.error() or b"load_probe" not in (m.value() or b""):
                    continue
                try:
                    payload = json.loads(json.loads(m.value())["payload"])
                    sent = int(payload["load_probe"])
                except (ValueError, KeyError, TypeError):
                    continue
                kind, stamp = m.timestamp()
                with self.lock:
                    self.samples.append((sent, stamp if kind != 0 and stamp > 0 else None, got))

    def close(self):
        self.producer.flush(10)
        self.stop.set()
        self.thread.join(timeout=5)
        self.consumer.close()


def read_topic(bootstrap, topic, handle, timeout=900.0):
    """Calls handle(msg) for every record of a topic, from the beginning to each partition's
    EOF (Tansu's EOF is right even where its high watermark is not)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"load-read-{os.getpid()}",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest"})
    try:
        md = c.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None:
            raise Failure(f"topic {topic}: {md.error if md else 'missing'}")
        parts = sorted(md.partitions)
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        done, deadline = set(), time.monotonic() + timeout
        while len(done) < len(parts):
            if time.monotonic() > deadline:
                raise Failure(f"reading {topic} did not reach its end in {timeout:.0f} s")
            for m in c.consume(num_messages=20000, timeout=1.0):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        done.add(m.partition())
                    continue
                handle(m)
    finally:
        c.close()


_SECONDS = {}


def iso_ms(b):
    """Milliseconds since the epoch of an RFC 3339 stamp as bytes ("2026-11-30T08:00:06.412Z",
    "2026-11-30T14:20:29.842+05:30"; the generator writes both); None if it is not one."""
    try:
        head = b[:19]
        base = _SECONDS.get(head)
        if base is None:
            base = int(datetime.strptime(head.decode(), ISO).replace(
                tzinfo=timezone.utc).timestamp())
            _SECONDS[head] = base
        rest, ms = b[19:], 0
        if rest.startswith(b"."):
            i = 1
            while i < len(rest) and 48 <= rest[i] <= 57:
                i += 1
            ms = int((rest[1:i] + b"000")[:3])
            rest = rest[i:]
        if rest in (b"Z", b"z"):
            off = 0
        elif len(rest) == 6 and rest[:1] in (b"+", b"-") and rest[3:4] == b":":
            off = (int(rest[1:3]) * 60 + int(rest[4:6])) * 60
            off = off if rest[:1] == b"+" else -off
        else:
            return None
        return (base - off) * 1000 + ms
    except (ValueError, UnicodeDecodeError):
        return None


def field(v, name):
    """The bytes of a top-level string field `"name":"..."` of a JSON line (first match)."""
    k = b'"' + name + b'":"'
    i = v.find(k)
    if i < 0:
        return None
    j = v.find(b'"', i + len(k))
    return v[i + len(k):j] if j > 0 else None


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q / 100.0 * len(v) + 0.5)) - 1))]


def dist(values):
    return {"n": len(values), "p50_ms": pct(values, 50), "p99_ms": pct(values, 99),
            "max_ms": max(values) if values else None}


def watermark_steps(bootstrap, topic, lateness_ms):
    """Per input partition, the watermark's history: (watermarks ms, CreateTimes ms of the
    records that moved it there), the watermark being the largest event time of the
    partition's events so far minus the allowed lateness (SPEC §2; probes and lines without
    an event time skipped). Also each customer's partition (from the record key)."""
    steps, wm, where, count, span = {}, {}, {}, [0], [2**62, -2**62]

    def handle(m):
        v = m.value() or b""
        if b"load_probe" in v:
            return
        t = field(v, b"time")
        t = iso_ms(t) if t else None
        if t is None:
            return
        count[0] += 1
        span[0], span[1] = min(span[0], t), max(span[1], t)
        p = m.partition()
        if m.key():
            where[m.key()] = p
        w = t - lateness_ms
        if w > wm.get(p, -2**62):
            wm[p] = w
            steps.setdefault(p, []).append((w, m.timestamp()[1]))

    read_topic(bootstrap, topic, handle)
    steps = {p: ([x[0] for x in s], [x[1] for x in s]) for p, s in steps.items()}
    return steps, where, count[0], (span[1] - span[0]) / 1000.0


def reached_at(steps, w, strict=False):
    """CreateTime of the record that first moved a partition's watermark to >= w (> w if
    strict); None if it never did. steps: (watermarks, CreateTimes) of watermark_steps."""
    import bisect
    marks, stamps = steps
    i = bisect.bisect_right(marks, w) if strict else bisect.bisect_left(marks, w)
    return stamps[i] if i < len(stamps) else None


def live_bench(s, args):
    """cxstream run at a fixed input rate: probe latency, window and SLA latencies."""
    import threading
    import urllib.request
    P, rate, secs = args.partitions, args.rate, args.duration
    lateness_ms = 30_000
    group = s.name("live")
    topic, output, dl, state = f"{group}.in", f"{group}.out", f"{group}.dl", f"{group}.state"
    create_topics(s.bootstrap, {topic: P, output: P, dl: 1, state: P}, compact=(state,))
    port = procutil.free_port()
    cfg = os.path.join(s.runs_dir, "live.toml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(what="live", bootstrap=s.bootstrap, group=group, input=topic,
                              output=output, deadletter=dl, interval=args.interval, port=port)
                + LIVE_ENGINE.format(lateness=lateness_ms // 1000))
    env = s.env(args.interval)
    run_log = os.path.join(s.runs_dir, "live.log")
    logf = open(run_log, "wb")
    proc = subprocess.Popen([s.args.binary, "--config", cfg, "--log-format", "json", "run"],
                            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                            env=env)
    logf.close()
    RUNNING["cxstream-live"] = proc

    def get(path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                return r.status, r.read()
        except OSError:
            return None, b""

    deadline = time.monotonic() + 120
    while get("/readyz")[0] != 200:
        if proc.poll() is not None:
            raise Failure(f"cxstream run exited with {proc.returncode}: "
                          f"{procutil.tail(run_log)}")
        if time.monotonic() > deadline:
            raise Failure(f"cxstream run not ready in 120 s: {procutil.tail(run_log)}")
        time.sleep(0.1)
    log(f"cxstream run ready (pid {proc.pid}); starting the generator at {rate:,.0f}/s "
        f"for {secs} s")
    # The reference: a bare consumer of the input topic (same fetch wait as cxstream's
    # default) timing the probes it receives; what the broker and machine take for one hop.
    bare_log = os.path.join(s.runs_dir, "live-bare.log")
    bare = None
    if not args.no_bare:
        bare = procutil.spawn([s.args.bare_binary, "--bootstrap", s.bootstrap, "--live", topic,
                               "--duration", str(secs * 3 + 120),
                               "--set", "fetch.wait.max.ms=20"], bare_log)
        RUNNING["bare-live"] = bare
    probes = Probes(s.bootstrap, topic, dl, P)
    n = int(rate * secs)
    gen_log = os.path.join(s.runs_dir, "live-generate.log")
    gen = procutil.spawn([s.args.binary, "--config", cfg, "generate", "-n", str(n),
                          "--seed", str(args.seed), "--start", "now", "--rate", str(rate),
                          "--tickets-per-hour", str(args.tickets_per_hour),
                          "--customers", str(args.customers),
                          "--kafka", s.bootstrap, "--topic", topic], gen_log)
    RUNNING["generator"] = gen
    t0 = time.monotonic()
    gen_start_ms = int(time.time() * 1000)
    hwm, cpu0, samples = 0.0, None, []
    tick = os.sysconf("SC_CLK_TCK")

    def cpu(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            return (int(parts[11]) + int(parts[12])) / tick
        except (OSError, IndexError, ValueError):
            return None

    cpu0 = cpu(proc.pid)
    next_probe = t0
    gen_wall = None
    while True:
        now = time.monotonic()
        if now >= next_probe:
            probes.send()
            next_probe += args.probe_every
        if gen_wall is None and gen.poll() is not None:
            gen_wall = now - t0
            drain_until = now + args.drain
            log(f"generator done in {gen_wall:.1f} s (exit {gen.returncode}); "
                f"{args.drain} s more of probes")
        if gen_wall is not None and now >= drain_until:
            break
        if proc.poll() is not None:
            raise Failure(f"cxstream run exited with {proc.returncode} during the run: "
                          f"{procutil.tail(run_log)}")
        if now - t0 > secs * 3 + 120:
            raise Failure("the generator did not finish in time")
        hwm = max(hwm, rss_peak_mb(proc.pid))
        time.sleep(0.05)
    RUNNING.pop("generator", None)
    if gen.returncode != 0:
        raise Failure(f"generator exited with {gen.returncode}: {procutil.tail(gen_log)}")
    cpu_s = (cpu(proc.pid) or 0) - (cpu0 or 0)
    elapsed = time.monotonic() - t0
    metrics = get("/metrics")[1].decode("utf-8", "replace")
    probes.close()
    bare_probes = []
    if bare is not None:
        procutil.stop_pid(bare.pid, timeout=10)
        RUNNING.pop("bare-live", None)
        with open(bare_log, "rb") as f:
            for line in f:
                if line.startswith(b"["):
                    sent, lat = json.loads(line)
                    bare_probes.append((sent, lat))
    procutil.stop_pid(proc.pid, timeout=60)
    RUNNING.pop("cxstream-live", None)
    facts = log_facts(run_log)
    log(f"stopped cxstream (peak RSS {hwm:.0f} MB); reading the topics back")

    # Probe latency: dead letter CreateTime (set when cxstream hands it to its producer)
    # minus the probe's send time; the first --warmup seconds are left out.
    skip_ms = gen_start_ms + int(args.warmup * 1000)
    pr = [x for x in probes.samples if x[0] >= skip_ms]
    probe_ct = [b - a for a, b, _ in pr if b is not None]
    probe_rx = [c - a for a, _, c in pr]

    steps, where, events, event_span_s = watermark_steps(s.bootstrap, topic, lateness_ms)
    win, sla, kinds = [], [], {}
    missing = {"window": 0, "sla": 0}
    done_at, detail = [], []

    def handle(m):
        v = m.value() or b""
        kind = field(v, b"type")
        kinds[kind] = kinds.get(kind, 0) + 1
        stamp = m.timestamp()[1]
        if kind == b"kpi.window":
            if b'"partial":true' in v:
                return
            end = v.find(b'"end":"')
            w = iso_ms(v[end + 7:end + 31].split(b'"')[0]) if end >= 0 else None
            if w is None:
                return
            at = [reached_at(steps.get(p, ([], [])), w) for p in range(P)]
            if None in at:
                missing["window"] += 1
                return
            done_at.append(max(at) - gen_start_ms)
            if v.find(b'"group":{}') >= 0:
                detail.append({"end": w, "reached": [a - gen_start_ms for a in at],
                               "record": stamp - gen_start_ms})
            if max(at) >= skip_ms:
                win.append((stamp - max(at), field(v, b"end"), v.find(b'"group":{}') >= 0))
        elif kind == b"sla.breached":
            due = iso_ms(field(v, b"due") or b"")
            p = where.get(field(v, b"customer") or b"")
            if due is None or p is None:
                missing["sla"] += 1
                return
            at = reached_at(steps.get(p, ([], [])), due, strict=True)
            if at is None:
                missing["sla"] += 1
                return
            if at >= skip_ms:
                sla.append(stamp - at)

    read_topic(s.bootstrap, output, handle)
    delete_topics(s.bootstrap, [topic, output, dl, state])
    hist = {}
    for line in metrics.splitlines():
        m = re.match(r'cxstream_processing_seconds_(sum|count) ([0-9.e+-]+)$', line)
        if m:
            hist[m.group(1)] = float(m.group(2))
    result = {
        "rate": rate, "duration_s": secs, "partitions": P, "events": n,
        "input_events_read_back": events, "generator_wall_s": round(gen_wall, 2),
        "achieved_rate": round(n / gen_wall) if gen_wall else None,
        "tickets_per_hour": args.tickets_per_hour, "customers": args.customers,
        "event_time_speed": round(event_span_s / gen_wall, 1) if gen_wall else None,
        "interval": args.interval, "lateness_s": lateness_ms // 1000,
        "warmup_s": args.warmup, "peak_rss_mb": round(hwm, 1),
        "cpu_pct": round(100 * cpu_s / elapsed, 1) if elapsed else None,
        "broker_rss_mb": s.broker_rss_mb(),
        "probe_to_deadletter_createtime": dist(probe_ct),
        "probe_to_deadletter_received": dist(probe_rx),
        # The same probes received by a bare consumer of the input topic (no processing).
        "probe_to_bare_consumer": dist([lat for sent, lat in bare_probes if sent >= skip_ms])
        if bare is not None else None,
        "probes_sent": probes.seq, "probes_back": len(probes.samples),
        # Every probe: ms after the generator started, latency to the dead letter's CreateTime.
        "probe_samples": [(a - gen_start_ms, b - a) for a, b, _ in probes.samples
                          if b is not None],
        "window_complete_to_record": dist([x[0] for x in win]),
        "window_complete_to_record_total_group": dist([x[0] for x in win if x[2]]),
        "windows": len({x[1] for x in win}),
        "window_detail_ms_after_start": detail[:40],
        "window_completions_s_after_start": [round(min(done_at) / 1000, 1),
                                             round(max(done_at) / 1000, 1)]
        if done_at else None,
        "sla_due_passed_to_breach_record": dist(sla),
        "unmatched": missing,
        "output_records_by_type": {(k or b"?").decode(): c for k, c in sorted(
            kinds.items(), key=lambda kv: -kv[1])},
        "batch_mean_ms": round(1000 * hist["sum"] / hist["count"], 2)
        if hist.get("count") else None,
        "checkpoints": facts.get("checkpoints"), "log": run_log, "config": cfg,
    }
    ref = result["probe_to_bare_consumer"]
    log(f"live: probes p50/p99 {result['probe_to_deadletter_createtime']['p50_ms']}/"
        f"{result['probe_to_deadletter_createtime']['p99_ms']} ms (bare consumer: "
        f"{ref['p50_ms'] if ref else '-'}/{ref['p99_ms'] if ref else '-'}); windows p50/p99 "
        f"{result['window_complete_to_record']['p50_ms']}/"
        f"{result['window_complete_to_record']['p99_ms']} ms; breaches p50/p99 "
        f"{result['sla_due_passed_to_breach_record']['p50_ms']}/"
        f"{result['sla_due_passed_to_breach_record']['p99_ms']} ms")
    return result


# ---------------------------------------------------------------- report


def fmt_n(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float) and v != int(v):
        return f"{v:,.2f}{unit}"
    return f"{int(v):,}{unit}"


def summary_md(result):
    out = [f"# cxstream load harness — {result['started']}", "",
           f"broker: {result['broker']}; binary: {result['binary']} ({result['git']}); "
           f"{result['cpus']} CPUs", ""]
    k = result.get("kafka")
    if k:
        out += [f"## Kafka path: {k['events']:,} events from {k['file']}, "
                f"{k['partitions']} partitions ({len(k['runs']) // max(1, len(k['modes']))} "
                f"rounds, medians)", "",
                f"produced in {k['produce_s']} s ({k['produce_events_per_s']:,}/s)", "",
                "| mode | wall s | span s | CPU s | events/s (wall) | events/s (span) "
                "| events/CPU s | peak RSS MB | checkpoints | state bytes | bytes/checkpoint "
                "| bytes/event |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for mode in k["modes"]:
            m = k["median"][mode]
            out.append(f"| {mode} | {fmt_n(m['wall_s'])} | {fmt_n(m['span_s'])} | "
                       f"{fmt_n(m.get('cpu_s'))} | "
                       f"{fmt_n(m['events_per_s'])} | {fmt_n(m['span_events_per_s'])} | "
                       f"{fmt_n(m.get('events_per_cpu_s'))} | {fmt_n(m['peak_rss_mb'])} | {fmt_n(m.get('manifests'))} | "
                       f"{fmt_n(m.get('state_bytes'))} | {fmt_n(m.get('bytes_per_checkpoint'))} | "
                       f"{fmt_n(m.get('state_bytes_per_event'))} |")
        out.append("")
        for key, v in {**k["ratios"], **k["checkpoint_overhead"]}.items():
            out.append(f"- {key}: {v}")
        out += ["", "wall = process start to exit (group join, restore of empty partitions, "
                "final checkpoint and flush included); span = partitions assigned to caught "
                "up (cxstream's log) / first to last message (bare).", ""]
        loads = [x for r in k["runs"] for x in r.get("loadavg", [])]
        if loads:
            out += [f"machine load (1-min average) during the runs: {min(loads):.1f}–"
                    f"{max(loads):.1f} on {result['cpus']} CPUs", ""]
    r = result.get("restore")
    if r:
        m = r["median"]
        b = r["build"]
        out += [f"## Restore: {r['tickets']:,} open tickets + {r['customers']:,} customers "
                "on one partition", "",
                f"- build run: {b['wall_s']} s, peak RSS {b['peak_rss_mb']} MB; state topic "
                f"{b['state']['records']:,} records, {b['state']['bytes']:,} bytes "
                f"({b['state'].get('bytes_per_checkpoint', 0):,} per checkpoint)",
                f"- restore (median of {len(r['runs'])}): {m['restore_s']} s; process wall "
                f"{m['wall_s']} s; peak RSS {m['peak_rss_mb']} MB",
                f"- each: " + ", ".join(f"{x['restore_s']:.2f} s" for x in r["runs"]), "",
                "```", r["inspect"].rstrip(), "```", ""]
    lv = result.get("live")
    if lv:
        def row(name, d):
            return (f"| {name} | {d['n']:,} | {fmt_n(d['p50_ms'])} | {fmt_n(d['p99_ms'])} | "
                    f"{fmt_n(d['max_ms'])} |")
        out += [f"## Live: {lv['rate']:,.0f} events/s for {lv['duration_s']:g} s, "
                f"{lv['partitions']} partitions, checkpoint_interval {lv['interval']}", "",
                f"- generator: {lv['events']:,} events in {lv['generator_wall_s']} s "
                f"({fmt_n(lv['achieved_rate'])}/s achieved), --tickets-per-hour "
                f"{lv['tickets_per_hour']:g}, --customers {lv['customers']}: event time ran "
                f"{lv['event_time_speed']}x the wall clock; {lv['windows']} windows completed",
                f"- cxstream: peak RSS {lv['peak_rss_mb']} MB, CPU {lv['cpu_pct']} % of a core, "
                f"mean batch {lv['batch_mean_ms']} ms, {lv['checkpoints']} checkpoints; "
                f"broker RSS {lv['broker_rss_mb']} MB",
                f"- first {lv['warmup_s']:g} s left out; unmatched records: {lv['unmatched']}",
                "", "| latency | samples | p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|",
                row("probe sent → its dead letter's CreateTime",
                    lv["probe_to_deadletter_createtime"]),
                row("probe sent → its dead letter received by a consumer",
                    lv["probe_to_deadletter_received"]),
                *([row("reference: probe sent → received by a bare consumer of the input",
                       lv["probe_to_bare_consumer"])] if lv.get("probe_to_bare_consumer")
                  else []),
                row("window complete → its kpi.window record (every group)",
                    lv["window_complete_to_record"]),
                row("window complete → its kpi.window record (group {})",
                    lv["window_complete_to_record_total_group"]),
                row("SLA due passed → its sla.breached record",
                    lv["sla_due_passed_to_breach_record"]), "",
                f"output records: {lv['output_records_by_type']}", ""]
    return "\n".join(out)


def git_rev():
    try:
        return subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def intervals(text):
    v = [x.strip() for x in text.split(",") if x.strip()]
    if not v or any(not re.fullmatch(r"\d+(ms|s|m|h|d|w)", x) for x in v):
        raise argparse.ArgumentTypeError("durations like 10s,1h")
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See docs/benchmarks.md.")
    ap.add_argument("--bootstrap", help="use this broker (HOST:PORT) instead of starting Tansu")
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "cxstream"))
    ap.add_argument("--bare-binary",
                    default=os.path.join(REPO, "target", "release", "examples", "bare_consumer"))
    ap.add_argument("--out", default=os.path.join(REPO, "target", "load"),
                    help="results directory (default target/load)")
    ap.add_argument("--run-timeout", type=float, default=1800,
                    help="seconds one run may take (default 1800)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def kafka_args(p):
        p.add_argument("--file", help="JSON Lines input (default: generated)")
        p.add_argument("--events", type=int, default=1_000_000,
                       help="events to generate without --file (default 1000000)")
        p.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
        p.add_argument("--partitions", type=int, default=3, help="input partitions (default 3)")
        p.add_argument("--runs", type=int, default=3, help="rounds (default 3)")
        p.add_argument("--intervals", type=intervals, default=["10s", "1h"],
                       help="checkpoint intervals to run cxstream with (default 10s,1h)")
        p.add_argument("--no-bare", action="store_true", help="skip the bare consumer")

    def restore_args(p, runs_flag):
        p.add_argument("--tickets", type=int, default=1_000_000,
                       help="open tickets (= customers) to restore (default 1000000)")
        p.add_argument(runs_flag, dest="restore_runs", type=int, default=3,
                       help="restores (default 3)")

    kafka_args(sub.add_parser("kafka", help="cxstream run vs bare consumer, checkpoint overhead"))
    restore_args(sub.add_parser("restore", help="restore of N open tickets + N customers"),
                 "--runs")
    p_live = sub.add_parser("live", help="cxstream run at a fixed rate: latencies")
    p_live.add_argument("--rate", type=float, default=20000,
                        help="events per second (default 20000)")
    p_live.add_argument("--duration", type=float, default=60,
                        help="seconds of load (default 60)")
    p_live.add_argument("--partitions", type=int, default=3, help="input partitions (default 3)")
    p_live.add_argument("--interval", default="10s", type=lambda v: intervals(v)[0],
                        help="checkpoint interval (default 10s)")
    p_live.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    p_live.add_argument("--tickets-per-hour", type=float, default=4_000_000,
                        help="generator's ticket rate in event time (default 4000000: event "
                             "time runs about 10x the wall clock at 20,000 events/s)")
    p_live.add_argument("--customers", type=int, default=200_000,
                        help="generator's customer population (default 200000)")
    p_live.add_argument("--probe-every", type=float, default=0.5,
                        help="seconds between probes (one per partition; default 0.5)")
    p_live.add_argument("--no-bare", action="store_true",
                        help="skip the bare consumer that times the probes as a reference")
    p_live.add_argument("--warmup", type=float, default=5,
                        help="seconds after the generator starts left out of the figures "
                             "(default 5)")
    p_live.add_argument("--drain", type=float, default=5,
                        help="seconds of probes after the generator ends (default 5)")
    p_all = sub.add_parser("all", help="kafka, then restore")
    kafka_args(p_all)
    restore_args(p_all, "--restore-runs")
    args = ap.parse_args()
    args.runs = getattr(args, "runs", 0)

    def on_term(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    result = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "binary": args.binary, "git": git_rev(), "cpus": os.cpu_count(),
              "command": " ".join(sys.argv)}
    s = None
    try:
        s = Session(args).start()
        result["broker"] = "tansu (started by load.py)" if s.broker else s.bootstrap
        if args.cmd in ("kafka", "all"):
            result["kafka"] = kafka_bench(s, args)
        if args.cmd == "live":
            result["live"] = live_bench(s, args)
        if args.cmd in ("restore", "all"):
            args.runs = args.restore_runs
            result["restore"] = restore_bench(s, args)
    except Failure as e:
        log(f"FAILED: {e}")
        return 1
    except KeyboardInterrupt:
        log("interrupted: stopping the children and the broker")
        return 130
    finally:
        if s:
            s.close()
    with open(os.path.join(s.out, "load.json"), "w") as f:
        json.dump(result, f, indent=1)
    text = summary_md(result)
    with open(os.path.join(s.out, "summary.md"), "w") as f:
        f.write(text + "\n")
    try:
        os.remove(os.path.join(s.out, "load.json.part"))
    except OSError:
        pass
    print(text)
    log(f"wrote {s.out}/load.json and {s.out}/summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
