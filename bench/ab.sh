#!/usr/bin/env bash
# Two builds of the gateway side by side, to choose a setting by measurement (an allocator, a
# release profile, a runtime option): both run the lab's pipeline on CPU 0, one worker each,
# and wrk drives them in turn, round after round, with no header and with a valid token.
#
#   bench/ab.sh BIN_A BIN_B [ROUNDS] [DURATION] [CONNECTIONS]    (defaults: 5, 5s, 64)
#
# With A_FRONTEND=gateway-api (or B_FRONTEND), that side runs the same lab from the Gateway
# API manifests (conf/gateway-api/): give the same binary twice to compare the front-ends.
#
# AB_THREADS (default 1) worker threads each, on AB_CPUS (default 0): AB_THREADS=2 AB_CPUS=0-1
# compares runtime settings with both cores (wrk and the backends stay on CPU 1).
#
# Prints the median requests/s and CPU seconds per 100k requests of each, and B's ratio to A.
set -euo pipefail
A=$(realpath "$1")
B=$(realpath "$2")
ROUNDS=${3:-5}
DURATION=${4:-5s}
CONNECTIONS=${5:-64}
SWITCHYARD_BIN=$A
source "$(dirname "$0")/lib.sh"

start_backends
start_side() {
    if [[ $1 == gateway-api ]]; then
        start_gateway_api "${AB_THREADS:-1}" "${AB_CPUS:-0}" "$2"
    else
        start_gateway "${AB_THREADS:-1}" "${AB_CPUS:-0}" "$2"
    fi
}
start_side "${A_FRONTEND:-native}" "$A"
A_PORT=$GATEWAY_PORT A_PID=$GATEWAY_PID
start_side "${B_FRONTEND:-native}" "$B"
B_PORT=$GATEWAY_PORT B_PID=$GATEWAY_PID
make_tokens 1
auth="authorization: Bearer $TOKEN"

results="$work/results"
: >"$results"
for round in $(seq "$ROUNDS"); do
    for which in A B; do
        port_var=${which}_PORT pid_var=${which}_PID
        for row in "no header|" "valid token|$auth"; do
            IFS='|' read -r name extra <<<"$row"
            line=$(measure_cpu "http://127.0.0.1:${!port_var}/" "$extra" 200 "${!pid_var}")
            echo "$which|$name|$line" >>"$results"
        done
    done
    echo "round $round done" >&2
done

echo "A: $A (peak RSS $(peak_rss_mb "$A_PID") MB)"
echo "B: $B (peak RSS $(peak_rss_mb "$B_PID") MB)"
python3 - "$results" <<'PY'
import statistics, sys
data = {}
for line in open(sys.argv[1]):
    which, name, requests, rps, p50, p99, errors, before, after = line.strip().split("|")
    d = data.setdefault((name, which), {"rps": [], "cpu": []})
    d["rps"].append(float(rps))
    d["cpu"].append((float(after) - float(before)) / max(int(requests), 1) * 100000)
med = statistics.median
print("| row | A req/s | B req/s | B/A | A CPU s/100k | B CPU s/100k |")
print("|---|---|---|---|---|---|")
for name in ["no header", "valid token"]:
    a, b = data[(name, "A")], data[(name, "B")]
    print(f"| {name} | {med(a['rps']):.0f} | {med(b['rps']):.0f} | {med(b['rps']) / med(a['rps']):.2f} "
          f"| {med(a['cpu']):.2f} | {med(b['cpu']):.2f} |")
PY
