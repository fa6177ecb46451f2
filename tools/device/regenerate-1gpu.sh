#!/usr/bin/env bash
# Regenerate every committed one-GPU result on one H200 (kind nvidia-h200), in calls made back to back while the
# machine stays warm: it is given back after 30 s idle, and /tmp (the installed wheels, the SmolLM2 wheel's first
# half, this script's work folder) goes with it. The two-GPU twins are tools/device/regenerate.sh's (issue 26).
#
# Before: commit, `bash tools/device/stamp.sh`, and put results/smollm2-snli-offline under .device-carry/results/
# (its test-evaluation history continues). Every step writes into /tmp/regen (results/<run>/ written there by the
# pipeline itself, logs/, bench/, scale/) and ends by packing all of it into $OUT/back.tar.gz: the machine sends
# back few files, and a call cut short still returns what its finished steps made.
# After: unpack; copy results/<run> (and results/*.study.json, results/*.reproductions/) over results/; the bench
# record into benchmarks/results/; the scale record into benchmarks/results/; `python -m pipeline verify`.
#
#   call 1  bash tools/device/regenerate-1gpu.sh 1   carry .whl .device-data .whl-smol/part-aa
#           the benchmark ladder at micro-batch 8 (every line but the FlexAttention ones), the loss agreement and
#           float16 under a 15 GiB cap: one record (bench/phi2-shape-h200-<time>.json)
#   call 2  bash tools/device/regenerate-1gpu.sh 2   carry .whl .device-data .whl-smol/part-ab .whl-smol/sha256
#                                                    .device-carry
#           SmolLM2: the tune, then the run with its choice; the 5-seed study with that choice; `reproduce`
#   call 3  bash tools/device/regenerate-1gpu.sh 3   carry .whl .device-data
#           Phi-2's shape: bfloat16, then float16 under a 15 GiB cap; the 100k-row SmolLM2 run killed mid-epoch
#           and resumed (benchmarks/scale.py --resume-check); `reproduce phi2-shape-h200`
#   call 4  bash tools/device/regenerate-1gpu.sh 4 RECORD   carry .whl .device-data .device-carry
#           the same ladder at micro-batch 32, appended to call 1's record (put it at .device-carry/bench/RECORD)
#   call 5  bash tools/device/regenerate-1gpu.sh 5   carry .whl .device-data
#           the Phi-2-shape seed study (3 seeds)
set -o pipefail
[ -n "$OUT" ] || { echo "regenerate-1gpu.sh: OUT is not set (fix: the folder that comes back from the machine)" >&2; exit 2; }
R=tools/device/run.sh
BACK=$OUT
export OUT=/tmp/regen
mkdir -p "$OUT/logs"
pack() { (cd "$OUT" && tar czf "$BACK/back.new.tar.gz" $(ls -d results logs bench scale 2>/dev/null) \
  && tar tzf "$BACK/back.new.tar.gz" > /dev/null && mv "$BACK/back.new.tar.gz" "$BACK/back.tar.gz" \
  && ls -l "$BACK/back.tar.gz"); }
# The ladder without its FlexAttention lines (flex, stacked): measured in benchmarks/results/probes, they cost the
# most device time of any line.
LADDER=eager,packed,graphs,host-read,default,bf16-norms,compile,padded,compile-bf16-norms
bench() {
  local limit=$1; shift
  mkdir -p "$OUT/bench"
  NLI_CACHE=/tmp/nli-cache-bench timeout "$limit" python3 benchmarks/bench.py configs/phi2-shape-h200.yaml \
    --set tokenizer.source=local --set tokenizer.name=.device-data/smollm2-tokenizer --epochs 3 "$@" \
    --out "$OUT/bench" 2>&1 | grep --line-buffered -v "it/s\]\|step/s\]\|batch/s\]" >> "$OUT/logs/bench.log"
  echo "=== bench: exit ${PIPESTATUS[0]}"; grep "^==\|^wrote\|^Target" "$OUT/logs/bench.log" | tail -40
}
source tools/device/setup.sh || exit 2
set +e
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
case "$1" in
  1) bench 560 --ladder "$LADDER" --micro-batches 8 --fp16-cap-gib 15
     pack ;;
  2) C=configs/smollm2-snli-offline.yaml
     LIMIT=300 bash $R smollm2-tune-run 0 tune $C configs/smollm2-tuning.yaml --then-run; pack
     LIMIT=280 bash $R smollm2-seeds 0 run $C --seeds 0-4 --tuned; pack
     LIMIT=150 bash $R reproduce-smollm2 0 reproduce smollm2-snli-offline; pack ;;
  3) LIMIT=150 bash $R phi2-shape-h200 0 run configs/phi2-shape-h200.yaml --stages data,params,train
     LIMIT=150 bash $R phi2-shape-t4budget 0 run configs/phi2-shape-t4budget.yaml --stages data,params,train; pack
     rm -rf .cache/snli-100k /tmp/scale-work
     python3 benchmarks/scale.py --make-data .cache/snli-100k --rows 100000
     timeout 330 python3 benchmarks/scale.py --resume-check configs/smollm2-snli-100k.yaml --kill-after-step 1000 \
       --work /tmp/scale-work --out "$OUT/scale"
     echo "=== scale: exit $?"
     mkdir -p "$OUT/scale" && cp -r /tmp/scale-work/results /tmp/scale-work/attempt*.log "$OUT/scale/" 2>/dev/null; pack
     LIMIT=150 bash $R reproduce-phi2 0 reproduce phi2-shape-h200; pack ;;
  4) [ -f ".device-carry/bench/$2" ] || { echo "regenerate-1gpu.sh 4: no .device-carry/bench/$2" >&2; exit 2; }
     bench 560 --ladder "$LADDER" --micro-batches 32 --no-agreement --append ".device-carry/bench/$2"
     pack ;;
  5) LIMIT=300 bash $R phi2-shape-seeds 0 run configs/phi2-shape-h200.yaml --stages data,params,train --seeds 0-2
     pack ;;
  *) echo "usage: regenerate-1gpu.sh 1|2|3|4 RECORD|5" >&2; exit 2 ;;
esac
