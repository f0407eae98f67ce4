#!/usr/bin/env bash
# TLS and HTTP/2 against nginx configured the same way, in one run.
#
#   bench/protocols.sh [ROUNDS] [DURATION] [CONNECTIONS]    (defaults: 3, 10s, 64)
#
# nginx and the gateway each terminate TLS (the same P-256 certificate, TLS 1.3, no session
# resumption on either side) and proxy to the same nginx backends with upstream keep-alive;
# the gateway runs the lab's pipeline (jwt_authn, transformation, four routes). Rows:
# plaintext HTTP/1.1 (the reference), HTTPS with keep-alive, HTTPS with a new connection and
# handshake per request (wrk with `connection: close`), and HTTP/2 over TLS (h2load,
# $STREAMS concurrent streams per connection, default 10). Prints the medians over the rounds
# and the gateway's ratio to nginx on each row.
set -euo pipefail
ROUNDS=${1:-3}
DURATION=${2:-10s}
CONNECTIONS=${3:-64}
source "$(dirname "$0")/lib.sh"
scripts/setup.sh h2load openssl

start_backends
make_cert
start_nginx_proxy
start_nginx_tls
start_gateway_tls

# name|proxy|kind (wrk, wrk-close, h2)|url
rows=(
    "HTTP/1.1 plaintext|nginx|wrk|http://127.0.0.1:$NGINX_PORT/"
    "HTTP/1.1 plaintext|gateway|wrk|http://127.0.0.1:$GATEWAY_PORT/"
    "HTTPS keep-alive|nginx|wrk|https://127.0.0.1:$NGINX_TLS_PORT/"
    "HTTPS keep-alive|gateway|wrk|https://127.0.0.1:$GATEWAY_TLS_PORT/"
    "HTTPS new connection per request|nginx|wrk-close|https://127.0.0.1:$NGINX_TLS_PORT/"
    "HTTPS new connection per request|gateway|wrk-close|https://127.0.0.1:$GATEWAY_TLS_PORT/"
    "HTTP/2 over TLS|nginx|h2|https://127.0.0.1:$NGINX_TLS_PORT/"
    "HTTP/2 over TLS|gateway|h2|https://127.0.0.1:$GATEWAY_TLS_PORT/"
)
pid_of() { if [ "$1" = nginx ]; then echo "$NGINX_TLS_PID"; else echo "$GATEWAY_PID"; fi; }

for r in "${rows[@]}"; do
    IFS='|' read -r name proxy kind url <<<"$r"
    code=$(curl -sk -o /dev/null -w '%{http_code}' "$url" || true)
    if [ "$code" != 200 ]; then echo "$proxy $url answered $code" >&2; exit 1; fi
done
# Plaintext nginx is a process of its own; its CPU is read from it.
NGINX_PLAIN_PID=$NGINX_PID

results="$work/results"
: >"$results"
for round in $(seq "$ROUNDS"); do
    for r in "${rows[@]}"; do
        IFS='|' read -r name proxy kind url <<<"$r"
        pid=$(pid_of "$proxy")
        if [ "$proxy" = nginx ] && [[ $url == http://* ]]; then pid=$NGINX_PLAIN_PID; fi
        before=$(cpu_seconds "$pid")
        case "$kind" in
            wrk) line=$(measure "$url" "" 200) ;;
            wrk-close) line=$(measure "$url" "connection: close" 200) ;;
            h2) line=$(measure_h2 "$url") ;;
        esac
        after=$(cpu_seconds "$pid")
        echo "$name|$proxy|$line|$before|$after|$(rss_mb "$pid")" >>"$results"
        echo "round $round: $name, $proxy: $(cut -d'|' -f2 <<<"$line") req/s" >&2
    done
done

echo
echo "$ROUNDS rounds of $DURATION, $CONNECTIONS connections, medians; proxy alone on CPU 0 with 1 worker,"
echo "load generator and nginx backends on CPU 1; $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "wrk -t1 for HTTP/1.1 rows; h2load -t1 -m${STREAMS:-10} for HTTP/2 (its latency columns are mean and max)"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
order = []
for line in open(sys.argv[1]):
    name, proxy, requests, rps, p50, p99, errors, before, after, rss = line.strip().split("|")
    key = (name, proxy)
    if key not in rows:
        order.append(key)
        rows[key] = {"rps": [], "p50": [], "p99": [], "err": 0, "cpu": [], "rss": 0.0}
    r = rows[key]
    r["rps"].append(float(rps)); r["p50"].append(float(p50)); r["p99"].append(float(p99))
    r["err"] += int(errors)
    if int(requests) > 0:
        r["cpu"].append((float(after) - float(before)) / int(requests) * 100000)
    r["rss"] = max(r["rss"], float(rss))
print("| row | proxy | req/s | p50 (mean) us | p99 (max) us | errors | CPU s/100k | RSS MB | gateway/nginx req/s | gateway/nginx CPU |")
print("|---|---|---|---|---|---|---|---|---|---|")
med = lambda xs: statistics.median(xs) if xs else float("nan")
for name, proxy in order:
    r = rows[(name, proxy)]
    ratio = cpu = ""
    if proxy == "gateway" and (name, "nginx") in rows:
        n = rows[(name, "nginx")]
        ratio = f"{med(r['rps']) / med(n['rps']):.2f}"
        cpu = f"{med(r['cpu']) / med(n['cpu']):.2f}"
    print(f"| {name} | {proxy} | {med(r['rps']):.0f} | {med(r['p50']):.0f} | {med(r['p99']):.0f} | "
          f"{r['err']} | {med(r['cpu']):.2f} | {r['rss']:.1f} | {ratio} | {cpu} |")
PY
