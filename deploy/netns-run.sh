#!/usr/bin/env bash
# Runs a command in a fresh loopback-only network namespace, so WebRTC tests can
# reach nothing but 127.0.0.1 (and browsers gather loopback candidates only).
# Root uses `unshare --net`; others try a user namespace. Without either, it says so
# and fails: the tests are not run outside the namespace silently.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

inner='ip link set lo up && exec "$@"'
if [ "$(id -u)" -eq 0 ] && unshare --net true 2>/dev/null; then
  exec unshare --net -- bash -c "$inner" bash "$@"
elif unshare --user --map-root-user --net true 2>/dev/null; then
  exec unshare --user --map-root-user --net -- bash -c "$inner" bash "$@"
fi
echo "netns-run: cannot create a network namespace here (need root or user namespaces)" >&2
exit 1
