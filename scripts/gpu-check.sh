#!/usr/bin/env bash
# Issue 18's GPU check in one command: `pytest -m gpu`, then the GPU benchmarks (MLP
# 784-1000-1000-10 epoch fp32 / TF32 against the DataLoader loop, 100 such MLPs at once, RBM
# 784-500 CD-1 epoch, DropConnect 2 x 800 epoch), then as many paper-scale reproductions as the
# time left allows; a short table last, full logs under $OUT.
#
#   bash scripts/gpu-check.sh                 # on a CUDA machine, < 8 minutes
#   DEVICE=cpu bash scripts/gpu-check.sh      # the dry run: tiny sizes, every step but the
#                                             # depth table (CI; ~2 min on a quiet 2-core CPU)
#
# Environment: OUT (logs; default a new temp dir), DEVICE (cuda | cpu), BUDGET (seconds for
# the whole script, default 470 on cuda), PYTHON (default .venv/bin/python if present, else
# python3), SMITHING_DATA_DIR (MNIST; default ./data when it exists; without MNIST the
# benchmarks time random MNIST-shaped data and say so, and the reproductions are skipped).
# Every step has its own timeout; a failed or timed-out step is a row of the table, never the
# end of the script. The exit status is 1 when a step failed, 0 otherwise.
set -u
cd "$(dirname "$0")/.."
REPO=$(pwd)
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-$(mktemp -d -t gpu-check.XXXXXX)}
mkdir -p "$OUT"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
if [ -z "${SMITHING_DATA_DIR:-}" ] && [ -d "$REPO/data" ]; then
  export SMITHING_DATA_DIR="$REPO/data"
fi
HAVE_MNIST=0
if [ -s "${SMITHING_DATA_DIR:-/nonexistent}/mnist/train-images-idx3-ubyte.gz" ]; then
  HAVE_MNIST=1  # (the loader checks the checksums when it reads them)
else
  echo "NOTE: MNIST not found (SMITHING_DATA_DIR=${SMITHING_DATA_DIR:-unset}): benchmarks time" \
    "random MNIST-shaped data, reproductions are skipped" >&2
  export SMITHING_OFFLINE=1  # no download attempts on a machine without network
fi

if [ "$DEVICE" = cpu ]; then  # the dry run: every step, tiny sizes
  BUDGET=${BUDGET:-300}  # about 2 minutes on a quiet 2-core machine; generous for a busy one
  export SMITHING_COMPILE_BACKEND=${SMITHING_COMPILE_BACKEND:-aot_eager}  # no C++ build
  export SMITHING_DROPCONNECT_COMPILE=${SMITHING_DROPCONNECT_COMPILE:-0}
  FIT=(--n-train 256 --hidden 32 32 --batch-size 128 --repeats 1)
  ENS=(--n-train 256 --hidden 16 16 --members 3 --sample 1)
  RBM=(--n-train 300 --n-components 20)
  DC=(--examples 256 --hidden 16 16)
  REPRO_SET=(--set epochs=1 --set n_train=300)
  WAN_SET=(--set 'dropconnect_options={"samples": 2}')  # (Z = 2 Gaussian draws: a dry run)
else
  BUDGET=${BUDGET:-470}
  FIT=(--hidden 1000 1000 --batch-size 128 --repeats 3)
  ENS=(--hidden 1000 1000 --members 100 --sample 1)
  RBM=(--n-components 500)
  DC=()
  REPRO_SET=(--set "epochs=${REPRO_EPOCHS:-30}")
  WAN_SET=()
fi
T0=$(date +%s)
SUMMARY="$OUT/summary.tsv"
printf 'step\tstatus\tseconds\tresult\n' > "$SUMMARY"
FAILED=0

left() { echo $((BUDGET - ($(date +%s) - T0))); }

# step NAME TIMEOUT PATTERN CMD...: run CMD with a timeout into $OUT/NAME.log; the table's
# result is the log's last line matching PATTERN
step() {
  local name=$1 limit=$2 pattern=$3; shift 3
  local rest; rest=$(left)
  if [ "$rest" -lt 5 ]; then
    printf '%s\tskipped\t0\tno time left\n' "$name" >> "$SUMMARY"; return
  fi
  [ "$limit" -gt "$rest" ] && limit=$rest
  echo "== $(date -u +%T) $name (timeout ${limit}s): $*" >&2
  local t=$(date +%s) status=ok
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  if [ $rc -eq 124 ]; then status=timeout; FAILED=1; elif [ $rc -ne 0 ]; then status="failed($rc)"; FAILED=1; fi
  local result; result=$(grep -E "$pattern" "$OUT/$name.log" | tail -n 1 | tr '\t' ' ' | cut -c1-110)
  [ -z "$result" ] && result=$(tail -n 1 "$OUT/$name.log" | cut -c1-110)
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(( $(date +%s) - t ))" "$result" >> "$SUMMARY"
}

