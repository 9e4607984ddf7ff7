#!/bin/sh
# Drops the static portrange binary into a kselftest install directory
# (made by `make -C tools/testing/selftests install INSTALL_PATH=DIR`) as
# the collection "portrange", so run_kselftest.sh runs it like any other
# test program: KTAP on stdout, exit 0 pass, 1 fail, 4 skip.
#   ci/kselftest/install.sh PORTRANGE_BINARY KSELFTEST_DIR
# e.g. with ci/scripts/static.sh x86_64's bin/portrange-x86_64, which needs
# nothing from the target's root file system.
set -eu
binary="$1"
install_dir="$2"
[ -f "$install_dir/run_kselftest.sh" ] || {
    echo "$install_dir has no run_kselftest.sh: not a kselftest install" >&2
    exit 1
}
mkdir -p "$install_dir/portrange"
cp "$binary" "$install_dir/portrange/portrange"
chmod +x "$install_dir/portrange/portrange"
grep -qx 'portrange:portrange' "$install_dir/kselftest-list.txt" 2>/dev/null ||
    echo 'portrange:portrange' >> "$install_dir/kselftest-list.txt"
echo "installed; run: $install_dir/run_kselftest.sh -c portrange"
