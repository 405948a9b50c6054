#!/usr/bin/env bash
# The whole rstack test suite, exactly as CI runs it:
#   sudo tests/run.sh
# installs what it needs, then checks formatting and lints, runs the unit
# tests, the privileged tests and the end-to-end tests against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "tests/run.sh: the privileged and end-to-end tests need root: run it with sudo" >&2
  exit 1
fi
tests/install-deps.sh
# the e2e kube trials validate manifests with it: missing is a failure, never a skip
command -v kubernetes-validate >/dev/null || { echo "tests/run.sh: kubernetes-validate is not installed (tests/install-deps.sh)" >&2; exit 1; }
export CARGO_TERM_COLOR=never
echo "== rustfmt"
cargo fmt --all --check
echo "== clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== build"
cargo build --workspace --all-targets
echo "== unit and privileged tests"
cargo test --workspace --exclude rstack-e2e
# unit tests that need root (marked #[ignore] so a plain `cargo test` skips them)
cargo test -p rstack-stack --lib -- --ignored
echo "== end-to-end tests"
RSTACK_BIN="${CARGO_TARGET_DIR:-$(pwd)/target}/debug/rstack" cargo test -p rstack-e2e
echo "== cgroup v2 tests in a VM"
if grep -qsw cpu /sys/fs/cgroup/cgroup.controllers && grep -qsw memory /sys/fs/cgroup/cgroup.controllers; then
  echo "skipped: this host has cgroup v2 with cpu and memory, so the cgroup tests above ran on it"
else
  # this host's cgroups are v1/hybrid: the same host-built binaries, in a pure cgroup v2 VM
  vagrant/qemu-run -- tests/vm/check.sh
  vagrant/vm-test -p rstack-runtime --test privileged
  # end-to-end trials named *cgroup*: container limits and OOM, a stack's
  # deploy.resources in its cgroup files and in `stats`
  RSTACK_BIN="${CARGO_TARGET_DIR:-$(pwd)/target}/debug/rstack" \
    QEMU_RUN_OPTS="-m 3072" vagrant/vm-test -p rstack-e2e --test e2e -- cgroup
  # the containment trials (cgroup view, hostile paths, fds) on cgroup v2
  RSTACK_BIN="${CARGO_TARGET_DIR:-$(pwd)/target}/debug/rstack" \
    QEMU_RUN_OPTS="-m 3072" vagrant/vm-test -p rstack-e2e --test e2e -- security::
  # healthcheck probes joining a container's cgroup through cgroup.procs
  RSTACK_BIN="${CARGO_TARGET_DIR:-$(pwd)/target}/debug/rstack" \
    QEMU_RUN_OPTS="-m 3072" vagrant/vm-test -p rstack-e2e --test e2e -- probe::
fi
echo "== vagrant validate"
if command -v vagrant >/dev/null; then
  (cd vagrant && vagrant validate)
elif [ "${CI:-}" = true ]; then
  echo "vagrant is not installed: CI must have every prerequisite (tests/install-deps.sh)" >&2
  exit 1
else
  echo "skipped: vagrant is not installed (apt-get install vagrant vagrant-libvirt)"
fi