B=benchmarks
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')" > "$OUT/env.log" 2>&1
nvidia-smi >> "$OUT/env.log" 2>&1 || true
GPU_TESTS=$(grep -rl --include='*.py' 'mark.gpu' tests | sort)  # (collecting only these)
# shellcheck disable=SC2086
step pytest-gpu 150 'passed|skipped|failed|error' "$PYTHON" -m pytest -m gpu -q -p no:cacheprovider $GPU_TESTS
step mlp-fp32 60 'speed-up' "$PYTHON" $B/bench_fit.py --device "$DEVICE" "${FIT[@]}"
step mlp-fp32-compiled 90 'speed-up' "$PYTHON" $B/bench_fit.py --device "$DEVICE" "${FIT[@]}" --compile
step mlp-tf32-compiled 90 'speed-up' "$PYTHON" $B/bench_fit.py --device "$DEVICE" "${FIT[@]}" --precision tf32 --compile
step mlp-bf16 60 'speed-up' "$PYTHON" $B/bench_fit.py --device "$DEVICE" "${FIT[@]}" --precision bf16
step ensemble-fp32 90 '^ +[0-9]+ ' "$PYTHON" $B/bench_ensemble.py --device "$DEVICE" "${ENS[@]}"
step ensemble-tf32 60 '^ +[0-9]+ ' "$PYTHON" $B/bench_ensemble.py --device "$DEVICE" "${ENS[@]}" --precision tf32 --sample 0
step rbm-cd1 60 'ms/epoch' "$PYTHON" $B/bench_rbm.py --speed-only --device "$DEVICE" --dataset mnist --method cd --batch-size 100 --epochs 1 --seeds 3 --lr 0.05 "${RBM[@]}"
step rbm-cd1-compiled 90 'ms/epoch' "$PYTHON" $B/bench_rbm.py --speed-only --device "$DEVICE" --dataset mnist --method cd --batch-size 100 --epochs 1 --seeds 3 --lr 0.05 --compile "${RBM[@]}"
step dropconnect 150 'DropConnect \(bits\)' "$PYTHON" $B/bench_dropconnect.py --device "$DEVICE" "${DC[@]}"
step precision 60 '^bf16' "$PYTHON" $B/bench_precision.py --device "$DEVICE" --examples "$([ "$DEVICE" = cpu ] && echo 500 || echo 5000)" --epochs "$([ "$DEVICE" = cpu ] && echo 1 || echo 3)"

# paper-scale reproductions, as many as the time left allows (each resumes from the store in
# $OUT if the script is run again with the same OUT)
repro() {  # repro NAME STUDY ARGS...
  local name=$1 study=$2; shift 2
  if [ "$HAVE_MNIST" != 1 ] && [ "$DEVICE" != cpu ]; then
    printf '%s\tskipped\t0\tno MNIST\n' "$name" >> "$SUMMARY"; return
  fi
  step "$name" "$(left)" '"study"' "$PYTHON" -m smithing run "$study" --scale paper --json \
    --quiet --device "$DEVICE" --out "$OUT/studies" "$@" "${REPRO_SET[@]}"
}
if [ "$HAVE_MNIST" = 1 ] || [ "$DEVICE" = cpu ]; then
  repro srivastava-maxnorm regularization --variants 'T9 dropout + max-norm' --seeds 1 --compile
  repro wan-dropconnect regularization --variants 'Wan DropConnect' --seeds 1 "${WAN_SET[@]}"
  if [ "$DEVICE" != cpu ]; then  # (its 15 cells of greedy pretraining: too long for a dry run)
    repro erhan-depth pretraining-depth --seeds 20 --compile
  fi
else
  printf 'reproductions\tskipped\t0\tno MNIST\n' >> "$SUMMARY"
fi

echo
echo "gpu-check on $DEVICE: $(( $(date +%s) - T0 )) s; logs in $OUT"
column -t -s $'\t' "$SUMMARY" 2>/dev/null || cat "$SUMMARY"
exit $FAILED
