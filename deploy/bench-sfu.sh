#!/usr/bin/env bash
# The SFU load benchmark: kefu and Janus under the same calls, side by side
# (tests/src/load), beside kefu built from an earlier commit ("before"). Runs in a
# private network namespace: loopback, plus a private address on a virtual interface
# for Janus, which never gathers ICE candidates on loopback. Nothing sent in the
# namespace can leave it.
# Usage: deploy/bench-sfu.sh [kefu-load options], e.g. --calls 20 --rounds 2.
# Binaries: $CARGO_TARGET_DIR/$BENCH_SFU_PROFILE_DIR (default debug), or BENCH_SFU_KEFU
# and BENCH_SFU_LOAD. Logs and configs: BENCH_SFU_WORK_DIR (default $target/kefu-load).
# The before build: BENCH_SFU_KEFU_BEFORE=/path uses that binary; otherwise
# BENCH_SFU_BEFORE_REV (default 8eb9bc8, the last commit before issue 18; `none`
# skips it) is exported under $target/bench-before/src and built there with
# ${CARGO:-cargo}, once per commit and profile. A failed before build is reported and
# the rest of the comparison runs without it.
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

# The workspace's own packages (Cargo.lock gives no source for them), read from both
# trees' lock files.
workspace_packages() {
  awk '/^\[\[package\]\]/ { if (name != "" && !src) print name; name = ""; src = 0 }
       /^name = /        { name = $3; gsub(/"/, "", name) }
       /^source = /      { src = 1 }
       END               { if (name != "" && !src) print name }' "$@" | sort -u
}

# Cargo names a workspace package's artifacts by its path relative to the workspace
# root, so the before tree's crates and the current tree's share file names in the
# shared target dir, and cargo, judging freshness by modification times, would take
# one tree's artifacts for the other's (git archive dates files at the commit, older
# than the last build). Dropping those packages' fingerprints makes the next build of
# either tree compile its own; third-party crates stay shared.
forget_workspace_builds() {
  local cargo_profile_dir="$1" src="$2" pkg
  for pkg in $(workspace_packages "$here/Cargo.lock" "$src/Cargo.lock"); do
    rm -rf "$target/$cargo_profile_dir/.fingerprint/$pkg"-????????????????
  done
}

# Builds kefu at $rev into $target/bench-before/kefu-<commit>[-<profile>] (once per
# commit and profile) and prints its path; fails, saying why on stderr, when it cannot.
build_before() {
  local rev="$1" commit short dir src bin cargo_args cargo_profile_dir saved
  commit="$(git -C "$here" rev-parse --verify --quiet "$rev^{commit}")" ||
    { echo "bench-sfu: no commit $rev in $here" >&2; return 1; }
  short="$(git -C "$here" rev-parse --short "$commit")"
  dir="$target/bench-before"
  src="$dir/src"
  # The before build uses the profile the current build was measured in: a release
  # kefu against a debug one would measure the compiler, not the change.
  case "$profile_dir" in
    release) cargo_args=(--release); bin="$dir/kefu-$short" ;;
    debug) cargo_args=(); bin="$dir/kefu-$short-debug" ;;
    *) cargo_args=(--profile "$profile_dir"); bin="$dir/kefu-$short-$profile_dir" ;;
  esac
  cargo_profile_dir="$profile_dir"
  if [ -x "$bin" ]; then echo "$bin"; return 0; fi
  if [ "$(cat "$dir/src.stamp" 2>/dev/null)" != "$commit" ]; then
    echo "bench-sfu: exporting $rev ($short) to $src" >&2
    rm -rf "$src" "$dir/src.stamp"
    mkdir -p "$src"
    git -C "$here" archive "$commit" | tar -x -C "$src" || return 1
    echo "$commit" >"$dir/src.stamp"
  fi
  # The before build writes its kefu where the current one lies (the same target dir
  # and profile): keep a copy to put back, not a rename (the file may be a hard link
  # cargo rewrites in place).
  saved="$dir/kefu-current.$$"
  [ -e "$target/$cargo_profile_dir/kefu" ] && cp -p "$target/$cargo_profile_dir/kefu" "$saved"
  forget_workspace_builds "$cargo_profile_dir" "$src"
  echo "bench-sfu: building kefu at $short (${cargo_args[*]:-dev profile}); once per commit" >&2
  local cargo status=0
  # CARGO as the Makefile passes it, flags included (`make CARGO="cargo --offline"`).
  read -ra cargo <<<"${CARGO:-cargo}"
  (cd "$src" && CARGO_TARGET_DIR="$target" "${cargo[@]}" build --locked "${cargo_args[@]}" \
    --workspace --bin kefu) >&2 || status=$?
  if [ "$status" = 0 ]; then
    { cp -p "$target/$cargo_profile_dir/kefu" "$bin.tmp" && mv "$bin.tmp" "$bin"; } || status=$?
  fi
  forget_workspace_builds "$cargo_profile_dir" "$src"
  if [ -e "$saved" ]; then
    mv -f "$saved" "$target/$cargo_profile_dir/kefu"
  fi
  [ "$status" = 0 ] || { echo "bench-sfu: building kefu at $short failed (exit $status)" >&2; return 1; }
  echo "$bin"
}

if [ "${BENCH_SFU_IN_NETNS:-}" != 1 ]; then
  # Built here, before entering the namespace: cargo may need the network.
  before="${BENCH_SFU_KEFU_BEFORE:-}"
  before_rev="${BENCH_SFU_BEFORE_REV:-8eb9bc8}"
  if [ -n "$before" ]; then
    [ -x "$before" ] || { echo "bench-sfu: BENCH_SFU_KEFU_BEFORE=$before is not an executable" >&2; exit 1; }
  elif [ "$before_rev" != none ]; then
    before="$(build_before "$before_rev")" ||
      { echo "bench-sfu: going on without kefu (before)" >&2; before=""; }
  fi
  exec env BENCH_SFU_IN_NETNS=1 BENCH_SFU_KEFU_BEFORE="$before" \
    "$here/deploy/netns-run.sh" "$0" "$@"
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
before_args=()
[ -z "${BENCH_SFU_KEFU_BEFORE:-}" ] || before_args=(--kefu-before "$BENCH_SFU_KEFU_BEFORE")
exec "$load" --kefu "$kefu" "${before_args[@]}" --janus "$janus" --private-ip 10.77.0.1 \
  --work-dir "${BENCH_SFU_WORK_DIR:-$target/kefu-load}" "$@"
