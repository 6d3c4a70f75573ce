#!/usr/bin/env bash
# The CPU recipe: trains the four style models on ../shared/data/content (every 10th photo held out)
# and copies the finished weights and model cards into checkpoints/. The models that ship now were
# trained on a GPU instead (scripts/gpu_sweep.sh, scripts/gpu_rt.sh; see docs/BENCHMARKS.md): 400
# CPU steps give visibly stylised pictures but miss the quality targets. The training runs, their resumable
# state and TensorBoard logs stay in out/train/ (not in git).
#   usage: scripts/train_shipped.sh [STYLE ...]     (default: all four)
# Extra arguments for `percept train-style` can be given in TRAIN_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
styles=("$@")
[ ${#styles[@]} -eq 0 ] && styles=(starry_night the_scream composition_vii wave)
for s in "${styles[@]}"; do
  .venv/bin/percept train-style --style "$DATA/styles/$s.jpg" --data "$DATA/content" --out out/train \
    --iterations "${ITERATIONS:-400}" ${TRAIN_ARGS:-}
  cp out/train/$s.pt out/train/$s.json checkpoints/
done
# The real-time (rt) models: distilled from the full ones just trained (a few minutes each on a CPU),
# then every shipped model gets its verified .onnx.
for s in "${styles[@]}"; do
  .venv/bin/percept distill --teacher "$s" --data "$DATA/content" --out out/distill --quiet
  cp out/distill/${s}_rt.pt out/distill/${s}_rt.json checkpoints/
  .venv/bin/percept export "$s"
  .venv/bin/percept export "${s}_rt"
done
