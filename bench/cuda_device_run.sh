#!/usr/bin/env bash
# One device call: build ember with CUDA for sm_90, run the CUDA tests, the op tables on CUDA, the
# sanitizers and the benchmarks. Logs go to $OUT. Usage (device tool, carry .whl):
#   bash bench/cuda_device_run.sh [tests|bench|all]
set -uo pipefail
what=${1:-all}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
py=python3
export PYTHONUNBUFFERED=1
if ! $py -c "import scipy_openblas32" 2>/dev/null; then
  $py -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/env.txt"
$py -c "import torch, numpy, pybind11; print('torch', torch.__version__, 'numpy', numpy.__version__, 'pybind11', pybind11.__version__)" | tee -a "$OUT/env.txt"
t0=$(date +%s)
cmake -S runtime -B /tmp/build -G Ninja -DPython_EXECUTABLE=$(command -v $py) -DEMBER_PYTHON_OUT=$PWD/runtime/python/ember \
  -DEMBER_CUDA=ON -DEMBER_CUDA_ARCHS=90 -DEMBER_BUILD_TESTS=OFF >"$OUT/build.log" 2>&1 &&
  cmake --build /tmp/build -j16 >>"$OUT/build.log" 2>&1
rc=$?
echo "build rc=$rc in $(( $(date +%s) - t0 ))s" | tee -a "$OUT/env.txt"
if [ $rc -ne 0 ]; then grep -m20 -B2 -A8 "error" "$OUT/build.log"; exit 1; fi
export PYTHONPATH=$PWD/runtime/python:${PYTHONPATH:-}
if [ "$what" != bench ]; then
  timeout 240 $py -m pytest runtime/tests/python/cuda -q -p no:cacheprovider -x --tb=short 2>&1 | tee "$OUT/cuda_tests.log" | tail -25
  timeout 200 $py -m pytest runtime/tests/python -q -p no:cacheprovider -k "cuda" --ignore=runtime/tests/python/cuda \
    --tb=line -o addopts="" 2>&1 | tee "$OUT/optable_cuda.log" | grep -E "passed|failed|Error" | tail -40
fi
if [ "$what" != tests ]; then
  timeout 200 $py bench/cuda_ops.py --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"
fi
if [ "$what" = all ] || [ "$what" = sanitize ]; then
  for tool in memcheck racecheck; do
    timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 $py -m pytest runtime/tests/python/cuda/test_cuda_allocator.py \
      runtime/tests/python/cuda/test_cuda_graphs.py -q -p no:cacheprovider -x 2>&1 | tail -6 | tee "$OUT/sanitizer_$tool.log"
  done
fi
