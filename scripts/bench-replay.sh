#!/usr/bin/env bash
# Issue 10 figures: alternating runs of the bare typed parse (examples/parse_only.rs) and of
# `cxstream replay` by each binary given, on one file and config; prints each run and the
# medians (wall seconds; peak RSS in KB from /usr/bin/time).
#
# Usage: scripts/bench-replay.sh ROUNDS CONFIG INPUT BINARY...
#   e.g. scripts/bench-replay.sh 5 /tmp/w1.toml /work/baseline/e1m.jsonl target/release/cxstream
set -euo pipefail
rounds=$1 cfg=$2 input=$3
shift 3
parse=${PARSE_ONLY:-target/release/examples/parse_only}
declare -A times rss
for ((r = 0; r < rounds; r++)); do
  t=$( { /usr/bin/time -f "%e %M" "$parse" "$input" >/dev/null; } 2>&1 | tail -1)
  times[parse]+="${t%% *} "
  for b in "$@"; do
    t=$( { /usr/bin/time -f "%e %M" "$b" replay -q --now 2026-12-03T00:00:00Z -c "$cfg" -i "$input" -o /dev/null; } 2>&1 | tail -1)
    times[$b]+="${t%% *} "
    rss[$b]+="${t##* } "
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
p=$(echo "${times[parse]}" | median)
echo "parse_only: ${times[parse]}-> median $p s"
for b in "$@"; do
  m=$(echo "${times[$b]}" | median)
  echo "$b: ${times[$b]}-> median $m s ($(awk -v m="$m" -v p="$p" 'BEGIN {printf "%.2f", m / p}')x parse), RSS median $(echo "${rss[$b]}" | median) KB"
done
