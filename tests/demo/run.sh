#!/usr/bin/env bash
# The rstack demo, in one command on a Debian 12 machine:
#   sudo tests/demo/run.sh         build rstack, start a local registry with
#                                  images made from Debian packages, and run
#                                  the stack of tests/demo/compose.yaml
#   sudo tests/demo/run.sh down    `rstack down -v` and stop the registry
# Running it again is fine: it reuses the registry and the build, pushes only
# what changed and `rstack up` leaves unchanged services running.
#
# Environment:
#   RSTACK                      use this rstack binary instead of building one
#   CARGO_TARGET_DIR            where cargo builds (default: <repo>/target)
#   RSTACK_DEMO_REGISTRY_PORT   the registry's port on 127.0.0.1 (default 5117)
#   RSTACK_DEMO_DIR             registry storage, pid and log (default /var/tmp/rstack-demo)
#   RSTACK_ROOT, RSTACK_RUN     rstack's state dirs (default /var/lib/rstack, /run/rstack)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
demo=$repo/tests/demo
state=${RSTACK_DEMO_DIR:-/var/tmp/rstack-demo}
port=${RSTACK_DEMO_REGISTRY_PORT:-5117}
export RSTACK_DEMO_REGISTRY=127.0.0.1:$port
target=${CARGO_TARGET_DIR:-$repo/target}
action=${1:-up}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'tests/demo/run.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "rstack creates namespaces, mounts and bridges: run it as root (sudo tests/demo/run.sh)"
case $action in up | down) ;; *) die "usage: run.sh [up|down]" ;; esac

# The rstack binary: $RSTACK, else the release build (made by `up`).
binary() {
  if [ -n "${RSTACK:-}" ]; then
    echo "$RSTACK"
  else
    echo "$target/release/rstack"
  fi
}

registry_pid() {
  local pid
  pid=$(cat "$state/registry.pid" 2>/dev/null) || return 1
  grep -qs docker-registry "/proc/$pid/cmdline" || return 1
  echo "$pid"
}

registry_up() {
  if registry_pid >/dev/null && curl -fsS -o /dev/null "http://$RSTACK_DEMO_REGISTRY/v2/"; then
    say "registry already running on $RSTACK_DEMO_REGISTRY (pid $(registry_pid))"
    return
  fi
  if ss -Hltn "sport = :$port" | grep -q .; then
    die "port $port is taken by another program: set RSTACK_DEMO_REGISTRY_PORT to a free port"
  fi
  mkdir -p "$state/registry"
  cat > "$state/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $state/registry
  delete:
    enabled: true
http:
  addr: $RSTACK_DEMO_REGISTRY
  secret: rstack-demo-not-secret
EOF
  # a new session, so it outlives this script and a Ctrl-C of it
  setsid docker-registry serve "$state/registry.yml" >> "$state/registry.log" 2>&1 < /dev/null &
  echo $! > "$state/registry.pid"
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://$RSTACK_DEMO_REGISTRY/v2/" 2>/dev/null && break
    registry_pid >/dev/null || die "docker-registry exited; see $state/registry.log"
    sleep 0.2
  done
  curl -fsS -o /dev/null "http://$RSTACK_DEMO_REGISTRY/v2/" || die "docker-registry does not answer; see $state/registry.log"
  say "registry started on $RSTACK_DEMO_REGISTRY (pid $(registry_pid), storage $state/registry, log $state/registry.log)"
}

registry_down() {
  local pid
  if pid=$(registry_pid); then
    kill "$pid"
    for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    say "registry stopped (pid $pid); its storage stays in $state (rm -rf it to reclaim the space)"
  else
    say "no demo registry running"
  fi
  rm -f "$state/registry.pid"
}

# Builds the release binary as the user who called sudo (their rustup and
# their checkout), else as root.
build() {
  local env='. "$HOME/.cargo/env" 2>/dev/null || true; command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2; exit 1; }; cd "$1" && CARGO_TARGET_DIR="$2" cargo build --release -p rstack'
  say "building rstack (release: the demo should show rstack as fast and small as it is; the first build takes a few minutes)"
  if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    sudo -u "$SUDO_USER" -H bash -c "$env" build "$repo" "$target"
  else
    bash -c "$env" build "$repo" "$target"
  fi
}

if [ "$action" = down ]; then
  bin=$(binary)
  if [ -x "$bin" ]; then
    say "rstack down -v"
    (cd "$demo" && "$bin" down -v)
  else
    say "no rstack binary at $bin: skipping rstack down"
  fi
  registry_down
  exit 0
fi

say "installing the Debian packages rstack and the demo need"
"$repo/tests/install-deps.sh" --demo
[ -n "${RSTACK:-}" ] || build
bin=$(binary)
[ -x "$bin" ] || die "no rstack binary at $bin"
mkdir -p "$state"
registry_up
say "building the demo images from Debian packages and pushing them with skopeo"
"$demo/images.sh" "$RSTACK_DEMO_REGISTRY" cache web worker
say "rstack up -d --wait (in $demo)"
cd "$demo"
"$bin" up -d --wait --wait-timeout 300 --pull always
echo
"$bin" ps
echo
say "the page (curl -s http://127.0.0.1:8080):"
curl -fsS http://127.0.0.1:8080/ || echo "(no answer)"
cat <<EOF

The stack runs in the background, supervised by one rstack process (no daemon).
Look at it:
  cd $demo
  sudo $bin ps              # services, health, ports
  curl http://127.0.0.1:8080      # web: counts visits in the cache
  sudo $bin logs -f         # all logs, following (Ctrl-C to leave)
  sudo $bin logs worker     # one service
  sudo $bin exec cache redis-cli GET hits
  sudo $bin exec web sh     # a shell in the web container
Stop it:
  sudo $bin down -v         # containers, network and the cache volume
  sudo $demo/run.sh down    # the same, and stop the demo registry
EOF
