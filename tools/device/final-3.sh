#!/usr/bin/env bash
# Final GPU session, call 3 of 3: both GPUs. The 2-GPU runs (accelerate launch, NCCL; NVLink multicast stays
# off as the machine sets it), then everything packed into $OUT: results folders, the benchmark record, logs.
# Call: source tools/device/final-3.sh   with carry [.whl, .device-data]
set -o pipefail
source tools/device/setup.sh
set +e  # a failed step must not stop the steps after it: each is timed out and logged
R="--set output.results_dir=/tmp/final/results --set output.checkpoint_dir=/tmp/final/ckpt"
quiet() { grep --line-buffered -v "it/s\]\|step/s\]\|batch/s\]"; }
for i in $(seq 60); do pgrep -f benchmarks/bench.py >/dev/null || break; sleep 5; done  # the benchmark first
L="python3 -m accelerate.commands.launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no -m"
timeout 200 $L pipeline run configs/smollm2-snli-offline-2gpu.yaml $R $(cat /tmp/final/chosen) 2>&1 | quiet | tee /tmp/final/logs/smollm2-2gpu.log | tail -8
timeout 240 $L pipeline run configs/phi2-shape-h200x2.yaml $R --stages data,params,train 2>&1 | quiet | tee /tmp/final/logs/phi2-shape-h200x2.log | tail -8
cd /tmp/final && tar czf $OUT/results.tar.gz results && tar czf $OUT/logs.tar.gz logs && cp bench/*.json $OUT/ 2>/dev/null
ls -la $OUT; du -sh /tmp/final/results/*
