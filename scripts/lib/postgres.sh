# Sourced by the PostgreSQL benchmarks: a throwaway PostgreSQL with logical decoding
# (initdb as `nobody` when run as root, since initdb refuses root), the runnel binary,
# free ports, and a cleanup that stops everything started. Sets bin, pgbin, work,
# pgport, bport and pids; defines as_pg, free_port, psql.
bin=${RUNNEL_BIN:-target/release/runnel}
[ -x "$bin" ] || cargo build --release --locked
pgbin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  # LOGS=DIR keeps the logs of what ran (workers, broker) in DIR.
  if [ -n "${LOGS:-}" ]; then cp "$work"/*.log "$LOGS"/ 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/pg/postmaster.pid" ] && as_pg "$pgbin/pg_ctl" -D "$work/pg" stop -m immediate >/dev/null 2>&1
  wait 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pgport=$(free_port); bport=$(free_port)
mkdir "$work/pg"; [ "$(id -u)" = 0 ] && chown nobody "$work/pg"
as_pg "$pgbin/initdb" -D "$work/pg" -U postgres --auth=trust --no-sync >/dev/null
printf "port=%s\nlisten_addresses='127.0.0.1'\nunix_socket_directories='%s'\nwal_level=logical\nfsync=off\nmax_wal_size=4GB\n" \
  "$pgport" "$work/pg" >> "$work/pg/postgresql.conf"
as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w start >/dev/null
psql() { "$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U postgres -qAt "$@"; }
# cdc_properties FILE [EXTRA-LINE...]: PostgresCdcSource's config for table customers.
cdc_properties() {
  local file=$1; shift
  cat > "$file" <<PROPS
name=cdc
connector.class=io.debezium.connector.postgresql.PostgresConnector
database.hostname=127.0.0.1
database.port=$pgport
database.user=postgres
database.dbname=postgres
topic.prefix=dbserver
table.include.list=public.customers
slot.name=runnel
publication.name=runnel_pub
PROPS
  printf '%s\n' "$@" >> "$file"
}
