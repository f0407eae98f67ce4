#!/usr/bin/env bash
# Every test: unit tests and end-to-end tests over loopback sockets (debug build).
# Debian's prometheus package brings promtool (to check /metrics) and the Prometheus server
# (a test scrapes the admin endpoint with it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh prometheus
exec cargo test --workspace "$@"
