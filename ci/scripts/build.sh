#!/usr/bin/env bash
# Builds portrange in release mode and puts it at bin/portrange, where the
# shard and merge jobs take it from (the build job's artifact). Honours
# CARGO_TARGET_DIR.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
# rustup's default place (ci/scripts/deps.sh build installs there).
PATH=$PATH:$HOME/.cargo/bin
if ! command -v cargo >/dev/null; then
  echo "cargo not found: run ci/scripts/deps.sh build first" >&2
  exit 2
fi
cargo build --release --locked -p portrange
mkdir -p "$(dirname "$bin")"
cp "${CARGO_TARGET_DIR:-target}/release/portrange" "$bin"
echo "built $("$bin" --version) at $bin"
