#!/usr/bin/env bash
# Every test: unit tests and end-to-end tests over loopback sockets (debug build).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo test --workspace "$@"
