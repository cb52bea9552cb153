#!/usr/bin/env bash
# The CDC source's memory while it snapshots a large table: a throwaway PostgreSQL
# (initdb, as `nobody` when run as root), ROWS rows (default 5,000,000) in one table,
# `runnel broker` and `runnel connect standalone` with PostgresCdcSource; prints the
# worker's peak resident memory (VmHWM) once every row is in the topic, and the rate.
# RUNNEL_BIN runs another build (e.g. an older one) for a before/after.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${ROWS:-5000000}
# shellcheck source=lib/postgres.sh
. scripts/lib/postgres.sh
rport=$(free_port)
psql -c "CREATE TABLE customers (id INT PRIMARY KEY, name TEXT, email TEXT)"
psql -c "INSERT INTO customers SELECT g, 'name ' || g, 'user' || g || '@example.com' FROM generate_series(1, $rows) g"

"$bin" broker --data-dir "$work/broker" --listen "127.0.0.1:$bport" > "$work/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$bport") 2>/dev/null && break; sleep 0.1; done
topic=dbserver.public.customers
"$bin" topics create "$topic" --partitions 1 --bootstrap-server "127.0.0.1:$bport" >/dev/null
cat > "$work/worker.properties" <<PROPS
bootstrap.servers=127.0.0.1:$bport
listeners=http://127.0.0.1:$rport
offset.storage.file.filename=$work/connect.offsets
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
PROPS
cdc_properties "$work/cdc.properties" publication.autocreate.mode=filtered
start=$(date +%s.%N)
"$bin" connect standalone "$work/worker.properties" "$work/cdc.properties" > "$work/worker.log" 2>&1 &
worker=$!
pids+=($worker)
end_offset() {
  "$bin" topics describe "$topic" --bootstrap-server "127.0.0.1:$bport" 2>/dev/null |
    awk -F'End offset: ' '/Partition: 0\t/{print $2; exit}' || true
}
peak=0
while :; do
  hwm=$(awk '/VmHWM/{print $2}' "/proc/$worker/status")
  peak=$((hwm > peak ? hwm : peak))
  n=$(end_offset); n=${n:-0}
  [ "$n" -ge "$rows" ] 2>/dev/null && break
  kill -0 "$worker" || { echo "the worker died:"; tail -20 "$work/worker.log"; exit 1; }
  sleep 1
done
end=$(date +%s.%N)
python3 -c "print(f'snapshot of $rows rows: {$rows / ($end - $start):,.0f} rows/s; worker peak RSS {$peak / 1024:.0f} MiB')"
