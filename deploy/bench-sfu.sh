#!/usr/bin/env bash
# The SFU load benchmark: kefu and Janus under the same calls, side by side
# (tests/src/load). Runs in a private network namespace: loopback, plus a private
# address on a virtual interface for Janus, which never gathers ICE candidates on
# loopback. Nothing sent in the namespace can leave it.
# Usage: deploy/bench-sfu.sh [kefu-load options], e.g. --calls 20 --rounds 2.
# Binaries: $CARGO_TARGET_DIR/$BENCH_SFU_PROFILE_DIR (default debug), or BENCH_SFU_KEFU
# and BENCH_SFU_LOAD. Logs and configs: BENCH_SFU_WORK_DIR (default $target/kefu-load).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
profile_dir="${BENCH_SFU_PROFILE_DIR:-debug}"
kefu="${BENCH_SFU_KEFU:-$target/$profile_dir/kefu}"
load="${BENCH_SFU_LOAD:-$target/$profile_dir/kefu-load}"
for bin in "$kefu" "$load"; do
  [ -x "$bin" ] || { echo "bench-sfu: $bin is missing; build it first" >&2; exit 1; }
done
janus="$(command -v janus || true)"
[ -n "$janus" ] || { echo "bench-sfu: janus is not installed (deploy/install-deps.sh installs it)" >&2; exit 1; }

if [ "${BENCH_SFU_IN_NETNS:-}" != 1 ]; then
  exec env BENCH_SFU_IN_NETNS=1 "$here/deploy/netns-run.sh" "$0" "$@"
fi
# A veth pair (both ends here, so the link is up and running); a dummy where veth is
# missing. Traffic to the address is delivered locally, like loopback traffic.
if ip link add kbench0 type veth peer name kbench1 2>/dev/null; then
  ip link set kbench1 up
else
  ip link add kbench0 type dummy
fi
ip addr add 10.77.0.1/32 dev kbench0
ip link set kbench0 up
exec "$load" --kefu "$kefu" --janus "$janus" --private-ip 10.77.0.1 \
  --work-dir "${BENCH_SFU_WORK_DIR:-$target/kefu-load}" "$@"
