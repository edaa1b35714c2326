#!/usr/bin/env python3
"""Start/stop/query a throw-away Prometheus on loopback (stdlib only).

  prom.py start --pidfile F --target HOST:PORT [--target ...] [--port P]
                [--dir D] [--interval 1s] [--metrics-path /metrics]
                [--rules FILE ...] [--job cxstream]
      Write a config scraping the targets every --interval (target "self" =
      this Prometheus), start prometheus in the background (data in D, a new
      temp dir by default; log D/prometheus.log), wait for /-/ready, print its
      base URL "http://127.0.0.1:PORT".
  prom.py query --url U EXPR
      Instant query; prints the JSON "data" object
      ({"resultType": ..., "result": [...]}). Exit 1 on an API error.
  prom.py wait --url U EXPR [--timeout 30]
      Poll EXPR until its result is non-empty (e.g. 'up{job="cxstream"} == 1');
      prints the data object; exit 2 on timeout.
  prom.py stop --pidfile F
  prom.py smoke
      Self-test: scrape itself, wait for up == 1, query, stop.

Python:  from prom import Prometheus
         with Prometheus(targets=["127.0.0.1:9898"]) as p:
             p.wait('up == 1'); p.query('cxstream_events_total')

The binary is $CXSTREAM_PROMETHEUS, else `prometheus` on PATH.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import procutil  # noqa: E402


def prometheus_bin():
    return procutil.find_program("CXSTREAM_PROMETHEUS", "prometheus")


def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def query(base_url, expr, timeout=5.0):
    url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        _, body = http_get(url, timeout)
    except urllib.error.HTTPError as e:  # 400/422 carry a JSON error body
        body = e.read()
    doc = json.loads(body)
    if doc.get("status") != "success":
        raise RuntimeError(f"query {expr!r}: {doc.get('errorType')}: "
                           f"{doc.get('error')}")
    return doc["data"]


def wait_for(base_url, expr, timeout=30.0):
    """Poll until expr has a non-empty result; returns the data object."""
    deadline = time.monotonic() + timeout
    while True:
        data = query(base_url, expr)
        if data["result"]:
            return data
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{expr!r} still empty after {timeout}s")
        time.sleep(0.2)


class Prometheus:
    def __init__(self, targets, port=None, dir=None, interval="1s",
                 metrics_path="/metrics", rules=(), job="cxstream",
                 pidfile=None):
        self.targets = list(targets)
        self._auto_port = port is None
        self.port = port or procutil.free_port()
        self._tmp = None if dir else tempfile.mkdtemp(prefix="cxstream-prom-")
        self.dir = dir or self._tmp
        os.makedirs(self.dir, exist_ok=True)
        self.interval, self.metrics_path, self.job = interval, metrics_path, job
        self.rules = [os.path.abspath(r) for r in rules]
        self.pidfile = pidfile or os.path.join(self.dir, "prometheus.pid")
        self.log = os.path.join(self.dir, "prometheus.log")
        self.config = os.path.join(self.dir, "prometheus.yml")
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def write_config(self):
        targets = [f"127.0.0.1:{self.port}" if t == "self" else t
                   for t in self.targets]
        cfg = {  # JSON is valid YAML
            "global": {"scrape_interval": self.interval,
                       "evaluation_interval": self.interval,
                       # must not exceed the interval (default 10s would)
                       "scrape_timeout": self.interval},
            "rule_files": self.rules,
            "scrape_configs": [{"job_name": self.job,
                                "metrics_path": self.metrics_path,
                                "static_configs": [{"targets": targets}]}],
        }
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=2)

    def start(self, timeout=30.0):
        def ready():
            try:
                return http_get(f"{self.url}/-/ready", 1.0)[0] == 200
            except (OSError, urllib.error.URLError):
                return False

        # A free port can be taken between our probe and the bind: retry.
        attempts = 3 if self._auto_port else 1
        for attempt in range(attempts):
            if attempt:
                self.port = procutil.free_port()
            self.write_config()
            log_at = procutil.log_size(self.log)
            self.proc = procutil.spawn(
                [prometheus_bin(), f"--config.file={self.config}",
                 f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 "--log.level=warn"], self.log, cwd=self.dir)
            procutil.write_pidfile(self.pidfile, self.proc.pid)
            try:
                procutil.wait_until(ready, self.proc, timeout, "prometheus",
                                    self.log)
                return self
            except RuntimeError:
                port_clash = ("address already in use"
                              in procutil.read_from(self.log, log_at))
                self.stop(cleanup=False)
                if not port_clash or attempt + 1 == attempts:
                    raise

    def query(self, expr):
        return query(self.url, expr)

    def wait(self, expr, timeout=30.0):
        return wait_for(self.url, expr, timeout)

    def stop(self, cleanup=True):
        """cleanup=False keeps our temp dir (log, config, data)."""
        if self.proc is not None:
            procutil.stop_pid(self.proc.pid)
            self.proc.wait()
            self.proc = None
        procutil.stop_pidfile(self.pidfile, "prometheus")
        if cleanup and self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, exc_type, *_):
        self.stop(cleanup=exc_type is None)


def smoke():
    t0 = time.monotonic()
    with Prometheus(targets=["self"], job="self") as p:
        t_ready = time.monotonic() - t0
        data = p.wait('up{job="self"} == 1', timeout=30)
        t_up = time.monotonic() - t0
        assert data["result"][0]["metric"]["instance"] == f"127.0.0.1:{p.port}"
        n = p.query("prometheus_build_info")["result"]
        assert n and n[0]["metric"].get("version"), n
        try:
            p.query("up{")  # a bad expression must raise
            raise AssertionError("bad query accepted")
        except RuntimeError:
            pass
    print(f"timings: ready_s={t_ready:.2f} first_up_s={t_up:.2f} "
          f"total_s={time.monotonic() - t0:.2f}", file=sys.stderr)
    print("prom_smoke: 1 passed, 0 failed")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--pidfile", required=True)
    s.add_argument("--target", action="append", required=True)
    s.add_argument("--port", type=int)
    s.add_argument("--dir")
    s.add_argument("--interval", default="1s")
    s.add_argument("--metrics-path", default="/metrics")
    s.add_argument("--rules", action="append", default=[])
    s.add_argument("--job", default="cxstream")
    for name in ("query", "wait"):
        q = sub.add_parser(name)
        q.add_argument("--url", required=True)
        q.add_argument("expr")
        if name == "wait":
            q.add_argument("--timeout", type=float, default=30.0)
    k = sub.add_parser("stop")
    k.add_argument("--pidfile", required=True)
    sub.add_parser("smoke")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "start":
            p = Prometheus(a.target, a.port, a.dir, a.interval, a.metrics_path,
                           a.rules, a.job, os.path.abspath(a.pidfile))
            p.start()
            print(p.url, flush=True)
        elif a.cmd == "query":
            print(json.dumps(query(a.url, a.expr)))
        elif a.cmd == "wait":
            print(json.dumps(wait_for(a.url, a.expr, a.timeout)))
        elif a.cmd == "stop":
            procutil.stop_pidfile(a.pidfile, "prometheus")
        else:
            smoke()
    except TimeoutError as e:
        print(f"prom.py {a.cmd}: {e}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError, ValueError) as e:
        print(f"prom.py {a.cmd}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
