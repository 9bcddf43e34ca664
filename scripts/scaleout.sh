#!/usr/bin/env bash
# Brings up the peers the scale-out tests and `npm run bench -- scaleout` use, all on 127.0.0.1:
#   Ceph RGW 16.2 (S3, memstore OSD, ~15-25 s from nothing), Redis 7.0, and checks haproxy is installed
#   (the tests and the bench start their own haproxy in front of the replicas they start).
# Installs ceph-mon ceph-osd radosgw ceph-common redis-server redis-tools haproxy with apt when missing.
# Idempotent: a healthy set is reused. Writes the endpoints to $SCALEOUT_DIR/env (default /tmp/scaleout/env),
# which the tests read (TSBUILD_SCALEOUT_ENV overrides the path). `scaleout.sh stop` stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
export SCALEOUT_DIR=${SCALEOUT_DIR:-/tmp/scaleout}
if [ "${1:-start}" = start ] && ! command -v haproxy >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "scaleout: installing haproxy" >&2
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends haproxy >/dev/null
fi
start=$(date +%s)
bash scripts/scaleout-peers.sh "${1:-start}" >/dev/null
[ "${1:-start}" = start ] && echo "scaleout: RGW + Redis ready in $(($(date +%s) - start)) s; env in $SCALEOUT_DIR/env" >&2
exit 0
