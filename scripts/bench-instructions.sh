#!/usr/bin/env bash
# Instructions per decision of each engine in the `engines` benchmark, counted by callgrind.
# Unlike times, instruction counts do not move with the machine's load, so the ratios between
# engines can be compared across runs and machines. Usage: scripts/bench-instructions.sh
# (builds the benchmark first; about a minute per engine under valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 2; }
# Built with the whole workspace's features, as every other build of a checkout is, so that
# the dependencies are not built a second time with other features.
bin=$(cargo bench --workspace --locked --bench engines --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "engines" and m.get("executable"):
        print(m["executable"])')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for engine in gatehouse gatehouse-denied cedar regorus-interpreter regorus-rvm regorus-interpreter-job regorus-rvm-job; do
    # `-job`: the same engine on the job itself; `-denied`: the same function on denials alone.
    base=${engine%-job}
    base=${base%-denied}
    fn="bench_${base//-/_}"
    valgrind --tool=callgrind --callgrind-out-file="$out/$engine" --toggle-collect="*$fn*" \
        "$bin" --bench --profile-time 2 "^decide/$engine\$" >/dev/null 2>&1
    python3 - "$out/$engine" "$fn" "$engine" <<'PY'
import re, sys
path, fn, engine = sys.argv[1:]
names, calls, total = {}, 0, 0
lines = open(path).read().split("\n")
for line in lines:
    m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
    if m and m.group(2):
        names[m.group(1)] = m.group(2)
    if line.startswith("summary:"):
        total = int(line.split()[1])
for i, line in enumerate(lines):
    m = re.match(r"cfn=\((\d+)\)", line)
    if m and fn in names.get(m.group(1), ""):
        c = re.match(r"calls=(\d+)", lines[i + 1])
        if c:
            calls += int(c.group(1))
print(f"{engine:22} {total / calls:12,.0f} instructions per decision ({calls:,} decisions)")
PY
done
