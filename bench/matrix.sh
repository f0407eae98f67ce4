#!/usr/bin/env bash
# How cost grows with the work: nginx, pingora alone and the gateway side by side in one run,
# over response sizes, a new connection per request, and concurrency.
#
#   bench/matrix.sh [ROUNDS=2] [DURATION=5s]
#
# Same layout as bench/load.sh: each proxy alone on CPU 0 with one worker, wrk (-t1) and the
# nginx backends on CPU 1, no token (the gateway runs the lab's pipeline: jwt_authn,
# transformation, four routes). Cases:
#   - bodies of 0 B, 1 KiB, 16 KiB and 256 KiB (files the backends serve), 64 connections;
#   - `connection: close` on every request: a new client connection per request (churn);
#   - 16, 64, 512 and 4,096 kept-alive connections on the small JSON answer.
# Prints, per case, medians over the rounds: requests/s, p99 and CPU-µs per request of each
# proxy, and the gateway's ratios to nginx and to pingora alone. Memory per idle connection is
# bench/idle.sh's.
set -euo pipefail
ROUNDS=${1:-2}
DURATION=${2:-5s}
# Room for 4,096 clients and as many upstream connections.
export NGINX_CONNECTIONS=20000
source "$(dirname "$0")/lib.sh"
ulimit -n "$(ulimit -Hn)"

start_backends
start_nginx_proxy
start_bare
GATEWAY_LIMITS="{ max_connections: 20000 }" start_gateway 1 0

# name|path|connections|header
cases=(
    "0 B body|/size/0|64|"
    "1 KiB body|/size/1k|64|"
    "16 KiB body|/size/16k|64|"
    "256 KiB body|/size/256k|64|"
    "new connection per request|/|64|connection: close"
    "16 connections|/|16|"
    "64 connections|/|64|"
    "512 connections|/|512|"
    "4096 connections|/|4096|"
)
proxies=(
    "nginx|$NGINX_PORT|$NGINX_PID"
    "pingora|$BARE_PORT|$BARE_PID"
    "gateway|$GATEWAY_PORT|$GATEWAY_PID"
)

for c in "${cases[@]}"; do
    IFS='|' read -r name path conns extra <<<"$c"
    for p in "${proxies[@]}"; do
        IFS='|' read -r proxy port pid <<<"$p"
        check_answer "http://127.0.0.1:$port$path" 200 "$extra"
    done
done

results="$work/results"
: >"$results"
for round in $(seq "$ROUNDS"); do
    for c in "${cases[@]}"; do
        IFS='|' read -r name path conns extra <<<"$c"
        for p in "${proxies[@]}"; do
            IFS='|' read -r proxy port pid <<<"$p"
            line=$(CONNECTIONS=$conns measure_cpu "http://127.0.0.1:$port$path" "$extra" 200 "$pid")
            echo "$name|$proxy|$line" >>"$results"
        done
        echo "round $round: $name" >&2
    done
done

echo
echo "wrk -t1 -d$DURATION, $ROUNDS rounds, medians; each proxy alone on CPU 0 with 1 worker, wrk and"
echo "the nginx backends on CPU 1; $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo
python3 - "$results" <<'PY'
import statistics, sys
cells, order = {}, []
for line in open(sys.argv[1]):
    case, proxy, requests, rps, p50, p99, errors, before, after = line.strip().split("|")
    if case not in order:
        order.append(case)
    c = cells.setdefault((case, proxy), {"rps": [], "p99": [], "cpu": [], "err": 0})
    c["rps"].append(float(rps))
    c["p99"].append(float(p99))
    c["err"] += int(errors)
    if int(requests) > 0:
        c["cpu"].append((float(after) - float(before)) / int(requests) * 1e6)
med = lambda case, proxy, k: statistics.median(cells[(case, proxy)][k]) if cells[(case, proxy)][k] else 0.0
print("| case | req/s nginx / pingora / gateway | gateway vs nginx | gateway vs pingora "
      "| p99 µs nginx / pingora / gateway | gateway p99 vs nginx | CPU-µs per request nginx / pingora / gateway | errors |")
print("|---|---|---|---|---|---|---|---|")
for case in order:
    r = [med(case, p, "rps") for p in ("nginx", "pingora", "gateway")]
    l = [med(case, p, "p99") for p in ("nginx", "pingora", "gateway")]
    u = [med(case, p, "cpu") for p in ("nginx", "pingora", "gateway")]
    e = sum(cells[(case, p)]["err"] for p in ("nginx", "pingora", "gateway"))
    print(f"| {case} | {r[0]:.0f} / {r[1]:.0f} / {r[2]:.0f} | {r[2] / r[0]:.2f} | {r[2] / r[1]:.2f} "
          f"| {l[0]:.0f} / {l[1]:.0f} / {l[2]:.0f} | {l[2] / l[0]:.2f} "
          f"| {u[0]:.1f} / {u[1]:.1f} / {u[2]:.1f} | {e} |")
PY
