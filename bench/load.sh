#!/usr/bin/env bash
# The load benchmark: the gateway side by side with nginx and HAProxy, in one run.
#
#   bench/load.sh [ROUNDS] [DURATION] [CONNECTIONS] [TOKENS]
#       defaults: 3 rounds, 10s, 64 connections, 32768 distinct tokens for the fresh-token row
#
# Starts two nginx echo backends, nginx and HAProxy routing by x-version-override with
# upstream keepalive, pingora alone doing the same (the floor under the gateway), and the
# gateway on the lab's pipeline. Then drives every row with wrk (same connections and
# duration), rows alternating within each round, and prints the medians over the rounds:
# requests/s, p50, p99, errors, the proxy's CPU seconds per 100k requests, its peak RSS, and
# the ratio to nginx with no header in the same run (the figure to quote: absolute numbers
# are not comparable across machines).
set -euo pipefail
ROUNDS=${1:-3}
DURATION=${2:-10s}
CONNECTIONS=${3:-64}
TOKEN_COUNT=${4:-32768}
source "$(dirname "$0")/lib.sh"

start_backends
start_nginx_proxy
start_haproxy
start_bare
start_gateway 1 0
echo "minting $TOKEN_COUNT tokens..." >&2
make_tokens "$TOKEN_COUNT"

G=http://127.0.0.1:$GATEWAY_PORT/
# name|url|header (empty, a header, or @tokens)|expected status|pid of the process measured
rows=(
    "direct to backend|http://127.0.0.2:$BACKEND_PORT/||200|$BACKEND_PID"
    "nginx, no header|http://127.0.0.1:$NGINX_PORT/||200|$NGINX_PID"
    "nginx, x-version-override: v2|http://127.0.0.1:$NGINX_PORT/|x-version-override: v2|200|$NGINX_PID"
    "haproxy, no header|http://127.0.0.1:$HAPROXY_PORT/||200|$HAPROXY_PID"
    "haproxy, x-version-override: v2|http://127.0.0.1:$HAPROXY_PORT/|x-version-override: v2|200|$HAPROXY_PID"
    "pingora alone, no header|http://127.0.0.1:$BARE_PORT/||200|$BARE_PID"
    "gateway, no header|$G||200|$GATEWAY_PID"
    "gateway, x-version-override: v2|$G|x-version-override: v2|200|$GATEWAY_PID"
    "gateway, valid RS256 token (v2)|$G|authorization: Bearer $TOKEN|200|$GATEWAY_PID"
    "gateway, fresh token per request|$G|@tokens|200|$GATEWAY_PID"
    "gateway, invalid token (401)|$G|authorization: Bearer $BAD_TOKEN|401|$GATEWAY_PID"
)

for r in "${rows[@]}"; do
    IFS='|' read -r name url extra want pid <<<"$r"
    check_answer "$url" "$want" "$extra"
done

results="$work/results"
: >"$results"
for round in $(seq "$ROUNDS"); do
    for r in "${rows[@]}"; do
        IFS='|' read -r name url extra want pid <<<"$r"
        read -r hits0 misses0 < <(cache_lookups)
        line=$(measure_cpu "$url" "$extra" "$want" "$pid")
        read -r hits1 misses1 < <(cache_lookups)
        echo "$name|$line|$(rss_mb "$pid")|$((hits1 - hits0))|$((misses1 - misses0))" >>"$results"
        echo "round $round: $name: $(cut -d'|' -f2 <<<"$line") req/s" >&2
    done
done

peaks="peak RSS over the whole run: nginx $(peak_rss_mb "$NGINX_PID") MB, haproxy $(peak_rss_mb "$HAPROXY_PID") MB, pingora alone $(peak_rss_mb "$BARE_PID") MB, gateway $(peak_rss_mb "$GATEWAY_PID") MB"

echo
echo "wrk -t1 -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, medians; proxy under test alone on CPU 0 with 1 worker,"
echo "wrk and the nginx backends on CPU 1; $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, requests, rps, p50, p99, errors, before, after, rss, hits, misses = line.strip().split("|")
    r = rows.setdefault(name, {"rps": [], "p50": [], "p99": [], "err": 0, "cpu": [], "rss": 0.0,
                               "hits": 0, "misses": 0})
    r["hits"] += int(hits); r["misses"] += int(misses)
    r["rps"].append(float(rps)); r["p50"].append(float(p50)); r["p99"].append(float(p99))
    r["err"] += int(errors)
    if int(requests) > 0:
        r["cpu"].append((float(after) - float(before)) / int(requests) * 100000)
    r["rss"] = max(r["rss"], float(rss))
med = statistics.median
base = med(rows["nginx, no header"]["rps"])
base_p99 = med(rows["nginx, no header"]["p99"])
print()
print("| target | req/s | p50 µs | p99 µs | errors | CPU s /100k req | RSS MB | token cache hits | vs nginx | p99 vs nginx |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name, r in rows.items():
    lookups = r["hits"] + r["misses"]
    hits = f"{100 * r['hits'] / lookups:.0f}%" if lookups else "-"
    print(f"| {name} | {med(r['rps']):.0f} | {med(r['p50']):.0f} | {med(r['p99']):.0f} | {r['err']} "
          f"| {med(r['cpu']):.2f} | {r['rss']:.1f} | {hits} | {med(r['rps']) / base:.2f} | {med(r['p99']) / base_p99:.2f} |")
PY
echo
echo "CPU and RSS are those of the process under test (for the direct row, the backend nginx);"
echo "RSS is the largest seen at the end of the row; $peaks."
