#!/usr/bin/env bash
# The CDC source's memory while it snapshots a large table: a throwaway PostgreSQL
# (initdb, as `nobody` when run as root), ROWS rows (default 5,000,000) in one table,
# `runnel broker` and `runnel connect standalone` with PostgresCdcSource; prints the
# worker's peak resident memory (VmHWM) once every row is in the topic, and the rate.
# RUNNEL_BIN runs another build (e.g. an older one) for a before/after.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${ROWS:-5000000}
bin=${RUNNEL_BIN:-target/release/runnel}
[ -x "$bin" ] || cargo build --release --locked
pgbin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/pg/postmaster.pid" ] && as_pg "$pgbin/pg_ctl" -D "$work/pg" stop -m immediate >/dev/null 2>&1
  wait 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pgport=$(free_port); bport=$(free_port); rport=$(free_port)
mkdir "$work/pg"; [ "$(id -u)" = 0 ] && chown nobody "$work/pg"
as_pg "$pgbin/initdb" -D "$work/pg" -U postgres --auth=trust --no-sync >/dev/null
printf "port=%s\nlisten_addresses='127.0.0.1'\nunix_socket_directories='%s'\nwal_level=logical\nfsync=off\n" \
  "$pgport" "$work/pg" >> "$work/pg/postgresql.conf"
as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w start >/dev/null
psql() { "$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U postgres -qAt "$@"; }
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
cat > "$work/cdc.properties" <<PROPS
name=cdc
connector.class=io.debezium.connector.postgresql.PostgresConnector
database.hostname=127.0.0.1
database.port=$pgport
database.user=postgres
database.dbname=postgres
topic.prefix=dbserver
table.include.list=public.customers
publication.autocreate.mode=filtered
slot.name=runnel
publication.name=runnel_pub
PROPS
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
