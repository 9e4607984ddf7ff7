#!/bin/sh
# Fetches the static portrange binary (unless it is already on PATH), runs
# the suite with KTAP output and turns each result line into a LAVA test
# case. POSIX sh: LAVA rootfs images may have no bash.
#
# usage: run-portrange.sh [URL] [PORTRANGE ARGUMENTS...]
#
# URL is downloaded (wget or curl), or with file:// copied from the
# device's own file system (where a LAVA overlay put it, as
# ci/lava/job-qemu.yaml does).
#
# `portrange-setup` passes only when portrange was had and started the run
# (its KTAP plan came out); it fails when the binary could not be had or
# portrange refused to run (a usage or I/O error, exit 2). The KTAP is read
# from portrange's stdout, which it streams, so the results of a run that
# dies midway are still reported; it also goes to the job's log as it
# comes, skip reasons and totals included. Exits with portrange's status (0 pass,
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
    case "$url" in
        file://*)
            cp "${url#file://}" "$bin" || setup_failed "could not copy ${url#file://}"
            ;;
        *)
            if ! { wget -q -O "$bin" "$url" || curl -fsSL -o "$bin" "$url"; }; then
                setup_failed "could not download $url"
            fi
            ;;
    esac
    chmod +x "$bin"
fi
# No pipefail in POSIX sh: portrange's status goes through a file.
{
    "$bin" run --format ktap "$@"
    echo "$?" >portrange.status
} | tee portrange.ktap
status="$(cat portrange.status)"
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
