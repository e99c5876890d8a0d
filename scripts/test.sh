#!/usr/bin/env bash
# The test command: install dev tools, make sure PostgreSQL is up, lint, type-check, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh --dev

# Storage tests run on PostgreSQL too (127.0.0.1:5432, trust auth, database `test`).
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    fi
    for _ in $(seq 1 30); do
        pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && break
        sleep 1
    done
fi

# tests/deploy/test_k8s.py renders deploy/k8s with kubectl's Kustomize; install it only when
# missing (the tests say which version they need if this one is too old).
if ! command -v kubectl >/dev/null 2>&1; then
    { apt-get update -qq && apt-get install -y -qq kubernetes-client; } \
        || echo "could not install kubectl; tests/deploy/test_k8s.py will fail until it exists" >&2
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -q "$@"
