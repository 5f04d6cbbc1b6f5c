#!/usr/bin/env bash
# Makes sure the browser test can run: Debian's chromium at /usr/bin/chromium (installed from
# Debian's packages when missing), Node.js with npm, and tests/browser's node_modules
# (playwright-core, pinned by package-lock.json, installed with `npm ci`). The browser test
# (crates/gatehouse/tests/it/site_cli.rs) fails when any of them is missing; set
# GATEHOUSE_SKIP_BROWSER=1 to skip it knowingly (this script then does nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${GATEHOUSE_SKIP_BROWSER:-}" = "1" ]; then
    echo "GATEHOUSE_SKIP_BROWSER=1: not installing chromium; the browser test will be SKIPPED" >&2
    exit 0
fi

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} from Debian's packages for the browser test" >&2
    if [ "$(id -u)" -ne 0 ]; then
        sudo=sudo
    else
        sudo=
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The browser starts at all (a missing library shows here, not in the middle of a test).
if ! /usr/bin/chromium --headless --no-sandbox --disable-gpu --dump-dom about:blank >/dev/null 2>&1; then
    echo "/usr/bin/chromium is installed but does not start headless; see its output:" >&2
    /usr/bin/chromium --headless --no-sandbox --disable-gpu --dump-dom about:blank >&2 || true
    exit 1
fi

need=$(node -p "require('./tests/browser/package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "try { require('./tests/browser/node_modules/playwright-core/package.json').version } catch (e) { '' }")
if [ "$need" != "$have" ]; then
    echo "installing tests/browser's node modules (npm ci: playwright-core $need)" >&2
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}') and playwright-core are ready" >&2
