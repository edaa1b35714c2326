#!/usr/bin/env python3
"""Writes the inputs of the two SPEC §1 "Size" cases (deterministic; the
outputs are committed, rerun only to regenerate them byte for byte).

    python3 tests/reference/cases/make_size_cases.py

event_size.jsonl (run with --max-event-bytes 200): the size limit itself,
  in bytes, not characters; a line at the limit is accepted.
payload_truncation.jsonl (run with --max-event-bytes 1000): lines whose
  JSON-escaped form exceeds 64 KiB, built so that the longest prefix that fits
  can be worked out by hand (see build_expected.py).
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def padded(prefix, total_bytes):
    """prefix + 'x' * k + '"}' with k chosen so the line is total_bytes long."""
    k = total_bytes - len(prefix.encode("utf-8")) - 2
    assert k >= 0
    line = prefix + "x" * k + '"}'
    assert len(line.encode("utf-8")) == total_bytes
    return line


def event_size():
    lines = [
        # L1: exactly 200 bytes: accepted (the limit is "larger than").
        padded('{"id":"s1","type":"order.placed","time":"2026-11-22T10:00:00Z",'
               '"customer":"z1","order":"o1","amount":1,"note":"', 200),
        # L2: 201 bytes: bad_length, size 201, the whole payload kept.
        padded('{"id":"s2","type":"order.placed","time":"2026-11-22T10:00:01Z",'
               '"customer":"z1","order":"o2","amount":2,"note":"', 201),
        # L3: 100 two-byte characters: 196 characters but 296 bytes: bad_length.
        '{"id":"s3","type":"warranty.claimed","time":"2026-11-22T10:00:02Z",'
        '"customer":"z1","product":"' + "\u00fc" * 100 + '"}',
        # L4: a small valid event: processing goes on.
        '{"id":"s4","type":"order.placed","time":"2026-11-22T10:00:03Z",'
        '"customer":"z1","order":"o4","amount":4}',
    ]
    return lines


def payload_truncation():
    return [
        # L1: 10 ASCII + 32800 '"' (32810 bytes; each '"' escapes to 2 bytes).
        "x" * 10 + '"' * 32800,
        # L2: 10922 U+0001 (each escapes to \u0001, 6 bytes) + "abcde" (10927 bytes).
        "\x01" * 10922 + "abcde",
        # L3: 32766 backslashes (2 bytes escaped each), a tab (2), U+1F600 (4 bytes
        # of UTF-8, not escaped), "z" (32772 bytes).
        "\\" * 32766 + "\t" + "\U0001F600" + "z",
        # L4: a small valid event.
        '{"id":"v1","type":"order.placed","time":"2026-11-22T10:00:00Z",'
        '"customer":"z2","order":"o1","amount":3}',
        # L5: 1001 bytes: over the limit, but its escaped form fits: kept whole.
        padded('{"id":"v2","type":"order.placed","time":"2026-11-22T10:00:01Z",'
               '"customer":"z2","order":"o2","amount":5,"note":"', 1001),
    ]


def main():
    for name, lines in (("event_size", event_size()), ("payload_truncation", payload_truncation())):
        for line in lines:
            assert "\n" not in line and "\r" not in line
        path = os.path.join(HERE, name + ".jsonl")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write("\n".join(lines) + "\n")
        print("wrote", os.path.relpath(path), [len(l.encode("utf-8")) for l in lines])


if __name__ == "__main__":
    main()
