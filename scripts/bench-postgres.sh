#!/usr/bin/env bash
# The PostgreSQL connectors against the database's own speed, in one run on one machine
# (issue 16's goals):
#  1. CDC: ROWS rows (default 1,000,000) inserted in ONE transaction while
#     PostgresCdcSource streams; the time from the commit until every change event is in
#     the topic, and the worker's peak memory. Reference: PostgreSQL decoding the same
#     changes with pgoutput through a second slot (pg_logical_slot_get_binary_changes),
#     best of three.
#  2. Sink: PostgresSink (upsert, ExtractNewRecordState) writes those change events into
#     a table. Reference: the same upsert done in SQL inside PostgreSQL
#     (INSERT ... SELECT ... ON CONFLICT DO UPDATE into an empty table), best of three.
# Prints each rate and the ratio. RUNNEL_BIN runs another build for a before/after.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${ROWS:-1000000}
# shellcheck source=lib/postgres.sh
. scripts/lib/postgres.sh
now() { date +%s.%N; }
rate() { python3 -c "print(f'{$1 / ($3 - $2):,.0f}')"; }
psql -c "CREATE TABLE customers (id INT PRIMARY KEY, name TEXT, email TEXT)"
psql -c "CREATE PUBLICATION runnel_pub FOR TABLE customers"
psql -c "SELECT pg_create_logical_replication_slot('runnel', 'pgoutput')" >/dev/null
psql -c "SELECT pg_create_logical_replication_slot('reference', 'pgoutput')" >/dev/null

"$bin" broker --data-dir "$work/broker" --listen "127.0.0.1:$bport" > "$work/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$bport") 2>/dev/null && break; sleep 0.1; done
topic=dbserver.public.customers
"$bin" topics create "$topic" --partitions 1 --bootstrap-server "127.0.0.1:$bport" >/dev/null
end_offset() {
  "$bin" topics describe "$topic" --bootstrap-server "127.0.0.1:$bport" 2>/dev/null |
    awk -F'End offset: ' '/Partition: 0\t/{print $2; exit}' || true
}
worker_props() { # name rest-port
  cat > "$work/$1.properties" <<PROPS
bootstrap.servers=127.0.0.1:$bport
listeners=http://127.0.0.1:$2
offset.storage.file.filename=$work/$1.offsets
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
PROPS
}
worker_props cdc-worker "$(free_port)"
cdc_properties "$work/cdc.properties" publication.autocreate.mode=disabled snapshot.mode=never
"$bin" connect standalone "$work/cdc-worker.properties" "$work/cdc.properties" > "$work/cdc-worker.log" 2>&1 &
worker=$!
pids+=($worker)
for _ in $(seq 300); do
  [ "$(psql -c "SELECT active FROM pg_replication_slots WHERE slot_name = 'runnel'")" = t ] && break
  sleep 0.1
done

cpu() { awk '{printf "%.1f", ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }
broker_pid=${pids[0]}
walsender=$(psql -c "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'runnel'")
# 1. CDC: one transaction of $rows rows, streamed.
psql -c "INSERT INTO customers SELECT g, 'name ' || g, 'user' || g || '@example.com' FROM generate_series(1, $rows) g"
start=$(now)
cpu0="$(cpu "$worker") $(cpu "$broker_pid") $(cpu "$walsender")"
# PERF=DIR: a CPU profile of the worker while it streams (perf record -g), kept in DIR;
# PERF_GRAPH="--call-graph dwarf" unwinds through code built without frame pointers.
if [ -n "${PERF:-}" ]; then
  perf record -F 499 ${PERF_GRAPH:--g} -p "$worker" -o "$PERF/cdc.perf.data" -- sleep "${PERF_SECS:-10}" >/dev/null 2>&1 &
fi
peak=0
while :; do
  hwm=$(awk '/VmHWM/{print $2}' "/proc/$worker/status")
  peak=$((hwm > peak ? hwm : peak))
  n=$(end_offset); n=${n:-0}
  [ "$n" -ge "$rows" ] 2>/dev/null && break
  kill -0 "$worker" || { echo "the CDC worker died:"; tail -20 "$work/cdc-worker.log"; exit 1; }
  sleep 0.2
done
cdc_end=$(now)
read -r w0 b0 s0 <<< "$cpu0"
echo "CPU seconds while streaming: worker $(python3 -c "print(round($(cpu "$worker") - $w0, 1))"), broker $(python3 -c "print(round($(cpu "$broker_pid") - $b0, 1))"), walsender $(python3 -c "print(round($(cpu "$walsender") - $s0, 1))")"
kill "$worker"; wait "$worker" 2>/dev/null || true
# The reference: best of three decodes of the same changes (peek twice, then get).
best=""
for fn in peek peek get; do
  t0=$(now)
  decoded=$(psql -c "SELECT count(*) FROM pg_logical_slot_${fn}_binary_changes('reference', NULL, NULL, 'proto_version', '1', 'publication_names', 'runnel_pub')")
  t1=$(now)
  secs=$(python3 -c "print($t1 - $t0)")
  if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $secs < $best else 1)"; then best=$secs; fi
