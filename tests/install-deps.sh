#!/usr/bin/env bash
# Installs what rstack's build and test suite need on Debian 12 (idempotent).
# Rust itself is expected to be installed already (rustup).
#
#   tests/install-deps.sh            everything the suite needs
#   tests/install-deps.sh --demo     only what tests/demo/run.sh needs
#
# It first asks apt to *simulate* installing the whole list (`apt-get install
# -s`), so a set that cannot resolve fails here, with apt's own message,
# before any build. A machine may carry a newer package than its configured
# repositories offer (a CI image ships a backported qemu-utils 10.0 whose
# `Breaks: qemu-system-common (<< 8.0)` rules out bookworm's QEMU): when such
# an installed package is what apt's resolver trips over, it is pinned to the
# newest version the repositories do offer (`PKG=VERSION --allow-downgrades`)
# so the set is consistent, and that is said on stderr.
set -euo pipefail
pkgs=(
  build-essential pkg-config libseccomp-dev   # libcontainer's seccomp support
  docker-registry skopeo apache2-utils          # local registry, pushing fixtures, htpasswd
  busybox-static                                # fixture images
  nftables iproute2 iptables                    # networking
  jq curl procps util-linux openssl             # test helpers (openssl: the e2e token server)
)
# `--demo` (tests/demo/run.sh): only the packages above; the suite also needs these
[ "${1:-}" = --demo ] || pkgs+=(
  qemu-system-x86 kmod cpio xz-utils            # vagrant/qemu-run: the cgroup v2 test VM
  vagrant vagrant-libvirt                       # `vagrant validate` of vagrant/Vagrantfile (needs a provider plugin)
  debootstrap                                   # pull benchmark image (tests/src/bin/bench.rs)
  docker.io                                     # e2e: rstack beside a real dockerd (own data root)
  python3-venv                                  # kubernetes-validate (below), in a venv of its own
)

say() { echo "install-deps: $*" >&2; }

# kubernetes-validate (PyPI; the Kubernetes API schemas ship in the package,
# so it validates offline): the e2e kube trials check generated manifests
# with it. In a venv (Debian's pip refuses system-wide installs), linked
# onto PATH; pinned, so the Kubernetes versions it knows change on purpose.
KV_VERSION=1.37.0
KV_VENV=/opt/kubernetes-validate
install_kubernetes_validate() {
  [ "${1:-}" = --demo ] && return 0
  if [ "$("$KV_VENV/bin/kubernetes-validate" --version 2>/dev/null)" != "$KV_VERSION" ]; then
    say "installing kubernetes-validate $KV_VERSION in $KV_VENV"
    rm -rf "$KV_VENV"
    python3 -m venv "$KV_VENV"
    "$KV_VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KV_VERSION"
  fi
  ln -sf "$KV_VENV/bin/kubernetes-validate" /usr/local/bin/kubernetes-validate
  kubernetes-validate --version >/dev/null
}

installed_version() { dpkg-query -W -f='${Status}\t${Version}' "$1" 2>/dev/null | awk -F'\t' '$1 ~ /ok installed/ {print $2}'; }

# The newest version of $1 that a configured repository offers ("" if none).
repo_version() {
  apt-cache madison "$1" 2>/dev/null | awk -F'|' '$3 !~ /dpkg\/status/ {gsub(/ /, "", $2); print $2; exit}'
}

missing=()
for p in "${pkgs[@]}"; do
  [ -n "$(installed_version "$p")" ] || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  install_kubernetes_validate "${1:-}"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
echo "installing: ${missing[*]}"
apt-get update -qq

# Simulate, and while apt names an installed package that is not from any
# configured repository as the cause (`PKG : Breaks|Depends|Conflicts: ...`),
# pin it to the repositories' version and try again.
pins=()
extra=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for _ in 1 2 3 4 5; do
  if apt-get install -s --no-install-recommends "${extra[@]}" "${missing[@]}" "${pins[@]}" >"$log" 2>&1; then
    ok=1
    break
  fi
  ok=0
  changed=0
  while read -r culprit; do
    have=$(installed_version "$culprit")
    [ -n "$have" ] || continue
    want=$(repo_version "$culprit")
    if [ -z "$want" ] || [ "$want" = "$have" ]; then
      continue
    fi
    case " ${pins[*]} " in *" $culprit="*) continue ;; esac
    say "$culprit $have is installed but no configured repository offers it, and apt says it conflicts with what is to be installed"
    say "  -> installing the repositories' $culprit=$want with them so the set is consistent"
    pins+=("$culprit=$want")
    extra=(--allow-downgrades)
    changed=1
  done < <(sed -n 's/^ *\([a-z0-9][a-z0-9.+-]*\) : \(Breaks\|Depends\|Conflicts\|PreDepends\|Pre-Depends\):.*/\1/p' "$log" | sort -u)
  [ "$changed" = 1 ] || break
done
if [ "$ok" != 1 ]; then
  cat "$log" >&2
  say "apt cannot install: ${missing[*]} (its message is above; the packages it names after 'unmet dependencies' are the cause)"
  exit 1
fi
apt-get install -y -qq --no-install-recommends "${extra[@]}" "${missing[@]}" "${pins[@]}"
install_kubernetes_validate "${1:-}"
