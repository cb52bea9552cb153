#!/usr/bin/env bash
# Connect throughput: FileStreamSource lines/s into a topic, then FileStreamSink lines/s
# out of it, with the release binary on this machine. Not a test; prints figures.
# Usage: scripts/bench-connect.sh [LINES]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
bin=target/release/runnel
[ -x "$bin" ] || cargo build --release
work=$(mktemp -d)
trap 'kill $connect $broker 2>/dev/null; wait $connect $broker 2>/dev/null; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 10000)); rest=$((port + 1))
python3 - "$work/input.txt" "$n" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(f"line {i:09d} lorem ipsum dolor sit amet, ünïcödé\n")
PY
cat > "$work/source.json" <<JSON
{"name": "bench-source", "config": {"connector.class": "FileStreamSource", "file": "$work/input.txt", "topic": "bench-lines", "batch.size": "10000"}}
JSON
cat > "$work/worker.properties" <<PROPS
bootstrap.servers=127.0.0.1:$port
listeners=http://127.0.0.1:$rest
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
offset.storage.file.filename=$work/connect.offsets
offset.flush.interval.ms=1000
PROPS
"$bin" broker --data-dir "$work/data" --listen 127.0.0.1:$port >/dev/null 2>&1 &
broker=$!
sleep 1
"$bin" connect standalone "$work/worker.properties" "$work/source.json" >/dev/null 2>&1 &
connect=$!
end_offset() { "$bin" topics describe bench-lines --bootstrap-server 127.0.0.1:$port 2>/dev/null | awk -F'End offset: ' 'NF>1{s+=$2} END{print s+0}'; }
start=$(date +%s.%N)
until [ "$(end_offset)" -ge "$n" ]; do sleep 0.2; done
t=$(echo "$(date +%s.%N) - $start" | bc)
echo "source: $n lines in ${t}s = $(echo "$n / $t" | bc) lines/s"
start=$(date +%s.%N)
curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$rest/connectors" \
  -d "{\"name\": \"bench-sink\", \"config\": {\"connector.class\": \"FileStreamSink\", \"file\": \"$work/output.txt\", \"topics\": \"bench-lines\"}}" >/dev/null
until [ -f "$work/output.txt" ]; do sleep 0.05; done
echo "sink:   output file opened after $(echo "$(date +%s.%N) - $start" | bc)s (group join)"
until [ "$(wc -l < "$work/output.txt")" -ge 1 ]; do sleep 0.05; done
echo "sink:   first line after $(echo "$(date +%s.%N) - $start" | bc)s"
until [ "$(wc -l < "$work/output.txt")" -ge "$n" ]; do sleep 0.2; done
t=$(echo "$(date +%s.%N) - $start" | bc)
echo "sink:   $n lines in ${t}s = $(echo "$n / $t" | bc) lines/s"
cmp -s "$work/input.txt" "$work/output.txt" && echo "output identical to input" || echo "OUTPUT DIFFERS"
