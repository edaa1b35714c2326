#!/usr/bin/env python3
"""Compare two `cxstream replay` outputs byte for byte, except that each `hdr` field is
compared by what it decodes to (the V2 cookie and the inflated V2 payload), since any zlib
level of the HdrHistogram V2 compressed encoding stands for the same histogram (issue 10).

Usage: scripts/same-output.py A.jsonl B.jsonl   (exit status 0 when the same)
"""
import base64
import re
import sys
import zlib

HDR = re.compile(rb'"hdr":"([A-Za-z0-9+/=]*)"')


def norm(m):
    b = base64.b64decode(m.group(1))
    return b'"hdr":"' + b[:4].hex().encode() + zlib.decompress(b[8:]).hex().encode() + b'"'


def main():
    a, b = (open(p, "rb") for p in sys.argv[1:3])
    n = 0
    for n, (x, y) in enumerate(zip(a, b), 1):
        if x != y and HDR.sub(norm, x) != HDR.sub(norm, y):
            print(f"line {n} differs", file=sys.stderr)
            return 1
    if a.read(1) or b.read(1):
        print(f"lengths differ after line {n}", file=sys.stderr)
        return 1
    print(f"same: {n} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
