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
# records and the scale record into benchmarks/results/; `python -m pipeline verify`.
#
# Steps, by name; one call runs one or more (`regenerate-1gpu.sh scale append 200 graphs,host-read 8`). Carry
# .whl .device-data always; the SmolLM2 steps need the wheel: .whl-smol/part-aa in the call before,
# .whl-smol/part-ab .whl-smol/sha256 in theirs.
#   smollm2                 SmolLM2: the tune, then the run with its choice; the 5-seed study; `reproduce`
#                           (carry .device-carry too)                                             ~600 s, SmolLM2
#   phi2                    Phi-2's shape: bfloat16, then float16 under a 15 GiB cap; `reproduce`  ~250 s
#   seeds                   the Phi-2-shape seed study (3 seeds)                                  ~250 s
#   scale                   the 100k-row SmolLM2 run killed mid-epoch and resumed                 ~400 s, SmolLM2
#   bench-default           the default-only record: --ladder default at micro-batches 8 and 32, the loss
#                           agreement and float16 under a 15 GiB cap                              ~450 s
#   append LIMIT LINES MBS  more ladder lines (keys, see bench.py --ladder) at micro-batches MBS, added to the
#                           newest *-ladder.json in /tmp/regen/bench (this machine's earlier call) or
#                           .device-carry/bench/ (a record carried back in), else the newest record there, for
#                           at most LIMIT s. The eager lines take ~60 s at micro-batch 8, the graph lines ~40 s,
#                           the compiled ones longer.
#                           A record not yet continued is copied to <name>-ladder.json first: the full ladder
#                           continues the copy, and the default-only record stays as its one command made it.
set -o pipefail
[ -n "$OUT" ] || { echo "regenerate-1gpu.sh: OUT is not set (fix: the folder that comes back from the machine)" >&2; exit 2; }
R=tools/device/run.sh
BACK=$OUT
export OUT=/tmp/regen
mkdir -p "$OUT/logs"
pack() { (cd "$OUT" && tar czf "$BACK/back.new.tar.gz" $(ls -d results logs bench scale 2>/dev/null) \
  && tar tzf "$BACK/back.new.tar.gz" > /dev/null && mv "$BACK/back.new.tar.gz" "$BACK/back.tar.gz" \
  && ls -l "$BACK/back.tar.gz"); }
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
run_step() {
  case "$1" in
    smollm2) C=configs/smollm2-snli-offline.yaml
       LIMIT=300 bash $R smollm2-tune-run 0 tune $C configs/smollm2-tuning.yaml --then-run; pack
       LIMIT=280 bash $R smollm2-seeds 0 run $C --seeds 0-4 --tuned; pack
       LIMIT=150 bash $R reproduce-smollm2 0 reproduce smollm2-snli-offline; pack ;;
    phi2) LIMIT=150 bash $R phi2-shape-h200 0 run configs/phi2-shape-h200.yaml --stages data,params,train
       LIMIT=150 bash $R phi2-shape-t4budget 0 run configs/phi2-shape-t4budget.yaml --stages data,params,train; pack
       LIMIT=150 bash $R reproduce-phi2 0 reproduce phi2-shape-h200; pack ;;
    seeds) LIMIT=300 bash $R phi2-shape-seeds 0 run configs/phi2-shape-h200.yaml --stages data,params,train --seeds 0-2
       pack ;;
    scale) rm -rf .cache/snli-100k /tmp/scale-work
       python3 benchmarks/scale.py --make-data .cache/snli-100k --rows 100000
       timeout 330 python3 benchmarks/scale.py --resume-check configs/smollm2-snli-100k.yaml --kill-after-step 1000 \
         --work /tmp/scale-work --out "$OUT/scale"
       echo "=== scale: exit $?"
       mkdir -p "$OUT/scale" && cp -r /tmp/scale-work/results /tmp/scale-work/attempt*.log "$OUT/scale/" 2>/dev/null; pack ;;
    bench-default) bench 540 --ladder default --micro-batches 8,32 --fp16-cap-gib 15; pack ;;
    *) echo "regenerate-1gpu.sh: unknown step $1 (fix: smollm2, phi2, seeds, scale, bench-default, append)" >&2
       return 2 ;;
  esac
}
while [ $# -gt 0 ]; do
  if [ "$1" = append ]; then
    [ $# -ge 4 ] || { echo "regenerate-1gpu.sh append: LIMIT LINES MBS (fix: e.g. append 200 graphs,host-read 8)" >&2; exit 2; }
    # a ladder being continued first (never the default-only record it was copied from), then the newest record
    rec=$(ls -t "$OUT"/bench/*-ladder.json .device-carry/bench/*-ladder.json 2>/dev/null | head -1)
    [ -n "$rec" ] || rec=$(ls -t "$OUT"/bench/*.json .device-carry/bench/*.json 2>/dev/null | head -1)
    [ -n "$rec" ] || { echo "regenerate-1gpu.sh append: no record in $OUT/bench or .device-carry/bench" >&2; exit 2; }
    case "$rec" in  # the full ladder continues a copy: the default-only record stays as one command made it
      *-ladder.json) ;;
      *) mkdir -p "$OUT/bench"; cp "$rec" "$OUT/bench/$(basename "${rec%.json}")-ladder.json"
         rec="$OUT/bench/$(basename "${rec%.json}")-ladder.json" ;;
    esac
    echo "=== append to $rec: $3 at $4"
    bench "$2" --ladder "$3" --micro-batches "$4" --no-agreement --append "$rec"; pack; shift 4
  else
    run_step "$1" || exit 2; shift
  fi
done
