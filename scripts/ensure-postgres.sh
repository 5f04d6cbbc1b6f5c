#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 with trust authentication for loopback and
# has a database `test`: starts the cluster if it is stopped, installs it from Debian's
# packages if it is missing. The multi-replica tests of `gatehouse serve` need it.
set -euo pipefail

ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }

if ! ready; then
    if ! ls -d /etc/postgresql/*/main >/dev/null 2>&1; then
        echo "PostgreSQL is not installed: installing it from Debian's packages" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql >/dev/null
    fi
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    if ! grep -q 'gatehouse-tests' "$hba"; then
        # Tests connect over loopback without a password.
        sed -i '1i host all all 127.0.0.1/32 trust # gatehouse-tests' "$hba"
        sed -i '1i host all all ::1/128 trust # gatehouse-tests' "$hba"
    fi
    echo "starting PostgreSQL $version" >&2
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
        || pg_ctlcluster "$version" main start
    for _ in $(seq 1 30); do
        ready && break
        sleep 1
    done
fi
if ! ready; then
    echo "PostgreSQL does not answer on 127.0.0.1:5432; start it and run again" >&2
    exit 1
fi
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test'
fi
echo "PostgreSQL is ready on 127.0.0.1:5432" >&2
