#!/usr/bin/env bash
# Every test: unit tests and end-to-end tests over loopback sockets (debug build).
# Debian's prometheus package brings promtool (to check /metrics) and the Prometheus server
# (a test scrapes the admin endpoint with it); openssl makes the tests' certificates and tells
# which one a listener serves; curl is the HTTPS, HTTP/2 and h2c client.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh prometheus openssl curl
exec cargo test --workspace "$@"
