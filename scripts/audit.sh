#!/usr/bin/env bash
# The dependency audit, by cargo-deny (deny.toml): licenses, banned crates, sources, and the
# RustSec advisory database. Installs cargo-deny when it is missing.
#
# The advisory database lives on github.com. Where that cannot be reached, the advisory check
# is reported as NOT RUN (loudly) and the other checks still decide; set
# AUDIT_REQUIRE_ADVISORIES=1 to fail instead. Where it can be reached, any advisory fails.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deny >/dev/null 2>&1; then
    echo "audit: installing cargo-deny" >&2
    cargo install --locked --quiet cargo-deny@0.20.2 --no-default-features
fi

cargo deny --log-level error check licenses bans sources

if timeout 20 git ls-remote https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
    cargo deny --log-level error check advisories
elif [ "${AUDIT_REQUIRE_ADVISORIES:-0}" = 1 ]; then
    echo "audit: the RustSec advisory database (github.com) is unreachable" >&2
    exit 1
else
    echo "audit: ADVISORIES NOT CHECKED: the RustSec advisory database (github.com) is unreachable from this machine" >&2
fi
