#!/usr/bin/env bash
# Installs gatehouse's gate on a self-hosted runner machine (run as root):
#
#   install.sh --binary ./gatehouse --public-key gate-signing.pub --token pool.token \
#              --conf gate.conf [--runner-dir /home/runner/actions-runner] [--root DIR]
#
# - /opt/gatehouse/{bin/gatehouse, job-started.sh, gate.conf, gate-signing.pub, pool.token},
#   owned by root, read-only for everyone else: a job runs as the runner's account and can
#   read them (the design expects that of the token) but cannot change them;
# - gatehouse-snapshot.{service,timer}, run as the `gatehouse` account, keep
#   /var/lib/gatehouse/snapshot.bin current (that account alone may write there);
# - ACTIONS_RUNNER_HOOK_JOB_STARTED for the runner: a line in the runner's `.env` when
#   --runner-dir is given, and for every service systemd starts (DefaultEnvironment), so that a
#   runner installed later, at boot (as Cirun does), has it too.
#
# --root installs into another root folder; --no-start enables the timer without starting it
# (inside an image being built, as the diskimage-builder element does).
set -euo pipefail

root="" start=yes binary="" public_keys=() token="" conf="" runner_dir=""
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
while [[ $# -gt 0 ]]; do
    case $1 in
    --binary) binary=$2; shift 2 ;;
    --public-key) public_keys+=("$2"); shift 2 ;;
    --token) token=$2; shift 2 ;;
    --conf) conf=$2; shift 2 ;;
    --runner-dir) runner_dir=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --no-start) start=no; shift ;;
    *) echo "install.sh: unknown argument $1 (see the comment at the top of this file)" >&2; exit 2 ;;
    esac
done
for need in binary token conf; do
    if [[ -z ${!need} ]]; then
        echo "install.sh: --$need is required" >&2
        exit 2
    fi
done
if [[ ${#public_keys[@]} -eq 0 ]]; then
    echo "install.sh: --public-key is required (the guard's gate-signing.pub)" >&2
    exit 2
fi

opt="$root/opt/gatehouse"
install -d -m 0755 "$opt" "$opt/bin" "$root/etc/systemd/system" "$root/etc/systemd/system.conf.d"
install -m 0755 "$binary" "$opt/bin/gatehouse"
install -m 0755 "$here/job-started.sh" "$opt/job-started.sh"
install -m 0644 "$conf" "$opt/gate.conf"
install -m 0644 "$token" "$opt/pool.token"
keys=""
for i in "${!public_keys[@]}"; do
    name=gate-signing.pub
    [[ $i -gt 0 ]] && name="gate-signing.$i.pub"
    install -m 0644 "${public_keys[$i]}" "$opt/$name"
    keys="$keys /opt/gatehouse/$name"
done
# The installed keys are the ones trusted.
sed -i "s|^PUBLIC_KEYS=.*|PUBLIC_KEYS=${keys# }|" "$opt/gate.conf"
install -m 0644 "$here/gatehouse-snapshot.service" "$here/gatehouse-snapshot.timer" "$root/etc/systemd/system/"
printf '[Manager]\nDefaultEnvironment=%s\n' "$(cat "$here/runner.env")" >"$root/etc/systemd/system.conf.d/gatehouse-gate.conf"
chmod 0644 "$root/etc/systemd/system.conf.d/gatehouse-gate.conf"
if [[ -n $runner_dir ]]; then
    env_file="$root$runner_dir/.env"
    grep -qs '^ACTIONS_RUNNER_HOOK_JOB_STARTED=' "$env_file" && sed -i '/^ACTIONS_RUNNER_HOOK_JOB_STARTED=/d' "$env_file"
    cat "$here/runner.env" >>"$env_file"
fi
if [[ $(id -u) -eq 0 ]]; then
    chown -R root:root "$opt"
    if ! getent passwd gatehouse >/dev/null 2>&1 && [[ -z $root ]]; then
        useradd --system --no-create-home --shell /usr/sbin/nologin gatehouse
    elif [[ -n $root ]] && command -v chroot >/dev/null && [[ -x $root/usr/sbin/useradd ]]; then
        chroot "$root" useradd --system --no-create-home --shell /usr/sbin/nologin gatehouse 2>/dev/null || true
    fi
fi
if [[ -z $root ]] && command -v systemctl >/dev/null; then
    if [[ $start == yes ]]; then
        systemctl daemon-reload
        systemctl enable --now gatehouse-snapshot.timer
    else
        systemctl enable gatehouse-snapshot.timer
    fi
fi
echo "gatehouse gate installed in $opt; restart the runner so that it reads ACTIONS_RUNNER_HOOK_JOB_STARTED"
