#!/usr/bin/env bash
# Builds the two container images of a Snow cluster from binaries built on this machine, without
# pulling anything: each image is FROM scratch and holds only its programs, the shared libraries
# they load (found with ldd), a passwd entry for the unprivileged user `snow` (uid 10001) and an
# nsswitch.conf. No shell, no package manager, no compiler.
#
#   build-images.sh EPMD_BINARY NODE_PROGRAM [TAG]
#
#   snow-epmd:TAG   the daemon (entrypoint snow-epmd; its data in /var/lib/snow-epmd)
#   snow-node:TAG   the node program as /usr/local/bin/snow-node (entrypoint), plus the
#                   snow-epmd command line for probes (`snow-epmd lookup`, `ping`)
#
# Example, with the echo example as the node program:
#   cargo build --release -p snow-epmd -p snow-node-rt --examples
#   deploy/container/build-images.sh target/release/snow-epmd target/release/examples/echo 0.1.0
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 EPMD_BINARY NODE_PROGRAM [TAG]" >&2
  exit 2
fi
epmd_bin=$1
node_bin=$2
tag=${3:-latest}
here=$(cd "$(dirname "$0")" && pwd)
for bin in "$epmd_bin" "$node_bin"; do
  [ -x "$bin" ] || { echo "$0: $bin is not an executable file" >&2; exit 2; }
done

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT

# stage ROOTFS BINARY DEST: the binary (without debug information) and every library it loads.
stage() {
  local root=$1 bin=$2 dest=$3
  mkdir -p "$root$(dirname "$dest")"
  if command -v strip >/dev/null 2>&1; then
    strip -o "$root$dest" "$bin"
  else
    cp "$bin" "$root$dest"
  fi
  # ldd prints `name => /path (addr)` for libraries and `/path (addr)` for the loader.
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

base() {
  local root=$1
  mkdir -p "$root/etc" "$root/tmp"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nsnow:x:10001:10001:snow:/var/lib/snow-epmd:/sbin/nologin\n' > "$root/etc/passwd"
  printf 'root:x:0:\nsnow:x:10001:\n' > "$root/etc/group"
  printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
}

# The daemon's data directory, empty here; the Dockerfile gives it to the user snow.
mkdir -p "$context/epmd-data"
base "$context/epmd"
stage "$context/epmd" "$epmd_bin" /usr/local/bin/snow-epmd
base "$context/node"
stage "$context/node" "$node_bin" /usr/local/bin/snow-node
stage "$context/node" "$epmd_bin" /usr/local/bin/snow-epmd
cp "$here/Dockerfile.epmd" "$here/Dockerfile.node" "$context/"

docker build --quiet --pull=false -f "$context/Dockerfile.epmd" -t "snow-epmd:$tag" "$context" >/dev/null
docker build --quiet --pull=false -f "$context/Dockerfile.node" -t "snow-node:$tag" "$context" >/dev/null
echo "built snow-epmd:$tag and snow-node:$tag"
