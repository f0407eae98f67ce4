#!/usr/bin/env bash
# vendor/pingora-core is what the build uses for pingora-core ([patch.crates-io] in Cargo.toml):
# crates.io's pingora-core 0.9.1 (the pristine crate beside this script, checked against
# crates.io's checksum) with vendor/pingora-core.patch applied. See vendor/README.md.
#
#   vendor/pingora-core.sh           re-create vendor/pingora-core from the crate and the patch
#   vendor/pingora-core.sh --check   only verify that vendor/pingora-core is exactly that (CI)
#   vendor/pingora-core.sh --diff    write the patch from an edited vendor/pingora-core
set -euo pipefail
cd "$(dirname "$0")"
crate=pingora-core-0.9.1.crate
sha256=a535f47f65fdcb003f9e1df04cd18e614c128dfe9388acce3f211ae38ac14d68
echo "$sha256  $crate" | sha256sum --check --quiet

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$crate" -C "$tmp"
mv "$tmp/pingora-core-0.9.1" "$tmp/pristine"

case "${1:-}" in
--diff)
    # Relative paths, no timestamps: the patch changes only when the code does.
    (cd "$tmp" && cp -r "$OLDPWD/pingora-core" patched &&
        diff -ruN pristine patched | sed -E 's/^(---|\+\+\+) ([^\t]*)\t.*/\1 \2/') \
        >pingora-core.patch || true
    echo "wrote vendor/pingora-core.patch ($(grep -c '^@@' pingora-core.patch) hunks)"
    ;;
--check | "")
    cp -r "$tmp/pristine" "$tmp/patched"
    # Outside any git repository, git apply patches plain files under its directory.
    (cd "$tmp/patched" && git apply -p1 "$OLDPWD/pingora-core.patch")
    if [ "${1:-}" = --check ]; then
        if ! diff -r "$tmp/patched" pingora-core >/dev/null; then
            echo "vendor/pingora-core differs from $crate + pingora-core.patch:" >&2
            diff -r "$tmp/patched" pingora-core >&2 || true
            exit 1
        fi
        echo "vendor/pingora-core is $crate + pingora-core.patch"
    else
        rm -rf pingora-core
        mv "$tmp/patched" pingora-core
        echo "re-created vendor/pingora-core"
    fi
    ;;
*)
    echo "usage: $0 [--check | --diff]" >&2
    exit 2
    ;;
esac
