#!/usr/bin/env bash
# Installs what tsbuild and its tests need on a fresh Debian bookworm machine: system packages, then npm ci
# (which compiles the TypeScript through the prepare script). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(runc docker.io docker-registry skopeo buildah umoci busybox-static apache2-utils iproute2 xz-utils bzip2 attr zstd wrk curl
  ceph-mon ceph-osd radosgw ceph-common redis-server redis-tools haproxy) # the last line: scale-out peers (scripts/scaleout.sh)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm run build --silent
fi
