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

# Published partitioner vectors: librdkafka rdmurmur2.c unittest_murmur2() and the
# Java client's UtilsTest (signed ints there); zlib crc32 check value "123456789".
MURMUR2_VECTORS = [
    (b"kafka", 0xd067cf64), (b"giberish123456789", 0x8f552b0c), (b"1234", 0x9fc97b14),
    (b"234", 0xe7c009ca), (b"34", 0x873930da), (b"4", 0x5a4b5ca1),
    (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424f1c),
    (b"reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62b377),
    (b"eAmbleWillBeRemoved,ThePrePartThatIs", 0xe0e4e09e),
    (b"AmbleWillBeRemoved,ThePrePartThatIs", 0x62b8b43f), (b"", 0x106e08d9),
    (b"21", -973932308 & 0xFFFFFFFF), (b"foobar", -790332482 & 0xFFFFFFFF),
    (b"a-little-bit-long-string", -985981536 & 0xFFFFFFFF),
    (b"a-little-bit-longer-string", -1486304829 & 0xFFFFFFFF),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971 & 0xFFFFFFFF),
    (b"abc", 479470107),
]


def check_partitioners():
    """cxref's own partitioners against published vectors (only when checking cxref)."""
    sys.dont_write_bytecode = True          # leave no __pycache__ in the tree
    sys.path.insert(0, HERE)
    import cxref
    bad = [(k, hex(cxref.murmur2(k)), hex(v)) for k, v in MURMUR2_VECTORS if cxref.murmur2(k) != v]
    if cxref.crc32_partition(b"123456789", 1 << 32) != 0xCBF43926:
        bad.append(("crc32 check value", "123456789"))
    print("%s partitioners: %d murmur2 vectors, crc32 check value%s"
          % ("ok  " if not bad else "FAIL", len(MURMUR2_VECTORS), "" if not bad else ": %r" % bad))
    return not bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmd", default=DEFAULT_CMD)
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()
    inputs = a.cases or sorted(p for p in glob.glob(os.path.join(HERE, "cases", "*.jsonl"))
                               if not p.endswith(".expected.jsonl"))
    failed = 0
    if a.cmd == DEFAULT_CMD and not check_partitioners():
        failed += 1
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
