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

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
