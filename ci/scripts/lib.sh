# Sourced by the pipeline scripts: where the repository and the built
# binary are.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=$root/bin/portrange

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
