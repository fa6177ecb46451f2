#!/usr/bin/env bash
# On the lent GPU machine (no network, no pip index): install the carried wheels (.whl/: bitsandbytes,
# gguf), lay SNLI where the configs expect it (../shared/data/snli, carried as .device-data/snli), and
# smoke-test the GPU code paths (bf16; fp16 under a 15 GiB cap) with the tiny config.
# Call: source tools/device/setup.sh   (from the repository root)
set -eo pipefail
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 NLI_CACHE=/tmp/nli-cache TRANSFORMERS_VERBOSITY=error
export PIPELINE_GIT_COMMIT="${PIPELINE_GIT_COMMIT:-$(cat .device-data/COMMIT 2>/dev/null || true)}"
if [ -d .whl ] && [ ! -d /tmp/site/bitsandbytes ]; then  # once per machine: a running benchmark uses it
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
if [ -d .device-data/snli ]; then mkdir -p ../shared/data && cp -r .device-data/snli ../shared/data/; fi
