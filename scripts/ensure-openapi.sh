#!/usr/bin/env bash
# Makes sure the GitHub contract test can run: GitHub's published REST description
# (`@octokit/openapi`, pinned by tests/contract/package-lock.json) in tests/contract/node_modules,
# installed with `npm ci` (Node.js and npm from Debian's packages when missing). The test
# (crates/gatehouse/tests/github_contract.rs) fails when it is missing.
set -euo pipefail
cd "$(dirname "$0")/../tests/contract"
if ! command -v npm >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq && $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
need=$(node -p "require('./package-lock.json').packages['node_modules/@octokit/openapi'].version")
have=$(node -p "try { require('./node_modules/@octokit/openapi/package.json').version } catch (e) { '' }")
if [ "$need" != "$have" ]; then
    npm ci --silent --no-audit --no-fund >/dev/null
fi
echo "@octokit/openapi $need is ready"
