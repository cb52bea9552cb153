#!/usr/bin/env bash
# The cost of exactly-once source support (KIP-618): FileStreamSource lines/s into a
# topic on a distributed worker, with exactly.once.source.support=disabled and then
# =enabled, same broker, same file, same run (release binary). A run ends when the
# connector's committed offset reaches the file's end (GET /connectors/src/offsets), so
# every mode is timed to the same point: every line delivered and its offset committed.
# Modes: disabled; enabled (transaction.boundary=poll, one transaction per poll of
# batch.size lines); interval (enabled, transaction.boundary=interval every 100 ms).
# Not a test; prints figures. Usage: scripts/bench-connect-eos.sh [LINES] [BATCH_SIZE]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
batch=${2:-2000}
bin=target/release/runnel
[ -x "$bin" ] || cargo build --release
work=$(mktemp -d)
pids=()
# Workers stop before the broker they would otherwise wait for.
trap 'for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null; wait "${pids[i]}" 2>/dev/null; done; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 10000))
python3 - "$work/input.txt" "$n" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(f"line {i:09d} lorem ipsum dolor sit amet, ünïcödé\n")
PY
size=$(stat -c %s "$work/input.txt")
"$bin" broker --data-dir "$work/data" --listen 127.0.0.1:$port >/dev/null 2>&1 &
pids+=($!)
sleep 1
for mode in disabled enabled interval; do
  support=$mode extra=""
  if [ "$mode" = interval ]; then
    support=enabled
    extra=', "transaction.boundary": "interval", "transaction.boundary.interval.ms": "100"'
  fi
  rest=$((port + 1 + ${#pids[@]}))
  cat > "$work/worker-$mode.properties" <<PROPS
bootstrap.servers=127.0.0.1:$port
listeners=http://127.0.0.1:$rest
group.id=bench-$mode
config.storage.topic=bench-$mode-configs
offset.storage.topic=bench-$mode-offsets
status.storage.topic=bench-$mode-status
offset.flush.interval.ms=100
exactly.once.source.support=$support
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
PROPS
  RUST_LOG=${RUST_LOG:-warn} "$bin" connect distributed "$work/worker-$mode.properties" >"$work/worker-$mode.log" 2>&1 &
  pids+=($!)
  until curl -s "http://127.0.0.1:$rest/" >/dev/null; do sleep 0.1; done
  start=$(date +%s.%N)
  curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$rest/connectors" \
    -d "{\"name\": \"src\", \"config\": {\"connector.class\": \"FileStreamSource\", \"file\": \"$work/input.txt\", \"topic\": \"bench-$mode\", \"batch.size\": \"$batch\"$extra}}" >/dev/null
  position() { curl -s "http://127.0.0.1:$rest/connectors/src/offsets" | python3 -c 'import sys,json; o=json.load(sys.stdin).get("offsets",[]); print(o[0]["offset"]["position"] if o else 0)' 2>/dev/null || echo 0; }
  until [ "$(position)" -ge "$size" ]; do sleep 0.1; done
  t=$(echo "$(date +%s.%N) - $start" | bc)
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
  echo "$mode: $n lines (batch.size $batch) in ${t}s = $(echo "$n / $t" | bc) lines/s"
done
