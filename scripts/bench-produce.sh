#!/usr/bin/env bash
# Produce throughput against the machine's limit, in one run on one machine:
#   1. the loopback limit: `runnel perf loopback` moves the same bytes over loopback TCP
#      into a page-cache file (what a broker must at least do with each produced byte);
#   2. the limit for this client: kcat produces the records into `runnel perf sink`, a
#      Kafka endpoint that only writes the produced bytes to a page-cache file and acks;
#   3. kcat (librdkafka) produces RECORDS records of 1 KiB, acks=1, to one partition of
#      a release `runnel broker`;
#   4. `runnel perf produce` does the same through rdkafka.
# Each measurement is the best of RUNS (3) runs, each started after a `sync`: page-cache
# writeback makes single runs noisy. Prints MB/s and the ratios. Needs kcat (scripts/test.sh installs it).
# BROKER_BIN runs another broker binary (e.g. an older build) for a before/after.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${RECORDS:-1000000}
runs=${RUNS:-3}
size=1024
bin=target/release/runnel
[ -x "$bin" ] || cargo build --release --locked
command -v kcat >/dev/null || { echo "bench-produce: kcat is missing" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; }
mbs() { python3 -c "print(f'{($1) / ($2) / 1048576:.1f}')"; }
now() { date +%s.%N; }
best() { tr ' ' '\n' | sort -n | tail -1; }
# One record per line: 1023 bytes and the newline kcat splits on.
python3 -c "import sys; sys.stdout.write(('x' * ($size - 1) + '\n') * $records)" > "$work/records.txt"

# kcat_runs PORT TOPIC_PREFIX: MB/s of each run, space-separated.
kcat_runs() {
  local out=""
  for i in $(seq "$runs"); do
    local start end
    sync  # start each run without dirty pages from the last one
    start=$(now)
    kcat -P -b "127.0.0.1:$1" -t "$2-$i" -p 0 -X acks=1 -l "$work/records.txt"
    end=$(now)
    out="$out $(mbs "$records * $size" "$end - $start")"
  done
  echo "$out"
}

for _ in $(seq 3); do sync; "$bin" perf loopback --bytes $((records * size)) --dir "$work"; done | tee "$work/limit.txt"
limit=$(grep -o '[0-9.]* MB/s' "$work/limit.txt" | cut -d' ' -f1 | best)

sink_port=$(free_port)
mkdir -p "$work/sink"
"$bin" perf sink --listen "127.0.0.1:$sink_port" --dir "$work/sink" > "$work/sink.log" 2>&1 &
pids+=($!)
wait_port "$sink_port"
sink_all=$(kcat_runs "$sink_port" sink)
echo "kcat into the minimal sink, MB/s:$sink_all"
sink_mbs=$(echo $sink_all | best)
kill "${pids[0]}"; rm -rf "$work/sink"

port=$(free_port)
bs=127.0.0.1:$port
"${BROKER_BIN:-$bin}" broker --data-dir "$work/data" --listen "$bs" --override num.partitions=1 > "$work/broker.log" 2>&1 &
pids+=($!)
wait_port "$port"
kcat_all=$(kcat_runs "$port" kcat)
echo "kcat into Runnel, acks=1, $records x $size B, MB/s:$kcat_all"
kcat_mbs=$(echo $kcat_all | best)

"$bin" topics create perf-bench --partitions 1 --bootstrap-server "$bs" >/dev/null
"$bin" perf produce --topic perf-bench --num-records "$records" --record-size $size --acks 1 \
  --bootstrap-server "$bs"

python3 - "$limit" "$sink_mbs" "$kcat_mbs" <<'PY'
import sys
limit, sink, kcat = map(float, sys.argv[1:])
print(f"best: loopback+page-cache {limit:.1f} MB/s; kcat into the sink {sink:.1f} MB/s; "
      f"kcat into Runnel {kcat:.1f} MB/s = {100 * kcat / limit:.0f}% of the first, "
      f"{100 * kcat / sink:.0f}% of the second")
PY
