#!/usr/bin/env bash
# Soak: steady load with tokens for a long time, while the config reloads, backends restart
# and DNS records change, to show the gateway neither leaks nor loses its way.
#
#   bench/soak.sh [DURATION_S=600] [RELOAD_EVERY_S=30] [RESTART_EVERY_S=120] [CONN=32] [DNS_EVERY_S=15]
#
# Four nginx backends: app-latest has two hosts (127.0.0.2 and 127.0.0.4); app-v2 is the name
# v2.soak.test, served by dnsmasq on loopback with a 1 s TTL, whose records rotate every
# DNS_EVERY_S through 127.0.0.3, 127.0.0.3 + 127.0.0.6, 127.0.0.6, 127.0.0.3 + 127.0.0.6 (an
# nginx on each); and a slow one (the echo app on 127.0.0.5, answering /slow after 300 ms, on a
# route with `timeouts: { request: 2s }`). wrk (bench/soak.lua) sends a mix: fresh valid
# tokens (v2), no token, x-version-override: v2, a forged token (401 expected), and the slow
# route, whose waits must not hold up the rest. Every RELOAD_EVERY_S the config
# is rewritten (the listener's idle timeout flips) and the gateway gets SIGHUP; every RESTART_EVERY_S a backend
# is stopped for 3 s and started again, alternating between one host of app-latest (its other
# host takes the traffic) and app-v2's 127.0.0.3 (its requests get 502/503 meanwhile when the
# name resolves to it alone). A record change itself fails no request.
#
# Prints requests, answers by status, socket errors, p50/p99, reloads, and the gateway's RSS
# every 30 s from start to end.
set -euo pipefail
DURATION=${1:-600}
RELOAD_EVERY=${2:-30}
RESTART_EVERY=${3:-120}
CONNECTIONS=${4:-32}
DNS_EVERY=${5:-15}
source "$(dirname "$0")/lib.sh"
scripts/setup.sh dnsmasq

BACKEND_PORT=$(port)
backend() { # $1: name, $2: address
    local d="$work/backend-$1"
    mkdir -p "$d"
    {
        nginx_head "$d"
        echo "http {"
        echo "    access_log off; keepalive_requests 1000000;"
        nginx_temp_paths "$d"
        echo "    server { listen $2:$BACKEND_PORT; default_type application/json; return 200 '{\"servedBy\":\"$1\"}'; }"
        echo "}"
    } >"$d/nginx.conf"
    taskset -c 1 nginx -c "$d/nginx.conf" >>"$work/backend-$1.log" 2>&1 &
    echo $!
}
declare -A backend_pid backend_addr=([latest-a]=127.0.0.2 [latest-b]=127.0.0.4 [v2]=127.0.0.3 [v2-b]=127.0.0.6)
for b in latest-a latest-b v2 v2-b; do
    backend_pid[$b]=$(backend "$b" "${backend_addr[$b]}")
    pids+=("${backend_pid[$b]}")
    wait_port "${backend_addr[$b]}" "$BACKEND_PORT"
done

SLOW_PORT=$(port)
RUST_LOG=warn taskset -c 1 "$BIN" echo --listen "127.0.0.5:$SLOW_PORT" --name slow >"$work/slow.log" 2>&1 &
pids+=($!)
wait_port 127.0.0.5 "$SLOW_PORT"

# app-v2's name: dnsmasq answering from a hosts file, re-read on SIGHUP.
DNS_PORT=$(port)
dns_records=("127.0.0.3" "127.0.0.3 127.0.0.6" "127.0.0.6" "127.0.0.3 127.0.0.6")
write_records() { # $1: the addresses of v2.soak.test
    for a in $1; do echo "$a v2.soak.test"; done >"$work/dns.hosts"
}
write_records "${dns_records[0]}"
dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root --pid-file= \
    --no-resolv --no-hosts --addn-hosts="$work/dns.hosts" --local-ttl=1 \
    --listen-address=127.0.0.1 --bind-interfaces --port="$DNS_PORT" \
    --log-facility="$work/dnsmasq.log" &
DNS_PID=$!
pids+=("$DNS_PID")
# dnsmasq logs the hosts file it has read once it answers.
for _ in $(seq 50); do
    grep -q "dns.hosts" "$work/dnsmasq.log" 2>/dev/null && break
    sleep 0.1
done

