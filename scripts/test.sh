#!/usr/bin/env bash
# The whole test suite, with everything it needs: PostgreSQL (started or installed by
# scripts/ensure-postgres.sh), then every crate's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
cargo test --workspace --locked "$@"
