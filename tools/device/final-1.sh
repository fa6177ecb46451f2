#!/usr/bin/env bash
# Final GPU session, call 1 of 3 (nvidia-h200-x2). Keep the first half of the SmolLM2 wheel on the machine
# (one call carries at most 64 MiB) and start the benchmark on GPU 0, detached (setsid) so it outlives this
# call, from a private copy of the repository (the working tree is laid anew for every call).
# Call: source tools/device/final-1.sh   with carry [.whl, .device-data, .whl-smol/part-aa]
set -eo pipefail
source tools/device/setup.sh
mkdir -p /tmp/final/bench /tmp/final/logs
cp .whl-smol/part-aa /tmp/final/
rm -rf /tmp/final/repo && cp -r . /tmp/final/repo && rm -f /tmp/final/repo/.whl-smol/part-*
cd /tmp/final/repo
# its own model cache: the runs on GPU 1 build the same random Phi-2 folder at the same time otherwise
CUDA_VISIBLE_DEVICES=0 NLI_CACHE=/tmp/nli-cache-bench setsid nohup python3 benchmarks/bench.py \
  configs/phi2-shape-h200.yaml --set tokenizer.source=local --set tokenizer.name=.device-data/smollm2-tokenizer \
  --epochs 3 --fp16-cap-gib 15 --out /tmp/final/bench > /tmp/final/logs/bench.log 2>&1 < /dev/null &
sleep 45
grep -v "it/s\]\|step/s\]\|batch/s\]" /tmp/final/logs/bench.log | tail -5
nvidia-smi --query-gpu=index,name,memory.used,utilization.gpu --format=csv,noheader
