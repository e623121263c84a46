#!/usr/bin/env bash
# GPU checks of ember.distributed in one device call: builds ember with CUDA (sm_90) like
# bench/cuda_device_run.sh, then runs the steps asked for (default: all that the GPU count allows),
# logging to $OUT:
#   nccl1     NCCL with world size 1 through the launcher: collectives on CUDA tensors vs numpy,
#             async handles, an all_reduce captured in a CUDA graph, DDP gradients   (1+ GPU)
#   overhead  mini-GPT GPU config step with and without DDP on one GPU, ember and torch   (1+ GPU)
#   nccl2     the nccl1 checks with 2 ranks                                                (2+ GPUs)
#   ddp2      mini-GPT GPU config (6L/6H/d=384/T=256/B=64, dropout 0), 100 steps: 2 ranks with --ddp
#             vs 1 GPU at the same global batch, ember and torch: loss curves, tokens/s, scaling
#             efficiency = tok/s(2 GPUs) / (2 x tok/s(1 GPU))                               (2+ GPUs)
#   busbw     all_reduce bus bandwidth 1 MiB..1 GiB, ember and torch (nccl-tests formula) (2+ GPUs)
# Usage (device tool, carry .whl and .devdata like cuda_device_run.sh):
#   bash bench/distributed_gpu_check.sh [nccl1 overhead nccl2 ddp2 busbw]
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
py=python3
export PYTHONUNBUFFERED=1
if ! $py -c "import scipy_openblas32" 2>/dev/null; then
  $py -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/env.txt"
ngpu=$(nvidia-smi -L | wc -l)
t0=$(date +%s)
cmake -S runtime -B /tmp/build -G Ninja -DPython_EXECUTABLE=$(command -v $py) -DEMBER_PYTHON_OUT=$PWD/runtime/python/ember \
  -DEMBER_CUDA=ON -DEMBER_CUDA_ARCHS=90 -DEMBER_BUILD_TESTS=OFF >"$OUT/build.log" 2>&1 &&
  cmake --build /tmp/build -j16 >>"$OUT/build.log" 2>&1
rc=$?
echo "build rc=$rc in $(( $(date +%s) - t0 ))s; $ngpu GPU(s)" | tee -a "$OUT/env.txt"
if [ $rc -ne 0 ]; then grep -m20 -B2 -A8 "error" "$OUT/build.log"; exit 1; fi
export PYTHONPATH=$PWD/runtime/python:${PYTHONPATH:-}
$py -c "import ember, torch; print('nccl', ember._C._cuda._nccl.is_available() or ember._C._cuda._nccl.load_error(), 'torch', torch.__version__, torch.cuda.nccl.version())" 2>&1 | tee -a "$OUT/env.txt"
launch="$py -m ember.distributed.run"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(nccl1 overhead nccl2 ddp2 busbw)
gpt_flags="--layers 6 --heads 6 --dim 384 --block 256 --batch-size 64 --dropout 0 --steps ${DDP_STEPS:-100} --lr 1e-3
  --warmup 20 --eval-every 0 --sample-chars 0 --quiet --data ${GPT_DATA:-.devdata/tinyshakespeare.txt} --device cuda"
for step in "${steps[@]}"; do
  s0=$(date +%s)
  case $step in
    nccl1)
      timeout 300 $launch --nproc-per-node 1 bench/distributed_gpu_check.py nccl --out "$OUT/nccl1" 2>&1 | tee "$OUT/nccl1.log" | tail -15 ;;
    overhead)
      timeout 300 $launch --nproc-per-node 1 bench/distributed_gpu_check.py overhead --out "$OUT" 2>&1 | tee "$OUT/overhead.log" | tail -8 ;;
    nccl2|ddp2|busbw)
      if [ "$ngpu" -lt 2 ]; then echo "== $step skipped: $ngpu GPU"; continue; fi ;;&
    nccl2)
      timeout 300 $launch --nproc-per-node 2 bench/distributed_gpu_check.py nccl --out "$OUT/nccl2" 2>&1 | tee "$OUT/nccl2.log" | tail -15 ;;
    ddp2)
      {
        timeout 600 $launch --nproc-per-node 2 examples/minigpt_shakespeare.py --backend ember --ddp $gpt_flags --metrics "$OUT/ddp2_ember_2gpu.json"
        timeout 600 $py examples/minigpt_shakespeare.py --backend ember $gpt_flags --metrics "$OUT/ddp2_ember_1gpu.json"
        timeout 600 $py -m torch.distributed.run --nproc-per-node 2 examples/minigpt_shakespeare.py --backend torch --ddp $gpt_flags --metrics "$OUT/ddp2_torch_2gpu.json"
        timeout 600 $py examples/minigpt_shakespeare.py --backend torch $gpt_flags --metrics "$OUT/ddp2_torch_1gpu.json"
        $py - "$OUT" <<'EOF'
import json, sys, numpy as np
out = sys.argv[1]
res = {}
for lib in ("ember", "torch"):
    one, two = (json.load(open(f"{out}/ddp2_{lib}_{n}gpu.json")) for n in (1, 2))
    a, b = np.array(one["loss"]), np.array(two["loss"])
    n = min(len(a), len(b))
    res[lib] = {"tokens_per_s_1gpu": one["tokens_per_s"], "tokens_per_s_2gpu": two["tokens_per_s"],
                "scaling_efficiency": two["tokens_per_s"] / (2 * one["tokens_per_s"]),
                "max_abs_loss_diff": float(np.max(np.abs(a[:n] - b[:n]))), "steps": n,
                "final_loss_1gpu": float(a[n - 1]), "final_loss_2gpu": float(b[n - 1])}
    print(lib, json.dumps(res[lib]))
json.dump(res, open(f"{out}/ddp2_summary.json", "w"), indent=1)
EOF
      } 2>&1 | tee "$OUT/ddp2.log" | grep -vE "^\s*$" | tail -12 ;;
    busbw)
      { timeout 300 $launch --nproc-per-node "$ngpu" bench/distributed_gpu_check.py busbw --lib ember --out "$OUT"
        timeout 300 $py -m torch.distributed.run --nproc-per-node "$ngpu" bench/distributed_gpu_check.py busbw --lib torch --out "$OUT"
      } 2>&1 | tee "$OUT/busbw.log" | grep -E "all_reduce|Error|error" | tail -20 ;;
    *) echo "unknown step $step" ;;
  esac
  echo "== $step took $(( $(date +%s) - s0 ))s"
done
