#!/usr/bin/env bash
# Installs what rstack's build and test suite need on Debian 12 (idempotent).
# Rust itself is expected to be installed already (rustup).
set -euo pipefail
pkgs=(
  build-essential pkg-config libseccomp-dev   # libcontainer's seccomp support
  docker-registry skopeo apache2-utils          # local registry, pushing fixtures, htpasswd
  busybox-static                                # fixture images
  nftables iproute2 iptables                    # networking
  jq curl procps util-linux                     # test helpers
)
# `--demo` (tests/demo/run.sh): only the packages above; the suite also needs these
[ "${1:-}" = --demo ] || pkgs+=(
  qemu-system-x86 kmod cpio xz-utils            # vagrant/qemu-run: the cgroup v2 test VM
  vagrant vagrant-libvirt                       # `vagrant validate` of vagrant/Vagrantfile (needs a provider plugin)
  debootstrap                                   # pull benchmark image (tests/src/bin/bench.rs)
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
