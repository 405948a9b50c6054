#!/usr/bin/env bash
# Builds the demo's images from Debian packages and pushes them with skopeo:
#   tests/demo/images.sh REGISTRY [NAME...]    (e.g. 127.0.0.1:5117)
# No Docker and no rstack involved: each layer is a tar of a directory made
# here, written into an OCI layout with its config and manifest, then
# `skopeo copy`ed to REGISTRY/demo/<name>:1.
#
#   layer "base":  busybox-static (/bin/busybox + a symlink per applet),
#                  /etc/passwd, /etc/group, /tmp, /root
#   layer "redis": Debian's redis 7 (redis-tools, fetched with `apt-get
#                  download` and unpacked with `dpkg -x`, so nothing is
#                  installed or started on the host): redis-server and
#                  redis-cli plus every shared library `ldd` names
#   demo/busybox = base                        Cmd sh (tests/bench/run.sh)
#   demo/cache  = base + redis                  Cmd redis-server
#   demo/web    = base + redis + www            Cmd busybox httpd on :80 (under sh)
#   demo/worker = base + redis + worker.sh      Cmd /usr/local/bin/worker.sh
#   demo/python = base + python                 Cmd python3 (tests/bench/run.sh;
#                 made only when named: Debian's python3.11 and its stdlib)
# Layers are reproducible (sorted, mtime 0, owner 0), so a second run
# pushes nothing new.
#
#   tests/demo/images.sh --fetch [NAME...]   only download the Debian
#   packages NAME... need (for a caller that builds without network later)
set -euo pipefail
registry=${1:?usage: images.sh REGISTRY|--fetch [NAME...] (e.g. 127.0.0.1:5117)}
shift
names=${*:-busybox cache web worker}   # the images to make (default: all)
here=$(cd "$(dirname "$0")" && pwd)
state=${RSTACK_DEMO_DIR:-/var/tmp/rstack-demo}
work=$state/build
debs=${RSTACK_DEMO_DEBS:-$state/debs}   # kept: a second run needs no mirror
redis_debs=(redis-tools libjemalloc2 liblzf1 libatomic1)
py_debs=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib media-types
  libexpat1 zlib1g libffi8 libssl3 libbz2-1.0 liblzma5 libuuid1)
mkdir -p "$debs"

wanted() { case " $names " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
# download DEB... into $debs unless there already
download() {
  local missing=() p
  for p in "$@"; do ls "$debs/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} = 0 ] && return 0
  (cd "$debs" && apt-get download -q "${missing[@]}" 2>&1 |
    grep -v 'Download is performed unsandboxed' || true)
  for p in "${missing[@]}"; do
    ls "$debs/${p}_"*.deb >/dev/null 2>&1 ||
      { echo "images.sh: cannot download $p (is Debian's mirror reachable?)" >&2; exit 1; }
  done
}
if [ "$registry" = --fetch ]; then
  if wanted cache || wanted web || wanted worker; then download "${redis_debs[@]}"; fi
  if wanted python; then download "${py_debs[@]}"; fi
  exit 0
fi
rm -rf "$work"
mkdir -p "$work/blobs"

# --- base: busybox -----------------------------------------------------------
base=$work/rootfs/base
mkdir -p "$base"/{bin,etc,root,tmp,proc,sys,dev}
chmod 1777 "$base/tmp"
chmod 700 "$base/root"
cp /bin/busybox "$base/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$base/bin/$applet"
done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' > "$base/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' > "$base/etc/group"

# copy_libs ROOT BIN...: the shared libraries `ldd` names for BIN..., found
# in $work/debs/x first, into ROOT (on ld.so's default search path)
copy_libs() {
  local root=$1 libpath lib dest
  shift
  libpath=$(find "$work/debs/x" -name '*.so*' -printf '%h\n' | sort -u | paste -sd:)
  for bin in "$@"; do
    LD_LIBRARY_PATH=$libpath ldd "$bin" 2>/dev/null || true
  done | awk '/=> \// {print $3} /^\t\/.*ld-linux/ {print $1}' | sort -u > "$work/libs"
  while read -r lib; do
    case $lib in
      */ld-linux*) dest=$root/lib64 ;;
      *) dest=$root/lib/x86_64-linux-gnu ;;
    esac
    mkdir -p "$dest"
    [ -e "$dest/$(basename "$lib")" ] || cp -L "$lib" "$dest/$(basename "$lib")"
  done < "$work/libs"
}

# --- redis: from Debian's redis-tools -----------------------------------------
if wanted cache || wanted web || wanted worker; then
download "${redis_debs[@]}"
rm -rf "$work/debs/x"
mkdir -p "$work/debs/x"
for p in "${redis_debs[@]}"; do dpkg -x "$(ls "$debs/${p}_"*.deb | head -1)" "$work/debs/x"; done
redis=$work/rootfs/redis
mkdir -p "$redis/usr/bin" "$redis/data"
# Debian's redis-server is a symlink to redis-check-rdb: one binary that acts
# on argv[0]
cp "$work/debs/x/usr/bin/redis-check-rdb" "$redis/usr/bin/redis-server"
cp "$work/debs/x/usr/bin/redis-cli" "$redis/usr/bin/redis-cli"
copy_libs "$redis" "$redis/usr/bin/redis-server" "$redis/usr/bin/redis-cli"
fi

