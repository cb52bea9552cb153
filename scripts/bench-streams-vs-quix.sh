#!/usr/bin/env bash
# Runnel Streams against Quix Streams on the same broker and the same data, one run:
# a keyed count (group by key, count, each count to an output topic) of RECORDS records
# (1,000,000) with KEYS keys (10,000) in a PARTITIONS-partition (4) topic.
#   1. `runnel perf streams` (release) with the record cache on (Kafka's 10 MiB
#      default), then off, 1 and 2 stream threads, commit every 1 s;
#   2. Quix Streams 3.28 (a venv in ~/.cache/runnel-quix-venv, made on first use), one
#      process, commit every 1 s, over a topic holding the same records.
# The broker runs with group.initial.rebalance.delay.ms=0, so neither pays the 3 s a
# new consumer group otherwise waits (at a million records that wait would be most of
# Runnel's time). Prints records/s of each and the ratios to Quix.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${RECORDS:-1000000}
keys=${KEYS:-10000}
partitions=${PARTITIONS:-4}
bin=target/release/runnel
[ -x "$bin" ] || cargo build --release --locked
command -v kcat >/dev/null || { echo "bench-streams-vs-quix: kcat is missing" >&2; exit 1; }
venv=${QUIX_VENV:-$HOME/.cache/runnel-quix-venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import quixstreams' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'quixstreams==3.28.0'
fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; }
port=$(free_port)
bs=127.0.0.1:$port
"$bin" broker --data-dir "$work/data" --listen "$bs" \
  --override group.initial.rebalance.delay.ms=0 > "$work/broker.log" 2>&1 &
pids+=($!)
wait_port "$port"

rate() { grep -o '[0-9]* records/s' | head -1 | cut -d' ' -f1; }
runnel_run() { # threads cache_bytes
  "$bin" perf streams --num-records "$records" --keys "$keys" --partitions "$partitions" \
    --threads "$1" --cache-max-bytes "$2" --commit-interval-ms 1000 --bootstrap-server "$bs" 2>/dev/null \
    | tee /dev/stderr | rate
}
cached1=$(runnel_run 1 10485760)
cached2=$(runnel_run 2 10485760)
uncached1=$(runnel_run 1 0)
uncached2=$(runnel_run 2 0)

# The same records (key-<i mod keys>, value "v", murmur2 partitioning) for Quix.
"$bin" topics create quix-in --partitions "$partitions" --bootstrap-server "$bs" >/dev/null
"$bin" topics create quix-out --partitions "$partitions" --bootstrap-server "$bs" >/dev/null
python3 -c "
import sys
k = $keys
sys.stdout.write(''.join(f'key-{i % k}:v\n' for i in range($records)))" > "$work/records.txt"
kcat -P -b "$bs" -t quix-in -K: -X partitioner=murmur2_random -l "$work/records.txt"
quix=$("$venv/bin/python" scripts/lib/quix_count.py "$bs" quix-in quix-out "$records" "$work/quix-state" \
  | tee /dev/stderr | rate)

python3 - "$quix" "$cached1" "$cached2" "$uncached1" "$uncached2" <<'PY'
import sys
quix, c1, c2, u1, u2 = map(float, sys.argv[1:])
print(f"Quix Streams {quix:.0f} records/s; Runnel with the record cache: 1 thread {c1:.0f} "
      f"({c1 / quix:.1f}x), 2 threads {c2:.0f} ({c2 / quix:.1f}x); without it: 1 thread "
      f"{u1:.0f} ({u1 / quix:.1f}x), 2 threads {u2:.0f} ({u2 / quix:.1f}x)")
PY
