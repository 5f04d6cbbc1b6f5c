#!/usr/bin/env bash
# The guard's load, crash and replica runs at full scale (figures in docs/BENCHMARKS.md,
# section "gatehouse serve: throughput, crash safety, replicas"). Minutes, not seconds: not
# part of the test suite, which runs the same checks at a small scale.
#
#   scripts/kill-test.sh            # throughput, then 200,000 deliveries with 2 SIGKILLs
#   scripts/kill-test.sh replicas   # also two replicas on one PostgreSQL (scripts/ensure-postgres.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p gatehouse --bin gatehouse -p gatehouse-loadgen --example loadgen
L=target/release/examples/loadgen
G=target/release/gatehouse
"$L" throughput --gatehouse "$G" --sends 100000 --concurrency 32
"$L" kill-test --gatehouse "$G" --sends 200000 --kills 2 --concurrency 32
if [ "${1:-}" = replicas ]; then
  "$L" replicas --gatehouse "$G" --sends 100000 --concurrency 32 \
    --db "${GATEHOUSE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}"
fi
