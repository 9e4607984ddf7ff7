#!/bin/sh
# Fetches the static portrange binary (unless it is already on PATH), runs
# the suite with KTAP output and turns each result line into a LAVA test
# case. POSIX sh: LAVA rootfs images may have no bash.
#
# usage: run-portrange.sh [URL] [PORTRANGE ARGUMENTS...]
#
# `portrange-setup` passes only when portrange was had and started the run
# (its KTAP plan came out); it fails when the binary could not be had or
# portrange refused to run (a usage or I/O error, exit 2). The KTAP is read
# from portrange's stdout, which it streams, so the results of a run that
# dies midway are still reported. Exits with portrange's status (0 pass,
# 1 fail, 4 all skipped, 2 usage, >128 killed), or 1 when setup failed
# before portrange ran.
set -u
url="${1:-}"
[ "$#" -gt 0 ] && shift
setup_failed() {
    echo "portrange: $1" >&2
    lava-test-case portrange-setup --result fail
    exit 1
}
bin="$(command -v portrange || true)"
if [ -z "$bin" ]; then
    [ -n "$url" ] || setup_failed "not on PATH and PORTRANGE_URL is empty"
    bin=./portrange
    if ! { wget -q -O "$bin" "$url" || curl -fsSL -o "$bin" "$url"; }; then
        setup_failed "could not download $url"
    fi
    chmod +x "$bin"
fi
"$bin" run --format ktap "$@" >portrange.ktap
status=$?
if [ "$status" -eq 2 ] || ! grep -qE '^1\.\.[0-9]+' portrange.ktap; then
    echo "portrange: exit status $status without a KTAP plan: see its error above" >&2
    lava-test-case portrange-setup --result fail
else
    lava-test-case portrange-setup --result pass
fi
# "ok N name", "ok N name # SKIP reason", "not ok N name"
grep -E '^(not )?ok [0-9]+ ' portrange.ktap | while read -r line; do
    case "$line" in
        "not ok "*) result=fail; rest="${line#not ok }" ;;
        *) result=pass; rest="${line#ok }" ;;
    esac
    name="$(echo "$rest" | cut -d' ' -f2 | tr '/' '.')"
    case "$line" in *" # SKIP "*) result=skip ;; esac
    lava-test-case "$name" --result "$result"
done
echo "portrange exit status: $status"
exit "$status"