done
ref_start=0; ref_end=$best
cdc_rate=$(rate "$rows" "$start" "$cdc_end")
ref_rate=$(rate "$rows" "$ref_start" "$ref_end")
echo "CDC, one $rows-row transaction: $cdc_rate rows/s; worker peak RSS $((peak / 1024)) MiB"
echo "PostgreSQL pgoutput decode of the same changes ($decoded messages): $ref_rate rows/s"
python3 -c "print(f'CDC / decode: {($ref_end - $ref_start) / ($cdc_end - $start):.1%}')"

# 2. Sink: the change events upserted into customers_copy. The source table is vacuumed
# and a checkpoint taken first (as before each reference run), so neither autovacuum of
# the million rows just inserted nor a checkpoint lands in the measured time.
psql -c "VACUUM ANALYZE customers" -c CHECKPOINT
psql -c "CREATE TABLE customers_copy (id INT PRIMARY KEY, name TEXT, email TEXT)"
worker_props sink-worker "$(free_port)"
cat > "$work/sink.properties" <<PROPS
name=copy
connector.class=PostgresSink
topics=$topic
connection.url=postgres://postgres@127.0.0.1:$pgport/postgres
table.name.format=customers_copy
insert.mode=upsert
pk.mode=record_key
delete.enabled=true
transforms=unwrap
transforms.unwrap.type=io.debezium.transforms.ExtractNewRecordState
consumer.override.max.poll.records=${SINK_BATCH:-10000}
batch.size=${SINK_BATCH_SIZE:-3000}
${SINK_EXTRA:-}
PROPS
start=$(now)
"$bin" connect standalone "$work/sink-worker.properties" "$work/sink.properties" > "$work/sink-worker.log" 2>&1 &
worker=$!
pids+=($worker)
if [ -n "${PERF:-}" ]; then
  perf record -F 499 ${PERF_GRAPH:--g} -p "$worker" -o "$PERF/sink.perf.data" -- sleep "${PERF_SECS:-10}" >/dev/null 2>&1 &
fi
pg_cpu0=$(awk '{s += $14 + $15} END {print s}' $(pgrep -u nobody postgres | sed 's|.*|/proc/&/stat|') 2>/dev/null || echo 0)
# Polled by key lookups, not count(*): counting a growing table five times a second
# would cost PostgreSQL more CPU than a batch of the sink's rows. The change events
# are in key order and each put is one transaction, so the last key means all are in.
first=""
while :; do
  if [ -z "$first" ] && [ "$(psql -c "SELECT EXISTS (SELECT 1 FROM customers_copy WHERE id = 1)")" = t ]; then
    first=$(now)
    first_rows=$(psql -c "SELECT count(*) FROM customers_copy")
  fi
  [ "$(psql -c "SELECT EXISTS (SELECT 1 FROM customers_copy WHERE id = $rows)")" = t ] && break
  kill -0 "$worker" || { echo "the sink worker died:"; tail -20 "$work/sink-worker.log"; exit 1; }
  sleep 0.2
done
sink_end=$(now)
pg_cpu1=$(awk '{s += $14 + $15} END {print s}' $(pgrep -u nobody postgres | sed 's|.*|/proc/&/stat|') 2>/dev/null || echo 0)
echo "CPU seconds while sinking: worker $(cpu "$worker"), PostgreSQL $(python3 -c "print(round(($pg_cpu1 - $pg_cpu0) / 100, 1))")"
copied=$(psql -c "SELECT count(*) FROM customers_copy")
[ "$copied" = "$rows" ] || { echo "the sink wrote $copied rows, not $rows"; exit 1; }
# The reference: best of three (into an empty table each time, as the sink's was).
best=""
for _ in 1 2 3; do
  psql -c "DROP TABLE IF EXISTS customers_ref" -c "CREATE TABLE customers_ref (id INT PRIMARY KEY, name TEXT, email TEXT)" -c CHECKPOINT 2>/dev/null
  t0=$(now)
  psql -c "INSERT INTO customers_ref SELECT id, name, email FROM customers ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email"
  t1=$(now)
  secs=$(python3 -c "print($t1 - $t0)")
  if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $secs < $best else 1)"; then best=$secs; fi
done
ref_start=0; ref_end=$best
echo "Sink upsert: $(rate "$((rows - first_rows))" "$first" "$sink_end") rows/s from the first row written; $(rate "$rows" "$start" "$sink_end") rows/s from the worker's start (group join included)"
echo "The same upsert in SQL inside PostgreSQL: $(rate "$rows" "$ref_start" "$ref_end") rows/s"
python3 -c "print(f'sink / SQL upsert: {($rows - $first_rows) / ($sink_end - $first) / ($rows / ($ref_end - $ref_start)):.1%}')"
