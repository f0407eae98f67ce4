#!/usr/bin/env bash
# Load benchmark: requests/s and latency direct to a backend, through nginx as a reverse proxy
# and through the gateway, in one run, alternating targets over several rounds; prints medians
# and each target's ratio to the direct baseline and to nginx.
#
#   bench/load.sh [ROUNDS] [DURATION] [CONNECTIONS]      (defaults: 3 rounds, 10s, 64)
#
# Layout on a 2-core machine: the proxy under test (the gateway with 1 worker thread, or nginx
# with 1 worker and upstream keepalive) on CPU 0; the backends (nginx, 1 worker, a fixed small
# JSON answer) and wrk on CPU 1. Both proxies run all the time; only one is loaded at once. Absolute figures depend on the
# machine; the ratio against the direct baseline of the same run is the figure to quote.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
DURATION=${2:-10s}
CONNECTIONS=${3:-64}

scripts/setup.sh wrk nginx-light
# SWITCHYARD_BIN benchmarks another build of the gateway (a different profile, say).
if [ -z "${SWITCHYARD_BIN:-}" ]; then
    cargo build --release --quiet --bin switchyard
fi
BIN=${SWITCHYARD_BIN:-$PWD/target/release/switchyard}

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BACKEND_PORT=$(port)
GATEWAY_PORT=$(port)
NGINX_PROXY_PORT=$(port)

# Two versioned backends, nginx answering a fixed JSON body as the echo app would.
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server { listen 127.0.0.2:$BACKEND_PORT; default_type application/json; return 200 '{"servedBy":"latest"}'; }
    server { listen 127.0.0.3:$BACKEND_PORT; default_type application/json; return 200 '{"servedBy":"v2"}'; }
}
NGINX
taskset -c 1 nginx -c "$work/nginx/nginx.conf" &
pids+=($!)

# nginx as the reference reverse proxy: the same header routing, upstream keepalive.
mkdir -p "$work/nginx-proxy"
cat >"$work/nginx-proxy/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx-proxy/nginx.pid;
error_log $work/nginx-proxy/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx-proxy/body;
    proxy_temp_path $work/nginx-proxy/proxy;
    fastcgi_temp_path $work/nginx-proxy/fastcgi;
    uwsgi_temp_path $work/nginx-proxy/uwsgi;
    scgi_temp_path $work/nginx-proxy/scgi;
    upstream app_latest { server 127.0.0.2:$BACKEND_PORT; keepalive 128; }
    upstream app_v2 { server 127.0.0.3:$BACKEND_PORT; keepalive 128; }
    map \$http_x_version_override \$version_backend { v2 app_v2; default app_latest; }
    server {
        listen 127.0.0.1:$NGINX_PROXY_PORT;
        location / {
            proxy_pass http://\$version_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
NGINX
taskset -c 0 nginx -c "$work/nginx-proxy/nginx.conf" &
pids+=($!)

cat >"$work/gateway.yaml" <<YAML
server: { threads: 1 }
admin: { address: 127.0.0.1:0 }
backends:
  - { name: app-latest, static: { host: 127.0.0.2, port: $BACKEND_PORT } }
  - { name: app-v2, static: { host: 127.0.0.3, port: $BACKEND_PORT } }
listeners:
  - name: bench
    address: 127.0.0.1:$GATEWAY_PORT
    filters:
      pre_routing:
        - name: jwt_authn
          config:
            mode: optional
            providers:
              - name: lab
                issuer: versioned-routing-lab
                audiences: [public-api]
                jwks: { file: $PWD/conf/demo/jwks.json }
        - name: transformation
          config:
            request:
              set: [{ name: x-tenant-version, value: jwt.version }]
    routes:
      - name: override-v2
        matches: [{ headers: [{ name: x-version-override, value: v2 }] }]
        backend: app-v2
      - name: override-latest
        matches: [{ headers: [{ name: x-version-override, value: latest }] }]
        backend: app-latest
      - name: tenant-v2
        matches: [{ headers: [{ name: x-tenant-version, value: v2 }] }]
        backend: app-v2
      - name: default
        backend: app-latest
YAML
RUST_LOG=warn taskset -c 0 "$BIN" run --config "$work/gateway.yaml" >"$work/gateway.log" 2>&1 &
pids+=($!)

wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on $1:$2" >&2; cat "$work/gateway.log" >&2; exit 1
}
wait_port 127.0.0.2 "$BACKEND_PORT"
wait_port 127.0.0.1 "$GATEWAY_PORT"
wait_port 127.0.0.1 "$NGINX_PROXY_PORT"

# The lab's pipeline with a valid token (claim version=v2) and with a forged one.
TOKEN=$("$BIN" token --key conf/demo/jwt-demo-key.pem --kid versioned-routing-key \
    --iss versioned-routing-lab --aud public-api --ttl 1h --claim version=v2)
BAD_TOKEN="${TOKEN%.*}.$("$BIN" token --key conf/demo/jwt-demo-key.pem --kid versioned-routing-key \
    --iss versioned-routing-lab --aud public-api --ttl 1h --claim version=latest | sed 's/.*\.//')"

# name|url|request header (or empty)|expected status
targets=(
    "direct to backend|http://127.0.0.2:$BACKEND_PORT/||200"
    "nginx proxy, no header|http://127.0.0.1:$NGINX_PROXY_PORT/||200"
    "nginx proxy, x-version-override: v2|http://127.0.0.1:$NGINX_PROXY_PORT/|x-version-override: v2|200"
    "gateway, no header|http://127.0.0.1:$GATEWAY_PORT/||200"
    "gateway, x-version-override: v2|http://127.0.0.1:$GATEWAY_PORT/|x-version-override: v2|200"
    "gateway, valid RS256 token (v2)|http://127.0.0.1:$GATEWAY_PORT/|authorization: Bearer $TOKEN|200"
    "gateway, forged token (401)|http://127.0.0.1:$GATEWAY_PORT/|authorization: Bearer $BAD_TOKEN|401"
)

# Converts wrk's latency (e.g. 512.00us, 1.20ms, 1.01s) to microseconds.
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n }'; }

