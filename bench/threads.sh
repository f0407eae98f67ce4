#!/usr/bin/env bash
# Worker-threads sweep: the gateway on the lab's pipeline with 1, 2, 4 and as many worker
# threads as the machine has cores, each driven by wrk with no header and with a valid token.
#
#   bench/threads.sh [ROUNDS] [DURATION] [CONNECTIONS]      (defaults: 3 rounds, 10s, 64)
#
# Unlike bench/load.sh the gateway may use every core; wrk and the nginx backends stay on
# CPU 1, so on a small machine they compete with the gateway's extra threads, and the table
# shows what more threads buy there.
set -euo pipefail
ROUNDS=${1:-3}
DURATION=${2:-10s}
CONNECTIONS=${3:-64}
source "$(dirname "$0")/lib.sh"

start_backends
cores=$(nproc)
sweep=$(printf '%s\n' 1 2 4 "$cores" | sort -n -u)
declare -A port pid
for t in $sweep; do
    start_gateway "$t" "0-$((cores - 1))"
    port[$t]=$GATEWAY_PORT
    pid[$t]=$GATEWAY_PID
done
make_tokens 1

results="$work/results"
: >"$results"
for round in $(seq "$ROUNDS"); do
    for t in $sweep; do
        for row in "no header|" "valid token|authorization: Bearer $TOKEN"; do
            IFS='|' read -r name extra <<<"$row"
            line=$(measure_cpu "http://127.0.0.1:${port[$t]}/" "$extra" 200 "${pid[$t]}")
            echo "$t|$name|$line" >>"$results"
        done
    done
    echo "round $round done" >&2
done

echo
echo "wrk -t1 -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, medians; gateway on CPUs 0-$((cores - 1)), wrk and backends on CPU 1"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    t, name, requests, rps, p50, p99, errors, before, after = line.strip().split("|")
    r = rows.setdefault((int(t), name), {"rps": [], "p50": [], "p99": [], "err": 0, "cpu": []})
    r["rps"].append(float(rps)); r["p50"].append(float(p50)); r["p99"].append(float(p99))
    r["err"] += int(errors)
    r["cpu"].append((float(after) - float(before)) / max(int(requests), 1) * 100000)
med = statistics.median
print("| threads | row | req/s | p50 µs | p99 µs | errors | CPU s /100k req |")
print("|---|---|---|---|---|---|---|")
for (t, name), r in sorted(rows.items()):
    print(f"| {t} | {name} | {med(r['rps']):.0f} | {med(r['p50']):.0f} | {med(r['p99']):.0f} | {r['err']} | {med(r['cpu']):.2f} |")
PY
