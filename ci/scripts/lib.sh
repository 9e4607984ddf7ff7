# Sourced by the pipeline scripts: where the repository and the built
# binaries are (bin/, the jobs' artifacts; PORTRANGE_BIN_DIR elsewhere).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin_dir=${PORTRANGE_BIN_DIR:-$root/bin}
bin=$bin_dir/portrange

# The guest's architecture as portrange's --arch spells it (x86_64, arm64;
# aarch64 is read as arm64), and the static musl Rust target portrange is
# cross-built for to be a guest's /init there (qemu::guest_program).
guest_arch() {
  case $1 in
    x86_64) echo x86_64 ;;
    arm64 | aarch64) echo arm64 ;;
    *)
      echo "unknown architecture $1: use x86_64 or arm64" >&2
      exit 2
      ;;
  esac
}
rust_target() {
  local arch
  arch=$(guest_arch "$1") || exit 2
  case $arch in
    x86_64) echo x86_64-unknown-linux-musl ;;
    arm64) echo aarch64-unknown-linux-musl ;;
  esac
}
# Where build.sh ARCH leaves the static portrange for ARCH (the static build job's artifact).
guest_bin() {
  local arch
  arch=$(guest_arch "$1") || exit 2
  echo "$bin_dir/portrange-$arch"
}

# Checks that ci/scripts/build.sh (or the build job's artifact) left the
# binary in place, and makes it executable again: artifact stores such as
# GitHub's drop the mode bits.
require_portrange() {
  if [[ ! -f $bin ]]; then
    echo "$bin not found: run ci/scripts/build.sh first (or fetch the build job's artifact)" >&2
    exit 2
  fi
  [[ -x $bin ]] || chmod +x "$bin"
}
