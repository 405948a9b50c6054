#!/usr/bin/env bash
# Docker's figure beside rstack's healthcheck cost (called by run.sh, in
# its network namespace):
#   tests/bench/docker_probes.sh IMAGE SECONDS WORKDIR
# Starts Debian's dockerd with its own data/exec roots under WORKDIR, in a
# cgroup of its own below this process's (so the CPU of dockerd,
# containerd, the shims, runc and every container is one counter), runs 10
# containers with `--health-cmd true --health-interval 1s`, and prints
# their total CPU over SECONDS as a share of one core. Everything it made
# is removed at the end; dockerd is stopped by its pid.
set -euo pipefail
image=${1:?usage: docker_probes.sh IMAGE SECONDS WORKDIR}
secs=${2:?}
work=${3:?}
command -v dockerd > /dev/null || { echo "(dockerd is not installed: no docker figure)"; exit 0; }
mkdir -p "$work"
now() { date +%s%N; }

# our own cgroup (cpuacct on v1/hybrid, the unified one on v2)
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  own=$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup)
  cg=/sys/fs/cgroup$own/rstack-bench-docker
  usage() { awk '/^usage_usec/ {print $2 * 1000}' "$cg/cpu.stat"; }
else
  own=$(awk -F: '$2 ~ /(^|,)cpuacct(,|$)/ {print $3}' /proc/self/cgroup)
  cg=/sys/fs/cgroup/cpuacct$own/rstack-bench-docker
  usage() { cat "$cg/cpuacct.usage"; }
fi
mkdir "$cg"
sock=$work/docker.sock
d() { docker --host "unix://$sock" "$@"; }
dockerd_pid=
cleanup() {
  if [ -n "$dockerd_pid" ]; then
    d ps -aq 2>/dev/null | xargs -r docker --host "unix://$sock" rm -f > /dev/null 2>&1 || true
    kill "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
  fi
  # containerd and its shims leave with dockerd; wait for the cgroup to empty
  for _ in $(seq 50); do [ -s "$cg/cgroup.procs" ] || break; sleep 0.2; done
  find "$cg" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
  rmdir "$cg" 2>/dev/null || echo "docker_probes.sh: could not remove $cg" >&2
  rm -rf "$work"
}
trap cleanup EXIT

# dockerd in our cgroup, its containers below it
(
  echo 0 > "$cg/cgroup.procs"
  exec dockerd --data-root="$work/data" --exec-root="$work/exec" --pidfile="$work/dockerd.pid" \
    --host="unix://$sock" --storage-driver=overlay2 --log-level=warn \
    --cgroup-parent="${own%/}/rstack-bench-docker" --iptables=false --ip6tables=false --bridge=none
) > "$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 300); do d version > /dev/null 2>&1 && break; sleep 0.3; done
d version > /dev/null 2>&1 || { echo "dockerd did not start:"; tail -5 "$work/dockerd.log"; exit 1; }
d pull -q "$image" > /dev/null
for i in $(seq 10); do
  d run -d --network none --name "probe$i" --health-cmd true --health-interval 1s --health-retries 3 \
    "$image" sh -c 'trap "exit 0" TERM; sleep 3600 & wait' > /dev/null
done
for _ in $(seq 300); do
  [ "$(d ps --filter health=healthy -q | wc -l)" = 10 ] && break
  sleep 0.2
done
sleep 2   # the steady state, as for rstack's figure
c0=$(usage); t0=$(now)
sleep "$secs"
c1=$(usage); t1=$(now)
awk -v c="$((c1 - c0))" -v t="$((t1 - t0))" 'BEGIN {
  printf "docker (dockerd + containerd + shims + probes): %.2f %% of one core (%.0f ms CPU in %.0f s), ~%.2f ms CPU a probe\n", 100 * c / t, c / 1e6, t / 1e9, c / 1e6 / (10 * t / 1e9)
}'
