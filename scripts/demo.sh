#!/usr/bin/env bash
# The versioned-routing lab on the shipped config: builds the gateway (release), starts both
# echo apps and the gateway on loopback, sends the lab's requests and prints what answered.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet --bin switchyard
exec target/release/switchyard demo --config conf/gateway.yaml "$@"
