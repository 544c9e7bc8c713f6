#!/usr/bin/env bash
# The GPU plan (docs/performance.md, "The GPU plan"): the GPU headline figures and the gpu
# tests on one lent GPU, in at most 10 minutes on one H100 (each step has its own time
# limit; they add up to 600 s). Run from the repository root:
#
#   OUT=runs/gpu-plan bash scripts/gpu_plan.sh
#
# Everything lands in $OUT: environment.txt (date, GPU, driver, versions, commit, load),
# one JSON per figure, each command's stdout/stderr, and steps.txt (exit code and seconds
# of each step). A step that fails or runs out of time is recorded and the plan goes on.
set -u -o pipefail
OUT=${OUT:-runs/gpu-plan-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
export TORCHINDUCTOR_CACHE_DIR="$OUT/inductor-cache"  # cold at the start, shared by the steps

step() {  # step NAME SECONDS COMMAND...: run it under a time limit, record rc and seconds
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    timeout "$limit" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
    rc=$?
    echo "$name rc=$rc $(($(date +%s) - start)) s (limit $limit s)" | tee -a "$OUT/steps.txt"
}

{
    date -u +%FT%TZ
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv
    python -c "import sys, torch; print('torch', torch.__version__, '| CUDA', torch.version.cuda,
'| cuDNN', torch.backends.cudnn.version(), '| Python', sys.version.split()[0],
'| GPUs', torch.cuda.device_count())"
    git rev-parse --short HEAD
    uptime
} >"$OUT/environment.txt" 2>&1

BASE=(--device cuda --dtype bf16 --preset base)
# 1. per-component wall-clock at base in bf16, MFU per phase, peak memory per row
step time-base-bf16 75 diffbench time "${BASE[@]}" --batch-size 64 -v mavil -v cross-attn \
    --repeats 10 --warmup 2 -f json -o "$OUT/time-base-bf16.json"
# 2. compile vs eager (and fused vs default AdamW) at base in bf16, compile cold
step compile-vs-eager 135 diffbench time "${BASE[@]}" --batch-size 64 --compile-vs-eager \
    --no-components --repeats 10 --warmup 2 -f json -o "$OUT/compile-vs-eager-base.json"
# 3. the whole-run projection at base: MAViL's recipe and the full recipe, 2,000,000 samples
step projection-base 120 diffbench time "${BASE[@]}" --masking curriculum --batch adaptive \
    --batch-size 64 --samples 2e6 --anchors 2 --windows 3 --repeats 2 --warmup 1 --min-seconds 0 \
    --no-memory -f json -o "$OUT/projection-base.json"
# 4. every path, reduced (the same check a GPU user runs first)
step check 120 diffbench check --device cuda -f json -o "$OUT/check.json"
# 5. the gpu tests (the whole check ran in step 4)
step gpu-tests 150 python -m pytest -q -m gpu -p no:cacheprovider tests/ \
    --deselect tests/test_gpu.py::test_the_whole_check_passes_on_cuda
cat "$OUT/steps.txt"
