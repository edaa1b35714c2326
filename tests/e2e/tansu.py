#!/usr/bin/env python3
"""Start/stop a throw-away Tansu Kafka broker on loopback (stdlib only).

CLI (prints nothing else on stdout, errors go to stderr, exit 1 on failure):

  tansu.py start --pidfile F [--port P] [--log L] [--topics in:6,out:6]
      start the broker in the background (memory storage), wait until it
      accepts connections, create the topics, print "127.0.0.1:PORT".
      Without --port a free port is chosen. Log defaults to F with .log.
  tansu.py create-topic --bootstrap 127.0.0.1:P NAME[:PARTITIONS] ...
      create topics (default 1 partition); an existing topic is not an error.
  tansu.py stop --pidfile F
      stop the broker whose PID is in F (SIGTERM, SIGKILL after 2 s).

Python:  from tansu import Tansu
         with Tansu(topics={"in": 6}) as t: ... t.bootstrap ...
         (its temp dir with the log is kept if the block raised)

The binary is $CXSTREAM_TANSU, else `tansu` on PATH, else
~/.cache/cxstream/bin/tansu (where scripts/install-test-deps.sh puts it).
Memory storage: a restarted broker has forgotten every topic and message.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import procutil  # noqa: E402

CACHE_BIN = os.path.join(
    os.environ.get("CXSTREAM_CACHE", "~/.cache/cxstream"), "bin", "tansu")


def tansu_bin():
    return procutil.find_program("CXSTREAM_TANSU", "tansu", [CACHE_BIN])


def parse_topics(spec):
    """'a:6,b' -> {'a': 6, 'b': 1}"""
    out = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, _, parts = item.partition(":")
        out[name] = int(parts) if parts else 1
    return out


def create_topic(bootstrap, name, partitions=1):
    r = subprocess.run(
        [tansu_bin(), "topic", "create", "--broker", f"tcp://{bootstrap}",
         "--partitions", str(partitions), name],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    if r.returncode != 0 and "already exists" not in r.stdout + r.stderr:
        raise RuntimeError(f"tansu topic create {name} failed ({r.returncode}):"
                           f" {r.stdout}{r.stderr}")


class Tansu:
    """One broker process. start() returns self; stop() is idempotent."""

    def __init__(self, port=None, topics=None, pidfile=None, log=None):
        self.port = port
        self.topics = topics or {}
        self._tmp = None  # removed by stop() if we made it
        if pidfile is None:
            self._tmp = tempfile.mkdtemp(prefix="cxstream-tansu-")
            pidfile = os.path.join(self._tmp, "tansu.pid")
        self.pidfile = pidfile
        self.log = log or (self.pidfile[:-4] if self.pidfile.endswith(".pid")
                           else self.pidfile) + ".log"
        self.proc = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=20.0):
        exe = tansu_bin()
        # A free port can be taken between our probe and the bind: retry.
        attempts = 1 if self.port else 3
        for attempt in range(attempts):
            port = self.port or procutil.free_port()
            url = f"tcp://127.0.0.1:{port}"
            log_at = procutil.log_size(self.log)
            proc = procutil.spawn(
                [exe, "broker", "--listener-url", url,
                 "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"], self.log)
            try:
                # On a port clash tansu logs AddrInUse and hangs (does not
                # exit): check that the listener on the port is our process.
                def ready():
                    if "AddrInUse" in procutil.read_from(self.log, log_at):
                        raise RuntimeError(f"port {port} in use")
                    return (procutil.listens(proc.pid, port)
                            and procutil.port_open(port))
                procutil.wait_until(ready, proc, timeout, "tansu", self.log)
            except RuntimeError:
                if proc.poll() is None:
                    procutil.stop_pid(proc.pid, timeout=2.0)
                if attempt + 1 == attempts:
                    raise
                continue
            self.port, self.proc = port, proc
            procutil.write_pidfile(self.pidfile, proc.pid)
            break
        try:
            for name, parts in self.topics.items():
                create_topic(self.bootstrap, name, parts)
        except Exception:
            self.stop(cleanup=False)
            raise
        return self

    def stop(self, cleanup=True):
        """cleanup=False keeps our temp dir (the log) for a post-mortem."""
        if self.proc is not None:
            # Tansu waits for connected clients on SIGTERM (seen: 5 s);
            # memory storage has nothing to save, so SIGKILL after 2 s.
            procutil.stop_pid(self.proc.pid, timeout=2.0)
            self.proc.wait()
            self.proc = None
        procutil.stop_pidfile(self.pidfile, "tansu", timeout=2.0)
        if cleanup and self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, exc_type, *_):
        self.stop(cleanup=exc_type is None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--pidfile", required=True)
    s.add_argument("--port", type=int)
    s.add_argument("--log")
    s.add_argument("--topics", default="", help="name:partitions,...")
    c = sub.add_parser("create-topic")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("topics", nargs="+", help="NAME[:PARTITIONS]")
    k = sub.add_parser("stop")
    k.add_argument("--pidfile", required=True)
    a = ap.parse_args(argv)
    try:
        if a.cmd == "start":
            t = Tansu(port=a.port, topics=parse_topics(a.topics),
                      pidfile=os.path.abspath(a.pidfile), log=a.log)
            t.start()
            print(t.bootstrap, flush=True)
        elif a.cmd == "create-topic":
            for name, parts in parse_topics(",".join(a.topics)).items():
                create_topic(a.bootstrap, name, parts)
        else:
            procutil.stop_pidfile(a.pidfile, "tansu", timeout=2.0)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"tansu.py {a.cmd}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
