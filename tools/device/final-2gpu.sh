#!/usr/bin/env bash
# Started detached by final-wait.sh once GPU 0 and GPU 1 are free: the 2-GPU runs (accelerate launch, NCCL;
# NVLink multicast stays off as the machine sets it), from /tmp/final/repo.
source tools/device/setup.sh
set +e
R="--set output.results_dir=/tmp/final/results --set output.checkpoint_dir=/tmp/final/ckpt"
quiet() { grep --line-buffered -v "it/s\]\|step/s\]\|batch/s\]"; }
L="python3 -m accelerate.commands.launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no -m"
timeout 400 $L pipeline run configs/smollm2-snli-offline-2gpu.yaml $R $(cat /tmp/final/chosen) 2>&1 | quiet > /tmp/final/logs/smollm2-2gpu.log
timeout 500 $L pipeline run configs/phi2-shape-h200x2.yaml $R --stages data,params,train 2>&1 | quiet > /tmp/final/logs/phi2-shape-h200x2.log
touch /tmp/final/2gpu.done
