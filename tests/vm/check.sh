#!/usr/bin/env bash
# The kernel features rstack's cgroup v2 tests rely on, checked inside the VM
# of vagrant/qemu-run (or on any pure cgroup v2 host, as root):
#
#   vagrant/qemu-run -- tests/vm/check.sh
#
# Prints one PASS/FAIL line per check; exits 1 if any failed.
set -uo pipefail
[ "$(id -u)" = 0 ] || { echo "check.sh: run as root" >&2; exit 2; }
failed=0
check() {  # NAME COMMAND...
  local name=$1 t0=$SECONDS; shift
  if out=$("$@" 2>&1); then echo "PASS $name ($((SECONDS - t0))s)"; else echo "FAIL $name: ${out//$'\n'/ | }"; failed=1; fi
}
CG=/sys/fs/cgroup
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "kernel $(uname -r); controllers: $(cat $CG/cgroup.controllers); enabled for children: $(cat $CG/cgroup.subtree_control)"

check "cgroup2 at $CG" test "$(stat -fc %T $CG)" = cgroup2fs
check "no cgroup v1 hierarchy" bash -c '! grep -qw cgroup /proc/mounts || ! awk "\$3 == \"cgroup\"" /proc/mounts | grep -q .'
for c in cpu memory pids; do
  check "$c controller enabled for children" grep -qw $c $CG/cgroup.subtree_control
done

# memory.max: a process that allocates past it (tail keeps its last 80M) is OOM-killed, memory.events counts it
oom() {
  local g=$CG/check-oom
  mkdir $g && echo 32M > $g/memory.max && echo 0 > $g/memory.swap.max
  bash -c "echo 0 > $g/cgroup.procs; head -c 100M /dev/zero | tail -c 80M >/dev/null"
  local rc=$? kills
  kills=$(awk '$1 == "oom_kill" {print $2}' $g/memory.events)
  rmdir $g
  [ $rc -ne 0 ] && [ "${kills:-0}" -ge 1 ] || { echo "exit $rc, oom_kill ${kills:-?}"; return 1; }
}
check "memory.max OOM kill shows in memory.events" oom

# cpu.max: a busy loop under a 20% quota gets throttled
throttle() {
  local g=$CG/check-cpu n
  mkdir $g && echo "20000 100000" > $g/cpu.max
  timeout 1 bash -c "echo 0 > $g/cgroup.procs; while :; do :; done"
  n=$(awk '$1 == "nr_throttled" {print $2}' $g/cpu.stat)
  rmdir $g
  [ "${n:-0}" -ge 1 ] || { echo "nr_throttled ${n:-?}"; return 1; }
}
check "cpu.max throttles (cpu.stat nr_throttled)" throttle

# pids.max: fork fails past the limit
pids() {
  local g=$CG/check-pids rc
  mkdir $g && echo 4 > $g/pids.max
  bash -c "echo 0 > $g/cgroup.procs; for i in 1 2 3 4 5 6; do sleep 2 & done; wait" 2>/dev/null
  rc=$(awk '$1 == "max" {print $2}' $g/pids.events)
  rmdir $g
  [ "${rc:-0}" -ge 1 ] || { echo "pids.events max ${rc:-?}"; return 1; }
}
check "pids.max refuses forks (pids.events)" pids

# a nested, delegated cgroup with controllers enabled on the way
nested() {
  mkdir -p $CG/check-nest/a && echo "+cpu +memory +pids" > $CG/check-nest/cgroup.subtree_control \
    && echo "50000 100000" > $CG/check-nest/a/cpu.max && echo 64M > $CG/check-nest/a/memory.max
  local rc=$?
  rmdir $CG/check-nest/a $CG/check-nest
  return $rc
}
check "nested cgroup with cpu.max and memory.max" nested

# overlayfs with a tmpfs upper (as rstack's container root), and pivot_root into it
overlay() {
  mkdir -p $T/lower/bin $T/upper $T/work $T/merged && cp /bin/busybox $T/lower/bin/ || return 1
  mount -t overlay overlay -o lowerdir=$T/lower,upperdir=$T/upper,workdir=$T/work $T/merged || return 1
  unshare --mount --pid --fork --uts --ipc bash -c "
    mount --make-rprivate / && mount --bind $T/merged $T/merged && cd $T/merged && mkdir -p old proc \
    && pivot_root . old && /bin/busybox umount -l /old && /bin/busybox hostname ctr \
    && /bin/busybox mount -t proc proc /proc && [ \"\$(/bin/busybox hostname)\" = ctr ] \
    && /bin/busybox touch /written"
  local rc=$?
  umount $T/merged
  [ $rc = 0 ] && [ -f $T/upper/written ]
}
check "overlayfs + pivot_root in new namespaces" overlay

# two network namespaces on a bridge through veth pairs, and nft NAT rules
net() {
  local a=chk-a-$$ b=chk-b-$$ br=chkbr$$ rc
  ip netns add $a && ip netns add $b || return 1
  ip link add $br type bridge && ip link set $br up && ip addr add 10.231.0.1/24 dev $br
  for n in $a $b; do
    ip link add v$n type veth peer name eth0 netns $n
    ip link set v$n master $br up
    ip -n $n link set lo up; ip -n $n link set eth0 up
  done
  ip -n $a addr add 10.231.0.2/24 dev eth0
  ip -n $b addr add 10.231.0.3/24 dev eth0
  ip netns exec $a busybox ping -c 1 -W 3 10.231.0.3 && ip netns exec $b busybox ping -c 1 -W 3 10.231.0.1
  rc=$?
  ip link del $br; ip netns del $a; ip netns del $b
  return $rc
}
check "netns + veth + bridge (ping)" net
nft() {
  local n=chk-nft-$$ rc
  ip netns add $n || return 1
  ip netns exec $n nft -f - <<'EOF'
table ip chk {
  chain post { type nat hook postrouting priority srcnat; ip saddr 10.231.0.0/24 masquerade; }
  chain pre { type nat hook prerouting priority dstnat; tcp dport 8080 dnat to 10.231.0.2:80; }
}
EOF
  rc=$?
  ip netns del $n
  return $rc
}
check "nft NAT (masquerade, dnat) in a netns" nft

# an orphan that exits does not stay a zombie (PID 1 reaps)
reap() {
  local pid
  pid=$(bash -c 'sleep 0.5 & echo $!')
  sleep 2
  ! kill -0 "$pid" 2>/dev/null || { echo "orphan $pid still exists: $(cat /proc/$pid/stat 2>&1)"; return 1; }
}
check "orphans are reaped" reap

exit $failed
