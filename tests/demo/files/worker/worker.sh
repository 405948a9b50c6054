#!/bin/sh
# The demo's worker: every $INTERVAL seconds it reads the page counter that
# the web service keeps in the cache and leaves a timestamp there. It talks
# to the cache by its service name. PID 1 has no default signal actions, so
# SIGTERM is trapped (and sleep runs in the background so the trap runs at
# once) to let `rstack down` stop it without waiting for the grace period.
trap 'echo "worker: stopping"; exit 0' TERM INT
tick=0
while :; do
  tick=$((tick + 1))
  if hits=$(redis-cli -h cache GET hits 2>&1); then
    redis-cli -h cache SET worker:last "$(date -u +%H:%M:%S)" >/dev/null
    echo "worker: tick $tick, the page has been served ${hits:-0} times"
  else
    echo "worker: tick $tick, cache unreachable: $hits"
  fi
  sleep "${INTERVAL:-5}" &
  wait $!
done
