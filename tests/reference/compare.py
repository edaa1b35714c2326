#!/usr/bin/env python3
"""Compare two cxstream output files (JSON Lines) record by record.

    python3 tests/reference/compare.py OUT_A OUT_B [--strict] [--any-invalid-reason]

- Records are grouped by "type".
- kpi.window records are matched on (window start, size_seconds, group) and
  every field is compared: integers exactly, floats with relative tolerance
  1e-9, except the percentiles p50/p90/p99, whose tolerance is
  max(0.1 % of the value, 0.001 s).  The "hdr" field is ignored.
  Unless --strict, the forms SPEC §4 allows interchangeably are treated as
  equal: an absent duration summary == {"count": 0}; an absent ratio / mean /
  score == null.
- All other records are compared as multisets of canonical JSON (sorted keys,
  floats rounded to 9 significant digits); their "id" (SPEC §7) is compared
  like any field.  For deadletter records:
  - the reason is compared only for the reasons SPEC fixes: "unknown ticket",
    "ticket exists", and the codes bad_timestamp, bad_length and out_of_range
    (SPEC §1); any other reason stands for "invalid".  With
    --any-invalid-reason only the first two are compared;
  - "error" (the error in words, free wording) is ignored;
  - only the base name of source.file, and of the <file> part of an id
    "deadletter|<file>|<line>", is compared;
  - "size" (SPEC §1, an oversized event's full size) and the payload are
    compared exactly.

Prints the first 20 differences and a one-line summary
"N records compared, M differences"; exit status 1 when they differ, 0 when equal.
"""

import argparse
import json
import math
import os
import sys
from collections import Counter, defaultdict

PERCENTILE_KEYS = {"p50", "p90", "p99"}
SUMMARY_KEYS = {"first_response_seconds", "resolution_seconds", "handle_seconds",
                "answer_seconds"}
NULLABLE_KEYS = {"ratio", "mean", "score"}
ORPHAN_REASONS = {"unknown ticket", "ticket exists"}
# SPEC §1 names these reason codes for particular faults.
SPEC_INVALID_REASONS = {"bad_timestamp", "bad_length", "out_of_range"}


