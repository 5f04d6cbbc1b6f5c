#!/usr/bin/env python3
"""Shrinks fuzz/corpus/<target>/ to at most N files that keep most of its coverage.

`cargo fuzz cmin` keeps every file that adds a feature, which for these targets is still
several hundred files. This keeps the named seeds (`*.yml`, `seed-*`) and then, greedily, the files that
add the most coverage edges, up to N in all.

    RUSTC_BOOTSTRAP=1 cargo fuzz build <target>
    python3 shrink_corpus.py <target> [N=95]      # from fuzz/
"""

import os
import shutil
import subprocess
import sys
import tempfile


def features(binary, path):
    """Every coverage feature `path` reaches, from a fresh process (merge reports only new ones)."""
    with tempfile.TemporaryDirectory() as tmp:
        one, empty = os.path.join(tmp, "one"), os.path.join(tmp, "empty")
        os.mkdir(one)
        os.mkdir(empty)
        shutil.copy(path, one)
        control = os.path.join(tmp, "control")
        subprocess.run(
            [binary, "-merge=1", "-use_counters=0", f"-merge_control_file={control}", empty, one],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        with open(control) as f:
            for line in f:
                if line.startswith("FT "):
                    return set(line.split()[2:])
    return set()


def main():
    target = sys.argv[1]
    cap = int(sys.argv[2]) if len(sys.argv) > 2 else 95
    binary = f"target/x86_64-unknown-linux-gnu/release/{target}"
    corpus = f"corpus/{target}"
    files = [os.path.join(corpus, f) for f in sorted(os.listdir(corpus))]
    cov = {f: features(binary, f) for f in files}
    total = set().union(*cov.values())
    chosen = [f for f in files if f.endswith(".yml") or os.path.basename(f).startswith("seed-")]
    got = set().union(*(cov[f] for f in chosen))
    while len(chosen) < cap:
        rest = [f for f in files if f not in chosen]
        if not rest:
            break
        best = max(rest, key=lambda f: (len(cov[f] - got), -os.path.getsize(f)))
        if not cov[best] - got:
            break
        chosen.append(best)
        got |= cov[best]
    for f in files:
        if f not in chosen:
            os.remove(f)
    print(f"{target}: kept {len(chosen)} of {len(files)} files, {len(got)} of {len(total)} features")


if __name__ == "__main__":
    main()
