#!/usr/bin/env bash
# Runs a command beside a throwaway Ceph radosgw (deploy/radosgw.sh) and hands it the
# gateway in TEST_S3_ENDPOINT / TEST_S3_ACCESS_KEY / TEST_S3_SECRET_KEY. Without the
# Ceph packages the command runs alone (the tests then say so; under CI they fail).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v radosgw >/dev/null 2>&1; then
  echo "with-radosgw: radosgw not installed; external S3 tests will not run" >&2
  exec "$@"
fi
dir=""
cleanup() {
  [ -n "$dir" ] || return 0
  "$here/radosgw.sh" stop "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
# A cold start on a busy machine has once missed the monitor's 30 s; one retry.
for attempt in 1 2; do
  cleanup
  dir="$(mktemp -d /tmp/kefu-rgw-XXXXXX)"
  while IFS='=' read -r key value; do
    case "$key" in
      S3_ENDPOINT) export TEST_S3_ENDPOINT="$value" ;;
      S3_ACCESS_KEY) export TEST_S3_ACCESS_KEY="$value" ;;
      S3_SECRET_KEY) export TEST_S3_SECRET_KEY="$value" ;;
    esac
  done < <("$here/radosgw.sh" start "$dir" || true)
  [ -n "${TEST_S3_ENDPOINT:-}" ] && break
  echo "with-radosgw: Ceph radosgw did not start (attempt $attempt)" >&2
done
[ -n "${TEST_S3_ENDPOINT:-}" ] || { echo "with-radosgw: giving up on Ceph radosgw" >&2; exit 1; }
echo "with-radosgw: Ceph radosgw at $TEST_S3_ENDPOINT" >&2
# The fault suite stops and starts the gateway: deploy/radosgw.sh stop-gateway DIR.
export TEST_RADOSGW_DIR="$dir"
"$@"
