#!/usr/bin/env bash
# The whole test suite, with everything it needs: PostgreSQL (started or installed by
# scripts/ensure-postgres.sh), then every crate's unit and integration tests. Ends with one
# line that totals every test binary's results.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
scripts/ensure-chromium.sh   # the browser test: chromium and playwright-core (GATEHOUSE_SKIP_BROWSER=1 skips)
scripts/ensure-openapi.sh    # the GitHub contract test: @octokit/openapi, pinned
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --lib --bins --tests "$@" 2>&1 | tee "$log" || status=$?
passed=$(grep -oE '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -oE '[0-9]+ failed;' "$log" | awk '{s += $1} END {print s + 0}')
echo
echo "${passed} passed, ${failed} failed"
exit "$status"
