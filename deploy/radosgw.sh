#!/usr/bin/env bash
# A throwaway Ceph cluster with an S3 gateway (radosgw) on 127.0.0.1, for tests that
# need a real external S3 server: one monitor, one in-memory OSD, one gateway.
#
#   deploy/radosgw.sh start DIR   → prints S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY lines
#   deploy/radosgw.sh stop DIR    → stops the gateway, the OSD, the monitor (in that order:
#                                   the gateway hangs if the cluster goes first)
#   deploy/radosgw.sh stop-gateway DIR / start-gateway DIR
#                                 → stops or starts the S3 gateway alone, the cluster and
#                                   its data staying (the fault suite's store outage)
# Needs: radosgw ceph-mon ceph-osd (install-deps.sh installs them). No auth inside the
# cluster (loopback only); the gateway itself checks SigV4 against the user made here.
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
conf="$dir/ceph.conf"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

stop_pids() {
  for name in "$@"; do
    if [ -f "$dir/$name.pid" ]; then
      pid="$(cat "$dir/$name.pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
}

stop() { stop_pids rgw osd mon; }

# The gateway again on its port, once it answers.
start_gateway() {
  [ ! -f "$dir/rgw.pid" ] || { echo "radosgw.sh: the gateway is running" >&2; exit 1; }
  radosgw -c "$conf" -n client.rgw.kefu -f >>"$dir/log/rgw.out" 2>&1 &
  echo $! >"$dir/rgw.pid"
  wait_for_port "$(sed -n 's/^rgw frontends = beast endpoint=127.0.0.1:\([0-9]*\)$/\1/p' "$conf")"
}

wait_for_port() {
  for _ in $(seq 1 120); do
    if python3 - "$1" <<'PY' 2>/dev/null; then return 0; fi
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
PY
    sleep 0.5
  done
  echo "radosgw.sh: nothing listens on port $1" >&2
  return 1
}

start() {
  mkdir -p "$dir"/{mon,osd,run,log}
  local mon_port rgw_port fsid
  mon_port="$(free_port)"
  rgw_port="$(free_port)"
  fsid="$(python3 -c 'import uuid; print(uuid.uuid4())')"
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
# A throwaway monitor with a few MB of data: refuse to start only on a really full
# disk (the default, 5 % free, stopped it on a 252 GB disk with 15 GB free).
mon data avail crit = 1
mon data avail warn = 2
mon data = $dir/mon
osd data = $dir/osd
osd objectstore = memstore
memstore device bytes = 1073741824
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
[client.rgw.kefu]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
CONF
  monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" >/dev/null
  ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring"
  ceph-mon -c "$conf" -i a -f >"$dir/log/mon.out" 2>&1 &
  echo $! >"$dir/mon.pid"
  if ! timeout 30 ceph -c "$conf" osd create >/dev/null; then
    echo "radosgw.sh: the Ceph monitor did not answer within 30 s; its log:" >&2
    tail -n 20 "$dir/log/mon.out" "$dir"/log/mon.a.log >&2 2>/dev/null || true
    exit 1
  fi
  ceph-osd -c "$conf" -i 0 --mkfs >"$dir/log/osd-mkfs.out" 2>&1
  ceph-osd -c "$conf" -i 0 -f >"$dir/log/osd.out" 2>&1 &
  echo $! >"$dir/osd.pid"
  radosgw -c "$conf" -n client.rgw.kefu -f >"$dir/log/rgw.out" 2>&1 &
  echo $! >"$dir/rgw.pid"
  local access secret
  access="kefu$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
  secret="$(python3 -c 'import secrets; print(secrets.token_hex(20))')"
  for _ in $(seq 1 120); do
    if radosgw-admin -c "$conf" user create --uid=kefu --display-name=kefu \
        --access-key="$access" --secret="$secret" >/dev/null 2>&1; then
      break
    fi
    sleep 0.5
  done
  wait_for_port "$rgw_port" || true
  echo "S3_ENDPOINT=http://127.0.0.1:$rgw_port"
  echo "S3_ACCESS_KEY=$access"
  echo "S3_SECRET_KEY=$secret"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  stop-gateway) stop_pids rgw ;;
  start-gateway) start_gateway ;;
  *) echo "usage: $0 start|stop|stop-gateway|start-gateway DIR" >&2; exit 2 ;;
esac
