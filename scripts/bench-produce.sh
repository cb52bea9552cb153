#!/usr/bin/env bash
# Produce throughput against the machine's limit, in one run on one machine:
#   1. the limit: `runnel perf loopback` moves the same bytes over loopback TCP into a
#      page-cache file (what a broker must at least do with each produced byte);
#   2. kcat (librdkafka) produces RECORDS records of 1 KiB, acks=1, to one partition of
#      a release `runnel broker`;
#   3. `runnel perf produce` does the same through rdkafka.
# Prints MB/s and the ratios to the limit. Needs kcat (scripts/test.sh installs it).
# BROKER_BIN runs another broker binary (e.g. an older build) for a before/after.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${RECORDS:-1000000}
size=1024
bin=target/release/runnel
[ -x "$bin" ] || cargo build --release --locked
command -v kcat >/dev/null || { echo "bench-produce: kcat is missing" >&2; exit 1; }
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bs=127.0.0.1:$port
cleanup() { [ -n "${broker:-}" ] && kill "$broker" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# One record per line: 1023 bytes and the newline kcat splits on.
python3 -c "import sys; sys.stdout.write(('x' * ($size - 1) + '\n') * $records)" > "$work/records.txt"
mbs() { python3 -c "print(f'{($1) / ($2) / 1048576:.1f}')"; }
now() { date +%s.%N; }

# The limit is the best of three runs (page-cache writeback makes single runs noisy).
for _ in 1 2 3; do "$bin" perf loopback --bytes $((records * size)) --dir "$work"; done | tee "$work/limit.txt"
limit=$(grep -o '[0-9.]* MB/s' "$work/limit.txt" | cut -d' ' -f1 | sort -n | tail -1)

"${BROKER_BIN:-$bin}" broker --data-dir "$work/data" --listen "$bs" > "$work/broker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
"$bin" topics create kcat-bench --partitions 1 --bootstrap-server "$bs" >/dev/null
"$bin" topics create perf-bench --partitions 1 --bootstrap-server "$bs" >/dev/null

start=$(now)
kcat -P -b "$bs" -t kcat-bench -p 0 -X acks=1 -l "$work/records.txt"
end=$(now)
kcat_mbs=$(mbs "$records * $size" "$end - $start")
echo "kcat produce, acks=1, $records x $size B: $kcat_mbs MB/s"

"$bin" perf produce --topic perf-bench --num-records "$records" --record-size $size --acks 1 \
  --bootstrap-server "$bs" | tee "$work/perf.txt"

python3 - "$limit" "$kcat_mbs" <<'PY'
import sys
limit, kcat = map(float, sys.argv[1:])
print(f"machine limit {limit:.1f} MB/s; kcat {kcat:.1f} MB/s = {100 * kcat / limit:.0f}% of it")
PY
