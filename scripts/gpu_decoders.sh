#!/bin/bash
# How the shipped feature-inversion decoders were trained: the four layers at once on one GPU (an
# H100), T minutes each, pixel loss, 160-px crops, batch 16; the cosine LR schedule fits in the time.
#   DATA: the content photos (default ../shared/data/content); OUTDIR: where NAME.pt/.json go.
# pastiche must be importable (PYTHONPATH) where the script runs.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=${PYTHONPATH:-}:$PWD PYTHONUNBUFFERED=1
PY=${PY:-python3}; D=${DATA:-../shared/data/content}; O=${OUTDIR:-/tmp/decoders}; DEV=${DEV:-cuda}
mkdir -p "$O"
for l in ${LAYERS:-relu2_1 relu3_1 relu4_1 relu5_1}; do
  $PY -m percept.cli train-decoder --layer $l --data "$D" --out "$O" --image-size ${SIZE:-160} \
    --batch-size ${BS:-16} --iterations 1000000 --time-limit ${T:-2} --checkpoint-every 1000000 \
    --workers ${WORKERS:-3} --device $DEV --quiet > "$O/$l.log" 2>&1 &
done
wait
for l in ${LAYERS:-relu2_1 relu3_1 relu4_1 relu5_1}; do echo "== $l"; tail -3 "$O/$l.log"; done
