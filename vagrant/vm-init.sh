#!/bin/busybox sh
# vm-init.sh — PID 1 of the throwaway test VM that vagrant/qemu-run boots.
#
# qemu-run packs this script as /init into a small initramfs together with a
# static busybox and the modules needed to reach the 9p shares. It runs twice:
#
#   stage "initramfs" (/init): load the boot modules, build the real root on a
#     tmpfs, then switch_root into it. The root is the host's own /usr and /etc
#     (9p, read-only) under tmpfs overlays, so the host-built, dynamically
#     linked test binaries find exactly the libraries they were linked against;
#     the guest kernel's modules are one more overlay layer under /usr/lib/modules.
#     (pivot_root, which container runtimes use, refuses the initramfs itself as
#     the old root: hence a separate tmpfs root.)
#   stage "root" (/.qemu-run/init): mount a pure cgroup v2 hierarchy with the
#     cpu, memory and pids controllers enabled for children, run the command
#     from the control share, write its exit status back there and power off.
#
# The control share (9p tag "qrctl", a temp dir on the host) holds:
#   shares   "TAG MODE PATH" per host dir to mount (MODE ro|rw)
#   links    "NAME TARGET" per top-level symlink of the host root (bin -> usr/bin)
#   cmd      a bash script: cd, exports, exec COMMAND
#   cgroup   optional: cgroup path (below /sys/fs/cgroup) to run the command in
# and receives: status (exit code), ready/done (guest uptime at command
# start/end), error (why the VM could not run the command).

BB=/bin/busybox
[ -x $BB ] || BB=/.qemu-run/busybox
P9='trans=virtio,version=9p2000.L,msize=512000'

# with qemu-run -v: progress lines in the kernel log, with its timestamps
stamp() { [ -n "$VERBOSE" ] && echo "qemu-run init: $*" > /dev/kmsg; true; }

fail() {
  echo "qemu-run guest: $*" >&2
  [ -d /.qemu-run/ctl ] && echo "$*" >> /.qemu-run/ctl/error
  [ -d /newroot/.qemu-run/ctl ] && echo "$*" >> /newroot/.qemu-run/ctl/error
  $BB sync
  $BB poweroff -f
  $BB sleep 30
}

stage_initramfs() {
  export PATH=/bin
  $BB mkdir -p /proc /sys /dev /newroot
  $BB mount -t proc proc /proc
  $BB mount -t sysfs sysfs /sys
  $BB mount -t devtmpfs devtmpfs /dev
  exec </dev/console >/dev/console 2>&1
  VERBOSE=; $BB grep -qw qr.verbose /proc/cmdline && VERBOSE=1
  stamp "initramfs"
  while read -r m; do
    $BB insmod "/modules/$m" || fail "insmod $m failed"
  done < /modules/order
  stamp "boot modules loaded"

  $BB mount -t tmpfs -o mode=0755 root /newroot || fail "tmpfs root"
  R=/newroot Q=/newroot/.qemu-run
  $BB mkdir -p $Q/ctl $Q/usr $Q/etc $Q/kmods $Q/ovl/usr/upper $Q/ovl/usr/work \
    $Q/ovl/etc/upper $Q/ovl/etc/work
  $BB mount -t 9p -o "$P9,cache=none" qrctl $Q/ctl || fail "cannot mount the control share"
  $BB mount -t 9p -o "$P9,cache=loose,ro" qrusr $Q/usr || fail "cannot mount the host's /usr"
  $BB mount -t 9p -o "$P9,cache=loose,ro" qretc $Q/etc || fail "cannot mount the host's /etc"
  $BB mount -t 9p -o "$P9,cache=loose,ro" qrkmods $Q/kmods || fail "cannot mount the kernel modules"
  $BB mkdir -p $R/usr $R/etc
  $BB mount -t overlay -o "lowerdir=$Q/kmods:$Q/usr,upperdir=$Q/ovl/usr/upper,workdir=$Q/ovl/usr/work" \
    overlay $R/usr || fail "cannot mount the /usr overlay"
  $BB mount -t overlay -o "lowerdir=$Q/etc,upperdir=$Q/ovl/etc/upper,workdir=$Q/ovl/etc/work" \
    overlay $R/etc || fail "cannot mount the /etc overlay"
  while read -r name target; do
    $BB ln -s "$target" "$R/$name" || fail "cannot link /$name"
  done < $Q/ctl/links
  for d in proc sys dev run tmp var var/tmp var/lib var/cache var/log root home mnt opt srv media; do
    [ -e "$R/$d" ] || $BB mkdir -p "$R/$d"
  done
  $BB chmod 1777 $R/tmp $R/var/tmp
  $BB ln -s ../run $R/var/run
  $BB ln -s ../run/lock $R/var/lock
  $BB chmod 0700 $R/root
  while read -r tag mode path; do
    $BB mkdir -p "$R$path" || fail "cannot create mount point $path"
    $BB mount -t 9p -o "$P9,cache=mmap,$mode" "$tag" "$R$path" || fail "cannot mount $path"
  done < $Q/ctl/shares

  stamp "shares mounted"
  $BB cp $BB $Q/busybox && $BB cp /init $Q/init || fail "cannot install the init"
  $BB umount /proc /sys
  $BB mount --move /dev $R/dev
  exec $BB switch_root $R /.qemu-run/busybox sh /.qemu-run/init root
}

