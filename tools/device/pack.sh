#!/usr/bin/env bash
# Pack results/<run>/ (the small tables and manifest the report reads) into $OUT for the trip back.
set -eo pipefail
for run in "$@"; do
  [ -d "results/$run" ] && tar czf "$OUT/$run.tar.gz" -C results "$run" && echo "packed results/$run"
done
