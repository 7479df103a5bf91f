#!/usr/bin/env bash
# The first GPU day in one command: the machine, artkit's CUDA tests, then bench_gpu.py, each under a time limit,
# every log and result under $OUT. With the device tool (wheels from gpu_wheels.sh, run here first):
#
#   run  command: bash bench/gpu_day.sh   carry: ["bench/_work/wheels", "bench/_work/timm_train.py"]   timeout_s: 590
#
# Here, `bash bench/gpu_day.sh --dry` checks the script itself (the CUDA tests skip, bench_gpu.py runs --dry).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/_work/gpu_day}
mkdir -p "$OUT"
dry=(); [ "${1:-}" = --dry ] && dry=(--dry)
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; lscpu | grep 'Model name'; nproc; } \
  >"$OUT/device.txt" 2>&1
if ! python3 -c "import albumentations, cleanlab" 2>/dev/null && compgen -G "bench/_work/wheels/*.whl" >/dev/null; then
  # the image lacks them: these wheels (and timm at the version measured here) go first on the path
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/artkit-site \
    bench/_work/wheels/*.whl || exit 1
  export PYTHONPATH="/tmp/artkit-site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1  # no registry there
python3 -c "import torch, timm, albumentations, artkit
print('torch', torch.__version__, 'timm', timm.__version__, 'albumentations', albumentations.__version__,
      torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')" 2>&1 | tee -a "$OUT/device.txt"
timeout "${TESTS_S:-200}" python3 -m pytest -q -p no:cacheprovider -m cuda --durations=0 \
  tests/cli/test_cuda.py tests/cli/test_train_eval_predict.py 2>&1 | tee "$OUT/cuda_tests.log"
tests=${PIPESTATUS[0]}
timm=(); [ -f bench/_work/timm_train.py ] && timm=(--timm-train bench/_work/timm_train.py)
# timm at artkit's loader process count only: each extra count is another timm run per AMP mode
timeout "${BENCH_S:-330}" python3 bench/bench_gpu.py "${dry[@]}" "${timm[@]}" --timm-workers artkit \
  --results "$OUT/gpu.csv" 2>&1 \
  | tee "$OUT/bench_gpu.log"
bench=${PIPESTATUS[0]}
echo "cuda tests: rc $tests; bench_gpu.py: rc $bench (rows in $OUT/gpu.csv)"
[ "$tests" = 0 ] || [ "$tests" = 5 ] && [ "$bench" = 0 ]