uptime_s() { $BB cut -d' ' -f1 /proc/uptime; }

stage_root() {
  export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin
  C=/.qemu-run/ctl
  $BB mount -t proc proc /proc
  VERBOSE=; $BB grep -qw qr.verbose /proc/cmdline && VERBOSE=1
  stamp "root"
  $BB mount -t sysfs sysfs /sys
  $BB mkdir -p /dev/pts /dev/shm /dev/mqueue
  $BB mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
  $BB mount -t tmpfs -o mode=1777 shm /dev/shm
  $BB mount -t mqueue mqueue /dev/mqueue
  $BB ln -sf /proc/self/fd /dev/fd
  $BB ln -sf /proc/self/fd/0 /dev/stdin
  $BB ln -sf /proc/self/fd/1 /dev/stdout
  $BB ln -sf /proc/self/fd/2 /dev/stderr
  $BB mount -t tmpfs -o mode=0755 run /run
  $BB mkdir -p -m 1777 /run/lock
  # shared propagation, as systemd sets it up on every host
  $BB mount --make-rshared /
  $BB mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
  # as systemd mounts it on a pure v2 host
  $BB mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup \
    || fail "cannot mount cgroup2 on /sys/fs/cgroup"
  [ -x /usr/sbin/modprobe ] || { $BB ln -s busybox /.qemu-run/modprobe; echo /.qemu-run/modprobe > /proc/sys/kernel/modprobe; }

  # every available controller for the children of the root cgroup
  cg=/sys/fs/cgroup
  for c in $($BB cat $cg/cgroup.controllers); do echo "+$c" > $cg/cgroup.subtree_control; done
  for c in cpu memory pids; do
    $BB grep -qw $c $cg/cgroup.subtree_control || fail "controller $c is not enabled in $cg/cgroup.subtree_control"
  done
  target=
  if [ -s $C/cgroup ]; then
    # a child cgroup for the command, with the controllers enabled on the way down
    read -r sub < $C/cgroup
    dir=$cg
    for part in $(echo "$sub" | $BB tr / ' '); do
      [ "$dir" = $cg ] || for c in $($BB cat $dir/cgroup.controllers); do echo "+$c" > $dir/cgroup.subtree_control; done
      dir=$dir/$part
      $BB mkdir -p $dir || fail "cannot create cgroup $dir"
    done
    target=$dir/cgroup.procs
  fi

  $BB hostname rstack-vm
  printf '127.0.0.1\tlocalhost\n127.0.1.1\trstack-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' > /etc/hosts
  echo rstack-vm > /etc/hostname
  $BB ip link set lo up

  # output: two virtio serial ports that the host copies to its stdout/stderr
  out='' err=''
  for _ in $($BB seq 100); do
    for p in /sys/class/virtio-ports/*; do
      [ -e "$p/name" ] || continue
      case $($BB cat $p/name) in
        qemu-run.stdout) out=/dev/${p##*/} ;;
        qemu-run.stderr) err=/dev/${p##*/} ;;
      esac
    done
    [ -c "$out" ] && [ -c "$err" ] && break
    $BB usleep 50000
  done
  [ -c "$out" ] && [ -c "$err" ] || fail "the output ports did not appear"

  stamp "starting the command"
  uptime_s > $C/ready
  (
    # "0" moves the writing process: this subshell, not PID 1
    [ -n "$target" ] && echo 0 > "$target"
    exec $BB env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb LANG=C.UTF-8 \
      /bin/bash $C/cmd
  ) </dev/null >"$out" 2>"$err" &
  cmd=$!
  # PID 1 reaps every orphan while it waits, so a daemon that exits does not
  # linger as a zombie that still answers kill -0
  wait $cmd
  rc=$?
  stamp "the command exited with status $rc"
  uptime_s > $C/done
  echo $rc > $C/status.tmp && $BB mv $C/status.tmp $C/status
  $BB sync
  $BB poweroff -f
  $BB sleep 30
}

case "${1:-initramfs}" in
  initramfs) stage_initramfs ;;
  root) stage_root ;;
  *) fail "unknown stage $1" ;;
esac
