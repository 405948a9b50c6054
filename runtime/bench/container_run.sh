#!/usr/bin/env bash
# Start-up cost of one container, printed as figures (not a test):
#   sudo runtime/bench/container_run.sh IMAGE [RUNS]
# the median wall time of RUNS (default 50) `rstack container run --rm
# --network none IMAGE true`
# and of RUNS `runc run` of `true` on a busybox rootfs built the same way as
# the e2e fixture image (/bin/busybox + applet links), and their ratio.
# IMAGE must be pullable or already in the store (e.g. 127.0.0.1:PORT/busybox).
# RSTACK (default: target/debug/rstack, else `rstack` on PATH), RSTACK_ROOT and
# RSTACK_RUN are honoured; a temp root is used when RSTACK_ROOT is unset.
set -euo pipefail
image=${1:?usage: container_run.sh IMAGE [RUNS]}
runs=${2:-50}
here=$(cd "$(dirname "$0")/../.." && pwd)
rstack=${RSTACK:-$here/target/debug/rstack}
[ -x "$rstack" ] || rstack=$(command -v rstack)
command -v runc >/dev/null || { echo "runc is not installed" >&2; exit 1; }
work=$(mktemp -d /var/tmp/rstack-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export RSTACK_ROOT=${RSTACK_ROOT:-$work/root} RSTACK_RUN=${RSTACK_RUN:-$work/run}

# median of the integers on stdin
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s%N; }

"$rstack" container run --rm --network none "$image" true >/dev/null   # pull once, warm caches
for _ in $(seq "$runs"); do
  t0=$(now); "$rstack" container run --rm --network none "$image" true; t1=$(now)
  echo $(((t1 - t0) / 1000))
done > "$work/rstack.us"

bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/etc" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/sys"
cp /bin/busybox "$bundle/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$a"; done
(cd "$bundle" && runc spec)
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"sh"/"true"/' "$bundle/config.json"
runc run --bundle "$bundle" bench-warm >/dev/null
for i in $(seq "$runs"); do
  t0=$(now); runc run --bundle "$bundle" "bench-$i"; t1=$(now)
  echo $(((t1 - t0) / 1000))
done > "$work/runc.us"

r=$(median < "$work/rstack.us"); c=$(median < "$work/runc.us")
awk -v r="$r" -v c="$c" -v n="$runs" -v img="$image" -v bin="$rstack" 'BEGIN {
  printf "rstack container run --rm --network none %s true: median %.1f ms over %d runs (%s)\n", img, r / 1000, n, bin
  printf "runc run (same busybox rootfs):      median %.1f ms over %d runs\n", c / 1000, n
  printf "ratio rstack/runc: %.2f\n", r / c
}'
# the closing table of tests/bench/run.sh
[ -z "${RSTACK_BENCH_TARGETS:-}" ] || awk -v r="$r" 'BEGIN {printf "container run --rm --network none busybox true, median|%.0f|25|ms\n", r / 1000}' >> "$RSTACK_BENCH_TARGETS"
