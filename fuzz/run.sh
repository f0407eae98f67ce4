#!/usr/bin/env bash
# Runs the fuzz targets with cargo-fuzz (libFuzzer, AddressSanitizer) on a nightly toolchain.
# Not part of CI: a useful run takes minutes per target.
#
#   fuzz/run.sh [SECONDS=600] [TARGET...]     (targets: config token router cel_header)
#
# Each target starts from fuzz/seeds/<target> and keeps what it learns in
# fuzz/corpus/<target>; a crash is saved under fuzz/artifacts/<target>/ and stops the run.
# With JOBS=N, N targets run at once. Prints each target's last libFuzzer status line:
# executions (#N), coverage (cov: edges, ft: features), corpus size and speed.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${1:-600}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then targets=(config token router cel_header); fi
JOBS=${JOBS:-1}

../scripts/setup.sh
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: needs a nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz@0.13.2

cargo +nightly fuzz build -O

run() {
    local t=$1 log="logs/$1.log"
    mkdir -p "corpus/$t" logs
    local status=0 last
    cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    echo "$t: exit $status: $last"
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$log" | sed "s/^/$t: /"
    return $status
}

failed=0
running=0
for t in "${targets[@]}"; do
    run "$t" &
    running=$((running + 1))
    if ((running >= JOBS)); then
        wait -n || failed=1
        running=$((running - 1))
    fi
done
while ((running > 0)); do
    wait -n || failed=1
    running=$((running - 1))
done
exit $failed
