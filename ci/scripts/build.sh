#!/usr/bin/env bash
# Builds portrange in release mode and puts it at bin/portrange, where the
# shard and merge jobs take it from (the build job's artifact). With ARCH
# (x86_64 or arm64), builds it instead fully static for that
# architecture's musl target, at bin/portrange-ARCH: what an ARCH guest
# runs as /init (shard.sh ... ARCH passes it as --guest-binary) and what
# static.sh checks and ships. Honours CARGO_TARGET_DIR and
# PORTRANGE_BIN_DIR.
set -euo pipefail
if (($# > 1)); then
  echo "usage: $0 [ARCH]   (e.g. $0 arm64)" >&2
  exit 2
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
# rustup's default place (ci/scripts/deps.sh build installs there).
PATH=$PATH:$HOME/.cargo/bin
if ! command -v cargo >/dev/null; then
  echo "cargo not found: run ci/scripts/deps.sh build first" >&2
  exit 2
fi
mkdir -p "$(dirname "$bin")"
if (($# == 1)); then
  target=$(rust_target "$1")
  cargo build --release --locked --target "$target" -p portrange
  out=$(guest_bin "$1")
  cp "${CARGO_TARGET_DIR:-target}/$target/release/portrange" "$out"
  echo "built portrange for $target at $out"
  exit 0
fi
cargo build --release --locked -p portrange
cp "${CARGO_TARGET_DIR:-target}/release/portrange" "$bin"
echo "built $("$bin" --version) at $bin"
