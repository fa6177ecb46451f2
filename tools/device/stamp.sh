#!/usr/bin/env bash
# On the launching machine, before carrying the tree to a GPU machine: name the commit the runs will be made from
# (.device-data/COMMIT, read by tools/device/setup.sh). Refuses a tree with uncommitted changes: the results must
# come from code that is a commit of this repository (`python -m pipeline verify` checks it).
set -eo pipefail
cd "$(git rev-parse --show-toplevel)"
if [ -n "$(git status --porcelain --untracked-files=normal)" ]; then
  echo "stamp.sh: uncommitted changes (fix: commit them; the GPU machine gets this working tree)" >&2
  git status --short >&2; exit 2
fi
mkdir -p .device-data && git rev-parse HEAD > .device-data/COMMIT
echo "stamped $(cat .device-data/COMMIT)"
