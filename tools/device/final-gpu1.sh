#!/usr/bin/env bash
# Started detached by final-2.sh, in /tmp/final/repo, on GPU 1: tune SmolLM2 on validation rows, its run with
# the chosen trial, the Phi-2-shape runs (bf16; fp16 under a 15 GiB cap). Results under /tmp/final/results.
source tools/device/setup.sh
set +e  # a failed step must not stop the steps after it: each is timed out and logged
export CUDA_VISIBLE_DEVICES=1
R="--set output.results_dir=/tmp/final/results --set output.checkpoint_dir=/tmp/final/ckpt"
quiet() { grep --line-buffered -v "it/s\]\|step/s\]\|batch/s\]"; }
C=configs/smollm2-snli-offline.yaml
timeout 900 python3 -m pipeline tune $C configs/smollm2-tuning.yaml $R 2>&1 | quiet > /tmp/final/logs/smollm2-tune.log
CHOSEN=$(python3 -m pipeline tune $C configs/smollm2-tuning.yaml $R --print-overrides)
echo "$CHOSEN" > /tmp/final/chosen; echo "chosen: $CHOSEN"
timeout 400 python3 -m pipeline run $C $R $CHOSEN 2>&1 | quiet > /tmp/final/logs/smollm2-run.log
timeout 500 python3 -m pipeline run configs/phi2-shape-h200.yaml $R --stages data,params,train 2>&1 | quiet > /tmp/final/logs/phi2-shape-h200.log
timeout 500 python3 -m pipeline run configs/phi2-shape-t4budget.yaml $R --stages data,params,train 2>&1 | quiet > /tmp/final/logs/phi2-shape-t4budget.log
touch /tmp/final/gpu1.done
