#!/usr/bin/env bash
# Starts the services the end-to-end tests use, if they are not running yet:
#   dockerd on /var/run/docker.sock, loopback only (no bridge, no iptables), overlay2, with
#   `--registry-mirror http://127.0.0.1:5055`: docker.io pulls go to a mirror on that port first. Port 5055
#   is reserved for test/mirror-docker.test.ts, which runs tsbuild's mirror there; with nothing listening
#   docker falls back to docker.io as usual.
#   The scale-out peers (scripts/scaleout.sh): Ceph RGW (S3) and Redis on loopback, env in /tmp/scaleout/env;
#   haproxy installed. TSBUILD_SKIP_SCALEOUT=1 leaves them out (their tests then skip, or fail under CI).
# Registries (tsbuild's and distribution's) are started by the tests themselves on free loopback ports.
set -euo pipefail
DOCKER=/usr/bin/docker
MIRROR=http://127.0.0.1:5055
if ! "$DOCKER" info >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup dockerd --host unix:///var/run/docker.sock --bridge=none --iptables=false --ip-masq=false \
    --storage-driver=overlay2 --registry-mirror "$MIRROR" >/var/log/tsbuild-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 0.5
  done
  "$DOCKER" info >/dev/null 2>&1 || { echo "services: dockerd did not start; see /var/log/tsbuild-dockerd.log" >&2; tail -20 /var/log/tsbuild-dockerd.log >&2; exit 1; }
fi
if ! "$DOCKER" info --format '{{json .RegistryConfig.Mirrors}}' 2>/dev/null | grep -q "${MIRROR#http://}"; then
  echo "services: the running dockerd has no --registry-mirror $MIRROR (the mirror's docker test skips); restart it: pkill dockerd, then run this again" >&2
fi
echo "services: dockerd ready ($("$DOCKER" version --format '{{.Server.Version}}'))"
if [ -z "${TSBUILD_SKIP_SCALEOUT:-}" ]; then
  bash "$(dirname "$0")/scaleout.sh"
fi
