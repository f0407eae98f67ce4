# Shared by the benchmark scripts: the backends, the proxies, the load generator and the
# readings of a process's CPU time and peak memory. Sourced, not run.
#
# Layout on a 2-core machine: the proxy under test on CPU 0; the backends (nginx, 1 worker,
# a fixed small JSON answer) and wrk on CPU 1. Every proxy runs all the time with one worker;
# only one is loaded at once.

cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh wrk nginx-light haproxy curl
if [ -z "${SWITCHYARD_BIN:-}" ]; then
    cargo build --release --quiet --bin switchyard --example bare_proxy
fi
BIN=${SWITCHYARD_BIN:-$PWD/target/release/switchyard}
BARE=${BARE_BIN:-$PWD/target/release/examples/bare_proxy}

work=$(mktemp -d)
pids=()
cleanup() {
    # SIGINT: a fast stop for every proxy here (pingora's SIGTERM waits out a grace period).
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    # HAProxy in the foreground ignores SIGINT.
    sleep 0.5
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
    for _ in $(seq 150); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on $1:$2" >&2
    tail -n 20 "$work"/*.log >&2 || true
    exit 1
}

# nginx.conf boilerplate for a single-process nginx rooted in $1.
nginx_head() {
    cat <<NGINX
worker_processes 1;
master_process off;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections ${NGINX_CONNECTIONS:-4096}; }
NGINX
}

nginx_temp_paths() {
    for t in client_body proxy fastcgi uwsgi scgi; do echo "    ${t}_temp_path $1/$t;"; done
}

# Two versioned backends: nginx answering a fixed small JSON body.
start_backends() {
    BACKEND_PORT=$(port)
    local d="$work/backends"
    mkdir -p "$d/www/size"
    : >"$d/www/size/0"
    for kib in 1 16 256; do head -c $((kib * 1024)) /dev/zero | tr '\0' x >"$d/www/size/${kib}k"; done
    {
        nginx_head "$d"
        echo "http {"
        echo "    access_log off; keepalive_requests 1000000;"
        nginx_temp_paths "$d"
        # /size/{0,1k,16k,256k}: bodies of those sizes, for bench/matrix.sh.
        for b in latest:127.0.0.2 v2:127.0.0.3; do
            echo "    server { listen ${b#*:}:$BACKEND_PORT; default_type application/json;"
            echo "        location / { return 200 '{\"servedBy\":\"${b%%:*}\"}'; }"
            echo "        location /size/ { root $d/www; default_type application/octet-stream; } }"
        done
        echo "}"
    } >"$d/nginx.conf"
    taskset -c 1 nginx -c "$d/nginx.conf" >"$work/backends.log" 2>&1 &
    BACKEND_PID=$!
    pids+=("$BACKEND_PID")
    wait_port 127.0.0.2 "$BACKEND_PORT"
}

# nginx.conf of a reverse proxy rooted in $1: routes by x-version-override, upstream
# keepalive, X-Forwarded-For. $2: the server's `listen` line and anything else it needs.
nginx_proxy_conf() {
    nginx_head "$1"
    cat <<NGINX
http {
    access_log off;
    keepalive_requests 1000000;
$(nginx_temp_paths "$1")
    upstream app_latest { server 127.0.0.2:$BACKEND_PORT; keepalive 128; }
    upstream app_v2 { server 127.0.0.3:$BACKEND_PORT; keepalive 128; }
    map \$http_x_version_override \$version_backend { v2 app_v2; default app_latest; }
    server {
$2
        location / {
            proxy_pass http://\$version_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
NGINX
}

# nginx as the reverse proxy of nginx_proxy_conf, plaintext. Sets NGINX_PORT and NGINX_PID.
start_nginx_proxy() {
    NGINX_PORT=$(port)
    local d="$work/nginx-proxy"
    mkdir -p "$d"
    nginx_proxy_conf "$d" "        listen 127.0.0.1:$NGINX_PORT;" >"$d/nginx.conf"
    taskset -c 0 nginx -c "$d/nginx.conf" >"$work/nginx-proxy.log" 2>&1 &
    NGINX_PID=$!
    pids+=("$NGINX_PID")
    wait_port 127.0.0.1 "$NGINX_PORT"
}

# HAProxy, one thread: the same routing, connection reuse to the backends, X-Forwarded-For.
start_haproxy() {
    HAPROXY_PORT=$(port)
    cat >"$work/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    option forwardfor
    http-reuse always
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend public
    bind 127.0.0.1:$HAPROXY_PORT
    use_backend app_v2 if { req.hdr(x-version-override) -m str v2 }
    default_backend app_latest
backend app_latest
    server latest 127.0.0.2:$BACKEND_PORT
backend app_v2
    server v2 127.0.0.3:$BACKEND_PORT
CFG
    taskset -c 0 haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
    HAPROXY_PID=$!
    pids+=("$HAPROXY_PID")
    wait_port 127.0.0.1 "$HAPROXY_PORT"
}

# pingora alone, routing by the same header: the floor under the gateway.
start_bare() {
    BARE_PORT=$(port)
    taskset -c 0 "$BARE" "127.0.0.1:$BARE_PORT" "127.0.0.2:$BACKEND_PORT" \
        "127.0.0.3:$BACKEND_PORT" 1 >"$work/bare.log" 2>&1 &
    BARE_PID=$!
    pids+=("$BARE_PID")
    wait_port 127.0.0.1 "$BARE_PORT"
}

# The lab's pre_routing filters as listener YAML: jwt_authn trusting the demo key (optional
# mode), then transformation copying the `version` claim into x-tenant-version.
lab_filters_yaml() {
    cat <<YAML
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
YAML
}

# The lab's four routes as listener YAML, over backends app-latest and app-v2.
lab_routes_yaml() {
    cat <<YAML
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
}

# Runs the gateway binary $3 on config $1, on CPUs $2, logging beside the config, and waits
# for its listener on $GATEWAY_PORT. Sets GATEWAY_PID.
launch_gateway() {
    RUST_LOG=warn taskset -c "$2" "$3" run --config "$1" >"${1%.yaml}.log" 2>&1 &
    GATEWAY_PID=$!
    pids+=("$GATEWAY_PID")
    wait_port 127.0.0.1 "$GATEWAY_PORT"
}

# The gateway on the lab's pipeline (jwt_authn, transformation, the lab's four routes), with
# its access log off like the other proxies'. $1: worker threads; $2: CPUs it may use;
# $3: the binary (default $BIN); $4: more listeners (YAML list items); $GATEWAY_POST_ROUTING:
# the listener's post_routing filters, if any (YAML, indented under `filters:`);
# $GATEWAY_LIMITS: the listener's `limits` (a YAML flow map); $GATEWAY_SERVER: more `server`
# settings (YAML flow-map entries, e.g. `upstream_keepalive_pool_size: 1024`). Sets GATEWAY_PORT, GATEWAY_PID
# and GATEWAY_ADMIN.
start_gateway() {
    GATEWAY_PORT=$(port)
    GATEWAY_ADMIN=127.0.0.1:$(port)
    local bin=${3:-$BIN} config="$work/gateway-$GATEWAY_PORT.yaml"
    cat >"$config" <<YAML
server: { threads: $1${GATEWAY_SERVER:+, $GATEWAY_SERVER} }
admin: { address: $GATEWAY_ADMIN }
access_log: { enabled: false }
backends:
  - { name: app-latest, static: { host: 127.0.0.2, port: $BACKEND_PORT } }
  - { name: app-v2, static: { host: 127.0.0.3, port: $BACKEND_PORT } }
listeners:
  - name: bench
    address: 127.0.0.1:$GATEWAY_PORT
    limits: ${GATEWAY_LIMITS:-{\}}
$(lab_filters_yaml)
${GATEWAY_POST_ROUTING:-}
$(lab_routes_yaml)
${4:-}
YAML
    launch_gateway "$config" "$2" "$bin"
}

# Like start_gateway, on the shipped Gateway API manifests (conf/gateway-api/) instead of the
# native config: the same lab, through the other front-end. Its ports are rewritten to this
# run's.
start_gateway_api() {
    GATEWAY_PORT=$(port)
    GATEWAY_ADMIN=127.0.0.1:$(port)
    local bin=${3:-$BIN} d="$work/gateway-api-$GATEWAY_PORT"
    mkdir -p "$d/manifests"
    for f in conf/gateway-api/*.yaml; do
        sed -e "s/port: 8080$/port: $GATEWAY_PORT/" -e "s/port: 30080$/port: $BACKEND_PORT/" \
            "$f" >"$d/manifests/$(basename "$f")"
    done
    cat >"$d/config.yaml" <<YAML
server: { threads: $1${GATEWAY_SERVER:+, $GATEWAY_SERVER} }
admin: { address: $GATEWAY_ADMIN }
access_log: { enabled: false }
gateway_api:
  manifests: [manifests/]
  gateway_class: enterprise-agentgateway
  gateway_addresses: { agentgateway-system/agentgateway-proxy: 127.0.0.1 }
YAML
    launch_gateway "$d/config.yaml" "$2" "$bin"
}

# Tokens for the lab: one valid (claim version=v2), one forged (a valid token's signature on
# another payload), and a file of $1 distinct valid ones for the fresh-token rows.
make_tokens() {
    local common=(--key conf/demo/jwt-demo-key.pem --kid versioned-routing-key
        --iss versioned-routing-lab --aud public-api --ttl 6h)
    TOKEN=$("$BIN" token "${common[@]}" --claim version=v2)
    BAD_TOKEN="${TOKEN%.*}.$("$BIN" token "${common[@]}" --claim version=latest | sed 's/.*\.//')"
    TOKENS_FILE="$work/tokens.txt"
    "$BIN" token "${common[@]}" --claim version=v2 --count "$1" >"$TOKENS_FILE"
}

# CPU seconds (user + system) a process has used so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

# Peak resident memory of a process so far, in MB.
peak_rss_mb() {
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# Resident memory of a process now, in MB.
rss_mb() {
    awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# The gateway's token cache lookups so far: "hits misses" (stale ones count as misses).
cache_lookups() {
    curl -s "http://$GATEWAY_ADMIN/metrics" | awk '
        /^switchyard_jwt_authn_token_cache_total/ { if ($1 ~ /"hit"/) h += $2; else m += $2 }
        END { print h + 0, m + 0 }'
}

# Converts wrk's latency (512.00us, 1.20ms, 1.01s) to microseconds.
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n }'; }

# Checks that a URL answers as expected before it is measured. $3: a header or "@tokens".
check_answer() {
    local url=$1 want=$2 extra=$3 code
    case "$extra" in
        "") code=$(curl -s -o /dev/null -w '%{http_code}' "$url" || true) ;;
        @tokens) code=$(curl -s -o /dev/null -w '%{http_code}' \
            -H "authorization: Bearer $(head -n1 "$TOKENS_FILE")" "$url" || true) ;;
        *) code=$(curl -s -o /dev/null -w '%{http_code}' -H "$extra" "$url" || true) ;;
    esac
    if [ "$code" != "$want" ]; then
        echo "$url with '${extra:0:40}' answered $code, expected $want" >&2
        exit 1
    fi
}

# Runs wrk against $1 with header $2 (empty, a header, or @tokens for one token of
# $TOKENS_FILE per request) and prints "requests|req/s|p50 us|p99 us|errors", where errors
# are socket errors plus answers other than $3.
measure() {
    local url=$1 extra=$2 want=$3 out args=()
    args=(-t1 -c"$CONNECTIONS" -d"$DURATION" --latency)
    case "$extra" in
        "") ;;
        @tokens) args+=(-s bench/fresh_tokens.lua) ;;
        *) args+=(-H "$extra") ;;
    esac
    out=$(TOKENS_FILE=${TOKENS_FILE:-} taskset -c 1 wrk "${args[@]}" "$url")
    local requests rps p50 p99 non2xx sock
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    p50=$(to_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
    non2xx=${non2xx:-0}
    sock=$(awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' <<<"$out")
    sock=${sock:-0}
    # Non-2xx answers are errors except where a 401 is the point of the row.
    if [ "$want" != 200 ]; then non2xx=0; fi
    echo "$requests|$rps|$p50|$p99|$((non2xx + sock))"
}

# `measure` $1 $2 $3 on process $4, followed by the CPU seconds it had used before and after:
# "requests|req/s|p50 us|p99 us|errors|cpu before|cpu after".
measure_cpu() {
    local before line after
    before=$(cpu_seconds "$4")
    line=$(measure "$1" "$2" "$3")
    after=$(cpu_seconds "$4")
    echo "$line|$before|$after"
}

# A self-signed P-256 certificate for bench.test, in $work/cert.pem and $work/key.pem.
make_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
        -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
}

# nginx as the same reverse proxy as start_nginx_proxy, on TLS with HTTP/2 and HTTP/1.1 by
# ALPN, with make_cert's certificate (session tickets and cache off, as the gateway has
# none). Sets NGINX_TLS_PORT and NGINX_TLS_PID.
start_nginx_tls() {
    NGINX_TLS_PORT=$(port)
    local d="$work/nginx-tls"
    mkdir -p "$d"
    nginx_proxy_conf "$d" "        listen 127.0.0.1:$NGINX_TLS_PORT ssl http2;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets off;
        ssl_session_cache off;" >"$d/nginx.conf"
    taskset -c 0 nginx -c "$d/nginx.conf" >"$work/nginx-tls.log" 2>&1 &
    NGINX_TLS_PID=$!
    pids+=("$NGINX_TLS_PID")
    wait_port 127.0.0.1 "$NGINX_TLS_PORT"
}

# The gateway on the lab's pipeline with a TLS listener (make_cert's certificate, HTTP/2 and
# HTTP/1.1 by ALPN) beside its plaintext one. Sets what start_gateway sets, and
# GATEWAY_TLS_PORT.
start_gateway_tls() {
    GATEWAY_TLS_PORT=$(port)
    start_gateway 1 0 "$BIN" "  - name: tls
    address: 127.0.0.1:$GATEWAY_TLS_PORT
    tls:
      certificates: [{ cert: $work/cert.pem, key: $work/key.pem }]
$(lab_filters_yaml)
$(lab_routes_yaml)"
    wait_port 127.0.0.1 "$GATEWAY_TLS_PORT"
}

# Runs h2load against $1 (HTTP/2 over TLS, $CONNECTIONS connections, $STREAMS streams each)
# and prints "requests|req/s|p50 us|p99 us|errors" as `measure` does (h2load gives no
# percentiles: mean and max request time instead).
measure_h2() {
    local out requests rps mean max failed
    out=$(taskset -c 1 h2load -t1 -c"$CONNECTIONS" -m"${STREAMS:-10}" -D"${DURATION%s}" "$1")
    rps=$(awk '/^finished in/ { gsub(",", ""); print $4 }' <<<"$out")
    requests=$(awk '/^requests:/ { print $8 }' <<<"$out")
    failed=$(awk '/^requests:/ { print $10 + $12 }' <<<"$out")
    mean=$(to_us "$(awk '/^time for request:/ { print $6 }' <<<"$out")")
    max=$(to_us "$(awk '/^time for request:/ { print $5 }' <<<"$out")")
    echo "$requests|$rps|$mean|$max|$failed"
}
