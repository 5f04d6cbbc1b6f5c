#!/usr/bin/env bash
# Makes sure the GitHub contract tests can run: GitHub's published descriptions, pinned by
# tests/contract/package-lock.json, in tests/contract/node_modules, installed with `npm ci`
# (Node.js and npm from Debian's packages when missing):
#   @octokit/openapi            the REST API (OpenAPI 3.0)
#   @octokit/openapi-webhooks   the webhooks (OpenAPI 3.1)
#   @octokit/webhooks-examples  GitHub's example webhook payloads
# The tests (crates/gatehouse/tests/it/github_contract.rs, crates/gatehouse-server/tests/it/
# serve.rs and webhook_contract.rs) fail when they are missing.
set -euo pipefail
cd "$(dirname "$0")/../tests/contract"
if ! command -v npm >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq && $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
packages="@octokit/openapi @octokit/openapi-webhooks @octokit/webhooks-examples"
# Each package at the version the lock pins, with the file the tests read.
ready() {
    node -e '
        const fs = require("fs");
        const lock = require("./package-lock.json");
        const files = {
            "@octokit/openapi": "generated/api.github.com.json",
            "@octokit/openapi-webhooks": "generated/api.github.com.json",
            "@octokit/webhooks-examples": "api.github.com/index.json",
        };
        for (const name of process.argv.slice(1)) {
            const need = lock.packages["node_modules/" + name].version;
            let have = "";
            try { have = require("./node_modules/" + name + "/package.json").version } catch (e) {}
            if (need !== have || !fs.existsSync("./node_modules/" + name + "/" + files[name])) process.exit(1);
        }' $packages
}
if ! ready; then
    npm ci --silent --no-audit --no-fund >/dev/null
    ready || { echo "npm ci did not install $packages as pinned in tests/contract/package-lock.json" >&2; exit 1; }
fi
for p in $packages; do
    printf '%s %s ' "$p" "$(node -p "require('./package-lock.json').packages['node_modules/$p'].version")"
done
echo "are ready"
