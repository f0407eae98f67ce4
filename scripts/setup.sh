#!/usr/bin/env bash
# Installs what building Switchyard needs beyond the Rust toolchain, when it is missing:
#   cmake  - pingora's zlib-ng (via flate2) builds with it.
# Extra Debian packages can be named as arguments (the benches ask for wrk, nginx-light and
# h2load, from nghttp2-client; the soak for dnsmasq, from dnsmasq-base; the tests for
# prometheus); each is installed when its command is missing.
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
for pkg in "$@"; do
    case "$pkg" in
        nginx-light) command -v nginx >/dev/null 2>&1 || need+=(nginx-light) ;;
        h2load) command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client) ;;
        dnsmasq) command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base) ;;
        *) command -v "$pkg" >/dev/null 2>&1 || need+=("$pkg") ;;
    esac
done

if ((${#need[@]})); then
    echo "setup: installing ${need[*]}" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