GATEWAY_PORT=$(port)
GATEWAY_ADMIN=127.0.0.1:$(port)
config="$work/soak.yaml"
write_config() { # $1: the listener's idle timeout (a change that keeps every backend as it is)
    cat >"$config.tmp" <<YAML
server: { threads: 1, dns: { servers: ['127.0.0.1:$DNS_PORT'], min_refresh: 1s, max_refresh: 10s } }
admin: { address: $GATEWAY_ADMIN }
access_log: { enabled: false }
backends:
  - name: app-latest
    static:
      hosts:
        - { host: 127.0.0.2, port: $BACKEND_PORT }
        - { host: 127.0.0.4, port: $BACKEND_PORT }
    outlier_detection: { consecutive_failures: 3, ejection_time: 5s }
    health_check: { path: /healthz, interval: 1s, timeout: 500ms }
  - name: app-v2
    static: { host: v2.soak.test, port: $BACKEND_PORT }
  - name: slow
    static: { host: 127.0.0.5, port: $SLOW_PORT }
listeners:
  - name: soak
    address: 127.0.0.1:$GATEWAY_PORT
    limits: { idle_timeout: $1 }
$(lab_filters_yaml)
$(lab_routes_yaml | sed '/^    routes:$/a\      - { name: slow, matches: [{ path: { value: /slow } }], backend: slow, timeouts: { request: 2s } }')
YAML
    mv "$config.tmp" "$config"
}
write_config 60s
RUST_LOG=warn taskset -c 0 "$BIN" run --config "$config" >"$work/gateway.log" 2>&1 &
GATEWAY_PID=$!
pids+=("$GATEWAY_PID")
wait_port 127.0.0.1 "$GATEWAY_PORT"

make_tokens 50000
export TOKENS_FILE BAD_TOKEN
url="http://127.0.0.1:$GATEWAY_PORT/"
check_answer "$url" 200 ""
check_answer "$url" 200 @tokens

echo "soak: ${DURATION}s, $CONNECTIONS connections, reload every ${RELOAD_EVERY}s, backend restart every ${RESTART_EVERY}s, DNS change every ${DNS_EVERY}s"
taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/soak.lua "$url" >"$work/wrk.out" 2>&1 &
wrk_pid=$!

start=$(date +%s)
rss_series=()
sampled=-1
reloads=0
restarts=()
flip=0
dns_changes=0
next_restart=v2
while kill -0 "$wrk_pid" 2>/dev/null; do
    sleep 1
    t=$(($(date +%s) - start))
    if ((t / 30 != sampled)); then
        sampled=$((t / 30))
        rss_series+=("${t}s:$(rss_mb "$GATEWAY_PID")")
    fi
    if ((t > 0 && t % RELOAD_EVERY == 0)); then
        flip=$((1 - flip))
        write_config "$((60 + flip))s"
        kill -HUP "$GATEWAY_PID"
        reloads=$((reloads + 1))
    fi
    if ((t > 0 && t % DNS_EVERY == 0)); then
        dns_changes=$((dns_changes + 1))
        write_records "${dns_records[$((dns_changes % ${#dns_records[@]}))]}"
        kill -HUP "$DNS_PID"
    fi
    if ((t > 0 && t % RESTART_EVERY == 0 && t + 10 < DURATION)); then
        b=$next_restart
        kill "${backend_pid[$b]}"
        wait "${backend_pid[$b]}" 2>/dev/null || true
        sleep 3
        backend_pid[$b]=$(backend "$b" "${backend_addr[$b]}")
        pids+=("${backend_pid[$b]}")
        restarts+=("${t}s:$b")
        if [ "$b" = v2 ]; then next_restart=latest-b; else next_restart=v2; fi
    fi
done
wait "$wrk_pid" || true
rss_series+=("end:$(rss_mb "$GATEWAY_PID")")

out=$(cat "$work/wrk.out")
metrics=$(curl -s "http://$GATEWAY_ADMIN/metrics")
echo
echo "requests:     $(awk '/requests in/ { print $1 }' <<<"$out") in ${DURATION}s ($(awk '/^Requests\/sec:/ { print $2 }' <<<"$out") req/s)"
echo "latency:      p50 $(awk '$1 == "50%" { print $2 }' <<<"$out"), p99 $(awk '$1 == "99%" { print $2 }' <<<"$out")"
echo "answers:      $(awk '/^status / { printf "%s: %s  ", $2, $3 }' <<<"$out")"
echo "socket errs:  $(awk '/^socket / { print }' <<<"$out")"
echo "reloads:      $reloads sent; gateway counted $(awk '/^switchyard_config_reloads_total/ { printf "%s=%s ", $1, $2 }' <<<"$metrics")"
echo "restarts:     ${restarts[*]:-none}"
echo "dns:          $dns_changes record changes; $(awk '/^switchyard_(dns_resolutions_total|backend_addresses)\{backend="app-v2"/ { printf "%s=%s ", $1, $2 }' <<<"$metrics")"
echo "upstream:     $(awk '/^switchyard_upstream_(failures|retries)_total/ { printf "%s=%s ", $1, $2 }' <<<"$metrics")"
echo "ejections:    $(awk '/^switchyard_backend_host_ejections_total/ { printf "%s=%s ", $1, $2 }' <<<"$metrics")"
echo "gateway RSS:  ${rss_series[*]} (MB); peak $(peak_rss_mb "$GATEWAY_PID") MB"
