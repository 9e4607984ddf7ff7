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
# comes, skip reasons and totals included. Every case of the run's plan
# (`portrange run --list` with the same arguments) that never reported, as
# when the run dies midway, is reported as a failure, so LAVA sees every
# planned case. Exits with portrange's status (0 pass,
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
# The plan: every case the run is to report. An older portrange without
# `run --list`, or arguments it refuses (the run then refuses them too),
# give none.
"$bin" run --list "$@" >portrange.plan 2>/dev/null || : >portrange.plan
# No pipefail in POSIX sh: portrange's status goes through a file.
{
    "$bin" run --format ktap "$@"
    echo "$?" >portrange.status
} | tee portrange.ktap
status="$(cat portrange.status)"
if [ "$status" -eq 2 ] || ! grep -qE '^1\.\.[0-9]+' portrange.ktap; then
    echo "portrange: exit status $status without a KTAP plan: see its error above" >&2
    lava-test-case portrange-setup --result fail
    # It refused to run: the setup case says so, not each planned case.
    : >portrange.plan
else
    lava-test-case portrange-setup --result pass
fi
# "ok N name", "ok N name # SKIP reason", "not ok N name"
: >portrange.reported
grep -E '^(not )?ok [0-9]+ ' portrange.ktap | while read -r line; do
    case "$line" in
        "not ok "*) result=fail; rest="${line#not ok }" ;;
        *) result=pass; rest="${line#ok }" ;;
    esac
    case_name="$(echo "$rest" | cut -d' ' -f2)"
    echo "$case_name" >>portrange.reported
    case "$line" in *" # SKIP "*) result=skip ;; esac
    lava-test-case "$(echo "$case_name" | tr '/' '.')" --result "$result"
done
# Planned cases without a result line: skipped with the whole run when its
# plan was `1..0 # SKIP reason`, else failed: the run ended before them.
missing=fail
grep -qE '^1\.\.0 # SKIP' portrange.ktap && missing=skip
while read -r case_name; do
    if ! grep -qxF "$case_name" portrange.reported; then
        [ "$missing" = fail ] &&
            echo "portrange: $case_name never reported: the run ended (exit status $status) before it" >&2
        lava-test-case "$(echo "$case_name" | tr '/' '.')" --result "$missing"
    fi
done <portrange.plan
echo "portrange exit status: $status"
exit "$status"
