#!/usr/bin/env bash
# GPU smoke test with the tiny config: bf16, then fp16 under a 15 GiB cap. Output under /tmp.
set -eo pipefail
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, transformers, peft, bitsandbytes, accelerate; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'peft', peft.__version__, 'bnb', bitsandbytes.__version__, 'accelerate', accelerate.__version__)"
common="--set output.results_dir=/tmp/smoke/r --set output.checkpoint_dir=/tmp/smoke/c --set runtime.device=cuda"
python3 -m pipeline run configs/tiny-cpu.yaml $common --set run=tiny-gpu-bf16
python3 -m pipeline run configs/tiny-cpu.yaml $common --set run=tiny-gpu-fp16 \
  --set quantization.compute_dtype=float16 --set runtime.gpu_memory_cap_gib=15
python3 -m pipeline status configs/tiny-cpu.yaml $common --set run=tiny-gpu-fp16
