#!/usr/bin/env bash
# Peers for the scale-out tests and bench (issue 16; from the lab script ../shared/lab/ceph-rgw-redis.sh), all on 127.0.0.1, from Debian bookworm packages:
#  - S3: Ceph RGW 16.2 (radosgw) on a single-node Ceph: 1 mon + 1 OSD on memstore (data in RAM) + radosgw;
#        cephx on, no mgr. Path-style, region us-east-1, bucket created up front.
#  - Redis 7.0 (redis-server), no persistence.
# Usage: ceph-rgw-redis.sh [start|stop|status]   (default: start; idempotent: a healthy set is reused)
# Prints the endpoints and writes them to /tmp/scaleout/env (source it). Pids: /tmp/scaleout/*.pid.
# Knobs (first start only; later starts reuse /tmp/scaleout/ports): SCALEOUT_S3_PORT, SCALEOUT_REDIS_PORT,
# SCALEOUT_MON_PORT (default: free random ports in 20000-32000), SCALEOUT_BUCKET (registry),
# SCALEOUT_S3_MEM_BYTES (memstore capacity, default 4 GiB; objects live in the OSD's RAM).
# The OSD also listens on 127.0.0.1:6800-6807 (ceph's default messenger range).
# Client note: @aws-sdk/client-s3 >= 3.729 needs requestChecksumCalculation/responseChecksumValidation
# 'WHEN_REQUIRED' against RGW 16 (its default aws-chunked streaming upload with trailing CRC32 gets 411).
set -euo pipefail
D=${SCALEOUT_DIR:-/tmp/scaleout}
C=$D/ceph
AK=${SCALEOUT_S3_ACCESS_KEY:-scaleout}
SK=${SCALEOUT_S3_SECRET_KEY:-scaleout-secret}
BUCKET=${SCALEOUT_BUCKET:-registry}
REGION=us-east-1
export CEPH_CONF=$C/ceph.conf

log() { echo "scaleout-peers: $*" >&2; }

free_port() { # a free TCP port below the ephemeral range
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12000))
    if command -v ss >/dev/null; then [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return; }
    else (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }; fi
  done
  return 1
}

