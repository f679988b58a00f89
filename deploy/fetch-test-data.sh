#!/usr/bin/env bash
# Test images from a registry package, pinned by sha256, into the git-ignored test-data/.
# Source: Debian python3-skimage 0.19.3-8 (scikit-image's sample data: astronaut.png is
# public domain (NASA), camera.png CC0, coffee.png and chelsea.png CC0/ public domain as
# listed in the package's copyright file). Idempotent: does nothing when present.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$here/test-data"
files=(astronaut.png camera.png coffee.png chelsea.png)
have_all=1
for f in "${files[@]}"; do [ -f "$out/$f" ] || have_all=0; done
[ "$have_all" = 1 ] && exit 0

deb="python3-skimage_0.19.3-8_all.deb"
sha="728d88c3e3440f1f3712de0805dc834d29248ff07e1eec8c0f3da07606f752f9"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch-test-data: downloading $deb"
(cd "$tmp" && apt-get download -qq "python3-skimage=0.19.3-8" 2>/dev/null)
echo "$sha  $tmp/$deb" | sha256sum -c --quiet
dpkg-deb -x "$tmp/$deb" "$tmp/x"
mkdir -p "$out"
for f in "${files[@]}"; do
  cp "$tmp/x/usr/lib/python3/dist-packages/skimage/data/$f" "$out/$f"
done
cp "$tmp/x/usr/share/doc/python3-skimage/copyright" "$out/COPYRIGHT.python3-skimage"
echo "fetch-test-data: ${files[*]} in test-data/"
