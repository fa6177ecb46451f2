#!/usr/bin/env bash
# Run one pipeline command on a GPU machine and bring back its whole results folder in the same call.
#
#   bash tools/device/run.sh NAME GPUS pipeline-args...
#   e.g. bash tools/device/run.sh phi2-h200 0 run configs/phi2-shape-h200.yaml --stages data,params,train
#        bash tools/device/run.sh smollm2 0,1 tune configs/smollm2-snli-offline.yaml configs/smollm2-tuning.yaml --then-run
#        bash tools/device/run.sh repro 0 reproduce phi2-shape-h200 --allow-code-change
#
# The command gets `--set output.results_dir=$OUT/results`: the pipeline itself writes the manifest, every table and
# the tuning table into $OUT/results/<run>/, the folder that comes back (nothing is rebuilt from a log). Checkpoints
# stay on the machine ($CKPT, default /tmp/ckpt). The log goes to $OUT/logs/NAME.log (progress bars dropped).
# GPUS: the CUDA devices it may use; `run` over two or more is launched with accelerate (one process per GPU), `tune`
# spreads its trials over them, and so does `run --seeds` its seeds. A run that continues a committed run (its manifest's history of test evaluations)
# starts from a copy: put results/<run> under .device-carry/results/ and it is copied into $OUT/results first.
set -o pipefail
[ $# -ge 3 ] || { echo "usage: run.sh NAME GPUS pipeline-args..." >&2; exit 2; }
[ -n "$OUT" ] || { echo "run.sh: OUT is not set (fix: the folder that comes back from the machine)" >&2; exit 2; }
name=$1 gpus=$2; shift 2
source tools/device/setup.sh || exit 2
set +e  # setup.sh stops at its first failure; here the command's exit status is reported, then returned
mkdir -p "$OUT/results" "$OUT/logs"
for d in .device-carry/results/*/; do  # never over a folder this session's calls already made
  [ -d "$d" ] && [ ! -e "$OUT/results/$(basename "$d")" ] && cp -r "$d" "$OUT/results/"
done
sets=(--set "output.results_dir=$OUT/results" --set "output.checkpoint_dir=${CKPT:-/tmp/ckpt}")
if [ "$1" = reproduce ]; then  # run.sh NAME GPU reproduce RUN [--allow-code-change]: the committed run is copied into
  # $OUT/results and compared there, so its record (results/RUN.reproductions/) comes back beside it; the re-run's
  # own results and checkpoints stay on the machine
  [ -e "$OUT/results/$2" ] || cp -r "results/$2" "$OUT/results/"
  sets=(--results "$OUT/results" --out "${CKPT:-/tmp/ckpt}/reproduce-$2")
fi
n=$(echo "$gpus" | tr ',' '\n' | grep -c . || true)
seeds=0; for a in "$@"; do [ "$a" = --seeds ] && seeds=1; done  # a seed study spreads its seeds itself (--jobs)
if [ "$1" = run ] && [ "$n" -gt 1 ] && [ "$seeds" = 0 ]; then
  cmd=(python3 -m accelerate.commands.launch --multi_gpu --num_processes "$n" --num_machines 1 --mixed_precision no
       --dynamo_backend no -m pipeline "$@" "${sets[@]}")
else
  cmd=(python3 -m pipeline "$@" "${sets[@]}")
fi
echo "=== $name on GPU $gpus, commit $PIPELINE_GIT_COMMIT: ${cmd[*]}" | tee "$OUT/logs/$name.log"
start=$SECONDS
CUDA_VISIBLE_DEVICES=$gpus timeout "${LIMIT:-580}" "${cmd[@]}" 2>&1 | grep --line-buffered -v "it/s\]\|step/s\]\|batch/s\]" >> "$OUT/logs/$name.log"
code=${PIPESTATUS[0]}
echo "=== $name: exit $code after $((SECONDS - start)) s" | tee -a "$OUT/logs/$name.log"
tail -4 "$OUT/logs/$name.log" | head -3
exit "$code"