# --- python: Debian's python3.11 with its standard library ----------------------
if wanted python; then
download "${py_debs[@]}"
rm -rf "$work/debs/x"
mkdir -p "$work/debs/x"
for p in "${py_debs[@]}"; do dpkg -x "$(ls "$debs/${p}_"*.deb | head -1)" "$work/debs/x"; done
py=$work/rootfs/python
mkdir -p "$py/usr/bin" "$py/usr/lib" "$py/etc"
cp "$work/debs/x/usr/bin/python3.11" "$py/usr/bin/python3.11"
ln -s python3.11 "$py/usr/bin/python3"
cp -a "$work/debs/x/usr/lib/python3.11" "$py/usr/lib/python3.11"
cp "$work/debs/x/etc/mime.types" "$py/etc/mime.types"
copy_libs "$py" "$py/usr/bin/python3.11" "$py"/usr/lib/python3.11/lib-dynload/*.so
fi

# --- web and worker ------------------------------------------------------------
www=$work/rootfs/www
mkdir -p "$www"
cp -a "$here/files/web/www" "$www/www"
worker=$work/rootfs/worker
mkdir -p "$worker/usr/local/bin"
cp "$here/files/worker/worker.sh" "$worker/usr/local/bin/worker.sh"

# --- OCI layouts ----------------------------------------------------------------
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
# layer DIR -> sets LAYER_DIFF (tar digest), LAYER_DIGEST, LAYER_SIZE (gzip blob)
layer() {
  local dir=$1 tarfile=$work/layer.tar gz
  (cd "$dir" && tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --format=gnu -cf "$tarfile" $(ls -A))
  LAYER_DIFF=sha256:$(sha "$tarfile")
  gzip -n -6 -c "$tarfile" > "$work/layer.tar.gz"
  gz=$(sha "$work/layer.tar.gz")
  LAYER_DIGEST=sha256:$gz
  LAYER_SIZE=$(size "$work/layer.tar.gz")
  mv "$work/layer.tar.gz" "$work/blobs/$gz"
  rm -f "$tarfile"
}
declare -A DIFF DIGEST SIZE
for name in base redis www worker python; do
  [ -d "$work/rootfs/$name" ] || continue
  layer "$work/rootfs/$name"
  DIFF[$name]=$LAYER_DIFF DIGEST[$name]=$LAYER_DIGEST SIZE[$name]=$LAYER_SIZE
done

# image NAME CONFIG_JSON LAYER... : an OCI layout in $work/oci/NAME, pushed
image() {
  local name=$1 config=$2 layout=$work/oci/$1 cfg manifest l diffs layers
  shift 2
  wanted "$name" || return 0
  mkdir -p "$layout/blobs/sha256"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
  diffs=$(for l in "$@"; do echo "\"${DIFF[$l]}\""; done | paste -sd,)
  layers=$(for l in "$@"; do
    cp "$work/blobs/${DIGEST[$l]#sha256:}" "$layout/blobs/sha256/"
    printf '{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}\n' "${DIGEST[$l]}" "${SIZE[$l]}"
  done | paste -sd,)
  jq -cn --argjson c "$config" --argjson d "[$diffs]" \
    '{architecture:"amd64",os:"linux",created:"1970-01-01T00:00:00Z",
      config:({Env:["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]} + $c),
      rootfs:{type:"layers",diff_ids:$d}}' > "$work/config.json"
  cfg=$(sha "$work/config.json")
  cp "$work/config.json" "$layout/blobs/sha256/$cfg"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$cfg" "$(size "$work/config.json")" "$layers" > "$work/manifest.json"
  manifest=$(sha "$work/manifest.json")
  cp "$work/manifest.json" "$layout/blobs/sha256/$manifest"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}' \
    "$manifest" "$(size "$work/manifest.json")" > "$layout/index.json"
  skopeo copy --quiet --dest-tls-verify=false "oci:$layout:1" "docker://$registry/demo/$name:1"
  printf '  %-28s %s layers, %s KiB\n' "$registry/demo/$name:1" "$#" "$(du -sk "$layout/blobs" | cut -f1)"
}
image busybox '{"Cmd":["sh"]}' base
image cache '{"Cmd":["redis-server","--protected-mode","no","--dir","/data"],"ExposedPorts":{"6379/tcp":{}},"Volumes":{"/data":{}},"WorkingDir":"/data"}' base redis
# httpd installs no SIGTERM handler and PID 1 gets no default signal actions:
# sh as PID 1 exits on SIGTERM (taking httpd with it), so `down` is quick
image web '{"Cmd":["sh","-c","trap \"exit 0\" TERM; httpd -f -v -p 80 -h /www & wait"],"ExposedPorts":{"80/tcp":{}}}' base redis www
image worker '{"Cmd":["/usr/local/bin/worker.sh"]}' base redis worker
image python '{"Cmd":["python3"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","LANG=C.UTF-8"]}' base python
rm -rf "$work/blobs" "$work/rootfs"
