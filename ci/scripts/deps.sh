#!/usr/bin/env bash
# Installs what one pipeline job needs on a Debian 12 image (as root).
# Whatever is already there is left alone, so on a prepared machine (or
# under gitlab-ci-local's shell executor here) it changes nothing.
#   ci/scripts/deps.sh build [ARCH...]  a C linker and readelf, and Rust through
#                              rustup if cargo is missing; with ARCHs (x86_64,
#                              arm64), also their static musl Rust targets
#                              (rustup target add) for build.sh ARCH and static.sh
#   ci/scripts/deps.sh vm [ARCH]  QEMU (for ARCH guests), and apt's package lists
#                              (portrange fetches Debian's kernels with apt-get download)
#   ci/scripts/deps.sh squad   curl and jq for squad-submit.sh
set -euo pipefail
usage() {
  echo "usage: $0 build [ARCH...] | vm [ARCH] | squad" >&2
  exit 2
}
(($# >= 1)) && { [[ $1 == build ]] || (($# <= 2)); } || usage
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for named in "${@:2}"; do guest_arch "$named" >/dev/null; done
arch=$(guest_arch "${2:-x86_64}")
case $1:$arch in
  build:*) packages=(ca-certificates curl gcc libc6-dev binutils) ;;
  vm:x86_64) packages=(qemu-system-x86) ;;
  vm:arm64) packages=(qemu-system-arm) ;;
  squad:x86_64) packages=(ca-certificates curl jq) ;;
  *) usage ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Container images ship without apt's lists.
if ((${#missing[@]})) || { [[ $1 == vm ]] && ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; }; then
  apt-get update -qq
fi
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [[ $1 == build ]] && ! command -v cargo >/dev/null && [[ ! -x $HOME/.cargo/bin/cargo ]]; then
  echo "cargo not found: installing Rust with rustup (minimal profile)"
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
if [[ $1 == build ]]; then
  for target_arch in "${@:2}"; do
    PATH=$PATH:$HOME/.cargo/bin rustup target add "$(rust_target "$target_arch")"
  done
fi
