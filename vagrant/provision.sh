#!/usr/bin/env bash
# Provisioning of the Vagrant VM (see vagrant/Vagrantfile); runs as root in
# the guest, with the repository rsynced to /rstack.
#
#   provision.sh setup   Debian packages, Rust (rustup, stable), a debug build
#   provision.sh test    the whole suite (tests/run.sh) in a systemd scope
#                        that has the cpu, memory and pids controllers
set -euo pipefail
SRC=${RSTACK_SRC:-/rstack}
export PATH=/root/.cargo/bin:$PATH
export DEBIAN_FRONTEND=noninteractive CARGO_TERM_COLOR=never

check_cgroup_v2() {
  if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
    echo "provision: /sys/fs/cgroup is not a pure cgroup v2 hierarchy; boot the box with" >&2
    echo "  systemd.unified_cgroup_hierarchy=1 (Debian 12's default)" >&2
    exit 1
  fi
  echo "cgroup v2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
}

setup() {
  check_cgroup_v2
  apt-get update -q
  apt-get install -y -q --no-install-recommends ca-certificates curl git
  "$SRC/tests/install-deps.sh"
  if ! command -v cargo >/dev/null; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
      | sh -s -- -y --profile minimal --default-toolchain stable -c rustfmt,clippy
  fi
  rustup --version
  cargo --version
  cd "$SRC"
  cargo build --workspace --all-targets
  echo "provision: built; run the suite with: vagrant provision --provision-with test"
}

test_suite() {
  check_cgroup_v2
  cd "$SRC"
  # systemd enables only memory and pids at the root by default. A delegated
  # scope in rstack.slice gets every controller (cpu included), enabled on
  # the whole path: rstack.slice's children can use cpu.max and cpu.weight,
  # whether rstack makes its cgroups under rstack.slice or under the
  # caller's own (delegated) cgroup.
  exec systemd-run --scope --quiet --collect --slice=rstack.slice \
    --unit="rstack-tests-$(date +%s)" -p Delegate=yes \
    -- bash -c '
      echo "cgroup: $(cat /proc/self/cgroup)"
      echo "delegated controllers: $(cat "/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)/cgroup.controllers")"
      exec tests/run.sh'
}

case "${1:-}" in
  setup) setup ;;
  test) test_suite ;;
  *) echo "usage: provision.sh setup|test" >&2; exit 2 ;;
esac
