#!/usr/bin/env bash
# Memory per idle keep-alive client connection: the gateway (the lab's pipeline, one worker),
# pingora alone (bench/bare_proxy.rs) and nginx (the same routing, one worker) each get N
# client connections that send one
# request, read the answer and then stay open doing nothing; the proxy's RSS before and after
# gives the bytes each idle connection holds.
#
#   bench/idle.sh [N=10000]
#
# The clients are one Python process on CPU 1 (asyncio). Raises the open-file limit to what
# N needs (at most the hard limit).
set -euo pipefail
N=${1:-10000}
source "$(dirname "$0")/lib.sh"
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < N + 100)); then
    echo "idle: the open-file limit $(ulimit -n) is below $N connections" >&2
    exit 1
fi

start_backends
# nginx as in the other benches, with room for N clients and no idle timeout in the way.
NGINX_PORT=$(port)
d="$work/nginx-proxy"
mkdir -p "$d"
nginx_proxy_conf "$d" "        listen 127.0.0.1:$NGINX_PORT backlog=4096; keepalive_timeout 600s;" |
    sed "s/worker_connections 4096;/worker_connections $((N + 1000));/" >"$d/nginx.conf"
taskset -c 0 nginx -c "$d/nginx.conf" >"$work/nginx-proxy.log" 2>&1 &
NGINX_PID=$!
pids+=("$NGINX_PID")
wait_port 127.0.0.1 "$NGINX_PORT"

GATEWAY_LIMITS="{ max_connections: $((N + 1000)), idle_timeout: 600s }" start_gateway 1 0
start_bare

# Holds N connections to $1 after one request each, writes how many to $2, and waits to be
# killed.
hold() {
    taskset -c 1 python3 - "$1" "$N" "$2" <<'PY' &
import asyncio, resource, sys
port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
REQUEST = b"GET / HTTP/1.1\r\nhost: bench\r\n\r\n"

async def one(held, gate):
    async with gate:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"answer: {head[:40]!r}")
        held.append(writer)

async def main():
    held, gate = [], asyncio.Semaphore(200)
    await asyncio.gather(*(one(held, gate) for _ in range(n)))
    open(ready, "w").write(f"{len(held)}\n")
    await asyncio.sleep(3600)

asyncio.run(main())
PY
}

measure_idle() { # $1: name, $2: port, $3: pid
    local ready="$work/ready-$1"
    # One request first, so lazily built state is in the baseline.
    curl -s -o /dev/null "http://127.0.0.1:$2/"
    sleep 1
    local before after
    before=$(awk '/^VmRSS/ { print $2 }' "/proc/$3/status")
    hold "$2" "$ready"
    local holder=$!
    for _ in $(seq 600); do
        [ -s "$ready" ] && break
        sleep 0.2
    done
    [ -s "$ready" ] || { echo "$1: the clients did not connect" >&2; exit 1; }
    sleep 2
    after=$(awk '/^VmRSS/ { print $2 }' "/proc/$3/status")
    kill "$holder"
    wait "$holder" 2>/dev/null || true
    echo "| $1 | $N | $((before / 1024)) | $((after / 1024)) | $(((after - before) * 1024 / N)) |"
}

echo "| proxy | idle connections | RSS before (MB) | RSS with them (MB) | bytes per connection |"
echo "|---|---|---|---|---|"
measure_idle nginx "$NGINX_PORT" "$NGINX_PID"
measure_idle "pingora alone" "$BARE_PORT" "$BARE_PID"
measure_idle gateway "$GATEWAY_PORT" "$GATEWAY_PID"
