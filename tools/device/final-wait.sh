#!/usr/bin/env bash
# Final GPU session, calls 3...: wait (up to WAIT seconds) for the benchmark and GPU 1's runs, start the 2-GPU
# runs when both are done, and pack what exists into $OUT every time (results, logs, the benchmark record), so
# that nothing is lost if the session ends early. Call again until it prints "all done".
# Call: WAIT=540 source tools/device/final-wait.sh   with carry [.device-data]
set -o pipefail
cd /tmp/final/repo
end=$((SECONDS + ${WAIT:-540}))
while [ $SECONDS -lt $end ]; do
  [ -f /tmp/final/2gpu.done ] && break
  if [ -f /tmp/final/gpu1.done ] && ! pgrep -f benchmarks/bench.py > /dev/null && [ ! -f /tmp/final/2gpu.started ]; then
    touch /tmp/final/2gpu.started
    setsid nohup bash tools/device/final-2gpu.sh > /tmp/final/logs/2gpu.log 2>&1 < /dev/null &
  fi
  sleep 10
done
cd /tmp/final && tar czf $OUT/results.tar.gz results 2>/dev/null; tar czf $OUT/logs.tar.gz logs; cp bench/*.json $OUT/ 2>/dev/null
for f in logs/*.log; do echo "== $f"; grep -v "it/s\]\|step/s\]\|batch/s\]" $f | tail -4; done
ls /tmp/final/*.done 2>/dev/null; [ -f /tmp/final/2gpu.done ] && echo "all done"
nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv,noheader
true
