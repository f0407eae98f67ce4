#!/usr/bin/env bash
# What the rate_limit filter costs: the lab's pipeline three times in one run, without the
# filter, with it counting locally and with it counting in Redis (redis-server on loopback),
# each gateway with one worker on CPU 0; wrk and Redis on CPU 1. The limit is far above the
# load (nothing is refused), so every request pays for one full check: its key evaluated
# (the token's `version` claim, else the client address) and its bucket taken.
#
#   bench/rate_limit.sh [ROUNDS] [DURATION] [CONNECTIONS]    (defaults: 5, 5s, 64)
#
# Prints, per row (no header, a valid token), the median requests/s and CPU seconds per 100k
# requests of each, and their ratios to the gateway without the filter.
set -euo pipefail
ROUNDS=${1:-5}
DURATION=${2:-5s}
CONNECTIONS=${3:-64}
source "$(dirname "$0")/lib.sh"
scripts/setup.sh redis-server

REDIS_PORT=$(port)
taskset -c 1 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port 127.0.0.1 "$REDIS_PORT"

start_backends
limit_yaml() { # $1: the store's lines
    cat <<YAML
      post_routing:
        - name: rate_limit
          config:
$1
            limits:
              - name: per-caller
                key: 'has(jwt.version) ? jwt.version : source.address'
                rate: 1000000000/s
YAML
}

GATEWAY_POST_ROUTING="" start_gateway 1 0
NONE_PORT=$GATEWAY_PORT NONE_PID=$GATEWAY_PID
GATEWAY_POST_ROUTING=$(limit_yaml "            store: local") start_gateway 1 0
LOCAL_PORT=$GATEWAY_PORT LOCAL_PID=$GATEWAY_PID LOCAL_ADMIN=$GATEWAY_ADMIN
GATEWAY_POST_ROUTING=$(limit_yaml "            store: redis
            redis: { url: 'redis://127.0.0.1:$REDIS_PORT/0', timeout: 50ms }") start_gateway 1 0
REDIS_PID=$GATEWAY_PID REDIS_GW_PORT=$GATEWAY_PORT REDIS_ADMIN=$GATEWAY_ADMIN
make_tokens 1
auth="authorization: Bearer $TOKEN"

results="$work/results"
: >"$results"
for round in $(seq "$ROUNDS"); do
    for which in NONE LOCAL REDIS; do
        case $which in
            NONE) p=$NONE_PORT pid=$NONE_PID ;;
            LOCAL) p=$LOCAL_PORT pid=$LOCAL_PID ;;
            REDIS) p=$REDIS_GW_PORT pid=$REDIS_PID ;;
        esac
        for row in "no header|" "valid token|$auth"; do
            IFS='|' read -r name extra <<<"$row"
            line=$(measure_cpu "http://127.0.0.1:$p/" "$extra" 200 "$pid")
            echo "$which|$name|$line" >>"$results"
        done
    done
    echo "round $round done" >&2
done

# Every request counted, none refused nor failed open.
for admin in "$LOCAL_ADMIN" "$REDIS_ADMIN"; do
    curl -s "http://$admin/metrics" | awk '/^switchyard_rate_limit_total/ && $2 > 0 { print "  " $0 }'
done
python3 - "$results" <<'PY'
import statistics, sys
data = {}
for line in open(sys.argv[1]):
    which, name, requests, rps, p50, p99, errors, before, after = line.strip().split("|")
    if int(errors) > 0:
        sys.exit(f"{which} {name}: {errors} errors")
    d = data.setdefault((name, which), {"rps": [], "cpu": [], "p99": []})
    d["rps"].append(float(rps))
    d["cpu"].append((float(after) - float(before)) / max(int(requests), 1) * 100000)
    d["p99"].append(float(p99))
med = statistics.median
print("| row | none req/s | local req/s | redis req/s | local/none | redis/none | CPU s/100k none / local / redis | p99 µs none / local / redis |")
print("|---|---|---|---|---|---|---|---|")
for name in ["no header", "valid token"]:
    n, l, r = (data[(name, w)] for w in ("NONE", "LOCAL", "REDIS"))
    print(f"| {name} | {med(n['rps']):.0f} | {med(l['rps']):.0f} | {med(r['rps']):.0f} "
          f"| {med(l['rps']) / med(n['rps']):.2f} | {med(r['rps']) / med(n['rps']):.2f} "
          f"| {med(n['cpu']):.2f} / {med(l['cpu']):.2f} / {med(r['cpu']):.2f} "
          f"| {med(n['p99']):.0f} / {med(l['p99']):.0f} / {med(r['p99']):.0f} |")
PY
