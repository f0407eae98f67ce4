#!/usr/bin/env bash
# Every test: unit tests and end-to-end tests over loopback sockets (debug build).
# Debian's prometheus package brings promtool (to check /metrics) and the Prometheus server
# (a test scrapes the admin endpoint with it); openssl makes the tests' certificates and tells
# which one a listener serves; curl is the HTTPS, HTTP/2 and h2c client; redis-server is the
# rate limits' shared store (each test starts and stops its own on loopback); python3 runs the
# gRPC tests' server and client.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh prometheus openssl curl redis-server
# The gRPC tests' real server and client (tests/support/grpc_echo.py).
if ! python3 -c 'import grpc' 2>/dev/null; then
    echo "test: installing grpcio" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'grpcio==1.85.3'
fi
exec cargo test --workspace "$@"
