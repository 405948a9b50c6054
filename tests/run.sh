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
export CARGO_TERM_COLOR=never
echo "== rustfmt"
cargo fmt --all --check
echo "== clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== build"
cargo build --workspace --all-targets
echo "== unit and privileged tests"
cargo test --workspace --exclude rstack-e2e
echo "== end-to-end tests"
RSTACK_BIN="$(pwd)/target/debug/rstack" cargo test -p rstack-e2e
