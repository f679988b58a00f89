#!/usr/bin/env bash
# Runs a command beside a throwaway Redis server on 127.0.0.1 and a free port, with
# TEST_REDIS_URL pointing at it and TEST_REDIS_SERVER naming the binary (tests that
# stop and restart Redis start their own); stops the server afterwards.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "with-redis: redis-server not found (deploy/install-deps.sh installs it)" >&2; exit 1; }

dir=$(mktemp -d /tmp/kefu-redis.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$dir" \
  --logfile "$dir/redis.log" --daemonize yes --pidfile "$dir/redis.pid"
stop() {
  local status=$? pid
  pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    # Redis writes into its folder until it has exited: wait before removing it.
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -rf "$dir" 2>/dev/null || true
  exit "$status"
}
trap stop EXIT
for _ in $(seq 100); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.05
done
redis-cli -p "$port" ping >/dev/null || { cat "$dir/redis.log" >&2; exit 1; }

export TEST_REDIS_URL="redis://127.0.0.1:$port/0"
export TEST_REDIS_SERVER="$(command -v redis-server)"
"$@"
