#!/usr/bin/env bash
# The reduced paper-scale runs that fit one session of a 2-core CPU (no GPU lent): each study at
# its paper configuration (MNIST, paper-size networks) with fewer epochs / steps / seeds, as
# stated per line and in docs/RESULTS.md. Two queues run side by side, one torch thread each.
#
#   SMITHING_DATA_DIR=../shared/data bash scripts/paper-cpu.sh [OUT]        # the runs
#   SMOKE=1 SMITHING_DATA_DIR=../shared/data bash scripts/paper-cpu.sh /tmp/smoke   # a minute-long
#                                                               dry run of every command
# On 2026-11-25 (docs/RESULTS.md) every command ran except the two sda runs and the depth table,
# which did not fit the session.
# Each command resumes where it stopped (the study store), so the script can be re-run after a
# crash. Per-queue logs: OUT/queue-a.log, OUT/queue-b.log (JSON summaries, one per command).
set -u
OUT=${1:-paper-out}
SM=${SMITHING:-.venv/bin/smithing}  # PYTHONPATH=/frozen/checkout/src pins the code to a commit
mkdir -p "$OUT"
run() {  # run OUTDIR STUDY 'SMOKE OVERRIDES' ARGS...
  local dir=$1 study=$2 smoke=$3; shift 3
  local tiny=()
  if [ -n "${SMOKE:-}" ]; then read -r -a tiny <<< "$smoke"; fi
  echo "== $(date -u +%FT%TZ) smithing run $study --scale paper $*" >&2
  /usr/bin/time -f "wall %e s" "$SM" run "$study" --scale paper --threads 1 --quiet --json \
    --out "$OUT/$dir" "$@" "${tiny[@]}"
}
SDA_LAYERS='{"source":"sda","dataset":"mnist","layer_options":[
{"epochs":3,"lr":0.01,"batch_size":10,"corruption":"masking","rate":0.1},
{"epochs":3,"lr":0.01,"batch_size":10,"corruption":"masking","rate":0.2},
{"epochs":3,"lr":0.01,"batch_size":10,"corruption":"masking","rate":0.3}]}'
queue_a() {
  # issue 10: adding problem at T = 100 and 150, 1 seed, 10,000 steps (paper config: 3 seeds, 20,000)
  run adding adding-problem '--set steps=20 --set n_train=500 --set n_test=200' \
    --variants '* T=100' '* T=150' --seeds 1 --set steps=10000
  # issue 7: CD-1 / CD-3 / CD-25 / PCD-1, 500 hidden, 15 epochs (paper config: 100), AIS 14,500 betas
  run rbm rbm '--set epochs=1 --set n_train=300 --set ais_betas=100 --set ais_runs=10' \
    --set epochs=15
  # issue 7: 784-500-500-2000 DBN, 10 CD-1 epochs a layer (paper config: 50), fine-tuning <= 15
  # epochs (paper config: 100)
  run dbn dbn '--set epochs=1 --set n_train=300 --set pretrain_epochs=1' \
    --seeds 1 --set pretrain_epochs=10 --set epochs=15
  # issue 6: Wan et al. 2013's DropConnect row, 1 seed, 3 epochs (its per-example masks make it
  # the most expensive run of the study; the other rows are in queue b)
  run regularization-dropconnect regularization '--set epochs=1 --set n_train=300' \
    --variants 'Wan DropConnect' --seeds 1 --set epochs=3
  # issue 8: Erhan et al. 2010 depth table, 1-5 layers x {none, DBN, SdA}, 2 seeds, the first
  # 3,000 training images, 8 fine-tuning epochs (paper config: 50k images, 20 seeds, 50 epochs)
  run depth pretraining-depth '--set epochs=1 --set n_train=300' \
    --seeds 2 --set n_train=3000 --set epochs=8
}
queue_b() {
  # issue 4: Glorot & Bengio's two tanh rows (standard vs normalized init), 5 x 1000, batch 10,
  # 1 seed, 8 epochs (paper config: 30 epochs, 3 seeds, every initializer)
  run initialization initialization '--set epochs=1 --set n_train=300' \
    --variants standard glorot_uniform --seeds 1 --set epochs=8
  # issue 6: Srivastava et al. 2014 Table 9 rows and Wan et al. 2013's no-drop / dropout rows,
  # 1 seed, 10 epochs (paper config: 5 seeds, 200 epochs)
  run regularization regularization '--set epochs=1 --set n_train=300' \
    --variants 'T9 *' 'Wan no-drop' 'Wan dropout' --seeds 1 --set epochs=10
  # the two dropout rows again after the fix of their learning rate (0.1 -> 0.01)
  run regularization-dropout regularization '--set epochs=1 --set n_train=300' \
    --variants 'T9 dropout*' --seeds 1 --set epochs=10
  # issue 9: the table's variants (generative, discriminative, hybrid at three alphas, deep
  # hybrid, DBN), 1 seed, 3 epochs (paper config: 3 seeds, 30 epochs; DBN pretraining 50 a
  # layer); the semi-supervised curve is left to the quick scale
  run hybrid hybrid '--set epochs=1 --set pretrain_epochs=1' \
    --variants generative discriminative 'hybrid a=*' 'deep hybrid' 'DBN + fine-tune' \
    --seeds 1 --set epochs=3 --set pretrain_epochs=3
  # issue 8: SdA-3 (3 x 1000), 3 DAE epochs a layer at batch 10 (paper config: 15 at batch 1),
  # fine-tuning 5 epochs at batch 10 (paper config: <= 200 at batch 1); no pretraining beside it
  run sda-pretrained sda '--set epochs=1 --set n_train=300' \
    --variants 'SdA-3 (pretrained)' --set batch_size=10 --set epochs=5 \
    --set "init_options=$SDA_LAYERS"
  run sda-none sda '--set epochs=1 --set n_train=300' \
    --variants 'no pretraining' --set batch_size=10 --set epochs=5
}
case ${QUEUE:-ab} in  # QUEUE=a or QUEUE=b runs one queue only
  *a*) queue_a >> "$OUT/queue-a.log" 2>&1 & ;;
esac
case ${QUEUE:-ab} in
  *b*) queue_b >> "$OUT/queue-b.log" 2>&1 & ;;
esac
wait
echo "done: $OUT/queue-a.log $OUT/queue-b.log"
