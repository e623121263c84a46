#!/usr/bin/env bash
# Incremental in-tree build for development: one shared build dir, serialized by a lock so several
# people (or agents) building at once don't corrupt it. The extension lands in runtime/python/ember.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
build=${EMBER_BUILD_DIR:-$root/build/dev}
exec 9>"/tmp/ember-dev-build.lock"
flock 9
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root/runtime" -B "$build" -G Ninja -DPython_EXECUTABLE="$py" \
    -DEMBER_PYTHON_OUT="$root/runtime/python/ember" ${EMBER_CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$build" "$@"
