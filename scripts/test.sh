#!/usr/bin/env bash
# Installs what the tests need on a fresh machine, then runs every test.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

shared=../shared/conformance/run
if [ ! -f "$shared" ]; then
  echo "test.sh: $shared is missing (shared/ must sit beside this checkout)" >&2
  exit 1
fi
# kcat and the Python clients (kafka-python, confluent-kafka) for the conformance suite.
bash "$shared" --setup

# PostgreSQL server binaries for the PostgreSQL connector tests (each test starts its own
# throwaway server with initdb + pg_ctl; PG_BIN may point elsewhere).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${PG_BIN:-}" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
    $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq postgresql >/dev/null
  else
    echo "test.sh: PostgreSQL server binaries (initdb, pg_ctl) are missing; install them or set PG_BIN" >&2
    exit 1
  fi
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
