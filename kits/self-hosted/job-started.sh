#!/usr/bin/env bash
# gatehouse: admit or refuse a job on this runner before its first step.
#
# GitHub's self-hosted runner runs this script before every job when the runner's environment
# holds ACTIONS_RUNNER_HOOK_JOB_STARTED=<this file's absolute path>: exit 0 lets the job run,
# any other exit fails it before its first step, and what is printed shows in the job's log
# under "Set up runner" ("Running scripts before or after a job", docs.github.com/actions/
# hosting-your-own-runners). The runner starts it as `bash -e <file>`.
#
# It reads its settings from gate.conf beside it, never from the job's environment, and hands
# gatehouse nothing but the variables GitHub sets for every job (GitHub does not let a workflow
# override GITHUB_* and RUNNER_* variables). Install it, gate.conf, the binary and the public
# key owned by root and read-only (install.sh does).
set -u

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
conf="$here/gate.conf"
if [[ ! -r $conf ]]; then
    echo "gatehouse: $conf cannot be read, so this runner's gate is not set up and no job may run on it. Ask the organisation's runner admins." >&2
    exit 1
fi

# gate.conf: KEY=value lines; `#` starts a comment. Read, never sourced.
declare -A cfg=()
while IFS= read -r line || [[ -n $line ]]; do
    line=${line%%#*}
    if [[ $line =~ ^[[:space:]]*([A-Z_]+)[[:space:]]*=[[:space:]]*(.*[^[:space:]])?[[:space:]]*$ ]]; then
        cfg[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]:-}
    fi
done <"$conf"

bin=${cfg[GATEHOUSE_BIN]:-$here/bin/gatehouse}
# What the runner serves: its pool, else its resource, else the labels it was provisioned with.
if [[ -n ${cfg[POOL]:-} ]]; then
    args=(gate --pool "${cfg[POOL]}")
elif [[ -n ${cfg[RESOURCE]:-} ]]; then
    args=(gate --resource "${cfg[RESOURCE]}")
elif [[ -n ${cfg[LABELS]:-} ]]; then
    args=(gate --labels "${cfg[LABELS]}")
else
    args=(gate)
fi
if [[ -n ${cfg[GUARD]:-} ]]; then
    args+=(--guard "${cfg[GUARD]}" --token-file "${cfg[TOKEN_FILE]:-$here/pool.token}")
fi
args+=(--snapshot "${cfg[SNAPSHOT]:-/var/lib/gatehouse/snapshot.bin}")
for key in ${cfg[PUBLIC_KEYS]:-$here/gate-signing.pub}; do
    args+=(--public-key "$key")
done
if [[ -n ${cfg[STATE]:-} ]]; then
    args+=(--state "${cfg[STATE]}")
fi
if [[ -n ${cfg[TIMEOUT]:-} ]]; then
    args+=(--timeout "${cfg[TIMEOUT]}")
fi
if [[ -n ${cfg[UNREACHABLE_WAIT]:-} ]]; then
    args+=(--unreachable-wait "${cfg[UNREACHABLE_WAIT]}")
fi
if [[ ${cfg[VERBOSE]:-no} == yes ]]; then
    args+=(--verbose)
fi

# Only what GitHub sets for the job: nothing else of the environment reaches gatehouse.
pass=()
for name in GITHUB_REPOSITORY GITHUB_EVENT_NAME GITHUB_EVENT_PATH GITHUB_ACTOR GITHUB_ACTOR_ID \
    GITHUB_TRIGGERING_ACTOR GITHUB_RUN_ID GITHUB_RUN_ATTEMPT GITHUB_JOB GITHUB_WORKFLOW_REF \
    GITHUB_REF GITHUB_STEP_SUMMARY RUNNER_NAME; do
    if [[ -n ${!name+set} ]]; then
        pass+=("$name=${!name}")
    fi
done
exec /usr/bin/env -i "${pass[@]}" "$bin" "${args[@]}"