def load(path):
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except ValueError as e:
                sys.exit("%s:%d: not JSON: %s" % (path, n, e))
    return records


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def numbers_equal(a, b, key):
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    a, b = float(a), float(b)
    if key in PERCENTILE_KEYS:
        return abs(a - b) <= max(0.001 * max(abs(a), abs(b)), 0.001)
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def normalise_kpi(value, key=None, strict=False):
    """Drop "hdr"; make the SPEC-permitted equivalent forms identical."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "hdr":
                continue
            if not strict and v is None and k in NULLABLE_KEYS:
                continue
            out[k] = normalise_kpi(v, k, strict)
        if not strict:
            for k in SUMMARY_KEYS:
                if k in out and out[k] == {"count": 0}:
                    del out[k]
        return out
    if isinstance(value, list):
        return [normalise_kpi(v, key, strict) for v in value]
    return value


def diff_values(a, b, path, key, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            p = path + "." + k
            if k not in a:
                out.append("%s: missing in A (B has %s)" % (p, json.dumps(b[k])))
            elif k not in b:
                out.append("%s: missing in B (A has %s)" % (p, json.dumps(a[k])))
            else:
                diff_values(a[k], b[k], p, k, out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append("%s: A %s != B %s" % (path, json.dumps(a), json.dumps(b)))
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                diff_values(x, y, "%s[%d]" % (path, i), key, out)
    elif is_number(a) and is_number(b):
        if not numbers_equal(a, b, key):
            out.append("%s: A %r != B %r" % (path, a, b))
    elif a != b or type(a) is not type(b):
        out.append("%s: A %s != B %s" % (path, json.dumps(a), json.dumps(b)))


def round_floats(value):
    if isinstance(value, float):
        return float("%.9g" % value) if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: round_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [round_floats(v) for v in value]
    return value


def deadletter_id(value):
    """deadletter|<file>|<line> -> deadletter|<base name of file>|<line>.  Only an
    id with a "/" is touched: a Kafka id deadletter|<topic>|<partition>|<offset>
    cannot have one (topic names are [a-zA-Z0-9._-]), and a file id without one
    is already a base name."""
    if not isinstance(value, str):
        return value
    parts = value.split("|")
    if len(parts) >= 3 and parts[0] == "deadletter" and "/" in value:
        middle = "|".join(parts[1:-1])
        return "deadletter|%s|%s" % (os.path.basename(middle), parts[-1])
    return value


def canonical(record, any_invalid_reason=False):
    r = round_floats(record)
    if r.get("type") == "deadletter":
        r = dict(r)
        kept = ORPHAN_REASONS if any_invalid_reason else ORPHAN_REASONS | SPEC_INVALID_REASONS
        if r.get("reason") not in kept:
            r["reason"] = "<invalid>"
        r.pop("error", None)
        if "id" in r:
            r["id"] = deadletter_id(r["id"])
        src = r.get("source")
        if isinstance(src, dict) and isinstance(src.get("file"), str):
            r["source"] = dict(src, file=os.path.basename(src["file"]))
    return json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def kpi_key(r):
    w = r.get("window", {})
    return (w.get("start"), w.get("size_seconds"),
            json.dumps(r.get("group"), sort_keys=True, ensure_ascii=False))


def compare(a_records, b_records, strict=False, any_invalid_reason=False):
    diffs = []
    compared = 0
    by_type_a, by_type_b = defaultdict(list), defaultdict(list)
    for r in a_records:
        by_type_a[r.get("type")].append(r)
    for r in b_records:
        by_type_b[r.get("type")].append(r)
    for typ in sorted(set(by_type_a) | set(by_type_b), key=str):
        ra, rb = by_type_a.get(typ, []), by_type_b.get(typ, [])
        if typ == "kpi.window":
            ka, kb = {}, {}
            for name, recs, index in (("A", ra, ka), ("B", rb, kb)):
                for r in recs:
                    k = kpi_key(r)
                    if k in index:
                        diffs.append("kpi.window %s: emitted twice in %s" % (k, name))
                    index[k] = r
            for k in sorted(set(ka) | set(kb), key=str):
                compared += 1
                label = "kpi.window start=%s size=%s group=%s" % k
                if k not in kb:
                    diffs.append("%s: only in A" % label)
                    continue
                if k not in ka:
                    diffs.append("%s: only in B" % label)
                    continue
                field_diffs = []
                diff_values(normalise_kpi(ka[k], strict=strict),
                            normalise_kpi(kb[k], strict=strict), "", None, field_diffs)
                for d in field_diffs:
                    diffs.append("%s: %s" % (label, d))
        else:
            ca = Counter(canonical(r, any_invalid_reason) for r in ra)
            cb = Counter(canonical(r, any_invalid_reason) for r in rb)
            compared += max(len(ra), len(rb))
            for c in sorted((ca - cb).elements()):
                diffs.append("%s only in A: %s" % (typ, c))
            for c in sorted((cb - ca).elements()):
                diffs.append("%s only in B: %s" % (typ, c))
    return compared, diffs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_a")
    ap.add_argument("out_b")
    ap.add_argument("--strict", action="store_true",
                    help="do not treat absent summaries/ratios as equal to count 0 / null")
    ap.add_argument("--any-invalid-reason", action="store_true",
                    help="compare dead-letter reasons only for 'unknown ticket' and "
                         "'ticket exists' (any other reason stands for 'invalid')")
    ap.add_argument("--max-diffs", type=int, default=20)
    args = ap.parse_args()
    compared, diffs = compare(load(args.out_a), load(args.out_b), args.strict,
                              args.any_invalid_reason)
    for d in diffs[:args.max_diffs]:
        print(d)
    if len(diffs) > args.max_diffs:
        print("... %d more" % (len(diffs) - args.max_diffs))
    print("%d records compared, %d differences" % (compared, len(diffs)))
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
