#!/bin/sh
# Fetches the static portrange binary (unless it is already on PATH), runs
# the suite with KTAP output and turns each result line into a LAVA test
# case. POSIX sh: LAVA rootfs images may have no bash.
set -u
url="${1:-}"
bin="$(command -v portrange || true)"
if [ -z "$bin" ]; then
    if [ -z "$url" ]; then
        lava-test-case portrange-setup --result fail
        echo "portrange: not on PATH and PORTRANGE_URL is empty" >&2
        exit 0
    fi
    bin=./portrange
    if ! { wget -q -O "$bin" "$url" || curl -fsSL -o "$bin" "$url"; }; then
        lava-test-case portrange-setup --result fail
        exit 0
    fi
    chmod +x "$bin"
fi
"$bin" run --format ktap --output portrange.ktap
status=$?
lava-test-case portrange-setup --result pass
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