results="$work/results"
: >"$results"
# Sanity: each target answers as expected before it is measured.
for t in "${targets[@]}"; do
    IFS='|' read -r name url extra want <<<"$t"
    if [ -n "$extra" ]; then
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "$extra" "$url" || true)
    else
        code=$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)
    fi
    if [ "$code" != "$want" ]; then echo "$name: $url answered $code, expected $want" >&2; exit 1; fi
done

for round in $(seq "$ROUNDS"); do
    for t in "${targets[@]}"; do
        IFS='|' read -r name url extra want <<<"$t"
        if [ -n "$extra" ]; then
            out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -H "$extra" "$url")
        else
            out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$url")
        fi
        rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
        p50=$(to_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
        p99=$(to_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
        non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out"); non2xx=${non2xx:-0}
        sock=$(awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' <<<"$out"); sock=${sock:-0}
        # Non-2xx answers are errors except where a 401 is the point of the row.
        if [ "$want" != 200 ]; then non2xx=0; fi
        echo "$name|$rps|$p50|$p99|$((non2xx + sock))" >>"$results"
        echo "round $round: $name: $rps req/s" >&2
    done
done

echo
echo "wrk -t1 -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, medians (proxy under test on CPU 0; wrk + nginx backends on CPU 1)"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
order = []
for line in open(sys.argv[1]):
    name, rps, p50, p99, errs = line.rstrip("\n").split("|")
    if name not in rows:
        rows[name] = []
        order.append(name)
    rows[name].append((float(rps), float(p50), float(p99), int(errs)))
base = statistics.median(r[0] for r in rows[order[0]])
nginx = statistics.median(r[0] for r in rows[order[1]])
print(f"{'target':<36} {'req/s':>9} {'p50 us':>8} {'p99 us':>8} {'errors':>7} {'vs direct':>9} {'vs nginx':>8}")
for name in order:
    rs = rows[name]
    rps = statistics.median(r[0] for r in rs)
    p50 = statistics.median(r[1] for r in rs)
    p99 = statistics.median(r[2] for r in rs)
    errs = sum(r[3] for r in rs)
    print(f"{name:<36} {rps:>9.0f} {p50:>8.0f} {p99:>8.0f} {errs:>7} {rps / base:>8.2f}x {rps / nginx:>7.2f}x")
PY
