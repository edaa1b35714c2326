#!/usr/bin/env python3
"""Run an implementation on every hand-made case and compare with the
hand-computed expectation.

    python3 tests/reference/check_cases.py                 # checks cxref.py
    python3 tests/reference/check_cases.py --cmd 'target/release/cxstream replay {input} {args}'

{input} is replaced by the case's .jsonl path and {args} by the contents of
its .args file (e.g. --windows 1h --group-by "").  The command must write the
output records as JSON Lines to stdout.  Exit status 1 if any case differs.
"""
import argparse
import glob
import os
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CMD = "python3 %s {input} {args}" % shlex.quote(os.path.join(HERE, "cxref.py"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmd", default=DEFAULT_CMD)
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()
    inputs = a.cases or sorted(p for p in glob.glob(os.path.join(HERE, "cases", "*.jsonl"))
                               if not p.endswith(".expected.jsonl"))
    failed = 0
    for inp in inputs:
        base = inp[:-len(".jsonl")]
        args = ""
        if os.path.exists(base + ".args"):
            with open(base + ".args") as f:
                args = f.read().strip()
        rel = os.path.relpath(inp)
        cmd = a.cmd.replace("{input}", shlex.quote(rel)).replace("{args}", args)
        with tempfile.NamedTemporaryFile("w+", suffix=".jsonl", delete=False) as out:
            r = subprocess.run(cmd, shell=True, stdout=out, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            print("FAIL %s: command exited %d\n%s" % (rel, r.returncode, r.stderr))
            failed += 1
            continue
        c = subprocess.run([sys.executable, os.path.join(HERE, "compare.py"),
                            base + ".expected.jsonl", out.name],
                           stdout=subprocess.PIPE, text=True)
        status = "ok  " if c.returncode == 0 else "FAIL"
        print("%s %s: %s" % (status, os.path.basename(inp), c.stdout.strip().splitlines()[-1]))
        if c.returncode != 0:
            print("     (A = expected, B = actual)")
            print("\n".join("     " + l for l in c.stdout.strip().splitlines()[:-1]))
            failed += 1
        os.unlink(out.name)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