pids() { ls "$D"/*.pid 2>/dev/null || true; }
alive() { local f n=0; for f in $(pids); do kill -0 "$(cat "$f")" 2>/dev/null || return 1; n=$((n + 1)); done; [ "$n" -eq 4 ]; }
healthy() {
  [ -f "$D/ports" ] || return 1
  # shellcheck disable=SC1091
  . "$D/ports"
  alive && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/")" = 200 ] &&
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

stop() {
  local f p
  for f in ceph-client.rgw.a ceph-osd.0 ceph-mon.a redis; do
    [ -f "$D/$f.pid" ] || continue
    p=$(cat "$D/$f.pid")
    if kill "$p" 2>/dev/null; then
      for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$p" 2>/dev/null || true
    fi
    rm -f "$D/$f.pid"
  done
}

print_env() {
  cat "$D/env"
}

case "${1:-start}" in
  stop) stop; log "stopped"; exit 0 ;;
  status) if healthy; then print_env; exit 0; else log "not running (or unhealthy)"; exit 1; fi ;;
  start) ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

if healthy; then print_env; exit 0; fi
stop # leftovers of a partial set

need=()
for b in radosgw:radosgw ceph-mon:ceph-mon ceph-osd:ceph-osd ceph:ceph-common radosgw-admin:radosgw \
  redis-server:redis-server redis-cli:redis-tools curl:curl haproxy:haproxy; do
  command -v "${b%%:*}" >/dev/null || need+=("${b#*:}")
done
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$D"
if [ ! -f "$D/ports" ]; then
  S3_PORT=${SCALEOUT_S3_PORT:-$(free_port)}
  REDIS_PORT=${SCALEOUT_REDIS_PORT:-$(free_port)}
  MON_PORT=${SCALEOUT_MON_PORT:-$(free_port)}
  printf 'S3_PORT=%s\nREDIS_PORT=%s\nMON_PORT=%s\n' "$S3_PORT" "$REDIS_PORT" "$MON_PORT" >"$D/ports"
fi
# shellcheck disable=SC1091
. "$D/ports"

fail() { log "$*"; for l in "$C"/log/*.log "$D/redis.log"; do [ -f "$l" ] && { echo "--- $l" >&2; tail -n 15 "$l" >&2; }; done; stop; exit 1; }

# Redis
mkdir -p "$D/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes \
  --pidfile "$D/redis.pid" --logfile "$D/redis.log" --dir "$D/redis"

# Ceph: fresh cluster every start (memstore keeps nothing across restarts anyway)
rm -rf "$C"
mkdir -p "$C"/{run,log,crash,mon.a,osd.0,rgw}
fsid=$(cat /proc/sys/kernel/random/uuid)
cat >"$C/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$MON_PORT
public network = 127.0.0.0/8
ms bind ipv4 = true
ms bind ipv6 = false
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
run dir = $C/run
admin socket = $C/run/\$name.asok
log file = $C/log/\$name.log
pid file = $D/ceph-\$name.pid
crash dir = $C/crash
keyring = $C/keyring
[mon.a]
mon data = $C/mon.a
[osd]
osd data = $C/osd.\$id
keyring = $C/osd.\$id.keyring
osd objectstore = memstore
memstore device bytes = ${SCALEOUT_S3_MEM_BYTES:-4294967296}
[client.rgw.a]
keyring = $C/rgw.keyring
rgw frontends = beast endpoint=127.0.0.1:$S3_PORT
rgw data = $C/rgw
# memstore keeps objects in RAM: reclaim deleted ones within a minute, not after the default 2 h
rgw gc obj min wait = 30
rgw gc processor period = 30
EOF
ceph-authtool --create-keyring "$C/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$C/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
monmaptool --create --addv a "[v1:127.0.0.1:$MON_PORT]" --fsid "$fsid" "$C/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$C/monmap" --keyring "$C/keyring" >"$C/log/mkfs-mon.out" 2>&1 || fail "ceph-mon --mkfs failed"
ceph-mon -i a || fail "ceph-mon did not start"
ok=
for _ in $(seq 60); do timeout 10 ceph --connect-timeout 5 mon stat >/dev/null 2>&1 && { ok=1; break; }; sleep 0.5; done
[ -n "$ok" ] || fail "mon not answering"
uuid=$(cat /proc/sys/kernel/random/uuid)
secret=$(ceph-authtool --gen-print-key)
id=$(echo "{\"cephx_secret\": \"$secret\"}" | ceph osd new "$uuid" -i -) || fail "ceph osd new failed"
ceph-authtool --create-keyring "$C/osd.$id.keyring" --name "osd.$id" --add-key "$secret" >/dev/null
ceph-osd -i "$id" --mkfs --osd-uuid "$uuid" >"$C/log/mkfs-osd.out" 2>&1 || fail "ceph-osd --mkfs failed"
ok=
for _ in 1 2 3; do # ceph-osd can exit at init if it races its first monmap; start again
  ceph-osd -i "$id" >>"$C/log/mkfs-osd.out" 2>&1 || { sleep 1; continue; }
  for _ in $(seq 120); do ceph osd stat 2>/dev/null | grep -q ' 1 up' && { ok=1; break; }; sleep 0.5; done
  break
done
[ -n "$ok" ] || fail "osd not up"
ceph auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' -o "$C/rgw.keyring" 2>/dev/null || fail "rgw key failed"
radosgw -n client.rgw.a || fail "radosgw did not start"
ok=
for _ in $(seq 240); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/")" = 200 ] && { ok=1; break; }; sleep 0.5; done
[ -n "$ok" ] || fail "radosgw not answering on 127.0.0.1:$S3_PORT"
radosgw-admin user create --uid=scaleout --display-name=scaleout --access-key="$AK" --secret="$SK" >/dev/null 2>&1 ||
  radosgw-admin user info --uid=scaleout >/dev/null || fail "radosgw-admin user create failed"
code=000
for _ in $(seq 20); do
  code=$(curl -s -o "$C/log/mkbucket.out" -w '%{http_code}' --aws-sigv4 "aws:amz:$REGION:s3" --user "$AK:$SK" \
    -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
    -X PUT "http://127.0.0.1:$S3_PORT/$BUCKET")
  case $code in 200 | 409) break ;; esac
  sleep 0.5
done
case $code in 200 | 409) ;; *) fail "bucket create: HTTP $code $(cat "$C/log/mkbucket.out")" ;; esac

cat >"$D/env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$S3_PORT
S3_REGION=$REGION
S3_BUCKET=$BUCKET
S3_FORCE_PATH_STYLE=true
S3_ACCESS_KEY_ID=$AK
S3_SECRET_ACCESS_KEY=$SK
AWS_ACCESS_KEY_ID=$AK
AWS_SECRET_ACCESS_KEY=$SK
AWS_REGION=$REGION
AWS_REQUEST_CHECKSUM_CALCULATION=when_required
AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
EOF
healthy || fail "started but not healthy"
print_env
